package artifact

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newServer serves the handler under /api/2.0/mlflow-artifacts, handing it
// the escaped remainder as the API router does.
func newServer(t *testing.T, opts HandlerOptions) (*httptest.Server, *Local, string) {
	t.Helper()
	l, base := newLocal(t)
	h := NewHandler(l, opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/2.0/mlflow-artifacts")
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.ServeArtifacts(w, r, rest)
	}))
	t.Cleanup(srv.Close)
	return srv, l, base
}

// rawRequest sends a request line exactly as given (no client-side path
// normalisation) and returns the status and body.
func rawRequest(t *testing.T, srv *httptest.Server, method, target, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, target, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandlerRoutes(t *testing.T) {
	srv, _, _ := newServer(t, HandlerOptions{})
	base := "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
	if st, body := rawRequest(t, srv, "PUT", base+"/data/space%20name.txt", "spaces\n"); st != 200 || body != "{}" {
		t.Fatalf("PUT: %d %s", st, body)
	}
	if st, _ := rawRequest(t, srv, "PUT", base+"/empty.txt", ""); st != 200 {
		t.Fatalf("empty PUT: %d", st)
	}
	resp, err := http.Get(srv.URL + base + "/data/space%20name.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "spaces\n" || resp.Header.Get("Content-Type") != "text/plain" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("GET: %q %v", b, resp.Header)
	}
	// Range.
	req, _ := http.NewRequest("GET", srv.URL+base+"/data/space%20name.txt", nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(b) != "ace" || resp.Header.Get("Content-Range") != "bytes 2-4/7" {
		t.Fatalf("Range: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	st, body := rawRequest(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts?path=1%2Fr%2Fartifacts", "")
	var list struct {
		Files []map[string]any `json:"files"`
	}
	if err := json.Unmarshal([]byte(body), &list); st != 200 || err != nil || len(list.Files) != 2 {
		t.Fatalf("list: %d %s", st, body)
	}
	if list.Files[0]["path"] != "data" || list.Files[0]["is_dir"] != true || list.Files[1]["file_size"] != nil {
		t.Fatalf("list: %s", body)
	}
	if st, body := rawRequest(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts?path=nope", ""); st != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("list missing: %d %s", st, body)
	}
	if st, body := rawRequest(t, srv, "GET", base+"/missing.txt", ""); st != 404 || !strings.Contains(body, "RESOURCE_DOES_NOT_EXIST") {
		t.Fatalf("missing: %d %s", st, body)
	}
	if st, _ := rawRequest(t, srv, "GET", base+"/data", ""); st != 404 {
		t.Fatalf("directory download: %d", st)
	}
	if st, _ := rawRequest(t, srv, "DELETE", base+"/data", ""); st != 200 {
		t.Fatalf("DELETE: %d", st)
	}
	if st, _ := rawRequest(t, srv, "GET", base+"/data/space%20name.txt", ""); st != 404 {
		t.Fatalf("after delete: %d", st)
	}
	if st, _ := rawRequest(t, srv, "POST", base+"/x", ""); st != 405 {
		t.Fatalf("POST: %d", st)
	}
	// Local supports multipart uploads (multipart_test.go); a request
	// without num_parts is the client's mistake. The 501 of stores without
	// multipart support is in TestHandlerMultipartUnsupported.
	if st, body := rawRequest(t, srv, "POST", "/api/2.0/mlflow-artifacts/mpu/create/1/r", `{"path":"x"}`); st != 400 ||
		!strings.Contains(body, "INVALID_PARAMETER_VALUE") {
		t.Fatalf("mpu: %d %s", st, body)
	}
}

func TestHandlerMaxUploadSize(t *testing.T) {
	srv, l, _ := newServer(t, HandlerOptions{MaxUploadSize: 10})
	if st, _ := rawRequest(t, srv, "PUT", "/api/2.0/mlflow-artifacts/artifacts/a/ok", "0123456789"); st != 200 {
		t.Fatalf("at the cap: %d", st)
	}
	if st, _ := rawRequest(t, srv, "PUT", "/api/2.0/mlflow-artifacts/artifacts/a/big", "0123456789X"); st != 413 {
		t.Fatalf("over the cap: %d", st)
	}
	// Chunked body without Content-Length: stopped while streaming.
	req, _ := http.NewRequest("PUT", srv.URL+"/api/2.0/mlflow-artifacts/artifacts/a/chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 100))))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked over the cap: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "a", "big")); err == nil {
		t.Fatal("oversized upload left a file")
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "a", "chunked")); err == nil {
		t.Fatal("oversized chunked upload left a file")
	}
}

// TestHandlerTraversal sends every traversal vector through the real HTTP
// path with each method and checks nothing outside the root is read,
// written, listed or deleted.
func TestHandlerTraversal(t *testing.T) {
	srv, l, base := newServer(t, HandlerOptions{})
	if err := os.Symlink(base, filepath.Join(l.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	outside := func() []string {
		var names []string
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(p, l.Dir()) {
				names = append(names, p)
			}
			return nil
		})
		return names
	}
	before := strings.Join(outside(), "\n")
	vectors := append([]string{"link/secret.txt", "link/x", "../secret.txt", "1/../../secret.txt"}, traversalVectors...)
	for _, v := range vectors {
		if strings.ContainsAny(v, " \r\n#?") {
			continue // not a path in a raw request line; covered by the CleanPath table
		}
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			st, body := rawRequest(t, srv, m, "/api/2.0/mlflow-artifacts/artifacts/"+v, "pwned")
			if st == 200 && m == "GET" && strings.Contains(body, "secret") {
				t.Fatalf("%s %s read outside the root: %s", m, v, body)
			}
			if st == 200 {
				t.Errorf("%s %s: status 200, want a refusal", m, v)
			}
			if st >= 500 {
				t.Errorf("%s %s: status %d, want 4xx", m, v, st)
			}
		}
		st, body := rawRequest(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts?path="+v, "")
		if strings.Contains(body, "secret") {
			t.Fatalf("list %s escaped the root: %d %s", v, st, body)
		}
	}
	if after := strings.Join(outside(), "\n"); after != before {
		t.Fatalf("files outside the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if b, err := os.ReadFile(filepath.Join(base, "secret.txt")); err != nil || string(b) != "secret" {
		t.Fatalf("secret changed: %q %v", b, err)
	}
}
