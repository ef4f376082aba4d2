package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// The model registry (tracking.RegistryStore) on the tables
// registered_models, registered_model_tags, registered_model_aliases,
// model_versions and model_version_tags. Semantics and messages are the
// bbolt store's (tracking/boltstore/registry.go), which follow MLflow's
// SqlAlchemyStore (mlflow/store/model_registry/sqlalchemy_store.py).
//
// Concurrency: names are unique by the primary key (a concurrent create
// or rename loses with RESOURCE_ALREADY_EXISTS); creating, deleting and
// transitioning versions lock the model row (FOR NO KEY UPDATE), so
// version numbers are max_version + 1 without gaps or repeats however many
// replicas create versions at once; renames and deletes cascade in the
// database in one statement.

// dbtx is what the registry, logged model and trace code runs statements
// on: a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readOnly runs fn in a read-only REPEATABLE READ transaction, so that
// the several statements of one read see one snapshot.
func (s *Store) readOnly(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	return wrapErr(what, err)
}

func errNoModel(name string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Registered Model with name=%s not found", name)
}

func errNoVersion(name string, version int64) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Model Version (name=%s, version=%d) not found", name, version)
}

func errModelExists(name string) error {
	return tracking.Errorf(tracking.ResourceAlreadyExists, "Registered Model (name=%s) already exists.", name)
}

// isFKViolation reports a foreign_key_violation (23503).
func isFKViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// lockModel locks a model row (mode "FOR UPDATE", "FOR NO KEY UPDATE" or
// "FOR KEY SHARE") and returns its max_version; a missing model is
// RESOURCE_DOES_NOT_EXIST.
func lockModel(ctx context.Context, tx dbtx, name, mode string) (int64, error) {
	if !storable(name) {
		return 0, errNoModel(name)
	}
	var mx int64
	err := tx.QueryRow(ctx, "SELECT max_version FROM registered_models WHERE name = $1 "+mode, name).Scan(&mx)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errNoModel(name)
	}
	return mx, err
}

// versionExists checks a live version; a missing one is
// RESOURCE_DOES_NOT_EXIST.
func versionExists(ctx context.Context, tx dbtx, name string, version int64, lock string) error {
	if !storable(name) {
		return errNoVersion(name, version)
	}
	var one int
	err := tx.QueryRow(ctx, "SELECT 1 FROM model_versions WHERE name = $1 AND version = $2 "+lock, name, version).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoVersion(name, version)
	}
	return err
}

const mvColumns = "v.name, v.version, v.creation_time, v.last_updated_time, v.current_stage, v.description, v.source, " +
	"v.storage_location, v.run_id, v.run_link, v.status, v.user_id, v.model_id"

func scanVersion(row pgx.Row) (*tracking.ModelVersion, error) {
	mv := &tracking.ModelVersion{}
	var version int64
	err := row.Scan(&mv.Name, &version, &mv.CreationTimestamp, &mv.LastUpdatedTimestamp, &mv.CurrentStage,
		&mv.Description, &mv.Source, &mv.StorageLocation, &mv.RunID, &mv.RunLink, &mv.Status, &mv.UserID, &mv.ModelID)
	if err != nil {
		return nil, err
	}
	mv.Version = strconv.FormatInt(version, 10)
	if mv.StorageLocation == "" {
		mv.StorageLocation = mv.Source
	}
	return mv, nil
}

// queryVersions runs a query selecting mvColumns.
func queryVersions(ctx context.Context, tx dbtx, sql string, args ...any) ([]*tracking.ModelVersion, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tracking.ModelVersion
	for rows.Next() {
		mv, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, mv)
	}
	return out, rows.Err()
}

