package caddymodule_test

// Browser sessions over HTTP: login, cookie flags, login CSRF, session
// CSRF on state changes, Origin checks, open redirects, logout, password
// changes and user deletion ending sessions, throttling, restarts.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// sessionEnv is a plain-HTTP server with basic, api_tokens and an admin.
type sessionEnv struct {
	srv      *caddytest.Server
	opts     caddytest.Options
	c        *http.Client // never follows redirects, keeps no cookies
	auditLog string
	tls      bool // the server speaks HTTPS: the cookies are __Host- ones
}

// sessionName and loginName are the cookie names the server uses.
func (e *sessionEnv) sessionName() string {
	if e.tls {
		return "__Host-mlflow_session"
	}
	return "mlflow_session"
}

func (e *sessionEnv) loginName() string {
	if e.tls {
		return "__Host-mlflow_login_csrf"
	}
	return "mlflow_login_csrf"
}

func startSessions(t *testing.T) *sessionEnv {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ADMIN_HASH", string(hash))
	audit := filepath.Join(t.TempDir(), "audit.log")
	opts := caddytest.Options{
		Global: []string{fmt.Sprintf(`log audit {
		output file %q
		format json
		include http.handlers.mlflow.audit
		level INFO
	}`, audit)},
		Directives: []string{`auth {
			admin root {env.MLFLOW_TEST_ADMIN_HASH}
			basic
			api_tokens
			default_permission READ
		}`},
	}
	srv := caddytest.Start(t, opts)
	return &sessionEnv{srv: srv, opts: opts, c: noRedirects(srv.Client()), auditLog: audit}
}

func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// do sends a request with the given headers and cookies.
func (e *sessionEnv) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

type whoami struct {
	AuthEnabled   bool   `json:"auth_enabled"`
	Authenticated bool   `json:"authenticated"`
	Username      string `json:"username"`
	IsAdmin       bool   `json:"is_admin"`
	CSRFToken     string `json:"csrf_token"`
	Session       bool   `json:"session"`
}

func (e *sessionEnv) whoami(t *testing.T, cookies ...*http.Cookie) (whoami, *http.Response) {
	t.Helper()
	resp, body := e.do(t, "GET", "/ui/whoami", nil, map[string]string{"X-Requested-With": "mlflow-ui"}, cookies...)
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("whoami: %v: %s", err, body)
	}
	return w, resp
}

// loginForm fetches a login CSRF token and its cookie, as the login page does.
func (e *sessionEnv) loginForm(t *testing.T) (string, *http.Cookie) {
	t.Helper()
	w, resp := e.whoami(t)
	c := cookieOf(resp, e.loginName())
	if w.Authenticated || w.CSRFToken == "" || c == nil || c.Value != w.CSRFToken {
		t.Fatalf("signed-out whoami: %+v, cookie %v", w, c)
	}
	return w.CSRFToken, c
}

// postLogin posts the login form; it returns the answer's Location and
// session cookie (nil when none was set).
func (e *sessionEnv) postLogin(t *testing.T, form url.Values, hdr map[string]string, cookies ...*http.Cookie) (string, *http.Cookie, *http.Response) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range hdr {
		h[k] = v
	}
	resp, body := e.do(t, "POST", "/login", strings.NewReader(form.Encode()), h, cookies...)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login = %d %s, want 303", resp.StatusCode, body)
	}
	c := cookieOf(resp, e.sessionName())
	if c != nil && c.MaxAge < 0 {
		c = nil
	}
	return resp.Header.Get("Location"), c, resp
}

// login signs user in and returns the session cookie and CSRF token.
func (e *sessionEnv) login(t *testing.T, user, pass string) (*http.Cookie, string) {
	t.Helper()
	tok, lc := e.loginForm(t)
	loc, sc, _ := e.postLogin(t, url.Values{"username": {user}, "password": {pass}, "csrf_token": {tok}}, nil, lc)
	if sc == nil || loc != "/experiments" {
		t.Fatalf("login %s: Location %q, cookie %v", user, loc, sc)
	}
	w, _ := e.whoami(t, sc)
	if !w.Authenticated || !w.Session || w.Username != user || w.CSRFToken == "" {
		t.Fatalf("whoami after login: %+v", w)
	}
	return sc, w.CSRFToken
}

func createExp(name string) io.Reader {
	return strings.NewReader(fmt.Sprintf(`{"name":%q}`, name))
}

