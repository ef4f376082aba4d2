package pgauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/authstoretest"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

func pool(t *testing.T, uri string) *pgxpool.Pool {
	t.Helper()
	p, err := pgdb.Open(context.Background(), uri, pgdb.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// open gives two stores on two pools of one fresh database: two replicas.
func open(t *testing.T) (authstore.Store, authstore.Store) {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	a, err := pgauth.New(context.Background(), pool(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pgauth.New(context.Background(), pool(t, uri))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestSuite(t *testing.T) {
	authstoretest.Run(t, open, authstoretest.Options{})
}

// TestSharedKeyGetOrCreate: replicas asking for the multipart signing key
// at once all get the one stored key.
func TestSharedKeyGetOrCreate(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	var stores []*pgauth.Store
	for range 3 {
		s, err := pgauth.New(ctx, pool(t, uri))
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	keys := make([][]byte, 12)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := stores[i%len(stores)].MultipartSigningKey(ctx)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	if len(keys[0]) != 48 {
		t.Fatalf("key of %d bytes", len(keys[0]))
	}
	for i, k := range keys {
		if !bytes.Equal(k, keys[0]) {
			t.Fatalf("replica call %d got another key", i)
		}
	}
	other, err := stores[0].Key(ctx, "other", 32)
	if err != nil || bytes.Equal(other, keys[0][:32]) {
		t.Fatalf("a second key name shares the first key: %v", err)
	}
}

// TestMigrationsRecordVersion: the gateway schema has its own version
// table, and a second New on a migrated database changes nothing.
func TestMigrationsRecordVersion(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	p := pool(t, uri)
	for range 2 {
		if _, err := pgauth.New(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	v, err := pgdb.SchemaVersion(ctx, p, pgauth.Component)
	if err != nil || v != 1 {
		t.Fatalf("gateway schema version %d (%v), want 1", v, err)
	}
	if _, err := p.Exec(ctx, "UPDATE gateway_schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if _, err := pgauth.New(ctx, p); !errors.Is(err, pgdb.ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestThrottleSweepsFullBuckets: refused attempts add no rows, and
// buckets that have refilled are deleted.
func TestThrottleSweepsFullBuckets(t *testing.T) {
	a, _ := open(t)
	ctx := context.Background()
	th := a.Throttle()
	now := time.Unix(1_700_000_000, 0)
	ip := authstore.Limit{Key: "ip", Burst: 2, Refill: time.Second}
	for i := 0; ; i++ {
		ok, err := th.Take(ctx, now, authstore.Limit{Key: fmt.Sprint("u", i), Burst: 5, Refill: time.Minute}, ip)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	n := pgauth.CountThrottle(t, a)
	for i := range 10 {
		_, _ = th.Take(ctx, now, authstore.Limit{Key: fmt.Sprint("x", i), Burst: 5, Refill: time.Minute}, ip)
	}
	if m := pgauth.CountThrottle(t, a); m != n {
		t.Fatalf("refused attempts added %d rows", m-n)
	}
	// Much later everything has refilled; the next call sweeps.
	later := now.Add(time.Hour)
	if ok, err := th.Take(ctx, later, authstore.Limit{Key: "late", Burst: 5, Refill: time.Minute}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if m := pgauth.CountThrottle(t, a); m != 1 {
		t.Fatalf("%d rows after the sweep, want 1 (the bucket just used)", m)
	}
}

// BenchmarkVerifyToken is the store's share of one API request
// authenticated by a token on PostgreSQL: the token and its user.
func BenchmarkVerifyToken(b *testing.B) {
	uri := pgtest.NewDatabase(b)
	ctx := context.Background()
	p, err := pgdb.Open(ctx, uri, pgdb.Options{MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	s, err := pgauth.New(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "bench", nil, false); err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.CreateToken(ctx, "bench", "", 0)
	if err != nil {
		b.Fatal(err)
	}
	tv, _ := authn.NewTokenVerifier(s, s, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tv.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestUnreachableDatabaseIsUnavailable: when the database cannot be
// reached, lookups fail with an error wrapping authstore.ErrUnavailable
// (the gateway answers a retryable 503), which authn reports as a lookup
// failure, never as bad credentials.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	a, _ := open(t)
	ctx := context.Background()
	if _, err := a.CreateUser(ctx, "bob", nil, false); err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.CreateToken(ctx, "bob", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s := pgauth.WithPool(a, dead)
	if _, err := s.LookupToken(ctx, authn.HashToken(tok)); !errors.Is(err, authstore.ErrUnavailable) {
		t.Fatalf("LookupToken on an unreachable database: %v", err)
	}
	tv, _ := authn.NewTokenVerifier(s, s, nil)
	if _, err := tv.Verify(ctx, tok); err == nil || errors.Is(err, authn.ErrInvalidCredentials) || !errors.Is(err, authstore.ErrUnavailable) {
		t.Fatalf("Verify on an unreachable database: %v", err)
	}
	if _, err := s.Throttle().Take(ctx, time.Now(), authstore.Limit{Key: "k", Burst: 1, Refill: time.Second}); !errors.Is(err, authstore.ErrUnavailable) {
		t.Fatalf("throttle on an unreachable database: %v", err)
	}
	if _, err := pgauth.New(ctx, dead); !errors.Is(err, authstore.ErrUnavailable) {
		t.Fatalf("New on an unreachable database: %v", err)
	}
	// A real query error is not "unavailable".
	if _, err := a.(*pgauth.Store).Key(ctx, "k", 0); err == nil || errors.Is(err, authstore.ErrUnavailable) {
		t.Fatalf("bad key size: %v", err)
	}
}
