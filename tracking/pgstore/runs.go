package pgstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

func errRunNotFound(runID string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Run with id=%s not found", runID)
}

func errRunNotActive(runID, lifecycle string) error {
	return tracking.Errorf(tracking.InvalidParameterValue,
		"The run %s must be in the 'active' state. Current state is %s.", runID, lifecycle)
}

// newRunID returns a random UUID4 in MLflow's 32-hex form.
func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate run id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

// runLocked reads a run's lifecycle stage and name, locking its row with
// lock ("FOR SHARE" or "FOR UPDATE", from this file only), or returns
// MLflow's not-found error.
func runLocked(ctx context.Context, tx pgx.Tx, runID, lock string) (lc, name string, err error) {
	if runID == "" || len(runID) > 255 || !storable(runID) {
		return "", "", errRunNotFound(runID)
	}
	err = tx.QueryRow(ctx, `SELECT lifecycle_stage, name FROM runs WHERE run_uuid = $1 `+lock, runID).Scan(&lc, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", errRunNotFound(runID)
	}
	return lc, name, err
}

// activeRun locks a run for the rest of tx and checks that it is active.
// Writers of a run's data take the share lock, so they run side by side
// while a delete (FOR UPDATE via UPDATE) waits for them and they wait for
// it.
func activeRun(ctx context.Context, tx pgx.Tx, runID, lock string) error {
	lc, _, err := runLocked(ctx, tx, runID, lock)
	if err != nil {
		return err
	}
	if lc != tracking.LifecycleActive {
		return errRunNotActive(runID, lc)
	}
	return nil
}

// CreateRun implements tracking.Store.
func (s *Store) CreateRun(ctx context.Context, req tracking.CreateRun) (*tracking.Run, error) {
	runID, err := newRunID()
	if err != nil {
		return nil, wrapErr("create run", err)
	}
	name, tags := tracking.ReconcileRunName(req.RunName, req.Tags)
	keys, vals := tagColumns(tags)
	var out *tracking.Run
	err = s.inTx(ctx, "create run", func(tx pgx.Tx) error {
		id, ok := parseExpID(req.ExperimentID)
		if !ok {
			return errNoExperiment(req.ExperimentID)
		}
		var lc, loc string
		err := tx.QueryRow(ctx, `SELECT lifecycle_stage, artifact_location FROM experiments
			WHERE experiment_id = $1 FOR SHARE`, id).Scan(&lc, &loc)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoExperiment(req.ExperimentID)
		}
		if err != nil {
			return err
		}
		if lc != tracking.LifecycleActive {
			return errExperimentNotActive(id, lc)
		}
		info := tracking.RunInfo{
			RunUUID: runID, RunID: runID, ExperimentID: fmtExpID(id), RunName: name, UserID: req.UserID,
			Status: tracking.StatusRunning, StartTime: req.StartTime,
			ArtifactURI: joinURI(loc, runID, "artifacts"), LifecycleStage: tracking.LifecycleActive,
		}
		if _, err := tx.Exec(ctx, `INSERT INTO runs
			(run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri, lifecycle_stage)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')`,
			runID, id, name, req.UserID, info.Status, req.StartTime, info.ArtifactURI); err != nil {
			return err
		}
		if len(keys) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO tags (run_uuid, key, value)
				SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)`, runID, keys, vals); err != nil {
				return err
			}
		}
		out = &tracking.Run{Info: info}
		for i := range keys {
			out.Data.Tags = append(out.Data.Tags, tracking.Tag{Key: keys[i], Value: vals[i]})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const runColumns = `run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, deleted_time`

// scanRunInfo scans the runColumns of a row.
func scanRunInfo(row pgx.Row) (tracking.RunInfo, error) {
	var ri tracking.RunInfo
	var exp int64
	var end, deleted *int64
	err := row.Scan(&ri.RunUUID, &exp, &ri.RunName, &ri.UserID, &ri.Status, &ri.StartTime, &end,
		&ri.ArtifactURI, &ri.LifecycleStage, &deleted)
	ri.RunID = ri.RunUUID
	ri.ExperimentID = fmtExpID(exp)
	if end != nil {
		ri.EndTime = *end
	}
	if deleted != nil {
		ri.DeletedTime = *deleted
	}
	return ri, err
}

// GetRun implements tracking.Store.
func (s *Store) GetRun(ctx context.Context, runID string) (*tracking.Run, error) {
	if runID == "" || len(runID) > 255 || !storable(runID) {
		return nil, errRunNotFound(runID)
	}
	info, err := scanRunInfo(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE run_uuid = $1`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errRunNotFound(runID)
	}
	if err != nil {
		return nil, wrapErr("get run", err)
	}
	runs := []*tracking.Run{{Info: info}}
	if err := s.loadRunData(ctx, runs); err != nil {
		return nil, wrapErr("get run", err)
	}
	return runs[0], nil
}

