package pgstore

import (
	"context"
	"errors"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// MLflow 3 logged models (tracking.LoggedModelStore) on the tables
// logged_models, logged_model_tags, logged_model_params,
// logged_model_metrics and run_model_outputs, with the bbolt store's
// semantics and messages (tracking/boltstore/loggedmodels.go).

func errNoLoggedModel(id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Logged model with ID '%s' not found.", id)
}

// childExperiment looks up the experiment a logged model or trace is
// created in, locking it for the transaction, and
// returns its id and artifact location; with active, an experiment that
// is not active is INVALID_PARAMETER_VALUE.
func childExperiment(ctx context.Context, tx dbtx, idStr string, active bool) (int64, string, error) {
	notFound := errNoExperiment(idStr)
	id, ok := parseExpID(idStr)
	if !ok {
		return 0, "", notFound
	}
	// FOR SHARE holds off a concurrent delete (a lifecycle update) until
	// the child is committed; without the active check, KEY SHARE only
	// keeps the row.
	lock := "FOR KEY SHARE"
	if active {
		lock = "FOR SHARE"
	}
	var loc, stage string
	err := tx.QueryRow(ctx, "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = $1 "+lock, id).
		Scan(&loc, &stage)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", notFound
	}
	if err != nil {
		return 0, "", err
	}
	if active && stage != tracking.LifecycleActive {
		return 0, "", errExperimentNotActive(id, stage)
	}
	return id, loc, nil
}

// lockLoggedModel locks a logged model row (mode "" for none); a missing
// model is RESOURCE_DOES_NOT_EXIST.
func lockLoggedModel(ctx context.Context, tx dbtx, id, mode string) error {
	if !storable(id) {
		return errNoLoggedModel(id)
	}
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM logged_models WHERE model_id = $1 "+mode, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoLoggedModel(id)
	}
	return err
}

// upsertLoggedModelTag sets a tag, keeping the position of an existing key.
func upsertLoggedModelTag(ctx context.Context, tx dbtx, id string, t tracking.Tag) error {
	_, err := tx.Exec(ctx, `INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (model_id, key) DO UPDATE SET value = EXCLUDED.value`, id, t.Key, t.Value)
	return err
}

