package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

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

func getRun(tx *bolt.Tx, runID string) (*runRecord, error) {
	v := tx.Bucket(bRun).Get([]byte(runID))
	if v == nil {
		return nil, nil
	}
	var rec runRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return &rec, nil
}

func mustRun(tx *bolt.Tx, runID string) (*runRecord, error) {
	if runID == "" || len(runID) > 255 {
		return nil, errRunNotFound(runID)
	}
	rec, err := getRun(tx, runID)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errRunNotFound(runID)
	}
	return rec, nil
}

func mustActiveRun(tx *bolt.Tx, runID string) (*runRecord, error) {
	rec, err := mustRun(tx, runID)
	if err != nil {
		return nil, err
	}
	if rec.Lifecycle != tracking.LifecycleActive {
		return nil, errRunNotActive(runID, rec.Lifecycle)
	}
	return rec, nil
}

// putRun writes a run record and keeps its index entry in step.
func putRun(tx *bolt.Tx, runID string, rec *runRecord) error {
	if err := putJSON(tx.Bucket(bRun), []byte(runID), rec); err != nil {
		return err
	}
	return tx.Bucket(bExpRun).Put(expRunKey(nil, rec.ExperimentID, rec.StartTime, runID), []byte{lcByte(rec.Lifecycle)})
}

func runKey(runID, key string) []byte {
	k, _ := runPrefix(make([]byte, 0, 1+len(runID)+len(key)), runID)
	return append(k, key...)
}

// appendFillPercent is the bbolt FillPercent for buckets written at their
// right edge: a split leaves the left page this full (bbolt's default, 0.5,
// suits random inserts and leaves pages of appended keys half empty).
const appendFillPercent = 0.9

