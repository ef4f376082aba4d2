package caddymodule_test

// Online import end to end: a real Caddy with its admin endpoint serves a
// bbolt store; `caddy mlflow import --config` finds the store locked and
// runs the import in the server through the admin API, while the server
// keeps answering the REST API.

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// TestOnlineImport imports the MLflow fixtures into a running server:
// cancelled by the client after two runs (the server stops, the two runs
// are served at once), resumed to completion across a config reload
// (checked field by field and
// artifact by hash against the manifest, on the server's own store while
// it serves), then run again (nothing new).
func TestOnlineImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts caddy")
	}
	opts := caddytest.Options{Admin: true, Backend: caddytest.BackendBolt}
	srv := caddytest.Start(t, opts)
	cfg := filepath.Join(srv.Dir, "caddy.json")
	if err := os.WriteFile(cfg, srv.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	// The source is a copy, as a user's mlruns/ would be, given relative
	// to the CLI's directory (the server's directory differs).
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "mlruns"), os.DirFS(filepath.Join(importtest.Dir(t), "mlruns"))); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	man := importtest.Load(t, "manifest-file.json")

	// 1. Interrupted: the hook holds the server-side import after the
	// second run until the client has gone away.
	reached := make(chan struct{})
	var once sync.Once
	serverStopped := make(chan error, 1)
	caddymodule.SetImportHook(func(ctx context.Context, phase string, c storecopy.Counts) {
		if c.Runs < 2 {
			return
		}
		once.Do(func() {
			close(reached)
			select {
			case <-ctx.Done():
				serverStopped <- nil
			case <-time.After(30 * time.Second):
				serverStopped <- context.DeadlineExceeded
			}
		})
	})
	t.Cleanup(func() { caddymodule.SetImportHook(nil) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-reached; cancel() }()
	var out, errOut bytes.Buffer
	err := caddymodule.ImportThroughAdmin(ctx, cfg, "mlruns", false, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("cancelled import: %v\n%s%s", err, out.String(), errOut.String())
	}
	if err := <-serverStopped; err != nil {
		t.Fatal("the server did not see the client go away")
	}
	if !strings.Contains(errOut.String(), "(running server, admin API") {
		t.Fatalf("progress output:\n%s", errOut.String())
	}
	// The runs imported before the cancel are served at once.
	served := 0
	for _, r := range man.Runs {
		if code := srv.JSON(t, "GET", "/api/2.0/mlflow/runs/get?run_id="+r.ID, nil, nil); code == 200 {
			served++
		}
	}
	if served < 2 || served == len(man.Runs) {
		t.Fatalf("after the cancel %d of %d runs are served, want at least 2 and not all", served, len(man.Runs))
	}

	// 2. Resumed, with a config reload in the middle (the old handler is
	// cleaned up while the import runs): completes; the store matches the
	// manifest while the server runs.
	reloadAt, reloaded := make(chan struct{}), make(chan error, 1)
	var once2 sync.Once
	caddymodule.SetImportHook(func(ctx context.Context, phase string, c storecopy.Counts) {
		if c.Runs < 1 {
			return
		}
		once2.Do(func() {
			close(reloadAt)
			select {
			case err := <-reloaded:
				reloaded <- err
			case <-time.After(30 * time.Second):
			}
		})
	})
	go func() {
		<-reloadAt
		reloaded <- srv.TryReload(opts)
	}()
	out.Reset()
	errOut.Reset()
	if err := caddymodule.ImportThroughAdmin(context.Background(), cfg, "mlruns", false, &out, &errOut); err != nil {
		t.Fatalf("resumed import: %v\n%s%s", err, out.String(), errOut.String())
	}
	if err := <-reloaded; err != nil {
		t.Fatalf("reload during the import: %v", err)
	}
	caddymodule.SetImportHook(nil)
	t.Logf("resumed import:\n%s%s", errOut.String(), out.String())
	if !strings.Contains(out.String(), "problems: 0") || !strings.Contains(errOut.String(), "import: done in") {
		t.Fatalf("resumed import output:\n%s%s", errOut.String(), out.String())
	}
	live := caddymodule.LiveStore(srv.BoltPath)
	if live == nil {
		t.Fatal("no running handler for the store")
	}
	importtest.Check(t, live, man, srv.ArtifactsDir)
	for _, r := range man.Runs {
		var got struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		if code := srv.JSON(t, "GET", "/api/2.0/mlflow/runs/get?run_id="+r.ID, nil, &got); code != 200 || got.Run.Info.RunID != r.ID {
			t.Fatalf("run %s through the REST API: %d %+v", r.ID, code, got)
		}
	}

	// 3. Again: nothing new.
	out.Reset()
	errOut.Reset()
	if err := caddymodule.ImportThroughAdmin(context.Background(), cfg, "mlruns", false, &out, &errOut); err != nil {
		t.Fatalf("second import: %v\n%s%s", err, out.String(), errOut.String())
	}
	want := "skipped (already imported): " + strconv.Itoa(len(man.Runs)) + " runs"
	if !strings.Contains(out.String(), want) || regexp.MustCompile(`(?m)^\s*runs\s+\d`).MatchString(out.String()) {
		t.Fatalf("second import, want %q:\n%s", want, out.String())
	}

	// An http(s) source is refused: the server does not fetch from other
	// servers with its own identity.
	var hits atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer remote.Close()
	err = caddymodule.ImportThroughAdmin(context.Background(), cfg, remote.URL, false, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "does not fetch from other servers") || hits.Load() != 0 {
		t.Fatalf("online import from %s: %v (%d requests reached it)", remote.URL, err, hits.Load())
	}

	// A store no running handler uses is refused by the server.
	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, bytes.ReplaceAll(srv.Config, []byte(srv.BoltPath), []byte(filepath.Join(t.TempDir(), "x.bolt"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := caddymodule.ImportThroughAdmin(context.Background(), other, "mlruns", false, &out, &errOut); err == nil {
		t.Fatal("an import into a store nobody holds went online")
	}
}
