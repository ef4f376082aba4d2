package storetest

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// otlpSpan is one span of seedOTLP: a root span of its trace.
type otlpSpan struct {
	trace   string // 32 hex digits
	name    string
	startMs int64
	endMs   int64
	attrs   map[string]any // string, float64 or int64 values
}

// seedOTLP logs spans into exp through the path OTLP exports take
// (otlpspans.Convert, then LogSpans).
func seedOTLP(t *testing.T, s tracking.Store, exp string, spans ...otlpSpan) {
	t.Helper()
	ss := &tracepb.ScopeSpans{}
	for i, sp := range spans {
		tid, err := hex.DecodeString(sp.trace)
		ok(t, err)
		var kvs []*commonpb.KeyValue
		for _, k := range slices.Sorted(mapKeys(sp.attrs)) {
			av := &commonpb.AnyValue{}
			switch v := sp.attrs[k].(type) {
			case string:
				av.Value = &commonpb.AnyValue_StringValue{StringValue: v}
			case float64:
				av.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v}
			case int64:
				av.Value = &commonpb.AnyValue_IntValue{IntValue: v}
			}
			kvs = append(kvs, &commonpb.KeyValue{Key: k, Value: av})
		}
		ss.Spans = append(ss.Spans, &tracepb.Span{TraceId: tid, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)},
			Name: sp.name, StartTimeUnixNano: uint64(sp.startMs) * 1e6, EndTimeUnixNano: uint64(sp.endMs) * 1e6,
			Attributes: kvs, Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}})
	}
	batches, err := otlpspans.Convert(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}})
	ok(t, err)
	rejected, err := s.LogSpans(bg, exp, batches)
	ok(t, err)
	if len(rejected) > 0 {
		t.Fatalf("spans rejected for %v", rejected)
	}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TraceFilters checks search_traces' MLflow 3 clauses beyond tags,
