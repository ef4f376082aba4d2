package pgstore

// Benchmarks named as tracking/boltstore's (plus BenchmarkCreateRun), so
// the two backends compare line by line:
//
//	go test -run '^$' -bench . ./tracking/boltstore/ ./tracking/pgstore/

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func tenMetrics(step int64) []tracking.Metric {
	ms := make([]tracking.Metric, 10)
	for i := range ms {
		ms[i] = tracking.Metric{Key: "m" + strconv.Itoa(i), Value: float64(step) * 0.5, Timestamp: 1700000000000 + step, Step: step}
	}
	return ms
}

// BenchmarkLogBatchCommit: latency of one committed log-batch (10
// metrics) from a single writer.
func BenchmarkLogBatchCommit(b *testing.B) {
	s := openCore(b)
	run := mkRun(b, s, "0", "r", 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.LogBatch(bg, run, tracking.Batch{Metrics: tenMetrics(int64(i))}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGroupCommit: throughput of committed log-batches (10 metrics,
// one run per writer) with 1, 8 and 64 concurrent writers (the bbolt
// store's name; here every writer commits its own transaction).
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openCore(b)
			runs := make([]string, writers)
			for i := range runs {
				runs[i] = mkRun(b, s, "0", "r"+strconv.Itoa(i), int64(i))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := s.LogBatch(bg, runs[w], tracking.Batch{Metrics: tenMetrics(i)}); err != nil {
							b.Error(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
		})
	}
}

// BenchmarkCreateRun: one create-run with a run name tag.
func BenchmarkCreateRun(b *testing.B) {
	s := openCore(b)
	exp := mkExp(b, s, "runs")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mkRun(b, s, exp, "r", int64(i))
	}
}

// seedRuns writes n runs with metrics acc and loss, params lr and i and the
// run name tag straight with SQL (setup only), as the bbolt benchmark
// seeds through its internals.
func seedRuns(b *testing.B, s *Store, exp string, n int) {
	b.Helper()
	id, _ := parseExpID(exp)
	_, err := s.pool.Exec(bg, `
		WITH r AS (
			INSERT INTO runs (run_uuid, experiment_id, name, status, start_time, artifact_uri, lifecycle_stage)
			SELECT md5(i::text), $1, 'run-' || i, 'RUNNING', i, 'mlflow-artifacts:/1/' || md5(i::text) || '/artifacts', 'active'
			FROM generate_series(0, $2 - 1) AS i
			RETURNING run_uuid, start_time AS i, name),
		m AS (
			INSERT INTO latest_metrics (run_uuid, key, timestamp, step, value)
			SELECT run_uuid, 'acc', 1, 1, (i % 1000) / 1000.0 FROM r
			UNION ALL SELECT run_uuid, 'loss', 1, 1, i FROM r),
		h AS (
			INSERT INTO metrics (run_uuid, key, timestamp, step, value)
			SELECT run_uuid, 'acc', 1, 1, (i % 1000) / 1000.0 FROM r
			UNION ALL SELECT run_uuid, 'loss', 1, 1, i FROM r),
		p AS (
			INSERT INTO params (run_uuid, key, value)
			SELECT run_uuid, 'lr', '0.01' FROM r UNION ALL SELECT run_uuid, 'i', i::text FROM r)
		INSERT INTO tags (run_uuid, key, value) SELECT run_uuid, 'mlflow.runName', name FROM r`, id, n)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(bg, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSearchRuns10k: search over 10,000 runs of one experiment with a
// metric filter and a metric order_by, first page of 100; the default
// order; and walks through all pages. With -v it logs the plan of the
// filtered, ordered query.
func BenchmarkSearchRuns10k(b *testing.B) {
	s := openCore(b)
	exp := mkExp(b, s, "big")
	seedRuns(b, s, exp, 10000)
	f, err := search.ParseRunFilter("metrics.acc > 0.5")
	if err != nil {
		b.Fatal(err)
	}
	ob, err := search.ParseRunOrderBy([]string{"metrics.acc DESC"})
	if err != nil {
		b.Fatal(err)
	}
	if testing.Verbose() {
		explain(b, s, exp, f, ob)
		explain(b, s, exp, nil, nil)
	}
	b.Run("filter+order_by", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, MaxResults: 100})
			if err != nil || len(p.Runs) != 100 || p.NextPageToken == "" {
				b.Fatal(err, len(p.Runs))
			}
		}
	})
	b.Run("default_order", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 100})
			if err != nil || len(p.Runs) != 100 {
				b.Fatal(err)
			}
		}
	})
	walk := func(b *testing.B, q tracking.RunQuery, want int) {
		for i := 0; i < b.N; i++ {
			n, pages := 0, 0
			q.PageToken = ""
			for {
				p, err := s.SearchRuns(bg, q)
				if err != nil {
					b.Fatal(err)
				}
				n += len(p.Runs)
				pages++
				if p.NextPageToken == "" {
					break
				}
				q.PageToken = p.NextPageToken
			}
			if n != want {
				b.Fatal(n, pages)
			}
		}
	}
	b.Run("paging_default_order", func(b *testing.B) {
		walk(b, tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 100}, 10000)
	})
	ob2, err := search.ParseRunOrderBy([]string{"metrics.loss DESC"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("paging_order_by", func(b *testing.B) {
		walk(b, tracking.RunQuery{ExperimentIDs: []string{exp}, OrderBy: ob2, MaxResults: 100}, 10000)
	})
}

// BenchmarkMetricHistory100k: stream a 100,000-point history in chunks of
// 25,000 (the Python client's page size).
func BenchmarkMetricHistory100k(b *testing.B) {
	s := openCore(b)
	run := mkRun(b, s, "0", "r", 0)
	ms := make([]tracking.Metric, 0, 1000)
	for i := 0; i < 100000; i++ {
		ms = append(ms, tracking.Metric{Key: "loss", Value: 1 / float64(i+1), Timestamp: int64(i), Step: int64(i)})
		if len(ms) == cap(ms) {
			if err := s.LogBatch(bg, run, tracking.Batch{Metrics: ms}); err != nil {
				b.Fatal(err)
			}
			ms = ms[:0]
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := s.MetricHistory(bg, run, "loss", 25000, func(ms []tracking.Metric) error { n += len(ms); return nil })
		if err != nil || n != 100000 {
			b.Fatal(err, n)
		}
	}
}

// explain logs the plan of a first-page search.
func explain(b *testing.B, s *Store, exp string, f []search.Clause, ob []search.OrderKey) {
	id, _ := parseExpID(exp)
	sql, args := s.runSearchSQL([]int64{id}, tracking.ActiveOnly, f, ob, &search.Cursor{}, 100)
	rows, err := s.pool.Query(bg, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		b.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	rows.Close()
	b.Logf("%s\n%s", sql, strings.Join(plan, "\n"))
}
