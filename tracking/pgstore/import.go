package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

var (
	_ tracking.ImportTarget        = (*Store)(nil)
	_ tracking.ModelVersionCounter = (*Store)(nil)
)

// IsEmpty implements tracking.ImportTarget: no runs, registry entries,
// logged models, traces or datasets, and no experiment but a pristine
// Default one.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	var empty bool
	err := s.pool.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM runs)
		AND NOT EXISTS (SELECT 1 FROM registered_models)
		AND NOT EXISTS (SELECT 1 FROM logged_models)
		AND NOT EXISTS (SELECT 1 FROM trace_info)
		AND NOT EXISTS (SELECT 1 FROM datasets)
		AND NOT EXISTS (SELECT 1 FROM experiment_tags)
		AND NOT EXISTS (SELECT 1 FROM experiments
			WHERE experiment_id <> 0 OR name <> $1 OR lifecycle_stage <> $2)`,
		tracking.DefaultExperimentName, tracking.LifecycleActive).Scan(&empty)
	return empty, wrapErr("is empty", err)
}

// FinishImport implements tracking.ImportTarget: the experiment id
// sequence moves past the highest imported id.
func (s *Store) FinishImport(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT setval('experiments_id_seq', m) FROM
		(SELECT max(experiment_id) AS m FROM experiments) AS x WHERE m >= 1`)
	return wrapErr("finish import", err)
}

// MaxModelVersion implements tracking.ModelVersionCounter.
func (s *Store) MaxModelVersion(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT GREATEST(m.max_version, COALESCE((SELECT max(version) FROM model_versions v WHERE v.name = m.name), 0))
		FROM registered_models m WHERE m.name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, tracking.Errorf(tracking.ResourceDoesNotExist, "Registered Model with name=%s not found", name)
	}
	return v, wrapErr("max model version", err)
}

func importExpID(id string) (int64, error) {
	n, ok := parseExpID(id)
	if !ok || id == "" {
		return 0, tracking.Errorf(tracking.InvalidParameterValue, "Invalid experiment id %q", id)
	}
	return n, nil
}

// importErr turns a foreign-key violation (the parent was not imported)
// into a client error naming what is missing.
func importErr(what string, err error, parent string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return tracking.Errorf(tracking.ResourceDoesNotExist, "%s: %s does not exist", what, parent)
	}
	return wrapErr(what, err)
}

// tagArrays splits tags into key and value columns, in order.
func tagArrays(tags []tracking.Tag) (keys, vals []string) {
	keys, vals = make([]string, len(tags)), make([]string, len(tags))
	for i, t := range tags {
		keys[i], vals[i] = t.Key, t.Value
	}
	return keys, vals
}

// paramArrays splits params into key and value columns, in order.
func paramArrays(params []tracking.Param) (keys, vals []string) {
	keys, vals = make([]string, len(params)), make([]string, len(params))
	for i, p := range params {
		keys[i], vals[i] = p.Key, p.Value
	}
	return keys, vals
}

// splitNaN returns a stored value and its NaN flag (NaN is stored as 0).
func splitNaN(v float64) (float64, bool) {
	v = tracking.ClampMetricValue(v)
	if math.IsNaN(v) {
		return 0, true
	}
	return v, false
}

