package browser

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// seedModels registers three models: one with three versions (stages,
// aliases, tags, source runs) and two smaller ones.
func seedModels(t *testing.T, api *rest) (expID string, runIDs []string) {
	t.Helper()
	expID = api.createExperiment("churn-training")
	for i, name := range []string{"xgb-v1", "xgb-tuned", "xgb-more-data"} {
		id := api.createRun(expID, name, time.Now().Add(time.Duration(i-3)*time.Hour).UnixMilli())
		api.post("runs/update", map[string]any{"run_id": id, "status": "FINISHED", "end_time": time.Now().Add(time.Duration(i-3)*time.Hour + 20*time.Minute).UnixMilli()})
		runIDs = append(runIDs, id)
	}
	api.post("registered-models/create", map[string]any{
		"name":        "churn-classifier",
		"description": "Predicts 30-day churn for subscription customers.\nOwner: growth-ml.",
		"tags":        []map[string]any{{"key": "team", "value": "growth-ml"}, {"key": "task", "value": "classification"}},
	})
	for i, id := range runIDs {
		api.post("model-versions/create", map[string]any{
			"name": "churn-classifier", "source": "runs:/" + id + "/model", "run_id": id,
			"description": fmt.Sprintf("Trained by run %d.", i+1),
			"tags":        []map[string]any{{"key": "validated", "value": map[bool]string{true: "yes", false: "no"}[i < 2]}},
		})
	}
	api.post("model-versions/transition-stage", map[string]any{"name": "churn-classifier", "version": "1", "stage": "Archived", "archive_existing_versions": false})
	api.post("model-versions/transition-stage", map[string]any{"name": "churn-classifier", "version": "2", "stage": "Production", "archive_existing_versions": false})
	api.post("registered-models/alias", map[string]any{"name": "churn-classifier", "alias": "champion", "version": "2"})

	api.post("registered-models/create", map[string]any{"name": "fraud-detector", "description": "Card-not-present fraud scoring."})
	api.post("model-versions/create", map[string]any{"name": "fraud-detector", "source": "runs:/" + runIDs[0] + "/model", "run_id": runIDs[0]})
	api.post("model-versions/transition-stage", map[string]any{"name": "fraud-detector", "version": "1", "stage": "Staging", "archive_existing_versions": false})
	api.post("registered-models/create", map[string]any{"name": "ltv-regressor", "tags": []map[string]any{{"key": "status", "value": "experimental"}}})
	return expID, runIDs
}

