package api

import (
	"testing"
)

// TestLinkPromptsToTrace: POST /traces/link-prompts (MLflow's
// _link_prompts_to_trace) records the prompt versions in the trace's
// mlflow.linkedPrompts tag, merged without duplicates, in the format
// MLflow's update_linked_prompts_tag writes.
func TestLinkPromptsToTrace(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "e")
	id := "tr-" + "0123456789abcdef0123456789abcdef"
	startV3(t, ts, exp, id, 1700000000000, nil)
	linked := func() (string, bool) {
		t.Helper()
		r := v3(t, ts, "GET", "traces/"+id, nil)
		wantStatus(t, r, 200)
		tags, _ := r.json(t)["trace"].(map[string]any)["trace_info"].(map[string]any)["tags"].(map[string]any)
		v, ok := tags["mlflow.linkedPrompts"].(string)
		return v, ok
	}
	ref := func(name, version string) map[string]any { return map[string]any{"name": name, "version": version} }

	for _, p := range []string{"/api/2.0/mlflow/traces/link-prompts", "/ajax-api/2.0/mlflow/traces/link-prompts"} {
		r := call(t, ts, "POST", p, "json", map[string]any{"trace_id": id, "prompt_versions": []any{ref("qa", "1")}})
		wantStatus(t, r, 200)
		if string(r.body) != "{}" {
			t.Errorf("%s answered %q, want {}", p, r.body)
		}
	}
	if v, _ := linked(); v != `[{"name": "qa", "version": "1"}]` {
		t.Fatalf("linked prompts tag %q", v)
	}
	// New versions are appended; known ones are not repeated; "02" is version 2.
	wantStatus(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id,
		"prompt_versions": []any{ref("qa", "1"), ref("qa", "02"), ref("greet", "3")}}), 200)
	if v, _ := linked(); v != `[{"name": "qa", "version": "1"}, {"name": "qa", "version": "2"}, {"name": "greet", "version": "3"}]` {
		t.Fatalf("linked prompts tag %q", v)
	}
	// An empty list changes nothing.
	wantStatus(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": []any{}}), 200)

	// Bad requests.
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"prompt_versions": []any{ref("qa", "1")}}), 400,
		"INVALID_PARAMETER_VALUE", "Missing value for required parameter 'trace_id'")
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id}), 400,
		"INVALID_PARAMETER_VALUE", "Missing value for required parameter 'prompt_versions'")
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": "qa"}), 400,
		"INVALID_PARAMETER_VALUE", "prompt_versions")
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": []any{ref("qa", "one")}}), 400,
		"INVALID_PARAMETER_VALUE", "Prompt version must be an integer, got 'one'.")
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": []any{ref("", "1")}}), 400,
		"INVALID_PARAMETER_VALUE", "")
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": "tr-unknown", "prompt_versions": []any{ref("qa", "1")}}), 404,
		"RESOURCE_DOES_NOT_EXIST", "")
	wantStatus(t, call(t, ts, "GET", "/api/2.0/mlflow/traces/link-prompts", "", nil), 405)

	// A tag that is no JSON list is refused, as MLflow's client refuses it.
	wantStatus(t, v3(t, ts, "PATCH", "traces/"+id+"/tags", map[string]any{"key": "mlflow.linkedPrompts", "value": "not json"}), 200)
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": []any{ref("qa", "1")}}), 400,
		"INVALID_PARAMETER_VALUE", "Invalid JSON format for 'mlflow.linkedPrompts' tag: not json")
	wantStatus(t, v3(t, ts, "PATCH", "traces/"+id+"/tags", map[string]any{"key": "mlflow.linkedPrompts", "value": `{"name": "qa"}`}), 200)
	wantError(t, post(t, ts, "traces/link-prompts", map[string]any{"trace_id": id, "prompt_versions": []any{ref("qa", "1")}}), 400,
		"INVALID_PARAMETER_VALUE", "Invalid format for 'mlflow.linkedPrompts' tag")
}

func TestMergeLinkedPrompts(t *testing.T) {
	for _, c := range []struct {
		cur     string
		present bool
		refs    []promptVersionRef
		want    string
		changed bool
	}{
		{"", false, []promptVersionRef{{"a", "1"}}, `[{"name": "a", "version": "1"}]`, true},
		{"[]", true, []promptVersionRef{{"a", "1"}}, `[{"name": "a", "version": "1"}]`, true},
		{`[{"name": "a", "version": "1"}]`, true, []promptVersionRef{{"a", "1"}}, `[{"name": "a", "version": "1"}]`, false},
		{`[{"name":"a","version":"1"}]`, true, []promptVersionRef{{"a", "1"}, {"b", "2"}, {"b", "2"}},
			`[{"name":"a","version":"1"}, {"name": "b", "version": "2"}]`, true},
	} {
		got, changed, err := mergeLinkedPrompts(c.cur, c.present, c.refs)
		if err != nil || got != c.want || changed != c.changed {
			t.Errorf("merge(%q, %v) = %q, %v, %v; want %q, %v", c.cur, c.refs, got, changed, err, c.want, c.changed)
		}
	}
	if _, _, err := mergeLinkedPrompts("null", true, []promptVersionRef{{"a", "1"}}); err == nil {
		t.Errorf("null tag value accepted")
	}
}
