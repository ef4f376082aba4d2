package browser

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// seedLoggedModels creates two MLflow 3 logged models in a new experiment
// the way the client does (create, log params and metrics with model_id,
// upload artifacts under the model's artifact location, finalize), and
// registers the first one as a model version. It returns the experiment,
// the run and the two model ids.
func seedLoggedModels(t *testing.T, r *rest) (expID, runID, agentID, baseID string) {
	t.Helper()
	expID = r.createExperiment("genai-models")
	start := time.Now().Add(-time.Hour).UnixMilli()
	runID = r.createRun(expID, "train-agent", start)
	create := func(name, typ string, params map[string]string) string {
		ps := []map[string]any{}
		for k, v := range params {
			ps = append(ps, map[string]any{"key": k, "value": v})
		}
		out := r.post("logged-models", map[string]any{"experiment_id": expID, "name": name, "model_type": typ, "source_run_id": runID,
			"params": ps, "tags": []map[string]any{{"key": "team", "value": "search"}}})
		return out["model"].(map[string]any)["info"].(map[string]any)["model_id"].(string)
	}
	agentID = create("rag-agent", "agent", map[string]string{"temperature": "0.1", "retriever_k": "5"})
	baseID = create("baseline", "", map[string]string{"temperature": "0.7"})
	r.post("runs/log-batch", map[string]any{"run_id": runID, "metrics": []map[string]any{
		{"key": "accuracy", "value": 0.91, "timestamp": start + 10, "step": 0, "model_id": agentID, "dataset_name": "eval"},
		{"key": "accuracy", "value": 0.94, "timestamp": start + 20, "step": 1, "model_id": agentID, "dataset_name": "eval"},
		{"key": "latency_ms", "value": 812, "timestamp": start + 20, "step": 1, "model_id": agentID},
		{"key": "accuracy", "value": 0.72, "timestamp": start + 20, "step": 0, "model_id": baseID, "dataset_name": "eval"},
	}})
	for path, body := range map[string]string{
		"MLmodel":          "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n",
		"requirements.txt": "mlflow==3.1.0\nopenai\n",
		"code/agent.py":    "def predict(question):\n    return 'answer'\n",
	} {
		r.put(fmt.Sprintf("/api/2.0/mlflow-artifacts/artifacts/%s/models/%s/artifacts/%s", expID, agentID, path), []byte(body))
	}
	r.call(http.MethodPatch, "/api/2.0/mlflow/logged-models/"+agentID, map[string]any{"model_id": agentID, "status": "LOGGED_MODEL_READY"})
	r.post("runs/outputs", map[string]any{"run_id": runID, "models": []map[string]any{{"model_id": agentID, "step": 0}}})
	r.post("registered-models/create", map[string]any{"name": "support-agent"})
	r.post("model-versions/create", map[string]any{"name": "support-agent", "source": "models:/" + agentID, "model_id": agentID, "run_id": runID})
	return expID, runID, agentID, baseID
}