func nullable(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// ImportExperiment implements tracking.Importer.
func (s *Store) ImportExperiment(ctx context.Context, e *tracking.Experiment) error {
	id, err := importExpID(e.ExperimentID)
	if err != nil {
		return err
	}
	keys, vals := tagArrays(e.Tags)
	return s.inTx(ctx, "import experiment", func(tx pgx.Tx) error {
		var other int64
		err := tx.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = $1", e.Name).Scan(&other)
		switch {
		case err == nil && other != id:
			return tracking.Errorf(tracking.ResourceAlreadyExists,
				"Experiment(name=%s) already exists with id %d, cannot import it with id %d.", e.Name, other, id)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (experiment_id) DO UPDATE SET name = EXCLUDED.name, artifact_location = EXCLUDED.artifact_location,
				lifecycle_stage = EXCLUDED.lifecycle_stage, creation_time = EXCLUDED.creation_time,
				last_update_time = EXCLUDED.last_update_time`,
			id, e.Name, e.ArtifactLocation, e.LifecycleStage, e.CreationTime, e.LastUpdateTime)
		b.Queue("DELETE FROM experiment_tags WHERE experiment_id = $1", id)
		b.Queue(`INSERT INTO experiment_tags (experiment_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)`, id, keys, vals)
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportRun implements tracking.Importer.
func (s *Store) ImportRun(ctx context.Context, r *tracking.Run) error {
	runID := r.Info.RunID
	if runID == "" {
		runID = r.Info.RunUUID
	}
	if runID == "" || !storable(runID) {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid run id %q", runID)
	}
	expID, err := importExpID(r.Info.ExperimentID)
	if err != nil {
		return err
	}
	pkeys, pvals := paramArrays(r.Data.Params)
	tkeys, tvals := tagArrays(r.Data.Tags)
	n := len(r.Data.Metrics)
	mkeys, mts, msteps, mvals, mnans := make([]string, n), make([]int64, n), make([]int64, n), make([]float64, n), make([]bool, n)
	for i, m := range r.Data.Metrics {
		mkeys[i], mts[i], msteps[i] = m.Key, m.Timestamp, m.Step
		mvals[i], mnans[i] = splitNaN(m.Value)
	}
	var names, digests, stypes, sources, schemas, profiles, tagsJSON []string
	var contexts []*string
	for _, d := range r.Inputs.DatasetInputs {
		tj := []byte("[]")
		var context *string
		if len(d.Tags) > 0 {
			if tj, err = json.Marshal(d.Tags); err != nil {
				return wrapErr("import run", fmt.Errorf("encode input tags: %w", err))
			}
			for _, t := range d.Tags {
				if t.Key == tracking.InputTagContext {
					v := t.Value
					context = &v
				}
			}
		}
		names = append(names, d.Dataset.Name)
		digests = append(digests, d.Dataset.Digest)
		stypes = append(stypes, d.Dataset.SourceType)
		sources = append(sources, d.Dataset.Source)
		schemas = append(schemas, d.Dataset.Schema)
		profiles = append(profiles, d.Dataset.Profile)
		tagsJSON = append(tagsJSON, string(tj))
		contexts = append(contexts, context)
	}
	modelIns := make([]string, len(r.Inputs.ModelInputs))
	for i, m := range r.Inputs.ModelInputs {
		modelIns[i] = m.ModelID
	}
	var outIDs []string
	var outSteps []int64
	if r.Outputs != nil {
		for _, o := range r.Outputs.ModelOutputs {
			outIDs = append(outIDs, o.ModelID)
			outSteps = append(outSteps, o.Step)
		}
	}
	info := r.Info
	err = s.inTx(ctx, "import run", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue("DELETE FROM runs WHERE run_uuid = $1", runID)
		b.Queue(`INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri,
				lifecycle_stage, deleted_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			runID, expID, info.RunName, info.UserID, info.Status, info.StartTime, nullable(info.EndTime),
			info.ArtifactURI, info.LifecycleStage, nullable(info.DeletedTime))
		b.Queue(`INSERT INTO params (run_uuid, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS p(k, v)`,
			runID, pkeys, pvals)
		b.Queue(`INSERT INTO tags (run_uuid, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)`,
			runID, tkeys, tvals)
		b.Queue(`INSERT INTO latest_metrics (run_uuid, key, timestamp, step, value, is_nan)
			SELECT $1, k, t, s, v, n FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::bool[]) AS m(k, t, s, v, n)`,
			runID, mkeys, mts, msteps, mvals, mnans)
		b.Queue(`INSERT INTO datasets (name, digest, source_type, source, schema, profile)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
			ORDER BY 1, 2 ON CONFLICT (name, digest) DO NOTHING`, names, digests, stypes, sources, schemas, profiles)
		b.Queue(`INSERT INTO run_dataset_inputs (run_uuid, name, digest, tags, context)
			SELECT $1, n, d, t::jsonb, c FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS i(n, d, t, c)`,
			runID, names, digests, tagsJSON, contexts)
		b.Queue(`INSERT INTO run_model_inputs (run_uuid, model_id) SELECT $1, unnest($2::text[])`, runID, modelIns)
		b.Queue(`INSERT INTO run_model_outputs (run_uuid, model_id, step)
			SELECT $1, m, s FROM unnest($2::text[], $3::bigint[]) AS o(m, s)`, runID, outIDs, outSteps)
		b.Queue(`INSERT INTO run_import_pending (run_uuid) VALUES ($1)`, runID)
		return tx.SendBatch(ctx, b).Close()
	})
	return importErr("import run "+runID, err, "experiment "+r.Info.ExperimentID)
}

// FinishRunImport implements tracking.Importer.
func (s *Store) FinishRunImport(ctx context.Context, runID string) error {
	var found bool
	err := s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM run_import_pending WHERE run_uuid = $1)
		SELECT EXISTS (SELECT 1 FROM runs WHERE run_uuid = $1)`, runID).Scan(&found)
	if err != nil {
		return wrapErr("finish run import", err)
	}
	if !found {
		return tracking.Errorf(tracking.ResourceDoesNotExist, "Run with id=%s not found", runID)
	}
	return nil
}

// RunImportPending implements tracking.ImportTarget.
func (s *Store) RunImportPending(ctx context.Context, runID string) (bool, error) {
	var pending bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM run_import_pending WHERE run_uuid = $1)`, runID).Scan(&pending)
	return pending, wrapErr("run import pending", err)
}