var jsonHdr = map[string]string{"Content-Type": "application/json"}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestSessionLoginFlow(t *testing.T) {
	e := startSessions(t)

	// Signed out: whoami says so and hands out the login form token in an
	// HttpOnly, SameSite=Strict cookie scoped to /login.
	tok, lc := e.loginForm(t)
	if !lc.HttpOnly || lc.SameSite != http.SameSiteStrictMode || lc.Path != "/login" || lc.Secure {
		t.Errorf("login CSRF cookie flags: %+v", lc)
	}

	// Wrong password and unknown user: the same answer, no session.
	for _, u := range []string{"root", "nobody"} {
		loc, sc, _ := e.postLogin(t, url.Values{"username": {u}, "password": {"wrong-password-123"}, "csrf_token": {tok}, "next": {"/models"}}, nil, lc)
		if loc != "/login?error=invalid&next=%2Fmodels" || sc != nil {
			t.Errorf("bad login as %s: Location %q, cookie %v", u, loc, sc)
		}
	}

	// Good login lands on next, with a proper cookie.
	loc, sc, _ := e.postLogin(t, url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok}, "next": {"/experiments/0?tab=runs"}}, nil, lc)
	if loc != "/experiments/0?tab=runs" || sc == nil {
		t.Fatalf("login: Location %q, cookie %v", loc, sc)
	}
	if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Secure || sc.MaxAge <= 0 {
		t.Errorf("session cookie flags: %+v", sc)
	}
	if len(sc.Value) < 43 {
		t.Errorf("session token too short: %d chars", len(sc.Value))
	}
	w, _ := e.whoami(t, sc)
	if !w.Authenticated || !w.Session || w.Username != "root" || !w.IsAdmin || w.CSRFToken == "" {
		t.Fatalf("whoami: %+v", w)
	}
	csrf := w.CSRFToken

	// Reads need no CSRF token.
	if resp, body := e.do(t, "GET", "/ajax-api/2.0/mlflow/experiments/search?max_results=10", nil, nil, sc); resp.StatusCode != 200 {
		t.Errorf("GET with session: %d %s", resp.StatusCode, body)
	}
	// The session survives a restart (stored in the bbolt file).
	e.srv.Restart(t, e.opts)
	if resp, body := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil, sc); resp.StatusCode != 200 || !strings.Contains(body, `"root"`) {
		t.Errorf("session after restart: %d %s", resp.StatusCode, body)
	}

	// Basic credentials keep working (no CSRF token: not the cookie).
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("by-basic"), with(jsonHdr, "Authorization", basic("root", adminPassword))); resp.StatusCode != 200 {
		t.Errorf("basic POST: %d %s", resp.StatusCode, body)
	}
	// An Authorization header is judged alone: a wrong one fails even
	// with a good cookie.
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, map[string]string{"Authorization": basic("root", "wrong")}, sc); resp.StatusCode != 401 {
		t.Errorf("bad Authorization + good cookie: %d, want 401", resp.StatusCode)
	}

	// Logout needs the CSRF token.
	logout := func(form url.Values, hdr map[string]string) *http.Response {
		resp, _ := e.do(t, "POST", "/logout", strings.NewReader(form.Encode()), with(hdr, "Content-Type", "application/x-www-form-urlencoded"), sc)
		return resp
	}
	if resp := logout(url.Values{}, nil); resp.StatusCode != 403 {
		t.Errorf("logout without CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp := logout(url.Values{"csrf_token": {csrf}}, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-origin logout: %d, want 403", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", "/logout", nil, nil, sc); resp.StatusCode != 405 {
		t.Errorf("GET /logout: %d, want 405", resp.StatusCode)
	}
	resp := logout(url.Values{"csrf_token": {csrf}}, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login?signed_out=1" {
		t.Errorf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := cookieOf(resp, "mlflow_session"); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout does not clear the cookie: %+v", c)
	}
	// The old cookie is dead server-side: replaying it fails.
	resp, _ = e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, map[string]string{"X-Requested-With": "mlflow-ui"}, sc)
	if resp.StatusCode != 401 {
		t.Errorf("replayed cookie after logout: %d, want 401", resp.StatusCode)
	}
	if w, _ := e.whoami(t, sc); w.Authenticated {
		t.Errorf("whoami with a logged-out cookie: %+v", w)
	}

	// The audit log has the sign-ins and never a secret.
	data, err := os.ReadFile(e.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, secret := range []string{adminPassword, "wrong-password-123", sc.Value, csrf, tok} {
		if strings.Contains(log, secret) {
			t.Errorf("audit log contains a secret %q", secret[:6])
		}
	}
	for _, want := range []string{`"route":"Login"`, `"route":"Logout"`, `"auth_method":"session"`, `basic: unknown user`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestSessionCSRF(t *testing.T) {
	e := startSessions(t)
	sc, csrf := e.login(t, "root", adminPassword)
	post := func(name string, hdr map[string]string) (int, string) {
		resp, body := e.do(t, "POST", "/ajax-api/2.0/mlflow/experiments/create", createExp(name), with(jsonHdr, flatten(hdr)...), sc)
		return resp.StatusCode, body
	}
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no-token", nil, 403},
		{"wrong-token", map[string]string{"X-CSRF-Token": "AAAA" + csrf[4:]}, 403},
		{"empty-token", map[string]string{"X-CSRF-Token": ""}, 403},
		{"cross-origin", map[string]string{"X-CSRF-Token": csrf, "Origin": "http://evil.example"}, 403},
		{"null-origin", map[string]string{"X-CSRF-Token": csrf, "Origin": "null"}, 403},
		{"cross-site-fetch", map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}, 403},
		{"right-token", map[string]string{"X-CSRF-Token": csrf}, 200},
		{"right-token-same-origin", map[string]string{"X-CSRF-Token": csrf, "Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}, 200},
	} {
		st, body := post("csrf-"+c.name, c.hdr)
		if st != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, st, body, c.want)
		}
		if c.want == 403 && (!strings.Contains(body, `"PERMISSION_DENIED"`) || !strings.Contains(body, "CSRF token missing or invalid.")) {
			t.Errorf("%s: body %s", c.name, body)
		}
	}
	// Other unsafe methods too (PATCH, DELETE), and a form field works.
	if resp, body := e.do(t, "PATCH", "/api/2.0/mlflow/users/update-admin", strings.NewReader(`{"username":"root","is_admin":true}`), jsonHdr, sc); resp.StatusCode != 403 {
		t.Errorf("PATCH without token: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "DELETE", "/api/2.0/mlflow/users/delete", strings.NewReader(`{"username":"root"}`), jsonHdr, sc); resp.StatusCode != 403 {
		t.Errorf("DELETE without token: %d %s", resp.StatusCode, body)
	}
	form := url.Values{"csrf_token": {csrf}, "experiment_id": {"0"}}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/delete", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, sc); resp.StatusCode == 403 {
		t.Errorf("form field csrf_token refused: %d %s", resp.StatusCode, body)
	}
	// Another session's token does not fit this session.
	_, other := e.login(t, "root", adminPassword)
	if st, _ := post("csrf-other-session", map[string]string{"X-CSRF-Token": other}); st != 403 {
		t.Errorf("another session's token: %d, want 403", st)
	}
}

