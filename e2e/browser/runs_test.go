package browser

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// erRun describes a run to seed.
type erRun struct {
	name    string
	status  string // FINISHED, RUNNING, FAILED
	user    string
	params  map[string]string
	metrics map[string]float64
	tags    map[string]string
}

// erSeedRun creates run r in expID, starting at start, and logs its data.
func erSeedRun(api *rest, expID string, start int64, r erRun) string {
	api.t.Helper()
	tags := []map[string]string{{"key": "mlflow.user", "value": r.user}, {"key": "mlflow.source.name", "value": "train.py"}}
	for k, v := range r.tags {
		tags = append(tags, map[string]string{"key": k, "value": v})
	}
	out := api.post("runs/create", map[string]any{"experiment_id": expID, "run_name": r.name, "start_time": start, "user_id": r.user, "tags": tags})
	id := out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	var params, metrics []map[string]any
	for k, v := range r.params {
		params = append(params, map[string]any{"key": k, "value": v})
	}
	for k, v := range r.metrics {
		metrics = append(metrics, map[string]any{"key": k, "value": v, "timestamp": start + 1000, "step": 0})
	}
	if len(params)+len(metrics) > 0 {
		api.post("runs/log-batch", map[string]any{"run_id": id, "params": params, "metrics": metrics})
	}
	if r.status != "" && r.status != "RUNNING" {
		api.post("runs/update", map[string]any{"run_id": id, "status": r.status, "end_time": start + 95_000})
	}
	return id
}

// erRunNames returns the run names of the table's rows, in order.
func erRunNames(p *page) []string {
	p.t.Helper()
	return erEval[[]string](p, "run names", `[...document.querySelectorAll('.runs-table tbody tr .col-name a')].map((a) => a.textContent)`)
}

