package sqlsource

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// deletedStage is the stage the SQL registry gives deleted versions.
const deletedStage = "Deleted_Internal"

// Models implements mlflowimport.Source.
func (s *Source) Models(ctx context.Context, report func(mlflowimport.Problem), fn func(*mlflowimport.Model) error) error {
	if s.cols["registered_models"] == nil {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT name, creation_time, last_updated_time, description FROM registered_models ORDER BY name")
	if err != nil {
		return fmt.Errorf("reading registered models: %w", err)
	}
	var models []*tracking.RegisteredModel
	for rows.Next() {
		var m tracking.RegisteredModel
		var ct, ut sql.NullInt64
		var desc sql.NullString
		if err := rows.Scan(&m.Name, &ct, &ut, &desc); err != nil {
			rows.Close()
			return err
		}
		m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description = ct.Int64, ut.Int64, desc.String
		models = append(models, &m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := s.model(ctx, m)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(mlflowimport.Problem{Kind: "registered model", ID: m.Name, Err: err})
			continue
		}
		if err := fn(out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) model(ctx context.Context, m *tracking.RegisteredModel) (*mlflowimport.Model, error) {
	var err error
	if s.cols["registered_model_tags"] != nil {
		if m.Tags, err = s.kv(ctx, "SELECT key, value FROM registered_model_tags WHERE name = ?", m.Name); err != nil {
			return nil, fmt.Errorf("tags: %w", err)
		}
	}
	if s.cols["registered_model_aliases"] != nil {
		aliases, err := s.kv(ctx, "SELECT alias, CAST(version AS TEXT) FROM registered_model_aliases WHERE name = ?", m.Name)
		if err != nil {
			return nil, fmt.Errorf("aliases: %w", err)
		}
		for _, a := range aliases {
			m.Aliases = append(m.Aliases, tracking.RegisteredModelAlias{Alias: a.Key, Version: a.Value})
		}
	}
	out := &mlflowimport.Model{Model: m}
	c := func(name string) string { return s.col("model_versions", name) }
	q := fmt.Sprintf(`SELECT version, creation_time, last_updated_time, description, user_id, current_stage, source,
		run_id, status, %s, %s, %s FROM model_versions WHERE name = ? ORDER BY version`,
		c("run_link"), c("storage_location"), c("model_id"))
	rows, err := s.db.QueryContext(ctx, q, m.Name)
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		var ct, ut sql.NullInt64
		var desc, user, stage, source, runID, status, link, storage, modelID sql.NullString
		if err := rows.Scan(&n, &ct, &ut, &desc, &user, &stage, &source, &runID, &status, &link, &storage, &modelID); err != nil {
			return nil, err
		}
		v := &tracking.ModelVersion{Name: m.Name, Version: strconv.FormatInt(n, 10), CreationTimestamp: ct.Int64,
			LastUpdatedTimestamp: ut.Int64, Description: desc.String, UserID: user.String, CurrentStage: stage.String,
			Source: source.String, RunID: runID.String, Status: status.String, RunLink: link.String,
			StorageLocation: storage.String, ModelID: modelID.String}
		if v.CurrentStage == deletedStage {
			out.DeletedVersions = append(out.DeletedVersions, v.Version)
			continue
		}
		if v.CurrentStage == "" {
			v.CurrentStage = "None"
		}
		if v.Status == "" {
			v.Status = "READY"
		}
		out.Versions = append(out.Versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, v := range out.Versions {
		if s.cols["model_version_tags"] == nil {
			break
		}
		if v.Tags, err = s.kv(ctx, "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?", m.Name, v.Version); err != nil {
			return nil, fmt.Errorf("version %s tags: %w", v.Version, err)
		}
	}
	return out, nil
}
