package boltstore

import (
	"fmt"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// fillRun logs something in every per-run bucket of a run.
func fillRun(t testing.TB, s *Store, exp, runID string, points int) {
	t.Helper()
	var ms []tracking.Metric
	for i := 0; i < points; i++ {
		ms = append(ms, tracking.Metric{Key: "loss", Value: float64(i), Timestamp: int64(1000 + i), Step: int64(i)})
	}
	ok(t, s.LogBatch(bg, runID, tracking.Batch{Metrics: ms,
		Params: []tracking.Param{{Key: "lr", Value: "0.1"}}, Tags: []tracking.Tag{{Key: "t", Value: "v"}}}))
	m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m", SourceRunID: runID})
	ok(t, err)
	ok(t, s.LogInputs(bg, runID, []tracking.DatasetInput{{Dataset: tracking.Dataset{Name: "ds", Digest: "d1", SourceType: "local", Source: "{}"}}},
		[]tracking.ModelInput{{ModelID: m.Info.ModelID}}))
	ok(t, s.LogOutputs(bg, runID, []tracking.ModelOutput{{ModelID: m.Info.ModelID, Step: 1}}))
}

// runKeys counts the keys that belong to runID in the per-run buckets and
// the run's record.
func runKeys(t testing.TB, s *Store, runID string) int {
	t.Helper()
	n := 0
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		rp, _ := runPrefix(nil, runID)
		for _, b := range [][]byte{bParam, bTag, bLatest, bHist, bInput, bModelIn} {
			n += len(prefixKeys(tx.Bucket(b), rp))
		}
		n += len(prefixKeys(tx.Bucket(bRunOutput), appendStr(nil, runID)))
		if tx.Bucket(bRun).Get([]byte(runID)) != nil {
			n++
		}
		c := tx.Bucket(bExpRun).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if _, _, id, _ := splitExpRunKey(k); id == runID {
				n++
			}
		}
		return nil
	}))
	return n
}

func wantCode(t testing.TB, err error, code tracking.ErrorCode) {
	t.Helper()
	te, isTE := tracking.AsError(err)
	if !isTE || te.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func TestHardDeleteRun(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "e")
	dead, alive := mkRun(t, s, exp, "dead", 1), mkRun(t, s, exp, "alive", 2)
	fillRun(t, s, exp, dead, 10)
	fillRun(t, s, exp, alive, 10)
	before := runKeys(t, s, alive)
	if runKeys(t, s, dead) < 8 {
		t.Fatalf("fixture: run has only %d keys", runKeys(t, s, dead))
	}

	wantCode(t, s.HardDeleteRun(bg, alive), tracking.InvalidParameterValue)
	wantCode(t, s.HardDeleteRun(bg, "nope"), tracking.ResourceDoesNotExist)
	ok(t, s.DeleteRun(bg, dead))
	del, err := s.DeletedRuns(bg)
	ok(t, err)
	if len(del) != 1 || del[0].RunID != dead || del[0].DeletedTime == 0 || del[0].ArtifactURI == "" {
		t.Fatalf("DeletedRuns = %+v", del)
	}
	ok(t, s.HardDeleteRun(bg, dead))
	if n := runKeys(t, s, dead); n != 0 {
		t.Fatalf("%d keys of the hard-deleted run remain", n)
	}
	if _, err := s.GetRun(bg, dead); err == nil {
		t.Fatal("GetRun of a hard-deleted run succeeded")
	}
	if n := runKeys(t, s, alive); n != before {
		t.Fatalf("the active run lost keys: %d, had %d", n, before)
	}
	r, err := s.GetRun(bg, alive)
	ok(t, err)
	if len(r.Data.Metrics) != 1 || len(r.Data.Params) != 1 || len(r.Inputs.DatasetInputs) != 1 {
		t.Fatalf("active run changed: %+v", r.Data)
	}
	// The shared dataset stays: the active run still uses it.
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDataset).Stats().KeyN != 1 {
			t.Error("dataset registry changed")
		}
		return nil
	}))
}

