package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	bolt "go.etcd.io/bbolt"
)

// provision provisions h in a fresh Caddy context, as Caddy does: on a
// Provision error it calls Cleanup, as caddy.Context.LoadModule does.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		if cerr := h.Cleanup(); cerr != nil {
			t.Errorf("Cleanup after failed Provision: %v", cerr)
		}
		return err
	}
	if err := h.Validate(); err != nil {
		_ = h.Cleanup()
		return err
	}
	return nil
}

func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(dir, "m.bolt")
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"artifacts_only without serving", Handler{ArtifactsOnly: true, ServeArtifacts: boolPtr(false)}, "artifacts_only requires serve_artifacts"},
		{"artifacts_only with backend", Handler{ArtifactsOnly: true, BackendStoreURI: bp}, "backend_store_uri cannot be used with artifacts_only"},
		{"s3 destination", Handler{BackendStoreURI: bp, ArtifactsDestination: "s3://bucket/x"}, "s3:// artifact storage is not supported yet"},
		{"gcs_endpoint without gs", Handler{BackendStoreURI: bp, GCSEndpoint: "http://127.0.0.1:1"}, "needs a gs:// artifacts_destination"},
		{"sqlite backend", Handler{BackendStoreURI: "sqlite:///mlflow.db"}, "sqlite databases are not supported yet"},
		{"mysql backend", Handler{BackendStoreURI: "mysql://u:p@localhost/mlflow"}, "mysql databases are not supported yet"},
		{"postgres settings with bbolt", Handler{BackendStoreURI: bp, Postgres: &PostgresConfig{MaxConns: 4}}, "postgres settings need a PostgreSQL backend_store_uri"},
		{"negative max_conns", Handler{BackendStoreURI: "postgresql://u@localhost/mlflow", Postgres: &PostgresConfig{MaxConns: -1}}, "max_conns must not be negative"},
		{"bad postgres uri", Handler{BackendStoreURI: "postgresql://u:p@localhost:port/mlflow"}, "parsing PostgreSQL URI"},
		{"negative upload size", Handler{BackendStoreURI: bp, MaxUploadSize: -1}, "max_upload_size must not be negative"},
		{"negative timeout", Handler{BackendStoreURI: bp, OpenTimeout: -1}, "open_timeout must not be negative"},
		{"negative otlp spans", Handler{BackendStoreURI: bp, OTLP: &OTLPConfig{MaxSpans: -1}}, "OTLP limit max_spans -1 is out of range"},
		{"absurd otlp body", Handler{BackendStoreURI: bp, OTLP: &OTLPConfig{MaxBodySize: 1 << 40}}, "OTLP limit max_body_size 1099511627776 is out of range"},
		{"tiny otlp body", Handler{BackendStoreURI: bp, OTLP: &OTLPConfig{MaxBodySize: 100}}, "must be between 1024 and 1073741824"},
		{"absurd otlp nesting", Handler{BackendStoreURI: bp, OTLP: &OTLPConfig{MaxNesting: 1000}}, "max_nesting 1000"},
		{"absurd otlp values", Handler{BackendStoreURI: bp, OTLP: &OTLPConfig{MaxAttributeValues: 1 << 30}}, "max_attribute_values"},
		{"backend under a file", Handler{BackendStoreURI: filepath.Join(notADir, "m.bolt")}, "creating directory of backend store"},
		{"artifacts under a file", Handler{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(notADir, "arts")}, "artifacts_destination"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := provision(t, &h)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "mlflow: ") {
				t.Errorf("error %q lacks the mlflow: prefix", err)
			}
			if n := dbReferences(bp); n != 0 {
				t.Errorf("a failed Provision left %d references to %s", n, bp)
			}
		})
	}
}

