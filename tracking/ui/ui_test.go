package ui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestOwns(t *testing.T) {
	for _, p := range []string{"/", "/favicon.ico", "/static/app.js", "/ui/whoami", "/experiments", "/experiments/1/runs/abc",
		"/compare", "/models/m/versions/1", "/prompts", "/prompts/p", "/account", "/admin", "/login"} {
		if !Owns(p) {
			t.Errorf("Owns(%q) = false", p)
		}
	}
	for _, p := range []string{"/api/2.0/mlflow/experiments/search", "/ajax-api/2.0/mlflow/runs/get", "/health", "/version",
		"/get-artifact", "/experimentsX", "/static", "/logout", "/users/create"} {
		if Owns(p) {
			t.Errorf("Owns(%q) = true", p)
		}
	}
}

func serve(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Every page path answers the same shell, with a strict CSP.
	shell := serve(t, h, "GET", "/experiments/7/runs/abc", nil)
	if shell.Code != 200 || !strings.HasPrefix(shell.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("shell: %d %q", shell.Code, shell.Header().Get("Content-Type"))
	}
	body := shell.Body.String()
	if !strings.Contains(body, `<script type="module" src="/static/app.js?v=`) || strings.Contains(body, "<script>") {
		t.Errorf("shell has no module script or has an inline one:\n%s", body)
	}
	csp := shell.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe code: %q", csp)
	}
	if shell.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}

	// Assets: right types, validators, 304 on revalidation.
	js := serve(t, h, "GET", "/static/lib.js", nil)
	if js.Code != 200 || !strings.Contains(js.Header().Get("Content-Type"), "javascript") || js.Header().Get("ETag") == "" {
		t.Fatalf("lib.js: %d %q etag %q", js.Code, js.Header().Get("Content-Type"), js.Header().Get("ETag"))
	}
	again := serve(t, h, "GET", "/static/lib.js", map[string]string{"If-None-Match": js.Header().Get("ETag")})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidation: %d, %d bytes", again.Code, again.Body.Len())
	}
	if css := serve(t, h, "GET", "/static/style.css", nil); !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") {
		t.Errorf("style.css type %q", css.Header().Get("Content-Type"))
	}
	// Every page module app.js imports is embedded.
	for _, line := range strings.Split(serve(t, h, "GET", "/static/app.js", nil).Body.String(), "\n") {
		if i := strings.Index(line, "from './"); i >= 0 || strings.HasPrefix(line, "import './") {
			name := line[strings.Index(line, "'./")+3 : strings.LastIndex(line, "'")]
			if w := serve(t, h, "GET", "/static/"+name, nil); w.Code != 200 {
				t.Errorf("app.js imports %s: %d", name, w.Code)
			}
		}
	}
	for _, p := range []string{"/static/nope.js", "/static/../ui.go", "/static/", "/nope"} {
		if w := serve(t, h, "GET", p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	if w := serve(t, h, "POST", "/experiments", nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST page: %d %q", w.Code, w.Header().Get("Allow"))
	}

	// whoami: auth off means an anonymous, authenticated viewer.
	who := serve(t, h, "GET", WhoamiPath, nil)
	var v Viewer
	if err := json.Unmarshal(who.Body.Bytes(), &v); err != nil || !v.Authenticated || v.AuthEnabled || who.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("whoami: %s %+v %v", who.Body, v, err)
	}
	h2, _ := New(Options{Viewer: func(*http.Request) Viewer { return Viewer{AuthEnabled: true, Username: "ann"} }})
	_ = json.Unmarshal(serve(t, h2, "GET", WhoamiPath, nil).Body.Bytes(), &v)
	if !v.AuthEnabled || v.Authenticated || v.Username != "ann" {
		t.Errorf("whoami with a viewer func: %+v", v)
	}
}
