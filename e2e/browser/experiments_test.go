package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// erPoll waits until the JavaScript expression js is true in the page.
func erPoll(p *page, what, js string) {
	p.t.Helper()
	value(p, "wait for "+what, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second)))
}

// erEval evaluates a JavaScript expression and returns its value.
func erEval[T any](p *page, what, js string) T {
	p.t.Helper()
	return value(p, what, chromedp.Evaluate[T](js))
}

// erAPIError sends a request that must fail and returns the server's
// error message, to compare with what the UI shows.
func erAPIError(t *testing.T, srv *caddytest.Server, path string, body any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := srv.Client().Post(srv.URL+"/api/2.0/mlflow/"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("POST %s %s succeeded; want an error", path, b)
	}
	var e struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Message == "" {
		t.Fatalf("POST %s: no MLflow error in %s", path, data)
	}
	return e.Message
}

// erSetSelect picks value in the <select> sel and fires its change event.
func erSetSelect(p *page, sel, v string) {
	p.t.Helper()
	value(p, "select "+v+" in "+sel, chromedp.Evaluate[bool](fmt.Sprintf(
		`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, sel, v)))
}

// erNoHorizontalScroll fails when the document is wider than the viewport
// (the tables must scroll inside their own box instead).
func erNoHorizontalScroll(p *page) {
	p.t.Helper()
	if w := erEval[int](p, "page overflow", `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 1 {
		p.t.Errorf("the page scrolls sideways by %dpx", w)
	}
}

func (r *rest) experimentByName(name string) map[string]any {
	r.t.Helper()
	out := r.call(http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+strings.ReplaceAll(name, " ", "%20"), nil)
	return out["experiment"].(map[string]any)
}

// TestExperimentsPage clicks through the experiments list: listing,
// filtering (and a bad filter), the lifecycle view, create, rename, tags,
// delete and restore, and "compare runs of selected".
func TestExperimentsPage(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	tagged := func(name string, tags ...string) string {
		var tl []map[string]string
		for i := 0; i+1 < len(tags); i += 2 {
			tl = append(tl, map[string]string{"key": tags[i], "value": tags[i+1]})
		}
		return api.post("experiments/create", map[string]any{"name": name, "tags": tl})["experiment_id"].(string)
	}
	vision := tagged("vision-resnet", "team", "vision", "priority", "high")
	nlp := tagged("nlp-bert-finetune", "team", "nlp")
	tagged("churn-forecast", "team", "growth", "owner", "dana")
	old := api.createExperiment("legacy-baseline")
	api.post("experiments/delete", map[string]any{"experiment_id": old})

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments", "experiments")
	p.wantText("table.exp-table", "vision-resnet", "nlp-bert-finetune", "churn-forecast", "Default", "team", "vision", "priority")
	if strings.Contains(p.text("table.exp-table"), "legacy-baseline") {
		t.Error("the active view lists the deleted experiment")
	}
	if n := p.count("table.exp-table tbody tr"); n != 4 {
		t.Errorf("%d rows, want 4 (Default and three experiments)", n)
	}
	if href := erEval[string](p, "name link", `document.querySelector('tr[data-id="`+vision+`"] td.col-name a').getAttribute('href')`); href != "/experiments/"+vision {
		t.Errorf("the name links to %q", href)
	}
	erNoHorizontalScroll(p)
	p.shot("experiments-desktop")

	// The filter narrows the list on the server and lands in the URL.
	p.run("filter by tag",
		chromedp.SetValue(chromedp.CSS("#exp-filter"), "tags.team = 'nlp'"),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")),
		waitPage("experiments"))
	p.wantCount("table.exp-table tbody tr", 1) // tags.team = 'nlp'
	p.wantText("table.exp-table", "nlp-bert-finetune")
	p.wantLocationHas("filter=")
	p.run("filter by name", chromedp.SetValue(chromedp.CSS("#exp-filter"), "name LIKE '%res%'"),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("experiments"))
	p.wantText("table.exp-table", "vision-resnet")
	p.wantCount("table.exp-table tbody tr", 1) // name LIKE '%res%'
	// Back returns to the previous filter (state lives in the URL). Back
	// is a same-document history step: NavigateBack returns before the
	// page's popstate render, so the page is still the one Back left.
	p.run("back", chromedp.NavigateBack())
	wantJS(p, "the filter box after Back", `(document.body.dataset.ready === 'true' && document.querySelector('#exp-filter')?.value) || ''`, "tags.team = 'nlp'")
	p.wantCount("table.exp-table tbody tr", 1) // tags.team = 'nlp' again

	// A bad filter shows the server's message next to the box.
	bad := "name LIKE"
	want := erAPIError(t, srv, "experiments/search", map[string]any{"max_results": 10, "filter": bad})
	p.run("bad filter", chromedp.SetValue(chromedp.CSS("#exp-filter"), bad),
		chromedp.Click(chromedp.CSS(".filter-form button[type=submit]")), waitPage("experiments"))
	p.wantText("#exp-filter-error", want)
	if inv := erEval[string](p, "aria-invalid", `document.querySelector('#exp-filter').getAttribute('aria-invalid') || ''`); inv != "true" {
		t.Error("the filter box is not marked invalid")
	}
	p.allowErrors() // Chromium logs the 400

	// Create through the dialog.
	p.open("/experiments", "experiments")
	p.click(".page-head .actions .btn-primary")
	p.run("fill the create dialog",
		chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #dlg-name")),
		chromedp.SendKeys(chromedp.CSS("#dlg-name"), "speech-whisper"),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "the new experiment", `document.querySelector('table.exp-table').textContent.includes('speech-whisper')`)
	created := api.experimentByName("speech-whisper")
	id := created["experiment_id"].(string)
	row := fmt.Sprintf(`tr[data-id=%q]`, id)

	// Rename.
	p.click(row + ` button[aria-label^="Rename"]`)
	p.run("rename dialog",
		chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #dlg-name")),
		chromedp.SetValue(chromedp.CSS("#dlg-name"), "speech-whisper-v2"),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "the new name", fmt.Sprintf(`(document.querySelector('%s td.col-name') || {}).textContent === 'speech-whisper-v2'`, row))
	if got := api.experimentByName("speech-whisper-v2")["experiment_id"]; got != id {
		t.Errorf("renamed experiment has id %v, want %s", got, id)
	}

	// Add a tag.
	p.click(row + " button.add-tag")
	p.run("tag dialog",
		chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] #dlg-key")),
		chromedp.SendKeys(chromedp.CSS("#dlg-key"), "owner"),
		chromedp.SendKeys(chromedp.CSS("#dlg-value"), "asr-team"),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "the tag chip", fmt.Sprintf(`document.querySelector('%s .tags-cell').textContent.includes('owner: asr-team')`, row))
	tags := api.experimentByName("speech-whisper-v2")["tags"]
	if b, _ := json.Marshal(tags); !strings.Contains(string(b), `"asr-team"`) {
		t.Errorf("the server has tags %s", b)
	}
	// And remove another one with its chip's × button.
	p.click(fmt.Sprintf(`tr[data-id=%q] button[aria-label^="Remove tag priority"]`, vision))
	erPoll(p, "the removed tag", fmt.Sprintf(`!document.querySelector('tr[data-id=%q] .tags-cell').textContent.includes('priority')`, vision))

	// Delete (with confirmation), then find it in the deleted view and restore it.
	p.click(row + ` button[aria-label^="Delete"]`)
	p.run("confirm delete",
		chromedp.WaitVisible(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.Click(chromedp.CSS("dialog.modal[open] button[type=submit]")),
		chromedp.WaitNotPresent(chromedp.CSS("dialog.modal")))
	erPoll(p, "the row to go", fmt.Sprintf(`!document.querySelector('%s')`, row))
	if st := api.experimentByName("speech-whisper-v2")["lifecycle_stage"]; st != "deleted" {
		t.Errorf("after Delete the experiment is %v", st)
	}
	erSetSelect(p, "#exp-view", "deleted")
	p.run("deleted view", waitPage("experiments"))
	p.wantText("table.exp-table", "speech-whisper-v2", "legacy-baseline")
	if strings.Contains(p.text("table.exp-table"), "vision-resnet") {
		t.Error("the deleted view lists an active experiment")
	}
	p.wantLocationHas("view=deleted")
	p.click(row + ` button[aria-label^="Restore"]`)
	erPoll(p, "the restored row to leave the deleted view", fmt.Sprintf(`!document.querySelector('%s')`, row))
	if st := api.experimentByName("speech-whisper-v2")["lifecycle_stage"]; st != "active" {
		t.Errorf("after Restore the experiment is %v", st)
	}
	erSetSelect(p, "#exp-view", "all")
	p.run("all view", waitPage("experiments"))
	p.wantText("table.exp-table", "speech-whisper-v2", "legacy-baseline", "vision-resnet")

	// Select two experiments and compare their runs.
	p.open("/experiments", "experiments")
	// The select-all box: all rows, then none, then some (indeterminate).
	rowCount := p.count("table.exp-table tbody tr")
	selectAll := "table.exp-table input.select-all"
	p.click(selectAll)
	p.wantText(".page-head .actions", fmt.Sprintf("Compare runs (%d)", rowCount))
	if n := p.count("table.exp-table tbody tr.selected"); n != rowCount {
		t.Errorf("select all marks %d of %d rows", n, rowCount)
	}
	p.click(selectAll)
	erPoll(p, "none selected", `document.querySelectorAll('table.exp-table input.row-select:checked').length === 0`)
	p.click(fmt.Sprintf(`tr[data-id=%q] input.row-select`, vision))
	p.click(fmt.Sprintf(`tr[data-id=%q] input.row-select`, nlp))
	p.wantText(".page-head .actions", "Compare runs (2)")
	if s := erEval[string](p, "select-all state", `(() => { const a = document.querySelector('`+selectAll+`'); return a.checked + '/' + a.indeterminate; })()`); s != "false/true" {
		t.Errorf("with 2 of %d rows selected the select-all box is checked/indeterminate %s, want false/true", rowCount, s)
	}
	p.click(".page-head .actions button:first-child")
	p.run("the runs page", waitPage("runs"))
	p.wantLocation("compare of the two experiments", func(loc string) bool {
		return loc == "/experiments/"+vision+","+nlp || loc == "/experiments/"+nlp+","+vision
	})

	// Phone width: the toolbar wraps, the table scrolls in its box.
	ph := newPage(t, srv.URL, phoneWidth, phoneHeight)
	ph.open("/experiments", "experiments")
	ph.wantText("table.exp-table", "vision-resnet")
	erNoHorizontalScroll(ph)
	ph.shot("experiments-phone")

	// Paging: more experiments than one page holds (100).
	for i := 0; i < 100; i++ {
		api.createExperiment(fmt.Sprintf("bulk-%03d", i))
	}
	p.open("/experiments?order_by="+url.QueryEscape("name ASC"), "experiments")
	p.wantCount("table.exp-table tbody tr", 100) // page 1
	p.wantText(".page-head", "1–100")
	if s := erEval[string](p, "aria-sort", `document.querySelector('.exp-table th[aria-sort]').textContent + '=' + document.querySelector('.exp-table th[aria-sort]').getAttribute('aria-sort')`); !strings.HasPrefix(s, "Name") || !strings.HasSuffix(s, "=ascending") {
		t.Errorf("sorted header %q", s)
	}
	page1First := erEval[string](p, "first row", `document.querySelector('table.exp-table tbody tr td.col-name').textContent`)
	// The shared page-token pager: its range label, Previous off on page 1.
	p.wantText("#main .page-info", "Experiments 1–100")
	if !erEval[bool](p, "prev on page 1", `document.querySelector('#experiments-prev').disabled`) {
		t.Error("Previous is enabled on the first page")
	}
	p.click("#experiments-next")
	erPoll(p, "page 2", `document.querySelector('.page-head').textContent.includes('101–')`)
	// 105 active experiments: Default, bulk-000..099, churn, nlp, speech, vision.
	p.wantCount("table.exp-table tbody tr", 5) // page 2
	p.wantText("table.exp-table", "vision-resnet")
	p.wantText("#main .page-info", "Experiments 101–105 of 105")
	if !erEval[bool](p, "next on the last page", `document.querySelector('#experiments-next').disabled`) {
		t.Error("Next is enabled on the last page")
	}
	// The page keeps its filter, view and order while paging.
	p.wantLocationHas("order_by=")
	// Previous goes back to the first page of the same order.
	p.click("#experiments-prev")
	erPoll(p, "page 1 again", `document.querySelector('.page-head').textContent.includes('1–100')`)
	p.wantCount("table.exp-table tbody tr", 100)
	if first := erEval[string](p, "first row", `document.querySelector('table.exp-table tbody tr td.col-name').textContent`); first != page1First {
		t.Errorf("page 1 again starts with %q, first time with %q", first, page1First)
	}

	// Deleting the last row of the last page steps back to the page before
	// rather than keep showing the deleted row.
	p.click("#experiments-next")
	erPoll(p, "page 2 again", `document.querySelectorAll('table.exp-table tbody tr').length === 5`)
	ids := erEval[[]string](p, "page 2 ids", `[...document.querySelectorAll('table.exp-table tbody tr')].map((r) => r.dataset.id)`)
	for _, id := range ids[:len(ids)-1] {
		api.post("experiments/delete", map[string]any{"experiment_id": id})
	}
	lastRow := fmt.Sprintf(`tr[data-id=%q]`, ids[len(ids)-1])
	p.click(lastRow + ` button[aria-label^="Delete"]`)
	p.dialogSubmit()
	erPoll(p, "back on page 1", `document.querySelectorAll('table.exp-table tbody tr').length === 100 && document.querySelector('#experiments-prev').disabled`)
	if erEval[bool](p, "deleted row", `!!document.querySelector('`+lastRow+`')`) {
		t.Error("the deleted experiment is still listed")
	}
}
