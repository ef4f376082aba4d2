package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// mount serves h under both mlflow-artifacts prefixes the way the API
// router does: the still-escaped remainder after the prefix.
func mount(h *Handler, wrap func(http.Handler) http.Handler) http.Handler {
	var inner http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, pre := range []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"} {
			if rest, ok := strings.CutPrefix(r.URL.EscapedPath(), pre); ok && (rest == "" || rest[0] == '/') {
				h.ServeArtifacts(w, r, rest)
				return
			}
		}
		http.NotFound(w, r)
	})
	if wrap != nil {
		inner = wrap(inner)
	}
	return inner
}

func newEdgeServer(t *testing.T, store Store, opts HandlerOptions, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mount(NewHandler(store, opts), wrap))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request whose path is sent exactly as given (URL.Opaque), so
// that no client-side normalisation hides a trick.
func do(t *testing.T, srv *httptest.Server, method, target string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(target, "?")
	u.Opaque = "//" + u.Host + path
	u.RawQuery = query
	req, err := http.NewRequest(method, "", body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	req.Host = u.Host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const runBase = "/api/2.0/mlflow-artifacts/artifacts/1/8634b9d3f79a49349f9195b6c7af01a9/artifacts"

// TestHandlerDownloadHeaders: the files of artifacts_client.jsonl come back
// with the recorded media types, as attachments, with length, validators
// and nosniff.
func TestHandlerDownloadHeaders(t *testing.T) {
	l, _ := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{}, nil)
	files := map[string][2]string{ // path -> body, recorded content type
		"hello.txt":               {"hello artifact\n", "text/plain"},
		"data/a.json":             {"{\"a\": 1}\n", "text/plain"},
		"data/b.csv":              {"x,y\n1,2\n", "text/plain"},
		"data/nested/deep/c.yaml": {"k: v\n", "text/plain"},
		"data/nested/img.png":     {"\x89PNG\r\n", "image/png"},
		"data/nested/blob.bin":    {"\x00\x01\x02", "application/octet-stream"},
		"data/empty.txt":          {"", "text/plain"},
		"data/no_ext":             {"plain", "application/octet-stream"},
		"data/page.html":          {"<html><body>hi</body></html>", "text/html"},
		"data/space%20name.txt":   {"spaces\n", "text/plain"},
		"model/MLmodel":           {"artifact_path: model\nflavors: {}\n", "text/plain"},
	}
	for p, f := range files {
		resp := do(t, srv, "PUT", runBase+"/"+p, strings.NewReader(f[0]), "Content-Type", "text/plain")
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "{}" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("PUT %s: %d %q %q", p, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
	for p, f := range files {
		resp := do(t, srv, "GET", runBase+"/"+p, nil)
		body := readAll(t, resp)
		h := resp.Header
		base, _ := url.PathUnescape(p[strings.LastIndex(p, "/")+1:])
		if resp.StatusCode != 200 || body != f[0] || h.Get("Content-Type") != f[1] ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Length") != fmt.Sprint(len(f[0])) ||
			h.Get("Last-Modified") == "" || h.Get("Accept-Ranges") != "bytes" {
			t.Errorf("GET %s: %d %q %v", p, resp.StatusCode, body, h)
		}
		if _, params, err := mimeParse(h.Get("Content-Disposition")); err != nil || params["filename"] != base {
			t.Errorf("GET %s: Content-Disposition %q", p, h.Get("Content-Disposition"))
		}
	}
	// HEAD: the same headers, no body.
	resp := do(t, srv, "HEAD", runBase+"/hello.txt", nil)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "15" {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// Non-ASCII names use RFC 2231 / 6266 encoding.
	resp = do(t, srv, "PUT", runBase+"/%C3%A9t%C3%A9.txt", strings.NewReader("x"))
	readAll(t, resp)
	resp = do(t, srv, "GET", runBase+"/%C3%A9t%C3%A9.txt", nil)
	readAll(t, resp)
	if _, params, err := mimeParse(resp.Header.Get("Content-Disposition")); err != nil || params["filename"] != "été.txt" {
		t.Errorf("non-ASCII Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
}

// TestHandlerRanges: single, suffix, open-ended, multiple and
// unsatisfiable ranges, and conditional requests.
func TestHandlerRanges(t *testing.T) {
	l, _ := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{}, nil)
	const content = "0123456789abcdefghij"
	readAll(t, do(t, srv, "PUT", runBase+"/r.txt", strings.NewReader(content)))
	cases := []struct {
		rng, want, contentRange string
		status                  int
	}{
		{"bytes=0-0", "0", "bytes 0-0/20", 206},
		{"bytes=5-9", "56789", "bytes 5-9/20", 206},
		{"bytes=15-", "fghij", "bytes 15-19/20", 206},
		{"bytes=-3", "hij", "bytes 17-19/20", 206},
		{"bytes=10-100", "abcdefghij", "bytes 10-19/20", 206},
		{"bytes=20-", "", "bytes */20", 416},
		{"bytes=x", "", "", 416},
	}
	for _, c := range cases {
		resp := do(t, srv, "GET", runBase+"/r.txt", nil, "Range", c.rng)
		body := readAll(t, resp)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Range") != c.contentRange ||
			(c.status == 206 && (body != c.want || resp.Header.Get("Content-Length") != fmt.Sprint(len(c.want)))) {
			t.Errorf("Range %s: %d %q %v", c.rng, resp.StatusCode, body, resp.Header)
		}
	}
	resp := do(t, srv, "GET", runBase+"/r.txt", nil, "Range", "bytes=0-1,4-5")
	body := readAll(t, resp)
	if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
		!strings.Contains(body, "01") || !strings.Contains(body, "45") {
		t.Errorf("multi-range: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp = do(t, srv, "GET", runBase+"/r.txt", nil)
	lm := resp.Header.Get("Last-Modified")
	readAll(t, resp)
	resp = do(t, srv, "GET", runBase+"/r.txt", nil, "If-Modified-Since", lm)
	if readAll(t, resp); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d", resp.StatusCode)
	}
	old := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	resp = do(t, srv, "GET", runBase+"/r.txt", nil, "Range", "bytes=0-1", "If-Range", old)
	if body := readAll(t, resp); resp.StatusCode != 200 || body != content {
		t.Errorf("stale If-Range: %d %q", resp.StatusCode, body)
	}
}

// TestHandlerStatuses: the answers of every route to right and wrong
// requests; client mistakes are never 5xx.
func TestHandlerStatuses(t *testing.T) {
	l, _ := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{}, nil)
	readAll(t, do(t, srv, "PUT", runBase+"/hello.txt", strings.NewReader("hello artifact\n")))
	readAll(t, do(t, srv, "PUT", runBase+"/data/x/y.txt", strings.NewReader("y")))
	list := "/api/2.0/mlflow-artifacts/artifacts"
	cases := []struct {
		method, target string
		status         int
		body           string // exact JSON, or an error_code
	}{
		{"GET", list, 200, `{"files":[{"path":"1","is_dir":true}]}`},
		{"GET", list + "?path=", 200, `{"files":[{"path":"1","is_dir":true}]}`},
		{"GET", list + "?path=1", 200, `{"files":[{"path":"8634b9d3f79a49349f9195b6c7af01a9","is_dir":true}]}`},
		{"GET", list + "?path=1%2F8634b9d3f79a49349f9195b6c7af01a9%2Fartifacts", 200,
			`{"files":[{"path":"data","is_dir":true},{"path":"hello.txt","is_dir":false,"file_size":15}]}`},
		{"GET", list + "?path=1/8634b9d3f79a49349f9195b6c7af01a9/artifacts/hello.txt", 200, `{}`},
		{"GET", list + "?path=1/8634b9d3f79a49349f9195b6c7af01a9/artifacts/nope", 200, `{}`},
		{"GET", list + "?path=1/8634b9d3f79a49349f9195b6c7af01a9/artifacts/hello.txt/x", 200, `{}`},
		{"GET", list + "?path=..", 400, "INVALID_PARAMETER_VALUE"},
		{"GET", list + "?path=%2Fetc", 400, "INVALID_PARAMETER_VALUE"},
		{"GET", list + "?path=%252e%252e", 400, "INVALID_PARAMETER_VALUE"},
		{"GET", runBase + "/missing.txt", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"GET", runBase + "/data", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"GET", runBase + "/hello.txt/x", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"PUT", runBase + "/hello.txt/x", 400, "INVALID_PARAMETER_VALUE"},
		{"DELETE", runBase + "/hello.txt/x", 200, `{}`},
		{"DELETE", runBase + "/does/not/exist", 200, `{}`},
		{"GET", runBase + "/%2e%2e/%2e%2e/x", 400, "INVALID_PARAMETER_VALUE"},
		{"POST", runBase + "/hello.txt", 405, ""},
		{"PATCH", runBase + "/hello.txt", 405, ""},
		{"PUT", list, 405, ""},
		{"DELETE", list, 405, ""},
		{"GET", "/api/2.0/mlflow-artifacts/mpu/create/1/r", 405, ""},
		{"GET", "/api/2.0/mlflow-artifacts/nope", 404, ""},
		{"GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=1", 200,
			`{"files":[{"path":"8634b9d3f79a49349f9195b6c7af01a9","is_dir":true}]}`},
	}
	for _, c := range cases {
		resp := do(t, srv, c.method, c.target, strings.NewReader("z"))
		body := strings.TrimSpace(readAll(t, resp))
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.target, resp.StatusCode, body, c.status)
			continue
		}
		switch {
		case strings.HasPrefix(c.body, "{"):
			if body != c.body || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %s, want %s", c.method, c.target, body, c.body)
			}
		case c.body != "":
			var e tracking.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || string(e.Code) != c.body || e.Message == "" ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %s, want error %s", c.method, c.target, body, c.body)
			}
		}
	}
	// The transcript's PUT onto a directory (#66) writes data/data.
	readAll(t, do(t, srv, "PUT", runBase+"/data", strings.NewReader("d")))
	resp := do(t, srv, "GET", list+"?path=1/8634b9d3f79a49349f9195b6c7af01a9/artifacts/data", nil)
	if body := strings.TrimSpace(readAll(t, resp)); body != `{"files":[{"path":"data","is_dir":false,"file_size":1},{"path":"x","is_dir":true}]}` {
		t.Errorf("PUT onto a directory: %s", body)
	}
}

// TestHandlerUpstreamBodyLimit: a body limit set in front of the handler
// (http.MaxBytesReader, as Caddy's request_body does) is a 413 with
// MLflow's error JSON, and leaves nothing behind.
func TestHandlerUpstreamBodyLimit(t *testing.T) {
	l, _ := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 8)
			next.ServeHTTP(w, r)
		})
	})
	resp := do(t, srv, "PUT", runBase+"/big.bin", io.MultiReader(strings.NewReader(strings.Repeat("x", 4096))))
	body := readAll(t, resp)
	var e tracking.Error
	if resp.StatusCode != 413 || json.Unmarshal([]byte(body), &e) != nil || e.Code == "" {
		t.Errorf("over the upstream limit: %d %s", resp.StatusCode, body)
	}
	if got := treeOf(t, l.Dir()); len(got) != 0 {
		t.Errorf("leftovers: %v", got)
	}
}

