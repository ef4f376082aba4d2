package pgstore

import (
	"slices"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// BenchmarkSearchTracesClauses is tracking/boltstore's benchmark of the
// same name: one page (100 traces) of search_traces over 100k traces, each
// with one stored span (model gpt-4o, claude-3 or llama, 1 in 1000
// rare-model) and one feedback "quality" (good or bad, 1 in 1000
// excellent), seeded in bulk with SQL. Besides ns/op it reports the
// median (p50-ms) of the iterations.
func BenchmarkSearchTracesClauses(b *testing.B) {
	const n = 100_000
	s := openCore(b)
	exp := regExp(b, s, "traces")
	for _, q := range []string{
		`INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status)
			SELECT format('tr-%s', lpad(to_hex(1048576 + i), 32, '0')), $1::bigint, 1700000000000 + i::bigint * 2000,
				50 + (i * 7919) % 5000, CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'OK' END
			FROM generate_series(0, $2::int - 1) i`,
		`INSERT INTO trace_spans (request_id, span_id, name, type, status, start_time_unix_nano, end_time_unix_nano, content)
			SELECT format('tr-%s', lpad(to_hex(1048576 + i), 32, '0')), '0000000000000001', 'llm', 'LLM', 'OK', 0, 0,
				format('{"span_id":"AAAAAAAAAAE=","name":"llm","events":[],"attributes":{"mlflow.spanType":"\"LLM\"","model":"\"%s\"","mlflow.spanInputs":"{\"q\":\"question number %s\"}"}}',
					CASE WHEN i % 1000 = 7 THEN 'rare-model' ELSE (ARRAY['gpt-4o','claude-3','llama'])[i % 3 + 1] END, i)
			FROM generate_series(0, $2::int - 1) i WHERE $1::bigint IS NOT NULL`,
		`INSERT INTO assessments (request_id, assessment_id, body, assessment_type, name, value, valid, session_scoped)
			SELECT format('tr-%s', lpad(to_hex(1048576 + i), 32, '0')), format('a-%s', i), '{}'::json, 'feedback', 'quality',
				CASE WHEN i % 1000 = 7 THEN '"excellent"' ELSE (ARRAY['"good"','"bad"'])[i % 2 + 1] END, true, false
			FROM generate_series(0, $2::int - 1) i WHERE $1::bigint IS NOT NULL`,
		`ANALYZE`,
	} {
		args := []any{exp, n}
		if q == "ANALYZE" {
			args = nil
		}
		if _, err := s.Pool().Exec(bg, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, filter, order string }{
		{"span-attr-common", "span.attributes.model LIKE '%claude%'", ""},
		{"span-attr-rare", "span.attributes.model LIKE '%rare%'", ""},
		{"span-attr-rlike", "span.attributes.model RLIKE '^claude'", ""},
		{"feedback-common", "feedback.quality = 'good'", ""},
		{"feedback-rare", "feedback.quality = 'excellent'", ""},
		{"feedback-null", "feedback.missing IS NULL", ""},
		{"feedback-rare-by-exec", "feedback.quality = 'excellent'", "execution_time_ms DESC"},
		{"feedback-common-by-exec", "feedback.quality = 'good'", "execution_time_ms DESC"},
		{"feedback-and-span", "feedback.quality = 'good' AND span.attributes.model LIKE '%claude%'", ""},
	} {
		clauses, err := search.ParseTraceFilter(tc.filter)
		if err != nil {
			b.Fatal(err)
		}
		var order []search.OrderKey
		if tc.order != "" {
			if order, err = search.ParseTraceOrderBy([]string{tc.order}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(tc.name, func(b *testing.B) {
			q := tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses, OrderBy: order, MaxResults: 100}
			var times []time.Duration
			for b.Loop() {
				start := time.Now()
				page, err := s.SearchTraces(bg, q)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
				if len(page.Traces) == 0 {
					b.Fatal("empty page")
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