// CreateRun implements tracking.Store.
func (s *Store) CreateRun(ctx context.Context, req tracking.CreateRun) (*tracking.Run, error) {
	runID, err := newOrderedRunID(time.Now())
	if err != nil {
		return nil, wrapErr("create run", err)
	}
	name, tags := tracking.ReconcileRunName(req.RunName, req.Tags)

	var out *tracking.Run
	err = s.update(ctx, "create run", func(tx *bolt.Tx) error {
		expID, exp, err := mustExp(tx, req.ExperimentID)
		if err != nil {
			return err
		}
		if exp.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(expID, exp.Lifecycle)
		}
		// New runs go to the right edge of the run-keyed buckets (ordered
		// ids): pack the pages a split leaves behind.
		tx.Bucket(bRun).FillPercent = appendFillPercent
		tx.Bucket(bTag).FillPercent = appendFillPercent
		if tx.Bucket(bRun).Get([]byte(runID)) != nil {
			return fmt.Errorf("run id collision %s", runID)
		}
		rec := &runRecord{
			ExperimentID: expID,
			Name:         name,
			UserID:       req.UserID,
			Status:       tracking.StatusRunning,
			StartTime:    req.StartTime,
			ArtifactURI:  joinURI(exp.ArtifactLocation, runID, "artifacts"),
			Lifecycle:    tracking.LifecycleActive,
		}
		if err := putRun(tx, runID, rec); err != nil {
			return err
		}
		tb := tx.Bucket(bTag)
		for _, t := range tags {
			if err := tb.Put(runKey(runID, t.Key), []byte(t.Value)); err != nil {
				return err
			}
		}
		if err := indexRun(tx, runID, rec); err != nil {
			return err
		}
		out = &tracking.Run{Info: rec.info(runID), Data: tracking.RunData{Tags: dedupTags(tags)}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dedupTags keeps the last value of each key, in first-seen order.
func dedupTags(tags []tracking.Tag) []tracking.Tag {
	if len(tags) == 0 {
		return nil
	}
	idx := make(map[string]int, len(tags))
	out := make([]tracking.Tag, 0, len(tags))
	for _, t := range tags {
		if i, ok := idx[t.Key]; ok {
			out[i].Value = t.Value
			continue
		}
		idx[t.Key] = len(out)
		out = append(out, t)
	}
	return out
}

// GetRun implements tracking.Store.
func (s *Store) GetRun(ctx context.Context, runID string) (*tracking.Run, error) {
	var out *tracking.Run
	err := s.view(ctx, "get run", func(tx *bolt.Tx) error {
		rec, err := mustRun(tx, runID)
		if err != nil {
			return err
		}
		out, err = loadRun(tx, runID, rec)
		return err
	})
	return out, err
}

// loadRun materialises a run: info, latest metrics, params, tags, inputs.
func loadRun(tx *bolt.Tx, runID string, rec *runRecord) (*tracking.Run, error) {
	prefix, ok := runPrefix(nil, runID)
	if !ok {
		return nil, errRunNotFound(runID)
	}
	run := &tracking.Run{Info: rec.info(runID)}
	c := tx.Bucket(bLatest).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		step, ts, val, ok := readPoint(v)
		if !ok {
			return nil, fmt.Errorf("corrupt latest metric %q of run %s", k[len(prefix):], runID)
		}
		run.Data.Metrics = append(run.Data.Metrics, tracking.Metric{Key: string(k[len(prefix):]), Value: val, Timestamp: ts, Step: step})
	}
	c = tx.Bucket(bParam).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		run.Data.Params = append(run.Data.Params, tracking.Param{Key: string(k[len(prefix):]), Value: string(v)})
	}
	c = tx.Bucket(bTag).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		run.Data.Tags = append(run.Data.Tags, tracking.Tag{Key: string(k[len(prefix):]), Value: string(v)})
	}
	ds := tx.Bucket(bDataset)
	c = tx.Bucket(bInput).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		dk := k[len(prefix):]
		dv := ds.Get(dk)
		var in tracking.DatasetInput
		if dv != nil {
			if err := json.Unmarshal(dv, &in.Dataset); err != nil {
				return nil, fmt.Errorf("decode dataset of run %s: %w", runID, err)
			}
		} else {
			// Registry entry missing (should not happen): rebuild the
			// identity from the key.
			name, rest, ok := readStr(dk)
			if !ok {
				return nil, fmt.Errorf("corrupt input key of run %s", runID)
			}
			in.Dataset = tracking.Dataset{Name: name, Digest: string(rest)}
		}
		if len(v) > 0 {
			if err := json.Unmarshal(v, &in.Tags); err != nil {
				return nil, fmt.Errorf("decode input tags of run %s: %w", runID, err)
			}
		}
		run.Inputs.DatasetInputs = append(run.Inputs.DatasetInputs, in)
	}
	c = tx.Bucket(bModelIn).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		run.Inputs.ModelInputs = append(run.Inputs.ModelInputs, tracking.ModelInput{ModelID: string(k[len(prefix):])})
	}
	outPrefix := appendStr(nil, runID)
	c = tx.Bucket(bRunOutput).Cursor()
	for k, v := c.Seek(outPrefix); k != nil && bytes.HasPrefix(k, outPrefix); k, v = c.Next() {
		if len(v) != 8 {
			return nil, fmt.Errorf("corrupt model output %q of run %s", k[len(outPrefix):], runID)
		}
		if run.Outputs == nil {
			run.Outputs = &tracking.RunOutputs{}
		}
		run.Outputs.ModelOutputs = append(run.Outputs.ModelOutputs, tracking.ModelOutput{
			ModelID: string(k[len(outPrefix):]), Step: int64(binary.BigEndian.Uint64(v))})
	}
	return run, nil
}

