package authn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// memUsers is an in-memory UserSource.
type memUsers struct {
	mu    sync.Mutex
	users map[string]User
	err   error
}

func (m *memUsers) LookupUser(_ context.Context, name string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return User{}, m.err
	}
	u, ok := m.users[name]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

func (m *memUsers) set(u User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = map[string]User{}
	}
	m.users[u.Name] = u
}

// memTokens is an in-memory TokenSource.
type memTokens struct {
	mu     sync.Mutex
	tokens map[[32]byte]TokenRecord
	err    error
	// loose makes lookups return the first record whatever the hash, like
	// a broken store.
	loose bool
}

func (m *memTokens) LookupToken(_ context.Context, h [32]byte) (TokenRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return TokenRecord{}, m.err
	}
	if m.loose {
		for _, r := range m.tokens {
			return r, nil
		}
	}
	r, ok := m.tokens[h]
	if !ok {
		return TokenRecord{}, ErrNotFound
	}
	return r, nil
}

func (m *memTokens) add(r TokenRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[[32]byte]TokenRecord{}
	}
	m.tokens[r.Hash] = r
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustHash(t testing.TB, pw string, cost int) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// countCompares wraps b's bcrypt comparison with a counter.
func countCompares(b *Basic) *atomic.Int64 {
	var n atomic.Int64
	inner := b.compare
	b.compare = func(h, p []byte) error {
		n.Add(1)
		return inner(h, p)
	}
	return &n
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("want %v, got %v", kind, err)
	}
}