// ImportMetricHistory implements tracking.Importer. The points go in
// with COPY (a history is copied into a run ImportRun just emptied, so
// points are new); a chunk holding a point twice (or one the run has)
// falls back to an INSERT that skips exact duplicates.
func (s *Store) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	rows := make([][]any, len(points))
	for i, m := range points {
		v, nan := splitNaN(m.Value)
		rows[i] = []any{runID, m.Key, m.Timestamp, m.Step, v, nan}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"metrics"},
		[]string{"run_uuid", "key", "timestamp", "step", "value", "is_nan"}, pgx.CopyFromRows(rows))
	if !isUniqueViolation(err, "") {
		return importErr("import metric history", err, "run "+runID)
	}
	n := len(points)
	keys, ts, steps, vals, nans := make([]string, n), make([]int64, n), make([]int64, n), make([]float64, n), make([]bool, n)
	for i, m := range points {
		keys[i], ts[i], steps[i] = m.Key, m.Timestamp, m.Step
		vals[i], nans[i] = splitNaN(m.Value)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO metrics (run_uuid, key, timestamp, step, value, is_nan)
		SELECT $1, k, t, s, v, n FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::bool[]) AS m(k, t, s, v, n)
		ON CONFLICT DO NOTHING`, runID, keys, ts, steps, vals, nans)
	return importErr("import metric history", err, "run "+runID)
}

// ImportLoggedModel implements tracking.Importer.
func (s *Store) ImportLoggedModel(ctx context.Context, m *tracking.LoggedModel) error {
	id := m.Info.ModelID
	if id == "" || !storable(id) {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid logged model id %q", id)
	}
	expID, err := importExpID(m.Info.ExperimentID)
	if err != nil {
		return err
	}
	tkeys, tvals := tagArrays(m.Info.Tags)
	pkeys, pvals := paramArrays(m.Data.Params)
	n := len(m.Data.Metrics)
	keys, ts, steps, runs, dnames, ddigests := make([]string, n), make([]int64, n), make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	vals, nans := make([]float64, n), make([]bool, n)
	for i, x := range m.Data.Metrics {
		keys[i], ts[i], steps[i], runs[i], dnames[i], ddigests[i] = x.Key, x.Timestamp, x.Step, x.RunID, x.DatasetName, x.DatasetDigest
		vals[i], nans[i] = splitNaN(x.Value)
	}
	info := m.Info
	err = s.inTx(ctx, "import logged model", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue("DELETE FROM logged_models WHERE model_id = $1", id)
		b.Queue(`INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp,
				last_updated_timestamp, status, status_number, model_type, source_run_id, status_message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			id, expID, info.Name, info.ArtifactURI, info.CreationTimestampMs, info.LastUpdatedTimestampMs,
			info.Status, statusNumber(info.Status), info.ModelType, info.SourceRunID, info.StatusMessage)
		b.Queue(`INSERT INTO logged_model_tags (model_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(k, v, i) ORDER BY i`, id, tkeys, tvals)
		b.Queue(`INSERT INTO logged_model_params (model_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS p(k, v, i) ORDER BY i`, id, pkeys, pvals)
		b.Queue(`INSERT INTO logged_model_metrics (model_id, key, timestamp, step, run_id, dataset_name, dataset_digest, value, is_nan)
			SELECT $1, k, t, s, r, dn, dd, v, n FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
				$7::text[], $8::float8[], $9::bool[]) AS m(k, t, s, r, dn, dd, v, n)
			ON CONFLICT DO NOTHING`, id, keys, ts, steps, runs, dnames, ddigests, vals, nans)
		return tx.SendBatch(ctx, b).Close()
	})
	return importErr("import logged model "+id, err, "experiment "+m.Info.ExperimentID)
}

