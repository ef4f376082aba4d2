package caddymodule

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// TestMultipartKeyFromPostgres: without a multipart_key_file, a handler on
// PostgreSQL signs multipart uploads with the key stored in the database,
// the one every replica reads, not a key of its own process.
func TestMultipartKeyFromPostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	h := &Handler{BackendStoreURI: uri, ArtifactsDestination: t.TempDir()}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	ctx := context.Background()
	got, err := h.multipartSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Read back through a pool of our own, as another replica would.
	pool, err := pgdb.Open(ctx, uri, pgdb.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgauth.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.MultipartSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !bytes.Equal(got, stored) {
		t.Fatalf("handler's key (%d bytes) is not the database's (%d bytes)", len(got), len(stored))
	}

	// A key file still wins.
	keyFile := filepath.Join(t.TempDir(), "mpu.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k3y-file-", 5)), 0o600); err != nil {
		t.Fatal(err)
	}
	h.Uploads = &UploadsConfig{MultipartKeyFile: keyFile}
	fromFile, err := h.multipartSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fromFile, stored) {
		t.Fatal("multipart_key_file ignored on PostgreSQL")
	}
}