// TestRunsTable drives the runs table of one experiment: fixed columns,
// the column picker, server-side sorting by a metric, filtering (and a bad
// filter), selection → compare, delete and restore.
func TestRunsTable(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.post("experiments/create", map[string]any{"name": "image-classifier", "tags": []map[string]string{
		{"key": "mlflow.note.content", "value": "Baselines for the product-photo classifier.\nCompare against resnet-50 before shipping."},
		{"key": "team", "value": "vision"},
	}})["experiment_id"].(string)
	base := time.Now().Add(-3 * time.Hour).UnixMilli()
	seed := []erRun{
		{"cnn-small", "FINISHED", "alice", map[string]string{"model": "cnn", "lr": "0.01"}, map[string]float64{"loss": 0.9, "accuracy": 0.71}, nil},
		{"cnn-large", "FINISHED", "alice", map[string]string{"model": "cnn", "lr": "0.001"}, map[string]float64{"loss": 0.3, "accuracy": 0.88}, nil},
		{"resnet-50", "FINISHED", "bob", map[string]string{"model": "resnet", "lr": "0.001"}, map[string]float64{"loss": 0.2, "accuracy": 0.93}, nil},
		{"vit-base", "RUNNING", "carol", map[string]string{"model": "vit", "lr": "0.0003"}, map[string]float64{"loss": 0.45, "accuracy": 0.84}, nil},
		{"mlp-baseline", "FAILED", "bob", map[string]string{"model": "mlp", "lr": "0.1"}, map[string]float64{"loss": 1.2, "accuracy": 0.52}, nil},
		{"cnn-dropout", "FINISHED", "alice", map[string]string{"model": "cnn", "lr": "0.01"}, map[string]float64{"loss": 0.6, "accuracy": 0.8}, nil},
	}
	ids := map[string]string{}
	for i, r := range seed {
		// Every run has more params and metrics than the default columns show.
		for _, k := range []string{"batch_size", "epochs", "optimizer", "weight_decay"} {
			r.params[k] = fmt.Sprint(len(k) * (i + 1))
		}
		for _, k := range []string{"f1", "precision", "val_accuracy", "val_loss"} {
			r.metrics[k] = float64(len(k)*(i+1)) / 100
		}
		r.tags = map[string]string{"team": "vision", "dataset": "photos-v3"}
		ids[r.name] = erSeedRun(api, exp, base+int64(i)*60_000, r)
	}

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+exp, "runs")
	p.wantText("main h1", "image-classifier")
	p.wantText(".breadcrumbs", "Experiments", "image-classifier")
	p.wantText(".exp-description", "Baselines for the product-photo classifier.", "Compare against resnet-50")
	p.wantText(".exp-meta", "team: vision")
	if title := value(p, "title", chromedp.Title()); !strings.Contains(title, "image-classifier") {
		t.Errorf("the tab is titled %q", title)
	}
	p.wantText("table.runs-table", "cnn-small", "resnet-50", "vit-base", "alice", "bob", "carol", "train.py")
	if n := p.count("table.runs-table tbody tr"); n != 6 {
		t.Errorf("%d rows, want 6", n)
	}
	for status, n := range map[string]int{"FINISHED": 4, "RUNNING": 1, "FAILED": 1} {
		if got := p.count(".runs-table .badge.status-" + status); got != n {
			t.Errorf("%d %s badges, want %d", got, status, n)
		}
	}
	// Newest first by default, and the start-time header says so.
	if names := erRunNames(p); names[0] != "cnn-dropout" || names[5] != "cnn-small" {
		t.Errorf("default order %v, want newest first", names)
	}
	if s := erEval[string](p, "aria-sort", `[...document.querySelectorAll('.runs-table th[aria-sort]')].map((th) => th.textContent + '=' + th.getAttribute('aria-sort')).join()`); !strings.Contains(s, "Started") || !strings.Contains(s, "descending") {
		t.Errorf("sorted headers: %q", s)
	}
	// Default columns: a few metrics and params, not all of them.
	heads := p.text(".runs-table thead")
	for _, k := range []string{"accuracy", "loss", "lr", "model"} {
		if !strings.Contains(heads, k) {
			t.Errorf("default columns lack %s: %s", k, heads)
		}
	}
	if strings.Contains(heads, "val_loss") || strings.Contains(heads, "weight_decay") {
		t.Errorf("default columns show every key: %s", heads)
	}
	erNoHorizontalScroll(p)
	p.shot("runs-desktop")

	// Column picker: find val_loss, pick it, apply.
	p.click("#runs-columns")
	p.run("picker", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #colpick-search")))
	p.wantText("dialog.modal[open]", "Params", "Metrics", "Tags", "val_loss", "weight_decay", "dataset")
	p.shot("runs-column-picker")
	p.run("search keys", chromedp.SendKeys(chromedp.CSS("#colpick-search"), "val_l"))
	erPoll(p, "one key listed", `document.querySelectorAll('dialog.modal[open] .colpick-list li').length === 1`)
	p.click(`dialog.modal[open] input[value="metrics.val_loss"]`)
	p.click(`dialog.modal[open] button[type=submit]`)
	p.run("picker closes", chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	p.wantText(".runs-table thead", "val_loss")
	// resnet-50 is the third seeded run: val_loss = 8*3/100.
	cell := erEval[string](p, "val_loss cell", fmt.Sprintf(`(() => {
		const ths = [...document.querySelectorAll('.runs-table thead th')];
		const i = ths.findIndex((th) => th.textContent.includes('val_loss'));
		return document.querySelector('tr[data-run-id=%q]').children[i].textContent; })()`, ids["resnet-50"]))
	if cell != "0.24" {
		t.Errorf("resnet-50's val_loss cell shows %q, want 0.24", cell)
	}
	p.wantLocationHas("cols=", "metrics.val_loss")
	// The choice is remembered in this browser for this experiment.
	p.open("/experiments/"+exp, "runs")
	p.wantText(".runs-table thead", "val_loss")

	// Sort by the loss column, on the server: ascending then descending.
	p.click(`.runs-table th button[title="Sort by loss"]`)
	p.run("sorted", waitPage("runs"))
	want := []string{"resnet-50", "cnn-large", "vit-base", "cnn-dropout", "cnn-small", "mlp-baseline"}
	if got := erRunNames(p); !reflect.DeepEqual(got, want) {
		t.Errorf("sorted by loss ascending: %v, want %v", got, want)
	}
	if s := erEval[string](p, "aria-sort", `(document.querySelector('.runs-table th[aria-sort]') || {textContent: ''}).textContent`); !strings.Contains(s, "loss") {
		t.Errorf("aria-sort is on %q", s)
	}
	p.wantLocationHas("order_by=metrics")
	p.click(`.runs-table th button[title="Sort by loss"]`)
	p.run("sorted desc", waitPage("runs"))
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	if got := erRunNames(p); !reflect.DeepEqual(got, want) {
		t.Errorf("sorted by loss descending: %v, want %v", got, want)
	}
	if s := erEval[string](p, "aria-sort", `document.querySelector('.runs-table th[aria-sort]').getAttribute('aria-sort')`); s != "descending" {
		t.Errorf("aria-sort = %q", s)
	}

	// Every sortable fixed column sorts on the server without an error.
	for _, col := range []string{"Run name", "Status", "User", "Started", "Source"} {
		p.click(fmt.Sprintf(`.runs-table th button[title="Sort by %s"]`, col))
		p.run("sorted by "+col, waitPage("runs"))
		if n := p.count(".runs-table tbody tr"); n != 6 || p.count("#runs-filter-error .error-box") != 0 {
			t.Errorf("sorting by %s: %d rows, error %q", col, n, p.text("#runs-filter-error"))
		}
		if s := erEval[string](p, "aria-sort", `document.querySelector('.runs-table th[aria-sort]').textContent`); !strings.Contains(s, col) {
			t.Errorf("sorting by %s puts aria-sort on %q", col, s)
		}
	}
	if got := erRunNames(p); got[0] != "cnn-dropout" && got[0] != "cnn-small" {
		t.Errorf("sorted by source: %v", got)
	}
	p.click(`.runs-table th button[title="Sort by Run name"]`)
	p.run("sorted by name", waitPage("runs"))
	if got := erRunNames(p); !reflect.DeepEqual(got, []string{"cnn-dropout", "cnn-large", "cnn-small", "mlp-baseline", "resnet-50", "vit-base"}) {
		t.Errorf("sorted by run name: %v", got)
	}

	// Filter.
	p.run("filter", chromedp.SetValue(chromedp.CSS("#runs-filter"), "metrics.loss < 0.5"),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("runs"))
	if got := erRunNames(p); !reflect.DeepEqual(got, []string{"cnn-large", "resnet-50", "vit-base"}) { // still sorted by name
		t.Errorf("metrics.loss < 0.5 shows %v", got)
	}
	p.run("filter by param", chromedp.SetValue(chromedp.CSS("#runs-filter"), "params.model = 'cnn' and metrics.loss > 0.5"),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("runs"))
	if got := erRunNames(p); !reflect.DeepEqual(got, []string{"cnn-dropout", "cnn-small"}) {
		t.Errorf("params.model = 'cnn' and metrics.loss > 0.5 shows %v", got)
	}
	// A bad filter shows the server's message.
	bad := "metrics.loss <"
	msg := erAPIError(t, srv, "runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": bad})
	p.run("bad filter", chromedp.SetValue(chromedp.CSS("#runs-filter"), bad),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("runs"))
	p.wantText("#runs-filter-error", msg)
	bad2 := "foo.bar = 1"
	msg2 := erAPIError(t, srv, "runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": bad2})
	p.run("bad entity", chromedp.SetValue(chromedp.CSS("#runs-filter"), bad2),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("runs"))
	p.wantText("#runs-filter-error", msg2)
	p.shot("runs-filter-error")
	p.allowErrors() // Chromium logs the 400s

	// Select two runs and compare them.
	p.open("/experiments/"+exp, "runs")
	p.click(fmt.Sprintf(`tr[data-run-id=%q] input.row-select`, ids["resnet-50"]))
	p.click(fmt.Sprintf(`tr[data-run-id=%q] input.row-select`, ids["cnn-large"]))
	p.wantText(".selection-bar", "2 selected", "Compare 2 runs")
	p.click("#runs-compare")
	erPoll(p, "the compare URL", `location.pathname === '/compare'`)
	loc := erEval[string](p, "location", `decodeURIComponent(location.search)`)
	if loc != "?runs="+ids["resnet-50"]+","+ids["cnn-large"] && loc != "?runs="+ids["cnn-large"]+","+ids["resnet-50"] {
		t.Errorf("compare went to %s", loc)
	}

	// Delete one run from the selection bar, then restore it from the deleted view.
	p.open("/experiments/"+exp, "runs")
	p.click(fmt.Sprintf(`tr[data-run-id=%q] input.row-select`, ids["mlp-baseline"]))
	p.click("#runs-delete")
	p.run("confirm", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "5 rows", `document.querySelectorAll('.runs-table tbody tr').length === 5`)
	if st := api.call(http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+ids["mlp-baseline"], nil)["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"]; st != "deleted" {
		t.Errorf("after Delete the run is %v", st)
	}
	erSetSelect(p, "#runs-view", "deleted")
	p.run("deleted view", waitPage("runs"))
	if got := erRunNames(p); !reflect.DeepEqual(got, []string{"mlp-baseline"}) {
		t.Errorf("deleted view shows %v", got)
	}
	p.click(fmt.Sprintf(`tr[data-run-id=%q] input.row-select`, ids["mlp-baseline"]))
	p.click("#runs-restore")
	p.run("confirm restore", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "the deleted view to empty", `!document.querySelector('.runs-table')`)
	if st := api.call(http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+ids["mlp-baseline"], nil)["run"].(map[string]any)["info"].(map[string]any)["lifecycle_stage"]; st != "active" {
		t.Errorf("after Restore the run is %v", st)
	}

	// Phone width.
	ph := newPage(t, srv.URL, phoneWidth, phoneHeight)
	ph.open("/experiments/"+exp, "runs")
	ph.wantText("table.runs-table", "resnet-50")
	erNoHorizontalScroll(ph)
	if w := erEval[int](ph, "table scroll", `(() => { const b = document.querySelector('.runs-table-box .table-wrap'); return b.scrollWidth - b.clientWidth; })()`); w <= 0 {
		t.Error("the runs table does not scroll inside its box on a phone")
	}
	ph.shot("runs-phone")
	ph.click("#runs-columns")
	ph.run("picker on a phone", chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #colpick-search")))
	ph.shot("runs-column-picker-phone")
	ph.click("dialog.modal[open] .dialog-actions .btn:not(.btn-primary)")
	ph.run("picker closed", chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
}

// TestRunsPagingAndMulti pages through 60 runs 25 at a time and shows the
// runs of two experiments in one table.
func TestRunsPagingAndMulti(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	many := api.createExperiment("hyperparam-sweep")
	other := api.createExperiment("ablation-study")
	base := time.Now().Add(-6 * time.Hour).UnixMilli()
	for i := 0; i < 60; i++ {
		erSeedRun(api, many, base+int64(i)*1000, erRun{name: fmt.Sprintf("sweep-%02d", i), status: "FINISHED", user: "sweeper",
			metrics: map[string]float64{"loss": float64(i) / 100}, params: map[string]string{"lr": fmt.Sprintf("%.3f", 0.001*float64(i+1))}})
	}
	for i := 0; i < 3; i++ {
		// Newer than the sweep: on the first page of the combined table.
		erSeedRun(api, other, base+int64(3600_000+i*1000), erRun{name: fmt.Sprintf("ablate-%d", i), status: "FINISHED", user: "dana",
			metrics: map[string]float64{"loss": 0.5}, params: map[string]string{"lr": "0.01"}})
	}

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+many, "runs")
	if n := p.count(".runs-table tbody tr"); n != 50 {
		t.Errorf("default page size shows %d rows, want 50", n)
	}
	erSetSelect(p, "#runs-size", "25")
	p.run("page size 25", waitPage("runs"))
	p.wantCount(".runs-table tbody tr", 25)
	p.wantText(".page-info", "Runs 1–25")
	if names := erRunNames(p); names[0] != "sweep-59" || names[24] != "sweep-35" {
		t.Errorf("page 1 runs from %s to %s", names[0], names[24])
	}
	p.click("#runs-next")
	erPoll(p, "page 2", `document.querySelector('.page-info').textContent === 'Runs 26–50'`)
	if names := erRunNames(p); names[0] != "sweep-34" || len(names) != 25 {
		t.Errorf("page 2 starts at %s with %d rows", names[0], len(names))
	}
	p.click("#runs-next")
	erPoll(p, "page 3", `document.querySelector('.page-info').textContent.startsWith('Runs 51–60')`)
	p.wantText(".page-info", "of 60")
	if names := erRunNames(p); len(names) != 10 || names[9] != "sweep-00" {
		t.Errorf("page 3: %v", names)
	}
	if !erEval[bool](p, "next disabled", `document.querySelector('#runs-next').disabled`) {
		t.Error("Next is enabled on the last page")
	}
	p.click("#runs-prev")
	erPoll(p, "back to page 2", `document.querySelector('.page-info').textContent === 'Runs 26–50'`)
	p.wantLocationHas("size=25")

	// Two experiments in one table, with an experiment column.
	p.open("/experiments/"+many+","+other, "runs")
	p.wantText("main h1", "2 experiments")
	p.wantText(".exp-chips", "hyperparam-sweep", "ablation-study")
	p.wantText(".runs-table thead", "Experiment")
	p.wantText(".runs-table tbody", "ablate-0", "ablate-2", "sweep-59", "hyperparam-sweep", "ablation-study")
	exps := erEval[[]string](p, "experiment column", `[...document.querySelectorAll('.runs-table tbody td.col-exp')].map((td) => td.textContent)`)
	seen := map[string]int{}
	for _, e := range exps {
		seen[e]++
	}
	if seen["ablation-study"] != 3 || seen["hyperparam-sweep"] != 47 {
		t.Errorf("experiment column counts %v", seen)
	}
	p.shot("runs-multi")
}