// brokenStore fails with errors that carry server paths.
type brokenStore struct{ Store }

func (brokenStore) Open(context.Context, string) (Object, error) {
	return nil, &fs.PathError{Op: "open", Path: "/srv/secret/mlartifacts/x", Err: errors.New("input/output error")}
}

func (brokenStore) List(context.Context, string) ([]tracking.FileInfo, error) {
	return nil, errors.New("read /srv/secret/mlartifacts: input/output error")
}

// TestHandlerInternalErrors: store failures are a generic 500
// INTERNAL_ERROR that reveals no path; the detail goes to the logger.
func TestHandlerInternalErrors(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	srv := newEdgeServer(t, brokenStore{}, HandlerOptions{Logger: zap.New(core)}, nil)
	for _, target := range []string{runBase + "/x.txt", "/api/2.0/mlflow-artifacts/artifacts?path=1"} {
		resp := do(t, srv, "GET", target, nil)
		body := readAll(t, resp)
		if resp.StatusCode != 500 || !strings.Contains(body, `"INTERNAL_ERROR"`) || strings.Contains(body, "/srv") {
			t.Errorf("GET %s: %d %s", target, resp.StatusCode, body)
		}
	}
	if n := logs.FilterMessage("artifact request failed").Len(); n != 2 {
		t.Errorf("logged %d failures, want 2", n)
	}
	if !strings.Contains(fmt.Sprint(logs.All()[0].ContextMap()["error"]), "/srv/secret") {
		t.Errorf("log lacks the detail: %v", logs.All()[0].ContextMap())
	}
	// WriteError on its own: *tracking.Error keeps its status, a missing
	// file is 404, anything else a generic 500.
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{tracking.Errorf(tracking.InvalidParameterValue, "Invalid path"), 400, "INVALID_PARAMETER_VALUE"},
		{tracking.Errorf(tracking.NotImplemented, "x"), 501, "NOT_IMPLEMENTED"},
		{fmt.Errorf("wrapped: %w", fs.ErrNotExist), 404, "RESOURCE_DOES_NOT_EXIST"},
		{errors.New("open /etc/x: boom"), 500, "INTERNAL_ERROR"},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, c.err)
		var e tracking.Error
		if rec.Code != c.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || string(e.Code) != c.code ||
			strings.Contains(e.Message, "/etc") || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("WriteError(%v): %d %s", c.err, rec.Code, rec.Body)
		}
	}
}