// TestLoggedModelsPages drives an experiment's Models tab (name, status,
// metrics, params, source run, registered versions; filter and sort) and a
// logged model's page (details, metrics, params, tags, versions, and its
// artifacts in the artifact browser), at desktop and phone width, and
// MLflow's logged-model links.
func TestLoggedModelsPages(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	expID, runID, agentID, baseID := seedLoggedModels(t, api)
	tab := "/experiments/" + expID + "/models"

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/experiments/"+expID, "runs")
	p.click("#exp-tab-models")
	p.run("models tab", waitPage("logged-models"))
	if got := p.location(); got != tab {
		t.Errorf("Models tab address %q", got)
	}
	rows := value(p, "rows", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#logged-models-table tbody tr')].map((r) => r.dataset.modelId)`))
	if len(rows) != 2 || rows[0] != baseID || rows[1] != agentID {
		t.Fatalf("rows %v; want newest first (baseline, rag-agent)", rows)
	}
	agentRow := fmt.Sprintf(`#logged-models-table tr[data-model-id=%q]`, agentID)
	p.wantText(agentRow, "rag-agent", "agent", "Ready", runID[:8], "accuracy (eval)", "0.94", "latency_ms", "812",
		"retriever_k", "temperature", "support-agent", "v1")
	p.wantText(fmt.Sprintf(`#logged-models-table tr[data-model-id=%q]`, baseID), "baseline", "Pending", "0.72")
	if n := p.count(agentRow + ` a[href="/models/support-agent/versions/1"]`); n != 1 {
		t.Errorf("registered version linked %d times", n)
	}
	p.shot("logged-models-tab")

	// Filter and sort on the server.
	p.open(tab+"?filter="+urlQuery("metrics.accuracy > 0.9"), "logged-models")
	if n := p.count("#logged-models-table tbody tr"); n != 1 {
		t.Errorf("metrics.accuracy > 0.9 shows %d models", n)
	}
	p.open(tab, "logged-models")
	p.click(`#logged-models-table th:first-child button.sort`)
	p.run("sorted by name", waitPage("logged-models"))
	first := value(p, "first", chromedp.Evaluate[string](`document.querySelector('#logged-models-table tbody tr').dataset.modelId`))
	if first != baseID {
		t.Errorf("name ASC starts with %s, want baseline", first)
	}

	// The model's page.
	p.click(agentRow + " a.lm-link")
	p.run("model page", waitPage("logged-model"))
	if got := p.location(); got != tab+"/"+agentID {
		t.Errorf("model page address %q", got)
	}
	p.wantText("h1", "rag-agent")
	p.wantText("main", agentID, "Ready", "agent")
	p.wantText("#lm-metrics", "accuracy (eval)", "0.94", "latency_ms", "812")
	p.wantText("#lm-params", "retriever_k", "5", "temperature", "0.1")
	p.wantText("#lm-tags", "team", "search")
	p.wantText("#lm-versions", "support-agent", "v1")
	if n := p.count(`#lm-source-run[href="/experiments/` + expID + `/runs/` + runID + `"]`); n != 1 {
		t.Errorf("source run link %d", n)
	}
	p.shot("logged-model-page")

	// Its artifacts, in the run page's browser.
	p.click("#lm-tab-artifacts")
	p.run("artifacts tab", waitPage("logged-model"))
	p.run("tree", chromedp.WaitVisible(chromedp.CSS(`button.tree-item[data-path="MLmodel"]`)))
	p.click(`button.tree-item[data-path="MLmodel"]`)
	rmWait(p, "MLmodel preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('python_function')`)
	href := value(p, "download", chromedp.Evaluate[string](`document.querySelector('.artifact-details a[download]').getAttribute('href')`))
	if !strings.HasPrefix(href, "/ajax-api/2.0/mlflow/logged-models/"+agentID+"/artifacts/files?artifact_file_path=MLmodel") {
		t.Errorf("download link %s", href)
	}
	p.click(`button.tree-item[data-path="code"]`)
	p.run("folder", chromedp.WaitVisible(chromedp.CSS(`button.tree-item[data-path="code/agent.py"]`)))
	p.click(`button.tree-item[data-path="code/agent.py"]`)
	rmWait(p, "code preview", `document.querySelector('.artifact-preview pre')?.textContent.includes('def predict')`)
	if got := p.location(); got != tab+"/"+agentID+"?tab=artifacts&artifact="+url.QueryEscape("code/agent.py") {
		t.Errorf("artifact address %q", got)
	}
	p.shot("logged-model-artifacts")
	// A model without artifacts says so.
	p.open(tab+"/"+baseID+"?tab=artifacts", "logged-model")
	rmWait(p, "empty", `document.querySelector('.artifact-empty')?.textContent.includes('No artifacts recorded for this model.')`)

	// MLflow's links.
	for hash, want := range map[string]string{
		"#/experiments/" + expID + "/models":                           tab,
		"#/experiments/" + expID + "/models/" + agentID:                tab + "/" + agentID,
		"#/experiments/" + expID + "/models/" + agentID + "/artifacts": tab + "/" + agentID + "?tab=artifacts",
	} {
		page := "logged-model"
		if want == tab {
			page = "logged-models"
		}
		p.open("/"+hash, page)
		if got := p.location(); got != want {
			t.Errorf("%s landed on %s, want %s", hash, got, want)
		}
	}
	p.open(tab+"/"+agentID+"/artifacts", "logged-model")
	if got := p.location(); got != tab+"/"+agentID+"?tab=artifacts" {
		t.Errorf("MLflow's tabbed model address went to %s", got)
	}
	// An unknown model says so.
	p.open(tab+"/m-00000000000000000000000000000000", "logged-model")
	p.wantText("main", "Model not available")
	p.allowErrors()

	// The run that logged it links the model's page.
	p.open("/experiments/"+expID+"/runs/"+runID, "run")
	p.click(`a[href="` + tab + "/" + agentID + `"]`)
	p.run("model from the run", waitPage("logged-model"))
	p.wantText("h1", "rag-agent")

	phone := newPage(t, srv.URL, phoneWidth, phoneHeight)
	phone.open(tab, "logged-models")
	phone.wantText("#logged-models-table", "rag-agent")
	phone.shot("logged-models-tab-phone")
	phone.open(tab+"/"+agentID, "logged-model")
	phone.wantText("#lm-metrics", "accuracy")
	phone.shot("logged-model-page-phone")
}