// TestRunsWithAuth signs in as a user who may read one experiment: her
// runs table works, another experiment's table explains the refusal
// instead of going blank, and an edit she may not make shows the error.
func TestRunsWithAuth(t *testing.T) {
	srv, admin := startAuthServer(t)
	shared := admin.createExperiment("shared-forecast")
	secret := admin.createExperiment("secret-pricing")
	start := time.Now().Add(-time.Hour).UnixMilli()
	erSeedRun(admin, shared, start, erRun{name: "forecast-v1", status: "FINISHED", user: "root",
		metrics: map[string]float64{"rmse": 3.2}, params: map[string]string{"horizon": "14"}})
	erSeedRun(admin, secret, start, erRun{name: "pricing-v1", status: "FINISHED", user: "root",
		metrics: map[string]float64{"margin": 0.4}})
	admin.post("users/create", map[string]any{"username": "alice", "password": authAlicePassword})
	admin.post("experiments/permissions/create", map[string]any{"experiment_id": shared, "username": "alice", "permission": "READ"})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/login?next=%2Fexperiments%2F"+shared, "login")
	p.signIn("alice", authAlicePassword)
	p.run("alice's runs table", waitPage("runs"))
	p.wantText("main h1", "shared-forecast")
	p.wantText("table.runs-table", "forecast-v1", "Finished", "root", "3.2", "14")

	// Experiments page: only what she may read.
	p.open("/experiments", "experiments")
	p.wantText("table.exp-table", "shared-forecast")
	if strings.Contains(p.text("main"), "secret-pricing") {
		t.Error("alice sees secret-pricing")
	}
	// READ does not allow a rename: no button, and the server refuses the call.
	if n := p.count(fmt.Sprintf(`tr[data-id=%q] .row-actions button`, shared)); n != 0 {
		t.Errorf("alice is offered %d actions on an experiment she may only read", n)
	}
	st := value(p, "rename by API", chromedp.Evaluate[int](fmt.Sprintf(`fetch('/ui/whoami').then((r) => r.json()).then((v) => fetch('/ajax-api/2.0/mlflow/experiments/update', {
		method: 'POST', credentials: 'same-origin',
		headers: {'Content-Type': 'application/json', 'X-Requested-With': 'mlflow-ui', 'X-CSRF-Token': v.csrf_token},
		body: JSON.stringify({experiment_id: %q, new_name: 'renamed-by-alice'})})).then((r) => r.status)`, shared), chromedp.EvalAwaitPromise))
	if st != 403 {
		t.Errorf("alice's rename through the API: %d, want 403", st)
	}
	if name := admin.experimentByName("shared-forecast")["name"]; name != "shared-forecast" {
		t.Errorf("the experiment is now %v", name)
	}

	// Another experiment's runs: a clear refusal, not a blank page.
	p.open("/experiments/"+secret, "runs")
	p.run("error shown", chromedp.WaitVisible(chromedp.CSS("main .error-box")))
	if txt := p.text("main"); strings.Contains(txt, "pricing-v1") || strings.Contains(txt, "secret-pricing") {
		t.Errorf("the refused page leaks data: %s", txt)
	}
	p.shot("runs-forbidden")
	p.open("/experiments/"+shared+","+secret, "runs")
	p.run("error shown for the pair", chromedp.WaitVisible(chromedp.CSS("main .error-box")))
	p.allowErrors() // Chromium logs the 403s
}
