package boltauth_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/authstoretest"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
)

func open(t *testing.T) (authstore.Store, authstore.Store) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "a.bolt"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := boltauth.New(db)
	if err != nil {
		t.Fatal(err)
	}
	b, err := boltauth.New(db)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSuite(t *testing.T) {
	authstoretest.Run(t, open, authstoretest.Options{ProcessThrottle: true})
}

func TestNilDatabase(t *testing.T) {
	if _, err := boltauth.New(nil); err == nil {
		t.Fatal("nil database accepted")
	}
}

// TestThrottleKeysAreBounded: an address that is already throttled adds
// no buckets, whatever usernames it tries.
func TestThrottleKeysAreBounded(t *testing.T) {
	a, _ := open(t)
	th := a.Throttle().(*authstore.MemoryThrottle)
	ctx := context.Background()
	now := time.Now()
	ip := authstore.Limit{Key: "ip", Burst: 30, Refill: 2 * time.Second}
	for i := 0; ; i++ {
		ok, _ := th.Take(ctx, now, authstore.Limit{Key: fmt.Sprint("user", i), Burst: 5, Refill: 30 * time.Second}, ip)
		if !ok {
			break
		}
	}
	n := th.Len()
	for i := range 100 {
		_, _ = th.Take(ctx, now, authstore.Limit{Key: fmt.Sprint("other", i), Burst: 5, Refill: 30 * time.Second}, ip)
	}
	if th.Len() != n {
		t.Errorf("a throttled address added %d buckets", th.Len()-n)
	}
}
