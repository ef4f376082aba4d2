package caddymodule

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
)

// Repeated slashes in a request path are handled as MLflow's Flask app
// handles them: its URL map is Werkzeug's default, with merge_slashes on.
//
//   - Leading slashes are dropped before matching (MapAdapter.match matches
//     "/" + path.lstrip("/"), and Flask's request.path is built the same
//     way), so //api/2.0/mlflow/... is served as /api/2.0/mlflow/...: the
//     handler rewrites the path first, and the authorization table, the UI
//     and the API all see the one canonical path.
//   - A path with "//" further in that matches no rule as it is, but does
//     once slashes are merged, is answered 308 with the merged URL
//     (StateMachineMatcher.match raises RequestPath; MapAdapter.match turns
//     it into RequestRedirect, code 308). Werkzeug merges with
//     re.sub("/{2,}?", "/"), which halves a run of slashes rather than
//     collapsing it, so "///" becomes "//" and still matches nothing (404).
//     A path that matches as it is (a {path...} remainder holding "//") is
//     served unmerged, as Werkzeug's path converter takes it.
//
// The redirect is answered behind the gateway, as the API's answer to a
// path with no route: like MLflow's basic-auth app, whose before_request
// check runs before Flask raises the routing redirect, a request without
// valid credentials gets 401 rather than the redirect. The redirect runs
// no endpoint and carries no data; the client's request to the merged URL
// is authorized like any other.

// stripLeadingSlashes rewrites a path that starts with "//" to start with
// one slash, keeping RawPath consistent with Path.
func stripLeadingSlashes(u *url.URL) {
	if !strings.HasPrefix(u.Path, "//") {
		return
	}
	u.Path = "/" + strings.TrimLeft(u.Path, "/")
	if u.RawPath == "" {
		return
	}
	raw := u.RawPath
	for {
		switch {
		case strings.HasPrefix(raw, "/"):
			raw = raw[1:]
		case len(raw) >= 3 && strings.EqualFold(raw[:3], "%2f"):
			raw = raw[3:]
		default:
			raw = "/" + raw
			u.RawPath = ""
			if p, err := url.PathUnescape(raw); err == nil && p == u.Path && raw != u.EscapedPath() {
				u.RawPath = raw
			}
			return
		}
	}
}

// mergeSlashPairs merges slashes the way Werkzeug's matcher does: each
// non-overlapping pair "//" becomes "/".
func mergeSlashPairs(p string) string {
	return strings.ReplaceAll(p, "//", "/")
}

// slashRedirect answers the 308 of a path that matches a route only once
// its slashes are merged, and passes every other request to next.
type slashRedirect struct {
	next    http.Handler
	matcher *authz.Matcher
}

// routed reports whether Werkzeug would match path for method as it is.
// Werkzeug's path converter does not take a remainder that starts with a
// slash, and every rule answers OPTIONS.
func (s *slashRedirect) routed(method, path string) (ok, known bool) {
	m, ok, known := s.matcher.Match(method, path)
	if ok && strings.HasPrefix(m.Rest, "/") {
		return false, false
	}
	if method == http.MethodOptions && known {
		return true, true
	}
	return ok, known
}

// ServeHTTP implements http.Handler.
func (s *slashRedirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if !strings.Contains(p, "//") {
		s.next.ServeHTTP(w, r)
		return
	}
	if ok, _ := s.routed(r.Method, p); ok {
		s.next.ServeHTTP(w, r)
		return
	}
	merged := mergeSlashPairs(p)
	ok, known := s.routed(r.Method, merged)
	switch {
	case ok:
		loc := url.URL{Scheme: clientScheme(r), Host: r.Host, Path: merged, RawQuery: r.URL.RawQuery}
		w.Header().Set("Location", loc.String())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusPermanentRedirect)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n" +
				"<p>You should be redirected automatically to the target URL: <a href=\"" +
				htmlEscaper.Replace(loc.String()) + "\">" + htmlEscaper.Replace(loc.String()) + "</a>. If not, click the link.\n"))
		}
	case known:
		// The merged path is a route, but not for this method: Werkzeug
		// answers what the merged path answers (405). The API answers a
		// known path with another method without running an endpoint,
		// which the gateway relies on too ("method not routed").
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = merged, ""
		s.next.ServeHTTP(w, r2)
	default:
		s.next.ServeHTTP(w, r)
	}
}

// htmlEscaper escapes text for an HTML attribute or element.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")