func flatten(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func TestLoginCSRFAndRedirects(t *testing.T) {
	e := startSessions(t)
	tok, lc := e.loginForm(t)
	good := func(next string) url.Values {
		return url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok}, "next": {next}}
	}

	// Login CSRF: no cookie, a wrong token, a foreign origin.
	for name, c := range map[string]struct {
		form    url.Values
		hdr     map[string]string
		cookies []*http.Cookie
	}{
		"no cookie":      {good("/models"), nil, nil},
		"wrong token":    {url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {"x" + tok[1:]}}, nil, []*http.Cookie{lc}},
		"no token":       {url.Values{"username": {"root"}, "password": {adminPassword}}, nil, []*http.Cookie{lc}},
		"foreign origin": {good("/models"), map[string]string{"Origin": "http://evil.example"}, []*http.Cookie{lc}},
	} {
		loc, sc, _ := e.postLogin(t, c.form, c.hdr, c.cookies...)
		if sc != nil || !strings.HasPrefix(loc, "/login?error=expired") {
			t.Errorf("%s: Location %q, session cookie %v", name, loc, sc)
		}
	}
	// A JSON body is no login form.
	if resp, _ := e.do(t, "POST", "/login", strings.NewReader(`{}`), jsonHdr, lc); resp.StatusCode != 415 {
		t.Errorf("JSON login: %d, want 415", resp.StatusCode)
	}

	// Open redirects land on /experiments.
	for _, next := range []string{"//evil.com", "https://evil.com", `/\evil.com`, "/\\/evil.com", "javascript:alert(1)",
		"evil.com", "/login", "/logout", "/\t/evil.com", "///evil.com", "http:/evil.com"} {
		loc, sc, _ := e.postLogin(t, good(next), nil, lc)
		if loc != "/experiments" || sc == nil {
			t.Errorf("next=%q: Location %q", next, loc)
		}
	}
	// Paths on this site are kept, query included.
	if loc, _, _ := e.postLogin(t, good("/experiments/1/runs/abc?x=1&y=2"), nil, lc); loc != "/experiments/1/runs/abc?x=1&y=2" {
		t.Errorf("same-site next: %q", loc)
	}

	// A session cookie presented at login is never reused (fixation).
	_, first, _ := e.postLogin(t, good(""), nil, lc)
	_, second, _ := e.postLogin(t, good(""), nil, lc, first)
	if first.Value == second.Value {
		t.Error("login reused the presented session")
	}
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil, first); resp.StatusCode != 401 {
		t.Errorf("the replaced session still works: %d", resp.StatusCode)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := startSessions(t)
	tok, lc := e.loginForm(t)
	form := func(pw string) url.Values {
		return url.Values{"username": {"root"}, "password": {pw}, "csrf_token": {tok}}
	}
	for i := 0; i < 5; i++ {
		if loc, _, _ := e.postLogin(t, form("wrong-password-123"), nil, lc); !strings.HasPrefix(loc, "/login?error=invalid") {
			t.Fatalf("failure %d: %q", i+1, loc)
		}
	}
	// Now even the right password waits.
	if loc, sc, _ := e.postLogin(t, form(adminPassword), nil, lc); loc != "/login?error=throttled" || sc != nil {
		t.Errorf("after 5 failures: Location %q, cookie %v", loc, sc)
	}
	// Basic on the API is not throttled by the form (it has its own cache).
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, map[string]string{"Authorization": basic("root", adminPassword)}); resp.StatusCode != 200 {
		t.Errorf("basic after throttled form: %d", resp.StatusCode)
	}
}

