package copystore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

func newBolt(t *testing.T, path string) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateExperiment(context.Background(), tracking.CreateExperiment{Name: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.bolt"), filepath.Join(dir, "sub", "dst.bolt")
	newBolt(t, src)
	cfg := Config{From: src, To: dst, LockTimeout: 200 * time.Millisecond}

	// Another holder of the source's lock (a server).
	db, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, cfg)
	db.Close()
	if err == nil || !strings.Contains(err.Error(), "the source store "+src+" is in use") || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("source in use: %v", err)
	}

	var out, errOut strings.Builder
	cfg.Stdout, cfg.Stderr = &out, &errOut
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "experiments       1            1     ok") {
		t.Fatalf("report:\n%s", out.String())
	}
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "already holds records") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("non-empty destination: %v", err)
	}
	cfg.Force = true
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := Run(ctx, Config{From: src, To: "bbolt://" + src}); err == nil || !strings.Contains(err.Error(), "name the same store") {
		t.Fatalf("onto itself: %v", err)
	}
	if _, err := Run(ctx, Config{From: filepath.Join(dir, "missing.bolt"), To: dst}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing source: %v", err)
	}
}

func TestRunInterrupted(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.bolt"), filepath.Join(dir, "dst.bolt")
	newBolt(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{From: src, To: dst})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("interrupted copy: %v", err)
	}
}

// TestRunAuthForce: with --force a user the destination already has is
// replaced by the source's (hash, admin flag, tokens); other users stay.
func TestRunAuthForce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.bolt"), filepath.Join(dir, "dst.bolt")
	tok := ""
	for _, p := range []struct {
		path, hash string
		extra      bool
	}{{src, "hash-from-source", false}, {dst, "hash-in-destination", true}} {
		s, err := boltstore.Open(p.path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := boltauth.New(s.DB())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateUser(ctx, "erin", []byte(p.hash), !p.extra); err != nil {
			t.Fatal(err)
		}
		if p.extra {
			if _, err := a.CreateUser(ctx, "frank", nil, false); err != nil {
				t.Fatal(err)
			}
		} else if tok, _, err = a.CreateToken(ctx, "erin", "ci", 0); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if _, err := Run(ctx, Config{From: src, To: dst}); err == nil || !strings.Contains(err.Error(), "already holds records") {
		t.Fatalf("a destination with users: %v", err)
	}
	rep, err := Run(ctx, Config{From: src, To: dst, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source.Users != 1 || rep.Destination.Users != 2 || rep.Source.Tokens != 1 || rep.Destination.Tokens != 1 {
		t.Fatalf("counts: source %+v, destination %+v", rep.Source, rep.Destination)
	}
	s, err := boltstore.Open(dst, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := boltauth.New(s.DB())
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.GetUser(ctx, "erin")
	if err != nil || string(u.PasswordHash) != "hash-from-source" || !u.IsAdmin {
		t.Fatalf("erin after the forced copy: %+v, %v", u, err)
	}
	if rec, err := a.LookupToken(ctx, authn.HashToken(tok)); err != nil || rec.Username != "erin" {
		t.Fatalf("erin's token: %+v, %v", rec, err)
	}
	if _, err := a.GetUser(ctx, "frank"); err != nil {
		t.Fatalf("frank is gone: %v", err)
	}
}
