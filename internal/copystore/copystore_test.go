package copystore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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