func TestSessionEndsWithPasswordChangeAndUserDeletion(t *testing.T) {
	e := startSessions(t)
	admin := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "application/json"}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/users/create", strings.NewReader(`{"username":"bob","password":"`+bobPassword+`"}`), admin); resp.StatusCode != 200 {
		t.Fatalf("create bob: %d %s", resp.StatusCode, body)
	}
	a, csrfA := e.login(t, "bob", bobPassword)
	b, _ := e.login(t, "bob", bobPassword)

	// A session must prove the current password to change it: a stolen
	// cookie or an unattended browser cannot take the account over (the
	// changing session survives while every other one ends).
	newPw := "bob-new-password-456"
	for name, c := range map[string]struct {
		body string
		want int
	}{
		"no current password":    {`{"password":"taken-over-password-1"}`, 400},
		"wrong current password": {`{"password":"taken-over-password-1","current_password":"not-bobs-password"}`, 403},
	} {
		if resp, body := e.do(t, "PATCH", "/ajax-api/2.0/mlflow/users/update-password", strings.NewReader(c.body), with(jsonHdr, "X-CSRF-Token", csrfA), a); resp.StatusCode != c.want {
			t.Errorf("update-password, %s: %d %s, want %d", name, resp.StatusCode, body, c.want)
		}
	}
	tok, lc := e.loginForm(t)
	if _, sc, _ := e.postLogin(t, url.Values{"username": {"bob"}, "password": {"taken-over-password-1"}, "csrf_token": {tok}}, nil, lc); sc != nil {
		t.Fatal("the password was changed without the current one")
	}

	// Session A changes bob's password: A stays, B ends.
	if resp, body := e.do(t, "PATCH", "/ajax-api/2.0/mlflow/users/update-password", strings.NewReader(`{"password":"`+newPw+`","current_password":"`+bobPassword+`"}`), with(jsonHdr, "X-CSRF-Token", csrfA), a); resp.StatusCode != 200 {
		t.Fatalf("update-password: %d %s", resp.StatusCode, body)
	}
	current := func(c *http.Cookie) int {
		resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil, c)
		return resp.StatusCode
	}
	if st := current(a); st != 200 {
		t.Errorf("session that changed the password: %d, want 200", st)
	}
	if st := current(b); st != 401 {
		t.Errorf("other session after password change: %d, want 401", st)
	}
	// An admin resetting the password ends A too.
	if resp, body := e.do(t, "PATCH", "/api/2.0/mlflow/users/update-password", strings.NewReader(`{"username":"bob","password":"reset-by-admin-789"}`), admin); resp.StatusCode != 200 {
		t.Fatalf("admin reset: %d %s", resp.StatusCode, body)
	}
	if st := current(a); st != 401 {
		t.Errorf("session after admin reset: %d, want 401", st)
	}
	// Deleting the user ends its sessions.
	c, _ := e.login(t, "bob", "reset-by-admin-789")
	if resp, body := e.do(t, "DELETE", "/api/2.0/mlflow/users/delete", strings.NewReader(`{"username":"bob"}`), admin); resp.StatusCode != 200 {
		t.Fatalf("delete bob: %d %s", resp.StatusCode, body)
	}
	if st := current(c); st != 401 {
		t.Errorf("session of a deleted user: %d, want 401", st)
	}
}

