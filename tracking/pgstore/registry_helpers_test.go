package pgstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Helpers of the registry, logged model and trace tests. Experiments and
// runs are made with plain SQL so that these tests do not depend on the
// experiment and run code.

var regCtx = context.Background()

func regOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func regWantErr(t testing.TB, err error, code tracking.ErrorCode, msg string) {
	t.Helper()
	e, ok := tracking.AsError(err)
	if !ok {
		t.Fatalf("want %s error %q, got %v", code, msg, err)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, e.Code, e.Message)
	}
}

// regTwoStores returns two stores (two replicas) on one fresh database,
// each with its own pool.
func regTwoStores(t testing.TB) (*Store, *Store) {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	var out [2]*Store
	for i := range out {
		s, err := Open(regCtx, uri, pgdb.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// regClock makes s's clock tick 1 ms per call from start.
func regClock(s *Store, start int64) {
	var clock atomic.Int64
	clock.Store(start)
	s.now = func() int64 { return clock.Add(1) }
}

// regExp inserts an active experiment and returns its id.
func regExp(t testing.TB, s *Store, name string) string {
	t.Helper()
	var id int64
	err := s.Pool().QueryRow(regCtx, `INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
		VALUES (nextval('experiments_id_seq'), $1, 'mlflow-artifacts:/' || $1, 0, 0) RETURNING experiment_id`, name).Scan(&id)
	regOK(t, err)
	return strconv.FormatInt(id, 10)
}

// regSetExpStage sets an experiment's lifecycle stage.
func regSetExpStage(t testing.TB, s *Store, exp, stage string) {
	t.Helper()
	_, err := s.Pool().Exec(regCtx, "UPDATE experiments SET lifecycle_stage = $2 WHERE experiment_id = $1::bigint", exp, stage)
	regOK(t, err)
}

// regRun inserts an active run and returns its id.
func regRun(t testing.TB, s *Store, exp string) string {
	t.Helper()
	id, err := newRunID()
	regOK(t, err)
	_, err = s.Pool().Exec(regCtx, `INSERT INTO runs (run_uuid, experiment_id, status, start_time, artifact_uri)
		VALUES ($1, $2::bigint, 'RUNNING', 1, 'mlflow-artifacts:/r')`, id, exp)
	regOK(t, err)
	return id
}

// regLogModelMetrics records model metrics as LogBatch does, in a
// transaction of its own.
func regLogModelMetrics(s *Store, runID string, mm []tracking.ModelMetric) error {
	return s.inTx(regCtx, "log model metrics", func(tx pgx.Tx) error {
		return s.logModelMetricsTx(regCtx, tx, runID, mm)
	})
}
