package boltstore

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// BenchmarkLogBatchCommit: latency of one durable log-batch (10 metrics)
// from a single writer (includes the group-commit window and fsync).
func BenchmarkLogBatchCommit(b *testing.B) {
	s, _ := openTest(b)
	run := mkRun(b, s, "0", "r", 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.LogBatch(bg, run, tracking.Batch{Metrics: tenMetrics(int64(i))}); err != nil {
			b.Fatal(err)
		}
	}
}

// commitCounter is a CommitObserver counting commits, the calls they
// carried and the time they took.
type commitCounter struct{ commits, calls, nanos atomic.Int64 }

func (c *commitCounter) ObserveCommit(calls int, d time.Duration) {
	c.commits.Add(1)
	c.calls.Add(int64(calls))
	c.nanos.Add(int64(d))
}

// parallelWrites runs b.N calls of op spread over writers goroutines
// (op gets the writer and the call number) and reports calls/s, commits/s,
// calls per commit and the bytes of pages written per call (what each
// commit's fsync has to flush).
func parallelWrites(b *testing.B, s *Store, writers int, op func(w int, i int64) error) {
	b.Helper()
	var cc commitCounter
	s.SetCommitObserver(&cc)
	defer s.SetCommitObserver(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	st0 := s.db.Stats()
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
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	st := s.db.Stats()
	secs := b.Elapsed().Seconds()
	d := st.TxStats.Sub(&st0.TxStats)
	b.ReportMetric(float64(d.GetPageAlloc())/1024/float64(b.N), "KB-written/call")
	b.ReportMetric(float64(b.N)/secs, "calls/s")
	b.ReportMetric(float64(cc.commits.Load())/secs, "commits/s")
	if n := cc.commits.Load(); n > 0 {
		b.ReportMetric(float64(cc.calls.Load())/float64(n), "calls/commit")
		// The share of the time a commit was in progress: the rest is the
		// writers' own work and their wait to be scheduled and gathered.
		b.ReportMetric(float64(cc.nanos.Load())/1e9/secs, "committing/s")
		b.ReportMetric(float64(cc.nanos.Load())/1e6/float64(n), "ms/commit")
	}
}

// BenchmarkGroupCommit: throughput of durable log-batches (10 metrics, one
// run per writer) with 1, 8 and 64 concurrent writers.
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 8, 20, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := openTest(b)
			runs := make([]string, writers)
			for i := range runs {
				runs[i] = mkRun(b, s, "0", "r"+strconv.Itoa(i), int64(i))
			}
			parallelWrites(b, s, writers, func(w int, i int64) error {
				return s.LogBatch(bg, runs[w], tracking.Batch{Metrics: tenMetrics(i)})
			})
		})
	}
}

// BenchmarkCreateRunParallel: throughput of durable create-runs (run name
// tag, user and source tags, as MLflow's client sends) into one experiment
// with 1, 8 and 64 concurrent writers.
func BenchmarkCreateRunParallel(b *testing.B) {
	for _, writers := range []int{1, 8, 20, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := openTest(b)
			exp := mkExp(b, s, "runs")
			parallelWrites(b, s, writers, func(w int, i int64) error {
				name := "run-" + strconv.FormatInt(i, 10)
				_, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "u", RunName: name, StartTime: 1700000000000 + i,
					Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}, {Key: "mlflow.user", Value: "u"},
						{Key: "mlflow.source.name", Value: "train.py"}, {Key: "mlflow.source.type", Value: "LOCAL"}}})
				return err
			})
		})
	}
}

// BenchmarkCreateRun: one durable create-run with a run name tag (the
// same benchmark as tracking/pgstore's).
func BenchmarkCreateRun(b *testing.B) {
	s, _ := openTest(b)
	exp := mkExp(b, s, "runs")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mkRun(b, s, exp, "r", int64(i))
	}
}

// seed writes runs straight through the store's internals in one
// transaction (setup only; the public API commits one fsync per call).
func seed(b *testing.B, s *Store, fn func(tx *bolt.Tx) error) {
	b.Helper()
	if err := s.db.Update(fn); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSearchRuns10k: search over 10,000 runs of one experiment with a
// metric filter and a metric order_by, first page of 100.
func BenchmarkSearchRuns10k(b *testing.B) {
	s, _ := openTest(b)
	exp := mkExp(b, s, "big")
	expID, _ := parseExpID(exp)
	seed(b, s, func(tx *bolt.Tx) error {
		for i := 0; i < 10000; i++ {
			id, err := newRunID()
			if err != nil {
				return err
			}
			rec := &runRecord{ExperimentID: expID, Name: "run-" + strconv.Itoa(i), Status: tracking.StatusRunning,
				StartTime: int64(i), ArtifactURI: "mlflow-artifacts:/1/" + id + "/artifacts", Lifecycle: tracking.LifecycleActive}
			if err := putRun(tx, id, rec); err != nil {
				return err
			}
			ms := []tracking.Metric{
				{Key: "acc", Value: float64(i%1000) / 1000, Timestamp: 1, Step: 1},
				{Key: "loss", Value: float64(i), Timestamp: 1, Step: 1},
			}
			if err := logMetrics(tx, id, ms); err != nil {
				return err
			}
			if err := logParams(tx, id, []tracking.Param{{Key: "lr", Value: "0.01"}, {Key: "i", Value: strconv.Itoa(i)}}); err != nil {
				return err
			}
			if err := setTags(tx, id, rec, []tracking.Tag{{Key: tracking.TagRunName, Value: rec.Name}}); err != nil {
				return err
			}
		}
		return nil
	})
	f, err := search.ParseRunFilter("metrics.acc > 0.5")
	if err != nil {
		b.Fatal(err)
	}
	ob, err := search.ParseRunOrderBy([]string{"metrics.acc DESC"})
	if err != nil {
		b.Fatal(err)
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
	// Paging: every page of 100 through all 10,000 runs (one op is the
	// whole walk), so deep pages count as much as the first.
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
	s, _ := openTest(b)
	run := mkRun(b, s, "0", "r", 0)
	seed(b, s, func(tx *bolt.Tx) error {
		ms := make([]tracking.Metric, 0, 1000)
		for i := 0; i < 100000; i++ {
			ms = append(ms, tracking.Metric{Key: "loss", Value: 1 / float64(i+1), Timestamp: int64(i), Step: int64(i)})
			if len(ms) == cap(ms) {
				if err := logMetrics(tx, run, ms); err != nil {
					return err
				}
				ms = ms[:0]
			}
		}
		return nil
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := s.MetricHistory(bg, run, "loss", 25000, func(ms []tracking.Metric) error { n += len(ms); return nil })
		if err != nil || n != 100000 {
			b.Fatal(err, n)
		}
	}
}
