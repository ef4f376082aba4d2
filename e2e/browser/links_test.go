package browser

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestMLflowHashLinks opens the addresses MLflow's own UI uses (and its
// clients print: "View run … at: http://host/#/experiments/0/runs/<id>")
// and checks each lands on this UI's page for the same thing, with the
// address rewritten, or on a page that says there is none.
func TestMLflowHashLinks(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	exp := api.createExperiment("hash-links")
	start := time.Now().Add(-time.Hour).UnixMilli()
	run1 := api.createRun(exp, "run-one", start)
	run2 := api.createRun(exp, "run-two", start+1000)
	logMetrics(api, run1, []map[string]any{chartPoint("loss", 0.5, start, 0), chartPoint("loss", 0.4, start+1, 1)})
	logMetrics(api, run2, []map[string]any{chartPoint("loss", 0.6, start, 0)})
	api.uploadArtifact(exp, run1, "plots/roc.txt", []byte("roc"))
	api.post("registered-models/create", map[string]any{"name": "churn model"})
	api.post("model-versions/create", map[string]any{"name": "churn model", "source": "runs:/" + run1 + "/model", "run_id": run1})

	runPath := "/experiments/" + exp + "/runs/" + run1
	q := url.QueryEscape
	cases := []struct {
		hash, page, want string
	}{
		{"#/", "experiments", "/experiments"},
		{"#/experiments/" + exp, "runs", "/experiments/" + exp},
		{"#/experiments/" + exp + "/runs", "runs", "/experiments/" + exp},
		{"#/experiments/" + exp + "/s?searchFilter=" + q("metrics.loss < 1"), "runs", "/experiments/" + exp + "?filter=metrics.loss+%3C+1"},
		{"#/experiments/" + exp + "/runs/" + run1, "run", runPath},
		{"#/experiments/" + exp + "/runs/" + run1 + "/overview", "run", runPath},
		{"#/experiments/" + exp + "/runs/" + run1 + "/model-metrics", "run", runPath + "?tab=charts"},
		{"#/experiments/" + exp + "/runs/" + run1 + "/artifacts/plots/roc.txt", "run", runPath + "?tab=artifacts&artifact=plots%2Froc.txt"},
		{"#/experiments/" + exp + "/runs/" + run1 + "/artifactPath/plots/roc.txt", "run", runPath + "?tab=artifacts&artifact=plots%2Froc.txt"},
		// MLflow's direct run route names no experiment: it is looked up.
		{"#/runs/" + run1, "run", runPath},
		{"#/experiments/0/runs/" + run1, "run", runPath},
		// The older metric page: the key in the path, runs as JSON.
		{"#/metric/loss?runs=" + q(`["`+run1+`"]`) + "&experiment=" + exp, "run", runPath + "?tab=charts&metric=loss"},
		// The newer one: metric and plot_metric_keys as JSON.
		{"#/metric?runs=" + q(`["`+run1+`","`+run2+`"]`) + "&metric=" + q(`"loss"`) + "&experiments=" + q(`["`+exp+`"]`) +
			"&plot_metric_keys=" + q(`["loss"]`) + "&x_axis=step", "compare", "/compare?runs=" + q(run1+","+run2) + "&keys=loss"},
		{"#/compare-runs?runs=" + q(`["`+run1+`","`+run2+`"]`) + "&experiments=" + q(`["`+exp+`"]`), "compare", "/compare?runs=" + q(run1+","+run2)},
		{"#/compare-experiments/s?experiments=" + q(`["0","`+exp+`"]`), "runs", "/experiments/0%2C" + exp},
		{"#/compare-model-versions?name=" + q(`"churn%20model"`) + "&runs=" + q(`{"`+run1+`":"1","`+run2+`":"2"}`), "compare", "/compare?runs=" + q(run1+","+run2)},
		{"#/models", "models", "/models"},
		{"#/models/churn%20model", "model", "/models/churn%20model"},
		{"#/models/churn%20model/versions/1", "model-version", "/models/churn%20model/versions/1"},
		{"#/models/churn%20model/serving", "model", "/models/churn%20model"},
	}
	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	for _, c := range cases {
		p.open("/"+c.hash, c.page)
		if got := p.location(); got != c.want {
			t.Errorf("%s: landed on %q, want %q", c.hash, got, c.want)
		}
	}
	// The landing pages show the data the link named.
	p.open("/#/experiments/"+exp+"/runs/"+run1, "run")
	p.wantText("main", "run-one")
	p.shot("mlflow-link-run")
	p.open("/#/experiments/"+exp+"/runs/"+run1+"/artifacts/plots/roc.txt", "run")
	p.run("artifact selected", chromedp.WaitVisible(chromedp.CSS(`.artifact-name`)))
	p.wantText(".artifact-name", "roc.txt")
	p.open("/#/models/churn%20model/versions/1", "model-version")
	p.wantText("main", "churn model", "Version 1")

	// Traces and logged models have pages of their own (the traces and
	// models tests follow every form of those links).
	p.open("/#/experiments/"+exp+"/traces", "traces")
	if got := p.location(); got != "/experiments/"+exp+"/traces" {
		t.Errorf("traces link landed on %q", got)
	}
	p.open("/#/experiments/"+exp+"/models", "logged-models")
	if got := p.location(); got != "/experiments/"+exp+"/models" {
		t.Errorf("models link landed on %q", got)
	}
	// The experiment's prompts tab lands on the prompt registry's pages.
	p.open("/#/experiments/"+exp+"/prompts", "prompts")
	if got := p.location(); got != "/prompts" {
		t.Errorf("prompts tab link landed on %q", got)
	}
	p.open("/#/prompts/my-prompt", "prompt")
	if got := p.location(); got != "/prompts/my-prompt" {
		t.Errorf("prompt link landed on %q", got)
	}
	// Tabs without a page here: a page that says so, linking the experiment.
	p.open("/#/experiments/"+exp+"/datasets", "mlflow-link-unavailable")
	p.wantText("main", "“datasets” tab is not shown here", "Open the experiment")
	if n := p.count(`#mlflow-link-notice a[href="/experiments/` + exp + `"]`); n != 1 {
		t.Errorf("datasets notice links the experiment %d times", n)
	}

	// Unknown routes say so instead of showing the experiments list.
	for _, hash := range []string{"#/no-such-page", "#/experiments-typo/1", "#/runs", "#/metric/loss", "#/compare-runs"} {
		p.open("/"+hash, "mlflow-link-unknown")
		p.wantText("main", "Link not recognized", hash)
	}
	p.shot("mlflow-link-unknown")

	// A hash that is no MLflow route (the skip link's #main) is not touched.
	p.open("/experiments#main", "experiments")
}