func TestAuthUIRequestsGetNoBasicPrompt(t *testing.T) {
	e := startSessions(t)
	resp, _ := e.do(t, "GET", "/ajax-api/2.0/mlflow/experiments/search", nil, map[string]string{"X-Requested-With": "mlflow-ui"})
	if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) != 0 {
		t.Errorf("UI 401: %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	resp, _ = e.do(t, "GET", "/ajax-api/2.0/mlflow/experiments/search", nil, nil)
	if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) == 0 {
		t.Errorf("client 401: %d WWW-Authenticate %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// A dead cookie is cleared on the 401.
	resp, _ = e.do(t, "GET", "/ajax-api/2.0/mlflow/experiments/search", nil, map[string]string{"X-Requested-With": "mlflow-ui"},
		&http.Cookie{Name: "mlflow_session", Value: strings.Repeat("A", 43)})
	if c := cookieOf(resp, "mlflow_session"); resp.StatusCode != 401 || c == nil || c.MaxAge >= 0 {
		t.Errorf("dead cookie: %d, cookie %+v", resp.StatusCode, c)
	}
	// The login page is the UI shell, for anyone.
	if resp, body := e.do(t, "GET", "/login?next=/models", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "app.js") {
		t.Errorf("GET /login: %d", resp.StatusCode)
	}
}

// TestSessionCookieSecureOverTLS: over HTTPS the cookies are __Host-
// cookies (Secure, Path=/, no Domain: the browser takes them only from a
// secure page of this host, so a sibling subdomain or a plain-HTTP answer
// cannot plant or shadow them), an unprefixed session cookie counts for
// nothing, and an http:// Origin is foreign.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	env := startSecure(t, "READ")
	e := &sessionEnv{srv: env.srv, c: noRedirects(env.client), tls: true}
	tok, lc := e.loginForm(t)
	if !lc.Secure || lc.Path != "/" || lc.Domain != "" || !lc.HttpOnly || lc.SameSite != http.SameSiteStrictMode {
		t.Errorf("login CSRF cookie over TLS: %+v", lc)
	}
	_, resp := e.whoami(t)
	if raw := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(raw, "__Host-mlflow_login_csrf=") || !strings.Contains(raw, "Path=/;") ||
		strings.Contains(raw, "Domain") || !strings.Contains(raw, "Secure") {
		t.Errorf("login CSRF Set-Cookie over TLS: %s", raw)
	}
	// The plain-HTTP name is not the login form's cookie over TLS.
	if loc, sc, _ := e.postLogin(t, url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok}}, nil,
		&http.Cookie{Name: "mlflow_login_csrf", Value: tok}); sc != nil || !strings.HasPrefix(loc, "/login?error=expired") {
		t.Errorf("login with the unprefixed CSRF cookie over TLS: %q %v", loc, sc)
	}
	_, sc, resp := e.postLogin(t, url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {tok}}, nil, lc)
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Domain != "" {
		t.Fatalf("session cookie over TLS: %+v", sc)
	}
	var rawSession string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "__Host-mlflow_session=") {
			rawSession = v
		}
		if strings.HasPrefix(v, "mlflow_session=") {
			t.Errorf("an unprefixed session cookie is set over TLS: %s", v)
		}
	}
	if !strings.Contains(rawSession, "Path=/;") || strings.Contains(rawSession, "Domain") || !strings.Contains(rawSession, "Secure") {
		t.Errorf("session Set-Cookie over TLS: %q", rawSession)
	}
	w, _ := e.whoami(t, sc)
	if !w.Session {
		t.Fatalf("whoami: %+v", w)
	}
	// The same token under the unprefixed name (what a plain-HTTP page or
	// a sibling subdomain could plant) is not a session over TLS.
	plain := &http.Cookie{Name: "mlflow_session", Value: sc.Value}
	if w, _ := e.whoami(t, plain); w.Authenticated {
		t.Errorf("unprefixed session cookie over TLS accepted: %+v", w)
	}
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil, plain); resp.StatusCode != 401 {
		t.Errorf("unprefixed session cookie over TLS: %d, want 401", resp.StatusCode)
	}
	u, _ := url.Parse(e.srv.URL)
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("tls-1"), with(jsonHdr, "X-CSRF-Token", w.CSRFToken, "Origin", "http://"+u.Host), sc); resp.StatusCode != 403 {
		t.Errorf("http Origin on https: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("tls-2"), with(jsonHdr, "X-CSRF-Token", w.CSRFToken, "Origin", e.srv.URL), sc); resp.StatusCode != 200 {
		t.Errorf("same origin on https: %d %s", resp.StatusCode, body)
	}
	// Sign-out clears the __Host- cookie (same name, Path and Secure, or
	// the browser would keep it).
	resp, _ = e.do(t, "POST", "/logout", strings.NewReader(url.Values{"csrf_token": {w.CSRFToken}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL}, sc)
	if c := cookieOf(resp, "__Host-mlflow_session"); resp.StatusCode != 303 || c == nil || c.MaxAge >= 0 || !c.Secure || c.Path != "/" {
		t.Errorf("logout over TLS: %d, cookie %+v", resp.StatusCode, c)
	}
}

// TestSessionCookiePlainHTTPIgnoresHostPrefix: over plain HTTP the
// session cookie keeps its plain name, and a __Host- cookie (which no
// browser sends to an http:// page) is not read.
func TestSessionCookiePlainHTTPIgnoresHostPrefix(t *testing.T) {
	e := startSessions(t)
	sc, _ := e.login(t, "root", adminPassword)
	if sc.Name != "mlflow_session" {
		t.Fatalf("session cookie over HTTP is %q", sc.Name)
	}
	if w, _ := e.whoami(t, &http.Cookie{Name: "__Host-mlflow_session", Value: sc.Value}); w.Authenticated {
		t.Errorf("__Host- cookie accepted over plain HTTP: %+v", w)
	}
}

// TestSessionTokenMintingNeedsPassword: an API token outlives the session
// that mints it (sign-out does not end it), so a session must send the
// password again (current_password) to create one, checked and throttled
// like a sign-in; for another user (an admin) too. Basic callers proved
// the password with the request and are unchanged.
func TestSessionTokenMintingNeedsPassword(t *testing.T) {
	e := startSessions(t)
	root := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "application/json"}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/users/create", strings.NewReader(`{"username":"bob","password":"`+bobPassword+`"}`), root); resp.StatusCode != 200 {
		t.Fatalf("create bob: %d %s", resp.StatusCode, body)
	}
	sc, csrf := e.login(t, "bob", bobPassword)
	mint := func(body string, cookie *http.Cookie, csrf string) (int, string) {
		t.Helper()
		resp, out := e.do(t, "POST", "/ajax-api/2.0/mlflow/users/tokens/create", strings.NewReader(body), with(jsonHdr, "X-CSRF-Token", csrf), cookie)
		return resp.StatusCode, out
	}
	if st, body := mint(`{"name":"ci"}`, sc, csrf); st != 400 || !strings.Contains(body, "current_password") || strings.Contains(body, "mlft_") {
		t.Errorf("session mint without the password: %d %s", st, body)
	}
	if st, body := mint(`{"name":"ci","current_password":"not-bobs-password"}`, sc, csrf); st != 403 || strings.Contains(body, "mlft_") {
		t.Errorf("session mint with a wrong password: %d %s", st, body)
	}
	st, body := mint(`{"name":"ci","current_password":"`+bobPassword+`"}`, sc, csrf)
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &out); st != 200 || err != nil || !strings.HasPrefix(out.Token, "mlft_") {
		t.Fatalf("session mint with the password: %d %s", st, body)
	}
	// The token works on its own.
	if resp, body := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, map[string]string{"Authorization": "Bearer " + out.Token}); resp.StatusCode != 200 || !strings.Contains(body, `"bob"`) {
		t.Errorf("minted token: %d %s", resp.StatusCode, body)
	}
	// Basic needs no extra field (the password came with the request).
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/users/tokens/create", strings.NewReader(`{"name":"basic"}`),
		with(jsonHdr, "Authorization", basic("bob", bobPassword))); resp.StatusCode != 200 {
		t.Errorf("Basic mint: %d %s", resp.StatusCode, body)
	}
	// An admin's session minting a token for bob proves the admin's password.
	asc, acsrf := e.login(t, "root", adminPassword)
	if st, body := mint(`{"name":"for-bob","username":"bob"}`, asc, acsrf); st != 400 || strings.Contains(body, "mlft_") {
		t.Errorf("admin session mint for bob without the password: %d %s", st, body)
	}
	if st, body := mint(`{"name":"for-bob","username":"bob","current_password":"`+bobPassword+`"}`, asc, acsrf); st != 403 {
		t.Errorf("admin session mint with bob's password instead of the admin's: %d %s", st, body)
	}
	if st, body := mint(`{"name":"for-bob","username":"bob","current_password":"`+adminPassword+`"}`, asc, acsrf); st != 200 || !strings.Contains(body, "mlft_") {
		t.Errorf("admin session mint for bob with the admin's password: %d %s", st, body)
	}
	// Wrong passwords are throttled as sign-ins are.
	throttled := false
	for i := 0; i < 8 && !throttled; i++ {
		st, _ := mint(`{"name":"guess","current_password":"guess-`+fmt.Sprint(i)+`-xxxxxx"}`, sc, csrf)
		throttled = st == 429
	}
	if !throttled {
		t.Error("wrong passwords on token minting are not throttled")
	}
}

