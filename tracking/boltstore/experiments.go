package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// parseExpID parses an experiment id as MLflow's integer column does. The
// empty id means the Default experiment, as in MLflow.
func parseExpID(id string) (uint64, bool) {
	if id == "" {
		return 0, true
	}
	if len(id) > 20 || id[0] == '+' || id[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 63)
	return n, err == nil
}

func fmtExpID(id uint64) string { return strconv.FormatUint(id, 10) }

func errNoExperiment(id string) error {
	if id == "" {
		id = tracking.DefaultExperimentID
	}
	return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", id)
}

func errExperimentNotActive(id uint64, lifecycle string) error {
	return tracking.Errorf(tracking.InvalidParameterValue,
		"The experiment %d must be in the 'active' state. Current state is %s.", id, lifecycle)
}

// joinURI appends a path segment to an artifact URI as MLflow's
// append_to_uri_path does for the common cases ("mlflow-artifacts:/" + "1"
// is "mlflow-artifacts:/1", "s3://b/p" + "1" is "s3://b/p/1").
func joinURI(root string, parts ...string) string {
	out := root
	for _, p := range parts {
		p = strings.TrimLeft(p, "/")
		switch {
		case out == "":
			out = p
		case strings.HasSuffix(out, "/"):
			out += p
		default:
			out += "/" + p
		}
	}
	return out
}

// getExp loads an experiment record.
func getExp(tx *bolt.Tx, id uint64) (*expRecord, error) {
	v := tx.Bucket(bExp).Get(u64(id))
	if v == nil {
		return nil, nil
	}
	var rec expRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode experiment %d: %w", id, err)
	}
	return &rec, nil
}

// mustExp loads an experiment by its string id, or returns MLflow's
// not-found error.
func mustExp(tx *bolt.Tx, idStr string) (uint64, *expRecord, error) {
	id, ok := parseExpID(idStr)
	if !ok {
		return 0, nil, errNoExperiment(idStr)
	}
	rec, err := getExp(tx, id)
	if err != nil {
		return 0, nil, err
	}
	if rec == nil {
		return 0, nil, errNoExperiment(idStr)
	}
	return id, rec, nil
}

func expTags(tx *bolt.Tx, id uint64) []tracking.Tag {
	var tags []tracking.Tag
	prefix := u64(id)
	c := tx.Bucket(bExpTag).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		tags = append(tags, tracking.Tag{Key: string(k[8:]), Value: string(v)})
	}
	return tags
}

func (r *expRecord) experiment(id uint64, tags []tracking.Tag) *tracking.Experiment {
	return &tracking.Experiment{
		ExperimentID:     fmtExpID(id),
		Name:             r.Name,
		ArtifactLocation: r.ArtifactLocation,
		LifecycleStage:   r.Lifecycle,
		LastUpdateTime:   r.LastUpdateTime,
		CreationTime:     r.CreationTime,
		Tags:             tags,
	}
}

// EnsureDefaultExperiment implements tracking.Store.
func (s *Store) EnsureDefaultExperiment(ctx context.Context, artifactRoot string) error {
	now := s.now()
	return s.update(ctx, "ensure default experiment", func(tx *bolt.Tx) error {
		rec, err := getExp(tx, 0)
		if err != nil || rec != nil {
			return err
		}
		names := tx.Bucket(bExpName)
		if names.Get([]byte(tracking.DefaultExperimentName)) != nil {
			return fmt.Errorf("experiment name %q is taken by another experiment", tracking.DefaultExperimentName)
		}
		rec = &expRecord{
			Name:             tracking.DefaultExperimentName,
			ArtifactLocation: joinURI(artifactRoot, tracking.DefaultExperimentID),
			Lifecycle:        tracking.LifecycleActive,
			CreationTime:     now,
			LastUpdateTime:   now,
		}
		if err := putJSON(tx.Bucket(bExp), u64(0), rec); err != nil {
			return err
		}
		if err := names.Put([]byte(rec.Name), u64(0)); err != nil {
			return err
		}
		return indexNewExp(tx, 0)
	})
}

// CreateExperiment implements tracking.Store.
func (s *Store) CreateExperiment(ctx context.Context, req tracking.CreateExperiment) (string, error) {
	now := s.now()
	var id uint64
	err := s.update(ctx, "create experiment", func(tx *bolt.Tx) error {
		names := tx.Bucket(bExpName)
		if names.Get([]byte(req.Name)) != nil {
			return tracking.Errorf(tracking.ResourceAlreadyExists, "Experiment(name=%s) already exists.", req.Name)
		}
		exps := tx.Bucket(bExp)
		seq, err := exps.NextSequence()
		if err != nil {
			return fmt.Errorf("next experiment id: %w", err)
		}
		// Skip ids taken by experiments written with explicit ids (0).
		for exps.Get(u64(seq)) != nil {
			if seq, err = exps.NextSequence(); err != nil {
				return fmt.Errorf("next experiment id: %w", err)
			}
		}
		id = seq
		loc := req.ArtifactLocation
		if loc == "" {
			loc = joinURI(req.DefaultArtifactRoot, fmtExpID(id))
		}
		rec := &expRecord{
			Name:             req.Name,
			ArtifactLocation: loc,
			Lifecycle:        tracking.LifecycleActive,
			CreationTime:     now,
			LastUpdateTime:   now,
		}
		if err := putJSON(exps, u64(id), rec); err != nil {
			return err
		}
		if err := names.Put([]byte(req.Name), u64(id)); err != nil {
			return err
		}
		tb := tx.Bucket(bExpTag)
		for _, t := range req.Tags {
			if err := tb.Put(append(u64(id), t.Key...), []byte(t.Value)); err != nil {
				return err
			}
		}
		return indexNewExp(tx, id)
	})
	if err != nil {
		return "", err
	}
	return fmtExpID(id), nil
}

