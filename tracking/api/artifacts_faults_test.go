package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// failingTracking fails LogParam with err, as a bbolt commit on a full
// disk does (wrapped by boltstore, or flattened to text by bbolt itself).
type failingTracking struct {
	tracking.Store
	err error
}

func (f failingTracking) LogParam(context.Context, string, tracking.Param) error { return f.err }

// failingArtifacts reads the whole upload, then fails as a full disk does.
type failingArtifacts struct {
	artifact.Store
	err error
}

func (f failingArtifacts) Put(_ context.Context, _ string, r io.Reader) error {
	_, _ = io.Copy(io.Discard, r)
	return f.err
}

// TestStorageFaults: a full disk or quota (ENOSPC, EDQUOT), on a tracking
// write or an artifact upload, answers 507 RESOURCE_EXHAUSTED with MLflow's
// error JSON and is logged with its cause; any other store failure (EACCES)
// is a 500 that reveals nothing and is logged with the artifact path and
// size.
func TestStorageFaults(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"ENOSPC", fmt.Errorf("boltstore: log param: %w", &fs.PathError{Op: "write", Path: "/data/mlflow.db", Err: syscall.ENOSPC}), 507, "RESOURCE_EXHAUSTED"},
		{"EDQUOT", &fs.PathError{Op: "write", Path: "/data/x", Err: syscall.EDQUOT}, 507, "RESOURCE_EXHAUSTED"},
		{"bbolt text", errors.New("boltstore: log param: file resize error: no space left on device"), 507, "RESOURCE_EXHAUSTED"},
		{"EACCES", &fs.PathError{Op: "open", Path: "/data/x", Err: syscall.EACCES}, 500, "INTERNAL_ERROR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zap.ErrorLevel)
			ts, _ := newTestServer(t, func(o *Options) {
				o.Logger = zap.New(core)
				o.Store = failingTracking{o.Store, c.err}
				o.Artifacts = failingArtifacts{o.Artifacts, c.err}
			})
			check := func(what string, resp *http.Response, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var e tracking.Error
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != c.status || json.Unmarshal(b, &e) != nil || string(e.Code) != c.code {
					t.Fatalf("%s = %d %s, want %d %s", what, resp.StatusCode, b, c.status, c.code)
				}
				if strings.Contains(string(b), "/data") {
					t.Fatalf("%s leaks the server's path: %s", what, b)
				}
				if c.status == 507 && !strings.Contains(e.Message, "storage is full") {
					t.Fatalf("%s message %q", what, e.Message)
				}
			}
			// Tracking write.
			var run struct {
				Run struct {
					Info struct {
						RunID       string `json:"run_id"`
						ArtifactURI string `json:"artifact_uri"`
					} `json:"info"`
				} `json:"run"`
			}
			resp, err := http.Post(ts.URL+"/api/2.0/mlflow/runs/create", "application/json", strings.NewReader(`{"experiment_id":"0"}`))
			if err != nil {
				t.Fatal(err)
			}
			_ = json.NewDecoder(resp.Body).Decode(&run)
			resp.Body.Close()
			id := run.Run.Info.RunID
			resp, err = http.Post(ts.URL+"/api/2.0/mlflow/runs/log-parameter", "application/json",
				strings.NewReader(`{"run_id":"`+id+`","key":"k","value":"v"}`))
			check("log-parameter", resp, err)
			// Artifact uploads: the proxy and the UI's upload.
			root := strings.TrimPrefix(run.Run.Info.ArtifactURI, "mlflow-artifacts:/")
			req, _ := http.NewRequest(http.MethodPut, ts.URL+"/api/2.0/mlflow-artifacts/artifacts/"+root+"/big.bin", strings.NewReader(strings.Repeat("x", 1000)))
			resp, err = http.DefaultClient.Do(req)
			check("mlflow-artifacts PUT", resp, err)
			resp, err = http.Post(ts.URL+"/ajax-api/2.0/mlflow/upload-artifact?run_uuid="+id+"&path=ui.txt", "text/plain", strings.NewReader("hello"))
			check("upload-artifact", resp, err)

			var sawArtifact, sawTracking, sawUI bool
			for _, e := range logs.All() {
				f := e.ContextMap()
				errText, _ := f["error"].(string)
				if !strings.Contains(errText, c.err.Error()) && !strings.Contains(errText, "/data/") {
					continue
				}
				switch {
				case f["artifact"] == root+"/big.bin" && f["bytes_received"] == int64(1000):
					sawArtifact = true
				case strings.Contains(errText, root+"/ui.txt") && strings.Contains(errText, "5 bytes"):
					sawUI = true
				case f["path"] == "/api/2.0/mlflow/runs/log-parameter":
					sawTracking = true
				}
			}
			if !sawArtifact || !sawTracking || !sawUI {
				for _, e := range logs.All() {
					t.Logf("log: %s %v", e.Message, e.ContextMap())
				}
				t.Fatalf("logged: artifact %v, tracking %v, upload-artifact %v; want all", sawArtifact, sawTracking, sawUI)
			}
		})
	}
}