// fillVersionTags loads the tags (key order) of versions, and their
// aliases (alias order) when withAliases.
func fillVersionTags(ctx context.Context, tx dbtx, mvs []*tracking.ModelVersion, withAliases bool) error {
	if len(mvs) == 0 {
		return nil
	}
	names := make([]string, len(mvs))
	versions := make([]int64, len(mvs))
	idx := make(map[string]*tracking.ModelVersion, len(mvs))
	for i, mv := range mvs {
		names[i] = mv.Name
		versions[i], _ = strconv.ParseInt(mv.Version, 10, 64)
		idx[mv.Name+"\x00"+mv.Version] = mv
	}
	rows, err := tx.Query(ctx, `SELECT t.name, t.version, t.key, t.value FROM model_version_tags t
		JOIN unnest($1::text[], $2::bigint[]) AS w(name, version) ON t.name = w.name AND t.version = w.version
		ORDER BY t.name, t.version, t.key`, names, versions)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, key, value string
		var version int64
		if err := rows.Scan(&name, &version, &key, &value); err != nil {
			rows.Close()
			return err
		}
		if mv := idx[name+"\x00"+strconv.FormatInt(version, 10)]; mv != nil {
			mv.Tags = append(mv.Tags, tracking.Tag{Key: key, Value: value})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if !withAliases {
		return nil
	}
	rows, err = tx.Query(ctx, `SELECT a.name, a.version, a.alias FROM registered_model_aliases a
		JOIN unnest($1::text[], $2::bigint[]) AS w(name, version) ON a.name = w.name AND a.version = w.version
		ORDER BY a.name, a.alias`, names, versions)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, alias string
		var version int64
		if err := rows.Scan(&name, &version, &alias); err != nil {
			return err
		}
		if mv := idx[name+"\x00"+strconv.FormatInt(version, 10)]; mv != nil {
			mv.Aliases = append(mv.Aliases, alias)
		}
	}
	return rows.Err()
}

// readVersion returns a live version with its tags and aliases.
func readVersion(ctx context.Context, tx dbtx, name string, version int64) (*tracking.ModelVersion, error) {
	if !storable(name) {
		return nil, errNoVersion(name, version)
	}
	mvs, err := queryVersions(ctx, tx, "SELECT "+mvColumns+" FROM model_versions v WHERE v.name = $1 AND v.version = $2", name, version)
	if err != nil {
		return nil, err
	}
	if len(mvs) == 0 {
		return nil, errNoVersion(name, version)
	}
	if err := fillVersionTags(ctx, tx, mvs, true); err != nil {
		return nil, err
	}
	return mvs[0], nil
}

// latestVersionsOf returns, per model, the highest version of each stage,
// in the order in which the stages first occur among the model's
// versions in ascending version order (MLflow builds a dict that way).
func latestVersionsOf(ctx context.Context, tx dbtx, names []string) (map[string][]*tracking.ModelVersion, error) {
	mvs, err := queryVersions(ctx, tx, `SELECT `+mvColumns+` FROM (
			SELECT m.*, max(m.version) OVER w AS top, min(m.version) OVER w AS first
			FROM model_versions m WHERE m.name = ANY($1::text[])
			WINDOW w AS (PARTITION BY m.name, m.current_stage)
		) v WHERE v.version = v.top ORDER BY v.name, v.first`, names)
	if err != nil {
		return nil, err
	}
	if err := fillVersionTags(ctx, tx, mvs, false); err != nil {
		return nil, err
	}
	out := make(map[string][]*tracking.ModelVersion, len(names))
	for _, mv := range mvs {
		out[mv.Name] = append(out[mv.Name], mv)
	}
	return out, nil
}

