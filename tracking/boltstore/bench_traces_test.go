package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"

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