// TestLoginWithoutBasic: without basic there is no password sign-in: no
// login token, POST /login says so, and a session cookie counts for
// nothing.
func TestLoginWithoutBasic(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ADMIN_HASH", string(hash))
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{`auth {
			admin root {env.MLFLOW_TEST_ADMIN_HASH}
			api_tokens
		}`}})
	e := &sessionEnv{srv: srv, c: noRedirects(srv.Client())}
	w, resp := e.whoami(t)
	if w.Authenticated || w.CSRFToken != "" || cookieOf(resp, "mlflow_login_csrf") != nil {
		t.Errorf("whoami without basic: %+v", w)
	}
	form := url.Values{"username": {"root"}, "password": {adminPassword}, "csrf_token": {"x"}}
	loc, sc, _ := e.postLogin(t, form, nil, &http.Cookie{Name: "mlflow_login_csrf", Value: "x"})
	if loc != "/login?error=unavailable" || sc != nil {
		t.Errorf("POST /login without basic: %q %v", loc, sc)
	}
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil, &http.Cookie{Name: "mlflow_session", Value: strings.Repeat("A", 43)}); resp.StatusCode != 401 {
		t.Errorf("cookie without sessions: %d", resp.StatusCode)
	}
}

// TestAmbientCredentialCSRF: Basic credentials (cached by the browser
// after its prompt) and client certificates ride on cross-site requests
// just as cookies do. A cross-site form POST to a route that takes any
// body (the UI's upload-artifact writes the raw body into a run's
// artifacts) must not be accepted on them; same-origin and non-browser
// requests still are.
func TestAmbientCredentialCSRF(t *testing.T) {
	e := startSessions(t)
	auth := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "application/json"}
	resp, body := e.do(t, "POST", "/api/2.0/mlflow/runs/create", strings.NewReader(`{"experiment_id":"0"}`), auth)
	if resp.StatusCode != 200 {
		t.Fatalf("runs/create: %d %s", resp.StatusCode, body)
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.Unmarshal([]byte(body), &run); err != nil {
		t.Fatal(err)
	}
	upload := func(name string, hdr map[string]string) int {
		t.Helper()
		h := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "text/plain"}
		for k, v := range hdr {
			h[k] = v
		}
		q := url.Values{"run_uuid": {run.Run.Info.RunID}, "path": {name}}
		resp, _ := e.do(t, "POST", "/ajax-api/2.0/mlflow/upload-artifact?"+q.Encode(), strings.NewReader("planted"), h)
		return resp.StatusCode
	}
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"cross-site", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign-origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"null-origin", map[string]string{"Origin": "null"}, 403},
		{"same-site", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"same-origin", map[string]string{"Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}, 200},
		{"no-browser", nil, 200},
	} {
		if st := upload("csrf-"+c.name+".txt", c.hdr); st != c.want {
			t.Errorf("%s: upload-artifact %d, want %d", c.name, st, c.want)
		}
	}
	// A JSON route with Basic from another origin is refused the same way.
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("ambient-x"),
		with(auth, "Origin", "http://evil.example")); resp.StatusCode != 403 {
		t.Errorf("cross-origin experiments/create with Basic: %d %s", resp.StatusCode, body)
	}
	// Safe methods are not affected.
	if resp, _ := e.do(t, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", nil,
		with(auth, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site")); resp.StatusCode != 200 {
		t.Errorf("cross-site GET with Basic: %d", resp.StatusCode)
	}
}

