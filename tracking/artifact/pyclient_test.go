package artifact_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// pyClientPath is what MLflow's Python client does to every name a
// listing returns before it requests it (http_artifact_repo.py
// list_artifacts -> mlflow/utils/uri.py validate_path_is_safe), written
// independently of the server's canonicalizer and only as far as these
// image names need: unquote (invalid UTF-8 as U+FFFD) and drop tab, CR and
// LF until nothing changes; then, from MLflow 2.2x on (escape), C0
// controls and DEL as lowercase "%xx". MLflow 2.12.2 returns the decoded
// path as it is.
func pyClientPath(p string, escape bool) string {
	for range 10 {
		var b []byte
		for i := 0; i < len(p); i++ {
			if p[i] == '%' && i+2 < len(p) {
				var c byte
				if _, err := fmt.Sscanf(p[i+1:i+3], "%02x", &c); err == nil && !strings.ContainsAny(p[i+1:i+3], "+- ") {
					b = append(b, c)
					i += 2
					continue
				}
			}
			b = append(b, p[i])
		}
		next := strings.Map(func(r rune) rune {
			if r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, string(b)) // Map writes U+FFFD for each invalid byte
		if next == p {
			break
		}
		p = next
	}
	if !escape {
		return p
	}
	var out strings.Builder
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&out, "%%%02x", r)
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// TestPythonClientRoundTrip reproduces the MLflow Python client against
// the handler: log_image names (uuids that start with an escape-looking
// hex pair, steps 10 and 26) are uploaded as the client escapes them, the
// run's "images" directory is listed recursively, each listed name goes
// through the client's transform (MLflow 3.x and 2.12.2) and is
// downloaded as requests escapes it; the bytes come back.
func TestPythonClientRoundTrip(t *testing.T) {
	l, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := artifact.NewHandler(l, artifact.HandlerOptions{})
	const pfx = "/api/2.0/mlflow-artifacts"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeArtifacts(w, r, strings.TrimPrefix(r.URL.EscapedPath(), pfx))
	}))
	t.Cleanup(srv.Close)
	const root = "1/r/artifacts"
	uploaded := map[string]string{} // content -> name
	for _, uuid := range []string{"72", "c8", "0a", "00", "2e", "2f", "25", "5c"} {
		for _, step := range []string{"10", "26"} {
			name := "images/dog%step%" + step + "%timestamp%1796501552107%" + uuid + "03c8d2-aaaa-4bbb-8ccc-123456789012.png"
			data := "image " + name
			st, b := artifacttest.RawDo(t, srv.URL, http.MethodPut, pfx+"/artifacts/"+root+"/"+artifacttest.EscapeLikeRequests(name), []byte(data))
			if st != 200 {
				t.Fatalf("upload %q = %d %s", name, st, b)
			}
			uploaded[data] = name
		}
	}
	for _, escape := range []bool{true, false} {
		got := map[string]bool{}
		var walk func(dir string)
		walk = func(dir string) {
			st, b := artifacttest.RawDo(t, srv.URL, http.MethodGet, pfx+"/artifacts?"+url.Values{"path": {root + "/" + dir}}.Encode(), nil)
			var list struct {
				Files []struct {
					Path  string `json:"path"`
					IsDir bool   `json:"is_dir"`
				} `json:"files"`
			}
			if st != 200 || json.Unmarshal(b, &list) != nil {
				t.Fatalf("list %q = %d %s", dir, st, b)
			}
			for _, f := range list.Files {
				p := dir + "/" + pyClientPath(f.Path, escape)
				if f.IsDir {
					walk(p)
					continue
				}
				st, b := artifacttest.RawDo(t, srv.URL, http.MethodGet, pfx+"/artifacts/"+root+"/"+artifacttest.EscapeLikeRequests(p), nil)
				if st != 200 {
					t.Fatalf("escape=%v: download of listed %q as %q = %d %s", escape, f.Path, p, st, b)
				}
				if _, ok := uploaded[string(b)]; !ok {
					t.Fatalf("escape=%v: %q gave %q", escape, p, b)
				}
				got[string(b)] = true
			}
		}
		walk("images")
		if len(got) != len(uploaded) {
			t.Fatalf("escape=%v: downloaded %d of %d images", escape, len(got), len(uploaded))
		}
	}
}