// ImportRegisteredModel implements tracking.Importer.
func (s *Store) ImportRegisteredModel(ctx context.Context, m *tracking.RegisteredModel, maxVersion int64) error {
	tkeys, tvals := tagArrays(m.Tags)
	aliases := make([]string, len(m.Aliases))
	versions := make([]int64, len(m.Aliases))
	for i, a := range m.Aliases {
		v, err := strconv.ParseInt(a.Version, 10, 64)
		if err != nil {
			return tracking.Errorf(tracking.InvalidParameterValue, "Invalid version %q of alias %q of model %q", a.Version, a.Alias, m.Name)
		}
		aliases[i], versions[i] = a.Alias, v
	}
	return s.inTx(ctx, "import registered model", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO registered_models (name, creation_time, last_updated_time, description, max_version)
			VALUES ($1, $2, $3, $4, GREATEST($5::bigint, COALESCE((SELECT max(version) FROM model_versions WHERE name = $1), 0)))
			ON CONFLICT (name) DO UPDATE SET creation_time = EXCLUDED.creation_time,
				last_updated_time = EXCLUDED.last_updated_time, description = EXCLUDED.description,
				max_version = EXCLUDED.max_version`,
			m.Name, m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description, maxVersion)
		b.Queue("DELETE FROM registered_model_tags WHERE name = $1", m.Name)
		b.Queue("DELETE FROM registered_model_aliases WHERE name = $1", m.Name)
		b.Queue(`INSERT INTO registered_model_tags (name, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)`, m.Name, tkeys, tvals)
		b.Queue(`INSERT INTO registered_model_aliases (name, alias, version)
			SELECT $1, a, v FROM unnest($2::text[], $3::bigint[]) AS x(a, v)`, m.Name, aliases, versions)
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportModelVersion implements tracking.Importer.
func (s *Store) ImportModelVersion(ctx context.Context, v *tracking.ModelVersion) error {
	version, err := strconv.ParseInt(v.Version, 10, 64)
	if err != nil || version < 1 {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid version %q of model %q", v.Version, v.Name)
	}
	storage := v.StorageLocation
	if storage == v.Source {
		storage = ""
	}
	tkeys, tvals := tagArrays(v.Tags)
	err = s.inTx(ctx, "import model version", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage,
				description, source, storage_location, run_id, run_link, status, user_id, model_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (name, version) DO UPDATE SET creation_time = EXCLUDED.creation_time,
				last_updated_time = EXCLUDED.last_updated_time, current_stage = EXCLUDED.current_stage,
				description = EXCLUDED.description, source = EXCLUDED.source, storage_location = EXCLUDED.storage_location,
				run_id = EXCLUDED.run_id, run_link = EXCLUDED.run_link, status = EXCLUDED.status,
				user_id = EXCLUDED.user_id, model_id = EXCLUDED.model_id`,
			v.Name, version, v.CreationTimestamp, v.LastUpdatedTimestamp, v.CurrentStage, v.Description, v.Source,
			storage, v.RunID, v.RunLink, v.Status, v.UserID, v.ModelID)
		b.Queue("UPDATE registered_models SET max_version = GREATEST(max_version, $2) WHERE name = $1", v.Name, version)
		b.Queue("DELETE FROM model_version_tags WHERE name = $1 AND version = $2", v.Name, version)
		b.Queue(`INSERT INTO model_version_tags (name, version, key, value)
			SELECT $1, $2, k, x FROM unnest($3::text[], $4::text[]) AS t(k, x)`, v.Name, version, tkeys, tvals)
		return tx.SendBatch(ctx, b).Close()
	})
	return importErr("import model version", err, "registered model "+v.Name)
}