// TestAuthenticatedResponsesArePrivate: what a credential unlocked is
// never stored by a shared cache (a CDN or proxy in front of the server
// would hand it to the next caller of the same URL, credential or not).
func TestAuthenticatedResponsesArePrivate(t *testing.T) {
	e := startSessions(t)
	auth := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "application/json"}
	resp, body := e.do(t, "POST", "/api/2.0/mlflow/runs/create", strings.NewReader(`{"experiment_id":"0"}`), auth)
	if resp.StatusCode != 200 {
		t.Fatalf("runs/create: %d %s", resp.StatusCode, body)
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.Unmarshal([]byte(body), &run); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"run_uuid": {run.Run.Info.RunID}, "path": {"plot.png"}}
	if resp, body := e.do(t, "POST", "/ajax-api/2.0/mlflow/upload-artifact?"+q.Encode(), strings.NewReader("png"),
		with(auth, "Content-Type", "image/png")); resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	sc, _ := e.login(t, "root", adminPassword)
	for _, c := range []struct {
		path   string
		hdr    map[string]string
		cookie *http.Cookie
	}{
		{"/get-artifact?" + q.Encode(), nil, sc},
		{"/get-artifact?" + q.Encode(), map[string]string{"Authorization": basic("root", adminPassword)}, nil},
		{"/api/2.0/mlflow/experiments/get?experiment_id=0", nil, sc},
		{"/api/2.0/mlflow/users/current", nil, sc},
	} {
		resp, body := e.do(t, "GET", c.path, nil, c.hdr, c.cookie)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", c.path, resp.StatusCode, body)
			continue
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
			t.Errorf("GET %s (authenticated): Cache-Control %q, want private or no-store", c.path, cc)
		}
	}
}

// TestWhoamiAuditsFailedCredentials: /ui/whoami checks whatever
// credential comes with it and says whether it worked, so a wrong Basic
// password sent there is audited like one sent to the API (else it is a
// password oracle that leaves no trace).
func TestWhoamiAuditsFailedCredentials(t *testing.T) {
	e := startSessions(t)
	w, _ := e.whoami(t)
	if w.Authenticated {
		t.Fatalf("anonymous whoami: %+v", w)
	}
	resp, body := e.do(t, "GET", "/ui/whoami", nil, map[string]string{"Authorization": basic("root", "guess-number-1")})
	if resp.StatusCode != 200 || strings.Contains(body, `"authenticated":true`) {
		t.Fatalf("whoami with a wrong password: %d %s", resp.StatusCode, body)
	}
	data, err := os.ReadFile(e.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["route"] == "Whoami" && rec["decision"] == "denied" && strings.Contains(fmt.Sprint(rec["reason"]), "wrong password") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit record of the failed whoami credential:\n%s", data)
	}
	if strings.Contains(string(data), "guess-number-1") {
		t.Error("audit log contains the password")
	}
}