// logLoggedModelParams adds params in order; a key logged before (or
// earlier in params) with another value is refused with MLflow's message.
func logLoggedModelParams(ctx context.Context, tx dbtx, id string, params []tracking.Param) error {
	for _, p := range params {
		var old string
		err := tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (model_id, key) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL
			SELECT value FROM logged_model_params WHERE model_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)`,
			id, p.Key, p.Value).Scan(&old)
		if err != nil {
			return err
		}
		if old != p.Value {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' "+
					"for logged model ID='%s'. Attempted logging new value '%s'.",
				p.Key, old, id, p.Value)
		}
	}
	return nil
}

// statusNumber is a logged model status's proto number (0 for unknown).
func statusNumber(status string) int {
	for i, st := range tracking.LoggedModelStatuses {
		if st == status {
			return i
		}
	}
	return 0
}

const lmColumns = "lm.model_id, lm.experiment_id::text, lm.name, lm.artifact_location, lm.creation_timestamp, " +
	"lm.last_updated_timestamp, lm.status, lm.model_type, lm.source_run_id, lm.status_message"

func scanLoggedModel(row pgx.Row) (*tracking.LoggedModel, error) {
	m := &tracking.LoggedModel{}
	i := &m.Info
	err := row.Scan(&i.ModelID, &i.ExperimentID, &i.Name, &i.ArtifactURI, &i.CreationTimestampMs,
		&i.LastUpdatedTimestampMs, &i.Status, &i.ModelType, &i.SourceRunID, &i.StatusMessage)
	return m, err
}

// fillLoggedModels loads the tags and params (in logging order) and the
// metric points (in the bbolt store's key order) of models.
func fillLoggedModels(ctx context.Context, tx dbtx, models []*tracking.LoggedModel) error {
	if len(models) == 0 {
		return nil
	}
	ids := make([]string, len(models))
	idx := make(map[string]*tracking.LoggedModel, len(models))
	for i, m := range models {
		ids[i] = m.Info.ModelID
		idx[m.Info.ModelID] = m
	}
	for _, kind := range []string{"tags", "params"} {
		rows, err := tx.Query(ctx, "SELECT model_id, key, value FROM logged_model_"+kind+
			" WHERE model_id = ANY($1::text[]) ORDER BY model_id, seq", ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, k, v string
			if err := rows.Scan(&id, &k, &v); err != nil {
				rows.Close()
				return err
			}
			m := idx[id]
			if kind == "tags" {
				m.Info.Tags = append(m.Info.Tags, tracking.Tag{Key: k, Value: v})
			} else {
				m.Data.Params = append(m.Data.Params, tracking.Param{Key: k, Value: v})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `SELECT model_id, key, timestamp, step, run_id, dataset_name, dataset_digest, value, is_nan
		FROM logged_model_metrics WHERE model_id = ANY($1::text[])
		ORDER BY model_id, key, timestamp, step, run_id, dataset_name, dataset_digest, value, is_nan`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var mm tracking.ModelMetric
		var nan bool
		if err := rows.Scan(&mm.ModelID, &mm.Key, &mm.Timestamp, &mm.Step, &mm.RunID, &mm.DatasetName, &mm.DatasetDigest,
			&mm.Value, &nan); err != nil {
			return err
		}
		if nan {
			mm.Value = math.NaN()
		}
		m := idx[mm.ModelID]
		m.Data.Metrics = append(m.Data.Metrics, mm)
	}
	return rows.Err()
}

// readLoggedModel returns a model with its tags, params and metrics.
func readLoggedModel(ctx context.Context, tx dbtx, id string) (*tracking.LoggedModel, error) {
	if !storable(id) {
		return nil, errNoLoggedModel(id)
	}
	m, err := scanLoggedModel(tx.QueryRow(ctx, "SELECT "+lmColumns+" FROM logged_models lm WHERE lm.model_id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoLoggedModel(id)
	}
	if err != nil {
		return nil, err
	}
	if err := fillLoggedModels(ctx, tx, []*tracking.LoggedModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

// CreateLoggedModel implements tracking.LoggedModelStore.
func (s *Store) CreateLoggedModel(ctx context.Context, req tracking.CreateLoggedModel) (*tracking.LoggedModel, error) {
	hex, err := newRunID()
	if err != nil {
		return nil, err
	}
	id := "m-" + hex
	now := s.now()
	var out *tracking.LoggedModel
	err = s.inTx(ctx, "create logged model", func(tx pgx.Tx) error {
		expID, loc, err := childExperiment(ctx, tx, req.ExperimentID, true)
		if err != nil {
			return err
		}
		// The source run is not looked up: MLflow's create_logged_model
		// stores source_run_id as given (the column has no foreign key).
		if _, err := tx.Exec(ctx, `INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
				creation_timestamp, last_updated_timestamp, status, status_number, model_type, source_run_id)
			VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)`,
			id, expID, req.Name, joinURI(loc, "models", id, "artifacts"), now,
			tracking.LoggedModelStatusPending, statusNumber(tracking.LoggedModelStatusPending), req.ModelType, req.SourceRunID); err != nil {
			return err
		}
		for _, t := range req.Tags {
			if err := upsertLoggedModelTag(ctx, tx, id, t); err != nil {
				return err
			}
		}
		if err := logLoggedModelParams(ctx, tx, id, req.Params); err != nil {
			return err
		}
		out, err = readLoggedModel(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// modifyLoggedModel locks a model, applies fn, sets its last update time
// and returns it.
func (s *Store) modifyLoggedModel(ctx context.Context, op, id string, fn func(tx pgx.Tx) error) (*tracking.LoggedModel, error) {
	now := s.now()
	var out *tracking.LoggedModel
	err := s.inTx(ctx, op, func(tx pgx.Tx) error {
		if err := lockLoggedModel(ctx, tx, id, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE logged_models SET last_updated_timestamp = $2 WHERE model_id = $1", id, now); err != nil {
			return err
		}
		var err error
		out, err = readLoggedModel(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetLoggedModel implements tracking.LoggedModelStore.
func (s *Store) GetLoggedModel(ctx context.Context, id string) (*tracking.LoggedModel, error) {
	var out *tracking.LoggedModel
	err := s.readOnly(ctx, "get logged model", func(tx pgx.Tx) error {
		var err error
		out, err = readLoggedModel(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinalizeLoggedModel implements tracking.LoggedModelStore.
func (s *Store) FinalizeLoggedModel(ctx context.Context, id, status string) (*tracking.LoggedModel, error) {
	return s.modifyLoggedModel(ctx, "finalize logged model", id, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE logged_models SET status = $2, status_number = $3 WHERE model_id = $1", id, status, statusNumber(status))
		return err
	})
}

// DeleteLoggedModel implements tracking.LoggedModelStore. Tags, params
// and metric points go with it (ON DELETE CASCADE).
func (s *Store) DeleteLoggedModel(ctx context.Context, id string) error {
	return s.inTx(ctx, "delete logged model", func(tx pgx.Tx) error {
		if !storable(id) {
			return errNoLoggedModel(id)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM logged_models WHERE model_id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoLoggedModel(id)
		}
		return nil
	})
}

// SetLoggedModelTags implements tracking.LoggedModelStore.
func (s *Store) SetLoggedModelTags(ctx context.Context, id string, tags []tracking.Tag) error {
	_, err := s.modifyLoggedModel(ctx, "set logged model tags", id, func(tx pgx.Tx) error {
		for _, t := range tags {
			if err := upsertLoggedModelTag(ctx, tx, id, t); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// DeleteLoggedModelTag implements tracking.LoggedModelStore.
func (s *Store) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	_, err := s.modifyLoggedModel(ctx, "delete logged model tag", id, func(tx pgx.Tx) error {
		n := int64(0)
		if storable(key) {
			tag, err := tx.Exec(ctx, "DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2", id, key)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		}
		if n == 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No tag with key %q found for model with ID %q.", key, id)
		}
		return nil
	})
	return err
}

// LogLoggedModelParams implements tracking.LoggedModelStore.
func (s *Store) LogLoggedModelParams(ctx context.Context, id string, params []tracking.Param) error {
	_, err := s.modifyLoggedModel(ctx, "log logged model params", id, func(tx pgx.Tx) error {
		return logLoggedModelParams(ctx, tx, id, params)
	})
	return err
}

// logModelMetricsTx records metric values of logged models inside a
// LogBatch transaction of run runID, one row per point (exact repeats are
// no-ops), as the bbolt store's logModelMetrics: every model must exist
// (the first missing one is RESOURCE_DOES_NOT_EXIST); values are clamped
// (±Inf, -0) and NaN is stored as 0 plus is_nan.
func (s *Store) logModelMetricsTx(ctx context.Context, tx pgx.Tx, runID string, mm []tracking.ModelMetric) error {
	if len(mm) == 0 {
		return nil
	}
	ids := make([]string, 0, len(mm))
	for _, m := range mm {
		if !storable(m.ModelID) {
			return errNoLoggedModel(m.ModelID)
		}
		ids = append(ids, m.ModelID)
	}
	rows, err := tx.Query(ctx, "SELECT model_id FROM logged_models WHERE model_id = ANY($1::text[]) FOR KEY SHARE", ids)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		have[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	n := len(mm)
	var (
		keys, runs, dnames, ddigests = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		tss, steps                   = make([]int64, n), make([]int64, n)
		vals                         = make([]float64, n)
		nans                         = make([]bool, n)
	)
	for i, m := range mm {
		if !have[m.ModelID] {
			return errNoLoggedModel(m.ModelID)
		}
		v := tracking.ClampMetricValue(m.Value)
		if math.IsNaN(v) {
			v, nans[i] = 0, true
		}
		keys[i], runs[i], dnames[i], ddigests[i] = m.Key, runID, m.DatasetName, m.DatasetDigest
		tss[i], steps[i], vals[i] = m.Timestamp, m.Step, v
	}
	_, err = tx.Exec(ctx, `INSERT INTO logged_model_metrics
			(model_id, key, timestamp, step, run_id, dataset_name, dataset_digest, value, is_nan)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[],
			$8::float8[], $9::bool[])
		ON CONFLICT DO NOTHING`, ids, keys, tss, steps, runs, dnames, ddigests, vals, nans)
	return err
}

// LogOutputs implements tracking.LoggedModelStore.
func (s *Store) LogOutputs(ctx context.Context, runID string, outputs []tracking.ModelOutput) error {
	return s.inTx(ctx, "log outputs", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		for _, o := range outputs {
			if err := lockLoggedModel(ctx, tx, o.ModelID, "FOR KEY SHARE"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3)
				ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = EXCLUDED.step`, runID, o.ModelID, o.Step); err != nil {
				return err
			}
		}
		return nil
	})
}

// runOutputs returns the logged-model outputs (LogOutputs) of the given
// runs, by run id, each list ordered by model id (as the bbolt store lists
// them), for GetRun and SearchRuns.
func (s *Store) runOutputs(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, runIDs []string) (map[string][]tracking.ModelOutput, error) {
	if len(runIDs) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT run_uuid, model_id, step FROM run_model_outputs
		WHERE run_uuid = ANY($1::text[]) ORDER BY run_uuid, model_id`, runIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string][]tracking.ModelOutput)
	for rows.Next() {
		var run string
		var o tracking.ModelOutput
		if err := rows.Scan(&run, &o.ModelID, &o.Step); err != nil {
			return nil, err
		}
		out[run] = append(out[run], o)
	}
	return out, rows.Err()
}
