package caddymodule

// Browser sessions: the UI's password login as an alternative to the
// browser's Basic prompt.
//
//   - POST /login (form: username, password, csrf_token, next) verifies
//     the password with the Basic verifier (same bcrypt check, same
//     timing for unknown users), then starts a session: a 256-bit token in
//     the mlflow_session cookie (HttpOnly, SameSite=Strict, Path=/; over
//     HTTPS, direct or through a trusted TLS-terminating proxy, named
//     __Host-mlflow_session and Secure), its SHA-256 in the
//     auth.sessions bucket. Sessions end
//     after 12h unused or 7d in all, when the user is deleted or its
//     password changes, and at logout.
//   - Login CSRF: the form carries a token that must equal the
//     mlflow_login_csrf cookie (HttpOnly, SameSite=Strict, Path=/login;
//     over TLS __Host-mlflow_login_csrf, Secure, Path=/ as the prefix
//     requires), which /ui/whoami hands to signed-out viewers.
//   - Failed sign-ins are throttled per username+IP and per IP, and
//     answered with one generic message (303 back to /login?error=...).
//   - POST /logout (form or header csrf_token) deletes the session.
//   - Every state-changing request authenticated by the cookie must carry
//     the session's CSRF token (X-CSRF-Token, or a csrf_token form field)
//     and must not come from another origin; otherwise 403.

import (
	"context"
	"crypto/sha256"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

const (
	// loginCSRFCookie binds the login form to the browser that loaded it
	// (loginCSRFCookieFor names it per connection).
	loginCSRFCookie = "mlflow_login_csrf"
	// loginCSRFMaxAge is how long a login form stays usable.
	loginCSRFMaxAge = 12 * time.Hour
	// csrfHeader carries the session's CSRF token on API calls.
	csrfHeader = "X-CSRF-Token"
	// csrfField carries it in HTML forms.
	csrfField = "csrf_token"
	// uiRequestHeader marks the UI's own fetches: their 401s carry no
	// WWW-Authenticate, so the browser shows no Basic prompt and the UI
	// sends the user to its login page instead.
	uiRequestHeader = "X-Requested-With"
	uiRequestValue  = "mlflow-ui"
	// maxFormBody bounds login and logout forms.
	maxFormBody = 16 << 10
	// defaultNext is where a login lands without a usable next.
	defaultNext = "/experiments"
	// csrfMessage is the 403 message for a missing or wrong CSRF token.
	csrfMessage = "CSRF token missing or invalid."
)

// sessionState is the gateway's session machinery; nil when password
// sign-in is off (no basic in the auth block).
type sessionState struct {
	basic    *authn.Basic
	sessions *authn.Sessions
	store    authstore.Store
	limiter  *loginLimiter
	idle     time.Duration
	lifetime time.Duration
	lastGC   time.Time
	gcMu     sync.Mutex
}

// newSessions builds the session verifier for the authenticator: only
// with Basic, as a login is a password check.
func newSessions(users authstore.Store, basic *authn.Basic) (*authn.Sessions, error) {
	if basic == nil {
		return nil, nil
	}
	return authn.NewSessions(users, users, authn.SessionOptions{})
}

func newSessionState(basic *authn.Basic, sessions *authn.Sessions, users authstore.Store) *sessionState {
	if basic == nil || sessions == nil {
		return nil
	}
	return &sessionState{
		basic: basic, sessions: sessions, store: users,
		limiter:  newLoginLimiter(users.Throttle()),
		idle:     authn.DefaultSessionIdle,
		lifetime: sessions.Lifetime(),
	}
}

// gc deletes expired sessions, at most once an hour (called at login).
func (s *sessionState) gc(ctx context.Context, log *zap.Logger) {
	now := time.Now()
	s.gcMu.Lock()
	if now.Sub(s.lastGC) < time.Hour {
		s.gcMu.Unlock()
		return
	}
	s.lastGC = now
	s.gcMu.Unlock()
	if _, err := s.store.DeleteExpiredSessions(ctx, now.Add(-s.lifetime), now.Add(-s.idle)); err != nil {
		log.Warn("deleting expired sessions", zap.Error(err))
	}
}

// sessionRoute answers POST /login and /logout; it reports whether it did.
func (g *gateway) sessionRoute(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/login" && r.Method != http.MethodGet && r.Method != http.MethodHead:
		g.login(w, r)
		return true
	case r.URL.Path == "/logout":
		g.logout(w, r)
		return true
	}
	return false
}