func TestProvisionDefaultsAndCleanup(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "sub", "m.bolt")
	arts := filepath.Join(dir, "arts")
	h := &Handler{BackendStoreURI: "bbolt://" + bp, ArtifactsDestination: arts}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	if h.boltPath != bp || h.artifactsDir != arts || h.artifactRoot != DefaultServedArtifactRoot {
		t.Fatalf("resolved %q %q %q", h.boltPath, h.artifactsDir, h.artifactRoot)
	}
	if h.MLflowVersion != DefaultMLflowVersion || time.Duration(h.OpenTimeout) != DefaultOpenTimeout {
		t.Fatalf("defaults not applied: %q %s", h.MLflowVersion, time.Duration(h.OpenTimeout))
	}
	if _, err := os.Stat(bp); err != nil {
		t.Fatalf("bolt file not created: %v", err)
	}
	if n := dbReferences(bp); n != 1 {
		t.Fatalf("references = %d, want 1", n)
	}

	// The handler answers /health and /version through Caddy's interface.
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/version", nil), nil); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != DefaultMLflowVersion {
		t.Fatalf("/version = %d %q", rec.Code, rec.Body.String())
	}

	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := dbReferences(bp); n != 0 {
		t.Fatalf("references after Cleanup = %d, want 0", n)
	}
	// A second Cleanup is a no-op.
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	// The file lock was released: bbolt can open the file again at once.
	db, err := bolt.Open(bp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt file still locked after Cleanup: %v", err)
	}
	_ = db.Close()
}

// TestFailedProvisionKeepsOtherHandle: a handler whose Provision fails,
// before or after it has acquired the shared database, must not release
// the reference another handler holds on the same file.
func TestFailedProvisionKeepsOtherHandle(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "m.bolt")
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := &Handler{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(dir, "arts")}
	if err := provision(t, first); err != nil {
		t.Fatal(err)
	}
	defer first.Cleanup()

	failures := []Handler{
		// Fails before acquiring the database.
		{BackendStoreURI: bp, ArtifactsDestination: "s3://bucket"},
		// Fails after acquiring it (the artifacts directory cannot be made).
		{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(notADir, "arts")},
	}
	for i := range failures {
		h := failures[i]
		if err := provision(t, &h); err == nil {
			t.Fatalf("failure %d: Provision succeeded", i)
		}
		if err := h.Cleanup(); err != nil { // a stray extra Cleanup is harmless too
			t.Fatal(err)
		}
		if n := dbReferences(bp); n != 1 {
			t.Fatalf("failure %d: references = %d, want 1 (the first handler's)", i, n)
		}
	}

	// The first handler's database is still open and usable.
	shared, err := acquireDB(bp, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseDB(bp)
	if err := shared.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatalf("shared database closed: %v", err)
	}
}

// TestTwoHandlersShareOneDB: two handlers on one file (a reload, or two
// sites) share one open database; the file is closed when the last one is
// cleaned up.
func TestTwoHandlersShareOneDB(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "m.bolt")
	a := &Handler{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(dir, "arts")}
	b := &Handler{BackendStoreURI: "bbolt://" + bp, ArtifactsDestination: filepath.Join(dir, "arts")}
	done := make(chan error, 1)
	go func() {
		if err := provision(t, a); err != nil {
			done <- err
			return
		}
		done <- provision(t, b)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("provisioning a second handler on the same file blocked")
	}
	if n := dbReferences(bp); n != 2 {
		t.Fatalf("references = %d, want 2", n)
	}
	_ = a.Cleanup()
	if n := dbReferences(bp); n != 1 {
		t.Fatalf("references = %d, want 1", n)
	}
	_ = b.Cleanup()
	if n := dbReferences(bp); n != 0 {
		t.Fatalf("references = %d, want 0", n)
	}
}

// TestLockedByAnotherOpener: a bbolt file locked elsewhere makes Provision
// fail after open_timeout with a message that says why.
func TestLockedByAnotherOpener(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "m.bolt")
	db, err := bolt.Open(bp, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := &Handler{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(dir, "arts"), OpenTimeout: caddy.Duration(200 * time.Millisecond)}
	start := time.Now()
	err = provision(t, h)
	if err == nil || !strings.Contains(err.Error(), "waiting for its file lock") {
		t.Fatalf("Provision error = %v, want a lock timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Provision took %s despite open_timeout 200ms", d)
	}
	if n := dbReferences(bp); n != 0 {
		t.Fatalf("references = %d, want 0", n)
	}
}

func TestArtifactsOnlyOpensNoStore(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	h := &Handler{ArtifactsOnly: true, ArtifactsDestination: filepath.Join(dir, "arts")}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	if h.acquired || h.boltPath != "" {
		t.Fatalf("artifacts_only acquired a store: %q", h.boltPath)
	}
	if _, err := os.Stat(filepath.Join(wd, "mlflow.bolt")); err == nil {
		t.Fatal("artifacts_only created ./mlflow.bolt")
	}
}