// metadata and span columns against a store seeded through the OTLP path
// and the assessment calls: span.attributes.<key> (LIKE ILIKE RLIKE, and
// = compared literally as MLflow does), text, feedback.<name> and
// expectation.<name> (= != LIKE ILIKE RLIKE IS NULL IS NOT NULL on the
// json.dumps text of valid assessments, session-scoped ones covering their
// session), issue.id, prompt, combined with each other and with trace
// clauses, in every page and with order_by on execution time. Backends
// run it from Run ("TraceFilters"); a backend with several search paths
// may run it again with another path selected.
func TraceFilters(t *testing.T, f Factory) {
	s := open(t, f)
	exp := mkExp(t, s, "trace-filters")
	other := mkExp(t, s, "other")
	const (
		h1 = "11111111111111111111111111111111"
		h2 = "22222222222222222222222222222222"
		h3 = "33333333333333333333333333333333"
		h9 = "99999999999999999999999999999999"
	)
	t1, t2, t3, t9 := "tr-"+h1, "tr-"+h2, "tr-"+h3, "tr-"+h9
	t4 := "tr-44444444444444444444444444444444"
	seedOTLP(t, s, exp,
		otlpSpan{trace: h1, name: "llm", startMs: 40_000, endMs: 40_010,
			attrs: map[string]any{"model": "gpt-4o", "temperature": 0.7, "session.id": "s1", "mlflow.spanType": `"LLM"`}},
		otlpSpan{trace: h2, name: "llm", startMs: 30_000, endMs: 30_050,
			attrs: map[string]any{"model": "claude-3", "session.id": "s1"}},
		otlpSpan{trace: h3, name: "chat", startMs: 20_000, endMs: 20_005,
			attrs: map[string]any{"model": "gpt-3.5-turbo", "tokens": int64(12)}})
	// A trace of another experiment shares session s1 and has the
	// feedback: experiments still scope the results.
	seedOTLP(t, s, other, otlpSpan{trace: h9, name: "llm", startMs: 50_000, endMs: 50_001,
		attrs: map[string]any{"model": "gpt-4o", "session.id": "s1"}})
	_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: t4, ExperimentID: exp, TimestampMs: 10_000,
		ExecutionTimeMs: 1, Status: tracking.TraceStatusOK})
	ok(t, err)
	ok(t, s.SetTraceTag(bg, t4, tracking.Tag{Key: "mlflow.linkedPrompts", Value: `[{"name": "qa", "version": "1"}, {"name": "greet", "version": "3"}]`}))

	add := func(trace, name, kind, raw string, meta map[string]string) string {
		t.Helper()
		a := tracking.Assessment{TraceID: trace, AssessmentName: name, Valid: true, Metadata: meta,
			Source: json.RawMessage(`{"source_type": "HUMAN", "source_id": "u"}`)}
		switch kind {
		case "feedback":
			a.Feedback = json.RawMessage(raw)
		case "expectation":
			a.Expectation = json.RawMessage(raw)
		case "issue":
			a.Issue = json.RawMessage(raw)
		}
		out, err := s.CreateAssessment(bg, a)
		ok(t, err)
		return out.AssessmentID
	}
	add(t1, "correct", "feedback", `{"value": true}`, nil)
	add(t1, "score", "feedback", `{"value": 5}`, nil)
	add(t1, "answer", "expectation", `{"value": "Paris"}`, nil)
	add(t1, "shape", "expectation", `{"serialized_value": {"serialization_format": "JSON_FORMAT", "value": "{\"a\": 1, \"b\": [1.5, \"x\"]}"}}`, nil)
	add(t2, "correct", "feedback", `{"value": false}`, nil)
	add(t2, "comment", "feedback", `{"value": "Great and helpful"}`, nil)
	add(t2, "session_quality", "feedback", `{"value": "good"}`, map[string]string{"mlflow.trace.session": "s1"})
	add(t9, "correct", "feedback", `{"value": true}`, nil)
	yes := add(t3, "correct", "feedback", `{"value": "yes"}`, nil)
	// Overriding makes the first value invalid: only "no" is searched.
	_, err = s.CreateAssessment(bg, tracking.Assessment{TraceID: t3, AssessmentName: "correct", Valid: true,
		Feedback: json.RawMessage(`{"value": "no"}`), Overrides: yes})
	ok(t, err)
	add(t3, "iss-1", "issue", `{"issue_name": "hallucination"}`, nil)
	// A deleted assessment is no longer found; an updated one by its new value.
	gone := add(t4, "correct", "feedback", `{"value": true}`, nil)
	ok(t, s.DeleteAssessment(bg, t4, gone))
	upd := add(t3, "tone", "feedback", `{"value": "rude"}`, nil)
	_, err = s.UpdateAssessment(bg, t3, upd, func(a *tracking.Assessment) error {
		a.Feedback = json.RawMessage(`{"value": "polite"}`)
		return nil
	})
	ok(t, err)

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		// span.attributes.<key> (the trace's stored spans).
		{"span.attributes.model LIKE '%gpt%'", []string{t1, t3}},
		{"span.attributes.model ILIKE '%GPT-4%'", []string{t1}},
		{"span.attributes.model RLIKE '^gpt'", []string{t1, t3}},
		{"span.attributes.model RLIKE '^claude'", []string{t2}},
		{"span.attributes.model RLIKE 'turbo$'", []string{t3}},
		{"span.attributes.model RLIKE '^4o'", nil},
		{"span.attributes.temperature LIKE '%0.7%'", []string{t1}},
		{"span.attributes.tokens LIKE '%12%'", []string{t3}},
		{"span.attributes.missing LIKE '%gpt%'", nil},
		{"span.attributes.model = 'gpt-4o'", nil}, // MLflow compares the LIKE text literally
		{"span.attributes.model LIKE '%gpt%' AND span.name = 'llm'", []string{t1}},
		{"span.attributes.model LIKE '%gpt%' AND timestamp_ms < 30000", []string{t3}},
		{"text LIKE '%claude%'", []string{t2}},
		{"text ILIKE '%CLAUDE%'", []string{t2}},
		// feedback.<name>: json.dumps text of valid assessments.
		{"feedback.correct = 'true'", []string{t1}},
		{"feedback.correct = 'false'", []string{t2}},
		{"feedback.correct = 'no'", []string{t3}},
		{`feedback.correct = '"no"'`, []string{t3}},
		{"feedback.correct = 'yes'", nil}, // overridden
		{"feedback.correct != 'true'", []string{t2, t3}},
		{"feedback.score = '5.0'", []string{t1}},
		{"feedback.score = '5'", nil},
		{"feedback.comment LIKE '%helpful%'", []string{t2}},
		{"feedback.comment LIKE '%HELPFUL%'", nil},
		{"feedback.comment ILIKE '%GREAT%'", []string{t2}},
		{"feedback.comment RLIKE 'Great.*helpful'", []string{t2}},
		{"feedback.comment RLIKE '^Great'", nil}, // the text starts with a quote
		{"feedback.correct IS NOT NULL", []string{t1, t2, t3}},
		{"feedback.correct IS NULL", []string{t4}},
		{"feedback.tone = 'polite'", []string{t3}},
		{"feedback.tone = 'rude'", nil},
		{"feedback.nothing = 'x'", nil},
		{"feedback.nothing IS NULL", []string{t1, t2, t3, t4}},
		// A session-scoped assessment covers its session's traces.
		{"feedback.session_quality = 'good'", []string{t1, t2}},
		{"feedback.session_quality IS NOT NULL", []string{t1, t2}},
		{"feedback.session_quality IS NULL", []string{t3, t4}},
		{"feedback.session_quality = 'bad'", nil},
		// expectation.<name>.
		{"expectation.answer = 'Paris'", []string{t1}},
		{"expectation.answer = 'paris'", nil},
		{`expectation.shape = '{"a": 1, "b": [1.5, "x"]}'`, []string{t1}},
		{`expectation.shape LIKE '%"b": [1.5%'`, []string{t1}},
		{"expectation.answer IS NOT NULL", []string{t1}},
		{"feedback.answer IS NOT NULL", nil}, // kinds are apart
		{"expectation.correct = 'true'", nil},
		// issue.id and prompt.
		{"issue.id = 'iss-1'", []string{t3}},
		{"issue.id = 'iss-2'", nil},
		{"prompt = 'qa/1'", []string{t4}},
		{"prompt = 'greet/3'", []string{t4}},
		{"prompt = 'qa/3'", nil},
		// Combinations.
		{"expectation.answer = 'Paris' AND feedback.correct = 'true'", []string{t1}},
		{"expectation.answer = 'Paris' AND feedback.correct = 'false'", nil},
		{"feedback.correct IS NOT NULL AND timestamp_ms < 35000", []string{t2, t3}},
		{"feedback.correct IS NOT NULL AND span.attributes.model LIKE '%gpt%'", []string{t1, t3}},
		{"feedback.session_quality = 'good' AND span.attributes.model LIKE '%claude%'", []string{t2}},
		{"feedback.correct != 'false' AND status = 'OK'", []string{t1, t3}},
	} {
		clauses, err := search.ParseTraceFilter(tc.filter)
		ok(t, err)
		for _, size := range []int{1, 2, 100} {
			if got := searchTraceIDs(t, s, []string{exp}, clauses, nil, size); !slices.Equal(got, tc.want) {
				t.Errorf("%q (pages of %d): got %v, want %v", tc.filter, size, got, tc.want)
			}
		}
	}
	// The other experiment's trace matches on its own.
	clauses, err := search.ParseTraceFilter("feedback.correct = 'true'")
	ok(t, err)
	if got := searchTraceIDs(t, s, []string{exp, other}, clauses, nil, 1); !slices.Equal(got, []string{t9, t1}) {
		t.Errorf("two experiments: got %v", got)
	}
	// order_by execution time and timestamps with assessment and span clauses.
	for _, tc := range []struct {
		filter string
		order  []string
		want   []string
	}{
		{"feedback.correct IS NOT NULL", []string{"execution_time_ms DESC"}, []string{t2, t1, t3}},
		{"feedback.correct IS NOT NULL", []string{"execution_time ASC"}, []string{t3, t1, t2}},
		{"feedback.correct IS NOT NULL", []string{"timestamp_ms ASC"}, []string{t3, t2, t1}},
		{"feedback.correct IS NOT NULL", []string{"end_time DESC"}, []string{t1, t2, t3}},
		{"span.attributes.model LIKE '%gpt%'", []string{"execution_time_ms DESC"}, []string{t1, t3}},
		{"feedback.nothing IS NULL", []string{"timestamp ASC"}, []string{t4, t3, t2, t1}},
	} {
		clauses, err := search.ParseTraceFilter(tc.filter)
		ok(t, err)
		keys, err := search.ParseTraceOrderBy(tc.order)
		ok(t, err)
		for _, size := range []int{1, 100} {
			if got := searchTraceIDs(t, s, []string{exp}, clauses, keys, size); !slices.Equal(got, tc.want) {
				t.Errorf("%q order %v (pages of %d): got %v, want %v", tc.filter, tc.order, size, got, tc.want)
			}
		}
	}
	// Deleting a trace removes what its assessments matched.
	_, err = s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{t2}})
	ok(t, err)
	for filter, want := range map[string][]string{
		"feedback.correct = 'false'":        nil,
		"feedback.session_quality = 'good'": nil,
		"feedback.correct IS NOT NULL":      {t1, t3},
	} {
		clauses, err := search.ParseTraceFilter(filter)
		ok(t, err)
		if got := searchTraceIDs(t, s, []string{exp}, clauses, nil, 1); !slices.Equal(got, want) {
			t.Errorf("after delete, %q: got %v, want %v", filter, got, want)
		}
	}
}

