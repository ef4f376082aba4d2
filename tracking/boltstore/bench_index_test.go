package boltstore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// seedRuns writes n runs into exp straight through the store's write
// functions (indexes included), 500 runs per transaction, with ids in
// creation order as CreateRun issues them: metrics loss
// (uniform in [0, 1)) and acc with points points of history each, params
// lr (10 values) and i, and the run name tag.
func seedRuns(b *testing.B, s *Store, exp string, n, points int) {
	b.Helper()
	expID, _ := parseExpID(exp)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+500, n); done < end; done++ {
				id, err := newOrderedRunID(time.UnixMilli(1700000000000 + int64(done)))
				if err != nil {
					return err
				}
				et := int64(done + 1000)
				rec := &runRecord{ExperimentID: expID, Name: "run-" + strconv.Itoa(done), UserID: "bench",
					Status: tracking.StatusFinished, StartTime: int64(done), EndTime: &et,
					ArtifactURI: "mlflow-artifacts:/" + exp + "/" + id + "/artifacts", Lifecycle: tracking.LifecycleActive}
				if err := putRun(tx, id, rec); err != nil {
					return err
				}
				if err := setTags(tx, id, rec, []tracking.Tag{{Key: tracking.TagRunName, Value: rec.Name}}); err != nil {
					return err
				}
				if err := indexRun(tx, id, rec); err != nil {
					return err
				}
				loss := rng.Float64()
				ms := make([]tracking.Metric, 0, 2*points)
				for p := 0; p < points; p++ {
					ms = append(ms, tracking.Metric{Key: "loss", Value: loss + float64(points-1-p), Timestamp: int64(p), Step: int64(p)},
						tracking.Metric{Key: "acc", Value: 1 - loss, Timestamp: int64(p), Step: int64(p)})
				}
				if err := logMetrics(tx, id, ms); err != nil {
					return err
				}
				if err := logParams(tx, id, []tracking.Param{{Key: "lr", Value: strconv.Itoa(rng.IntN(10))},
					{Key: "i", Value: strconv.Itoa(done)}}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// BenchmarkSearchRunsScale: the filtered+ordered search (metrics.loss
// < 0.5 AND params.lr = '3' ORDER BY metrics.loss DESC, first page of 100)
// and two more shapes, at 10k and 100k runs (1M with MLFLOW_BENCH_1M=1),
// planned over the indexes and as the full scan the store did before.
// p50-ms is the median of the timed calls.
func BenchmarkSearchRunsScale(b *testing.B) {
	sizes := []int{10000, 100000}
	if os.Getenv("MLFLOW_BENCH_1M") != "" {
		sizes = append(sizes, 1000000)
	}
	queries := []struct{ name, filter, order string }{
		{"issue", "metrics.loss < 0.5 and params.lr = '3'", "metrics.loss DESC"},
		{"selective_param", "params.i = '4242'", "metrics.acc DESC"},
		{"order_only", "", "metrics.acc ASC"},
		{"default_order_filter", "params.lr = '7'", ""},
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("runs=%dk", n/1000), func(b *testing.B) { benchSearchScale(b, n, queries) })
	}
}

func benchSearchScale(b *testing.B, n int, queries []struct{ name, filter, order string }) {
	{
		s, _ := openTest(b)
		exp := mkExp(b, s, "big")
		start := time.Now()
		seedRuns(b, s, exp, n, 1)
		b.Logf("seeded %d runs in %v", n, time.Since(start))
		for _, qq := range queries {
			f, err := search.ParseRunFilter(qq.filter)
			ok(b, err)
			var order []string
			if qq.order != "" {
				order = []string{qq.order}
			}
			ob, err := search.ParseRunOrderBy(order)
			ok(b, err)
			q := tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, MaxResults: 100}
			for _, plan := range []string{"indexed", "scan"} {
				b.Run(qq.name+"/"+plan, func(b *testing.B) {
					s.scanSearch = plan == "scan"
					defer func() { s.scanSearch = false }()
					times := make([]time.Duration, 0, b.N)
					cpu0 := cpuTime()
					for i := 0; i < b.N; i++ {
						t0 := time.Now()
						p, err := s.SearchRuns(bg, q)
						times = append(times, time.Since(t0))
						if err != nil || len(p.Runs) == 0 {
							b.Fatal(err, len(p.Runs))
						}
					}
					cpu := cpuTime() - cpu0
					slices.Sort(times)
					b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
				})
			}
		}
		ok(b, s.Close())
	}
}

// cpuTime is the process's user+system CPU time: on a machine shared with
// other work it tells the cost of a search better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
