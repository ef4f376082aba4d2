package artifacttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// RawDo sends one HTTP/1.1 request whose request-target is exactly
// target, byte for byte (Go's client would re-encode it), and returns the
// status and body. base is "http://host:port".
func RawDo(t *testing.T, base, method, target string, body []byte) (int, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		method, target, u.Host, len(body))
	_, _ = conn.Write(body)
	req, _ := http.NewRequest(method, base, nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// RawTarget makes an escaped attack path sendable on a request line:
// spaces and other bytes an HTTP request line cannot hold are escaped,
// everything else (escapes, backslashes, dots) is left as it is.
func RawTarget(esc string) string {
	var b strings.Builder
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		if c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// IsInvalidPath reports MLflow's "Invalid path" answer: 400 with
// error_code INVALID_PARAMETER_VALUE. A 400 from net/http itself (a
// request line it cannot parse, such as a bare '%') counts too: the
// request never reached a handler.
func IsInvalidPath(status int, body []byte) bool {
	if status != http.StatusBadRequest {
		return false
	}
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return strings.HasPrefix(string(body), "400 Bad Request") || strings.Contains(string(body), "Bad Request")
	}
	return e.Code == "INVALID_PARAMETER_VALUE" && e.Message == "Invalid path"
}

// runNameTests stores every legal name through the handler under its
// canonical form, as the Python client and a strict client escape it,
// serves it under both forms, lists the canonical one, and refuses every
// attack on every route of the handler. The server is a bare handler (no
// ServeMux, which would clean or redirect paths itself), as behind Caddy.
func runNameTests(t *testing.T, newStore func(t *testing.T) artifact.Store) {
	ctx := context.Background()
	const pfx = "/api/2.0/mlflow-artifacts"
	newServer := func(t *testing.T, s artifact.Store) string {
		h := artifact.NewHandler(s, artifact.HandlerOptions{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rest, ok := strings.CutPrefix(r.URL.EscapedPath(), pfx)
			if !ok {
				http.NotFound(w, r)
				return
			}
			h.ServeArtifacts(w, r, rest)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}

	t.Run("LegalNames", func(t *testing.T) {
		s := newStore(t)
		base := newServer(t, s)
		for _, name := range LegalNames() {
			for enc, esc := range map[string]string{"strict": EscapeStrict(name.Upload), "requests": EscapeLikeRequests(name.Upload)} {
				full := "1/r/artifacts/" + name.Stored
				target := pfx + "/artifacts/1/r/artifacts/" + esc
				data := []byte(enc + ":" + name.Upload)
				if st, b := RawDo(t, base, http.MethodPut, target, data); st != 200 {
					t.Fatalf("PUT %s (%q) = %d %s", target, name.Upload, st, b)
				}
				// Stored under its canonical name.
				o, err := s.Open(ctx, full)
				if err != nil {
					t.Fatalf("Open(%q) after PUT %s: %v", full, target, err)
				}
				got, _ := io.ReadAll(o)
				o.Close()
				if string(got) != string(data) {
					t.Fatalf("Open(%q) = %q, want %q", full, got, data)
				}
				// Found under the name it was uploaded as, and under the
				// stored name, as the Python client requests it.
				for _, t2 := range []string{target, pfx + "/artifacts/1/r/artifacts/" + EscapeLikeRequests(name.Stored)} {
					if st, b := RawDo(t, base, http.MethodGet, t2, nil); st != 200 || string(b) != string(data) {
						t.Fatalf("GET %s = %d %q, want %q", t2, st, b, data)
					}
				}
				dir, file := path.Split(full)
				q := url.Values{"path": {strings.TrimSuffix(dir, "/")}}
				st, b := RawDo(t, base, http.MethodGet, pfx+"/artifacts?"+q.Encode(), nil)
				var list struct {
					Files []struct {
						Path string `json:"path"`
					} `json:"files"`
				}
				_ = json.Unmarshal(b, &list)
				found := false
				for _, f := range list.Files {
					found = found || f.Path == file
				}
				if st != 200 || !found {
					t.Fatalf("list %s = %d %s, want %q in it", dir, st, b, file)
				}
				if st, b := RawDo(t, base, http.MethodDelete, target, nil); st != 200 {
					t.Fatalf("DELETE %s = %d %s", target, st, b)
				}
				if st, _ := RawDo(t, base, http.MethodGet, target, nil); st != 404 {
					t.Fatalf("GET %s after DELETE = %d, want 404", target, st)
				}
			}
		}
		if _, ok := s.(artifact.Multipart); !ok {
			return
		}
		for _, name := range MLflowNames {
			dir, file := path.Split("1/r/artifacts/" + name.Upload)
			data := []byte("multipart " + name.Upload)
			if err := Upload(http.DefaultClient, base, strings.TrimSuffix(dir, "/"), "/tmp/x/"+file, data, 8); err != nil {
				t.Fatalf("multipart %s: %v", name, err)
			}
			o, err := s.Open(ctx, "1/r/artifacts/"+name.Stored)
			if err != nil {
				t.Fatalf("Open after multipart %q: %v", name.Upload, err)
			}
			got, _ := io.ReadAll(o)
			o.Close()
			if string(got) != string(data) {
				t.Fatalf("multipart %q: got %q", name.Upload, got)
			}
		}
	})

	t.Run("Attacks", func(t *testing.T) {
		s := newStore(t)
		base := newServer(t, s)
		_, mp := s.(artifact.Multipart)
		check := func(method, target string, body []byte) {
			t.Helper()
			st, b := RawDo(t, base, method, target, body)
			if method == http.MethodHead && st == http.StatusBadRequest {
				return // no body to read the error from
			}
			if !IsInvalidPath(st, b) {
				t.Errorf("%s %s = %d %s, want 400 Invalid path", method, target, st, b)
			}
		}
		mpuBody := []byte(`{"path":"/tmp/f.bin","num_parts":1,"upload_id":"x","parts":[{"part_number":1,"etag":"x"}]}`)
		try := func(esc string) {
			raw := RawTarget(esc)
			for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
				check(m, pfx+"/artifacts/"+raw, []byte("pwned"))
			}
			// The listing takes a directory with one trailing slash.
			if dec, err := url.PathUnescape(esc); err == nil && !strings.HasSuffix(esc, "a/") {
				check(http.MethodGet, pfx+"/artifacts?"+url.Values{"path": {dec}}.Encode(), nil)
			}
			if mp {
				for _, op := range []string{"create", "complete", "abort"} {
					check(http.MethodPost, pfx+"/mpu/"+op+"/"+raw, mpuBody)
				}
			}
		}
		for _, esc := range Attacks {
			try(esc)
			try("1/r/artifacts/" + esc)
		}
		for _, esc := range LeadingAttacks {
			try(esc)
		}
		// The base name of an mpu "path" is taken, as MLflow does; an
		// unsafe one is refused.
		if mp {
			for _, local := range []string{"..", "/tmp/..", `C:\tmp\..`, "x/\u2025", "a/%2e%2e"} {
				b, _ := json.Marshal(map[string]any{"path": local, "num_parts": 1})
				check(http.MethodPost, pfx+"/mpu/create/1/r/artifacts", b)
			}
		}
		if files, err := s.List(ctx, ""); err != nil || len(files) != 0 {
			t.Fatalf("store root after the attacks: %v, %v; want it empty", files, err)
		}
	})
}
