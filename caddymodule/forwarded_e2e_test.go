package caddymodule_test

import (
	"net/http"
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
