package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// querier is what the read helpers need: a pool, a connection or a
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// parseExpID parses an experiment id as MLflow's integer column does (the
// same rules as the bbolt store). The empty id means the Default
// experiment, as in MLflow.
func parseExpID(id string) (int64, bool) {
	if id == "" {
		return 0, true
	}
	if len(id) > 20 || id[0] == '+' || id[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(id, 10, 63)
	return int64(n), err == nil
}

func fmtExpID(id int64) string { return strconv.FormatInt(id, 10) }

func errNoExperiment(id string) error {
	if id == "" {
		id = tracking.DefaultExperimentID
	}
	return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", id)
}

func errExperimentNotActive(id int64, lifecycle string) error {
	return tracking.Errorf(tracking.InvalidParameterValue,
		"The experiment %d must be in the 'active' state. Current state is %s.", id, lifecycle)
}

func errExperimentExists(name string) error {
	return tracking.Errorf(tracking.ResourceAlreadyExists, "Experiment(name=%s) already exists.", name)
}

// joinURI appends path segments to an artifact URI as MLflow's
// append_to_uri_path does for the common cases (as the bbolt store does).
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

// expLocked reads an experiment's lifecycle stage, locking its row with
// lock ("FOR SHARE" or "FOR UPDATE", from this file only), or returns
// MLflow's not-found error.
func expLocked(ctx context.Context, tx pgx.Tx, idStr, lock string) (int64, string, error) {
	id, ok := parseExpID(idStr)
	if !ok {
		return 0, "", errNoExperiment(idStr)
	}
	var lc string
	err := tx.QueryRow(ctx, `SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1 `+lock, id).Scan(&lc)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", errNoExperiment(idStr)
	}
	return id, lc, err
}

// activeExp locks an experiment against lifecycle changes for the rest of
// tx and checks that it is active.
func activeExp(ctx context.Context, tx pgx.Tx, idStr string) (int64, error) {
	id, lc, err := expLocked(ctx, tx, idStr, "FOR SHARE")
	if err != nil {
		return 0, err
	}
	if lc != tracking.LifecycleActive {
		return 0, errExperimentNotActive(id, lc)
	}
	return id, nil
}