// loadRunData fills the latest metrics, params, tags, inputs and outputs
// of runs (whose Info is set) with one pipelined round trip for all of
// them plus the logged-model outputs. Everything is ordered by key, as
// the bbolt store orders it.
func (s *Store) loadRunData(ctx context.Context, runs []*tracking.Run) error {
	if len(runs) == 0 {
		return nil
	}
	ids := make([]string, len(runs))
	byID := make(map[string]*tracking.Run, len(runs))
	for i, r := range runs {
		ids[i] = r.Info.RunID
		byID[r.Info.RunID] = r
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics
		WHERE run_uuid = ANY($1) ORDER BY run_uuid, key`, ids).Query(func(rows pgx.Rows) error {
		var id string
		var m tracking.Metric
		var nan bool
		_, err := pgx.ForEachRow(rows, []any{&id, &m.Key, &m.Value, &m.Timestamp, &m.Step, &nan}, func() error {
			if nan {
				m.Value = math.NaN()
			}
			r := byID[id]
			r.Data.Metrics = append(r.Data.Metrics, m)
			return nil
		})
		return err
	})
	b.Queue(`SELECT run_uuid, key, value FROM params WHERE run_uuid = ANY($1) ORDER BY run_uuid, key`, ids).
		Query(func(rows pgx.Rows) error {
			var id string
			var p tracking.Param
			_, err := pgx.ForEachRow(rows, []any{&id, &p.Key, &p.Value}, func() error {
				r := byID[id]
				r.Data.Params = append(r.Data.Params, p)
				return nil
			})
			return err
		})
	b.Queue(`SELECT run_uuid, key, value FROM tags WHERE run_uuid = ANY($1) ORDER BY run_uuid, key`, ids).
		Query(func(rows pgx.Rows) error {
			var id string
			var t tracking.Tag
			_, err := pgx.ForEachRow(rows, []any{&id, &t.Key, &t.Value}, func() error {
				r := byID[id]
				r.Data.Tags = append(r.Data.Tags, t)
				return nil
			})
			return err
		})
	b.Queue(`SELECT i.run_uuid, i.name, i.digest, i.tags, d.source_type, d.source, d.schema, d.profile
		FROM run_dataset_inputs i LEFT JOIN datasets d ON d.name = i.name AND d.digest = i.digest
		WHERE i.run_uuid = ANY($1) ORDER BY i.run_uuid, octet_length(i.name), i.name, i.digest`, ids).
		Query(func(rows pgx.Rows) error {
			var id string
			var tags []byte
			var st, src, schema, profile *string
			var in tracking.DatasetInput
			_, err := pgx.ForEachRow(rows, []any{&id, &in.Dataset.Name, &in.Dataset.Digest, &tags, &st, &src, &schema, &profile},
				func() error {
					d := tracking.DatasetInput{Dataset: tracking.Dataset{Name: in.Dataset.Name, Digest: in.Dataset.Digest,
						SourceType: deref(st), Source: deref(src), Schema: deref(schema), Profile: deref(profile)}}
					if len(tags) > 0 && !bytes.Equal(tags, []byte("[]")) {
						if err := json.Unmarshal(tags, &d.Tags); err != nil {
							return fmt.Errorf("decode input tags of run %s: %w", id, err)
						}
					}
					r := byID[id]
					r.Inputs.DatasetInputs = append(r.Inputs.DatasetInputs, d)
					return nil
				})
			return err
		})
	b.Queue(`SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid = ANY($1) ORDER BY run_uuid, model_id`, ids).
		Query(func(rows pgx.Rows) error {
			var id, model string
			_, err := pgx.ForEachRow(rows, []any{&id, &model}, func() error {
				r := byID[id]
				r.Inputs.ModelInputs = append(r.Inputs.ModelInputs, tracking.ModelInput{ModelID: model})
				return nil
			})
			return err
		})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	outputs, err := s.runOutputs(ctx, s.pool, ids)
	if err != nil {
		return err
	}
	for id, outs := range outputs {
		if r := byID[id]; r != nil && len(outs) > 0 {
			r.Outputs = &tracking.RunOutputs{ModelOutputs: outs}
		}
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// UpdateRun implements tracking.Store.
func (s *Store) UpdateRun(ctx context.Context, runID string, req tracking.UpdateRun) (*tracking.RunInfo, error) {
	var out tracking.RunInfo
	err := s.inTx(ctx, "update run", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR UPDATE"); err != nil {
			return err
		}
		// MLflow ignores an empty new name.
		var name *string
		if req.RunName != nil && *req.RunName != "" {
			name = req.RunName
			if err := upsertTags(ctx, tx, runID, []string{tracking.TagRunName}, []string{*name}); err != nil {
				return err
			}
		}
		var err error
		out, err = scanRunInfo(tx.QueryRow(ctx, `UPDATE runs SET
			status = COALESCE($2, status), end_time = COALESCE($3, end_time), name = COALESCE($4, name)
			WHERE run_uuid = $1 RETURNING `+runColumns, runID, req.Status, req.EndTime, name))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteRun implements tracking.Store. Deleting a deleted run is allowed
// and refreshes its deletion time, as in MLflow.
func (s *Store) DeleteRun(ctx context.Context, runID string) error {
	return s.setRunLifecycle(ctx, "delete run", runID, tracking.LifecycleDeleted)
}

// RestoreRun implements tracking.Store. Like MLflow it does not check the
// run's current stage nor its experiment's.
func (s *Store) RestoreRun(ctx context.Context, runID string) error {
	return s.setRunLifecycle(ctx, "restore run", runID, tracking.LifecycleActive)
}

func (s *Store) setRunLifecycle(ctx context.Context, what, runID, to string) error {
	if runID == "" || len(runID) > 255 || !storable(runID) {
		return errRunNotFound(runID)
	}
	var deleted *int64
	if to == tracking.LifecycleDeleted {
		now := s.now()
		deleted = &now
	}
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE run_uuid = $1`,
			runID, to, deleted)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return errRunNotFound(runID)
		}
		return nil
	})
}

