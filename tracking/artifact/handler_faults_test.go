package artifact_test

import (
	"context"
	"encoding/json"
	"errors"
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

// brokenBody yields some bytes, then fails as a body cut by Caddy's
// read_body_idle timeout or a dropped connection does.
type brokenBody struct{ sent bool }

func (b *brokenBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "partial upload "), nil
	}
	return 0, errors.New("read tcp: i/o timeout")
}

func (b *brokenBody) Close() error { return nil }

// TestHandlerBrokenRequestBody: when reading the client's upload body
// fails, the answer is 400 BAD_REQUEST, nothing is stored, and no storage
// failure is logged.
func TestHandlerBrokenRequestBody(t *testing.T) {
	l, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	h := artifact.NewHandler(l, artifact.HandlerOptions{Logger: zap.New(core)})
	r := httptest.NewRequest(http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/big.bin", nil)
	r.Body = &brokenBody{}
	r.ContentLength = 1 << 20
	w := httptest.NewRecorder()
	h.ServeArtifacts(w, r, "/artifacts/1/r/artifacts/big.bin")
	var e struct {
		Code string `json:"error_code"`
	}
	if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code != "BAD_REQUEST" {
		t.Fatalf("PUT with a broken body = %d %s, want 400 BAD_REQUEST", w.Code, w.Body)
	}
	if logs.Len() != 0 {
		t.Fatalf("logged %v, want no storage failure", logs.All())
	}
	if _, err := l.Open(context.Background(), "1/r/artifacts/big.bin"); err == nil {
		t.Fatal("a partial upload was stored")
	}
}
