package browser

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

const (
	authAdminPassword = "root-password-0123"
	authAlicePassword = "alice-password-0123"
)

// startAuthServer runs a server with an auth block: the admin root (a
// bcrypt hash made here), Basic, API tokens, and NO_PERMISSIONS by default
// so that grants decide what a user sees.
func startAuthServer(t *testing.T) (*caddytest.Server, *rest) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(authAdminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_UI_TEST_ADMIN_HASH", string(hash))
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{`auth {
		admin root {env.MLFLOW_UI_TEST_ADMIN_HASH}
		basic
		api_tokens
		default_permission NO_PERMISSIONS
	}`}})
	admin := newREST(t, srv)
	admin.user, admin.pass = "root", authAdminPassword
	return srv, admin
}

// bearerStatus calls the API with an API token and returns the status and body.
func bearerStatus(t *testing.T, srv *caddytest.Server, token, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// location is the page's path and query.
func (p *page) location() string {
	p.t.Helper()
	u, err := url.Parse(value(p, "location", chromedp.Location()))
	if err != nil {
		p.t.Fatal(err)
	}
	return u.RequestURI()
}

// signIn fills the login form and submits it.
func (p *page) signIn(user, pass string) {
	p.t.Helper()
	p.run("login form", chromedp.WaitVisible(chromedp.ID("login-username")))
	value(p, "clear username", chromedp.Evaluate[bool](`(document.getElementById('login-username').value = '', true)`))
	p.run("sign in as "+user,
		chromedp.SendKeys(chromedp.ID("login-username"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), pass),
		chromedp.Click(chromedp.CSS(".login-form button[type=submit]")))
}

// clearToasts removes the notifications (they fade anyway) before a screenshot.
func (p *page) clearToasts() {
	p.t.Helper()
	value(p, "clear toasts", chromedp.Evaluate[bool](`(document.getElementById('toasts').replaceChildren(), true)`))
}

// dialogSubmit submits the open modal dialog.
func (p *page) dialogSubmit() {
	p.t.Helper()
	p.click("dialog.modal[open] button[type=submit]")
	p.run("dialog closes", chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
}

// TestAuthLoginAccountAdmin walks page 7 in a real browser: the login
// redirect without a Basic prompt, a failed and a good sign-in, the admin
// creating a user and granting READ on one experiment, sign-out, the new
// user seeing only what they may read and being refused /admin, and the
// token page (shown once, used from Go, revoked).
func TestAuthLoginAccountAdmin(t *testing.T) {
	srv, admin := startAuthServer(t)
	shared := admin.createExperiment("shared-exp")
	secret := admin.createExperiment("secret-exp")
	admin.createRun(shared, "shared-run", time.Now().UnixMilli())
	admin.createRun(secret, "secret-run", time.Now().UnixMilli())
	admin.post("registered-models/create", map[string]any{"name": "churn-model"})
	admin.post("registered-models/create", map[string]any{"name": "secret-model"})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)

	// Signed out: /experiments sends the browser to the login page.
	p.open("/experiments", "login")
	if loc := p.location(); loc != "/login?next=%2Fexperiments" {
		t.Errorf("signed-out /experiments went to %q", loc)
	}
	p.wantText("main", "Sign in to MLflow", "Username", "Password")
	// The UI's API calls get a 401 without WWW-Authenticate: no Basic prompt.
	got := value(p, "UI 401", chromedp.Evaluate[string](`fetch('/ajax-api/2.0/mlflow/experiments/search', {headers: {'X-Requested-With': 'mlflow-ui'}})
		.then((r) => r.status + ' ' + r.headers.get('WWW-Authenticate'))`, chromedp.EvalAwaitPromise))
	if got != "401 null" {
		t.Errorf("UI 401: %q, want no WWW-Authenticate", got)
	}
	p.allowErrors()
	p.shot("login-desktop")

	// A wrong password: the generic error, next kept.
	p.signIn("root", "not-the-password")
	p.run("error shown", chromedp.WaitVisible(chromedp.ID("login-error")), waitPage("login"))
	p.wantText("#login-error", "Invalid username or password.")
	if loc := p.location(); !strings.Contains(loc, "error=invalid") || !strings.Contains(loc, "next=%2Fexperiments") {
		t.Errorf("after a failed sign-in: %q", loc)
	}
	if v := value(p, "username kept", chromedp.Value(chromedp.ID("login-username"))); v != "root" {
		t.Errorf("username field after a failure: %q", v)
	}
	p.shot("login-error")

	// The right password lands on next, which lists the data.
	p.run("password", chromedp.SendKeys(chromedp.ID("login-password"), authAdminPassword),
		chromedp.Click(chromedp.CSS(".login-form button[type=submit]")), waitPage("experiments"))
	if loc := p.location(); loc != "/experiments" {
		t.Errorf("signed in at %q, want /experiments", loc)
	}
	p.wantText("main", "shared-exp", "secret-exp")
	p.wantText("#user-menu", "root", "Admin", "Sign out")

	// Admin: create alice.
	p.open("/admin", "admin")
	p.wantText("#users-table", "root")
	p.click("#create-user")
	p.run("fill user", chromedp.WaitVisible(chromedp.ID("dlg-username")),
		chromedp.SendKeys(chromedp.ID("dlg-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("dlg-password"), authAlicePassword))
	p.dialogSubmit()
	p.run("alice listed", chromedp.WaitVisible(chromedp.CSS(`#users-table tr[data-user="alice"]`)))
	p.wantText(`#users-table tr[data-user="alice"]`, "User", "Make admin")
	p.clearToasts()
	p.shot("admin-users")

	// Grant alice READ on the shared experiment.
	p.click(`#users-table tr[data-user="alice"] a`)
	p.run("permissions tab", waitPage("admin"), chromedp.WaitVisible(chromedp.ID("perm-exp-grant")))
	if v := value(p, "user picked", chromedp.Value(chromedp.ID("perm-user"))); v != "alice" {
		t.Fatalf("permissions of %q, want alice", v)
	}
	p.wantText("#perm-exp", "No grants")
	p.run("grant", chromedp.SetValue(chromedp.ID("perm-exp-resource"), shared),
		chromedp.SetValue(chromedp.ID("perm-exp-level"), "READ"),
		chromedp.Click(chromedp.CSS("#perm-exp-grant button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#perm-exp tr[data-resource=%q]`, shared))))
	p.wantText("#perm-exp", "shared-exp")
	if v := value(p, "level", chromedp.Value(chromedp.CSS(fmt.Sprintf(`#perm-exp tr[data-resource=%q] select`, shared)))); v != "READ" {
		t.Errorf("granted level %q", v)
	}
	p.run("grant model", chromedp.SetValue(chromedp.ID("perm-model-resource"), "churn-model"),
		chromedp.SetValue(chromedp.ID("perm-model-level"), "EDIT"),
		chromedp.Click(chromedp.CSS("#perm-model-grant button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`#perm-model tr[data-resource="churn-model"]`)))
	// Change it to READ in place.
	value(p, "change level", chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#perm-model tr[data-resource="churn-model"] select');
		s.value = 'READ'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`))
	value(p, "level changed", chromedp.Poll[bool](`[...document.querySelectorAll('.toast')].some((t) => t.textContent.includes('set to READ'))`, chromedp.WithPollingTimeout(10*time.Second)))
	p.clearToasts()
	p.shot("admin-permissions")
	perms := admin.call(http.MethodGet, "/api/2.0/mlflow/users/get?username=alice", nil)
	if got := fmt.Sprint(perms["user"].(map[string]any)["registered_model_permissions"]); !strings.Contains(got, "churn-model") || !strings.Contains(got, "READ") {
		t.Errorf("alice's model grants: %s", got)
	}

	// Sign out: back on the login page, the old session is gone.
	p.run("sign out", chromedp.Click(chromedp.CSS(`#user-menu button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".info-box")), waitPage("login"))
	p.wantText(".login-card", "You have been signed out.")

	// alice sees only the experiment she may read, and not /admin.
	p.signIn("alice", authAlicePassword)
	p.run("alice signed in", waitPage("experiments"))
	p.wantText("main", "shared-exp")
	if strings.Contains(p.text("main"), "secret-exp") {
		t.Error("alice sees secret-exp")
	}
	if strings.Contains(p.text("#user-menu"), "Admin") {
		t.Error("alice has an Admin link")
	}
	p.open("/admin", "admin")
	p.wantText("#admin-denied", "Administrators only")

	// Account: create a token, shown once.
	p.open("/account", "account")
	p.wantText("main", "alice", "No API tokens yet.")
	p.click("#create-token")
	p.run("token name", chromedp.WaitVisible(chromedp.ID("dlg-name")), chromedp.SendKeys(chromedp.ID("dlg-name"), "ci-pipeline"))
	// A session mints a token only with the password: a wrong one is refused.
	p.run("wrong password", chromedp.SendKeys(chromedp.ID("dlg-current"), "not-alices-password"))
	p.dialogSubmit()
	p.waitToast("The current password is not right.")
	if n := p.count("#new-token"); n != 0 {
		t.Fatal("a token was shown after a wrong password")
	}
	p.allowErrors() // Chromium logs the refused request
	p.clearToasts()
	p.click("#create-token")
	p.run("token name again", chromedp.WaitVisible(chromedp.ID("dlg-name")), chromedp.SendKeys(chromedp.ID("dlg-name"), "ci-pipeline"),
		chromedp.SendKeys(chromedp.ID("dlg-current"), authAlicePassword))
	p.dialogSubmit()
	p.run("token shown", chromedp.WaitVisible(chromedp.ID("new-token")), chromedp.WaitVisible(chromedp.CSS("#tokens-table")))
	token := value(p, "token", chromedp.Value(chromedp.ID("new-token")))
	if !strings.HasPrefix(token, "mlft_") {
		t.Fatalf("token field holds %q", token)
	}
	p.wantText(".token-once", "will not be shown again")
	p.wantText("#tokens-table", "ci-pipeline", "Active")
	if strings.Contains(p.text("#tokens-table"), token) {
		t.Error("the token list shows the secret")
	}
	p.shot("account-tokens")

	// The token works from Go, with alice's permissions.
	st, body := bearerStatus(t, srv, token, "/api/2.0/mlflow/experiments/search?max_results=100")
	if st != 200 || !strings.Contains(body, "shared-exp") || strings.Contains(body, "secret-exp") {
		t.Errorf("API with the new token: %d %s", st, body)
	}
	// Once dismissed it is gone for good.
	p.click("#token-done")
	if n := p.count("#new-token"); n != 0 {
		t.Error("token still shown after dismissing")
	}
	p.open("/account", "account")
	if strings.Contains(value(p, "page html", chromedp.OuterHTML(chromedp.CSS("html"))), token) {
		t.Error("the token is on the page after a reload")
	}

	// Revoke it: the API refuses it from then on.
	p.click(`#tokens-table tr[data-token] button`)
	p.dialogSubmit()
	p.run("revoked", chromedp.WaitVisible(chromedp.CSS(`#tokens-table .status-FAILED`)))
	p.wantText("#tokens-table", "Revoked")
	if st, _ := bearerStatus(t, srv, token, "/api/2.0/mlflow/experiments/search?max_results=100"); st != 401 {
		t.Errorf("revoked token: %d, want 401", st)
	}
}

// TestAuthLoginPhone renders the login page at phone width.
func TestAuthLoginPhone(t *testing.T) {
	srv, _ := startAuthServer(t)
	p := newPage(t, srv.URL, phoneWidth, phoneHeight)
	p.open("/account", "login")
	if loc := p.location(); loc != "/login?next=%2Faccount" {
		t.Errorf("signed-out /account went to %q", loc)
	}
	if w := value(p, "overflow", chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); w > 1 {
		t.Errorf("the login page scrolls sideways by %dpx", w)
	}
	p.shot("login-phone")
	p.signIn("root", authAdminPassword)
	p.run("signed in", waitPage("account"))
	p.wantText("main", "root", "Administrator", "API tokens")
	p.shot("account-phone")
	p.open("/admin", "admin")
	p.wantText("#users-table", "root")
	if w := value(p, "overflow", chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); w > 1 {
		t.Errorf("the admin page scrolls sideways by %dpx", w)
	}
	p.shot("admin-users-phone")
}

// TestAuthOffAccountPages: without an auth block /login goes to the
// experiments and the account pages say auth is off.
func TestAuthOffAccountPages(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/login", "experiments")
	if loc := p.location(); loc != "/experiments" {
		t.Errorf("/login without auth went to %q", loc)
	}
	p.open("/account", "account")
	p.wantText("main", "Authentication is off")
	p.open("/admin", "admin")
	p.wantText("main", "Authentication is off")
}

// basicStatus calls users/current with Basic credentials.
func basicStatus(t *testing.T, srv *caddytest.Server, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/2.0/mlflow/users/current", nil)
	req.SetBasicAuth(user, pass)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitToast waits for a notification containing text.
func (p *page) waitToast(text string) {
	p.t.Helper()
	value(p, "toast "+text, chromedp.Poll[bool](fmt.Sprintf(`[...document.querySelectorAll('.toast')].some((t) => t.textContent.includes(%q))`, text),
		chromedp.WithPollingTimeout(15*time.Second)))
}

// TestAuthAdminUserActions: the admin page's user actions (make and
// remove admin, reset password, delete) and changing one's own password
// from the account page, checked against the API.
func TestAuthAdminUserActions(t *testing.T) {
	srv, admin := startAuthServer(t)
	admin.post("users/create", map[string]any{"username": "bob", "password": "bob-password-0123"})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/login", "login")
	p.signIn("root", authAdminPassword)
	p.run("signed in", waitPage("experiments"))
	// Signed in, /login goes on to next.
	p.open("/login?next=%2Faccount", "account")

	bob := `#users-table tr[data-user="bob"]`
	p.open("/admin", "admin")
	p.click(bob + ` button[data-action="toggle-admin"]`)
	p.run("bob is admin", waitPage("admin"), chromedp.WaitVisible(chromedp.CSS(bob+" .badge-admin")))
	p.click(bob + ` button[data-action="toggle-admin"]`)
	p.dialogSubmit()
	// The page re-renders after the call (ctx.refresh): until then it
	// still shows the old table, and during it no table at all, so the
	// wait is for a finished render without the badge but with bob.
	rmWait(p, "bob is no admin", fmt.Sprintf(`document.body.dataset.ready === 'true' && document.querySelector(%q) !== null && document.querySelector(%q) === null`, bob, bob+" .badge-admin"))
	if me := admin.call(http.MethodGet, "/api/2.0/mlflow/users/get?username=bob", nil); me["user"].(map[string]any)["is_admin"] != false {
		t.Errorf("bob after two toggles: %v", me)
	}

	// Reset bob's password: a too short one is refused in the dialog.
	p.click(bob + ` button[data-action="reset-password"]`)
	p.run("short password", chromedp.WaitVisible(chromedp.ID("dlg-password")),
		chromedp.SendKeys(chromedp.ID("dlg-password"), "short"),
		chromedp.SendKeys(chromedp.ID("dlg-confirm"), "short"),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")))
	p.wantText("dialog.modal .form-error", "at least 12 characters")
	value(p, "clear", chromedp.Evaluate[bool](`(document.getElementById('dlg-password').value = '', document.getElementById('dlg-confirm').value = '', true)`))
	p.run("good password",
		chromedp.SendKeys(chromedp.ID("dlg-password"), "bob-reset-password-1"),
		chromedp.SendKeys(chromedp.ID("dlg-confirm"), "bob-reset-password-1"))
	p.dialogSubmit()
	p.waitToast("Password of bob changed.")
	if st := basicStatus(t, srv, "bob", "bob-reset-password-1"); st != 200 {
		t.Errorf("bob with the new password: %d", st)
	}

	// Delete bob.
	p.click(bob + ` button[data-action="delete"]`)
	p.dialogSubmit()
	// As above: bob's row is also absent while the page re-renders.
	rmWait(p, "bob gone", fmt.Sprintf(`document.body.dataset.ready === 'true' && document.querySelector('#users-table tr[data-user="root"]') !== null && document.querySelector(%q) === null`, bob))
	if st := basicStatus(t, srv, "bob", "bob-reset-password-1"); st != 401 {
		t.Errorf("deleted bob: %d", st)
	}
	// root cannot delete or demote itself.
	p.wantCount(`#users-table tr[data-user="root"] button[data-action="delete"]:disabled`, 1)

	// Change one's own password: the current one is checked first.
	changePw := func(current string) {
		p.open("/account", "account")
		p.click("#change-password")
		p.run("fill", chromedp.WaitVisible(chromedp.ID("dlg-current")),
			chromedp.SendKeys(chromedp.ID("dlg-current"), current),
			chromedp.SendKeys(chromedp.ID("dlg-password"), "root-new-password-99"),
			chromedp.SendKeys(chromedp.ID("dlg-confirm"), "root-new-password-99"))
		p.dialogSubmit()
	}
	changePw("not-my-password")
	p.waitToast("current password is not right")
	p.allowErrors() // the failed check is a 401 in the console
	changePw(authAdminPassword)
	p.waitToast("Password changed.")
	if st := basicStatus(t, srv, "root", "root-new-password-99"); st != 200 {
		t.Errorf("root with the new password: %d", st)
	}
	// This browser stays signed in.
	p.open("/account", "account")
	p.wantText("main", "root", "Administrator")
}

// TestAuthStaleCSRFTokenRetried: a tab whose session was replaced by a
// sign-in in another tab still saves (the UI refreshes its CSRF token once
// after a CSRF refusal), and the old session is dead.
func TestAuthStaleCSRFTokenRetried(t *testing.T) {
	srv, _ := startAuthServer(t)
	a := newPage(t, srv.URL, desktopWidth, desktopHeight)
	a.open("/login", "login")
	a.signIn("root", authAdminPassword)
	a.run("signed in", waitPage("experiments"))
	a.open("/account", "account")

	// A second tab of the same browser signs out and in again.
	bctx, cancel := chromedp.NewContext(a.ctx)
	defer cancel()
	// The first action on a context opens its tab, which lives as long as
	// that action's context: use bctx itself, not a timeout child.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(desktopWidth, desktopHeight)); err != nil {
		t.Fatal(err)
	}
	b := &page{t: t, ctx: bctx, base: srv.URL}
	b.open("/account", "account")
	// (A background tab gets no mouse events: submit the forms by script.)
	value(b, "sign out", chromedp.Evaluate[bool](`(document.querySelector('#user-menu form').requestSubmit(), true)`))
	b.run("signed out", chromedp.WaitVisible(chromedp.CSS(".info-box")), waitPage("login"))
	value(b, "sign in", chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		document.getElementById('login-username').value = 'root';
		document.getElementById('login-password').value = %q;
		document.querySelector('.login-form').requestSubmit();
		return true; })()`, authAdminPassword)))
	b.run("signed in again", waitPage("experiments"))

	// The first tab still holds the old CSRF token (its sign-out form
	// shows it), which the server refuses for the new session.
	stale := value(a, "old token", chromedp.Evaluate[string](`document.querySelector('#user-menu input[name=csrf_token]').value`))
	fresh := value(a, "new token", chromedp.Evaluate[string](`fetch('/ui/whoami').then((r) => r.json()).then((v) => v.csrf_token)`, chromedp.EvalAwaitPromise))
	if stale == "" || fresh == "" || stale == fresh {
		t.Fatalf("tokens: old %q, new %q", stale, fresh)
	}
	a.click("#create-token")
	a.run("token name", chromedp.WaitVisible(chromedp.ID("dlg-name")), chromedp.SendKeys(chromedp.ID("dlg-name"), "from-old-tab"),
		chromedp.SendKeys(chromedp.ID("dlg-current"), authAdminPassword))
	a.dialogSubmit()
	a.run("token shown", chromedp.WaitVisible(chromedp.ID("new-token")))
	a.wantText("#tokens-table", "from-old-tab")
	a.allowErrors() // the refused first attempt is logged by Chromium
}

// TestAuthPagesWithSession opens every page signed in with a session: the
// data pages render, a write through the UI's REST client carries the CSRF
// token, and a user without permission gets a clear refusal, not a blank
// page.
func TestAuthPagesWithSession(t *testing.T) {
	srv, admin := startAuthServer(t)
	exp := admin.createExperiment("session-exp")
	run := admin.createRun(exp, "session-run", time.Now().UnixMilli())
	admin.post("runs/log-metric", map[string]any{"run_id": run, "key": "loss", "value": 0.5, "timestamp": time.Now().UnixMilli(), "step": 1})
	admin.post("registered-models/create", map[string]any{"name": "session-model"})
	admin.post("users/create", map[string]any{"username": "carol", "password": "carol-password-0123"})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+exp+"/runs/"+run, "login")
	p.signIn("root", authAdminPassword)
	p.run("deep link after sign-in", waitPage("run"))
	p.wantText("main", "session-run")
	p.open("/experiments/"+exp, "runs")
	p.wantText("main", "session-run")
	p.open("/compare?runs="+run, "compare")
	p.open("/models", "models")
	p.wantText("main", "session-model")
	p.open("/models/session-model", "model")

	// A write through lib.js's client: the session's CSRF token rides along.
	got := value(p, "write", chromedp.Evaluate[string](`import('/static/lib.js')
		.then((m) => m.api.post('experiments/create', {name: 'made-in-the-ui'}))
		.then((r) => 'ok ' + r.experiment_id, (e) => 'error ' + e.status + ' ' + e.message)`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(got, "ok ") {
		t.Errorf("UI write with a session: %s", got)
	}

	// carol may read nothing (NO_PERMISSIONS): the run page says so.
	p.run("sign out", chromedp.Click(chromedp.CSS(`#user-menu button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".info-box")), waitPage("login"))
	p.signIn("carol", "carol-password-0123")
	p.run("carol signed in", waitPage("experiments"))
	if strings.Contains(p.text("main"), "session-exp") {
		t.Error("carol sees session-exp")
	}
	p.open("/experiments/"+exp+"/runs/"+run, "run")
	p.wantText("main", "ermission")
	p.allowErrors()
}
