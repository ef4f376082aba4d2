package authn

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"
)

// credCache remembers recently verified Basic credentials. Keys are
// HMAC-SHA256(random per-process key, len(user) || user || password), so
// neither the plaintext nor an offline-crackable digest of it is held.
// Each entry also holds SHA-256 of the bcrypt hash it was verified against;
// a hit counts only if the user's current hash has the same digest, so a
// password change invalidates the entry without any explicit call.
// Eviction is LRU with a fixed capacity; entries expire after ttl.
type credCache struct {
	macPool sync.Pool // of hash.Hash keyed with the per-process key
	ttl     time.Duration
	max     int

	mu    sync.Mutex
	ll    *list.List // front = most recently used; values are *cacheEntry
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key     [32]byte
	hashSum [32]byte
	expires time.Time
}

func newCredCache(size int, ttl time.Duration) (*credCache, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("authn: generating cache key: %w", err)
	}
	c := &credCache{
		ttl:   ttl,
		max:   size,
		ll:    list.New(),
		items: make(map[[32]byte]*list.Element, size),
	}
	c.macPool.New = func() any { return hmac.New(sha256.New, key) }
	return c, nil
}

// cacheKey derives the entry key. The username is length-prefixed so that
// no (user, password) pair can collide with another by moving bytes across
// the boundary.
func (c *credCache) cacheKey(user, password string) [32]byte {
	m := c.macPool.Get().(hash.Hash)
	m.Reset()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(password))
	var out [32]byte
	m.Sum(out[:0])
	c.macPool.Put(m)
	return out
}

// hit reports whether key was verified against a bcrypt hash whose SHA-256
// is hashSum and has not expired.
func (c *credCache) hit(key, hashSum [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return false
	}
	e := el.Value.(*cacheEntry)
	if now.After(e.expires) || subtle.ConstantTimeCompare(e.hashSum[:], hashSum[:]) != 1 {
		c.ll.Remove(el)
		delete(c.items, key)
		return false
	}
	c.ll.MoveToFront(el)
	return true
}

func (c *credCache) add(key, hashSum [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.hashSum, e.expires = hashSum, now.Add(c.ttl)
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, hashSum: hashSum, expires: now.Add(c.ttl)})
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

func (c *credCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
}
