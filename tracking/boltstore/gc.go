package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

var _ tracking.GarbageCollector = (*Store)(nil)

func (r *runRecord) gcRun(runID string) tracking.GCRun {
	return tracking.GCRun{RunID: runID, ExperimentID: fmtExpID(r.ExperimentID), ArtifactURI: r.ArtifactURI,
		LifecycleStage: r.Lifecycle, DeletedTime: r.DeletedTime}
}

func gcExp(id uint64, rec *expRecord) tracking.GCExperiment {
	return tracking.GCExperiment{ExperimentID: fmtExpID(id), ArtifactLocation: rec.ArtifactLocation,
		LifecycleStage: rec.Lifecycle, LastUpdateTime: rec.LastUpdateTime}
}

// DeletedRuns implements tracking.GarbageCollector.
func (s *Store) DeletedRuns(ctx context.Context) ([]tracking.GCRun, error) {
	var out []tracking.GCRun
	err := s.view(ctx, "list deleted runs", func(tx *bolt.Tx) error {
		out = out[:0]
		return tx.Bucket(bRun).ForEach(func(k, v []byte) error {
			var rec runRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			if rec.Lifecycle == tracking.LifecycleDeleted {
				out = append(out, rec.gcRun(string(k)))
			}
			return nil
		})
	})
	return out, err
}

// DeletedExperiments implements tracking.GarbageCollector.
func (s *Store) DeletedExperiments(ctx context.Context) ([]tracking.GCExperiment, error) {
	var out []tracking.GCExperiment
	err := s.view(ctx, "list deleted experiments", func(tx *bolt.Tx) error {
		out = out[:0]
		return tx.Bucket(bExp).ForEach(func(k, v []byte) error {
			var rec expRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode experiment %x: %w", k, err)
			}
			if rec.Lifecycle == tracking.LifecycleDeleted {
				out = append(out, gcExp(u64be(k), &rec))
			}
			return nil
		})
	})
	return out, err
}

// GCRun implements tracking.GarbageCollector.
func (s *Store) GCRun(ctx context.Context, runID string) (tracking.GCRun, error) {
	var out tracking.GCRun
	err := s.view(ctx, "get run", func(tx *bolt.Tx) error {
		rec, err := mustRun(tx, runID)
		if err != nil {
			return err
		}
		out = rec.gcRun(runID)
		return nil
	})
	return out, err
}

// GCExperiment implements tracking.GarbageCollector.
func (s *Store) GCExperiment(ctx context.Context, experimentID string) (tracking.GCExperiment, error) {
	var out tracking.GCExperiment
	err := s.view(ctx, "get experiment", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, experimentID)
		if err != nil {
			return err
		}
		out = gcExp(id, rec)
		return nil
	})
	return out, err
}

// ExperimentRuns implements tracking.GarbageCollector.
func (s *Store) ExperimentRuns(ctx context.Context, experimentID string) ([]tracking.GCRun, error) {
	var out []tracking.GCRun
	err := s.view(ctx, "list experiment runs", func(tx *bolt.Tx) error {
		out = out[:0]
		id, _, err := mustExp(tx, experimentID)
		if err != nil {
			return err
		}
		prefix := u64(id)
		c := tx.Bucket(bExpRun).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			_, _, runID, ok := splitExpRunKey(k)
			if !ok {
				return fmt.Errorf("corrupt run index key %x", k)
			}
			rec, err := getRun(tx, runID)
			if err != nil {
				return err
			}
			if rec != nil {
				out = append(out, rec.gcRun(runID))
			}
		}
		return nil
	})
	return out, err
}

// HardDeleteRun implements tracking.GarbageCollector.
func (s *Store) HardDeleteRun(ctx context.Context, runID string) error {
	return s.update(ctx, "hard delete run", func(tx *bolt.Tx) error {
		rec, err := mustRun(tx, runID)
		if err != nil {
			return err
		}
		if rec.Lifecycle != tracking.LifecycleDeleted {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Run %s is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.", runID)
		}
		return purgeRun(tx, runID, rec)
	})
}

