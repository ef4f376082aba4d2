package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

var _ tracking.GarbageCollector = (*Store)(nil)

const gcRunCols = `run_uuid, experiment_id, artifact_uri, lifecycle_stage, deleted_time`

func scanGCRun(row pgx.Row) (tracking.GCRun, error) {
	var r tracking.GCRun
	var exp int64
	var deleted *int64
	if err := row.Scan(&r.RunID, &exp, &r.ArtifactURI, &r.LifecycleStage, &deleted); err != nil {
		return r, err
	}
	r.ExperimentID = fmtExpID(exp)
	if deleted != nil {
		r.DeletedTime = *deleted
	}
	return r, nil
}

func (s *Store) gcRuns(ctx context.Context, what, sql string, args ...any) ([]tracking.GCRun, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tracking.GCRun, error) { return scanGCRun(row) })
	return out, wrapErr(what, err)
}

// DeletedRuns implements tracking.GarbageCollector.
func (s *Store) DeletedRuns(ctx context.Context) ([]tracking.GCRun, error) {
	return s.gcRuns(ctx, "list deleted runs",
		`SELECT `+gcRunCols+` FROM runs WHERE lifecycle_stage = 'deleted' ORDER BY run_uuid`)
}

// DeletedExperiments implements tracking.GarbageCollector.
func (s *Store) DeletedExperiments(ctx context.Context) ([]tracking.GCExperiment, error) {
	rows, err := s.pool.Query(ctx, `SELECT experiment_id, artifact_location, lifecycle_stage, last_update_time
		FROM experiments WHERE lifecycle_stage = 'deleted' ORDER BY experiment_id`)
	if err != nil {
		return nil, wrapErr("list deleted experiments", err)
	}
	out, err := pgx.CollectRows(rows, scanGCExp)
	return out, wrapErr("list deleted experiments", err)
}

func scanGCExp(row pgx.CollectableRow) (tracking.GCExperiment, error) {
	var e tracking.GCExperiment
	var id int64
	err := row.Scan(&id, &e.ArtifactLocation, &e.LifecycleStage, &e.LastUpdateTime)
	e.ExperimentID = fmtExpID(id)
	return e, err
}

// GCRun implements tracking.GarbageCollector.
func (s *Store) GCRun(ctx context.Context, runID string) (tracking.GCRun, error) {
	if runID == "" || len(runID) > 255 || !storable(runID) {
		return tracking.GCRun{}, errRunNotFound(runID)
	}
	r, err := scanGCRun(s.pool.QueryRow(ctx, `SELECT `+gcRunCols+` FROM runs WHERE run_uuid = $1`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errRunNotFound(runID)
	}
	return r, wrapErr("get run", err)
}

// GCExperiment implements tracking.GarbageCollector.
func (s *Store) GCExperiment(ctx context.Context, idStr string) (tracking.GCExperiment, error) {
	id, ok := parseExpID(idStr)
	if !ok {
		return tracking.GCExperiment{}, errNoExperiment(idStr)
	}
	rows, err := s.pool.Query(ctx, `SELECT experiment_id, artifact_location, lifecycle_stage, last_update_time
		FROM experiments WHERE experiment_id = $1`, id)
	if err != nil {
		return tracking.GCExperiment{}, wrapErr("get experiment", err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanGCExp)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, errNoExperiment(idStr)
	}
	return e, wrapErr("get experiment", err)
}

// ExperimentRuns implements tracking.GarbageCollector.
func (s *Store) ExperimentRuns(ctx context.Context, idStr string) ([]tracking.GCRun, error) {
	e, err := s.GCExperiment(ctx, idStr)
	if err != nil {
		return nil, err
	}
	id, _ := parseExpID(e.ExperimentID)
	return s.gcRuns(ctx, "list experiment runs",
		`SELECT `+gcRunCols+` FROM runs WHERE experiment_id = $1 ORDER BY start_time DESC, run_uuid`, id)
}

// HardDeleteRun implements tracking.GarbageCollector. The run's params,
// tags, metrics, inputs and outputs go by ON DELETE CASCADE.
func (s *Store) HardDeleteRun(ctx context.Context, runID string) error {
	if runID == "" || len(runID) > 255 || !storable(runID) {
		return errRunNotFound(runID)
	}
	return s.inTx(ctx, "hard delete run", func(tx pgx.Tx) error {
		var lc string
		err := tx.QueryRow(ctx, `SELECT lifecycle_stage FROM runs WHERE run_uuid = $1 FOR UPDATE`, runID).Scan(&lc)
		if errors.Is(err, pgx.ErrNoRows) {
			return errRunNotFound(runID)
		}
		if err != nil {
			return err
		}
		if lc != tracking.LifecycleDeleted {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Run %s is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.", runID)
		}
		_, err = tx.Exec(ctx, `DELETE FROM runs WHERE run_uuid = $1`, runID)
		return err
	})
}

// HardDeleteExperiment implements tracking.GarbageCollector. Its runs are
// deleted first (runs reference experiments without a cascade, so that a
// plain experiment delete can never take runs with it); tags, logged
// models and traces go by ON DELETE CASCADE.
func (s *Store) HardDeleteExperiment(ctx context.Context, idStr string) error {
	return s.inTx(ctx, "hard delete experiment", func(tx pgx.Tx) error {
		id, lc, err := expLocked(ctx, tx, idStr, "FOR UPDATE")
		if err != nil {
			return err
		}
		if lc != tracking.LifecycleDeleted {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Experiments ['%s'] are not in the deleted lifecycle stage. Only experiments in the deleted lifecycle stage can be hard-deleted.", idStr)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE experiment_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM experiments WHERE experiment_id = $1`, id)
		return err
	})
}