// login verifies a password and starts a session.
func (g *gateway) login(w http.ResponseWriter, r *http.Request) {
	rec := &auditRecord{start: time.Now(), route: "Login"}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { g.writeAudit(r, rec, sw.status) }()
	noStore(sw)
	if !parseForm(sw, r, rec) {
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	fail := func(code, reason string) {
		rec.reason = reason
		q := url.Values{"error": {code}}
		if r.PostForm.Get("next") != "" {
			q.Set("next", next)
		}
		http.Redirect(sw, r, "/login?"+q.Encode(), http.StatusSeeOther)
	}
	s := g.sess
	if s == nil {
		fail("unavailable", "password sign-in is off (basic is not enabled)")
		return
	}
	c, _ := r.Cookie(loginCSRFName(r))
	if c == nil || !authn.SameToken(c.Value, r.PostForm.Get(csrfField)) || !sameOrigin(r) {
		fail("expired", "login CSRF token missing or invalid")
		return
	}
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	userKey, ipKey := loginKeys(clientIP(r), user)
	// The attempt takes its tokens now, before the slow password check,
	// so attempts sent at once cannot all pass before one has failed.
	switch ok, err := s.limiter.allow(r.Context(), userKey, ipKey); {
	case err != nil:
		g.log.Error("sign-in: the throttle failed", zap.Error(err))
		fail("server", "sign-in throttle unavailable")
		return
	case !ok:
		fail("throttled", "too many failed sign-ins from this address")
		return
	}
	p, err := s.basic.Authenticate(r.Context(), user, pass)
	if err != nil {
		if !errors.Is(err, authn.ErrInvalidCredentials) && !errors.Is(err, authn.ErrNoCredentials) {
			if err := s.limiter.refund(r.Context(), userKey, ipKey); err != nil {
				g.log.Warn("sign-in: giving back a throttle token", zap.Error(err))
			}
			g.log.Error("sign-in: looking up the user failed", zap.Error(err))
			fail("server", "user lookup failed")
			return
		}
		rec.authErr = err // metrics.go
		fail("invalid", err.Error())
		return
	}
	if err := s.limiter.succeeded(r.Context(), userKey, ipKey); err != nil {
		g.log.Warn("sign-in: resetting the throttle", zap.Error(err))
	}
	// A cookie the browser already had (perhaps planted) is never reused.
	if old := authn.SessionToken(r); old != "" {
		_ = s.sessions.End(r.Context(), old)
	}
	token, srec, err := s.sessions.Start(r.Context(), p.Username)
	if err != nil {
		g.log.Error("sign-in: starting the session failed", zap.Error(err))
		fail("server", "starting the session failed")
		return
	}
	rec.principal = &authn.Principal{Username: p.Username, Method: authn.MethodSession, SessionID: srec.ID}
	rec.allowed, rec.reason = true, "signed in with a password"
	http.SetCookie(sw, sessionCookie(r, token, int(s.lifetime/time.Second)))
	http.SetCookie(sw, loginCSRFCookieFor(r, "", -1))
	s.gc(r.Context(), g.log)
	http.Redirect(sw, r, next, http.StatusSeeOther)
}

// logout ends the session of the request's cookie and clears the cookie.
func (g *gateway) logout(w http.ResponseWriter, r *http.Request) {
	rec := &auditRecord{start: time.Now(), route: "Logout"}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { g.writeAudit(r, rec, sw.status) }()
	noStore(sw)
	// parseForm refuses a GET: it must never sign anyone out (a link or an
	// image could).
	if !parseForm(sw, r, rec) {
		return
	}
	if tok := authn.SessionToken(r); tok != "" && g.sess != nil {
		p, err := g.sess.sessions.Verify(r.Context(), tok)
		switch {
		case err == nil:
			rec.principal = p
			sent := r.Header.Get(csrfHeader)
			if sent == "" {
				sent = r.PostForm.Get(csrfField)
			}
			if !sameOrigin(r) || !authn.SameToken(sent, p.CSRFToken) {
				rec.reason = "CSRF token missing or invalid"
				writeMLflowError(sw, http.StatusForbidden, "PERMISSION_DENIED", csrfMessage)
				return
			}
			if err := g.sess.sessions.End(r.Context(), tok); err != nil {
				g.log.Error("sign-out: deleting the session failed", zap.Error(err))
				writeMLflowError(sw, http.StatusInternalServerError, "INTERNAL_ERROR", "Internal server error; see the server log.")
				return
			}
			rec.reason = "signed out"
		case errors.Is(err, authn.ErrInvalidCredentials):
			rec.reason = "no live session: " + err.Error()
		default:
			g.log.Error("sign-out: looking up the session failed", zap.Error(err))
			writeMLflowError(sw, http.StatusInternalServerError, "INTERNAL_ERROR", "Internal server error; see the server log.")
			return
		}
	} else {
		rec.reason = "no session cookie"
	}
	rec.allowed = true
	http.SetCookie(sw, sessionCookie(r, "", -1))
	http.Redirect(sw, r, "/login?signed_out=1", http.StatusSeeOther)
}

// checkCSRF enforces the CSRF rules on a request authenticated by the
// session cookie; it answers 403 and reports false when they fail.
//
// Basic credentials (which the browser caches after its prompt and sends
// on its own) and client certificates are ambient too: a state-changing
// request they authenticate must not come from another origin either
// (a cross-site form can POST any body to upload-artifact). Clients that
// are no browser send neither Origin nor Sec-Fetch-Site.
func (g *gateway) checkCSRF(w http.ResponseWriter, r *http.Request, p *authn.Principal, rec *auditRecord) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	switch p.Method {
	case authn.MethodBasic, authn.MethodCert:
		if !sameOrigin(r) {
			rec.reason = "cross-origin request with browser-sent credentials (" + string(p.Method) + ")"
			writeMLflowError(w, http.StatusForbidden, "PERMISSION_DENIED", csrfMessage)
			return false
		}
		return true
	case authn.MethodSession:
	default:
		return true
	}
	if !sameOrigin(r) {
		rec.reason = "cross-origin request with a session cookie"
		writeMLflowError(w, http.StatusForbidden, "PERMISSION_DENIED", csrfMessage)
		return false
	}
	sent := r.Header.Get(csrfHeader)
	if sent == "" && isForm(r) {
		if body, err := bufferBody(r); err == nil {
			if vals, err := url.ParseQuery(string(body)); err == nil {
				sent = vals.Get(csrfField)
			}
		}
	}
	if !authn.SameToken(sent, p.CSRFToken) {
		rec.reason = "CSRF token missing or invalid"
		writeMLflowError(w, http.StatusForbidden, "PERMISSION_DENIED", csrfMessage)
		return false
	}
	return true
}

