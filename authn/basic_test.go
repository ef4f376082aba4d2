package authn

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func newTestBasic(t *testing.T, users *memUsers, opts BasicOptions) (*Basic, *clock) {
	t.Helper()
	c := newClock()
	if opts.FakeHashCost == 0 {
		opts.FakeHashCost = bcrypt.MinCost
	}
	opts.Now = c.Now
	b, err := NewBasic(users, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func TestBasic(t *testing.T) {
	ctx := context.Background()
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "s3cret-pw", bcrypt.MinCost)})
	users.set(User{Name: "nopw"})
	users.set(User{Name: "off", PasswordHash: mustHash(t, "off-pw", bcrypt.MinCost), Disabled: true})
	users.set(User{Name: "broken", PasswordHash: []byte("not-a-bcrypt-hash")})
	b, _ := newTestBasic(t, users, BasicOptions{})
	n := countCompares(b)

	p, err := b.Authenticate(ctx, "alice", "s3cret-pw")
	if err != nil || p.Username != "alice" || p.Method != MethodBasic {
		t.Fatalf("good: %+v %v", p, err)
	}

	bad := []struct {
		name, user, pw string
		compares       int64
	}{
		{"wrong password", "alice", "nope", 1},
		{"unknown user (fake hash)", "mallory", "s3cret-pw", 1},
		{"no password hash (fake hash)", "nopw", "", 1},
		{"disabled", "off", "off-pw", 1},
		{"unusable stored hash", "broken", "x", 1},
		{"empty username", "", "x", 0},
		{"password too long", "alice", strings.Repeat("a", 73), 0},
		{"truncation is not a match", "alice", "s3cret-pw" + strings.Repeat("a", 70), 0},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Load()
			_, err := b.Authenticate(ctx, tc.user, tc.pw)
			wantKind(t, err, ErrInvalidCredentials)
			if got := n.Load() - before; got != tc.compares {
				t.Errorf("bcrypt comparisons = %d, want %d", got, tc.compares)
			}
			if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}

	// Store failure is neither "no" nor "invalid" credentials.
	users.err = errors.New("disk on fire")
	_, err = b.Authenticate(ctx, "alice", "s3cret-pw")
	if err == nil || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrNoCredentials) {
		t.Fatalf("store failure: %v", err)
	}
	users.err = nil
}

func TestBasicCache(t *testing.T) {
	ctx := context.Background()
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "pw1", bcrypt.MinCost)})
	b, clk := newTestBasic(t, users, BasicOptions{CacheTTL: time.Minute})
	n := countCompares(b)

	login := func(pw string) error { _, err := b.Authenticate(ctx, "alice", pw); return err }

	if err := login("pw1"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1 {
		t.Fatalf("cold: %d compares", n.Load())
	}
	for range 5 {
		if err := login("pw1"); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 {
		t.Fatalf("warm: %d compares, want cache hits", n.Load())
	}
	// A wrong password is never served from the cache and never cached.
	if err := login("pw2"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if err := login("pw2"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if n.Load() != 3 {
		t.Fatalf("wrong passwords: %d compares", n.Load())
	}

	// Password change: the old password stops working at once.
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "pw2", bcrypt.MinCost)})
	if err := login("pw1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after change: %v", err)
	}
	if err := login("pw2"); err != nil {
		t.Fatal(err)
	}
	// Disabling applies to cached credentials too.
	users.set(User{Name: "alice", PasswordHash: users.users["alice"].PasswordHash, Disabled: true})
	before := n.Load()
	if err := login("pw2"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("disabled but cached: %v", err)
	}
	if n.Load() != before {
		t.Fatal("expected a cache hit followed by the disabled check")
	}
	users.set(User{Name: "alice", PasswordHash: users.users["alice"].PasswordHash})
	// Deleted user: lookup fails, cache irrelevant.
	delete(users.users, "alice")
	if err := login("pw2"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("deleted: %v", err)
	}
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "pw2", bcrypt.MinCost)})

	// TTL.
	if err := login("pw2"); err != nil {
		t.Fatal(err)
	}
	before = n.Load()
	clk.Add(2 * time.Minute)
	if err := login("pw2"); err != nil {
		t.Fatal(err)
	}
	if n.Load() != before+1 {
		t.Fatal("expired entry served from cache")
	}

	// Purge.
	b.Purge()
	if b.cache.len() != 0 {
		t.Fatal("purge left entries")
	}
}

func TestBasicCacheBoundedLRU(t *testing.T) {
	ctx := context.Background()
	users := &memUsers{}
	for _, u := range []string{"a", "b", "c"} {
		users.set(User{Name: u, PasswordHash: mustHash(t, u+"-pw", bcrypt.MinCost)})
	}
	b, _ := newTestBasic(t, users, BasicOptions{CacheSize: 2})
	n := countCompares(b)
	for _, u := range []string{"a", "b", "a", "c"} { // c evicts b (a was used more recently)
		if _, err := b.Authenticate(ctx, u, u+"-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if b.cache.len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", b.cache.len())
	}
	before := n.Load()
	b.Authenticate(ctx, "a", "a-pw")
	if n.Load() != before {
		t.Error("a was evicted")
	}
	b.Authenticate(ctx, "b", "b-pw")
	if n.Load() != before+1 {
		t.Error("b was not evicted")
	}
}

func TestBasicCacheDisabled(t *testing.T) {
	users := &memUsers{}
	users.set(User{Name: "a", PasswordHash: mustHash(t, "pw", bcrypt.MinCost)})
	b, _ := newTestBasic(t, users, BasicOptions{CacheSize: -1})
	n := countCompares(b)
	for range 3 {
		if _, err := b.Authenticate(context.Background(), "a", "pw"); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("%d compares with cache disabled", n.Load())
	}
}

func TestBasicCacheConcurrent(t *testing.T) {
	users := &memUsers{}
	users.set(User{Name: "a", PasswordHash: mustHash(t, "pw", bcrypt.MinCost)})
	b, _ := newTestBasic(t, users, BasicOptions{CacheSize: 8})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			pw := "pw"
			if i%3 == 0 {
				pw = "wrong"
			}
			_, err := b.Authenticate(context.Background(), "a", pw)
			if (err == nil) != (pw == "pw") {
				t.Errorf("pw %q: %v", pw, err)
			}
		})
	}
	wg.Wait()
}

func TestCacheKey(t *testing.T) {
	c, err := newCredCache(4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c.cacheKey("ab", "c") == c.cacheKey("a", "bc") {
		t.Fatal("boundary collision")
	}
	if c.cacheKey("a", "b") != c.cacheKey("a", "b") {
		t.Fatal("not deterministic")
	}
	c2, _ := newCredCache(4, time.Minute)
	if c.cacheKey("a", "b") == c2.cacheKey("a", "b") {
		t.Fatal("key not per-instance")
	}
}

func TestNewBasicErrors(t *testing.T) {
	if _, err := NewBasic(nil, BasicOptions{}); err == nil {
		t.Error("nil source accepted")
	}
	if _, err := NewBasic(&memUsers{}, BasicOptions{FakeHashCost: 99}); err == nil {
		t.Error("cost 99 accepted")
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("hunter2hunter2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(h); cost != bcrypt.DefaultCost {
		t.Errorf("cost %d", cost)
	}
	if bcrypt.CompareHashAndPassword(h, []byte("hunter2hunter2")) != nil {
		t.Error("hash does not verify")
	}
	if _, err := HashPassword("", 0); err == nil {
		t.Error("empty password accepted")
	}
	if _, err := HashPassword(strings.Repeat("x", 73), 0); err == nil {
		t.Error("73-byte password accepted")
	}
}