// LogParam implements tracking.Store. The insert and the comparison run in
// one transaction: a replica logging another value at the same moment
// either commits first (and this call then sees its value) or waits for
// this one.
func (s *Store) LogParam(ctx context.Context, runID string, p tracking.Param) error {
	return s.inTx(ctx, "log param", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		var old string
		err := tx.QueryRow(ctx, `WITH ins AS (
				INSERT INTO params (run_uuid, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (run_uuid, key) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL
			SELECT value FROM params WHERE run_uuid = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM ins)`,
			runID, p.Key, p.Value).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			// The conflicting row is not visible to this statement's
			// snapshot yet (committed after it started): read it anew.
			err = tx.QueryRow(ctx, `SELECT value FROM params WHERE run_uuid = $1 AND key = $2`, runID, p.Key).Scan(&old)
		}
		if err != nil {
			return err
		}
		if old != p.Value {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
				p.Key, old, runID, p.Value)
		}
		return nil
	})
}

// LogBatch implements tracking.Store: params, then metrics (and model
// metrics), then tags, in one transaction. A param conflict rejects the
// whole batch.
func (s *Store) LogBatch(ctx context.Context, runID string, batch tracking.Batch) error {
	if len(batch.Metrics)+len(batch.Params)+len(batch.Tags)+len(batch.ModelMetrics) == 0 {
		// Still report unknown or inactive runs, as MLflow does.
		return s.inTx(ctx, "log batch", func(tx pgx.Tx) error {
			return activeRun(ctx, tx, runID, "")
		})
	}
	mc := newMetricColumns(batch.Metrics)
	modelMetrics := make([]tracking.ModelMetric, len(batch.ModelMetrics))
	for i, m := range batch.ModelMetrics {
		m.Value = tracking.ClampMetricValue(m.Value)
		m.RunID = runID
		modelMetrics[i] = m
	}
	return s.inTx(ctx, "log batch", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		if err := logParams(ctx, tx, runID, batch.Params); err != nil {
			return err
		}
		if err := mc.write(ctx, tx, runID); err != nil {
			return err
		}
		if len(modelMetrics) > 0 {
			if err := s.logModelMetricsTx(ctx, tx, runID, modelMetrics); err != nil {
				return err
			}
		}
		return setTags(ctx, tx, runID, batch.Tags)
	})
}