// UpdateRun implements tracking.Store.
func (s *Store) UpdateRun(ctx context.Context, runID string, req tracking.UpdateRun) (*tracking.RunInfo, error) {
	var out tracking.RunInfo
	err := s.update(ctx, "update run", func(tx *bolt.Tx) error {
		rec, err := mustActiveRun(tx, runID)
		if err != nil {
			return err
		}
		old := *rec
		if req.Status != nil {
			rec.Status = *req.Status
		}
		if req.EndTime != nil {
			et := *req.EndTime
			rec.EndTime = &et
		}
		if req.RunName != nil && *req.RunName != "" {
			// MLflow ignores an empty new name.
			rec.Name = *req.RunName
			k := runKey(runID, tracking.TagRunName)
			if err := indexString(tx, rec.ExperimentID, ixTag, runID, tracking.TagRunName,
				tx.Bucket(bTag).Get(k), []byte(rec.Name)); err != nil {
				return err
			}
			if err := tx.Bucket(bTag).Put(k, []byte(rec.Name)); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bRun), []byte(runID), rec); err != nil {
			return err
		}
		if err := indexRunAttrs(tx, runID, &old, rec); err != nil {
			return err
		}
		out = rec.info(runID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteRun implements tracking.Store. Deleting a deleted run is allowed
// and refreshes its deletion time, as in MLflow.
func (s *Store) DeleteRun(ctx context.Context, runID string) error {
	now := s.now()
	return s.update(ctx, "delete run", func(tx *bolt.Tx) error {
		rec, err := mustRun(tx, runID)
		if err != nil {
			return err
		}
		rec.Lifecycle = tracking.LifecycleDeleted
		rec.DeletedTime = now
		return putRun(tx, runID, rec)
	})
}

// RestoreRun implements tracking.Store. Like MLflow it does not check the
// run's current stage nor its experiment's.
func (s *Store) RestoreRun(ctx context.Context, runID string) error {
	return s.update(ctx, "restore run", func(tx *bolt.Tx) error {
		rec, err := mustRun(tx, runID)
		if err != nil {
			return err
		}
		rec.Lifecycle = tracking.LifecycleActive
		rec.DeletedTime = 0
		return putRun(tx, runID, rec)
	})
}

// LogParam implements tracking.Store.
func (s *Store) LogParam(ctx context.Context, runID string, p tracking.Param) error {
	return s.update(ctx, "log param", func(tx *bolt.Tx) error {
		rec, err := mustActiveRun(tx, runID)
		if err != nil {
			return err
		}
		b := tx.Bucket(bParam)
		k := runKey(runID, p.Key)
		if old := b.Get(k); old != nil {
			if string(old) == p.Value {
				return nil
			}
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for run ID='%s'. Attempted logging new value '%s'.",
				p.Key, old, runID, p.Value)
		}
		if err := ixPut(tx, rec.ExperimentID, ixParam, p.Key, appendIxStr(nil, p.Value), runID); err != nil {
			return err
		}
		return b.Put(k, []byte(p.Value))
	})
}

// LogBatch implements tracking.Store. Params, metrics and tags are written
// in one transaction; a param conflict rejects the whole batch before
// anything is written.
func (s *Store) LogBatch(ctx context.Context, runID string, batch tracking.Batch) error {
	if len(batch.Metrics)+len(batch.Params)+len(batch.Tags)+len(batch.ModelMetrics) == 0 {
		// Still report unknown or inactive runs, as MLflow does.
		return s.view(ctx, "log batch", func(tx *bolt.Tx) error {
			_, err := mustActiveRun(tx, runID)
			return err
		})
	}
	// Clamp into a private copy: fn may run several times and must not
	// depend on (or change) the caller's slices.
	metrics := make([]tracking.Metric, len(batch.Metrics))
	for i, m := range batch.Metrics {
		m.Value = tracking.ClampMetricValue(m.Value)
		metrics[i] = m
	}
	modelMetrics := make([]tracking.ModelMetric, len(batch.ModelMetrics))
	for i, m := range batch.ModelMetrics {
		m.Value = tracking.ClampMetricValue(m.Value)
		m.RunID = runID
		modelMetrics[i] = m
	}
	return s.update(ctx, "log batch", func(tx *bolt.Tx) error {
		rec, err := mustActiveRun(tx, runID)
		if err != nil {
			return err
		}
		if err := logParams(tx, runID, batch.Params); err != nil {
			return err
		}
		if err := logMetrics(tx, runID, metrics); err != nil {
			return err
		}
		if err := logModelMetrics(tx, modelMetrics); err != nil {
			return err
		}
		return setTags(tx, runID, rec, batch.Tags)
	})
}

type paramConflict struct{ key, old, new string }

func logParams(tx *bolt.Tx, runID string, params []tracking.Param) error {
	if len(params) == 0 {
		return nil
	}
	b := tx.Bucket(bParam)
	var conflicts []paramConflict
	var pending map[string]string // params earlier in this batch
	for _, p := range params {
		old := b.Get(runKey(runID, p.Key))
		oldStr, have := string(old), old != nil
		if !have {
			oldStr, have = pending[p.Key]
		}
		if have {
			if oldStr != p.Value {
				conflicts = append(conflicts, paramConflict{p.Key, oldStr, p.Value})
			}
			continue
		}
		if pending == nil {
			pending = make(map[string]string, len(params))
		}
		pending[p.Key] = p.Value
	}
	if len(conflicts) > 0 {
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
		return tracking.Errorf(tracking.InvalidParameterValue,
			"Changing param values is not allowed. Params were already logged='%s' for run ID='%s'.", sb.String(), runID)
	}
	exp := expOf{tx: tx, runID: runID}
	for _, p := range params {
		if v, ok := pending[p.Key]; ok && v == p.Value {
			if err := b.Put(runKey(runID, p.Key), []byte(p.Value)); err != nil {
				return err
			}
			expID, err := exp.get()
			if err != nil {
				return err
			}
			if err := ixPut(tx, expID, ixParam, p.Key, appendIxStr(nil, p.Value), runID); err != nil {
				return err
			}
			delete(pending, p.Key)
		}
	}
	return nil
}

// logMetrics appends history points (exact duplicates are no-ops: the key
// is the point) and raises latest values. Values must be clamped already.
func logMetrics(tx *bolt.Tx, runID string, metrics []tracking.Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	hist := tx.Bucket(bHist)
	latest := tx.Bucket(bLatest)
	prefix, ok := runPrefix(nil, runID)
	if !ok {
		return errRunNotFound(runID)
	}
	hk := make([]byte, 0, 64)
	lk := make([]byte, 0, 64)
	exp := expOf{tx: tx, runID: runID}
	for _, m := range metrics {
		hk = appendStr(append(hk[:0], prefix...), m.Key)
		hk = appendHistPoint(hk, m.Step, m.Timestamp, m.Value)
		if hist.Get(hk) != nil {
			continue // exact duplicate point
		}
		if err := hist.Put(bytes.Clone(hk), []byte{}); err != nil {
			return err
		}
		lk = append(append(lk[:0], prefix...), m.Key...)
		var old float64
		had := false
		if cur := latest.Get(lk); cur != nil {
			step, ts, v, ok := readPoint(cur)
			if ok && !tracking.MetricNewer(m, tracking.Metric{Step: step, Timestamp: ts, Value: v}) {
				continue
			}
			old, had = v, ok
		}
		expID, err := exp.get()
		if err != nil {
			return err
		}
		if err := indexLatest(tx, expID, runID, m.Key, old, had, m.Value); err != nil {
			return err
		}
		if err := latest.Put(bytes.Clone(lk), appendPoint(make([]byte, 0, pointLen), m.Step, m.Timestamp, m.Value)); err != nil {
			return err
		}
	}
	return nil
}

// setTags upserts run tags; a non-empty mlflow.runName renames the run (an
// empty one is ignored, as MLflow's update_run_info ignores empty names).
func setTags(tx *bolt.Tx, runID string, rec *runRecord, tags []tracking.Tag) error {
	if len(tags) == 0 {
		return nil
	}
	b := tx.Bucket(bTag)
	old := *rec
	renamed := false
	for _, t := range tags {
		if t.Key == tracking.TagRunName {
			if t.Value == "" {
				continue
			}
			rec.Name = t.Value
			renamed = true
		}
		k := runKey(runID, t.Key)
		if err := indexString(tx, rec.ExperimentID, ixTag, runID, t.Key, b.Get(k), []byte(t.Value)); err != nil {
			return err
		}
		if err := b.Put(k, []byte(t.Value)); err != nil {
			return err
		}
	}
	if renamed {
		if err := putJSON(tx.Bucket(bRun), []byte(runID), rec); err != nil {
			return err
		}
		return indexRunAttrs(tx, runID, &old, rec)
	}
	return nil
}

// DeleteTag implements tracking.Store.
func (s *Store) DeleteTag(ctx context.Context, runID, key string) error {
	return s.update(ctx, "delete tag", func(tx *bolt.Tx) error {
		rec, err := mustActiveRun(tx, runID)
		if err != nil {
			return err
		}
		b := tx.Bucket(bTag)
		k := runKey(runID, key)
		old := b.Get(k)
		if old == nil {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No tag with name: %s in run with id %s", key, runID)
		}
		if err := indexString(tx, rec.ExperimentID, ixTag, runID, key, old, nil); err != nil {
			return err
		}
		return b.Delete(k)
	})
}

// LogInputs implements tracking.Store. Datasets are identified by (name,
// digest); the first logging of a dataset defines its source, schema and
// profile (MLflow shares dataset rows the same way). An input already
// linked to the run is left as it is, input tags included.
func (s *Store) LogInputs(ctx context.Context, runID string, datasets []tracking.DatasetInput, models []tracking.ModelInput) error {
	// Pre-encode outside the transaction.
	type enc struct {
		key  []byte
		ds   []byte
		tags []byte
	}
	seen := make(map[string]bool, len(datasets))
	var encs []enc
	for _, d := range datasets {
		k := append(appendStr(nil, d.Dataset.Name), d.Dataset.Digest...)
		if seen[string(k)] {
			continue // first occurrence wins
		}
		seen[string(k)] = true
		dsJSON, err := json.Marshal(d.Dataset)
		if err != nil {
			return wrapErr("log inputs", fmt.Errorf("encode dataset: %w", err))
		}
		var tagsJSON []byte
		if len(d.Tags) > 0 {
			if tagsJSON, err = json.Marshal(d.Tags); err != nil {
				return wrapErr("log inputs", fmt.Errorf("encode input tags: %w", err))
			}
		}
		encs = append(encs, enc{k, dsJSON, tagsJSON})
	}
	return s.update(ctx, "log inputs", func(tx *bolt.Tx) error {
		if _, err := mustActiveRun(tx, runID); err != nil {
			return err
		}
		prefix, _ := runPrefix(nil, runID)
		dsb, inb, mb := tx.Bucket(bDataset), tx.Bucket(bInput), tx.Bucket(bModelIn)
		for _, e := range encs {
			if dsb.Get(e.key) == nil {
				if err := dsb.Put(e.key, e.ds); err != nil {
					return err
				}
			}
			ik := append(bytes.Clone(prefix), e.key...)
			if inb.Get(ik) == nil {
				v := e.tags
				if v == nil {
					v = []byte{}
				}
				if err := inb.Put(ik, v); err != nil {
					return err
				}
			}
		}
		for _, m := range models {
			mk := append(bytes.Clone(prefix), m.ModelID...)
			if mb.Get(mk) == nil {
				if err := mb.Put(mk, []byte{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// AppendModelHistory implements tracking.Store. modelJSON is appended
// verbatim to the JSON list held by the mlflow.log-model.history tag, with
// Python's json.dumps list separator, so the tag reads as MLflow writes it.
func (s *Store) AppendModelHistory(ctx context.Context, runID string, modelJSON []byte) error {
	model := bytes.TrimSpace(modelJSON)
	if !json.Valid(model) {
		return tracking.Errorf(tracking.InvalidParameterValue, "Malformed model info. \n %s \n is not a valid JSON.", modelJSON)
	}
	model = bytes.Clone(model)
	return s.update(ctx, "append model history", func(tx *bolt.Tx) error {
		rec, err := mustActiveRun(tx, runID)
		if err != nil {
			return err
		}
		b := tx.Bucket(bTag)
		k := runKey(runID, tracking.TagLogModelHistory)
		var v []byte
		if old := bytes.TrimSpace(b.Get(k)); len(old) > 0 {
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
		if err := indexString(tx, rec.ExperimentID, ixTag, runID, tracking.TagLogModelHistory, b.Get(k), v); err != nil {
			return err
		}
		return b.Put(k, v)
	})
}
