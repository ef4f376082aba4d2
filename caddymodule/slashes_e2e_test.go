package caddymodule_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// rawRequest sends method and path exactly as given in an HTTP/1.1
// request line on a new connection (no client-side cleaning, no
// redirects followed).
func rawRequest(t *testing.T, c *http.Client, base, method, path, auth string, body string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if u.Scheme == "https" {
		cfg := c.Transport.(*http.Transport).TLSClientConfig.Clone()
		cfg.ServerName = u.Hostname()
		cfg.NextProtos = []string{"http/1.1"}
		conn, err = tls.Dial("tcp", u.Host, cfg)
	} else {
		conn, err = net.Dial("tcp", u.Host)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, path, u.Host, len(body))
	if body != "" {
		req.WriteString("Content-Type: application/json\r\n")
	}
	if auth != "" {
		fmt.Fprintf(&req, "Authorization: %s\r\n", auth)
	}
	req.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestDoubleSlashPaths(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	c := srv.Client()
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	if code := srv.JSON(t, "POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": "slashes"}, &exp); code != 200 {
		t.Fatalf("create: %d", code)
	}
	getPath := "/api/2.0/mlflow/experiments/get?experiment_id=" + exp.ExperimentID

	// Leading slashes are dropped: served, as Werkzeug matches
	// "/" + path.lstrip("/").
	for _, p := range []string{"/" + getPath, "///" + getPath} {
		resp, body := rawRequest(t, c, srv.URL, "GET", p, "", "")
		if resp.StatusCode != 200 || !strings.Contains(body, `"slashes"`) {
			t.Errorf("GET %s = %d %s, want the experiment", p, resp.StatusCode, body)
		}
	}
	// "//" inside: 308 to the merged URL, query kept.
	resp, _ := rawRequest(t, c, srv.URL, "GET", "/api/2.0//mlflow/experiments/get?experiment_id="+exp.ExperimentID, "", "")
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("inner // = %d, want 308", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != srv.URL+getPath {
		t.Errorf("Location = %q, want %q", loc, srv.URL+getPath)
	}
	// Both at once: the leading ones are dropped, the inner pair redirects.
	resp, _ = rawRequest(t, c, srv.URL, "POST", "//api/2.0/mlflow//experiments/create", "", `{"name":"x"}`)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != srv.URL+"/api/2.0/mlflow/experiments/create" {
		t.Errorf("POST //api/2.0/mlflow//experiments/create = %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A 308 keeps method and body: a client following it creates the
	// experiment once, at the canonical path.
	if r2, err := c.Post(srv.URL+"/api/2.0//mlflow/experiments/create", "application/json", strings.NewReader(`{"name":"followed"}`)); err != nil || r2.StatusCode != 200 {
		t.Fatalf("following the 308: %v %v", r2, err)
	} else {
		r2.Body.Close()
	}
	// Three slashes halve to two, which still matches nothing.
	resp, body := rawRequest(t, c, srv.URL, "GET", "/api/2.0///mlflow/experiments/get", "", "")
	if resp.StatusCode != 404 || !strings.Contains(body, "ENDPOINT_NOT_FOUND") {
		t.Errorf("/// = %d %s, want 404 ENDPOINT_NOT_FOUND", resp.StatusCode, body)
	}
	// Merged, the path is a route for another method: what the merged
	// path answers (405).
	resp, _ = rawRequest(t, c, srv.URL, "DELETE", "/api/2.0//mlflow/experiments/get", "", "")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE with // = %d, want 405", resp.StatusCode)
	}
	// Not a route even merged: 404.
	resp, _ = rawRequest(t, c, srv.URL, "GET", "/api/2.0//mlflow/nothing-here", "", "")
	if resp.StatusCode != 404 {
		t.Errorf("unknown merged path = %d, want 404", resp.StatusCode)
	}
	// An artifact path matches as it is when the "//" is in its
	// remainder (Werkzeug's path converter takes it): no redirect. One
	// that starts the remainder with a slash does not match; merged, it
	// redirects.
	resp, _ = rawRequest(t, c, srv.URL, "GET", "/api/2.0/mlflow-artifacts/artifacts/a//b.txt", "", "")
	if resp.StatusCode == http.StatusPermanentRedirect {
		t.Errorf("artifact path with // in its remainder was redirected")
	}
	resp, _ = rawRequest(t, c, srv.URL, "GET", "/api/2.0/mlflow-artifacts/artifacts//b.txt", "", "")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != srv.URL+"/api/2.0/mlflow-artifacts/artifacts/b.txt" {
		t.Errorf("artifacts//b.txt = %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDoubleSlashPathsAreAuthorized checks that a path with repeated
// slashes gets no further than its canonical form: the leading-slash form
// is authorized as the canonical path (a user without permission is
// refused), and the inner-slash form answers 401 without credentials
// (MLflow's auth runs before Flask's routing redirect) and only redirects
// with them, to a URL that is authorized in turn.
func TestDoubleSlashPathsAreAuthorized(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	admin := basic("root", adminPassword)
	e.must(t, "POST", "/api/2.0/mlflow/users/create", admin, obj{"username": "bob", "password": bobPassword})
	bob := basic("bob", bobPassword)
	created := e.must(t, "POST", "/api/2.0/mlflow/experiments/create", admin, obj{"name": "private"})
	id, _ := created["experiment_id"].(string)
	if id == "" {
		t.Fatalf("no experiment id in %v", created)
	}
	getPath := "/api/2.0/mlflow/experiments/get?experiment_id=" + id
	c := e.client

	// Canonical path: bob is refused, the admin is not.
	if resp, _ := rawRequest(t, c, e.srv.URL, "GET", getPath, bob, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on the canonical path = %d, want 403", resp.StatusCode)
	}
	for _, p := range []string{"/" + getPath, "///" + getPath, "//ajax-api/2.0/mlflow/experiments/get?experiment_id=" + id} {
		resp, body := rawRequest(t, c, e.srv.URL, "GET", p, bob, "")
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "private") {
			t.Errorf("bob on %s = %d %s, want 403 without the experiment", p, resp.StatusCode, body)
		}
		resp, body = rawRequest(t, c, e.srv.URL, "GET", p, "", "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous on %s = %d %s, want 401", p, resp.StatusCode, body)
		}
		resp, body = rawRequest(t, c, e.srv.URL, "GET", p, admin, "")
		if resp.StatusCode != 200 || !strings.Contains(body, "private") {
			t.Errorf("admin on %s = %d %s, want the experiment", p, resp.StatusCode, body)
		}
	}

	inner := "/api/2.0//mlflow/experiments/get?experiment_id=" + id
	if resp, body := rawRequest(t, c, e.srv.URL, "GET", inner, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous on %s = %d %s, want 401", inner, resp.StatusCode, body)
	}
	resp, body := rawRequest(t, c, e.srv.URL, "GET", inner, bob, "")
	if resp.StatusCode != http.StatusPermanentRedirect || strings.Contains(body, "private") {
		t.Fatalf("bob on %s = %d %s, want a bare 308", inner, resp.StatusCode, body)
	}
	// Following it lands on the canonical path, which refuses bob.
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, e.srv.URL+"/api/2.0/mlflow/experiments/get?") {
		t.Fatalf("Location = %q", loc)
	}
	if resp, _ := rawRequest(t, c, e.srv.URL, "GET", strings.TrimPrefix(loc, e.srv.URL), bob, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob following the redirect = %d, want 403", resp.StatusCode)
	}
	// A write with a leading double slash is checked like the canonical
	// write: bob cannot rename the experiment.
	resp, _ = rawRequest(t, c, e.srv.URL, "POST", "//api/2.0/mlflow/experiments/update", bob, `{"experiment_id":"`+id+`","new_name":"stolen"}`)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob renaming through //api = %d, want 403", resp.StatusCode)
	}
	got := e.must(t, "GET", getPath, admin, nil)
	if exp, _ := got["experiment"].(map[string]any); exp["name"] != "private" {
		t.Errorf("experiment after bob's attempts: %v", got)
	}
}
