package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

var (
	_ tracking.ImportTarget        = (*Store)(nil)
	_ tracking.ModelVersionCounter = (*Store)(nil)
)

// bImportPending holds the ids of runs ImportRun wrote whose
// FinishRunImport has not come: run_id -> empty. It is made by the first
// ImportRun (not at Open, so stores and backups without it stay valid);
// a missing bucket holds nothing.
var bImportPending = []byte("importpending")

// IsEmpty implements tracking.ImportTarget: no runs, registry entries,
// logged models or traces, and no experiment but a pristine Default one.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	empty := true
	err := s.view(ctx, "is empty", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRun, bRM, bMV, bLoggedModel, bTrace, bExpTag, bDataset} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				empty = false
				return nil
			}
		}
		c := tx.Bucket(bExp).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if u64be(k) != 0 {
				empty = false
				return nil
			}
			rec, err := getExp(tx, 0)
			if err != nil {
				return err
			}
			if rec.Name != tracking.DefaultExperimentName || rec.Lifecycle != tracking.LifecycleActive {
				empty = false
				return nil
			}
		}
		return nil
	})
	return empty, err
}

// BulkImport makes the store's commits skip fsync until FinishImport,
// which syncs the file once: a copy into a file nobody else uses writes
// many small transactions, and one fsync each would dominate its time.
// Only for a database this process owns alone (a crash of the machine
// during the import can leave the file unusable: copy again into a new
// file); never on the database a server is serving.
func (s *Store) BulkImport() { s.db.NoSync = true }

// FinishImport implements tracking.ImportTarget. The experiment sequence
// moved with each imported id; after BulkImport the file is synced and
// fsync is back on every commit.
func (s *Store) FinishImport(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.db.NoSync {
		s.db.NoSync = false
		if err := s.db.Sync(); err != nil {
			return wrapErr("finish import", err)
		}
	}
	return nil
}

// MaxModelVersion implements tracking.ModelVersionCounter.
func (s *Store) MaxModelVersion(ctx context.Context, name string) (int64, error) {
	var out int64
	err := s.view(ctx, "max model version", func(tx *bolt.Tx) error {
		rec, err := getModel(tx, name)
		if err != nil {
			return err
		}
		out = rec.MaxVersion
		return forEachVersion(tx, name, func(v int64, _ *mvRecord) error {
			out = max(out, v)
			return nil
		})
	})
	return out, err
}

func importExpID(id string) (uint64, error) {
	n, ok := parseExpID(id)
	if !ok || id == "" {
		return 0, tracking.Errorf(tracking.InvalidParameterValue, "Invalid experiment id %q", id)
	}
	return n, nil
}

// ImportExperiment implements tracking.Importer.
func (s *Store) ImportExperiment(ctx context.Context, e *tracking.Experiment) error {
	id, err := importExpID(e.ExperimentID)
	if err != nil {
		return err
	}
	rec := &expRecord{
		Name:             e.Name,
		ArtifactLocation: e.ArtifactLocation,
		Lifecycle:        e.LifecycleStage,
		CreationTime:     e.CreationTime,
		LastUpdateTime:   e.LastUpdateTime,
	}
	tags := append([]tracking.Tag(nil), e.Tags...)
	return s.update(ctx, "import experiment", func(tx *bolt.Tx) error {
		return withExpIndex(tx, id, func() error { return importExp(tx, id, rec, tags) })
	})
}

// importExp writes an imported experiment (ImportExperiment).
func importExp(tx *bolt.Tx, id uint64, rec *expRecord, tags []tracking.Tag) error {
	names, exps := tx.Bucket(bExpName), tx.Bucket(bExp)
	if v := names.Get([]byte(rec.Name)); v != nil && u64be(v) != id {
		return tracking.Errorf(tracking.ResourceAlreadyExists,
			"Experiment(name=%s) already exists with id %d, cannot import it with id %d.", rec.Name, u64be(v), id)
	}
	old, err := getExp(tx, id)
	if err != nil {
		return err
	}
	if old != nil && old.Name != rec.Name {
		if err := names.Delete([]byte(old.Name)); err != nil {
			return err
		}
	}
	if err := putJSON(exps, u64(id), rec); err != nil {
		return err
	}
	if err := names.Put([]byte(rec.Name), u64(id)); err != nil {
		return err
	}
	if id > exps.Sequence() {
		if err := exps.SetSequence(id); err != nil {
			return err
		}
	}
	tb := tx.Bucket(bExpTag)
	if err := deletePrefix(tb, u64(id)); err != nil {
		return err
	}
	for _, t := range tags {
		if err := tb.Put(append(u64(id), t.Key...), []byte(t.Value)); err != nil {
			return err
		}
	}
	return nil
}

