package boltstore

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// seedTraces writes n traces into exp straight through the store's
// record and index functions, 1000 per transaction, shaped like the
// UI's Traces tab load (e2e/browser traces_perf_test.go): previews, a
// trace name and env tag, token-usage metadata, 1 in 50 ERROR.
func seedTraces(b *testing.B, s *Store, exp string, n int) {
	b.Helper()
	expID, _ := parseExpID(exp)
	base := int64(1_700_000_000_000)
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+1000, n); done < end; done++ {
				i := done
				status := tracking.TraceStatusOK
				if i%50 == 0 {
					status = tracking.TraceStatusError
				}
				t := &tracking.TraceInfo{
					RequestID: fmt.Sprintf("tr-%032x", 0x100000+i), ExperimentID: exp,
					TimestampMs: base + int64(i)*2000, ExecutionTimeMs: int64(50 + (i*7919)%5000), Status: status,
					RequestPreview:  fmt.Sprintf(`{"messages": [{"role": "user", "content": "question number %d"}]}`, i),
					ResponsePreview: fmt.Sprintf(`"answer number %d"`, i),
					Tags: []tracking.Tag{{Key: tracking.TraceTagName, Value: []string{"chat", "retrieve", "agent"}[i%3]},
						{Key: "env", Value: []string{"prod", "staging"}[i%2]},
						{Key: tracking.TraceTagArtifactLocation, Value: "mlflow-artifacts:/" + exp + "/traces/x/artifacts"}},
					RequestMetadata: []tracking.Tag{{Key: "mlflow.trace.tokenUsage", Value: fmt.Sprintf(`{"input_tokens": %d, "output_tokens": %d}`, 100+i%50, 20+i%30)}},
				}
				if err := putJSON(tx.Bucket(bTrace), []byte(t.RequestID), t); err != nil {
					return err
				}
				if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, t.RequestID), nil); err != nil {
					return err
				}
				if err := indexTrace(tx, nil, t); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// BenchmarkSearchTracesScale measures one page (100 traces, the UI's
// page) of search_traces over an experiment of n traces, first page and
// a page deep in the results, with the index and with the full scan.
func BenchmarkSearchTracesScale(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		s, err := Open(filepath.Join(b.TempDir(), "mlflow.db"), Options{})
		ok(b, err)
		ok(b, s.EnsureDefaultExperiment(bg, root))
		exp, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "traces", DefaultArtifactRoot: root})
		ok(b, err)
		seedTraces(b, s, exp, n)
		for _, tc := range []struct{ name, filter string }{
			{"default", ""},
			{"asc", ""},
			{"status", "status = 'ERROR'"},
			{"timestamp", fmt.Sprintf("timestamp_ms < %d", int64(1_700_000_000_000)+int64(n))},
			{"tag", "tag.env = 'prod'"},
			{"exec", "execution_time_ms > 4900"},
		} {
			clauses, err := search.ParseTraceFilter(tc.filter)
			ok(b, err)
			for _, mode := range []string{"index", "scan"} {
				b.Run(fmt.Sprintf("n=%d/%s/%s", n, tc.name, mode), func(b *testing.B) {
					useTraceIndex = mode == "index"
					defer func() { useTraceIndex = true }()
					q := tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses, MaxResults: 100}
					if tc.name == "asc" {
						q.OrderBy = []search.OrderKey{{Entity: search.EntityAttribute, Key: "timestamp_ms", Asc: true}}
					}
					for b.Loop() {
						page, err := s.SearchTraces(bg, q)
						ok(b, err)
						if len(page.Traces) == 0 {
							b.Fatal("empty page")
						}
					}
				})
			}
		}
		ok(b, s.Close())
	}
}

// seedTraceExtras gives each of the n traces seedTraces wrote one stored
// span (attribute model: gpt-4o, claude-3 or llama, 1 in 1000 rare-model)
// and one feedback "quality" (good or bad, 1 in 1000 excellent), 1000
// traces per transaction, through the writers' index function.
func seedTraceExtras(b *testing.B, s *Store, n int) {
	b.Helper()
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+1000, n); done < end; done++ {
				i := done
				id := fmt.Sprintf("tr-%032x", 0x100000+i)
				t, err := getTrace(tx, id)
				if err != nil {
					return err
				}
				old := traceIndexCopy(t)
				model, quality := []string{"gpt-4o", "claude-3", "llama"}[i%3], []string{"good", "bad"}[i%2]
				if i%1000 == 7 {
					model, quality = "rare-model", "excellent"
				}
				t.Assessments = []tracking.Assessment{{AssessmentID: fmt.Sprintf("a-%032x", i), AssessmentName: "quality",
					TraceID: id, Valid: true, Feedback: json.RawMessage(`{"value": "` + quality + `"}`)}}
				if err := putJSON(tx.Bucket(bTrace), []byte(id), t); err != nil {
					return err
				}
				if err := indexTrace(tx, old, t); err != nil {
					return err
				}
				sp := tracking.Span{TraceID: id, SpanID: "0000000000000001", Name: "llm", Type: "LLM", Status: "OK",
					StartTimeNs: t.TimestampMs * 1e6, EndTimeNs: (t.TimestampMs + t.ExecutionTimeMs) * 1e6,
					Content: json.RawMessage(fmt.Sprintf(`{"trace_id":"%s","span_id":"AAAAAAAAAAE=","parent_span_id":null,"name":"llm","start_time_unix_nano":%d,"end_time_unix_nano":%d,"events":[],"status":{"code":"STATUS_CODE_OK","message":null},"attributes":{"mlflow.spanType":"\"LLM\"","model":"\"%s\"","mlflow.spanInputs":"{\"q\":\"question number %d\"}"}}`,
						id, t.TimestampMs*1e6, (t.TimestampMs+t.ExecutionTimeMs)*1e6, model, i))}
				if err := putSpan(tx, &sp); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// BenchmarkSearchTracesClauses measures one page (100 traces) of
// search_traces over 100k traces for span.attributes and feedback
// clauses, common and rare, in the default order and by execution time,
// feedback equalities also with the value index off (-namescan: every
// assessment of the name read). Besides ns/op it reports the median
// (p50-ms) of the iterations and the process CPU time per search
// (cpu-ms/op).
func BenchmarkSearchTracesClauses(b *testing.B) {
	const n = 100_000
	s, err := Open(filepath.Join(b.TempDir(), "mlflow.db"), Options{})
	ok(b, err)
	defer func() { _ = s.Close() }()
	ok(b, s.EnsureDefaultExperiment(bg, root))
	exp, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "traces", DefaultArtifactRoot: root})
	ok(b, err)
	seedTraces(b, s, exp, n)
	seedTraceExtras(b, s, n)
	for _, tc := range []struct{ name, filter, order string }{
		{"feedback-common-namescan", "feedback.quality = 'good'", ""},
		{"feedback-rare-namescan", "feedback.quality = 'excellent'", ""},
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
		ok(b, err)
		var order []search.OrderKey
		if tc.order != "" {
			order, err = search.ParseTraceOrderBy([]string{tc.order})
			ok(b, err)
		}
		b.Run(tc.name, func(b *testing.B) {
			q := tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses, OrderBy: order, MaxResults: 100}
			useAsmtValIndex = !strings.HasSuffix(tc.name, "-namescan")
			defer func() { useAsmtValIndex = true }()
			var times []time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				start := time.Now()
				page, err := s.SearchTraces(bg, q)
				ok(b, err)
				times = append(times, time.Since(start))
				if len(page.Traces) == 0 {
					b.Fatal("empty page")
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(len(times)), "cpu-ms/op")
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
