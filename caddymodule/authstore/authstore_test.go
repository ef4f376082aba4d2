package authstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
)

func open(t *testing.T) *Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "a.bolt"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsersTokensGrants(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.CreateUser(ctx, "bob", []byte("$2a$hash"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "bob", nil, false); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	if _, err := s.LookupUser(ctx, "nobody"); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.EnsureAdmin(ctx, "root", []byte("$2a$root")); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.LookupUser(ctx, "root"); !u.Admin {
		t.Fatal("bootstrap admin is not admin")
	}

	tok, rec, err := s.CreateToken(ctx, "bob", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupToken(ctx, authn.HashToken(tok))
	if err != nil || got.Username != "bob" || got.ID != rec.ID || got.Revoked {
		t.Fatalf("LookupToken = %+v, %v", got, err)
	}
	if err := s.RevokeToken(ctx, "carol", rec.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking someone else's token: %v", err)
	}
	if err := s.RevokeToken(ctx, "bob", rec.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LookupToken(ctx, authn.HashToken(tok)); !got.Revoked {
		t.Fatal("token not revoked")
	}
	if _, _, err := s.CreateToken(ctx, "nobody", "", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for unknown user: %v", err)
	}

	if err := s.CreateGrant(ctx, Experiment, "1", "bob", "EDIT"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGrant(ctx, Experiment, "1", "bob", "READ"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate grant: %v", err)
	}
	if err := s.CreateGrant(ctx, Experiment, "1", "nobody", "READ"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("grant to unknown user: %v", err)
	}
	if l, ok, _ := s.Permission(ctx, Experiment, "1", "bob"); !ok || l != "EDIT" {
		t.Fatalf("Permission = %q %v", l, ok)
	}
	// "1" and "10" must not collide.
	if _, ok, _ := s.Permission(ctx, Experiment, "10", "bob"); ok {
		t.Fatal("grant leaked to another experiment")
	}
	if err := s.CreateGrant(ctx, RegisteredModel, "m", "bob", "MANAGE"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameResource(ctx, RegisteredModel, "m", "m2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Permission(ctx, RegisteredModel, "m2", "bob"); !ok {
		t.Fatal("grant did not follow the rename")
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Permission(ctx, Experiment, "1", "bob"); ok {
		t.Fatal("grant survived its user")
	}
	if _, err := s.LookupToken(ctx, authn.HashToken(tok)); !errors.Is(err, ErrNotFound) {
		t.Fatal("token survived its user")
	}
}
