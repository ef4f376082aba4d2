package browser

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestTracesAndModelsWithAuth drives the Traces tab, the trace page and
// the logged-model pages with auth on: the admin (signed in with a
// session, so every change carries the CSRF header) adds feedback and
// deletes a trace; a reader with READ on the experiment sees the traces,
// spans, assessments and models but is offered no change, and the server
// refuses the change anyway; an experiment outside the reader's grants
// shows an explanation, not its traces.
func TestTracesAndModelsWithAuth(t *testing.T) {
	srv, admin := startAuthServer(t)
	expID, _, chatID, errID := seedTraces(t, admin)
	_, _, agentID, _ := seedLoggedModels(t, admin)
	modelsExp := admin.loggedModelExp(agentID)
	secretExp := admin.createExperiment("secret-traces")
	secretID := trTraceID(900)
	seedTrace(t, admin, secretExp, trTrace{ID: secretID, StartMs: time.Now().UnixMilli(), DurMs: 10, Name: "secret", Request: `{"q": "hidden"}`,
		Spans: []trSpan{{ID: trSpanID(1), Name: "secret", Type: "CHAIN", DurMs: 10}}})
	admin.post("users/create", map[string]any{"username": "alice", "password": authAlicePassword})
	for _, e := range []string{expID, modelsExp} {
		admin.post("experiments/permissions/create", map[string]any{"experiment_id": e, "username": "alice", "permission": "READ"})
	}
	tracesPath := "/experiments/" + expID + "/traces"
	tracePath := tracesPath + "/" + chatID

	// The admin, signed in with a session.
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open(tracePath, "login")
	p.signIn("root", authAdminPassword)
	p.run("back on the trace", waitPage("trace"))
	p.wantText("#trace-assessments", "correctness")
	p.click("#assessment-add")
	p.run("assessment dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-name")))
	rmFill(p, "#dlg-name", "admin-check")
	rmFill(p, "#dlg-value", "yes")
	p.dialogSubmit()
	rmWait(p, "assessment added", `document.querySelector('#trace-assessments')?.textContent.includes('admin-check')`)
	var found map[string]any
	for _, a := range admin.traceInfo(chatID)["assessments"].([]any) {
		if m := a.(map[string]any); m["assessment_name"] == "admin-check" {
			found = m
		}
	}
	if found == nil || found["source"].(map[string]any)["source_id"] != "root" {
		t.Errorf("the admin's feedback %v; want it stored with source_id root", found)
	}
	p.open(tracesPath, "traces")
	p.click(fmt.Sprintf(`#traces-table tr[data-trace-id=%q] input.row-select`, trTraceID(100)))
	p.click("#traces-delete")
	p.dialogSubmit()
	rmWait(p, "deleted", fmt.Sprintf(`document.body.dataset.ready === 'true' && !document.querySelector('#traces-table tr[data-trace-id=%q]')`, trTraceID(100)))
	p.clearToasts()
	p.shot("traces-tab-auth-admin")
	p.open(tracePath, "trace")
	p.wantText("#span-details", "chat_pipeline")
	p.shot("trace-page-auth-admin")

	// A reader.
	r := newPage(t, srv.URL, desktopWidth, desktopHeight)
	r.open(tracesPath, "login")
	r.signIn("alice", authAlicePassword)
	r.run("reader on the traces", waitPage("traces"))
	r.wantText("#traces-table", "chat_pipeline", "lookup")
	if hidden := value(r, "delete hidden", chromedp.Evaluate[bool](`document.getElementById('traces-delete').hidden`)); !hidden {
		t.Errorf("a reader is offered Delete on the traces tab")
	}
	r.shot("traces-tab-auth-reader")
	r.open(tracePath, "trace")
	r.wantText("#span-details", "chat_pipeline")
	r.wantText("#trace-assessments", "correctness", "admin-check")
	if n := r.count(`#assessment-add, #trace-add-tag, #trace-delete, #trace-assessments button[aria-label^="Edit"], #trace-assessments button[aria-label^="Delete"], #trace-tags button`); n != 0 {
		t.Errorf("a reader is offered %d change buttons on the trace page", n)
	}
	// The server refuses what the page does not offer.
	st := value(r, "reader feedback", chromedp.Evaluate[int](fmt.Sprintf(`(async () => {
		const v = await (await fetch('/ui/whoami')).json();
		const res = await fetch('/ajax-api/3.0/mlflow/traces/%s/assessments', {method: 'POST', credentials: 'same-origin',
			headers: {'Content-Type': 'application/json', 'X-Requested-With': 'mlflow-ui', 'X-CSRF-Token': v.csrf_token},
			body: JSON.stringify({assessment: {assessment_name: 'x', feedback: {value: 1}}})});
		return res.status; })()`, chatID), chromedp.EvalAwaitPromise))
	if st != http.StatusForbidden {
		t.Errorf("a reader's create-assessment: %d, want 403", st)
	}
	r.allowErrors()
	r.shot("trace-page-auth-reader")
	r.open("/experiments/"+expID+"/traces/"+errID, "trace")
	r.wantText("#span-details", "boom")

	// Logged models: readable, with their artifacts.
	r.open("/experiments/"+modelsExp+"/models", "logged-models")
	r.wantText("#logged-models-table", "rag-agent")
	r.open("/experiments/"+modelsExp+"/models/"+agentID+"?tab=artifacts&artifact=MLmodel", "logged-model")
	rmWait(r, "reader artifact preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('python_function')`)

	// Outside the grants.
	r.open("/experiments/"+secretExp+"/traces", "traces")
	r.wantText("main", "You cannot see this experiment")
	r.open("/experiments/"+secretExp+"/traces/"+secretID, "trace")
	r.wantText("main", "Trace not available")
	if strings.Contains(r.text("main"), "hidden") {
		t.Errorf("the reader sees the secret trace's request")
	}
	r.allowErrors()

	// Phones, signed in: the admin with every action, the reader with none.
	for _, who := range []struct{ user, password, name string }{{"root", authAdminPassword, "admin"}, {"alice", authAlicePassword, "reader"}} {
		ph := newPage(t, srv.URL, phoneWidth, phoneHeight)
		ph.open(tracesPath, "login")
		ph.signIn(who.user, who.password)
		ph.run("phone on the traces", waitPage("traces"))
		ph.wantText("#traces-table", "chat_pipeline")
		noPageOverflow(ph, who.name+" traces tab")
		ph.shot("traces-tab-auth-" + who.name + "-phone")
		ph.open(tracePath, "trace")
		ph.wantText("#span-details", "chat_pipeline")
		ph.wantText("#trace-assessments", "correctness")
		if n := ph.count("#trace-delete, #assessment-add"); (n == 0) != (who.name == "reader") {
			t.Errorf("%s on a phone is offered %d of Delete and Add assessment", who.name, n)
		}
		noPageOverflow(ph, who.name+" trace page")
		ph.shot("trace-page-auth-" + who.name + "-phone")
	}
}

// noPageOverflow fails the test when the page is wider than the window
// (tables and the span tree scroll inside their own boxes).
func noPageOverflow(p *page, what string) {
	p.t.Helper()
	if w := value(p, what+" overflow", chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); w > 1 {
		p.t.Errorf("%s: the page is %d px wider than the window", what, w)
	}
}

// loggedModelExp returns the experiment of a logged model.
func (r *rest) loggedModelExp(modelID string) string {
	r.t.Helper()
	out := r.call(http.MethodGet, "/api/2.0/mlflow/logged-models/"+modelID, nil)
	return out["model"].(map[string]any)["info"].(map[string]any)["experiment_id"].(string)
}
