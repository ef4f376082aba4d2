package artifact_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// fullDisk is a Local store whose part and file writes fail, after
// reading the body, as on a full file system.
type fullDisk struct {
	*artifact.Local
	err error
}

func (f fullDisk) Put(_ context.Context, _ string, r io.Reader) error {
	_, _ = io.Copy(io.Discard, r)
	return f.err
}

func (f fullDisk) PutPart(_ context.Context, _ string, _ int, r io.Reader) (string, error) {
	_, _ = io.Copy(io.Discard, r)
	return "", f.err
}

// TestHandlerStorageFaults: a full disk on an upload or a multipart part
// answers 507 RESOURCE_EXHAUSTED and is logged with the artifact (or
// upload and part), the bytes received and the cause; a permission error is
// a detail-free 500, logged the same way.
func TestHandlerStorageFaults(t *testing.T) {
	for _, c := range []struct {
		errno  syscall.Errno
		status int
		code   string
	}{
		{syscall.ENOSPC, 507, "RESOURCE_EXHAUSTED"},
		{syscall.EDQUOT, 507, "RESOURCE_EXHAUSTED"},
		{syscall.EACCES, 500, "INTERNAL_ERROR"},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			local, err := artifact.NewLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close()
			store := fullDisk{local, &fs.PathError{Op: "write", Path: "/srv/secret/x", Err: c.errno}}
			core, logs := observer.New(zap.ErrorLevel)
			h := artifact.NewHandler(store, artifact.HandlerOptions{Logger: zap.New(core)})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeArtifacts(w, r, strings.TrimPrefix(r.URL.EscapedPath(), "/api/2.0/mlflow-artifacts"))
			}))
			defer srv.Close()
			check := func(what string, resp *http.Response, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var e struct {
					Code string `json:"error_code"`
				}
				if resp.StatusCode != c.status || json.Unmarshal(b, &e) != nil || e.Code != c.code || strings.Contains(string(b), "/srv") {
					t.Fatalf("%s = %d %s, want %d %s", what, resp.StatusCode, b, c.status, c.code)
				}
			}
			req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/images/dog%25step%2510.png", strings.NewReader("0123456789"))
			resp, err := http.DefaultClient.Do(req)
			check("PUT", resp, err)
			cr, err := artifacttest.Create(http.DefaultClient, srv.URL, "1/r/artifacts", "/tmp/big.bin", 1)
			if err != nil {
				t.Fatal(err)
			}
			preq, _ := http.NewRequest(http.MethodPut, cr.Credentials[0].URL, strings.NewReader("part-bytes"))
			resp, err = http.DefaultClient.Do(preq)
			check("part PUT", resp, err)

			var put, part bool
			for _, e := range logs.All() {
				f := e.ContextMap()
				if !strings.Contains(f["error"].(string), c.errno.Error()) || f["bytes_received"] != int64(10) {
					continue
				}
				put = put || f["artifact"] == "1/r/artifacts/images/dog%step%10.png"
				part = part || f["part"] == int64(1)
			}
			if !put || !part {
				for _, e := range logs.All() {
					t.Logf("%s %v", e.Message, e.ContextMap())
				}
				t.Fatalf("logged: put %v, part %v", put, part)
			}
		})
	}
}
