package browser

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// Tags MLflow 3's prompt registry writes (mlflow/prompt/constants.py).
const (
	ptIsPrompt = "mlflow.prompt.is_prompt"
	ptText     = "mlflow.prompt.text"
	ptType     = "_mlflow_prompt_type"
	ptExpIDs   = "_mlflow_experiment_ids"
	ptLinked   = "mlflow.linkedPrompts"
)

// seedPrompts registers, through the REST API as MLflow's client does, a
// text prompt with three versions (an alias, tags, a run and a trace linked
// to version 2), a chat prompt, and a plain registered model that must not
// be listed. It returns the experiment, run and trace ids.
func seedPrompts(t *testing.T, api *rest) (expID, runID, traceID string) {
	t.Helper()
	expID = api.createExperiment("prompt-eval")
	api.post("registered-models/create", map[string]any{
		"name":        "qa-prompt",
		"description": "Answers support questions.",
		"tags": []map[string]any{{"key": ptIsPrompt, "value": "true"}, {"key": "team", "value": "support"},
			{"key": ptExpIDs, "value": "," + expID + ","}},
	})
	texts := []string{
		"You are a helpful assistant.\nAnswer the question: {{question}}",
		"You are a helpful assistant.\nUse the context: {{context}}\nAnswer the question: {{question}}",
		"You are a concise assistant.\nUse the context: {{context}}\nAnswer the question: {{question}}\nReply in {{ language }}.",
	}
	for i, text := range texts {
		api.post("model-versions/create", map[string]any{
			"name": "qa-prompt", "source": "dummy-source", "description": []string{"first draft", "add context", "be concise"}[i],
			"tags": []map[string]any{{"key": ptIsPrompt, "value": "true"}, {"key": ptText, "value": text}, {"key": ptType, "value": "text"},
				{"key": "reviewed", "value": map[bool]string{true: "yes", false: "no"}[i == 1]}},
		})
	}
	api.post("registered-models/alias", map[string]any{"name": "qa-prompt", "alias": "production", "version": "2"})

	chat := `[{"role": "system", "content": "You translate to {{lang}}."}, {"role": "user", "content": "{{text}}"}]`
	api.post("registered-models/create", map[string]any{"name": "translator", "tags": []map[string]any{{"key": ptIsPrompt, "value": "true"}}})
	api.post("model-versions/create", map[string]any{"name": "translator", "source": "dummy-source",
		"tags": []map[string]any{{"key": ptIsPrompt, "value": "true"}, {"key": ptText, "value": chat}, {"key": ptType, "value": "chat"}}})
	api.post("registered-models/create", map[string]any{"name": "plain-model"})

	// A run and a trace that used version 2, as link_prompt_version_to_run
	// and link_prompt_versions_to_trace tag them.
	linked := `[{"name": "qa-prompt", "version": "2"}]`
	runID = api.createRun(expID, "eval-v2", time.Now().Add(-time.Hour).UnixMilli())
	api.post("runs/set-tag", map[string]any{"run_id": runID, "key": ptLinked, "value": linked})
	traceID = trTraceID(77)
	seedTrace(t, api, expID, trTrace{ID: traceID, Name: "qa", StartMs: time.Now().Add(-time.Hour).UnixMilli(), DurMs: 1200,
		Request: `{"question": "hi"}`, Response: `"hello"`, Tags: map[string]string{ptLinked: linked}})
	return expID, runID, traceID
}

