package storetest

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

func testMetrics(t *testing.T, f Factory) {
	m := func(k string, v float64, ts, step int64) tracking.Metric {
		return tracking.Metric{Key: k, Value: v, Timestamp: ts, Step: step}
	}

	t.Run("Latest", func(t *testing.T) {
		s := open(t, f)
		id := mkRun(t, s, mkExp(t, s, "m"), "r", 0)
		// Latest = max (step, timestamp, value): a later timestamp at a lower step loses.
		logM(t, s, id, m("loss", 1, 100, 5))
		logM(t, s, id, m("loss", 9, 200, 4))
		if l := latest(t, s, id, "loss"); l.Value != 1 || l.Step != 5 {
			t.Fatal(l)
		}
		logM(t, s, id, m("loss", 0.5, 100, 5)) // same step+ts, smaller value loses
		logM(t, s, id, m("loss", 2, 100, 5))   // larger value wins
		if l := latest(t, s, id, "loss"); l.Value != 2 {
			t.Fatal(l)
		}
		logM(t, s, id, m("loss", -7, 101, 5)) // same step, later timestamp wins
		if l := latest(t, s, id, "loss"); l.Value != -7 || l.Timestamp != 101 {
			t.Fatal(l)
		}
		// Within one batch too.
		logM(t, s, id, m("b", 1, 1, 3), m("b", 5, 1, 1), m("b", 2, 1, 3))
		if l := latest(t, s, id, "b"); l.Value != 2 || l.Step != 3 {
			t.Fatal(l)
		}
		// NaN counts as 0: it beats -1 but ties with (and does not replace) 0.
		logM(t, s, id, m("n", -1, 1, 0), m("n", math.NaN(), 1, 0))
		if l := latest(t, s, id, "n"); !math.IsNaN(l.Value) {
			t.Fatal(l)
		}
		logM(t, s, id, m("z", 0, 1, 0), m("z", math.NaN(), 1, 0))
		if l := latest(t, s, id, "z"); l.Value != 0 || math.IsNaN(l.Value) {
			t.Fatal(l)
		}
		// Infinities are clamped, -0 becomes 0.
		logM(t, s, id, m("inf", math.Inf(1), 1, 0), m("ninf", math.Inf(-1), 1, 0), m("negzero", math.Copysign(0, -1), 1, 0))
		if l := latest(t, s, id, "inf"); l.Value != math.MaxFloat64 {
			t.Fatal(l)
		}
		if l := latest(t, s, id, "ninf"); l.Value != -math.MaxFloat64 {
			t.Fatal(l)
		}
		if l := latest(t, s, id, "negzero"); math.Signbit(l.Value) {
			t.Fatal(l)
		}
		if h := history(t, s, id, "inf"); len(h) != 1 || h[0].Value != math.MaxFloat64 {
			t.Fatal(h)
		}
		// The caller's slice is not modified by clamping.
		in := []tracking.Metric{m("c", math.Inf(1), 1, 0)}
		ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: in}))
		if !math.IsInf(in[0].Value, 1) {
			t.Fatal("input mutated")
		}
		// Unknown run for logging.
		wantErr(t, s.LogBatch(bg, missingRun, tracking.Batch{Metrics: in}), tracking.ResourceDoesNotExist,
			"Run with id="+missingRun+" not found")
	})

	t.Run("History", func(t *testing.T) {
		s := open(t, f)
		id := mkRun(t, s, mkExp(t, s, "m"), "r", 0)
		// Exact duplicates dedupe (NaN included); distinct values at one step stay.
		logM(t, s, id, m("dup", 3, 10, 5), m("dup", 3, 10, 5))
		logM(t, s, id, m("dup", 3, 10, 5), m("dup", math.NaN(), 10, 5), m("dup", math.NaN(), 10, 5), m("dup", 4, 10, 5))
		h := history(t, s, id, "dup")
		// NaN sorts as 0 (MLflow's SQL store stores it as 0 with is_nan).
		if len(h) != 3 || !math.IsNaN(h[0].Value) || h[1].Value != 3 || h[2].Value != 4 {
			t.Fatalf("dup history %+v", h)
		}
		// History order: (timestamp, step, value), as MLflow's SQL store
		// orders get_metric_history; negative steps before positive ones.
		logM(t, s, id, m("o", 1, 5, 2), m("o", 1, 1, -3), m("o", 2, 1, 2), m("o", 1, 1, 2), m("o", 7, 1, 1<<40), m("o", 9, -4, 7))
		h = history(t, s, id, "o")
		want := [][2]int64{{7, -4}, {-3, 1}, {2, 1}, {2, 1}, {1 << 40, 1}, {2, 5}}
		if len(h) != len(want) {
			t.Fatal(h)
		}
		for i, w := range want {
			if h[i].Step != w[0] || h[i].Timestamp != w[1] || h[i].Key != "o" {
				t.Fatalf("order %+v", h)
			}
		}
		if h[2].Value != 1 || h[3].Value != 2 {
			t.Fatalf("value order %+v", h)
		}
		// Negative values sort before positive ones, and clamped infinities at the ends.
		logM(t, s, id, m("v", 1, 1, 1), m("v", -2, 1, 1), m("v", math.Inf(1), 1, 1), m("v", math.Inf(-1), 1, 1), m("v", -0.5, 1, 1))
		var vals []float64
		for _, p := range history(t, s, id, "v") {
			vals = append(vals, p.Value)
		}
		if len(vals) != 5 || vals[0] != -math.MaxFloat64 || vals[1] != -2 || vals[2] != -0.5 || vals[3] != 1 || vals[4] != math.MaxFloat64 {
			t.Fatalf("value order %v", vals)
		}
		// Unknown run / key: no chunks, no error.
		called := false
		ok(t, s.MetricHistory(bg, missingRun, "o", 10, func([]tracking.Metric) error { called = true; return nil }))
		ok(t, s.MetricHistory(bg, id, "missing", 10, func([]tracking.Metric) error { called = true; return nil }))
		ok(t, s.MetricHistory(bg, strings.Repeat("x", 300), "o", 10, func([]tracking.Metric) error { called = true; return nil }))
		if called {
			t.Fatal("fn called")
		}
		// The history survives the run's deletion (GetMetricHistory of a deleted run answers).
		ok(t, s.DeleteRun(bg, id))
		if h := history(t, s, id, "o"); len(h) != 6 {
			t.Fatalf("history of a deleted run: %+v", h)
		}
	})

	t.Run("HistoryStreaming", func(t *testing.T) {
		s := open(t, f)
		id := mkRun(t, s, mkExp(t, s, "h"), "r", 0)
		const n = 2500
		batch := make([]tracking.Metric, 0, 1000)
		for i := 0; i < n; i++ {
			batch = append(batch, tracking.Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)})
			if len(batch) == 1000 {
				logM(t, s, id, batch...)
				batch = batch[:0]
			}
		}
		logM(t, s, id, batch...)

		// Concurrent writers append later points while we stream; fn
		// also writes itself, which would deadlock or fail if a
		// transaction were held while fn runs.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					step := int64(n + w*100000 + i)
					if err := s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: "loss", Value: 1, Timestamp: step, Step: step}}}); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		var got []tracking.Metric
		chunks := 0
		err := s.MetricHistory(bg, id, "loss", 300, func(ms []tracking.Metric) error {
			chunks++
			if len(ms) > 300 || len(ms) == 0 {
				t.Errorf("chunk of %d", len(ms))
			}
			got = append(got, ms...)
			return s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "inside", Value: "fn"}}})
		})
		close(stop)
		wg.Wait()
		ok(t, err)
		if len(got) < n || chunks < n/300 {
			t.Fatalf("got %d points in %d chunks", len(got), chunks)
		}
		for i := 0; i < n; i++ {
			if got[i].Step != int64(i) || got[i].Value != float64(i) || got[i].Key != "loss" {
				t.Fatalf("point %d: %+v", i, got[i])
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i].Timestamp < got[i-1].Timestamp || (got[i].Timestamp == got[i-1].Timestamp && got[i].Step <= got[i-1].Step) {
				t.Fatalf("not strictly ordered at %d: %+v %+v", i, got[i-1], got[i])
			}
		}
		// Chunk boundaries inside a run of equal timestamps and steps:
		// every point once, in (timestamp, step, value) order.
		var ties []tracking.Metric
		for i := 0; i < 50; i++ {
			ties = append(ties, tracking.Metric{Key: "tie", Value: float64(49 - i), Timestamp: 7, Step: int64(i % 2)})
		}
		logM(t, s, id, ties...)
		var gotTies []tracking.Metric
		ok(t, s.MetricHistory(bg, id, "tie", 7, func(ms []tracking.Metric) error { gotTies = append(gotTies, ms...); return nil }))
		if len(gotTies) != 50 {
			t.Fatalf("ties: %d points", len(gotTies))
		}
		for i := 1; i < len(gotTies); i++ {
			a, b := gotTies[i-1], gotTies[i]
			if a.Step > b.Step || (a.Step == b.Step && a.Value >= b.Value) {
				t.Fatalf("ties out of order at %d: %+v", i, gotTies)
			}
		}
		// fn errors stop the stream and come back unchanged.
		sentinel := errors.New("stop")
		calls := 0
		err = s.MetricHistory(bg, id, "loss", 100, func([]tracking.Metric) error { calls++; return sentinel })
		if !errors.Is(err, sentinel) || calls != 1 {
			t.Fatal(err, calls)
		}
		// Exactly a multiple of the chunk size: no empty trailing chunk.
		id2 := mkRun(t, s, "0", "r2", 0)
		logM(t, s, id2, tracking.Metric{Key: "k", Step: 1}, tracking.Metric{Key: "k", Step: 2})
		calls = 0
		ok(t, s.MetricHistory(bg, id2, "k", 2, func(ms []tracking.Metric) error { calls++; return nil }))
		if calls != 1 {
			t.Fatal(calls)
		}
		// A key that extends another is not mixed in, nor another run's.
		logM(t, s, id2, tracking.Metric{Key: "kk", Step: 1})
		logM(t, s, id, tracking.Metric{Key: "k", Step: 9})
		if h := history(t, s, id2, "k"); len(h) != 2 {
			t.Fatal(h)
		}
	})
}
