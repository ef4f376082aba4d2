package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/ui"
)

// serveUI serves the tracking UI behind the gateway. The shell and the
// assets hold no tracking data and are served to anyone; the data comes
// from the REST API, which authorizes every call. Identity headers are
// stripped here too, so nothing the UI handler sees can claim a user.
func (g *gateway) serveUI(w http.ResponseWriter, r *http.Request, h *ui.Handler) {
	authn.StripIdentityHeaders(r.Header)
	h.ServeHTTP(w, r)
}

// viewer tells the UI who sent r: the principal of a verified credential,
// or an unauthenticated viewer.
func (g *gateway) viewer(r *http.Request) ui.Viewer {
	v := ui.Viewer{AuthEnabled: true}
	p, err := g.authn.Authenticate(r.Context(), r)
	if err != nil {
		return v
	}
	v.Authenticated = true
	v.Username = p.Username
	admin, err := g.IsAdmin(r.Context(), p.Username)
	if err != nil {
		g.log.Error("looking up admin status for the UI", zap.String("user", p.Username), zap.Error(err))
	}
	v.Admin = admin
	return v
}