// TestHandlerTraversalOpaque sends the traversal and CVE vectors through a
// real client with URL.Opaque, under both prefixes, as paths and as the
// listing's query value, and checks nothing outside the root was read,
// written, listed or deleted.
func TestHandlerTraversalOpaque(t *testing.T) {
	l, base := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{}, nil)
	if err := os.Symlink(base, filepath.Join(l.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "victim"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "victim", "v.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	outsideTree := func() string {
		var b strings.Builder
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(p, l.Dir()) {
				fi, _ := d.Info()
				fmt.Fprintf(&b, "%s %d\n", p, fi.Size())
			}
			return nil
		})
		return b.String()
	}
	before := outsideTree()
	var vectors []string
	for _, c := range cveVectors {
		vectors = append(vectors, c.escaped)
	}
	vectors = append(vectors, traversalVectors...)
	vectors = append(vectors, "link/secret.txt", "link/victim/v.txt", "link/victim",
		"..%2fsecret.txt", "1/..%2f..%2fsecret.txt", "%2e%2e%2fvictim", "link%2fvictim%2fv.txt",
		"link") // last: PUT replaces the link itself (inside the root) with a file
	for _, v := range vectors {
		if strings.ContainsAny(v, " \r\n\\?") || strings.ContainsRune(v, 0x7f) {
			// Not sendable raw (a raw '?' starts the query: "x?/../.."
			// is a legitimate PUT of "x"); send it escaped once.
			v = url.PathEscape(v)
		}
		for _, pre := range []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"} {
			for _, m := range []string{"GET", "HEAD", "PUT", "DELETE"} {
				resp := do(t, srv, m, pre+"/artifacts/"+v, strings.NewReader("pwned"))
				body := readAll(t, resp)
				if strings.Contains(body, "secret") {
					t.Fatalf("%s %s read outside the root: %s", m, v, body)
				}
				if resp.StatusCode >= 500 {
					t.Errorf("%s %s: %d, want 4xx", m, v, resp.StatusCode)
				}
				if resp.StatusCode == 200 && m != "DELETE" && !(m == "PUT" && v == "link") {
					t.Errorf("%s %s: 200, want a refusal", m, v)
				}
			}
			q := url.Values{"path": {v}}.Encode()
			for _, query := range []string{"path=" + v, q} {
				resp := do(t, srv, "GET", pre+"/artifacts?"+query, nil)
				body := readAll(t, resp)
				if strings.Contains(body, "secret") || strings.Contains(body, "victim") || strings.Contains(body, "root") {
					t.Fatalf("list %q escaped the root: %d %s", query, resp.StatusCode, body)
				}
				if resp.StatusCode >= 500 {
					t.Errorf("list %q: %d", query, resp.StatusCode)
				}
			}
		}
	}
	if after := outsideTree(); after != before {
		t.Fatalf("outside the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Lstat(filepath.Join(l.Dir(), "link")); err != nil {
		t.Logf("the link itself was deleted (allowed: it is inside the root): %v", err)
	}
}

