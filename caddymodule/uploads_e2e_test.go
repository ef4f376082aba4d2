package caddymodule_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// keyDirective is the uploads block naming a key file.
func keyDirective(file string) []string {
	return []string{"uploads {\n\t\t\tmultipart_key_file " + file + "\n\t\t}"}
}

// TestMultipartKeyFileSurvivesRestart: with uploads { multipart_key_file },
// the part URLs and upload id handed out before a restart still work after
// it, and the upload completes under MLflow's image name. A server with
// another key refuses them (403), which shows the signatures come from the
// file and not from a key the test process happens to keep.
func TestMultipartKeyFileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	keyFile, otherKey := filepath.Join(dir, "mpu.key"), filepath.Join(dir, "other.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("s3cr3t-", 8)+"\n"), 0o600)
	_ = os.WriteFile(otherKey, []byte(strings.Repeat("0ther-", 8)), 0o600)
	opts := caddytest.Options{Directives: keyDirective(keyFile)}
	srv := caddytest.Start(t, opts)
	artDir := "0/r1/artifacts/images"
	local := "/tmp/dog%step%10%timestamp%1733400000000%0a1b.png"
	cr, err := artifacttest.Create(srv.Client(), srv.URL, artDir, local, 2)
	if err != nil {
		t.Fatal(err)
	}
	e1, err := artifacttest.PutPart(cr.Credentials[0], []byte("first part "))
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart(t, caddytest.Options{Directives: keyDirective(otherKey)})
	var se *artifacttest.StatusError
	if _, err := artifacttest.PutPart(cr.Credentials[1], []byte("second part")); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("part URL on a server with another key: %v, want 403", err)
	}
	parts := []artifacttest.PartResult{{PartNumber: 1, ETag: e1}}
	if err := artifacttest.Complete(srv.Client(), srv.URL, artDir, local, cr.UploadID, parts); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("upload id on a server with another key: %v, want 404", err)
	}

	srv.Restart(t, opts)
	e2, err := artifacttest.PutPart(cr.Credentials[1], []byte("second part"))
	if err != nil {
		t.Fatalf("part URL after a restart with the key file: %v", err)
	}
	parts = append(parts, artifacttest.PartResult{PartNumber: 2, ETag: e2})
	if err := artifacttest.Complete(srv.Client(), srv.URL, artDir, local, cr.UploadID, parts); err != nil {
		t.Fatalf("complete after a restart: %v", err)
	}
	resp, body := srv.Do(t, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts/"+artifacttest.EscapeStrict(artDir+"/dog%step%10%timestamp%1733400000000%0a1b.png"), nil)
	if resp.StatusCode != 200 || string(body) != "first part second part" {
		t.Fatalf("assembled file = %d %q", resp.StatusCode, body)
	}
}

// TestMultipartKeyFileErrors: a missing or short key file stops the
// server from starting, with a message that says how to make one.
func TestMultipartKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	_ = os.WriteFile(short, []byte("tooshort"), 0o600)
	srv := caddytest.Start(t, caddytest.Options{})
	for file, want := range map[string]string{short: "at least 32", filepath.Join(dir, "missing.key"): "no such file"} {
		err := srv.TryReload(caddytest.Options{Directives: keyDirective(file)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("key file %s: %v, want %q", file, err, want)
		}
	}
}

// TestSweepOnStartThroughCaddy: a server started over a directory that a
// killed server left with a full-size temporary upload file and an
// abandoned multipart staging area removes both at start-up, keeping
// young ones; listings never showed them.
func TestSweepOnStartThroughCaddy(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	srv.Stop()
	old := time.Now().Add(-25 * time.Hour)
	write := func(rel string, size int, mtime time.Time) string {
		p := filepath.Join(srv.ArtifactsDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o640); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, mtime, mtime)
		return p
	}
	stale := write("1/r/artifacts/.mlflow-upload-00112233aabbccdd", 2<<20, old)
	young := write("1/r/artifacts/.mlflow-upload-ffeeddccbbaa9988", 10, time.Now())
	staged := write(".mlflow-upload-mpu/"+strings.Repeat("a", 32)+"/1.0123", 100, old)
	_ = os.Chtimes(filepath.Dir(staged), old, old)
	srv.Restart(t, caddytest.Options{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, e1 := os.Stat(stale)
		_, e2 := os.Stat(filepath.Dir(staged))
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after start-up: stale temp %v, staging area %v; want both removed", e1, e2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a young temporary file was removed: %v", err)
	}
	list := call(t, srv, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts?path=1/r/artifacts", nil, 200)
	if len(list) != 0 {
		t.Fatalf("listing shows %v", list)
	}
}