type paramConflict struct{ key, old, new string }

// logParams inserts params with MLflow's log-batch semantics: a param
// already logged (or given earlier in the batch) with another value is a
// conflict, and any conflict rejects the batch with every conflict listed.
func logParams(ctx context.Context, tx pgx.Tx, runID string, params []tracking.Param) error {
	if len(params) == 0 {
		return nil
	}
	// First value of each key in this batch, in first-seen order.
	var keys, vals []string
	first := make(map[string]string, len(params))
	for _, p := range params {
		if _, ok := first[p.Key]; !ok {
			first[p.Key] = p.Value
			keys = append(keys, p.Key)
			vals = append(vals, p.Value)
		}
	}
	// Insert what is new; then read every key's stored value (ours or an
	// earlier or concurrent one, which the insert waited for).
	if _, err := tx.Exec(ctx, `INSERT INTO params (run_uuid, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
		ORDER BY k ON CONFLICT (run_uuid, key) DO NOTHING`, runID, keys, vals); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT key, value FROM params WHERE run_uuid = $1 AND key = ANY($2)`, runID, keys)
	if err != nil {
		return err
	}
	stored := make(map[string]string, len(keys))
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { stored[k] = v; return nil }); err != nil {
		return err
	}
	// A key whose stored value differs from the batch's first value was
	// logged before (or concurrently): every occurrence is compared to
	// the stored value. Otherwise later occurrences are compared to the
	// first one.
	var conflicts []paramConflict
	for _, p := range params {
		old, ok := stored[p.Key]
		if !ok {
			return fmt.Errorf("param %q of run %s vanished while logging", p.Key, runID)
		}
		if old != p.Value {
			conflicts = append(conflicts, paramConflict{p.Key, old, p.Value})
		}
	}
	if len(conflicts) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteByte('[')
	for i, c := range conflicts {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("{'key': ")
		sb.WriteString(validate.PyRepr(c.key))
		sb.WriteString(", 'old_value': ")
		sb.WriteString(validate.PyRepr(c.old))
		sb.WriteString(", 'new_value': ")
		sb.WriteString(validate.PyRepr(c.new))
		sb.WriteByte('}')
	}
	sb.WriteByte(']')
	// The error rolls the transaction back, our inserts included.
	return tracking.Errorf(tracking.InvalidParameterValue,
		"Changing param values is not allowed. Params were already logged='%s' for run ID='%s'.", sb.String(), runID)
}

// metricColumns are a batch's metric points as insert columns (values
// clamped, NaN as 0 plus the flag) and, per key, the point that may become
// the latest value.
type metricColumns struct {
	keys  []string
	ts    []int64
	steps []int64
	vals  []float64
	nans  []bool
	// latest candidates, sorted by key (a fixed lock order between
	// concurrent batches)
	lkeys  []string
	lts    []int64
	lsteps []int64
	lvals  []float64
	lnans  []bool
}

func newMetricColumns(ms []tracking.Metric) *metricColumns {
	c := &metricColumns{}
	if len(ms) == 0 {
		return c
	}
	c.keys = make([]string, len(ms))
	c.ts = make([]int64, len(ms))
	c.steps = make([]int64, len(ms))
	c.vals = make([]float64, len(ms))
	c.nans = make([]bool, len(ms))
	best := make(map[string]int, len(ms))
	for i, m := range ms {
		m.Value = tracking.ClampMetricValue(m.Value)
		c.keys[i], c.ts[i], c.steps[i] = m.Key, m.Timestamp, m.Step
		if math.IsNaN(m.Value) {
			c.nans[i] = true
		} else {
			c.vals[i] = m.Value
		}
		if j, ok := best[m.Key]; !ok || tracking.MetricNewer(m, tracking.Metric{Value: c.vals[j], Timestamp: c.ts[j], Step: c.steps[j]}) {
			best[m.Key] = i
		}
	}
	idx := make([]int, 0, len(best))
	for _, i := range best {
		idx = append(idx, i)
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(c.keys[a], c.keys[b]) })
	for _, i := range idx {
		c.lkeys = append(c.lkeys, c.keys[i])
		c.lts = append(c.lts, c.ts[i])
		c.lsteps = append(c.lsteps, c.steps[i])
		c.lvals = append(c.lvals, c.vals[i])
		c.lnans = append(c.lnans, c.nans[i])
	}
	return c
}

// write appends the history points (exact duplicates are no-ops: the
// primary key is the point) and raises the latest values where the new
// point is newer by (step, timestamp, value), in one round trip.
func (c *metricColumns) write(ctx context.Context, tx pgx.Tx, runID string) error {
	if len(c.keys) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO metrics (run_uuid, key, timestamp, step, value, is_nan)
		SELECT $1, k, t, s, v, n FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::bool[]) AS m(k, t, s, v, n)
		ON CONFLICT DO NOTHING`, runID, c.keys, c.ts, c.steps, c.vals, c.nans)
	b.Queue(`INSERT INTO latest_metrics AS l (run_uuid, key, timestamp, step, value, is_nan)
		SELECT $1, k, t, s, v, n FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::bool[]) AS m(k, t, s, v, n)
		ON CONFLICT (run_uuid, key) DO UPDATE SET timestamp = EXCLUDED.timestamp, step = EXCLUDED.step,
			value = EXCLUDED.value, is_nan = EXCLUDED.is_nan
		WHERE (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value) > (l.step, l.timestamp, l.value)`,
		runID, c.lkeys, c.lts, c.lsteps, c.lvals, c.lnans)
	return tx.SendBatch(ctx, b).Close()
}