// TestHandlerLargeStream: 64 MiB up and down through HTTP, checked by
// digest, with a bounded allocation total (nothing buffers the body).
func TestHandlerLargeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("large stream")
	}
	l, _ := newLocal(t)
	srv := newEdgeServer(t, l, HandlerOptions{MaxUploadSize: 1 << 30}, nil)
	const size = 64 << 20
	h := sha256.New()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp := do(t, srv, "PUT", runBase+"/big/model.bin", io.TeeReader(io.LimitReader(&patternReader{}, size), h))
	if body := readAll(t, resp); resp.StatusCode != 200 || body != "{}" {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	resp = do(t, srv, "GET", runBase+"/big/model.bin", nil)
	h2 := sha256.New()
	n, err := io.Copy(h2, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || string(h2.Sum(nil)) != string(h.Sum(nil)) ||
		resp.Header.Get("Content-Length") != fmt.Sprint(size) {
		t.Fatalf("GET: %d bytes, %v, %v", n, err, resp.Header)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("2x64 MiB through HTTP allocated %d bytes; something buffers", alloc)
	}
	resp = do(t, srv, "GET", runBase+"/big/model.bin", nil, "Range", fmt.Sprintf("bytes=%d-", size-4))
	if body := readAll(t, resp); resp.StatusCode != 206 || len(body) != 4 {
		t.Errorf("tail range: %d %d", resp.StatusCode, len(body))
	}
}

func mimeParse(v string) (string, map[string]string, error) { return mime.ParseMediaType(v) }

// TestHandlerMultipartUnsupported: a store without multipart support
// answers MLflow's 501 NOT_IMPLEMENTED on the three mpu routes, and 405 to
// other methods.
func TestHandlerMultipartUnsupported(t *testing.T) {
	l, _ := newLocal(t)
	srv := newEdgeServer(t, struct{ Store }{l}, HandlerOptions{}, nil)
	for _, op := range []string{"create", "complete", "abort"} {
		target := "/api/2.0/mlflow-artifacts/mpu/" + op + "/1/r/artifacts"
		resp := do(t, srv, "POST", target, strings.NewReader(`{"path":"x.bin","num_parts":2,"upload_id":"u"}`),
			"Content-Type", "application/json")
		body := readAll(t, resp)
		var e tracking.Error
		if resp.StatusCode != 501 || json.Unmarshal([]byte(body), &e) != nil || e.Code != tracking.NotImplemented ||
			e.Message != "Multipart upload is not supported for the current artifact repository" {
			t.Errorf("POST %s: %d %s", target, resp.StatusCode, body)
		}
		resp = do(t, srv, "GET", target, nil)
		if readAll(t, resp); resp.StatusCode != 405 {
			t.Errorf("GET %s: %d, want 405", target, resp.StatusCode)
		}
	}
}