// TestModelsPages clicks through the registry: the list, a model, a
// version, a stage transition and an alias set through the UI.
func TestModelsPages(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runIDs := seedModels(t, api)

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/models", "models")
	p.wantText("h1", "Registered models")
	if n := p.count("#models-table tbody tr"); n != 3 {
		t.Errorf("models table has %d rows, want 3", n)
	}
	p.wantText(`#models-table tr[data-name="churn-classifier"]`, "churn-classifier", "v3", "None", "v2", "Production", "v1", "Archived", "@champion", "team", "growth-ml")
	p.wantText(`#models-table tr[data-name="fraud-detector"]`, "Staging")
	p.wantText(`#models-table tr[data-name="ltv-regressor"]`, "status", "experimental")
	rmNoToasts(p)
	p.shot("models-desktop")

	// Search narrows the list (case-insensitive) and lands in the URL.
	p.run("search", chromedp.SendKeys(chromedp.CSS("#model-search"), "FRAUD"))
	// The search is debounced: on a slow machine it may fire for "FR"
	// first, which already shows the one row; the address follows the
	// last keystroke.
	rmWait(p, "search result", `document.querySelectorAll('#models-table tbody tr').length === 1 && document.querySelector('#models-table tbody tr').dataset.name === 'fraud-detector'`)
	p.wantLocationHas("q=FRAUD")
	rmFill(p, "#model-search", "nothing-matches-this")
	rmWait(p, "no result", `document.querySelector('.models-table .empty') !== null`)

	// Sorting by name descending.
	p.open("/models", "models")
	p.click(`#models-table th[aria-sort] button`)
	rmWait(p, "sorted desc", `document.querySelector('#models-table tbody tr')?.dataset.name === 'ltv-regressor'`)
	if s := rmJS[string](p, "aria-sort", `document.querySelector('#models-table th').getAttribute('aria-sort')`); s != "descending" {
		t.Errorf("aria-sort = %q", s)
	}

	// The model page.
	p.open("/models", "models")
	p.click(`a.model-link[href="/models/churn-classifier"]`)
	p.run("open model", waitPage("model"))
	p.wantText(".breadcrumbs", "Models", "churn-classifier")
	p.wantText(".note-text", "Predicts 30-day churn", "Owner: growth-ml.")
	if n := p.count("#versions-table tbody tr"); n != 3 {
		t.Errorf("versions table has %d rows, want 3", n)
	}
	p.wantText(`#versions-table tr[data-version="2"]`, "Version 2", "Production", "@champion", "ready", "xgb-tuned")
	href := rmJS[string](p, "run link", `document.querySelector('#versions-table tr[data-version="2"] td:nth-child(5) a').getAttribute('href')`)
	if want := fmt.Sprintf("/experiments/%s/runs/%s", expID, runIDs[1]); href != want {
		t.Errorf("source run link = %q, want %q", href, want)
	}
	p.wantText(".tags-table", "team", "growth-ml", "task")
	rmNoToasts(p)
	p.shot("model-desktop")

	// Set an alias through the UI.
	p.click("#set-alias")
	p.run("alias dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-alias")))
	rmFill(p, "#dlg-alias", "challenger")
	rmFill(p, "#dlg-version", "3")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "alias shown", `document.body.dataset.ready === 'true' && document.querySelector('#versions-table tr[data-version="3"]')?.textContent.includes('@challenger')`)
	got := api.call("GET", "/api/2.0/mlflow/registered-models/alias?name=churn-classifier&alias=challenger", nil)
	if v := got["model_version"].(map[string]any)["version"]; v != "3" {
		t.Errorf("alias challenger points at %v, want 3", v)
	}

	// Add a model tag through the UI.
	p.click("[aria-labelledby=tags-h] .btn-primary")
	p.run("tag dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-key")))
	rmFill(p, "#dlg-key", "owner")
	rmFill(p, "#dlg-value", "grace")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "tag shown", `document.body.dataset.ready === 'true' && document.querySelector('.tags-table tr[data-key="owner"]')?.textContent.includes('grace')`)

	// The version page; the source run link leads to the run page.
	p.click(`#versions-table a.version-link[href$="/versions/3"]`) // (the "Tag added" notification may still be up)
	p.run("open version", waitPage("model-version"))
	p.wantText("h1", "churn-classifier", "version 3")
	p.wantText(".kv", "runs:/"+runIDs[2]+"/model", "xgb-more-data", "None", "@challenger", "ready")
	p.wantText(".note-text", "Trained by run 3.")
	p.wantText(".tags-table", "validated", "no")

	// Transition stage through the UI, archiving the current Production version.
	p.click("#transition-stage")
	p.run("stage dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #stage-select")))
	rmFill(p, "#stage-select", "Production")
	p.click("#stage-archive")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "stage shown", `document.body.dataset.ready === 'true' && document.querySelector('.page-head .stage-badge')?.textContent === 'Production'`)
	for v, want := range map[string]string{"3": "Production", "2": "Archived"} {
		mv := api.call("GET", "/api/2.0/mlflow/model-versions/get?name=churn-classifier&version="+v, nil)["model_version"].(map[string]any)
		if mv["current_stage"] != want {
			t.Errorf("version %s stage = %v, want %s", v, mv["current_stage"], want)
		}
	}
	// Edit the version's description through the UI.
	p.click("[aria-labelledby=desc-h] .btn")
	p.run("description dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-text")))
	rmFill(p, "#dlg-text", "Retrained on June data.\n<i>AUC 0.91</i>")
	p.click("dialog.modal button[type=submit]")
	rmWait(p, "description shown", `document.body.dataset.ready === 'true' && document.querySelector('.note-text')?.textContent.includes('<i>AUC 0.91</i>')`)
	mv := api.call("GET", "/api/2.0/mlflow/model-versions/get?name=churn-classifier&version=3", nil)["model_version"].(map[string]any)
	if mv["description"] != "Retrained on June data.\n<i>AUC 0.91</i>" {
		t.Errorf("description = %q", mv["description"])
	}
	rmNoToasts(p)
	p.shot("model-version-desktop")

	p.click(`.kv a[href*="/runs/"]`)
	p.run("open run", waitPage("run"))
	p.wantText("h1", "xgb-more-data")

	// Create a model from the list; it opens on its (empty) page.
	p.open("/models", "models")
	p.click(".page-head .btn-primary")
	p.run("create dialog", chromedp.WaitVisible(chromedp.CSS("dialog.modal #dlg-name")))
	rmFill(p, "#dlg-name", "demand-forecast")
	rmFill(p, "#dlg-description", "Weekly demand per store.")
	p.run("create", chromedp.Click(chromedp.CSS("dialog.modal button[type=submit]")), waitPage("model"))
	p.wantText("h1", "demand-forecast")
	p.wantText("main", "No versions yet", "Weekly demand per store.")

	// Unknown model: an error, not a blank page.
	p.open("/models/"+url.PathEscape("no such model"), "model")
	p.wantText("main", "RESOURCE_DOES_NOT_EXIST")
	p.allowErrors()

	phone := newPage(t, srv.URL, phoneWidth, phoneHeight)
	phone.open("/models", "models")
	phone.wantText("main", "churn-classifier")
	rmNoToasts(phone)
	phone.shot("models-phone")
	phone.open("/models/churn-classifier", "model")
	rmNoToasts(phone)
	phone.shot("model-phone")
	phone.open("/models/churn-classifier/versions/3", "model-version")
	phone.shot("model-version-phone")
}

