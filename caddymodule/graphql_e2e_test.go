package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestGraphQLThroughGateway runs MLflow's GraphQL queries through real
// Caddy with auth: a user without READ on the experiment gets null for
// every query that touches it (MLflow's GraphQL authorization), a user
// with READ gets the data, and no credentials is a 401.
func TestGraphQLThroughGateway(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	f := setupFixture(t, e)
	admin := basic("root", adminPassword)
	e.must(t, "POST", "/api/2.0/mlflow/runs/log-metric", admin, obj{"run_id": f.runID, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0})
	e.must(t, "POST", "/api/2.0/mlflow/runs/log-inputs", admin, obj{"run_id": f.runID, "datasets": []obj{{
		"dataset": obj{"name": "d", "digest": "x1", "source_type": "code", "source": "{}"}}}})
	// carol may read the experiment; "dave" exists with no grant at all.
	e.must(t, "POST", "/api/2.0/mlflow/users/create", admin, obj{"username": "dave", "password": "dave-password-0123"})
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", admin, obj{"experiment_id": f.expID, "username": "carol", "permission": "READ"})
	reader, stranger := basic("carol", carolPassword), basic("dave", "dave-password-0123")

	queries := map[string]string{
		"mlflowGetExperiment":                `{ mlflowGetExperiment(input: {experimentId: "%[1]s"}) { experiment { experimentId name } } }`,
		"mlflowGetRun":                       `{ mlflowGetRun(input: {runId: "%[2]s"}) { run { info { runId experimentId } experiment { name } } } }`,
		"mlflowSearchRuns":                   `{ mlflowSearchRuns(input: {experimentIds: ["%[1]s"]}) { runs { info { runId } } } }`,
		"mlflowGetMetricHistoryBulkInterval": `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["%[2]s"], metricKey: "loss"}) { metrics { key value step runId } } }`,
		"mlflowListArtifacts":                `{ mlflowListArtifacts(input: {runId: "%[2]s"}) { rootUri files { path } } }`,
		"mlflowSearchDatasets":               `mutation { mlflowSearchDatasets(input: {experimentIds: ["%[1]s"]}) { datasetSummaries { experimentId name digest } } }`,
	}
	send := func(path, auth, query string) (int, map[string]any, []byte) {
		t.Helper()
		resp, data := e.req(t, nil, "POST", path, auth, obj{"query": query})
		var a map[string]any
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(data, &a); err != nil {
				t.Fatalf("%s: %v: %s", path, err, data)
			}
		}
		return resp.StatusCode, a, data
	}
	for _, path := range []string{"/graphql", "/ajax-api/graphql"} {
		for field, tmpl := range queries {
			q := fmt.Sprintf(tmpl, f.expID, f.runID)
			if status, _, data := send(path, "", q); status != http.StatusUnauthorized {
				t.Errorf("%s %s unauthenticated = %d %s", path, field, status, data)
			}
			status, denied, data := send(path, stranger, q)
			if status != http.StatusOK {
				t.Fatalf("%s %s as a stranger = %d %s", path, field, status, data)
			}
			if d, _ := denied["data"].(map[string]any); d == nil || d[field] != nil {
				t.Errorf("%s %s as a stranger: %s", path, field, data)
			}
			status, allowed, data := send(path, reader, q)
			if status != http.StatusOK {
				t.Fatalf("%s %s as a reader = %d %s", path, field, status, data)
			}
			if d, _ := allowed["data"].(map[string]any); d == nil || d[field] == nil || allowed["errors"] != nil {
				t.Errorf("%s %s as a reader: %s", path, field, data)
			}
		}
	}

	// The reader's answers carry the same objects as REST.
	_, a, _ := send("/graphql", reader, fmt.Sprintf(queries["mlflowGetRun"], f.expID, f.runID))
	run := a["data"].(map[string]any)["mlflowGetRun"].(map[string]any)["run"].(map[string]any)
	rest := e.must(t, "GET", "/api/2.0/mlflow/runs/get?run_id="+f.runID, reader, nil)
	if got, want := run["info"].(map[string]any)["experimentId"], str(t, rest, "run", "info", "experiment_id"); got != want {
		t.Errorf("experimentId %v, REST %v", got, want)
	}
	if got := run["experiment"].(map[string]any)["name"]; got != f.expName {
		t.Errorf("run.experiment.name %v", got)
	}
	_, a, _ = send("/graphql", reader, fmt.Sprintf(queries["mlflowGetMetricHistoryBulkInterval"], f.expID, f.runID))
	want := []any{map[string]any{"key": "loss", "value": 0.5, "step": "0", "runId": f.runID}}
	if got := a["data"].(map[string]any)["mlflowGetMetricHistoryBulkInterval"].(map[string]any)["metrics"]; !reflect.DeepEqual(got, want) {
		t.Errorf("metrics %v", got)
	}

	// The stranger cannot reach the experiment through a run's nested
	// experiment field or a search mixing experiments either.
	mixed := fmt.Sprintf(`{ mlflowSearchRuns(input: {experimentIds: ["0", "%s"]}) { runs { info { runId } experiment { name } } } }`, f.expID)
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", admin, obj{"experiment_id": "0", "username": "dave", "permission": "READ"})
	_, a, data := send("/graphql", stranger, mixed)
	if strings.Contains(string(data), f.runID) || strings.Contains(string(data), f.expName) {
		t.Errorf("mixed search leaks the private experiment: %s", data)
	}
	if a["data"].(map[string]any)["mlflowSearchRuns"] == nil {
		t.Errorf("mixed search refused whole: %s", data)
	}

	// Limits hold through the gateway.
	var roots []string
	for i := 0; i < 11; i++ {
		roots = append(roots, fmt.Sprintf(`t%d: test(inputString: "x") { output }`, i))
	}
	_, a, data = send("/graphql", reader, "{ "+strings.Join(roots, " ")+" }")
	if errs, _ := a["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "at most 10 root fields") {
		t.Errorf("root-field limit: %s", data)
	}
	assertNoSecrets(t, e)
}
