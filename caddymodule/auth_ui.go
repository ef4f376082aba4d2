package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/ui"
)

// viewerKey carries the viewer serveUI computed for /ui/whoami to viewer.
type viewerKey struct{}

// serveUI serves the tracking UI behind the gateway. The shell and the
// assets hold no tracking data and are served to anyone; the data comes
// from the REST API, which authorizes every call. Identity headers are
// stripped here too, so nothing the UI handler sees can claim a user.
// POST /login (the login form) is answered here; GET /login is the UI's
// login page.
func (g *gateway) serveUI(w http.ResponseWriter, r *http.Request, h *ui.Handler) {
	authn.StripIdentityHeaders(r.Header)
	if g.sessionRoute(w, r) {
		return
	}
	if r.URL.Path == ui.WhoamiPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		v, err := g.identify(r)
		if errors.Is(err, authn.ErrInvalidCredentials) {
			// whoami tells whether a credential works: audit a failed
			// one as the API does, so guessing here leaves a trace.
			g.writeAudit(r, &auditRecord{start: time.Now(), route: "Whoami", reason: err.Error()}, http.StatusOK)
		}
		if !v.Authenticated && g.sess != nil {
			// A signed-out viewer gets the login form's CSRF token, bound
			// to a cookie only the login POST receives.
			v.CSRFToken = loginCSRF(w, r)
		}
		r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
	}
	h.ServeHTTP(w, r)
}

// viewer tells the UI who sent r (ui.Options.Viewer).
func (g *gateway) viewer(r *http.Request) ui.Viewer {
	if v, ok := r.Context().Value(viewerKey{}).(ui.Viewer); ok {
		return v
	}
	return g.viewerOf(r)
}

// viewerOf is the principal of r's verified credential, or an
// unauthenticated viewer. Only a session viewer gets a CSRF token: other
// credentials are not sent by the browser on its own.
func (g *gateway) viewerOf(r *http.Request) ui.Viewer {
	v, _ := g.identify(r)
	return v
}

// identify is viewerOf that also returns the authentication error.
func (g *gateway) identify(r *http.Request) (ui.Viewer, error) {
	v := ui.Viewer{AuthEnabled: true}
	p, err := g.authn.Authenticate(r.Context(), r)
	if err != nil {
		if !errors.Is(err, authn.ErrNoCredentials) && !errors.Is(err, authn.ErrInvalidCredentials) {
			g.log.Error("identifying the UI viewer", zap.Error(err))
		}
		return v, err
	}
	v.Authenticated = true
	v.Username = p.Username
	if p.Method == authn.MethodSession {
		v.Session = true
		v.CSRFToken = p.CSRFToken
	}
	admin, err := g.IsAdmin(r.Context(), p.Username)
	if err != nil {
		g.log.Error("looking up admin status for the UI", zap.String("user", p.Username), zap.Error(err))
	}
	v.Admin = admin
	return v, nil
}
