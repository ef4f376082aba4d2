// Package sqlsource reads MLflow's SQL schema (mlflow/store/tracking/
// dbmodels/models.py and model_registry/dbmodels/models.py) from a SQLite
// database, through a pure-Go driver, as an mlflowimport.Source. It
// works across the Alembic revisions from MLflow 2.0 on by reading which
// columns each table has (PRAGMA table_info) rather than trusting the
// revision: columns added over time (experiments' creation_time, runs'
// deleted_time, model versions' storage_location, ...) are read when
// present.
package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", no cgo

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/artifactsrc"
)

// Source is an MLflow SQLite database.
type Source struct {
	path      string
	db        *sql.DB
	artifacts *artifactsrc.Resolver
	cols      map[string]map[string]bool // table -> columns
	// ChunkSize is the most metric points a run's History hands over at
	// once (mlflowimport.HistoryChunk unless set).
	ChunkSize int
}

// IsURI reports whether uri names a SQLite database (sqlite:///...).
func IsURI(uri string) bool { return strings.HasPrefix(uri, "sqlite:") }

// Path returns the file a sqlite:/// URI names, as SQLAlchemy reads it:
// sqlite:///relative.db and sqlite:////absolute.db.
func Path(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "sqlite:///")
	if !ok || rest == "" {
		return "", fmt.Errorf("%q is not a sqlite:///path URI", uri)
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	return filepath.FromSlash(rest), nil
}

// Open opens the database read-only. artifactsFrom, when set, is where
// mlflow-artifacts:/ locations resolve (the source server's
// --artifacts-destination: a directory or gs://bucket/prefix).
func Open(ctx context.Context, uri, artifactsFrom string) (*Source, error) {
	return OpenWith(ctx, uri, &artifactsrc.Resolver{From: artifactsFrom})
}

// OpenWith is Open with the resolver of artifact locations given; Close
// closes it.
func OpenWith(ctx context.Context, uri string, artifacts *artifactsrc.Resolver) (*Source, error) {
	path, err := Path(uri)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=query_only(1)"}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", abs, err)
	}
	s := &Source{path: abs, db: db, artifacts: artifacts, cols: map[string]map[string]bool{}, ChunkSize: mlflowimport.HistoryChunk}
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("reading %s: %w", abs, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			db.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		r, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", t)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.cols[t] = map[string]bool{}
		for r.Next() {
			var c string
			if err := r.Scan(&c); err != nil {
				r.Close()
				db.Close()
				return nil, err
			}
			s.cols[t][c] = true
		}
		r.Close()
	}
	for _, t := range []string{"experiments", "runs", "metrics", "params", "tags"} {
		if s.cols[t] == nil {
			db.Close()
			return nil, fmt.Errorf("%s is not an MLflow database: no %s table", abs, t)
		}
	}
	return s, nil
}

// Name implements mlflowimport.Source.
func (s *Source) Name() string { return s.path }

// Close implements mlflowimport.Source.
func (s *Source) Close() error {
	err := s.db.Close()
	if aerr := s.artifacts.Close(); err == nil {
		err = aerr
	}
	return err
}

// col returns the column expression, or a NULL literal when the table
// lacks it in this revision.
func (s *Source) col(table, c string) string {
	if s.cols[table][c] {
		return c
	}
	return "NULL"
}

