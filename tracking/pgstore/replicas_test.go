package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// openReplicas returns two stores with their own pools on one fresh
// database: two replicas of the tracking server.
func openReplicas(t *testing.T) (*Store, *Store) {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	var out [2]*Store
	for i := range out {
		s, err := Open(context.Background(), uri, pgdb.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	ok(t, out[0].EnsureDefaultExperiment(bg, root))
	ok(t, out[1].EnsureDefaultExperiment(bg, root)) // the second start is a no-op
	return out[0], out[1]
}

// race runs fa and fb at the same moment (as near as goroutines get).
func race(fa, fb func()) {
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(2)
	for _, f := range []func(){fa, fb} {
		go func(f func()) {
			defer done.Done()
			start.Wait()
			f()
		}(f)
	}
	start.Done()
	done.Wait()
}

func TestReplicasCreateExperimentSameName(t *testing.T) {
	a, b := openReplicas(t)
	ids := map[string]bool{}
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("exp-%d", i)
		var ida, idb string
		var erra, errb error
		race(func() {
			ida, erra = a.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: root})
		}, func() {
			idb, errb = b.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: root})
		})
		if (erra == nil) == (errb == nil) {
			t.Fatalf("round %d: want one winner, got %v / %v", i, erra, errb)
		}
		winner, loserErr := ida, errb
		if erra != nil {
			winner, loserErr = idb, erra
		}
		wantErr(t, loserErr, tracking.ResourceAlreadyExists, "Experiment(name="+name+") already exists.")
		if ids[winner] {
			t.Fatalf("experiment id %s issued twice", winner)
		}
		ids[winner] = true
		for _, s := range []*Store{a, b} {
			e, err := s.GetExperimentByName(bg, name)
			ok(t, err)
			if e.ExperimentID != winner || e.ArtifactLocation != root+winner {
				t.Fatalf("%+v, winner %s", e, winner)
			}
		}
	}
}

func TestReplicasLogParamDifferentValues(t *testing.T) {
	a, b := openReplicas(t)
	run := mkRun(t, a, "0", "r", 0)
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("p%d", i)
		var erra, errb error
		log := func(s *Store, v string) error {
			if i%2 == 0 {
				return s.LogParam(bg, run, tracking.Param{Key: key, Value: v})
			}
			return s.LogBatch(bg, run, tracking.Batch{Params: []tracking.Param{{Key: key, Value: v}, {Key: "shared-" + key, Value: "same"}}})
		}
		race(func() { erra = log(a, "from-a") }, func() { errb = log(b, "from-b") })
		if (erra == nil) == (errb == nil) {
			t.Fatalf("round %d: want one winner, got %v / %v", i, erra, errb)
		}
		winner, loser, loserErr := "from-a", "from-b", errb
		if erra != nil {
			winner, loser, loserErr = "from-b", "from-a", erra
		}
		if i%2 == 0 {
			wantErr(t, loserErr, tracking.InvalidParameterValue, fmt.Sprintf(
				"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
				key, winner, run, loser))
		} else {
			wantErr(t, loserErr, tracking.InvalidParameterValue, fmt.Sprintf(
				"Changing param values is not allowed. Params were already logged='[{'key': '%s', 'old_value': '%s', 'new_value': '%s'}]' for run ID='%s'.",
				key, winner, loser, run))
		}
		r, err := b.GetRun(bg, run)
		ok(t, err)
		got := map[string]string{}
		for _, p := range r.Data.Params {
			got[p.Key] = p.Value
		}
		if got[key] != winner {
			t.Fatalf("stored %q, winner %q", got[key], winner)
		}
	}
}

func TestReplicasDeleteRestoreCascadeAtomic(t *testing.T) {
	a, b := openReplicas(t)
	exp := mkExp(t, a, "cascade")
	for i := 0; i < 40; i++ {
		mkRun(t, b, exp, fmt.Sprintf("r%d", i), int64(i))
	}
	// Readers must never see the experiment and its runs disagree: the
	// cascade commits with the experiment's change.
	mismatch := func(s *Store) int {
		var n int
		ok(t, s.pool.QueryRow(bg, `SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id)
			WHERE e.experiment_id = $1 AND r.lifecycle_stage <> e.lifecycle_stage`, mustID(t, exp)).Scan(&n))
		return n
	}
	var flippers, creator sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 3)
	flip := func(s *Store) {
		defer flippers.Done()
		for i := 0; i < 25; i++ {
			for _, f := range []func(context.Context, string) error{s.DeleteExperiment, s.RestoreExperiment} {
				// The other replica may have flipped it already: that is
				// MLflow's not-found for the wrong stage.
				if err := f(bg, exp); err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					errs <- err
					return
				}
			}
		}
	}
	flippers.Add(2)
	go flip(a)
	go flip(b)
	created, refused := 0, 0
	creator.Add(1)
	go func() {
		defer creator.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := a.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, RunName: fmt.Sprintf("new%d", i)})
			switch {
			case err == nil:
				created++
			case tracking.IsCode(err, tracking.InvalidParameterValue):
				refused++ // the experiment was deleted at that moment
			default:
				errs <- err
				return
			}
			if n := mismatch(b); n != 0 {
				errs <- fmt.Errorf("reader saw %d runs out of step with their experiment", n)
				return
			}
		}
	}()
	flippers.Wait()
	close(stop)
	creator.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := mismatch(a); n != 0 {
		t.Fatalf("%d runs out of step", n)
	}
	t.Logf("%d runs created, %d refused during the flips", created, refused)
}

func mustID(t *testing.T, id string) int64 {
	t.Helper()
	n, ok := parseExpID(id)
	if !ok {
		t.Fatal(id)
	}
	return n
}

// Both replicas log points of one metric and append to the model history
// of one run at once: every point lands, the latest value is the greatest,
// and no history append is lost.
func TestReplicasConcurrentWritesToOneRun(t *testing.T) {
	a, b := openReplicas(t)
	run := mkRun(t, a, "0", "r", 0)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func(w int, s *Store) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				step := int64(i*2 + w)
				if err := s.LogBatch(bg, run, tracking.Batch{
					Metrics: []tracking.Metric{{Key: "m", Value: float64(step), Timestamp: 1, Step: step}},
					Tags:    []tracking.Tag{{Key: fmt.Sprintf("w%d", w), Value: fmt.Sprint(i)}},
				}); err != nil {
					errs <- err
				}
				if err := s.AppendModelHistory(bg, run, []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i))); err != nil {
					errs <- err
				}
			}
		}(w, s)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if h := history(t, a, run, "m"); len(h) != 2*n {
		t.Fatalf("%d points", len(h))
	}
	if l := latest(t, b, run, "m"); l.Step != 2*n-1 || l.Value != 2*n-1 {
		t.Fatal(l)
	}
	r, err := a.GetRun(bg, run)
	ok(t, err)
	var list []json.RawMessage
	ok(t, json.Unmarshal([]byte(tagMap(r.Data.Tags)[tracking.TagLogModelHistory]), &list))
	if len(list) != 2*n {
		t.Fatalf("%d history entries", len(list))
	}
}
