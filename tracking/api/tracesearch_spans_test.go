package api

import (
	"testing"
)

// TestSearchTracesSpanFilters exports a trace over OTLP and finds it
// with span clauses through traces/search (v3) and the v2 traces list;
// bad span clauses get MLflow's INVALID_PARAMETER_VALUE.
func TestSearchTracesSpanFilters(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "spanfilters")
	wantStatus(t, otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, otlpRequest(otlpTraceID))), 200)
	search := func(filter string) int {
		t.Helper()
		r := v3(t, ts, "POST", "traces/search", map[string]any{"filter": filter,
			"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}})
		wantStatus(t, r, 200)
		l, _ := r.json(t)["traces"].([]any)
		return len(l)
	}
	for filter, want := range map[string]int{
		"span.name = 'tool'":                             1,
		"span.name = 'nothing'":                          0,
		"span.type = 'LLM' AND span.status = 'OK'":       1,
		"span.name = 'root' AND span.status = 'OK'":      0, // the root span failed
		"span.status = 'ERROR'":                          1,
		"span.content LIKE '%exception%'":                1,
		"span.name IN ('llm', 'x') AND status = 'ERROR'": 1,
	} {
		if got := search(filter); got != want {
			t.Errorf("filter %q: %d traces, want %d", filter, got, want)
		}
	}
	wantError(t, v3(t, ts, "POST", "traces/search", map[string]any{"filter": "span.name > 'a'",
		"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}}),
		400, "INVALID_PARAMETER_VALUE", "span.name comparator '>' not one of")
	wantError(t, v3(t, ts, "POST", "traces/search", map[string]any{"filter": "span.duration = 'a'",
		"locations": []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}}),
		400, "INVALID_PARAMETER_VALUE", "Invalid span attribute 'duration'")
	r := get(t, ts, "traces?experiment_ids="+exp+"&filter=span.name+%3D+%27llm%27")
	wantStatus(t, r, 200)
	if l, _ := r.json(t)["traces"].([]any); len(l) != 1 {
		t.Fatalf("v2 list with a span clause: %v", l)
	}
}
