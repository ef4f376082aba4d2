package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

//go:embed shell.html
var shellSource string

// StaticPrefix is the path under which the embedded assets are served.
const StaticPrefix = "/static/"

// WhoamiPath answers the viewer's identity as JSON (see Viewer).
const WhoamiPath = "/ui/whoami"

// pagePrefixes are the first path segments of the UI's pages. Every path
// under them answers the shell; the client-side router picks the page.
var pagePrefixes = []string{"experiments", "compare", "models", "prompts", "account", "admin", "login"}

// Viewer describes who is looking at the UI.
type Viewer struct {
	// AuthEnabled reports whether the server requires authentication.
	AuthEnabled bool `json:"auth_enabled"`
	// Authenticated reports whether the request carried a valid
	// credential (always true when auth is off).
	Authenticated bool `json:"authenticated"`
	// Username is the viewer's name; empty when auth is off.
	Username string `json:"username,omitempty"`
	// Admin reports whether the viewer is an administrator.
	Admin bool `json:"is_admin"`
	// CSRFToken must accompany every state-changing request that is
	// authenticated by the session cookie (header X-CSRF-Token).
	CSRFToken string `json:"csrf_token,omitempty"`
	// Session reports whether the viewer is signed in with a session
	// cookie (so the UI offers "Sign out").
	Session bool `json:"session"`
	// Permissions are the viewer's permissions on the experiments and
	// registered models the request asked about (PermissionQuery); nil
	// when it asked about none or auth is off (everything is allowed).
	Permissions *Permissions `json:"permissions,omitempty"`
}

// Query parameters of WhoamiPath naming the resources whose permissions
// the page wants (repeatable, at most MaxPermissionQueries in all).
const (
	PermissionQueryExperiment      = "experiment_id"
	PermissionQueryRegisteredModel = "registered_model"
	MaxPermissionQueries           = 200
)

// Permissions are a viewer's effective permissions, keyed by experiment
// id and by registered model name.
type Permissions struct {
	// Experiments maps experiment ids to the viewer's permission.
	Experiments map[string]ResourcePermission `json:"experiments,omitempty"`
	// RegisteredModels maps model names to the viewer's permission.
	RegisteredModels map[string]ResourcePermission `json:"registered_models,omitempty"`
}

// ResourcePermission is what the viewer may do on one resource.
type ResourcePermission struct {
	// Level is the effective permission level (MANAGE for admins).
	Level string `json:"level"`
	// Allowed are the names of the routes (MLflow's RPC names, such as
	// DeleteRun) the viewer may call on the resource, sorted.
	Allowed []string `json:"allowed"`
}

// Options configure a Handler.
type Options struct {
	// Viewer returns the identity of the request's sender. Nil means auth
	// is off: everybody is an anonymous, authenticated viewer.
	Viewer func(r *http.Request) Viewer
	// Title is the product name shown in the header; "MLflow" when empty.
	Title string
}

// asset is one embedded file with its precomputed validators.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the UI's shell, assets and whoami endpoint.
type Handler struct {
	opts    Options
	assets  map[string]*asset // keyed by path below StaticPrefix
	shell   []byte
	shellET string
	modTime time.Time
}

// New builds a Handler, reading and hashing the embedded assets once.
func New(opts Options) (*Handler, error) {
	if opts.Title == "" {
		opts.Title = "MLflow"
	}
	h := &Handler{opts: opts, assets: map[string]*asset{}, modTime: time.Now()}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return fmt.Errorf("ui: reading embedded %s: %w", p, err)
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.assets[strings.TrimPrefix(p, "static/")] = &asset{body: b, ctype: ctype, etag: etagOf(b)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("shell").Parse(shellSource)
	if err != nil {
		return nil, fmt.Errorf("ui: parsing the shell template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct {
		Title   string
		Version string
	}{opts.Title, h.assets["app.js"].etag}); err != nil {
		return nil, fmt.Errorf("ui: rendering the shell: %w", err)
	}
	h.shell = buf.Bytes()
	h.shellET = etagOf(h.shell)
	return h, nil
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// Owns reports whether the UI answers path: the root, the assets, the
// whoami endpoint and every page path.
func Owns(p string) bool {
	if p == "/" || p == "/favicon.ico" || p == WhoamiPath || strings.HasPrefix(p, StaticPrefix) {
		return true
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	for _, pre := range pagePrefixes {
		if first == pre {
			return true
		}
	}
	return false
}

// setSecurityHeaders applies the headers every UI response carries: a
// strict Content-Security-Policy (our own scripts and styles only, no
// inline code, no framing), no MIME sniffing and no referrer leaks.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// ServeHTTP answers the UI's paths; others get a plain 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	p := r.URL.Path
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case p == WhoamiPath:
		h.serveWhoami(w, r)
	case p == "/favicon.ico":
		h.serveAsset(w, r, "favicon.svg")
	case strings.HasPrefix(p, StaticPrefix):
		h.serveAsset(w, r, strings.TrimPrefix(p, StaticPrefix))
	case Owns(p):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", h.shellET)
		http.ServeContent(w, r, "", h.modTime, bytes.NewReader(h.shell))
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("ETag", a.etag)
	// Revalidate every time: the ETag makes that a 304 without a body.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(a.body))
}

func (h *Handler) serveWhoami(w http.ResponseWriter, r *http.Request) {
	v := Viewer{Authenticated: true}
	if h.opts.Viewer != nil {
		v = h.opts.Viewer(r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
