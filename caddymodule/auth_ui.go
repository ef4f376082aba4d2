package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
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
		if v.Authenticated {
			perms, err := g.viewerPermissions(r.Context(), v.Username, r.URL.Query())
			if err != nil {
				// The UI then shows every action; the API still decides.
				g.log.Error("looking up the UI viewer's permissions", zap.String("user", v.Username), zap.Error(err))
			}
			v.Permissions = perms
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

// kindRoute is a route of authz.Table decided on a resource's permission.
type kindRoute struct {
	name   string
	action authz.Action
}

// routesByKind lists, per resource kind, the Table's routes decided on
// that kind of resource, sorted by name.
var routesByKind = sync.OnceValue(func() map[string][]kindRoute {
	out := map[string][]kindRoute{}
	for name, rl := range authz.Table {
		if k := rl.Scope.ResourceKind(); k != "" {
			out[k] = append(out[k], kindRoute{name, rl.Action})
		}
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	}
	return out
})

// viewerPermissions answers which routes user may call on the experiments
// (experiment_id) and registered models (registered_model) named in q:
// the same decision the authorization table makes on a request (the
// user's grant, else the default; everything for admins), read from the
// permission store, never from the request. Nil when q names none.
func (g *gateway) viewerPermissions(ctx context.Context, user string, q url.Values) (*ui.Permissions, error) {
	exps, models := q[ui.PermissionQueryExperiment], q[ui.PermissionQueryRegisteredModel]
	if len(exps) == 0 && len(models) == 0 {
		return nil, nil
	}
	if len(exps)+len(models) > ui.MaxPermissionQueries {
		return nil, nil // too many to look up in one answer: none answered
	}
	admin, err := g.IsAdmin(ctx, user)
	if err != nil {
		return nil, err
	}
	one := func(kind, id string) (ui.ResourcePermission, error) {
		level := authz.Manage
		if !admin {
			if level, err = g.authz.Level(ctx, kind, id, user); err != nil {
				return ui.ResourcePermission{}, err
			}
		}
		rp := ui.ResourcePermission{Level: level.String(), Allowed: []string{}}
		for _, rt := range routesByKind()[kind] {
			if admin || level.Allows(rt.action) {
				rp.Allowed = append(rp.Allowed, rt.name)
			}
		}
		return rp, nil
	}
	out := &ui.Permissions{}
	for _, id := range exps {
		if out.Experiments == nil {
			out.Experiments = map[string]ui.ResourcePermission{}
		}
		if out.Experiments[id], err = one(authz.KindExperiment, id); err != nil {
			return nil, err
		}
	}
	for _, name := range models {
		if out.RegisteredModels == nil {
			out.RegisteredModels = map[string]ui.ResourcePermission{}
		}
		if out.RegisteredModels[name], err = one(authz.KindRegisteredModel, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}
