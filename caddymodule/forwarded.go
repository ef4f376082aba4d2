package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// clientScheme is the scheme the client used to reach the site: "https"
// over TLS; behind a balancer that terminates TLS (README.md, "Scaling
// out"), the balancer's X-Forwarded-Proto, but only when Caddy's
// trusted_proxies vouch for the peer (a client's own header counts for
// nothing). The handler writes it to r.URL.Scheme, from which the
// absolute URLs it hands out (multipart part URLs, redirects) are built,
// so a client behind an HTTPS balancer is not sent to http://.
func clientScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		// Caddy's reverse_proxy sets one value: its own scheme, or the one
		// its own trusted peer sent.
		p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "http", "https":
			return p
		}
	}
	return "http"
}
