package tracking

import (
	"encoding/json"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// SearchFields is what trace search clauses read of the assessment: its
// kind, name, validity, whether it is session-scoped, and its value as the
// text MLflow's SQL store keeps (SqlAssessments.value, json.dumps of the
// value Assessment.from_proto makes: a google.protobuf.Value's numbers are
// floats, a serialized expectation is json.loads of its text, an issue is
// {"issue_name": ...}). A value that cannot be read is "null".
func (a *Assessment) SearchFields() search.AssessmentFields {
	f := search.AssessmentFields{Name: a.AssessmentName, Valid: a.Valid, Value: "null"}
	_, f.SessionScoped = a.Metadata[search.TraceMetadataSession]
	var msg map[string]json.RawMessage
	switch {
	case len(a.Feedback) > 0:
		f.Type = "feedback"
		_ = json.Unmarshal(a.Feedback, &msg)
		if v, ok := msg["value"]; ok {
			f.Value = pyValue(v, true)
		}
	case len(a.Expectation) > 0:
		f.Type = "expectation"
		_ = json.Unmarshal(a.Expectation, &msg)
		if v, ok := msg["value"]; ok {
			f.Value = pyValue(v, true)
			break
		}
		sv, ok := msg["serialized_value"]
		if !ok {
			sv = msg["serializedValue"]
		}
		var ser struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(sv, &ser) == nil && ser.Value != "" {
			f.Value = pyValue([]byte(ser.Value), false)
		}
	case len(a.Issue) > 0:
		f.Type = "issue"
		_ = json.Unmarshal(a.Issue, &msg)
		name, ok := msg["issue_name"]
		if !ok {
			name = msg["issueName"]
		}
		var s string
		_ = json.Unmarshal(name, &s)
		f.Value = `{"issue_name": ` + search.PyJSONString(s) + `}`
	}
	return f
}

func pyValue(raw []byte, floatNumbers bool) string {
	s, err := search.PyJSON(raw, floatNumbers)
	if err != nil {
		return "null"
	}
	return s
}