// dropRun removes a run and everything stored under it.
func dropRun(tx *bolt.Tx, runID string) error {
	old, err := getRun(tx, runID)
	if err != nil || old == nil {
		return err
	}
	if err := unindexRun(tx, runID, old); err != nil {
		return err
	}
	if err := tx.Bucket(bExpRun).Delete(expRunKey(nil, old.ExperimentID, old.StartTime, runID)); err != nil {
		return err
	}
	prefix, _ := runPrefix(nil, runID)
	for _, b := range [][]byte{bParam, bTag, bLatest, bHist, bInput, bModelIn} {
		if err := deletePrefix(tx.Bucket(b), prefix); err != nil {
			return err
		}
	}
	if err := deletePrefix(tx.Bucket(bRunOutput), appendStr(nil, runID)); err != nil {
		return err
	}
	if b := tx.Bucket(bImportPending); b != nil {
		if err := b.Delete([]byte(runID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bRun).Delete([]byte(runID))
}

// ImportRun implements tracking.Importer.
func (s *Store) ImportRun(ctx context.Context, r *tracking.Run) error {
	runID := r.Info.RunID
	if runID == "" {
		runID = r.Info.RunUUID
	}
	if _, ok := runPrefix(nil, runID); !ok || runID == "" {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid run id %q", runID)
	}
	expID, err := importExpID(r.Info.ExperimentID)
	if err != nil {
		return err
	}
	rec := &runRecord{
		ExperimentID: expID,
		Name:         r.Info.RunName,
		UserID:       r.Info.UserID,
		Status:       r.Info.Status,
		StartTime:    r.Info.StartTime,
		ArtifactURI:  r.Info.ArtifactURI,
		Lifecycle:    r.Info.LifecycleStage,
		DeletedTime:  r.Info.DeletedTime,
	}
	if r.Info.EndTime != 0 {
		et := r.Info.EndTime
		rec.EndTime = &et
	}
	type input struct{ key, ds, tags []byte }
	inputs := make([]input, 0, len(r.Inputs.DatasetInputs))
	for _, d := range r.Inputs.DatasetInputs {
		ds, err := json.Marshal(d.Dataset)
		if err != nil {
			return wrapErr("import run", fmt.Errorf("encode dataset: %w", err))
		}
		tags := []byte{}
		if len(d.Tags) > 0 {
			if tags, err = json.Marshal(d.Tags); err != nil {
				return wrapErr("import run", fmt.Errorf("encode input tags: %w", err))
			}
		}
		inputs = append(inputs, input{append(appendStr(nil, d.Dataset.Name), d.Dataset.Digest...), ds, tags})
	}
	var outputs []tracking.ModelOutput
	if r.Outputs != nil {
		outputs = r.Outputs.ModelOutputs
	}
	return s.update(ctx, "import run", func(tx *bolt.Tx) error {
		if _, _, err := mustExp(tx, r.Info.ExperimentID); err != nil {
			return err
		}
		if err := dropRun(tx, runID); err != nil {
			return err
		}
		if err := putRun(tx, runID, rec); err != nil {
			return err
		}
		prefix, _ := runPrefix(nil, runID)
		key := func(k string) []byte { return append(bytes.Clone(prefix), k...) }
		for _, p := range r.Data.Params {
			if err := tx.Bucket(bParam).Put(key(p.Key), []byte(p.Value)); err != nil {
				return err
			}
		}
		for _, t := range r.Data.Tags {
			if err := tx.Bucket(bTag).Put(key(t.Key), []byte(t.Value)); err != nil {
				return err
			}
		}
		for _, m := range r.Data.Metrics {
			v := appendPoint(make([]byte, 0, pointLen), m.Step, m.Timestamp, tracking.ClampMetricValue(m.Value))
			if err := tx.Bucket(bLatest).Put(key(m.Key), v); err != nil {
				return err
			}
		}
		dsb, inb := tx.Bucket(bDataset), tx.Bucket(bInput)
		for _, in := range inputs {
			// Datasets are shared by (name, digest); the first one
			// written keeps its source, schema and profile, as logging does.
			if dsb.Get(in.key) == nil {
				if err := dsb.Put(in.key, in.ds); err != nil {
					return err
				}
			}
			if err := inb.Put(append(bytes.Clone(prefix), in.key...), in.tags); err != nil {
				return err
			}
		}
		for _, m := range r.Inputs.ModelInputs {
			if err := tx.Bucket(bModelIn).Put(key(m.ModelID), []byte{}); err != nil {
				return err
			}
		}
		for _, o := range outputs {
			if err := tx.Bucket(bRunOutput).Put(append(appendStr(nil, runID), o.ModelID...), u64(uint64(o.Step))); err != nil {
				return err
			}
		}
		if err := indexRun(tx, runID, rec); err != nil {
			return err
		}
		pending, err := tx.CreateBucketIfNotExists(bImportPending)
		if err != nil {
			return err
		}
		return pending.Put([]byte(runID), []byte{})
	})
}

// FinishRunImport implements tracking.Importer.
func (s *Store) FinishRunImport(ctx context.Context, runID string) error {
	return s.update(ctx, "finish run import", func(tx *bolt.Tx) error {
		if _, err := mustRun(tx, runID); err != nil {
			return err
		}
		if b := tx.Bucket(bImportPending); b != nil {
			return b.Delete([]byte(runID))
		}
		return nil
	})
}

// RunImportPending implements tracking.ImportTarget.
func (s *Store) RunImportPending(ctx context.Context, runID string) (bool, error) {
	var pending bool
	err := s.view(ctx, "run import pending", func(tx *bolt.Tx) error {
		if b := tx.Bucket(bImportPending); b != nil {
			pending = b.Get([]byte(runID)) != nil
		}
		return nil
	})
	return pending, err
}

// ImportMetricHistory implements tracking.Importer.
func (s *Store) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	prefix, ok := runPrefix(nil, runID)
	if !ok {
		return errRunNotFound(runID)
	}
	keys := make([][]byte, len(points))
	for i, m := range points {
		k := appendStr(bytes.Clone(prefix), m.Key)
		keys[i] = appendHistPoint(k, m.Step, m.Timestamp, tracking.ClampMetricValue(m.Value))
	}
	return s.update(ctx, "import metric history", func(tx *bolt.Tx) error {
		if _, err := mustRun(tx, runID); err != nil {
			return err
		}
		hist := tx.Bucket(bHist)
		for _, k := range keys {
			if err := hist.Put(k, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportLoggedModel implements tracking.Importer.
func (s *Store) ImportLoggedModel(ctx context.Context, m *tracking.LoggedModel) error {
	id := m.Info.ModelID
	if id == "" {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid logged model id %q", id)
	}
	expID, err := importExpID(m.Info.ExperimentID)
	if err != nil {
		return err
	}
	rec := *m
	rec.Data.Metrics = nil
	keys := make([][]byte, len(m.Data.Metrics))
	for i, x := range m.Data.Metrics {
		x.ModelID = id
		x.Value = tracking.ClampMetricValue(x.Value)
		keys[i] = lmMetricKey(nil, &x)
	}
	return s.update(ctx, "import logged model", func(tx *bolt.Tx) error {
		if _, _, err := mustExp(tx, m.Info.ExperimentID); err != nil {
			return err
		}
		if old, err := getLoggedModelRecord(tx, id); err == nil {
			if oldExp, ok := parseExpID(old.Info.ExperimentID); ok {
				if err := tx.Bucket(bExpLoggedModel).Delete(append(u64(oldExp), id...)); err != nil {
					return err
				}
			}
			if err := indexLoggedModel(tx, old, nil); err != nil {
				return err
			}
		} else if !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			return err
		}
		if err := putLoggedModel(tx, &rec); err != nil {
			return err
		}
		if err := tx.Bucket(bExpLoggedModel).Put(append(u64(expID), id...), nil); err != nil {
			return err
		}
		if err := indexLoggedModel(tx, nil, &rec); err != nil {
			return err
		}
		mb := tx.Bucket(bLMMetric)
		if err := deletePrefix(mb, appendStr(nil, id)); err != nil {
			return err
		}
		for _, k := range keys {
			if err := mb.Put(k, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportRegisteredModel implements tracking.Importer.
func (s *Store) ImportRegisteredModel(ctx context.Context, m *tracking.RegisteredModel, maxVersion int64) error {
	type alias struct {
		key     []byte
		version uint64
	}
	aliases := make([]alias, 0, len(m.Aliases))
	for _, a := range m.Aliases {
		v, err := strconv.ParseUint(a.Version, 10, 63)
		if err != nil {
			return tracking.Errorf(tracking.InvalidParameterValue, "Invalid version %q of alias %q of model %q", a.Version, a.Alias, m.Name)
		}
		aliases = append(aliases, alias{append(modelPrefix(m.Name), a.Alias...), v})
	}
	return s.update(ctx, "import registered model", func(tx *bolt.Tx) error {
		return withModelIndex(tx, []string{m.Name}, func() error {
			rec := &rmRecord{Created: m.CreationTimestamp, Updated: m.LastUpdatedTimestamp, Desc: m.Description, MaxVersion: maxVersion}
			if err := forEachVersion(tx, m.Name, func(v int64, _ *mvRecord) error {
				rec.MaxVersion = max(rec.MaxVersion, v)
				return nil
			}); err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bRM), []byte(m.Name), rec); err != nil {
				return err
			}
			prefix := modelPrefix(m.Name)
			tb, ab := tx.Bucket(bRMTag), tx.Bucket(bRMAlias)
			if err := deletePrefix(tb, prefix); err != nil {
				return err
			}
			if err := deletePrefix(ab, prefix); err != nil {
				return err
			}
			for _, t := range m.Tags {
				if err := tb.Put(append(modelPrefix(m.Name), t.Key...), []byte(t.Value)); err != nil {
					return err
				}
			}
			for _, a := range aliases {
				if err := ab.Put(a.key, u64(a.version)); err != nil {
					return err
				}
			}
			return nil
		})
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
	rec := mvRecord{
		Created: v.CreationTimestamp, Updated: v.LastUpdatedTimestamp, Stage: v.CurrentStage, Desc: v.Description,
		Source: v.Source, Storage: storage, RunID: v.RunID, RunLink: v.RunLink, Status: v.Status,
		UserID: v.UserID, ModelID: v.ModelID,
	}
	return s.update(ctx, "import model version", func(tx *bolt.Tx) error {
		return withVersionIndex(tx, v.Name, version, func() error {
			model, err := getModel(tx, v.Name)
			if err != nil {
				return err
			}
			if version > model.MaxVersion {
				model.MaxVersion = version
				if err := putJSON(tx.Bucket(bRM), []byte(v.Name), model); err != nil {
					return err
				}
			}
			key := versionKey(v.Name, version)
			if err := putJSON(tx.Bucket(bMV), key, rec); err != nil {
				return err
			}
			tb := tx.Bucket(bMVTag)
			if err := deletePrefix(tb, key); err != nil {
				return err
			}
			for _, t := range v.Tags {
				if err := tb.Put(append(versionKey(v.Name, version), t.Key...), []byte(t.Value)); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// ImportTrace implements tracking.Importer.
func (s *Store) ImportTrace(ctx context.Context, t *tracking.TraceInfo) error {
	if t.RequestID == "" {
		return tracking.Errorf(tracking.InvalidParameterValue, "Invalid trace id %q", t.RequestID)
	}
	expID, err := importExpID(t.ExperimentID)
	if err != nil {
		return err
	}
	return s.update(ctx, "import trace", func(tx *bolt.Tx) error {
		if _, _, err := mustExp(tx, t.ExperimentID); err != nil {
			return err
		}
		old, err := getTrace(tx, t.RequestID)
		if err == nil {
			if oldExp, ok := parseExpID(old.ExperimentID); ok {
				if err := tx.Bucket(bExpTrace).Delete(expTraceKey(oldExp, t.RequestID)); err != nil {
					return err
				}
			}
		} else if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			old = nil
		} else {
			return err
		}
		if err := putJSON(tx.Bucket(bTrace), []byte(t.RequestID), t); err != nil {
			return err
		}
		if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, t.RequestID), nil); err != nil {
			return err
		}
		stored := *t
		stored.ExperimentID = fmtExpID(expID)
		return indexTrace(tx, old, &stored)
	})
}