// HardDeleteExperiment implements tracking.GarbageCollector.
func (s *Store) HardDeleteExperiment(ctx context.Context, experimentID string) error {
	return s.update(ctx, "hard delete experiment", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, experimentID)
		if err != nil {
			return err
		}
		if rec.Lifecycle != tracking.LifecycleDeleted {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Experiments ['%s'] are not in the deleted lifecycle stage. Only experiments in the deleted lifecycle stage can be hard-deleted.", experimentID)
		}
		prefix := u64(id)
		// Runs, whatever their stage (MLflow cascades "all" from the
		// experiment to its runs).
		for _, k := range prefixKeys(tx.Bucket(bExpRun), prefix) {
			_, _, runID, ok := splitExpRunKey(k)
			if !ok {
				return fmt.Errorf("corrupt run index key %x", k)
			}
			run, err := getRun(tx, runID)
			if err != nil {
				return err
			}
			if run == nil { // dangling index entry
				if err := tx.Bucket(bExpRun).Delete(k); err != nil {
					return err
				}
				continue
			}
			if err := purgeRun(tx, runID, run); err != nil {
				return err
			}
		}
		// Logged models with their metrics.
		for _, k := range prefixKeys(tx.Bucket(bExpLoggedModel), prefix) {
			modelID := k[len(prefix):]
			if err := tx.Bucket(bLoggedModel).Delete(modelID); err != nil {
				return err
			}
			if err := deletePrefix(tx.Bucket(bLMMetric), appendStr(nil, string(modelID))); err != nil {
				return err
			}
		}
		if err := deletePrefix(tx.Bucket(bExpLoggedModel), prefix); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bLMOrd), prefix); err != nil {
			return err
		}
		// Traces.
		for _, k := range prefixKeys(tx.Bucket(bExpTrace), prefix) {
			if t, err := getTrace(tx, string(k[len(prefix):])); err == nil {
				if err := indexTraceAssessments(tx, t, nil); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bTrace).Delete(k[len(prefix):]); err != nil {
				return err
			}
			if err := deleteTraceSpans(tx, string(k[len(prefix):])); err != nil {
				return err
			}
		}
		if err := deletePrefix(tx.Bucket(bExpTrace), prefix); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bTraceOrd), prefix); err != nil {
			return err
		}
		return withExpIndex(tx, id, func() error {
			if err := deletePrefix(tx.Bucket(bExpTag), prefix); err != nil {
				return err
			}
			if v := tx.Bucket(bExpName).Get([]byte(rec.Name)); v != nil && u64be(v) == id {
				if err := tx.Bucket(bExpName).Delete([]byte(rec.Name)); err != nil {
					return err
				}
			}
			return tx.Bucket(bExp).Delete(prefix)
		})
	})
}

// purgeRun deletes a run's record, its index entry and every per-run key.
// Datasets are shared between runs (keyed by name and digest) and stay.
func purgeRun(tx *bolt.Tx, runID string, rec *runRecord) error {
	rp, ok := runPrefix(nil, runID)
	if !ok {
		return fmt.Errorf("run id %q too long", runID)
	}
	if err := unindexRun(tx, runID, rec); err != nil {
		return err
	}
	for _, b := range [][]byte{bParam, bTag, bLatest, bHist, bInput, bModelIn} {
		if err := deletePrefix(tx.Bucket(b), rp); err != nil {
			return fmt.Errorf("purge run %s from %s: %w", runID, b, err)
		}
	}
	if err := deletePrefix(tx.Bucket(bRunOutput), appendStr(nil, runID)); err != nil {
		return fmt.Errorf("purge run %s outputs: %w", runID, err)
	}
	if err := tx.Bucket(bExpRun).Delete(expRunKey(nil, rec.ExperimentID, rec.StartTime, runID)); err != nil {
		return err
	}
	return tx.Bucket(bRun).Delete([]byte(runID))
}

// prefixKeys returns copies of the keys of b that start with prefix.
func prefixKeys(b *bolt.Bucket, prefix []byte) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}
