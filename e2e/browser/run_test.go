package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// rmWait polls a JavaScript expression until it is truthy.
func rmWait(p *page, what, expr string) {
	p.t.Helper()
	p.run(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

// rmJS evaluates a JavaScript expression and returns its value.
func rmJS[T any](p *page, what, expr string) T {
	p.t.Helper()
	return value(p, what, chromedp.Evaluate[T](expr))
}

// rmFill sets a form control's value and fires input and change events.
func rmFill(p *page, sel, v string) {
	p.t.Helper()
	s, _ := json.Marshal(sel)
	val, _ := json.Marshal(v)
	rmJS[bool](p, "fill "+sel, fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.value = %s;
		el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, s, val))
}

// rmNoToasts removes the toasts, so screenshots show the page.
func rmNoToasts(p *page) {
	p.t.Helper()
	rmJS[bool](p, "clear toasts", `(document.getElementById('toasts')?.replaceChildren(), true)`)
}

// testPNG draws a small gradient image.
func testPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 160, 96))
	for y := 0; y < 96; y++ {
		for x := 0; x < 160; x++ {
			img.Set(x, y, color.RGBA{uint8(40 + x), uint8(90 + y), 200, 255})
		}
	}
	// A diagonal line, so the preview visibly is the file.
	for x := 0; x < 96; x++ {
		img.Set(x+32, 95-x, color.RGBA{200, 30, 30, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seedRun creates an experiment and one finished run with params,
// metric histories, tags, a description, a dataset and artifacts.
func seedRun(t *testing.T, api *rest) (expID, runID string) {
	t.Helper()
	expID = api.createExperiment("fraud-detection")
	start := time.Now().Add(-47 * time.Minute).UnixMilli()
	runID = api.createRun(expID, "gbm-baseline", start)
	params := []map[string]any{}
	for k, v := range map[string]string{
		"learning_rate": "0.05", "max_depth": "8", "n_estimators": "400", "subsample": "0.8",
		"colsample_bytree": "0.7", "objective": "binary:logistic", "eval_metric": "auc", "seed": "42",
		"early_stopping_rounds": "30", "feature_set": "v3-with-merchant-history",
	} {
		params = append(params, map[string]any{"key": k, "value": v})
	}
	var metrics []map[string]any
	for step := 0; step < 40; step++ {
		ts := start + int64(step)*60_000
		metrics = append(metrics,
			map[string]any{"key": "train_loss", "value": 0.69 * (1 - float64(step)/55), "timestamp": ts, "step": step},
			map[string]any{"key": "val_auc", "value": 0.71 + 0.2*float64(step)/40, "timestamp": ts, "step": step})
	}
	metrics = append(metrics, map[string]any{"key": "precision_at_1pct", "value": 0.8731, "timestamp": start + 2_400_000, "step": 39})
	tags := []map[string]any{
		{"key": "team", "value": "risk-ml"},
		{"key": "dataset_version", "value": "2024-06-01"},
		{"key": "mlflow.user", "value": "ada"},
		{"key": "mlflow.source.name", "value": "train.py"},
		{"key": "mlflow.source.type", "value": "LOCAL"},
		{"key": "mlflow.source.git.commit", "value": "3f9c2b7e1d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c"},
		{"key": "mlflow.note.content", "value": "<b>not html</b>\nSecond line of the note."},
	}
	api.post("runs/log-batch", map[string]any{"run_id": runID, "params": params, "metrics": metrics, "tags": tags})
	api.post("runs/log-inputs", map[string]any{"run_id": runID, "datasets": []map[string]any{{
		"tags": []map[string]any{{"key": "mlflow.data.context", "value": "training"}},
		"dataset": map[string]any{
			"name": "transactions-2024-06", "digest": "a1b2c3d4", "source_type": "local",
			"source":  `{"uri": "/data/transactions.parquet"}`,
			"schema":  `{"mlflow_colspec": [{"name": "amount", "type": "double"}, {"name": "merchant", "type": "string"}]}`,
			"profile": `{"num_rows": 182340}`,
		},
	}}})
	api.post("runs/update", map[string]any{"run_id": runID, "status": "FINISHED", "end_time": start + 41*60_000})

	api.uploadArtifact(expID, runID, "notes.txt", []byte("Training notes\n- early stopping at round 372\n- <script>alert(1)</script> stays text\n"))
	api.uploadArtifact(expID, runID, "metrics.json", []byte(`{"auc":0.912,"precision":{"at_1pct":0.873},"classes":["legit","fraud"]}`))
	csv := "threshold,precision,recall,note\n0.1,0.41,0.97,\"low, noisy\"\n0.5,0.78,0.81,balanced\n0.9,0.95,0.42,\"says \"\"strict\"\"\"\n"
	api.uploadArtifact(expID, runID, "eval/thresholds.csv", []byte(csv))
	api.uploadArtifact(expID, runID, "eval/roc_curve.png", testPNG(t))
	api.uploadArtifact(expID, runID, "model/MLmodel", []byte("artifact_path: model\nflavors:\n  xgboost:\n    model_class: xgboost.sklearn.XGBClassifier\n"))
	api.uploadArtifact(expID, runID, "model/requirements.txt", []byte("xgboost==2.0.3\nscikit-learn==1.4.2\n"))
	api.uploadArtifact(expID, runID, "logs/train.log", bytes.Repeat([]byte("epoch 1 loss 0.5 auc 0.7 lr 0.05 ............................\n"), 20000))
	return expID, runID
}

// TestRunPage seeds a run and clicks through its overview, tags, charts
// and artifact browser.
func TestRunPage(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runID := seedRun(t, api)
	runPath := fmt.Sprintf("/experiments/%s/runs/%s", expID, runID)

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open(runPath, "run")
	p.wantText(".breadcrumbs", "Experiments", "fraud-detection", "gbm-baseline")
	p.wantText("h1", "gbm-baseline")
	p.wantText(".page-head .badge", "Finished")
	// Overview: details.
	p.wantText(".kv", runID, "ada", "train.py", "local", "3f9c2b7e1d", "41 min")
	if got := rmJS[string](p, "commit title", `[...document.querySelectorAll('.kv code')].find(c => c.textContent === '3f9c2b7e1d').title`); got != "3f9c2b7e1d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c" {
		t.Errorf("git commit title = %q", got)
	}
	// Description: text, never HTML.
	p.wantText(".note-text", "<b>not html</b>", "Second line of the note.")
	if n := p.count("main .note-text b"); n != 0 {
		t.Errorf("the description was rendered as HTML: %d <b> elements", n)
	}
	// Params, metrics, tags, datasets.
	p.wantText("[aria-labelledby=run-params-h]", "learning_rate", "0.05", "feature_set", "v3-with-merchant-history")
	p.wantText("[aria-labelledby=run-metrics-h]", "train_loss", "val_auc", "precision_at_1pct", "0.8731", "39")
	p.wantText(".run-tags", "team", "risk-ml", "dataset_version")
	if strings.Contains(p.text(".run-tags"), "mlflow.user") {
		t.Errorf("system tags are shown by default")
	}
	p.wantText("[aria-labelledby=run-datasets-h]", "transactions-2024-06", "training", "a1b2c3d4", "local")
	// The params filter narrows the table.
	rmFill(p, "input[aria-label='Filter parameters']", "depth")
	rmWait(p, "params filtered", `document.querySelectorAll('[aria-labelledby=run-params-h] tbody tr').length === 1`)
	rmFill(p, "input[aria-label='Filter parameters']", "")
	rmWait(p, "params unfiltered", `document.querySelectorAll('[aria-labelledby=run-params-h] tbody tr').length === 10`)
	rmNoToasts(p)
	p.shot("run-overview-desktop")

	// System tags toggle.
	p.click(".run-tags input[type=checkbox]")
	rmWait(p, "system tags shown", `document.querySelector('.run-tags').textContent.includes('mlflow.source.git.commit')`)
	p.click(".run-tags input[type=checkbox]")

	// Edit a tag through the UI; it persists.
	p.click(`button[aria-label="Edit tag team"]`)
	p.run("dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-value")))
	rmFill(p, "#dlg-value", "fraud-platform")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "tag updated", `document.querySelector('.run-tags tr[data-key="team"]')?.textContent.includes('fraud-platform')`)
	got := api.call("GET", "/api/2.0/mlflow/runs/get?run_id="+runID, nil)
	found := false
	for _, tg := range got["run"].(map[string]any)["data"].(map[string]any)["tags"].([]any) {
		m := tg.(map[string]any)
		if m["key"] == "team" {
			found = m["value"] == "fraud-platform"
		}
	}
	if !found {
		t.Errorf("the edited tag did not persist: %v", got["run"].(map[string]any)["data"])
	}

	// Add a tag through the UI.
	p.click(".run-tags .btn-primary")
	p.run("add dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-key")))
	rmFill(p, "#dlg-key", "reviewed_by")
	rmFill(p, "#dlg-value", "grace")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "tag added", `document.querySelector('.run-tags tr[data-key="reviewed_by"]')?.textContent.includes('grace')`)

	// A metric key links to the charts tab with that key selected.
	p.click(`[aria-labelledby=run-metrics-h] a`) // (the "Tag added" notification may still be up)
	p.run("metric link", waitPage("run"))
	rmWait(p, "charts tab", `document.querySelector('#run-tab-charts')?.getAttribute('aria-selected') === 'true'`)
	wantJS(p, "checked metrics on the charts tab", `[...document.querySelectorAll('.metric-picker input[type=checkbox]:checked')].map(x => x.value).join()`, "precision_at_1pct")
	if n := p.count(".chart-area .chart-card, .chart-area canvas, .chart-area svg"); n == 0 {
		t.Errorf("no chart rendered")
	}
	// Choosing another key adds its chart and keeps the choice in the URL.
	p.click(`.metric-picker input[value="val_auc"]`)
	rmWait(p, "two keys", `new URLSearchParams(location.search).getAll('metric').length === 2`)
	rmWait(p, "charts drawn", `document.querySelectorAll('.chart-area canvas').length >= 2`)
	rmNoToasts(p)
	p.shot("run-charts-desktop")
	// Tabs move with the keyboard.
	p.run("arrow to artifacts", chromedp.Focus(chromedp.CSS("#run-tab-charts")), chromedp.KeyEvent(kb.ArrowRight))
	rmWait(p, "artifacts tab", `document.querySelector('#run-tab-artifacts').getAttribute('aria-selected') === 'true' && document.activeElement.id === 'run-tab-artifacts'`)
	p.wantLocationHas("tab=artifacts")

	// Artifact browser: folders first, lazy expansion.
	rmWait(p, "tree", `document.querySelectorAll('button.tree-item').length === 5`)
	names := rmJS[[]string](p, "tree names", `[...document.querySelectorAll('.artifact-tree > li > button .tree-name')].map(x => x.textContent)`)
	if strings.Join(names, ",") != "eval,logs,model,metrics.json,notes.txt" {
		t.Errorf("tree root = %v", names)
	}
	p.click(`button.tree-item[data-path="notes.txt"]`)
	rmWait(p, "text preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('early stopping at round 372')`)
	p.wantText(".artifact-preview pre", "<script>alert(1)</script> stays text")
	if n := p.count(".artifact-preview script"); n != 0 {
		t.Errorf("text preview created a script element")
	}
	href := rmJS[string](p, "download href", `document.querySelector('.artifact-details a[download]').getAttribute('href')`)
	if want := "/get-artifact?run_uuid=" + runID + "&path=notes.txt"; href != want {
		t.Errorf("download href = %q, want %q", href, want)
	}
	p.wantText(".artifact-details .kv", "notes.txt", "B")

	p.click(`button.tree-item[data-path="metrics.json"]`)
	rmWait(p, "json preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('"at_1pct": 0.873')`)
	if txt := p.text(".artifact-preview pre"); !strings.Contains(txt, "{\n  \"auc\": 0.912,") {
		t.Errorf("JSON is not pretty-printed:\n%s", txt)
	}

	// Files over 1 MiB are not fetched for a preview.
	p.click(`button.tree-item[data-path="logs"]`)
	rmWait(p, "logs expanded", `document.querySelector('button.tree-item[data-path="logs/train.log"]') !== null`)
	p.click(`button.tree-item[data-path="logs/train.log"]`)
	rmWait(p, "too large", `document.querySelector('.artifact-preview')?.textContent.includes('too large to preview')`)
	if n := rmJS[int](p, "log fetches", `performance.getEntriesByType('resource').filter(e => e.name.includes('logs%2Ftrain.log')).length`); n != 0 {
		t.Errorf("the large file was fetched %d times for a preview", n)
	}
	p.click(`button.tree-item[data-path="logs"]`)

	p.click(`button.tree-item[data-path="eval"]`)
	rmWait(p, "eval expanded", `document.querySelector('button.tree-item[data-path="eval/thresholds.csv"]') !== null`)
	wantJS(p, "eval aria-expanded", `document.querySelector('button.tree-item[data-path="eval"]').getAttribute('aria-expanded')`, "true")
	p.click(`button.tree-item[data-path="eval/thresholds.csv"]`)
	rmWait(p, "csv table", `document.querySelectorAll('.csv-preview tbody tr').length === 3`)
	p.wantText(".csv-preview thead", "threshold", "precision", "recall", "note")
	p.wantText(".csv-preview tbody", "low, noisy", `says "strict"`, "0.95")
	p.wantLocationHas("artifact=" + url.QueryEscape("eval/thresholds.csv"))
	rmNoToasts(p)
	p.shot("run-artifacts-csv")

	p.click(`button.tree-item[data-path="eval/roc_curve.png"]`)
	rmWait(p, "image preview", `(() => { const i = document.querySelector('.artifact-preview img.preview'); return i && i.complete && i.naturalWidth === 160; })()`)
	src := rmJS[string](p, "img src", `document.querySelector('.artifact-preview img.preview').getAttribute('src')`)
	if want := "/get-artifact?run_uuid=" + runID + "&path=" + url.QueryEscape("eval/roc_curve.png"); src != want {
		t.Errorf("img src = %q, want %q", src, want)
	}
	rmNoToasts(p)
	p.shot("run-artifacts-image")

	// Keyboard: ArrowDown moves through the tree; a deep link reveals a nested file.
	p.run("tree keys", chromedp.Focus(chromedp.CSS(`button.tree-item[data-path="eval"]`)), chromedp.KeyEvent(kb.ArrowDown))
	wantJS(p, "focus after ArrowDown", `document.activeElement.dataset.path || ''`, "eval/roc_curve.png")
	p.open(runPath+"?tab=artifacts&artifact="+url.QueryEscape("model/MLmodel"), "run")
	rmWait(p, "deep link", `document.querySelector('button.tree-item[data-path="model/MLmodel"]')?.getAttribute('aria-current') === 'true' &&
		document.querySelector('.artifact-preview pre')?.textContent.includes('xgboost.sklearn.XGBClassifier')`)

	// A run without artifacts shows an empty state; a wrong experiment id redirects.
	other := api.createRun(expID, "empty-run", time.Now().UnixMilli())
	p.open(fmt.Sprintf("/experiments/0/runs/%s?tab=artifacts", other), "run")
	p.wantText("main", "No artifacts recorded for this run")
	p.wantLocationHas("/experiments/" + expID + "/runs/" + other) // the wrong experiment id corrected

	// The overview of a RUNNING run follows new metrics.
	p.open(fmt.Sprintf("/experiments/%s/runs/%s", expID, other), "run")
	p.wantText(".page-head .badge", "Running")
	api.post("runs/log-metric", map[string]any{"run_id": other, "key": "live_loss", "value": 0.42, "timestamp": time.Now().UnixMilli(), "step": 3})
	rmWait(p, "live metric", `document.querySelector('[aria-labelledby=run-metrics-h]')?.textContent.includes('live_loss')`)

	// A run with many params draws the first 1,000; the filter finds the rest.
	wide := api.createRun(expID, "wide-run", time.Now().UnixMilli())
	for b := 0; b < 12; b++ {
		var ps []map[string]any
		for i := 0; i < 100; i++ {
			ps = append(ps, map[string]any{"key": fmt.Sprintf("p_%04d", b*100+i), "value": fmt.Sprint(i)})
		}
		api.post("runs/log-batch", map[string]any{"run_id": wide, "params": ps})
	}
	p.open(fmt.Sprintf("/experiments/%s/runs/%s", expID, wide), "run")
	p.wantText("[aria-labelledby=run-params-h] h2", "1200")
	p.wantCount("[aria-labelledby=run-params-h] tbody tr", 1001) // 1,000 params and a note
	p.wantText("[aria-labelledby=run-params-h] tbody", "Showing the first 1,000 of 1,200")
	rmFill(p, "input[aria-label='Filter parameters']", "p_1199")
	rmWait(p, "filtered wide", `document.querySelectorAll('[aria-labelledby=run-params-h] tbody tr').length === 1`)

	// Rename, delete and restore from the header.
	p.open(runPath, "run")
	p.click(".page-head .actions .btn:first-child")
	p.run("rename dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-name")))
	rmFill(p, "#dlg-name", "gbm-baseline-v2")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "renamed", `document.querySelector('h1').textContent === 'gbm-baseline-v2' && document.querySelector('.breadcrumbs').textContent.includes('gbm-baseline-v2')`)
	p.click(".page-head .btn-danger")
	p.run("delete dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal button[type=submit]")))
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "deleted", `document.querySelector('.page-head .badge-deleted') !== null`)
	info := api.call("GET", "/api/2.0/mlflow/runs/get?run_id="+runID, nil)["run"].(map[string]any)["info"].(map[string]any)
	if info["lifecycle_stage"] != "deleted" || info["run_name"] != "gbm-baseline-v2" {
		t.Errorf("after rename+delete: %v", info)
	}
	p.click(".page-head .actions .btn:nth-child(2)") // restore
	rmWait(p, "restored", `document.querySelector('.page-head .badge-deleted') === null && document.querySelector('.page-head .btn-danger') !== null`)

	// An unknown run shows an error, not a blank page.
	p.open(fmt.Sprintf("/experiments/%s/runs/doesnotexist", expID), "run")
	p.wantText("main", "Run not available", "not found")
	p.allowErrors() // Chromium logs the failed request

	phone := newPage(t, srv.URL, phoneWidth, phoneHeight)
	phone.open(runPath, "run")
	phone.wantText("h1", "gbm-baseline")
	rmNoToasts(phone)
	phone.shot("run-overview-phone")
	phone.open(runPath+"?tab=artifacts&artifact="+url.QueryEscape("eval/thresholds.csv"), "run")
	rmWait(phone, "phone csv", `document.querySelectorAll('.csv-preview tbody tr').length === 3`)
	phone.shot("run-artifacts-phone")
}