// GetExperiment implements tracking.Store.
func (s *Store) GetExperiment(ctx context.Context, idStr string) (*tracking.Experiment, error) {
	var out *tracking.Experiment
	err := s.view(ctx, "get experiment", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, idStr)
		if err != nil {
			return err
		}
		out = rec.experiment(id, expTags(tx, id))
		return nil
	})
	return out, err
}

// GetExperimentByName implements tracking.Store.
func (s *Store) GetExperimentByName(ctx context.Context, name string) (*tracking.Experiment, error) {
	var out *tracking.Experiment
	err := s.view(ctx, "get experiment by name", func(tx *bolt.Tx) error {
		v := tx.Bucket(bExpName).Get([]byte(name))
		if len(v) != 8 {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "Could not find experiment with name '%s'", name)
		}
		id := u64be(v)
		rec, err := getExp(tx, id)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("name index points at missing experiment %d", id)
		}
		out = rec.experiment(id, expTags(tx, id))
		return nil
	})
	return out, err
}

// RenameExperiment implements tracking.Store.
func (s *Store) RenameExperiment(ctx context.Context, idStr, newName string) error {
	now := s.now()
	return s.update(ctx, "rename experiment", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, idStr)
		if err != nil {
			return err
		}
		if rec.Lifecycle != tracking.LifecycleActive {
			return tracking.Errorf(tracking.InvalidState, "Cannot rename a non-active experiment.")
		}
		names := tx.Bucket(bExpName)
		if v := names.Get([]byte(newName)); v != nil && u64be(v) != id {
			// MLflow surfaces the unique-constraint violation as BAD_REQUEST.
			return tracking.Errorf(tracking.BadRequest, "Experiment(name=%s) already exists.", newName)
		}
		if err := names.Delete([]byte(rec.Name)); err != nil {
			return err
		}
		if err := names.Put([]byte(newName), u64(id)); err != nil {
			return err
		}
		rec.Name = newName
		rec.LastUpdateTime = now
		return withExpIndex(tx, id, func() error { return putJSON(tx.Bucket(bExp), u64(id), rec) })
	})
}

// DeleteExperiment implements tracking.Store. Every run of the experiment
// is marked deleted as well.
func (s *Store) DeleteExperiment(ctx context.Context, idStr string) error {
	return s.setExperimentLifecycle(ctx, idStr, tracking.LifecycleDeleted)
}

// RestoreExperiment implements tracking.Store. Every run of the experiment
// is restored, including runs deleted individually before.
func (s *Store) RestoreExperiment(ctx context.Context, idStr string) error {
	return s.setExperimentLifecycle(ctx, idStr, tracking.LifecycleActive)
}

func (s *Store) setExperimentLifecycle(ctx context.Context, idStr, to string) error {
	now := s.now()
	from := tracking.LifecycleActive
	if to == tracking.LifecycleActive {
		from = tracking.LifecycleDeleted
	}
	return s.update(ctx, "set experiment lifecycle", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, idStr)
		if err != nil {
			return err
		}
		if rec.Lifecycle != from {
			// MLflow looks the experiment up with the view type of the
			// source stage, so a wrong stage reads as not found.
			return errNoExperiment(idStr)
		}
		rec.Lifecycle = to
		rec.LastUpdateTime = now
		if err := withExpIndex(tx, id, func() error { return putJSON(tx.Bucket(bExp), u64(id), rec) }); err != nil {
			return err
		}
		return cascadeRuns(tx, id, to, now)
	})
}

// cascadeRuns sets the lifecycle of every run of an experiment.
func cascadeRuns(tx *bolt.Tx, expID uint64, to string, now int64) error {
	idx := tx.Bucket(bExpRun)
	runs := tx.Bucket(bRun)
	prefix := u64(expID)
	want := []byte{lcByte(to)}
	// Collect first: bbolt cursors must not be used across writes.
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		_, _, runID, ok := splitExpRunKey(k)
		if !ok {
			return fmt.Errorf("corrupt run index key %x", k)
		}
		rec, err := getRun(tx, runID)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("run index points at missing run %s", runID)
		}
		rec.Lifecycle = to
		if to == tracking.LifecycleDeleted {
			rec.DeletedTime = now
		} else {
			rec.DeletedTime = 0
		}
		if err := putJSON(runs, []byte(runID), rec); err != nil {
			return err
		}
		if err := idx.Put(k, want); err != nil {
			return err
		}
	}
	return nil
}

// SetExperimentTag implements tracking.Store.
func (s *Store) SetExperimentTag(ctx context.Context, idStr string, tag tracking.Tag) error {
	return s.update(ctx, "set experiment tag", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, idStr)
		if err != nil {
			return err
		}
		if rec.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(id, rec.Lifecycle)
		}
		return withExpIndex(tx, id, func() error {
			return tx.Bucket(bExpTag).Put(append(u64(id), tag.Key...), []byte(tag.Value))
		})
	})
}

// DeleteExperimentTag implements tracking.Store.
func (s *Store) DeleteExperimentTag(ctx context.Context, idStr, key string) error {
	return s.update(ctx, "delete experiment tag", func(tx *bolt.Tx) error {
		id, rec, err := mustExp(tx, idStr)
		if err != nil {
			return err
		}
		if rec.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(id, rec.Lifecycle)
		}
		b := tx.Bucket(bExpTag)
		k := append(u64(id), key...)
		if b.Get(k) == nil {
			return tracking.Errorf(tracking.ResourceDoesNotExist,
				"No tag with name: %s in experiment with id %d", key, id)
		}
		return withExpIndex(tx, id, func() error { return b.Delete(k) })
	})
}