// TestClientCertCSRF: a client certificate is sent by the browser on its
// own, like a cookie: a state-changing request it authenticates must not
// come from another origin.
func TestClientCertCSRF(t *testing.T) {
	env := startSecure(t, "READ")
	pair, err := tls.LoadX509KeyPair(env.pki.Client.BundleFile, env.pki.Client.BundleFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := env.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	e := &sessionEnv{srv: env.srv, c: &http.Client{Transport: tr}}
	if resp, body := e.do(t, "GET", "/api/2.0/mlflow/users/current", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"alice"`) {
		t.Fatalf("certificate alone: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("cert-x"),
		with(jsonHdr, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")); resp.StatusCode != 403 {
		t.Errorf("cross-site POST on a client certificate: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "POST", "/api/2.0/mlflow/experiments/create", createExp("cert-ok"),
		with(jsonHdr, "Origin", env.srv.URL, "Sec-Fetch-Site", "same-origin")); resp.StatusCode != 200 {
		t.Errorf("same-origin POST on a client certificate: %d %s", resp.StatusCode, body)
	}
}

// TestWhoamiPermissions: /ui/whoami answers the viewer's permissions on
// the experiments and registered models a page asks about, as the route
// names the authorization table would allow, from the permission store:
// READ allows no change, EDIT updates but does not delete, MANAGE and
// admins do everything, and identity headers a client sends change
// nothing.
func TestWhoamiPermissions(t *testing.T) {
	e := startSessions(t) // default_permission READ
	root := map[string]string{"Authorization": basic("root", adminPassword), "Content-Type": "application/json"}
	post := func(path, body string) string {
		t.Helper()
		resp, out := e.do(t, "POST", "/api/2.0/mlflow/"+path, strings.NewReader(body), root)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, out)
		}
		return out
	}
	post("users/create", `{"username":"bob","password":"`+bobPassword+`"}`)
	var ids []string
	for _, n := range []string{"perm-read", "perm-edit", "perm-manage", "perm-none", "perm-default"} {
		var out struct {
			ID string `json:"experiment_id"`
		}
		if err := json.Unmarshal([]byte(post("experiments/create", `{"name":"`+n+`"}`)), &out); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.ID)
	}
	for i, lvl := range []string{"READ", "EDIT", "MANAGE", "NO_PERMISSIONS"} {
		post("experiments/permissions/create", `{"experiment_id":"`+ids[i]+`","username":"bob","permission":"`+lvl+`"}`)
	}
	post("registered-models/create", `{"name":"churn"}`)
	post("registered-models/permissions/create", `{"name":"churn","username":"bob","permission":"EDIT"}`)

	type perm struct {
		Level   string   `json:"level"`
		Allowed []string `json:"allowed"`
	}
	type answer struct {
		Authenticated bool `json:"authenticated"`
		Permissions   *struct {
			Experiments      map[string]perm `json:"experiments"`
			RegisteredModels map[string]perm `json:"registered_models"`
		} `json:"permissions"`
	}
	ask := func(hdr map[string]string, cookie *http.Cookie) answer {
		t.Helper()
		q := url.Values{"experiment_id": ids, "registered_model": {"churn"}}
		resp, body := e.do(t, "GET", "/ui/whoami?"+q.Encode(), nil, hdr, cookie)
		var a answer
		if err := json.Unmarshal([]byte(body), &a); resp.StatusCode != 200 || err != nil {
			t.Fatalf("whoami: %d %s", resp.StatusCode, body)
		}
		return a
	}
	has := func(p perm, route string) bool {
		for _, r := range p.Allowed {
			if r == route {
				return true
			}
		}
		return false
	}
	sc, _ := e.login(t, "bob", bobPassword)
	a := ask(nil, sc)
	if a.Permissions == nil || len(a.Permissions.Experiments) != len(ids) {
		t.Fatalf("bob's permissions: %+v", a.Permissions)
	}
	want := []struct {
		level              string
		read, edit, delete bool
	}{
		{"READ", true, false, false},
		{"EDIT", true, true, false},
		{"MANAGE", true, true, true},
		{"NO_PERMISSIONS", false, false, false},
		{"READ", true, false, false}, // no grant: the default
	}
	for i, w := range want {
		p := a.Permissions.Experiments[ids[i]]
		if p.Level != w.level || has(p, "GetRun") != w.read || has(p, "UpdateRun") != w.edit || has(p, "SetTag") != w.edit ||
			has(p, "UpdateExperiment") != w.edit || has(p, "DeleteRun") != w.delete || has(p, "DeleteExperiment") != w.delete {
			t.Errorf("experiment %s: %+v, want %+v", ids[i], p, w)
		}
		if has(p, "GetRegisteredModel") || has(p, "CreateUser") {
			t.Errorf("experiment %s lists routes of other kinds: %v", ids[i], p.Allowed)
		}
	}
	m := a.Permissions.RegisteredModels["churn"]
	if m.Level != "EDIT" || !has(m, "RenameRegisteredModel") || !has(m, "TransitionModelVersionStage") || has(m, "DeleteRegisteredModel") || has(m, "DeleteModelVersion") {
		t.Errorf("model churn: %+v", m)
	}
	// Identity headers from the client claim nothing.
	spoof := ask(map[string]string{"X-Remote-User": "root", "Remote-User": "root", "X-Forwarded-User": "root", "X-Mlflow-User": "root"}, sc)
	if p := spoof.Permissions.Experiments[ids[0]]; p.Level != "READ" || has(p, "DeleteRun") {
		t.Errorf("identity headers changed bob's permissions: %+v", p)
	}
	// Basic works the same; an admin may do everything.
	if p := ask(map[string]string{"Authorization": basic("bob", bobPassword)}, nil).Permissions.Experiments[ids[1]]; p.Level != "EDIT" {
		t.Errorf("bob over Basic: %+v", p)
	}
	adm := ask(map[string]string{"Authorization": basic("root", adminPassword)}, nil)
	if p := adm.Permissions.Experiments[ids[3]]; p.Level != "MANAGE" || !has(p, "DeleteExperiment") || !has(p, "DeleteRun") {
		t.Errorf("admin: %+v", p)
	}
	// Signed out: no permissions at all.
	if anon := ask(nil, nil); anon.Authenticated || anon.Permissions != nil {
		t.Errorf("anonymous whoami: %+v", anon)
	}
	// Without a question, no answer; too many questions, no answer.
	if w, _ := e.whoami(t, sc); !w.Authenticated {
		t.Fatal("plain whoami")
	}
	if _, body := e.do(t, "GET", "/ui/whoami", nil, nil, sc); strings.Contains(body, "permissions") {
		t.Errorf("plain whoami answers permissions: %s", body)
	}
	many := url.Values{}
	for i := 0; i < 201; i++ {
		many.Add("experiment_id", fmt.Sprint(i))
	}
	if resp, body := e.do(t, "GET", "/ui/whoami?"+many.Encode(), nil, nil, sc); resp.StatusCode != 200 || strings.Contains(body, "permissions") {
		t.Errorf("whoami with 201 experiments: %d %s", resp.StatusCode, trimBody(body))
	}
}

func trimBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
