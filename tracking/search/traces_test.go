package search

import (
	"strings"
	"testing"
)

type fakeTrace struct {
	attrs  map[string]string
	nums   map[string]int64
	tags   map[string]string
	meta   map[string]string
	linked string
}

func (f fakeTrace) TraceAttr(k string) (string, int64) { return f.attrs[k], f.nums[k] }
func (f fakeTrace) Tag(k string) (string, bool)        { v, ok := f.tags[k]; return v, ok }
func (f fakeTrace) Metadata(k string) (string, bool)   { v, ok := f.meta[k]; return v, ok }
func (f fakeTrace) LinkedToRun(id string) bool         { return id != "" && id == f.linked }

func TestTraceFilterV3(t *testing.T) {
	tr := fakeTrace{
		attrs:  map[string]string{"status": "TRACE_STATUS_UNSPECIFIED", "client_request_id": "c-1", "request_id": "tr-1"},
		nums:   map[string]int64{"timestamp_ms": 100, "execution_time_ms": 5, "end_time_ms": 105},
		tags:   map[string]string{"mlflow.traceName": "predict", "env": "prod"},
		meta:   map[string]string{"mlflow.sourceRun": "r1"},
		linked: "r2",
	}
	for filter, want := range map[string]bool{
		"trace.status = 'STATE_UNSPECIFIED'":    true,
		"status IN ('STATE_UNSPECIFIED', 'OK')": true,
		"trace.end_time_ms = 105":               true,
		"end_time > 105":                        false,
		"client_request_id = 'c-1'":             true,
		"request_id LIKE 'tr-%'":                true,
		"tags.env ILIKE 'PROD'":                 true,
		"tags.env RLIKE '^pr'":                  true,
		"tags.missing IS NULL":                  true,
		"tags.env IS NOT NULL":                  true,
		"metadata.`mlflow.sourceRun` != 'r1'":   false,
		"run_id = 'r1'":                         true,
		"run_id = 'r2'":                         true,
		"run_id = 'r3'":                         false,
		"name = 'predict'":                      true,
		"tags.name = 'predict'":                 false,
	} {
		c, err := ParseTraceFilter(filter)
		if err != nil {
			t.Errorf("%q: %v", filter, err)
			continue
		}
		if got := MatchTrace(c, tr); got != want {
			t.Errorf("%q matched %v, want %v", filter, got, want)
		}
	}
	for filter, msg := range map[string]string{
		"state = 'OK'":              "Invalid attribute key 'state'",
		"tags.x > 'a'":              "Invalid comparator '>'",
		"timestamp_ms LIKE '1'":     "Invalid comparator 'LIKE'",
		"tags.x RLIKE '('":          "Invalid regular expression",
		"feedbacks.x = 'y'":         "Invalid entity type 'feedbacks'",
		"client_request_id IS NULL": "Invalid comparator 'IS NULL'",
	} {
		_, err := ParseTraceFilter(filter)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", filter, err, msg)
		}
	}
	if _, err := ParseTraceOrderBy([]string{"end_time DESC", "client_request_id"}); err == nil {
		t.Error("client_request_id is not an order_by key in MLflow")
	}
}
