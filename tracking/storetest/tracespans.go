package storetest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// testSpanFilters checks search_traces' span clauses: span.name, type,
// status (= != IN NOT IN LIKE ILIKE RLIKE) and content (LIKE ILIKE), all
// span clauses of a filter applying to the same span (MLflow's
// SqlAlchemyStore), combined with trace clauses, in every page.
func testSpanFilters(t *testing.T, f Factory) {
	s := open(t, f)
	exp := mkExp(t, s, "spans")
	mk := func(trace, id, name, typ, status, content string) tracking.Span {
		sp := mkSpan(trace, id, "", 1e6, 2e6)
		sp.Name, sp.Type, sp.Status, sp.Content = name, typ, status, json.RawMessage(content)
		return sp
	}
	const (
		t1 = "tr-11111111111111111111111111111111"
		t2 = "tr-22222222222222222222222222222222"
		t3 = "tr-33333333333333333333333333333333"
	)
	_, err := s.LogSpans(bg, exp, []tracking.SpanBatch{
		{TraceID: t1, StartMs: 30, EndMs: 40, Spans: []tracking.Span{
			mk(t1, "0000000000000001", "foo", "CHAIN", "OK", `{"q":"paris"}`),
			mk(t1, "0000000000000002", "search_web", "TOOL", "ERROR", `{"q":"london"}`)}},
		{TraceID: t2, StartMs: 20, EndMs: 25, Spans: []tracking.Span{
			mk(t2, "0000000000000001", "search_web", "TOOL", "OK", `{"q":"Paris"}`)}},
		{TraceID: t3, StartMs: 10, EndMs: 12, Spans: []tracking.Span{
			mk(t3, "0000000000000001", "llm", "LLM", "UNSET", `{"q":"rome"}`)}},
	})
	ok(t, err)
	for filter, want := range map[string][]string{
		"span.name = 'search_web'":                        {t1, t2},
		"span.name = 'search_web' AND span.status = 'OK'": {t2}, // the same span
		"span.name = 'foo' AND span.status = 'OK'":        {t1},
		"span.name != 'search_web'":                       {t1, t3},
		"span.type IN ('LLM', 'CHAIN')":                   {t1, t3},
		"span.type NOT IN ('TOOL')":                       {t1, t3},
		"span.name LIKE 'search%'":                        {t1, t2},
		"span.name ILIKE 'SEARCH%'":                       {t1, t2},
		"span.name RLIKE '^l+m$'":                         {t3},
		"span.status = 'ERROR'":                           {t1},
		"span.content LIKE '%paris%'":                     {t1},
		"span.content ILIKE '%paris%'":                    {t1, t2},
		"span.name = 'search_web' AND timestamp_ms < 25":  {t2},
		"span.name = 'nothing'":                           nil,
		"span.name = 'search_web' AND span.type = 'TOOL'": {t1, t2},
	} {
		clauses, err := search.ParseTraceFilter(filter)
		ok(t, err)
		var got []string
		token := ""
		for {
			page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses, MaxResults: 1, PageToken: token})
			ok(t, err)
			for _, tr := range page.Traces {
				got = append(got, tr.RequestID)
			}
			if page.NextPageToken == "" {
				break
			}
			token = page.NextPageToken
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", filter, got, want)
		}
	}
}
