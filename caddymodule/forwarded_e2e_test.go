package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// forwardedProto adds X-Forwarded-Proto to every request.
type forwardedProto string

func (p forwardedProto) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-Proto", string(p))
	return http.DefaultTransport.RoundTrip(r)
}

// TestPartURLSchemeBehindTLSBalancer: behind a balancer that terminates
// TLS (README.md, "Scaling out"), multipart part URLs keep the client's
// https scheme, taken from X-Forwarded-Proto only when Caddy's
// trusted_proxies vouch for the peer; anyone else's header is ignored.
func TestPartURLSchemeBehindTLSBalancer(t *testing.T) {
	hc := &http.Client{Transport: forwardedProto("https")}
	partScheme := func(srv *caddytest.Server) string {
		t.Helper()
		cr, err := artifacttest.Create(hc, srv.URL, "0/r1/artifacts", "model.bin", 1)
		if err != nil {
			t.Fatal(err)
		}
		scheme, _, _ := strings.Cut(cr.Credentials[0].URL, "://")
		return scheme
	}
	srv := caddytest.Start(t, caddytest.Options{Global: []string{"servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"}})
	if got := partScheme(srv); got != "https" {
		t.Errorf("trusted balancer said https: part URL scheme %q", got)
	}
	srv.Restart(t, caddytest.Options{})
	if got := partScheme(srv); got != "http" {
		t.Errorf("untrusted peer said https: part URL scheme %q, want http", got)
	}
}

// withHeader adds one header to every request sent through next.
type withHeader struct {
	key, value string
	next       http.RoundTripper
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	next := h.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// TestSessionCookiesBehindTLSBalancer: a browser that reached the site
// over HTTPS through a trusted TLS-terminating balancer gets the __Host-
// Secure cookies it would get over direct TLS, and its https Origin is
// accepted; an untrusted peer's X-Forwarded-Proto changes nothing.
func TestSessionCookiesBehindTLSBalancer(t *testing.T) {
	e := startSessions(t)
	e.opts.Global = append(e.opts.Global, "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}")
	e.srv.Restart(t, e.opts)
	base := e.srv.Client()
	e.c = noRedirects(&http.Client{Transport: withHeader{"X-Forwarded-Proto", "https", base.Transport}})
	e.tls = true

	tok, lc := e.loginForm(t)
	if !lc.Secure || lc.Path != "/" {
		t.Errorf("login CSRF cookie behind an HTTPS balancer: %+v, want Secure, Path=/", lc)
	}
	origin := map[string]string{"Origin": "https://" + strings.TrimPrefix(e.srv.URL, "http://")}
	loc, sc, _ := e.postLogin(t, url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok}}, origin, lc)
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.Path != "/" || loc != "/experiments" {
		t.Fatalf("session cookie behind an HTTPS balancer: %+v (Location %q), want __Host-mlflow_session, Secure", sc, loc)
	}
	if w, _ := e.whoami(t, sc); !w.Authenticated || w.Username != "root" {
		t.Errorf("whoami with the __Host- session cookie: %+v", w)
	}
	// Over https, an http Origin is another origin.
	httpOrigin := map[string]string{"Origin": e.srv.URL}
	tok2, lc2 := e.loginForm(t)
	if _, sc2, _ := e.postLogin(t, url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok2}}, httpOrigin, lc2); sc2 != nil {
		t.Errorf("an http:// Origin signed in on an https site")
	}

	// Without trusted_proxies the same header is anyone's word: plain
	// cookie names, not Secure.
	e.opts.Global = e.opts.Global[:len(e.opts.Global)-1]
	e.srv.Restart(t, e.opts)
	e.tls = false
	_, lc = e.loginForm(t)
	if lc.Secure || lc.Path != "/login" {
		t.Errorf("untrusted X-Forwarded-Proto made the login cookie %+v", lc)
	}
}