// searchTraceIDs follows every page of a search and returns the ids.
func searchTraceIDs(t *testing.T, s tracking.Store, exps []string, clauses []search.Clause, order []search.OrderKey, size int) []string {
	t.Helper()
	var got []string
	token := ""
	for range 100 {
		page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: exps, Filter: clauses, OrderBy: order,
			MaxResults: size, PageToken: token})
		ok(t, err)
		for _, tr := range page.Traces {
			got = append(got, tr.RequestID)
		}
		if page.NextPageToken == "" {
			return got
		}
		token = page.NextPageToken
	}
	t.Fatal("search did not end")
	return nil
}

// testTraceFiltersImport checks that traces written by ImportTrace (a
// store copy) are found by their assessments like those written through
// the API.
func testTraceFiltersImport(t *testing.T, f Factory) {
	s := open(t, f)
	im, isTarget := s.(tracking.ImportTarget)
	if !isTarget {
		t.Skip("the backend is not an import target")
	}
	exp := mkExp(t, s, "imported-traces")
	tr := &tracking.TraceInfo{RequestID: "tr-imported", ExperimentID: exp, TimestampMs: 5, ExecutionTimeMs: 1,
		Status: tracking.TraceStatusOK, Assessments: []tracking.Assessment{
			{AssessmentID: "a-1", AssessmentName: "quality", TraceID: "tr-imported", Valid: true,
				Feedback: json.RawMessage(`{"value": 0.25}`)},
			{AssessmentID: "a-2", AssessmentName: "quality", TraceID: "tr-imported", Valid: false,
				Feedback: json.RawMessage(`{"value": 0.5}`)},
			{AssessmentID: "a-3", AssessmentName: "answer", TraceID: "tr-imported", Valid: true,
				Expectation: json.RawMessage(`{"value": "x"}`)},
		}}
	ok(t, im.ImportTrace(bg, tr))
	for filter, want := range map[string][]string{
		"feedback.quality = '0.25'":     {"tr-imported"},
		"feedback.quality = '0.5'":      nil,
		"expectation.answer = 'x'":      {"tr-imported"},
		"expectation.answer IS NULL":    nil,
		"feedback.quality LIKE '0.2%'":  {"tr-imported"},
		"feedback.quality != '0.25'":    nil,
		"feedback.unknown IS NOT NULL":  nil,
		"feedback.unknown IS NULL":      {"tr-imported"},
		"expectation.quality IS NULL":   {"tr-imported"},
		"feedback.quality IS NOT NULL":  {"tr-imported"},
		"feedback.quality ILIKE '%25%'": {"tr-imported"},
	} {
		clauses, err := search.ParseTraceFilter(filter)
		ok(t, err)
		if got := searchTraceIDs(t, s, []string{exp}, clauses, nil, 10); !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", filter, got, want)
		}
	}
}