// ImportTrace implements tracking.Importer.
func (s *Store) ImportTrace(ctx context.Context, t *tracking.TraceInfo) error {
	if t.RequestID == "" || !storable(t.RequestID) {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid trace id %q", t.RequestID)
	}
	expID, err := importExpID(t.ExperimentID)
	if err != nil {
		return err
	}
	tkeys, tvals := tagArrays(t.Tags)
	mkeys, mvals := tagArrays(t.RequestMetadata)
	aids := make([]string, len(t.Assessments))
	bodies := make([]string, len(t.Assessments))
	sf := make([]assessmentColumns, len(t.Assessments))
	for i := range t.Assessments {
		body, err := json.Marshal(&t.Assessments[i])
		if err != nil {
			return wrapErr("import trace", fmt.Errorf("encode assessment: %w", err))
		}
		aids[i], bodies[i] = t.Assessments[i].AssessmentID, string(body)
		sf[i] = searchColumns(&t.Assessments[i])
	}
	err = s.inTx(ctx, "import trace", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue("DELETE FROM trace_info WHERE request_id = $1", t.RequestID)
		b.Queue(`INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms, status,
				client_request_id, request_preview, response_preview)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.RequestID, expID, t.TimestampMs, t.ExecutionTimeMs, t.Status, t.ClientRequestID, t.RequestPreview, t.ResponsePreview)
		b.Queue(`INSERT INTO trace_tags (request_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(k, v, i) ORDER BY i`, t.RequestID, tkeys, tvals)
		b.Queue(`INSERT INTO trace_request_metadata (request_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(k, v, i) ORDER BY i`, t.RequestID, mkeys, mvals)
		b.Queue(`INSERT INTO trace_run_links (request_id, run_id)
			SELECT $1, r FROM unnest($2::text[]) WITH ORDINALITY AS l(r, i) ORDER BY i`, t.RequestID, t.LinkedRunIDs)
		b.Queue(`INSERT INTO assessments (request_id, assessment_id, body)
			SELECT $1, a, j::json FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(a, j, i) ORDER BY i`,
			t.RequestID, aids, bodies)
		for i := range sf {
			b.Queue(`UPDATE assessments SET assessment_type = $3, name = $4, value = $5, valid = $6, session_scoped = $7
				WHERE request_id = $1 AND assessment_id = $2`, t.RequestID, aids[i],
				sf[i].typ, sf[i].name, sf[i].value, sf[i].valid, sf[i].scoped)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	return importErr("import trace "+t.RequestID, err, "experiment "+t.ExperimentID)
}
