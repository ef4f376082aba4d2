package api

import (
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// callCounter is a boltstore.CommitObserver counting group commits and
// the write calls they carried.
type callCounter struct{ commits, calls atomic.Int64 }

func (c *callCounter) ObserveCommit(calls int, _ time.Duration) {
	c.commits.Add(1)
	c.calls.Add(int64(calls))
}

// txID is the id of the database's last committed write transaction: it
// grows by one with every commit, whichever path made it (group commit or
// a direct bbolt Update), so differences count fsynced commits.
func txID(t *testing.T, db *bolt.DB) int {
	t.Helper()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestWritesCommitOnce: an acknowledged runs/create or runs/log-batch
// request is exactly one bbolt commit (one write call in one transaction,
// so one pair of fsyncs), whatever the request carries; a rejected one
// commits nothing.
func TestWritesCommitOnce(t *testing.T) {
	var st *boltstore.Store
	ts, _ := newTestServer(t, func(o *Options) { st = o.Store.(*boltstore.Store) })
	exp := mkExperiment(t, ts, "commits")
	var cc callCounter
	st.SetCommitObserver(&cc)
	defer st.SetCommitObserver(nil)

	check := func(name string, wantCommits int, do func()) {
		t.Helper()
		tx0, c0, n0 := txID(t, st.DB()), cc.commits.Load(), cc.calls.Load()
		do()
		if got := txID(t, st.DB()) - tx0; got != wantCommits {
			t.Errorf("%s: %d commits, want %d", name, got, wantCommits)
		}
		if got := cc.commits.Load() - c0; got != int64(wantCommits) {
			t.Errorf("%s: %d group commits observed, want %d", name, got, wantCommits)
		}
		if got := cc.calls.Load() - n0; got != int64(wantCommits) {
			t.Errorf("%s: %d write calls committed, want %d", name, got, wantCommits)
		}
	}

	var runID string
	check("create-run without name", 1, func() {
		r := post(t, ts, "runs/create", map[string]any{"experiment_id": exp, "start_time": 1})
		wantStatus(t, r, 200)
		runID = r.json(t)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	})
	check("create-run with name, user and tags", 1, func() {
		wantStatus(t, post(t, ts, "runs/create", map[string]any{
			"experiment_id": exp, "run_name": "r1", "user_id": "u", "start_time": 2,
			"tags": []map[string]string{{"key": "mlflow.user", "value": "u"}, {"key": "mlflow.source.name", "value": "train.py"},
				{"key": "mlflow.source.type", "value": "LOCAL"}, {"key": "team", "value": "a"}},
		}), 200)
	})
	check("create-run in a missing experiment", 0, func() {
		wantError(t, post(t, ts, "runs/create", map[string]any{"experiment_id": "987654", "start_time": 1}),
			404, "RESOURCE_DOES_NOT_EXIST", "")
	})
	check("log-batch of metrics, params and tags", 1, func() {
		wantStatus(t, post(t, ts, "runs/log-batch", map[string]any{
			"run_id":  runID,
			"metrics": []map[string]any{{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}, {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0}},
			"params":  []map[string]string{{"key": "lr", "value": "0.1"}},
			"tags":    []map[string]string{{"key": "mlflow.runName", "value": "renamed"}},
		}), 200)
	})
	check("log-batch to a missing run", 0, func() {
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{
			"run_id": "0123456789abcdef0123456789abcdef", "metrics": []map[string]any{{"key": "loss", "value": 1, "timestamp": 1, "step": 0}},
		}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	})
	check("log-batch with a conflicting param", 0, func() {
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{
			"run_id": runID, "params": []map[string]string{{"key": "lr", "value": "0.2"}},
		}), 400, "INVALID_PARAMETER_VALUE", "")
	})
}