// TestRunAndModelsWithAuth drives the run and model pages with auth on:
// the admin edits through the session (CSRF header) and previews
// artifacts with the session cookie; a reader sees the pages but cannot
// change them and is told so, and a run outside their grants shows an
// error instead of a blank page.
func TestRunAndModelsWithAuth(t *testing.T) {
	srv, admin := startAuthServer(t)
	expID, runID := seedRun(t, admin)
	secretExp := admin.createExperiment("secret-exp")
	secretRun := admin.createRun(secretExp, "secret-run", time.Now().UnixMilli())
	admin.post("registered-models/create", map[string]any{"name": "fraud-model"})
	admin.post("model-versions/create", map[string]any{"name": "fraud-model", "source": "runs:/" + runID + "/model", "run_id": runID})
	admin.post("registered-models/create", map[string]any{"name": "hidden-model"})
	admin.post("users/create", map[string]any{"username": "alice", "password": authAlicePassword})
	admin.post("experiments/permissions/create", map[string]any{"experiment_id": expID, "username": "alice", "permission": "READ"})
	admin.post("registered-models/permissions/create", map[string]any{"name": "fraud-model", "username": "alice", "permission": "READ"})
	runPath := fmt.Sprintf("/experiments/%s/runs/%s", expID, runID)

	// The admin, signed in with a session.
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open(runPath, "login")
	p.signIn("root", authAdminPassword)
	p.run("back on the run", waitPage("run"))
	p.wantText("h1", "gbm-baseline")
	p.click(`button[aria-label="Edit tag team"]`)
	p.run("dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-value")))
	rmFill(p, "#dlg-value", "edited-with-session")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "tag updated", `document.querySelector('.run-tags tr[data-key="team"]')?.textContent.includes('edited-with-session')`)
	p.open(runPath+"?tab=artifacts&artifact="+url.QueryEscape("eval/roc_curve.png"), "run")
	rmWait(p, "image with session", `(() => { const i = document.querySelector('.artifact-preview img.preview'); return i && i.complete && i.naturalWidth === 160; })()`)
	p.open("/models/fraud-model", "model")
	p.click("#set-alias")
	p.run("alias dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-alias")))
	rmFill(p, "#dlg-alias", "prod")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "alias shown", `document.body.dataset.ready === 'true' && document.querySelector('#versions-table')?.textContent.includes('@prod')`)

	// A reader: sees the run and the model, cannot edit them.
	r := newPage(t, srv.URL, desktopWidth, desktopHeight)
	r.open(runPath, "login")
	r.signIn("alice", authAlicePassword)
	r.run("reader on the run", waitPage("run"))
	r.wantText(".run-tags", "edited-with-session")
	// READ allows no edit: the page offers none, and the server refuses
	// the call the button would have made.
	if n := r.count(`button[aria-label="Edit tag team"], #run-rename, #run-delete, #run-add-tag`); n != 0 {
		t.Errorf("a reader is offered %d edit buttons on the run page", n)
	}
	st := value(r, "reader set-tag", chromedp.Evaluate[string](fmt.Sprintf(`fetch('/ajax-api/2.0/mlflow/runs/set-tag', {method: 'POST', credentials: 'same-origin',
		headers: {'Content-Type': 'application/json', 'X-Requested-With': 'mlflow-ui'},
		body: JSON.stringify({run_id: %q, key: 'team', value: 'reader-was-here'})}).then(async (res) => {
			const v = await (await fetch('/ui/whoami')).json();
			const again = await fetch('/ajax-api/2.0/mlflow/runs/set-tag', {method: 'POST', credentials: 'same-origin',
				headers: {'Content-Type': 'application/json', 'X-Requested-With': 'mlflow-ui', 'X-CSRF-Token': v.csrf_token},
				body: JSON.stringify({run_id: %q, key: 'team', value: 'reader-was-here'})});
			return res.status + ' ' + again.status; })`, runID, runID), chromedp.EvalAwaitPromise))
	if st != "403 403" {
		t.Errorf("a reader's set-tag: %s, want 403 (no CSRF token) and 403 (no permission)", st)
	}
	r.allowErrors()
	r.open(runPath+"?tab=artifacts&artifact=notes.txt", "run")
	rmWait(r, "reader text preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('early stopping')`)
	r.open("/models", "models")
	r.wantText("#models-table", "fraud-model")
	if strings.Contains(r.text("main"), "hidden-model") {
		t.Errorf("the reader sees a model without a grant")
	}
	r.open("/models/fraud-model", "model")
	r.wantText("#versions-table", "@prod", "gbm-baseline")
	r.open(fmt.Sprintf("/experiments/%s/runs/%s", secretExp, secretRun), "run")
	r.wantText("main", "Run not available")
	r.allowErrors()
}