// keepSession returns the writer for a management call. When a session
// changes its own user's password, the new password digest (which ends
// every other session of the user) is recorded in this session before the
// answer goes out, so the browser's next request is still signed in.
func (g *gateway) keepSession(w *statusWriter, r *http.Request, name string, p *authn.Principal, params *api.Params) http.ResponseWriter {
	if name != "UpdateUserPassword" || p.Method != authn.MethodSession || g.sess == nil {
		return w
	}
	if u := params.String("username"); u != "" && u != p.Username {
		return w
	}
	return &rebindWriter{statusWriter: w, rebind: func() {
		u, err := g.users.GetUser(r.Context(), p.Username)
		if err == nil {
			err = g.users.RebindSession(r.Context(), authn.HashToken(authn.SessionToken(r)), authn.PasswordDigest(u.PasswordHash))
		}
		if err != nil {
			g.log.Warn("keeping the session after a password change", zap.Error(err))
		}
	}}
}

// rebindWriter runs rebind once, before a 200 answer is written.
type rebindWriter struct {
	*statusWriter
	rebind func()
	done   bool
}

// WriteHeader rebinds the session first when the change succeeded.
func (w *rebindWriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		if code == http.StatusOK {
			w.rebind()
		}
	}
	w.statusWriter.WriteHeader(code)
}

// Write implies a 200.
func (w *rebindWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.statusWriter.Write(b)
}

// sessionCookie is the session cookie with its flags; maxAge < 0 clears it.
// Over HTTPS (authn.SecureRequest) it is a __Host- cookie: Secure, Path=/,
// no Domain.
func sessionCookie(r *http.Request, token string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     authn.SessionCookieName(r),
		Value:    token,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   authn.SecureRequest(r),
		// Strict: the cookie never rides on a request another site
		// starts. Deep links from elsewhere still work: the shell needs no
		// cookie, and its own fetches are same-site.
		SameSite: http.SameSiteStrictMode,
	}
}

// loginCSRFName is the login CSRF cookie's name for r: over HTTPS the
// __Host- one (which only a secure page of this host can set).
func loginCSRFName(r *http.Request) string {
	if authn.SecureRequest(r) {
		return "__Host-" + loginCSRFCookie
	}
	return loginCSRFCookie
}

// loginCSRFCookieFor is the login CSRF cookie with its flags; maxAge < 0
// clears it. Over plain HTTP it is scoped to /login; a __Host- cookie must
// have Path=/.
func loginCSRFCookieFor(r *http.Request, v string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: loginCSRFName(r), Value: v, Path: "/login", MaxAge: maxAge,
		HttpOnly: true, Secure: authn.SecureRequest(r), SameSite: http.SameSiteStrictMode}
	if authn.SecureRequest(r) {
		c.Path = "/"
	}
	return c
}