// Experiments implements mlflowimport.Source.
func (s *Source) Experiments(ctx context.Context, report func(mlflowimport.Problem)) ([]*tracking.Experiment, error) {
	q := fmt.Sprintf("SELECT experiment_id, name, artifact_location, lifecycle_stage, %s, %s FROM experiments ORDER BY experiment_id",
		s.col("experiments", "creation_time"), s.col("experiments", "last_update_time"))
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading experiments: %w", err)
	}
	defer rows.Close()
	var out []*tracking.Experiment
	for rows.Next() {
		var id int64
		var name, loc, stage sql.NullString
		var ct, ut sql.NullInt64
		if err := rows.Scan(&id, &name, &loc, &stage, &ct, &ut); err != nil {
			return nil, err
		}
		e := &tracking.Experiment{ExperimentID: strconv.FormatInt(id, 10), Name: name.String, ArtifactLocation: loc.String,
			LifecycleStage: stage.String, CreationTime: ct.Int64, LastUpdateTime: ut.Int64}
		if e.LifecycleStage == "" {
			e.LifecycleStage = tracking.LifecycleActive
		}
		if e.Name == "" {
			report(mlflowimport.Problem{Kind: "experiment", ID: e.ExperimentID, Err: errors.New("no name")})
			continue
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, e := range out {
		tags, err := s.kv(ctx, "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", e.ExperimentID)
		if err != nil {
			return nil, fmt.Errorf("experiment %s tags: %w", e.ExperimentID, err)
		}
		e.Tags = tags
	}
	return out, nil
}

func (s *Source) kv(ctx context.Context, q string, args ...any) ([]tracking.Tag, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tracking.Tag
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out = append(out, tracking.Tag{Key: k, Value: v.String})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, rows.Err()
}

// Runs implements mlflowimport.Source.
func (s *Source) Runs(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Run) error) error {
	q := fmt.Sprintf(`SELECT run_uuid, %s, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, %s
		FROM runs WHERE experiment_id = ? ORDER BY start_time, run_uuid`, s.col("runs", "name"), s.col("runs", "deleted_time"))
	rows, err := s.db.QueryContext(ctx, q, exp.ExperimentID)
	if err != nil {
		return err
	}
	var infos []tracking.RunInfo
	for rows.Next() {
		var id string
		var name, user, status, uri, stage sql.NullString
		var start, end, deleted sql.NullInt64
		if err := rows.Scan(&id, &name, &user, &status, &start, &end, &uri, &stage, &deleted); err != nil {
			rows.Close()
			return err
		}
		info := tracking.RunInfo{RunUUID: id, RunID: id, ExperimentID: exp.ExperimentID, RunName: name.String,
			UserID: user.String, Status: status.String, StartTime: start.Int64, EndTime: end.Int64,
			ArtifactURI: uri.String, LifecycleStage: stage.String, DeletedTime: deleted.Int64}
		if info.LifecycleStage == "" {
			info.LifecycleStage = tracking.LifecycleActive
		}
		if info.Status == "" {
			info.Status = "RUNNING"
		}
		infos = append(infos, info)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.readRun(ctx, info, report)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(mlflowimport.Problem{Kind: "run", ID: info.RunID, Err: err})
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readRun(ctx context.Context, info tracking.RunInfo, report func(mlflowimport.Problem)) (*mlflowimport.Run, error) {
	run := &tracking.Run{Info: info}
	params, err := s.kv(ctx, "SELECT key, value FROM params WHERE run_uuid = ?", info.RunID)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	for _, p := range params {
		run.Data.Params = append(run.Data.Params, tracking.Param(p))
	}
	if run.Data.Tags, err = s.kv(ctx, "SELECT key, value FROM tags WHERE run_uuid = ?", info.RunID); err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	if run.Info.RunName == "" {
		for _, t := range run.Data.Tags {
			if t.Key == "mlflow.runName" {
				run.Info.RunName = t.Value
			}
		}
	}
	if run.Data.Metrics, err = s.latest(ctx, info.RunID); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if run.Inputs.DatasetInputs, err = s.inputs(ctx, info.RunID); err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	if err := s.modelIO(ctx, run); err != nil {
		return nil, err
	}
	chunk := s.ChunkSize
	if chunk <= 0 {
		chunk = mlflowimport.HistoryChunk
	}
	out := &mlflowimport.Run{Run: run, History: func(ctx context.Context, fn func([]tracking.Metric) error) error {
		return s.history(ctx, info.RunID, chunk, fn)
	}}
	out.Artifacts = s.resolve(ctx, "artifact", info.RunID, info.ArtifactURI, report)
	return out, nil
}

// resolve turns an artifact location into a tree; one that cannot be
// read from here is reported and gives nil.
func (s *Source) resolve(ctx context.Context, kind, id, uri string, report func(mlflowimport.Problem)) mlflowimport.ArtifactTree {
	t, err := s.artifacts.Resolve(ctx, uri, "")
	if err != nil {
		report(mlflowimport.Problem{Kind: kind, ID: id, Err: fmt.Errorf("%w; imported without its artifacts", err)})
		return nil
	}
	return t
}

// scanMetric reads key, value, timestamp, step, is_nan; the SQL store
// keeps NaN as value 0 with is_nan set, and ±Inf clamped to ±max float.
func scanMetric(rows *sql.Rows) (tracking.Metric, error) {
	var m tracking.Metric
	var v sql.NullFloat64
	var step sql.NullInt64
	var isNaN sql.NullBool
	if err := rows.Scan(&m.Key, &v, &m.Timestamp, &step, &isNaN); err != nil {
		return m, err
	}
	m.Value, m.Step = v.Float64, step.Int64
	if isNaN.Bool || !v.Valid {
		m.Value = math.NaN()
	}
	return m, nil
}

// latest reads a run's latest metric values: MLflow's latest_metrics
// table (what MLflow itself serves as the run's metrics), or, in a
// schema without it, the newest point per key by MLflow's order.
func (s *Source) latest(ctx context.Context, runID string) ([]tracking.Metric, error) {
	table := "latest_metrics"
	if s.cols[table] == nil {
		table = "metrics"
	}
	q := fmt.Sprintf("SELECT key, value, timestamp, %s, %s FROM %s WHERE run_uuid = ?",
		s.col(table, "step"), s.col(table, "is_nan"), table)
	rows, err := s.db.QueryContext(ctx, q, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	l := map[string]tracking.Metric{}
	for rows.Next() {
		m, err := scanMetric(rows)
		if err != nil {
			return nil, err
		}
		if old, ok := l[m.Key]; !ok || tracking.MetricNewer(m, old) {
			l[m.Key] = m
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]tracking.Metric, 0, len(l))
	for _, m := range l {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// history streams a run's metric history through one cursor, in chunks
// of at most chunk points. The cursor is read to its end before fn
// sees the last chunk.
func (s *Source) history(ctx context.Context, runID string, chunk int, fn func([]tracking.Metric) error) error {
	q := fmt.Sprintf("SELECT key, value, timestamp, %s, %s FROM metrics WHERE run_uuid = ? ORDER BY key, timestamp, step",
		s.col("metrics", "step"), s.col("metrics", "is_nan"))
	rows, err := s.db.QueryContext(ctx, q, runID)
	if err != nil {
		return err
	}
	defer rows.Close()
	buf := make([]tracking.Metric, 0, min(chunk, 1024))
	for rows.Next() {
		m, err := scanMetric(rows)
		if err != nil {
			return err
		}
		buf = append(buf, m)
		if len(buf) >= chunk {
			if err := fn(buf); err != nil {
				return err
			}
			buf = make([]tracking.Metric, 0, cap(buf))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// modelIO reads a run's logged model inputs and outputs: rows of the
// inputs table from RUN_INPUT to MODEL_INPUT and from RUN_OUTPUT to
// MODEL_OUTPUT (with the step), as SqlAlchemyStore.log_inputs and
// log_outputs write them.
func (s *Source) modelIO(ctx context.Context, run *tracking.Run) error {
	if s.cols["inputs"] == nil {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT source_type, destination_id, %s FROM inputs
		WHERE source_id = ? AND ((source_type = 'RUN_INPUT' AND destination_type = 'MODEL_INPUT')
			OR (source_type = 'RUN_OUTPUT' AND destination_type = 'MODEL_OUTPUT'))
		ORDER BY destination_id`, s.col("inputs", "step")), run.Info.RunID)
	if err != nil {
		return fmt.Errorf("model inputs and outputs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, id string
		var step sql.NullInt64
		if err := rows.Scan(&typ, &id, &step); err != nil {
			return fmt.Errorf("model inputs and outputs: %w", err)
		}
		if typ == "RUN_INPUT" {
			run.Inputs.ModelInputs = append(run.Inputs.ModelInputs, tracking.ModelInput{ModelID: id})
			continue
		}
		if run.Outputs == nil {
			run.Outputs = &tracking.RunOutputs{}
		}
		run.Outputs.ModelOutputs = append(run.Outputs.ModelOutputs, tracking.ModelOutput{ModelID: id, Step: step.Int64})
	}
	return rows.Err()
}

func (s *Source) inputs(ctx context.Context, runID string) ([]tracking.DatasetInput, error) {
	if s.cols["inputs"] == nil || s.cols["datasets"] == nil {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source,
		d.dataset_schema, d.dataset_profile FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
		WHERE i.destination_type = 'RUN' AND i.source_type = 'DATASET' AND i.destination_id = ? ORDER BY d.name, d.digest`, runID)
	if err != nil {
		return nil, err
	}
	type in struct {
		id string
		ds tracking.DatasetInput
	}
	var ins []in
	for rows.Next() {
		var x in
		var srcType, src, schema, profile sql.NullString
		if err := rows.Scan(&x.id, &x.ds.Dataset.Name, &x.ds.Dataset.Digest, &srcType, &src, &schema, &profile); err != nil {
			rows.Close()
			return nil, err
		}
		x.ds.Dataset.SourceType, x.ds.Dataset.Source = srcType.String, src.String
		x.ds.Dataset.Schema, x.ds.Dataset.Profile = schema.String, profile.String
		ins = append(ins, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]tracking.DatasetInput, 0, len(ins))
	for _, x := range ins {
		if s.cols["input_tags"] != nil {
			tags, err := s.kv(ctx, "SELECT name, value FROM input_tags WHERE input_uuid = ?", x.id)
			if err != nil {
				return nil, err
			}
			x.ds.Tags = tags
		}
		out = append(out, x.ds)
	}
	return out, nil
}
