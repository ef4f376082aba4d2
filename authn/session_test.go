package authn

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// memSessions is an in-memory SessionSource.
type memSessions struct {
	mu      sync.Mutex
	m       map[[32]byte]SessionRecord
	touches int
}

func (s *memSessions) CreateSession(_ context.Context, r SessionRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]SessionRecord{}
	}
	s.m[r.Hash] = r
	return nil
}

func (s *memSessions) LookupSession(_ context.Context, h [32]byte) (SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[h]
	if !ok {
		return SessionRecord{}, ErrNotFound
	}
	return r, nil
}

func (s *memSessions) TouchSession(_ context.Context, h [32]byte, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[h]
	if !ok {
		return ErrNotFound
	}
	r.LastSeen = at
	s.m[h] = r
	s.touches++
	return nil
}

func (s *memSessions) DeleteSession(_ context.Context, h [32]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, h)
	return nil
}

func (s *memSessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func newTestSessions(t *testing.T) (*Sessions, *memSessions, *memUsers, *clock) {
	t.Helper()
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "pw-alice", bcrypt.MinCost)})
	store := &memSessions{}
	clk := newClock()
	s, err := NewSessions(store, users, SessionOptions{Idle: time.Hour, Lifetime: 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, store, users, clk
}

func TestSessionStartVerifyEnd(t *testing.T) {
	s, store, _, _ := newTestSessions(t)
	ctx := context.Background()
	tok, rec, err := s.Start(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || rec.Hash != HashToken(tok) || rec.ID == "" {
		t.Fatalf("token %q rec %+v", tok, rec)
	}
	for h := range store.m {
		if string(h[:]) == tok {
			t.Fatal("the token itself is stored")
		}
	}
	p, err := s.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Username != "alice" || p.Method != MethodSession || p.CSRFToken != CSRFToken(tok) || p.SessionID != rec.ID {
		t.Fatalf("principal %+v", p)
	}
	if p.CSRFToken == tok || len(p.CSRFToken) < 43 {
		t.Fatalf("CSRF token %q", p.CSRFToken)
	}
	tok2, _, _ := s.Start(ctx, "alice")
	if CSRFToken(tok2) == CSRFToken(tok) {
		t.Fatal("two sessions share a CSRF token")
	}
	if err := s.End(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err = s.Verify(ctx, tok)
	wantKind(t, err, ErrInvalidCredentials)
	for _, bad := range []string{"", "short", tok + "x", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"} {
		_, err := s.Verify(ctx, bad)
		wantKind(t, err, ErrInvalidCredentials)
	}
}

func TestSessionExpiry(t *testing.T) {
	s, store, _, clk := newTestSessions(t)
	ctx := context.Background()

	// Idle: used every 50 minutes it lives on; after an idle hour it ends.
	tok, _, _ := s.Start(ctx, "alice")
	for i := 0; i < 5; i++ {
		clk.Add(50 * time.Minute)
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Fatalf("active session ended after %d uses: %v", i, err)
		}
	}
	if store.touches == 0 {
		t.Fatal("uses were not recorded")
	}
	clk.Add(time.Hour)
	_, err := s.Verify(ctx, tok)
	wantKind(t, err, ErrInvalidCredentials)
	if store.len() != 0 {
		t.Fatal("expired session kept")
	}

	// Lifetime: ends after 24h however active.
	tok, _, _ = s.Start(ctx, "alice")
	for i := 0; i < 24; i++ { // 23h36m
		clk.Add(59 * time.Minute)
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Fatalf("session ended early: %v", err)
		}
	}
	clk.Add(30 * time.Minute)
	_, err = s.Verify(ctx, tok)
	wantKind(t, err, ErrInvalidCredentials)

	// Touches are batched: many uses within a minute write once at most.
	tok, _, _ = s.Start(ctx, "alice")
	before := store.touches
	for i := 0; i < 20; i++ {
		if _, err := s.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if store.touches != before {
		t.Fatalf("%d touches within a minute", store.touches-before)
	}
}

func TestSessionEndsOnPasswordChangeOrDeletion(t *testing.T) {
	s, _, users, _ := newTestSessions(t)
	ctx := context.Background()
	tok, _, _ := s.Start(ctx, "alice")
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "new-pw", bcrypt.MinCost)})
	_, err := s.Verify(ctx, tok)
	wantKind(t, err, ErrInvalidCredentials)

	tok, _, _ = s.Start(ctx, "alice")
	users.mu.Lock()
	delete(users.users, "alice")
	users.mu.Unlock()
	_, err = s.Verify(ctx, tok)
	wantKind(t, err, ErrInvalidCredentials)
	if _, _, err := s.Start(ctx, "alice"); err == nil {
		t.Fatal("session started for an unknown user")
	}
}

func TestSessionCookieSource(t *testing.T) {
	s, _, users, _ := newTestSessions(t)
	basic, err := NewBasic(users, BasicOptions{FakeHashCost: bcrypt.MinCost, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Basic: basic, Sessions: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, _, _ := s.Start(ctx, "alice")

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", SessionCookie+"="+tok)
	p, err := a.Authenticate(ctx, r)
	if err != nil || p.Method != MethodSession || p.Username != "alice" {
		t.Fatalf("cookie: %+v %v", p, err)
	}
	// An Authorization header is judged alone, even with a good cookie.
	r.SetBasicAuth("alice", "wrong")
	_, err = a.Authenticate(ctx, r)
	wantKind(t, err, ErrInvalidCredentials)
	r.SetBasicAuth("alice", "pw-alice")
	if p, err := a.Authenticate(ctx, r); err != nil || p.Method != MethodBasic || p.CSRFToken != "" {
		t.Fatalf("basic with cookie: %+v %v", p, err)
	}
	// A dead cookie is invalid credentials.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", SessionCookie+"="+deadSessionToken("x"))
	_, err = a.Authenticate(ctx, r)
	wantKind(t, err, ErrInvalidCredentials)
	// No cookie: no credentials.
	_, err = a.Authenticate(ctx, httptest.NewRequest("GET", "/", nil))
	wantKind(t, err, ErrNoCredentials)
}

// deadSessionToken is a well-formed token of no live session.
func deadSessionToken(s string) string { return CSRFToken(s) }

func TestSameToken(t *testing.T) {
	if SameToken("", "") || SameToken("a", "") || SameToken("", "a") || SameToken("a", "b") || !SameToken("abc", "abc") {
		t.Fatal("SameToken")
	}
}