func TestHardDeleteExperiment(t *testing.T) {
	s, _ := openTest(t)
	exp, keep := mkExp(t, s, "gone"), mkExp(t, s, "kept")
	r1, r2, k1 := mkRun(t, s, exp, "a", 1), mkRun(t, s, exp, "b", 2), mkRun(t, s, keep, "c", 3)
	fillRun(t, s, exp, r1, 5)
	fillRun(t, s, exp, r2, 5)
	fillRun(t, s, keep, k1, 5)
	ok(t, s.SetExperimentTag(bg, exp, tracking.Tag{Key: "k", Value: "v"}))
	tr, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: exp, TimestampMs: 1})
	ok(t, err)
	ktr, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: keep, TimestampMs: 1})
	ok(t, err)

	wantCode(t, s.HardDeleteExperiment(bg, exp), tracking.InvalidParameterValue)
	ok(t, s.DeleteExperiment(bg, exp))
	runs, err := s.ExperimentRuns(bg, exp)
	ok(t, err)
	if len(runs) != 2 || runs[0].LifecycleStage != tracking.LifecycleDeleted {
		t.Fatalf("ExperimentRuns = %+v", runs)
	}
	exps, err := s.DeletedExperiments(bg)
	ok(t, err)
	if len(exps) != 1 || exps[0].ExperimentID != exp || exps[0].LastUpdateTime == 0 {
		t.Fatalf("DeletedExperiments = %+v", exps)
	}
	ok(t, s.HardDeleteExperiment(bg, exp))

	for _, id := range []string{r1, r2} {
		if n := runKeys(t, s, id); n != 0 {
			t.Fatalf("%d keys of run %s remain", n, id)
		}
	}
	wantCode(t, func() error { _, err := s.GetExperiment(bg, exp); return err }(), tracking.ResourceDoesNotExist)
	if _, err := s.GetTraceInfo(bg, tr.RequestID); err == nil {
		t.Fatal("trace of the hard-deleted experiment survived")
	}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		id, _ := parseExpID(exp)
		for _, b := range [][]byte{bExpTag, bExpRun, bExpLoggedModel, bExpTrace} {
			if n := len(prefixKeys(tx.Bucket(b), u64(id))); n != 0 {
				t.Errorf("%d keys left in %s", n, b)
			}
		}
		if n := tx.Bucket(bLoggedModel).Stats().KeyN; n != 1 {
			t.Errorf("%d logged models, want the kept experiment's 1", n)
		}
		return nil
	}))
	// The name is free again.
	if _, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "gone", DefaultArtifactRoot: root}); err != nil {
		t.Fatalf("re-creating the name: %v", err)
	}
	// The other experiment is untouched.
	if n := runKeys(t, s, k1); n < 8 {
		t.Fatalf("kept run has %d keys", n)
	}
	if _, err := s.GetTraceInfo(bg, ktr.RequestID); err != nil {
		t.Fatal(err)
	}
}

// TestGCFreedPagesReused: a create/log/delete/hard-delete loop stops
// growing the file once bbolt's free pages absorb the churn.
func TestGCFreedPagesReused(t *testing.T) {
	s, path := openTest(t)
	exp := mkExp(t, s, "churn")
	round := func(i int) {
		id := mkRun(t, s, exp, fmt.Sprint("r", i), int64(i))
		fillRun(t, s, exp, id, 2000)
		ok(t, s.DeleteRun(bg, id))
		ok(t, s.HardDeleteRun(bg, id))
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		ok(t, err)
		return fi.Size()
	}
	for i := 0; i < 20; i++ {
		round(i)
	}
	warm := size()
	for i := 20; i < 120; i++ {
		round(i)
	}
	if got := size(); got > warm {
		t.Fatalf("the file grew from %d to %d bytes under churn: freed pages are not reused", warm, got)
	}
	if n := runKeys(t, s, "r119"); n != 0 {
		t.Fatal("leftover keys")
	}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bHist).Stats().KeyN != 0 {
			t.Error("metric history left behind")
		}
		return nil
	}))
}
