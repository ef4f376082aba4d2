package caddymodule

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// ok unwraps allow for tests.
func (l *loginLimiter) ok(t *testing.T, keys ...string) bool {
	t.Helper()
	ok, err := l.allow(context.Background(), keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestLoginThrottleCountsAttemptsInFlight: a sign-in attempt takes its
// token before the (slow) password check, so that many attempts sent at
// once cannot all pass the check before the first failure is recorded.
func TestLoginThrottleCountsAttemptsInFlight(t *testing.T) {
	ctx := context.Background()
	l := newLoginLimiter(authstore.NewMemoryThrottle())
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	user, ip := loginKeys("192.0.2.1", "root")
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := l.allow(ctx, user, ip); ok {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait() // every attempt is still "checking its password"
	if n := admitted.Load(); n != loginBurst {
		t.Fatalf("%d concurrent attempts admitted, want %d", n, loginBurst)
	}
	// They all fail: their tokens stay spent.
	if l.ok(t, user, ip) {
		t.Fatal("admitted after the burst failed")
	}
	// A success gives the address its token back and forgets the user's
	// failures.
	now = now.Add(loginRefill)
	if !l.ok(t, user, ip) {
		t.Fatal("refilled token refused")
	}
	if err := l.succeeded(ctx, user, ip); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < loginBurst; i++ {
		if !l.ok(t, user, ip) {
			t.Fatalf("attempt %d after a success refused", i+1)
		}
	}
	// An attempt that could not be checked (lookup error) costs nothing.
	now = now.Add(loginRefill)
	if !l.ok(t, user, ip) {
		t.Fatal("refilled token refused")
	}
	if err := l.refund(ctx, user, ip); err != nil {
		t.Fatal(err)
	}
	if !l.ok(t, user, ip) {
		t.Fatal("refunded token refused")
	}
	// Per address: ipBurst attempts across many usernames, then no more.
	l2 := newLoginLimiter(authstore.NewMemoryThrottle())
	l2.now = l.now
	n := 0
	for i := 0; i < 2*ipBurst; i++ {
		u, ip := loginKeys("192.0.2.9", fmt.Sprint("user", i))
		if l2.ok(t, u, ip) {
			n++
		}
	}
	if n != ipBurst {
		t.Errorf("per-address attempts in flight: %d, want %d", n, ipBurst)
	}
}

// TestLoginThrottleKeysAreBounded: the throttle keeps a bucket per
// username tried, so an address that is already throttled must not add
// buckets, and a bucket's key must not grow with the username (a 16 KiB
// form per try, 50,000 buckets: most of a gigabyte).
func TestLoginThrottleKeysAreBounded(t *testing.T) {
	long := strings.Repeat("x", 16<<10)
	userKey, ipKey := loginKeys("192.0.2.1", long)
	if len(userKey) > 128 || len(ipKey) > 64 {
		t.Errorf("throttle keys of %d and %d bytes", len(userKey), len(ipKey))
	}
	if a, _ := loginKeys("192.0.2.1", "alice"); a == userKey {
		t.Error("two usernames share a bucket")
	}
	th := authstore.NewMemoryThrottle()
	l := newLoginLimiter(th)
	for i := 0; l.ok(t, keys("192.0.2.1", fmt.Sprint("user", i))...); i++ {
	}
	n := th.Len()
	for i := 0; i < 100; i++ {
		l.ok(t, keys("192.0.2.1", fmt.Sprint("other", i))...)
	}
	if th.Len() != n {
		t.Errorf("a throttled address added %d buckets", th.Len()-n)
	}
}

func keys(ip, user string) []string {
	u, i := loginKeys(ip, user)
	return []string{u, i}
}