// upsertTags sets run tags (keys unique).
func upsertTags(ctx context.Context, tx pgx.Tx, runID string, keys, vals []string) error {
	_, err := tx.Exec(ctx, `INSERT INTO tags (run_uuid, key, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v) ORDER BY k
		ON CONFLICT (run_uuid, key) DO UPDATE SET value = EXCLUDED.value`, runID, keys, vals)
	return err
}

// setTags upserts run tags; a non-empty mlflow.runName renames the run (an
// empty one is ignored, as MLflow's update_run_info ignores empty names).
func setTags(ctx context.Context, tx pgx.Tx, runID string, tags []tracking.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	kept := make([]tracking.Tag, 0, len(tags))
	rename := ""
	for _, t := range tags {
		if t.Key == tracking.TagRunName {
			if t.Value == "" {
				continue
			}
			rename = t.Value
		}
		kept = append(kept, t)
	}
	if len(kept) == 0 {
		return nil
	}
	keys, vals := tagColumns(kept)
	if err := upsertTags(ctx, tx, runID, keys, vals); err != nil {
		return err
	}
	if rename != "" {
		_, err := tx.Exec(ctx, `UPDATE runs SET name = $2 WHERE run_uuid = $1`, runID, rename)
		return err
	}
	return nil
}

// DeleteTag implements tracking.Store.
func (s *Store) DeleteTag(ctx context.Context, runID, key string) error {
	return s.inTx(ctx, "delete tag", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM tags WHERE run_uuid = $1 AND key = $2`, runID, key)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No tag with name: %s in run with id %s", key, runID)
		}
		return nil
	})
}

// LogInputs implements tracking.Store. Datasets are identified by (name,
// digest); the first logging of a dataset defines its source, schema and
// profile. An input already linked to the run is left as it is, input
// tags included.
func (s *Store) LogInputs(ctx context.Context, runID string, datasets []tracking.DatasetInput, models []tracking.ModelInput) error {
	type key struct{ name, digest string }
	seen := make(map[key]bool, len(datasets))
	var names, digests, stypes, sources, schemas, profiles, tagsJSON []string
	var contexts []*string
	for _, d := range datasets {
		k := key{d.Dataset.Name, d.Dataset.Digest}
		if seen[k] {
			continue // first occurrence wins
		}
		seen[k] = true
		tj := []byte("[]")
		var context *string
		if len(d.Tags) > 0 {
			var err error
			if tj, err = json.Marshal(d.Tags); err != nil {
				return wrapErr("log inputs", fmt.Errorf("encode input tags: %w", err))
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
	modelIDs := make([]string, 0, len(models))
	for _, m := range models {
		if !slices.Contains(modelIDs, m.ModelID) {
			modelIDs = append(modelIDs, m.ModelID)
		}
	}
	return s.inTx(ctx, "log inputs", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		b := &pgx.Batch{}
		if len(names) > 0 {
			b.Queue(`INSERT INTO datasets (name, digest, source_type, source, schema, profile)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
				ORDER BY 1, 2 ON CONFLICT (name, digest) DO NOTHING`, names, digests, stypes, sources, schemas, profiles)
			b.Queue(`INSERT INTO run_dataset_inputs (run_uuid, name, digest, tags, context)
				SELECT $1, n, d, t::jsonb, c FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS i(n, d, t, c)
				ON CONFLICT (run_uuid, name, digest) DO NOTHING`, runID, names, digests, tagsJSON, contexts)
		}
		if len(modelIDs) > 0 {
			b.Queue(`INSERT INTO run_model_inputs (run_uuid, model_id) SELECT $1, unnest($2::text[])
				ON CONFLICT (run_uuid, model_id) DO NOTHING`, runID, modelIDs)
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// AppendModelHistory implements tracking.Store. modelJSON is appended
// verbatim to the JSON list held by the mlflow.log-model.history tag, with
// Python's json.dumps list separator, so the tag reads as MLflow writes it.
// The tag row is locked while it is rewritten, so appends from several
// replicas all land.
func (s *Store) AppendModelHistory(ctx context.Context, runID string, modelJSON []byte) error {
	model := bytes.TrimSpace(modelJSON)
	if !json.Valid(model) {
		return tracking.Errorf(tracking.InvalidParameterValue, "Malformed model info. \n %s \n is not a valid JSON.", modelJSON)
	}
	model = bytes.Clone(model)
	return s.inTx(ctx, "append model history", func(tx pgx.Tx) error {
		if err := activeRun(ctx, tx, runID, "FOR SHARE"); err != nil {
			return err
		}
		// Make sure there is a row to lock (an empty list reads as no
		// history), then lock it.
		if _, err := tx.Exec(ctx, `INSERT INTO tags (run_uuid, key, value) VALUES ($1, $2, '[]')
			ON CONFLICT (run_uuid, key) DO NOTHING`, runID, tracking.TagLogModelHistory); err != nil {
			return err
		}
		var oldStr string
		if err := tx.QueryRow(ctx, `SELECT value FROM tags WHERE run_uuid = $1 AND key = $2 FOR UPDATE`,
			runID, tracking.TagLogModelHistory).Scan(&oldStr); err != nil {
			return err
		}
		var v []byte
		if old := bytes.TrimSpace([]byte(oldStr)); len(old) > 0 {
			var list []json.RawMessage
			if err := json.Unmarshal(old, &list); err != nil {
				return tracking.Errorf(tracking.InvalidParameterValue,
					"Tag '%s' of run %s does not hold a JSON list.", tracking.TagLogModelHistory, runID)
			}
			v = append(v, old[:len(old)-1]...) // drop the closing ']'
			if len(list) > 0 {
				v = append(v, ", "...)
			}
		} else {
			v = append(v, '[')
		}
		v = append(v, model...)
		v = append(v, ']')
		_, err := tx.Exec(ctx, `UPDATE tags SET value = $3 WHERE run_uuid = $1 AND key = $2`,
			runID, tracking.TagLogModelHistory, string(v))
		return err
	})
}