// TestRegistryListsPage pages the registered-models and prompts lists (25
// a page) with the shared page-token pager: Next, the range label, the last
// page, Previous, and a search that starts over at the first page.
func TestRegistryListsPage(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	for i := range 27 {
		api.post("registered-models/create", map[string]any{"name": fmt.Sprintf("model-%02d", i)})
		api.post("registered-models/create", map[string]any{"name": fmt.Sprintf("prompt-%02d", i),
			"tags": []map[string]any{{"key": ptIsPrompt, "value": "true"}}})
	}
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	for _, l := range []struct{ path, page, id, table, title, search string }{
		{"/models", "models", "models", "#models-table", "Models", "#model-search"},
		{"/prompts", "prompts", "prompts", "#prompts-table", "Prompts", "#prompt-search"},
	} {
		names := func() []string {
			return rmJS[[]string](p, "names", `[...document.querySelectorAll('`+l.table+` tbody tr')].map((r) => r.dataset.name)`)
		}
		info := `document.querySelector('.page-info').textContent`
		p.open(l.path, l.page)
		p.wantText(".page-info", l.title+" 1–25")
		if n := names(); len(n) != 25 || n[0] != l.id[:len(l.id)-1]+"-00" || n[24] != l.id[:len(l.id)-1]+"-24" {
			t.Errorf("%s page 1: %v", l.path, n)
		}
		if rmJS[bool](p, "prev", `document.querySelector('#`+l.id+`-prev').disabled`) != true {
			t.Errorf("%s: Previous is enabled on the first page", l.path)
		}
		p.click("#" + l.id + "-next")
		rmWait(p, l.path+" page 2", info+` === '`+l.title+` 26–27 of 27'`)
		if n := names(); len(n) != 2 || n[1] != l.id[:len(l.id)-1]+"-26" {
			t.Errorf("%s page 2: %v", l.path, n)
		}
		if !rmJS[bool](p, "next", `document.querySelector('#`+l.id+`-next').disabled`) {
			t.Errorf("%s: Next is enabled on the last page", l.path)
		}
		p.click("#" + l.id + "-prev")
		rmWait(p, l.path+" back to page 1", info+` === '`+l.title+` 1–25'`)
		p.click("#" + l.id + "-next")
		rmWait(p, l.path+" page 2 again", info+` === '`+l.title+` 26–27 of 27'`)

		// A search from page 2 starts over at the first page of its answer.
		rmFill(p, l.search, "-1")
		rmWait(p, l.path+" searched", info+` === '10 `+strings.ToLower(l.title)+`'`)
		if n := names(); len(n) != 10 || n[0] != l.id[:len(l.id)-1]+"-10" {
			t.Errorf("%s search: %v", l.path, n)
		}
		if !rmJS[bool](p, "prev", `document.querySelector('#`+l.id+`-prev').disabled`) {
			t.Errorf("%s: Previous is enabled after a new search", l.path)
		}
	}
}

// TestModelsSearchDropsStaleAnswer types one search, then another while
// the first one's answer is held back: the late answer of the first must
// not replace the rows of the second.
func TestModelsSearchDropsStaleAnswer(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	for _, name := range []string{"churn-classifier", "fraud-detector"} {
		api.post("registered-models/create", map[string]any{"name": name})
	}
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/models", "models")
	p.wantCount("#models-table tbody tr", 2)
	// Hold back every answer to a search for "chu" by 1.5 s.
	rmJS[bool](p, "delay chu searches", `(() => {
		const real = window.fetch;
		window.__chu = { sent: 0, done: 0 };
		window.fetch = async (url, init) => {
			const held = String(url).includes('registered-models/search') && decodeURIComponent(String(url)).includes('chu');
			if (!held) return real(url, init);
			window.__chu.sent++;
			const res = await real(url, init);
			await new Promise((r) => setTimeout(r, 1500));
			window.__chu.done++;
			return res;
		};
		return true;
	})()`)
	rmFill(p, "#model-search", "chu")
	rmWait(p, "chu search sent", `window.__chu.sent > 0`)
	rmFill(p, "#model-search", "fraud")
	rmWait(p, "fraud rows", `document.querySelectorAll('#models-table tbody tr').length === 1 && document.querySelector('#models-table tbody tr').dataset.name === 'fraud-detector'`)
	rmWait(p, "chu answer arrived", `window.__chu.done === window.__chu.sent`)
	// Give a stale answer time to be drawn, then check it was not.
	p.run("let the page settle", chromedp.Sleep(300*time.Millisecond))
	if got := rmJS[[]string](p, "rows", `[...document.querySelectorAll('#models-table tbody tr')].map((r) => r.dataset.name)`); len(got) != 1 || got[0] != "fraud-detector" {
		t.Errorf("after the late answer for %q the table shows %v, want [fraud-detector]", "chu", got)
	}
}
