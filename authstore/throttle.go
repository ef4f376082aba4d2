package authstore

import (
	"context"
	"sync"
	"time"
)

// Limit names one token bucket of the sign-in throttle and its shape: a
// full bucket holds Burst tokens and regains one every Refill.
type Limit struct {
	// Key identifies the bucket (at most a few hundred bytes; callers hash
	// what users type).
	Key string
	// Burst is the bucket's capacity.
	Burst float64
	// Refill is the time to regain one token.
	Refill time.Duration
}

// level is the bucket's level at now, refilled from tokens at last.
func (l Limit) level(tokens float64, last, now time.Time) float64 {
	if el := now.Sub(last); el > 0 && l.Refill > 0 {
		tokens += float64(el) / float64(l.Refill)
	}
	return min(l.Burst, tokens)
}

// Throttle keeps token buckets for the sign-in throttle. A bucket that
// has never been used is full. Implementations are safe for concurrent
// use; the PostgreSQL one is shared by every replica, so a username's
// lockout holds whichever replica the next attempt reaches.
type Throttle interface {
	// Take takes one token of every bucket if each has one at now and
	// reports whether it did; otherwise nothing changes (and no bucket is
	// created).
	Take(ctx context.Context, now time.Time, limits ...Limit) (bool, error)
	// Give puts one token back into every bucket (capped at Burst).
	Give(ctx context.Context, now time.Time, limits ...Limit) error
	// Forget drops the buckets of keys (they are full again).
	Forget(ctx context.Context, keys ...string) error
}

// MaxMemoryBuckets bounds a MemoryThrottle.
const MaxMemoryBuckets = 50_000

// MemoryThrottle is a Throttle in process memory, for a store one process
// owns. It holds at most MaxMemoryBuckets buckets: when full it drops the
// full ones, and if that is not enough, all of them.
type MemoryThrottle struct {
	mu sync.Mutex
	m  map[string]*memBucket
}

type memBucket struct {
	tokens float64
	last   time.Time
	limit  Limit
}

// NewMemoryThrottle returns an empty MemoryThrottle.
func NewMemoryThrottle() *MemoryThrottle {
	return &MemoryThrottle{m: make(map[string]*memBucket)}
}

// Len reports how many buckets are held (full ones may be among them).
func (t *MemoryThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// bucket refills and returns l's bucket, creating a full one; the caller
// holds mu.
func (t *MemoryThrottle) bucket(l Limit, now time.Time) *memBucket {
	b, ok := t.m[l.Key]
	if !ok {
		if len(t.m) >= MaxMemoryBuckets {
			t.sweep(now)
		}
		b = &memBucket{tokens: l.Burst, last: now, limit: l}
		t.m[l.Key] = b
		return b
	}
	b.tokens = l.level(b.tokens, b.last, now)
	b.last, b.limit = now, l
	return b
}

func (t *MemoryThrottle) sweep(now time.Time) {
	for k, b := range t.m {
		if b.limit.level(b.tokens, b.last, now) >= b.limit.Burst {
			delete(t.m, k)
		}
	}
	if len(t.m) >= MaxMemoryBuckets {
		clear(t.m)
	}
}

// Take implements Throttle.
func (t *MemoryThrottle) Take(_ context.Context, now time.Time, limits ...Limit) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range limits {
		if _, ok := t.m[l.Key]; ok && t.bucket(l, now).tokens < 1 {
			return false, nil
		}
	}
	for _, l := range limits {
		t.bucket(l, now).tokens--
	}
	return true, nil
}

// Give implements Throttle.
func (t *MemoryThrottle) Give(_ context.Context, now time.Time, limits ...Limit) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range limits {
		b := t.bucket(l, now)
		b.tokens = min(l.Burst, b.tokens+1)
	}
	return nil
}

// Forget implements Throttle.
func (t *MemoryThrottle) Forget(_ context.Context, keys ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.m, k)
	}
	return nil
}

var _ Throttle = (*MemoryThrottle)(nil)