// fillModels adds tags (key order), aliases (alias order) and latest
// versions to models.
func fillModels(ctx context.Context, tx dbtx, models []*tracking.RegisteredModel) error {
	if len(models) == 0 {
		return nil
	}
	names := make([]string, len(models))
	idx := make(map[string]*tracking.RegisteredModel, len(models))
	for i, m := range models {
		names[i] = m.Name
		idx[m.Name] = m
	}
	rows, err := tx.Query(ctx, `SELECT name, key, value FROM registered_model_tags WHERE name = ANY($1::text[]) ORDER BY name, key`, names)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var t tracking.Tag
		if err := rows.Scan(&name, &t.Key, &t.Value); err != nil {
			rows.Close()
			return err
		}
		idx[name].Tags = append(idx[name].Tags, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT name, alias, version FROM registered_model_aliases WHERE name = ANY($1::text[]) ORDER BY name, alias`, names)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, alias string
		var version int64
		if err := rows.Scan(&name, &alias, &version); err != nil {
			rows.Close()
			return err
		}
		idx[name].Aliases = append(idx[name].Aliases, tracking.RegisteredModelAlias{Alias: alias, Version: strconv.FormatInt(version, 10)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	latest, err := latestVersionsOf(ctx, tx, names)
	if err != nil {
		return err
	}
	for _, m := range models {
		m.LatestVersions = latest[m.Name]
	}
	return nil
}

// readModel returns a model with its tags, aliases and latest versions.
func readModel(ctx context.Context, tx dbtx, name string) (*tracking.RegisteredModel, error) {
	if !storable(name) {
		return nil, errNoModel(name)
	}
	m := &tracking.RegisteredModel{Name: name}
	err := tx.QueryRow(ctx, "SELECT creation_time, last_updated_time, description FROM registered_models WHERE name = $1", name).
		Scan(&m.CreationTimestamp, &m.LastUpdatedTimestamp, &m.Description)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoModel(name)
	}
	if err != nil {
		return nil, err
	}
	if err := fillModels(ctx, tx, []*tracking.RegisteredModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

// CreateRegisteredModel implements tracking.RegistryStore.
func (s *Store) CreateRegisteredModel(ctx context.Context, req tracking.CreateRegisteredModel) (*tracking.RegisteredModel, error) {
	now := s.now()
	var out *tracking.RegisteredModel
	err := s.inTx(ctx, "create registered model", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO registered_models (name, creation_time, last_updated_time, description)
			VALUES ($1, $2, $2, $3)`, req.Name, now, req.Description)
		if isUniqueViolation(err, "") {
			return errModelExists(req.Name)
		}
		if err != nil {
			return err
		}
		for _, t := range req.Tags {
			if _, err := tx.Exec(ctx, `INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value`, req.Name, t.Key, t.Value); err != nil {
				return err
			}
		}
		out, err = readModel(ctx, tx, req.Name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRegisteredModel implements tracking.RegistryStore.
func (s *Store) GetRegisteredModel(ctx context.Context, name string) (*tracking.RegisteredModel, error) {
	var out *tracking.RegisteredModel
	err := s.readOnly(ctx, "get registered model", func(tx pgx.Tx) error {
		var err error
		out, err = readModel(ctx, tx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenameRegisteredModel implements tracking.RegistryStore. The new name
// reaches the versions, tags and aliases through ON UPDATE CASCADE, in
// the same statement.
func (s *Store) RenameRegisteredModel(ctx context.Context, name, newName string) (*tracking.RegisteredModel, error) {
	now := s.now()
	var out *tracking.RegisteredModel
	err := s.inTx(ctx, "rename registered model", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR UPDATE"); err != nil {
			return err
		}
		if name != newName {
			_, err := tx.Exec(ctx, "UPDATE registered_models SET name = $2, last_updated_time = $3 WHERE name = $1", name, newName, now)
			if isUniqueViolation(err, "") {
				return errModelExists(newName)
			}
			if err != nil {
				return err
			}
		}
		var err error
		out, err = readModel(ctx, tx, newName)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRegisteredModel implements tracking.RegistryStore.
func (s *Store) UpdateRegisteredModel(ctx context.Context, name, description string) (*tracking.RegisteredModel, error) {
	now := s.now()
	var out *tracking.RegisteredModel
	err := s.inTx(ctx, "update registered model", func(tx pgx.Tx) error {
		if !storable(name) {
			return errNoModel(name)
		}
		tag, err := tx.Exec(ctx, "UPDATE registered_models SET description = $2, last_updated_time = $3 WHERE name = $1", name, description, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoModel(name)
		}
		out, err = readModel(ctx, tx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRegisteredModel implements tracking.RegistryStore. Versions, tags
// and aliases go with the model (ON DELETE CASCADE).
func (s *Store) DeleteRegisteredModel(ctx context.Context, name string) error {
	return s.inTx(ctx, "delete registered model", func(tx pgx.Tx) error {
		if !storable(name) {
			return errNoModel(name)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM registered_models WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoModel(name)
		}
		return nil
	})
}

// GetLatestVersions implements tracking.RegistryStore.
func (s *Store) GetLatestVersions(ctx context.Context, name string, stages []string) ([]*tracking.ModelVersion, error) {
	var out []*tracking.ModelVersion
	err := s.readOnly(ctx, "get latest versions", func(tx pgx.Tx) error {
		out = nil
		if _, err := lockModel(ctx, tx, name, ""); err != nil {
			return err
		}
		latest, err := latestVersionsOf(ctx, tx, []string{name})
		if err != nil {
			return err
		}
		for _, mv := range latest[name] {
			if len(stages) == 0 || containsString(stages, mv.CurrentStage) {
				out = append(out, mv)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// SetRegisteredModelTag implements tracking.RegistryStore.
func (s *Store) SetRegisteredModelTag(ctx context.Context, name string, tag tracking.Tag) error {
	return s.inTx(ctx, "set registered model tag", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR KEY SHARE"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3)
			ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value`, name, tag.Key, tag.Value)
		return err
	})
}

// DeleteRegisteredModelTag implements tracking.RegistryStore.
func (s *Store) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	return s.inTx(ctx, "delete registered model tag", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR KEY SHARE"); err != nil {
			return err
		}
		if !storable(key) {
			return nil
		}
		_, err := tx.Exec(ctx, "DELETE FROM registered_model_tags WHERE name = $1 AND key = $2", name, key)
		return err
	})
}

// SetRegisteredModelAlias implements tracking.RegistryStore.
func (s *Store) SetRegisteredModelAlias(ctx context.Context, name, alias string, version int64) error {
	return s.inTx(ctx, "set registered model alias", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR KEY SHARE"); err != nil {
			return err
		}
		if err := versionExists(ctx, tx, name, version, "FOR KEY SHARE"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3)
			ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version`, name, alias, version)
		return err
	})
}

// DeleteRegisteredModelAlias implements tracking.RegistryStore.
func (s *Store) DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error {
	return s.inTx(ctx, "delete registered model alias", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR KEY SHARE"); err != nil {
			return err
		}
		if !storable(alias) {
			return nil
		}
		_, err := tx.Exec(ctx, "DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2", name, alias)
		return err
	})
}

// GetModelVersionByAlias implements tracking.RegistryStore. An alias whose
// version was deleted (MLflow 2.22.1 keeps such aliases) is not found.
func (s *Store) GetModelVersionByAlias(ctx context.Context, name, alias string) (*tracking.ModelVersion, error) {
	var out *tracking.ModelVersion
	err := s.readOnly(ctx, "get model version by alias", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, ""); err != nil {
			return err
		}
		notFound := tracking.Errorf(tracking.InvalidParameterValue, "Registered model alias %s not found.", alias)
		var version int64
		var err error
		if !storable(alias) {
			return notFound
		}
		if strings.EqualFold(alias, "latest") {
			err = tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM model_versions WHERE name = $1", name).Scan(&version)
		} else {
			err = tx.QueryRow(ctx, "SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2", name, alias).Scan(&version)
		}
		if errors.Is(err, pgx.ErrNoRows) || err == nil && version == 0 {
			return notFound
		}
		if err != nil {
			return err
		}
		out, err = readVersion(ctx, tx, name, version)
		if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			return notFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateModelVersion implements tracking.RegistryStore. The model row is
// locked for the transaction, so concurrent creates (on any replica) take
// consecutive numbers.
func (s *Store) CreateModelVersion(ctx context.Context, req tracking.CreateModelVersion) (*tracking.ModelVersion, error) {
	now := s.now()
	var out *tracking.ModelVersion
	err := s.inTx(ctx, "create model version", func(tx pgx.Tx) error {
		mx, err := lockModel(ctx, tx, req.Name, "FOR NO KEY UPDATE")
		if err != nil {
			return err
		}
		var live int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM model_versions WHERE name = $1", req.Name).Scan(&live); err != nil {
			return err
		}
		version := max(mx, live) + 1
		if _, err := tx.Exec(ctx, "UPDATE registered_models SET max_version = $2, last_updated_time = $3 WHERE name = $1",
			req.Name, version, now); err != nil {
			return err
		}
		if req.ModelID != "" && !isPromptVersion(req.Tags) {
			if err := addModelVersionTag(ctx, tx, req.ModelID, req.Name, version, now); err != nil {
				return err
			}
		}
		storage := req.StorageLocation
		if storage == req.Source {
			storage = ""
		}
		if _, err := tx.Exec(ctx, `INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage,
				description, source, storage_location, run_id, run_link, status, user_id, model_id)
			VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			req.Name, version, now, tracking.StageNone, req.Description, req.Source, storage, req.RunID, req.RunLink,
			tracking.ModelVersionStatusReady, req.UserID, req.ModelID); err != nil {
			return err
		}
		for _, t := range req.Tags {
			if _, err := tx.Exec(ctx, `INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4)
				ON CONFLICT (name, version, key) DO UPDATE SET value = EXCLUDED.value`, req.Name, version, t.Key, t.Value); err != nil {
				return err
			}
		}
		out, err = readVersion(ctx, tx, req.Name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetModelVersion implements tracking.RegistryStore.
func (s *Store) GetModelVersion(ctx context.Context, name string, version int64) (*tracking.ModelVersion, error) {
	var out *tracking.ModelVersion
	err := s.readOnly(ctx, "get model version", func(tx pgx.Tx) error {
		var err error
		out, err = readVersion(ctx, tx, name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateModelVersion implements tracking.RegistryStore.
func (s *Store) UpdateModelVersion(ctx context.Context, name string, version int64, description string) (*tracking.ModelVersion, error) {
	now := s.now()
	var out *tracking.ModelVersion
	err := s.inTx(ctx, "update model version", func(tx pgx.Tx) error {
		if !storable(name) {
			return errNoVersion(name, version)
		}
		tag, err := tx.Exec(ctx, "UPDATE model_versions SET description = $3, last_updated_time = $4 WHERE name = $1 AND version = $2",
			name, version, description, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoVersion(name, version)
		}
		out, err = readVersion(ctx, tx, name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TransitionModelVersionStage implements tracking.RegistryStore.
func (s *Store) TransitionModelVersionStage(ctx context.Context, name string, version int64, stage string, archive bool) (*tracking.ModelVersion, error) {
	if archive && stage != tracking.StageStaging && stage != tracking.StageProduction {
		// MLflow answers 500 here; it is a client mistake.
		return nil, tracking.Errorf(tracking.InvalidParameterValue,
			"Model version transition cannot archive existing model versions because '%s' is not an Active stage. "+
				"Valid stages are %s, %s", stage, tracking.StageStaging, tracking.StageProduction)
	}
	now := s.now()
	var out *tracking.ModelVersion
	err := s.inTx(ctx, "transition model version stage", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		if err := versionExists(ctx, tx, name, version, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		if archive {
			if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = $4, last_updated_time = $5
				WHERE name = $1 AND version <> $2 AND current_stage = $3`,
				name, version, stage, tracking.StageArchived, now); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE model_versions SET current_stage = $3, last_updated_time = $4 WHERE name = $1 AND version = $2",
			name, version, stage, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE registered_models SET last_updated_time = $2 WHERE name = $1", name, now); err != nil {
			return err
		}
		var err error
		out, err = readVersion(ctx, tx, name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteModelVersion implements tracking.RegistryStore. Aliases that
// point at the version are kept, as MLflow 2.22.1 keeps them (they no
// longer resolve); the version's tags go with it.
func (s *Store) DeleteModelVersion(ctx context.Context, name string, version int64) error {
	now := s.now()
	return s.inTx(ctx, "delete model version", func(tx pgx.Tx) error {
		if _, err := lockModel(ctx, tx, name, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM model_versions WHERE name = $1 AND version = $2", name, version)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoVersion(name, version)
		}
		_, err = tx.Exec(ctx, "UPDATE registered_models SET max_version = greatest(max_version, $2), last_updated_time = $3 WHERE name = $1",
			name, version, now)
		return err
	})
}

// SetModelVersionTag implements tracking.RegistryStore.
func (s *Store) SetModelVersionTag(ctx context.Context, name string, version int64, tag tracking.Tag) error {
	return s.inTx(ctx, "set model version tag", func(tx pgx.Tx) error {
		if err := versionExists(ctx, tx, name, version, "FOR KEY SHARE"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4)
			ON CONFLICT (name, version, key) DO UPDATE SET value = EXCLUDED.value`, name, version, tag.Key, tag.Value)
		return err
	})
}

// DeleteModelVersionTag implements tracking.RegistryStore.
func (s *Store) DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error {
	return s.inTx(ctx, "delete model version tag", func(tx pgx.Tx) error {
		if err := versionExists(ctx, tx, name, version, "FOR KEY SHARE"); err != nil {
			return err
		}
		if !storable(key) {
			return nil
		}
		_, err := tx.Exec(ctx, "DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3", name, version, key)
		return err
	})
}

func isPromptVersion(tags []tracking.Tag) bool {
	for _, t := range tags {
		if t.Key == tracking.TagIsPrompt && strings.EqualFold(t.Value, "true") {
			return true
		}
	}
	return false
}

// addModelVersionTag appends {"name", "version"} to the logged model's
// mlflow.modelVersions tag (JSON written as Python's json.dumps does) and
// touches the model's last update time, under a lock of the logged model
// row. A missing logged model is RESOURCE_DOES_NOT_EXIST.
func addModelVersionTag(ctx context.Context, tx dbtx, modelID, name string, version, now int64) error {
	if err := lockLoggedModel(ctx, tx, modelID, "FOR NO KEY UPDATE"); err != nil {
		return err
	}
	var current string
	err := tx.QueryRow(ctx, "SELECT value FROM logged_model_tags WHERE model_id = $1 AND key = $2", modelID, tracking.TagModelVersions).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	type entry struct {
		Name    string
		Version int64
	}
	var list []entry
	if current != "" {
		var raw []struct {
			Name    string          `json:"name"`
			Version json.RawMessage `json:"version"`
		}
		if json.Unmarshal([]byte(current), &raw) == nil {
			for _, e := range raw {
				n, err := strconv.ParseInt(strings.Trim(string(e.Version), `"`), 10, 64)
				if err == nil {
					list = append(list, entry{e.Name, n})
				}
			}
		}
	}
	found := false
	for _, e := range list {
		found = found || e == entry{name, version}
	}
	if !found {
		list = append(list, entry{name, version})
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		nameJSON, _ := json.Marshal(e.Name)
		fmt.Fprintf(&b, `{"name": %s, "version": %d}`, nameJSON, e.Version)
	}
	b.WriteByte(']')
	if err := upsertLoggedModelTag(ctx, tx, modelID, tracking.Tag{Key: tracking.TagModelVersions, Value: b.String()}); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE logged_models SET last_updated_timestamp = $2 WHERE model_id = $1", modelID, now)
	return err
}