// loginCSRF returns the login-form token of r's browser, setting the
// login CSRF cookie when it has none.
func loginCSRF(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(loginCSRFName(r)); err == nil && len(c.Value) == 43 && isB64URL(c.Value) {
		v = c.Value
	} else {
		tok, _, err := authn.NewToken()
		if err != nil {
			return ""
		}
		v = strings.TrimPrefix(tok, authn.TokenPrefix)
	}
	http.SetCookie(w, loginCSRFCookieFor(r, v, int(loginCSRFMaxAge/time.Second)))
	return v
}

func isB64URL(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseForm reads the bounded urlencoded form of a POST, answering 405 to
// other methods and 4xx to a body it cannot read.
func parseForm(w http.ResponseWriter, r *http.Request, rec *auditRecord) bool {
	if r.Method != http.MethodPost {
		rec.reason = "method not allowed"
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	if r.Body != nil && r.Body != http.NoBody && !isForm(r) {
		rec.reason = "not a form"
		http.Error(w, "expected an application/x-www-form-urlencoded form", http.StatusUnsupportedMediaType)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		rec.reason = "unreadable form"
		http.Error(w, "unreadable form", http.StatusBadRequest)
		return false
	}
	return true
}

func isForm(r *http.Request) bool {
	m, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && m == "application/x-www-form-urlencoded"
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "same-origin")
}

// sameOrigin reports whether a browser request may come from our own
// pages: Sec-Fetch-Site, when sent, is same-origin (or none: typed by the
// user), and Origin, when sent, names this host.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes "null"
	}
	if authn.SecureRequest(r) && u.Scheme != "https" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// safeNext returns next when it is a path on this site, else the default:
// one leading slash, no scheme or host, no backslash or control bytes, and
// not the login or logout page.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' {
		return defaultNext
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return defaultNext
	}
	for _, c := range []byte(next) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return defaultNext
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return defaultNext
	}
	if p := u.Path; p == "/login" || p == "/logout" || strings.HasPrefix(p, "/login/") {
		return defaultNext
	}
	return next
}

func clientIP(r *http.Request) string {
	if ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// loginLimiter throttles failed sign-ins with token buckets: per
// username+IP (loginBurst failures, then one try per loginRefill) and per
// IP (ipBurst, then one per ipRefill), so neither guessing one account's
// password nor spraying many accounts from one address is fast. Every
// attempt takes a token before its password check; a success gives it
// back. The buckets live in the auth store's Throttle: in memory for a
// bbolt store, in the database for a PostgreSQL one, so that a username
// locked out on one replica is locked out on all.
type loginLimiter struct {
	th  authstore.Throttle
	now func() time.Time
}

const (
	loginBurst  = 5
	loginRefill = 30 * time.Second
	ipBurst     = 30
	ipRefill    = 2 * time.Second
)

// loginKeys are the throttle's keys for a sign-in of user from ip: per
// username and address, and per address. The username is hashed, so a
// bucket's key stays small whatever was typed.
func loginKeys(ip, user string) (userKey, ipKey string) {
	sum := sha256.Sum256([]byte(user))
	return "u\x00" + ip + "\x00" + string(sum[:]), "i\x00" + ip
}

func newLoginLimiter(th authstore.Throttle) *loginLimiter {
	return &loginLimiter{th: th, now: time.Now}
}

// limitsOf gives each key its bucket shape.
func limitsOf(keys []string) []authstore.Limit {
	out := make([]authstore.Limit, len(keys))
	for i, k := range keys {
		out[i] = authstore.Limit{Key: k, Burst: loginBurst, Refill: loginRefill}
		if strings.HasPrefix(k, "i\x00") {
			out[i] = authstore.Limit{Key: k, Burst: ipBurst, Refill: ipRefill}
		}
	}
	return out
}

// allow reports whether every key has a token left and, if so, takes one
// of each: an attempt pays up front, so that attempts in flight count.
// A failed attempt leaves its tokens spent; succeeded and refund give
// them back. An error (the shared store is unreachable) refuses.
func (l *loginLimiter) allow(ctx context.Context, keys ...string) (bool, error) {
	return l.th.Take(ctx, l.now(), limitsOf(keys)...)
}

// refund gives back the tokens an attempt took (it was not checked).
func (l *loginLimiter) refund(ctx context.Context, keys ...string) error {
	return l.th.Give(ctx, l.now(), limitsOf(keys)...)
}

// succeeded forgets the failures of userKey and gives ipKey the token
// the attempt took (only failures count against an address).
func (l *loginLimiter) succeeded(ctx context.Context, userKey, ipKey string) error {
	if err := l.th.Forget(ctx, userKey); err != nil {
		return err
	}
	return l.refund(ctx, ipKey)
}
