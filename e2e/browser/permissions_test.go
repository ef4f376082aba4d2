package browser

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPermissionsHideActions signs in as a READ user, an EDIT user and the
// admin, and checks each sees only the actions the server's authorization
// table allows them: READ no edit or delete buttons, EDIT the edit buttons
// but no delete (MLflow needs MANAGE to delete), the admin everything.
// The buttons shown work; the server still refuses the others.
func TestPermissionsHideActions(t *testing.T) {
	srv, admin := startAuthServer(t)
	exp := admin.createExperiment("guarded-exp")
	run := admin.createRun(exp, "guarded-run", time.Now().Add(-time.Hour).UnixMilli())
	admin.post("runs/set-tag", map[string]any{"run_id": run, "key": "team", "value": "risk"})
	admin.post("registered-models/create", map[string]any{"name": "guarded-model"})
	admin.post("model-versions/create", map[string]any{"name": "guarded-model", "source": "runs:/" + run + "/model", "run_id": run})
	admin.post("registered-models/set-tag", map[string]any{"name": "guarded-model", "key": "owner", "value": "risk"})
	const readerPass, editorPass = "reader-password-0123", "editor-password-0123"
	admin.post("users/create", map[string]any{"username": "reader", "password": readerPass})
	admin.post("users/create", map[string]any{"username": "editor", "password": editorPass})
	for user, level := range map[string]string{"reader": "READ", "editor": "EDIT"} {
		admin.post("experiments/permissions/create", map[string]any{"experiment_id": exp, "username": user, "permission": level})
		admin.post("registered-models/permissions/create", map[string]any{"name": "guarded-model", "username": user, "permission": level})
	}

	runPath := "/experiments/" + exp + "/runs/" + run
	expRow := fmt.Sprintf(`tr[data-id=%q]`, exp)
	type want struct{ edit, del bool }
	check := func(p *page, who string, w want) {
		t.Helper()
		has := func(what, sel string, wantIt bool) {
			t.Helper()
			if got := p.count(sel) > 0; got != wantIt {
				t.Errorf("%s: %s (%s) shown = %v, want %v", who, what, sel, got, wantIt)
			}
		}
		// The run page.
		p.open(runPath, "run")
		has("rename run", "#run-rename", w.edit)
		has("edit description", "#run-edit-description", w.edit)
		has("add run tag", "#run-add-tag", w.edit)
		has("edit run tag", `.run-tags tr[data-key="team"] button[aria-label="Edit tag team"]`, w.edit)
		has("delete run tag", `.run-tags tr[data-key="team"] button[aria-label="Delete tag team"]`, w.edit)
		has("delete run", "#run-delete", w.del)
		p.shot("permissions-run-" + who)
		// The experiments list.
		p.open("/experiments", "experiments")
		has("rename experiment", expRow+` button[aria-label^="Rename"]`, w.edit)
		has("tag experiment", expRow+` button.add-tag`, w.edit)
		has("delete experiment", expRow+` button[aria-label^="Delete"]`, w.del)
		// The runs table: its Delete button is for the selected runs.
		p.open("/experiments/"+exp, "runs")
		if hidden := value(p, "runs-delete hidden", chromedp.Evaluate[bool](`document.getElementById('runs-delete').hidden`)); hidden == w.del {
			t.Errorf("%s: runs table Delete hidden = %v", who, hidden)
		}
		// The registered model and its version.
		p.open("/models/guarded-model", "model")
		has("rename model", "#model-rename", w.edit)
		has("set alias", "#set-alias", w.edit)
		has("add model tag", "#add-tag", w.edit)
		has("edit model description", "#edit-description", w.edit)
		has("delete model tag", `tr[data-key="owner"] button[aria-label="Delete tag owner"]`, w.edit)
		has("delete model", "#model-delete", w.del)
		p.shot("permissions-model-" + who)
		p.open("/models/guarded-model/versions/1", "model-version")
		has("transition stage", "#transition-stage", w.edit)
		has("edit version description", "#edit-description", w.edit)
		has("delete version", "#version-delete", w.del)
	}
	signIn := func(user, pass string) *page {
		p := newPage(t, srv.URL, desktopWidth, desktopHeight)
		p.open("/login", "login")
		p.signIn(user, pass)
		p.run("signed in as "+user, waitPage("experiments"))
		return p
	}

	reader := signIn("reader", readerPass)
	check(reader, "reader", want{edit: false, del: false})

	editor := signIn("editor", editorPass)
	check(editor, "editor", want{edit: true, del: false})
	// What the editor is shown works.
	editor.open(runPath, "run")
	editor.click("#run-rename")
	editor.run("rename dialog", chromedp.WaitVisible(chromedp.ID("dlg-name")))
	value(editor, "new name", chromedp.Evaluate[bool](`(document.getElementById('dlg-name').value = 'renamed-by-editor', true)`))
	editor.dialogSubmit()
	value(editor, "renamed", chromedp.Poll[bool](`document.querySelector('.run-title').textContent === 'renamed-by-editor'`, chromedp.WithPollingTimeout(10*time.Second)))

	root := signIn("root", authAdminPassword)
	check(root, "admin", want{edit: true, del: true})
}
