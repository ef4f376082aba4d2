package api

import (
	"net/url"
	"testing"
)

// TestSearchTracesAssessmentFilters exports a trace over OTLP, gives it
// feedback and an expectation through the assessments routes, and finds
// it with span.attributes, text, feedback and expectation clauses through
// traces/search (v3) and the v2 traces list; bad clauses get MLflow's
// INVALID_PARAMETER_VALUE messages.
func TestSearchTracesAssessmentFilters(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "assessfilters")
	wantStatus(t, otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, otlpRequest(otlpTraceID))), 200)
	id := "tr-0123456789abcdef0123456789abcdef"
	src := map[string]any{"source_type": "HUMAN", "source_id": "bob"}
	for _, a := range []map[string]any{
		{"assessment_name": "relevance", "source": src, "feedback": map[string]any{"value": 0.9}},
		{"assessment_name": "verdict", "source": src, "feedback": map[string]any{"value": true}},
		{"assessment_name": "expected", "source": src, "expectation": map[string]any{"value": "hello"}},
	} {
		wantStatus(t, v3(t, ts, "POST", "traces/"+id+"/assessments", map[string]any{"assessment": a}), 200)
	}
	locations := []any{map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}}}
	search := func(filter string) response {
		t.Helper()
		return v3(t, ts, "POST", "traces/search", map[string]any{"filter": filter, "locations": locations,
			"order_by": []any{"execution_time DESC"}})
	}
	for filter, want := range map[string]int{
		"span.attributes.`gen_ai.operation.name` LIKE '%execute%'":       1,
		"span.attributes.`gen_ai.operation.name` RLIKE '^execute_tool$'": 1,
		"span.attributes.`gen_ai.operation.name` LIKE '%summarize%'":     0,
		"text LIKE '%boom%'":                                        1,
		"feedback.relevance = '0.9'":                                1,
		"feedback.relevance = '1'":                                  0,
		"feedback.verdict = 'true'":                                 1,
		"feedback.verdict != 'true'":                                0,
		"feedback.relevance IS NULL":                                0,
		"feedback.other IS NULL":                                    1,
		"expectation.expected = 'hello'":                            1,
		"expectation.expected LIKE '%hell%' AND span.name = 'tool'": 1,
		"feedback.relevance IS NOT NULL AND status = 'OK'":          0, // the root span failed
		"issue.id = 'nothing'":                                      0,
		"prompt = 'qa/1'":                                           0,
	} {
		r := search(filter)
		wantStatus(t, r, 200)
		if l, _ := r.json(t)["traces"].([]any); len(l) != want {
			t.Errorf("filter %q: %d traces, want %d", filter, len(l), want)
		}
	}
	for filter, msg := range map[string]string{
		"feedback.relevance > 0.5":     "Expected a quoted string value for feedback (e.g. 'my-value'). Got value 0.5",
		"feedback.relevance > '0.5'":   "assessment.relevance comparator '>' not one of",
		"expectation.x IN ('a')":       "Expected a quoted string value for expectation",
		"issue.name = 'x'":             "Invalid issue attribute 'name'. Supported attributes: id",
		"prompt = 'qa'":                "Invalid prompts filter value 'qa'",
		"span.attributes.k >= 'a'":     "span.attributes.k comparator '>=' not one of",
		"span.attributes. = 'a'":       "Span attribute name cannot be empty after 'attributes.'",
		"text = 'a'":                   "span.content comparator '=' not one of",
		"assessments.x = 'a'":          "Invalid entity type 'assessments'",
		"feedback.relevance RLIKE '('": "Invalid regular expression",
	} {
		wantError(t, search(filter), 400, "INVALID_PARAMETER_VALUE", msg)
	}
	wantError(t, v3(t, ts, "POST", "traces/search", map[string]any{"locations": locations, "order_by": []any{"feedback.relevance"}}),
		400, "INVALID_PARAMETER_VALUE", "Invalid identifier type 'feedback'")
	r := get(t, ts, "traces?experiment_ids="+exp+"&filter="+url.QueryEscape("feedback.verdict = 'true'"))
	wantStatus(t, r, 200)
	if l, _ := r.json(t)["traces"].([]any); len(l) != 1 {
		t.Fatalf("v2 list with a feedback clause: %s", r.body)
	}
}