// EnsureDefaultExperiment implements tracking.Store. Replicas starting at
// once both insert experiment 0; the primary key lets one win and the
// other do nothing.
func (s *Store) EnsureDefaultExperiment(ctx context.Context, artifactRoot string) error {
	now := s.now()
	return s.inTx(ctx, "ensure default experiment", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO experiments
			(experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (0, $1, $2, 'active', $3, $3) ON CONFLICT (experiment_id) DO NOTHING`,
			tracking.DefaultExperimentName, joinURI(artifactRoot, tracking.DefaultExperimentID), now)
		if isUniqueViolation(err, "experiments_name_key") {
			return fmt.Errorf("experiment name %q is taken by another experiment", tracking.DefaultExperimentName)
		}
		return err
	})
}

// CreateExperiment implements tracking.Store. The id comes from
// experiments_id_seq (ids taken by imported experiments are skipped); the
// name's uniqueness is the constraint's: of two replicas creating one name
// at once, one commits and the other gets RESOURCE_ALREADY_EXISTS.
func (s *Store) CreateExperiment(ctx context.Context, req tracking.CreateExperiment) (string, error) {
	now := s.now()
	var id int64
	err := s.inTx(ctx, "create experiment", func(tx pgx.Tx) error {
		for {
			if err := tx.QueryRow(ctx, `SELECT nextval('experiments_id_seq')`).Scan(&id); err != nil {
				return err
			}
			loc := req.ArtifactLocation
			if loc == "" {
				loc = joinURI(req.DefaultArtifactRoot, fmtExpID(id))
			}
			tag, err := tx.Exec(ctx, `INSERT INTO experiments
				(experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
				VALUES ($1, $2, $3, 'active', $4, $4) ON CONFLICT (experiment_id) DO NOTHING`,
				id, req.Name, loc, now)
			if isUniqueViolation(err, "experiments_name_key") {
				return errExperimentExists(req.Name)
			}
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				break
			}
		}
		if len(req.Tags) == 0 {
			return nil
		}
		keys, vals := tagColumns(req.Tags)
		_, err := tx.Exec(ctx, `INSERT INTO experiment_tags (experiment_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
			ON CONFLICT (experiment_id, key) DO UPDATE SET value = EXCLUDED.value`, id, keys, vals)
		return err
	})
	if err != nil {
		return "", err
	}
	return fmtExpID(id), nil
}

// tagColumns de-duplicates tags by key (the last value wins, in first-seen
// order, as successive puts would leave them) and returns them as columns.
func tagColumns(tags []tracking.Tag) (keys, vals []string) {
	idx := make(map[string]int, len(tags))
	for _, t := range tags {
		if i, ok := idx[t.Key]; ok {
			vals[i] = t.Value
			continue
		}
		idx[t.Key] = len(keys)
		keys = append(keys, t.Key)
		vals = append(vals, t.Value)
	}
	return keys, vals
}

const expColumns = `experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time`

func scanExp(row pgx.Row) (*tracking.Experiment, int64, error) {
	var e tracking.Experiment
	var id int64
	err := row.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime)
	e.ExperimentID = fmtExpID(id)
	return &e, id, err
}

// expTags loads the tags of the given experiments, ordered by key.
func expTags(ctx context.Context, q querier, ids []int64) (map[int64][]tracking.Tag, error) {
	rows, err := q.Query(ctx, `SELECT experiment_id, key, value FROM experiment_tags
		WHERE experiment_id = ANY($1) ORDER BY experiment_id, key`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64][]tracking.Tag, len(ids))
	for rows.Next() {
		var id int64
		var t tracking.Tag
		if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		out[id] = append(out[id], t)
	}
	return out, rows.Err()
}

// getExp loads one experiment with its tags by a WHERE clause on arg.
func (s *Store) getExp(ctx context.Context, what, where string, arg any) (*tracking.Experiment, error) {
	e, id, err := scanExp(s.pool.QueryRow(ctx, `SELECT `+expColumns+` FROM experiments WHERE `+where, arg))
	if err != nil {
		return nil, err
	}
	tags, err := expTags(ctx, s.pool, []int64{id})
	if err != nil {
		return nil, wrapErr(what, err)
	}
	e.Tags = tags[id]
	return e, nil
}

// GetExperiment implements tracking.Store.
func (s *Store) GetExperiment(ctx context.Context, idStr string) (*tracking.Experiment, error) {
	id, ok := parseExpID(idStr)
	if !ok {
		return nil, errNoExperiment(idStr)
	}
	e, err := s.getExp(ctx, "get experiment", "experiment_id = $1", id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoExperiment(idStr)
	}
	return e, wrapErr("get experiment", err)
}

// GetExperimentByName implements tracking.Store.
func (s *Store) GetExperimentByName(ctx context.Context, name string) (*tracking.Experiment, error) {
	if !storable(name) {
		return nil, tracking.Errorf(tracking.ResourceDoesNotExist, "Could not find experiment with name '%s'", name)
	}
	e, err := s.getExp(ctx, "get experiment by name", "name = $1", name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tracking.Errorf(tracking.ResourceDoesNotExist, "Could not find experiment with name '%s'", name)
	}
	return e, wrapErr("get experiment by name", err)
}

// RenameExperiment implements tracking.Store.
func (s *Store) RenameExperiment(ctx context.Context, idStr, newName string) error {
	now := s.now()
	return s.inTx(ctx, "rename experiment", func(tx pgx.Tx) error {
		id, lc, err := expLocked(ctx, tx, idStr, "FOR UPDATE")
		if err != nil {
			return err
		}
		if lc != tracking.LifecycleActive {
			return tracking.Errorf(tracking.InvalidState, "Cannot rename a non-active experiment.")
		}
		_, err = tx.Exec(ctx, `UPDATE experiments SET name = $2, last_update_time = $3 WHERE experiment_id = $1`,
			id, newName, now)
		if isUniqueViolation(err, "experiments_name_key") {
			// MLflow surfaces the unique-constraint violation as BAD_REQUEST.
			return tracking.Errorf(tracking.BadRequest, "Experiment(name=%s) already exists.", newName)
		}
		return err
	})
}

// DeleteExperiment implements tracking.Store. Every run of the experiment
// is marked deleted in the same transaction.
func (s *Store) DeleteExperiment(ctx context.Context, idStr string) error {
	return s.setExperimentLifecycle(ctx, idStr, tracking.LifecycleDeleted)
}

// RestoreExperiment implements tracking.Store. Every run of the experiment
// is restored in the same transaction, including runs deleted one by one
// before (as the bbolt store and MLflow's SqlAlchemyStore do).
func (s *Store) RestoreExperiment(ctx context.Context, idStr string) error {
	return s.setExperimentLifecycle(ctx, idStr, tracking.LifecycleActive)
}

func (s *Store) setExperimentLifecycle(ctx context.Context, idStr, to string) error {
	now := s.now()
	from := tracking.LifecycleActive
	if to == tracking.LifecycleActive {
		from = tracking.LifecycleDeleted
	}
	return s.inTx(ctx, "set experiment lifecycle", func(tx pgx.Tx) error {
		// FOR UPDATE waits for runs being created or written under a
		// share lock, and makes a concurrent delete/restore wait for this
		// one and then see the new stage.
		id, lc, err := expLocked(ctx, tx, idStr, "FOR UPDATE")
		if err != nil {
			return err
		}
		if lc != from {
			// MLflow looks the experiment up with the view type of the
			// source stage, so a wrong stage reads as not found.
			return errNoExperiment(idStr)
		}
		if _, err := tx.Exec(ctx, `UPDATE experiments SET lifecycle_stage = $2, last_update_time = $3
			WHERE experiment_id = $1`, id, to, now); err != nil {
			return err
		}
		var deleted *int64
		if to == tracking.LifecycleDeleted {
			deleted = &now
		}
		_, err = tx.Exec(ctx, `UPDATE runs SET lifecycle_stage = $2, deleted_time = $3 WHERE experiment_id = $1`,
			id, to, deleted)
		return err
	})
}

// SetExperimentTag implements tracking.Store.
func (s *Store) SetExperimentTag(ctx context.Context, idStr string, tag tracking.Tag) error {
	return s.inTx(ctx, "set experiment tag", func(tx pgx.Tx) error {
		id, err := activeExp(ctx, tx, idStr)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)
			ON CONFLICT (experiment_id, key) DO UPDATE SET value = EXCLUDED.value`, id, tag.Key, tag.Value)
		return err
	})
}

// DeleteExperimentTag implements tracking.Store.
func (s *Store) DeleteExperimentTag(ctx context.Context, idStr, key string) error {
	return s.inTx(ctx, "delete experiment tag", func(tx pgx.Tx) error {
		id, err := activeExp(ctx, tx, idStr)
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2`, id, key)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist,
				"No tag with name: %s in experiment with id %d", key, id)
		}
		return nil
	})
}