// TestPromptsPages lists the prompts, opens one, switches versions and
// compares two of them.
func TestPromptsPages(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runID, traceID := seedPrompts(t, api)

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments", "experiments")
	p.click(`nav a[data-nav="prompts"]`)
	p.run("prompts list", waitPage("prompts"))
	p.wantText("h1", "Prompts")
	if n := p.count("#prompts-table tbody tr"); n != 2 {
		t.Errorf("prompts table has %d rows, want 2 (the plain model is not a prompt)", n)
	}
	p.wantText(`#prompts-table tr[data-name="qa-prompt"]`, "qa-prompt", "Answers support questions.", "v3", "@production", "v2", "team", "support")
	if strings.Contains(p.text("#prompts-table"), ptExpIDs) {
		t.Errorf("the list shows MLflow's internal prompt tags")
	}
	p.wantText(`#prompts-table tr[data-name="translator"]`, "v1")
	p.shot("prompts-desktop")

	// The name filter narrows the list.
	p.run("search", chromedp.SendKeys(chromedp.CSS("#prompt-search"), "TRANS"))
	rmWait(p, "search result", `document.querySelectorAll('#prompts-table tbody tr').length === 1 && document.querySelector('#prompts-table tbody tr').dataset.name === 'translator'`)

	// A prompt opens at its latest version.
	p.open("/prompts", "prompts")
	p.click(`#prompts-table tr[data-name="qa-prompt"] a.prompt-link`)
	p.run("prompt page", waitPage("prompt"))
	if n := p.count("#prompt-versions tbody tr"); n != 3 {
		t.Errorf("versions table has %d rows, want 3", n)
	}
	p.wantText(`#prompt-versions tr[data-version="3"]`, "v3", "be concise", "reviewed")
	p.wantText(`#prompt-versions tr[data-version="2"]`, "add context", "@production")
	p.wantText("#template-panel", "Template · v3", "You are a concise assistant.", "Reply in {{ language }}.")
	vars := rmJS[[]string](p, "variables", `[...document.querySelectorAll('#prompt-vars code')].map((e) => e.textContent)`)
	if strings.Join(vars, ",") != "context,question,language" {
		t.Errorf("variables = %v, want context, question, language", vars)
	}
	if n := p.count("#prompt-template .prompt-var"); n != 3 {
		t.Errorf("%d highlighted variables in the template, want 3", n)
	}
	p.wantText("#prompt-aliases", "@production", "v2")
	p.wantText("#prompt-tags", "team", "support")

	// The diff compares the previous version with the shown one.
	p.wantText("#diff-summary", "+2", "−1", "v2 → v3")
	wantDiff(p, []string{"You are a concise assistant.", "Reply in {{ language }}."}, []string{"You are a helpful assistant."})
	// Choosing v1 → v3 recomputes it and lands in the address.
	rmJS[bool](p, "pick v1", `(() => { const s = document.querySelector('#diff-from'); s.value = '1'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`)
	rmWait(p, "v1 diff", `document.querySelector('#diff-summary').textContent.includes('v1 → v3')`)
	wantDiff(p, []string{"You are a concise assistant.", "Use the context: {{context}}", "Reply in {{ language }}."}, []string{"You are a helpful assistant."})
	if loc := p.location(); !strings.Contains(loc, "from=1") || !strings.Contains(loc, "to=3") {
		t.Errorf("the compared versions are not in the address: %s", loc)
	}
	p.shot("prompt-desktop")

	// Switching to version 2 shows its template, and the run and trace linked to it.
	p.click(`#prompt-versions tr[data-version="2"] a.version-link`)
	p.run("version 2", waitPage("prompt"))
	rmWait(p, "v2 links", `document.querySelector('#linked-runs') !== null`)
	p.wantText("#template-panel", "Template · v2", "Use the context: {{context}}")
	if strings.Contains(p.text("#template-panel"), "concise") {
		t.Errorf("version 2's template shows version 3's text")
	}
	p.wantText("#diff-summary", "+1", "−0", "v1 → v2")
	if n := p.count(`#linked-runs a[href="/experiments/` + expID + `/runs/` + runID + `"]`); n != 1 {
		t.Errorf("the run linked to v2 is linked %d times", n)
	}
	if n := p.count(`#linked-traces a[href*="` + traceID + `"]`); n != 1 {
		t.Errorf("the trace linked to v2 is linked %d times", n)
	}
	// Version 1 has no links.
	p.open("/prompts/qa-prompt?version=1", "prompt")
	rmWait(p, "v1 links", `document.querySelector('#prompt-links').textContent.includes('No run or trace')`)

	// A chat prompt renders as messages, with its variables.
	p.open("/prompts/translator", "prompt")
	if n := p.count("#prompt-template .chat-msg"); n != 2 {
		t.Errorf("chat template has %d messages, want 2", n)
	}
	p.wantText("#prompt-template", "SYSTEM", "You translate to {{lang}}.", "USER", "{{text}}")
	if p.count("#diff-panel") != 0 {
		t.Errorf("a prompt with one version shows a diff")
	}
	// A registered model is not shown as a prompt.
	p.open("/prompts/plain-model", "prompt")
	p.wantText("main", "not a prompt", "Open the model")
	// MLflow's own prompt links land here.
	p.open("/#/prompts/qa-prompt", "prompt")
	if got := p.location(); got != "/prompts/qa-prompt" {
		t.Errorf("MLflow's prompt link landed on %q", got)
	}

	// Phone width.
	m := newPage(t, srv.URL, phoneWidth, phoneHeight)
	m.open("/prompts", "prompts")
	m.shot("prompts-phone")
	m.open("/prompts/qa-prompt?from=1&to=3", "prompt")
	m.wantText("#diff-summary", "v1 → v3")
	if w := rmJS[int](m, "page width", `document.documentElement.scrollWidth`); w > phoneWidth+1 {
		t.Errorf("prompt page is %d px wide at phone width %d", w, phoneWidth)
	}
	m.shot("prompt-phone")
}

// wantDiff checks the diff's added and removed lines.
func wantDiff(p *page, added, removed []string) {
	p.t.Helper()
	got := func(cls string) []string {
		return rmJS[[]string](p, cls, `[...document.querySelectorAll('#prompt-diff .`+cls+` .pdiff-text')].map((e) => e.textContent)`)
	}
	if a := got("pdiff-add"); strings.Join(a, "\n") != strings.Join(added, "\n") {
		p.t.Errorf("added lines = %q, want %q", a, added)
	}
	if r := got("pdiff-del"); strings.Join(r, "\n") != strings.Join(removed, "\n") {
		p.t.Errorf("removed lines = %q, want %q", r, removed)
	}
}
