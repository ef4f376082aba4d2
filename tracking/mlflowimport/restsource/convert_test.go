package restsource

import (
	"encoding/json"
	"testing"
)

// TestTraceInfo reads TraceInfoV3 as MLflow 3 servers write it: the
// state by name or by number, protobuf Timestamp and Duration strings,
// maps of metadata and tags, assessments; and refuses what is not one.
func TestTraceInfo(t *testing.T) {
	raw := `{"trace_id":"tr-1","trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"7"}},
		"request_time":"2025-01-02T03:04:05.678901Z","execution_duration":"0.0015s","state":2,
		"trace_metadata":{"b":"2","a":"1"},"tags":{"mlflow.artifactLocation":"mlflow-artifacts:/7/traces/tr-1/artifacts"},
		"assessments":[{"assessment_id":"a-1","assessment_name":"n","create_time":"2025-01-02T03:04:06Z","valid":false,"feedback":{"value":1},"expectation":null}]}`
	ti, err := traceInfo(json.RawMessage(raw), "9")
	if err != nil {
		t.Fatal(err)
	}
	if ti.RequestID != "tr-1" || ti.ExperimentID != "7" || ti.TimestampMs != 1735787045678 || ti.ExecutionTimeMs != 2 || ti.Status != "ERROR" {
		t.Fatalf("%+v", ti)
	}
	if len(ti.RequestMetadata) != 2 || ti.RequestMetadata[0].Key != "a" || len(ti.Tags) != 1 {
		t.Fatalf("metadata %v tags %v", ti.RequestMetadata, ti.Tags)
	}
	a := ti.Assessments[0]
	if a.TraceID != "tr-1" || a.Valid || a.CreateTimeMs != 1735787046000 || a.Expectation != nil || string(a.Feedback) != `{"value":1}` {
		t.Fatalf("assessment %+v", a)
	}
	ti, err = traceInfo(json.RawMessage(`{"trace_id":"tr-2","state":"STATE_UNSPECIFIED"}`), "9")
	if err != nil || ti.ExperimentID != "9" || ti.Status != "TRACE_STATUS_UNSPECIFIED" || ti.ExecutionTimeMs != 0 {
		t.Fatalf("%+v %v", ti, err)
	}
	for _, bad := range []string{`{"state":"OK"}`, `{"trace_id":"x","request_time":"yesterday"}`, `{"trace_id":"x","execution_duration":"5ms"}`, `[]`} {
		if _, err := traceInfo(json.RawMessage(bad), "1"); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

// TestQuote picks the filter quote a model name allows.
func TestQuote(t *testing.T) {
	for name, want := range map[string]string{"m": "'m'", "it's": `"it's"`, `say "hi"`: `'say "hi"'`} {
		if got, ok := quote(name); !ok || got != want {
			t.Errorf("quote(%q) = %q, %v", name, got, ok)
		}
	}
	if _, ok := quote(`it's "x"`); ok {
		t.Error("a name with both quotes was quoted")
	}
}

// TestRedact keeps credentials in a URI out of messages.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/x":   "https://***@host/x",
		"https://host/a@b":     "https://host/a@b",
		"http://host:5000":     "http://host:5000",
		"https://tok@host?x=1": "https://***@host?x=1",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
