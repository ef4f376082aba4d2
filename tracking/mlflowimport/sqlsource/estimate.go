package sqlsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

var _ mlflowimport.Estimator = (*Source)(nil)

// Estimate implements mlflowimport.Estimator: it counts runs and metric
// rows and lists the runs' artifact trees.
func (s *Source) Estimate(ctx context.Context, experiments []string) (mlflowimport.Estimate, error) {
	var est mlflowimport.Estimate
	where, args := "", []any{}
	if len(experiments) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(experiments)), ", ")
		where = fmt.Sprintf(" WHERE experiment_id IN (SELECT experiment_id FROM experiments WHERE name IN (%s) OR CAST(experiment_id AS TEXT) IN (%s))", marks, marks)
		for range 2 {
			for _, e := range experiments {
				args = append(args, e)
			}
		}
	}
	rows, err := s.db.QueryContext(ctx, "SELECT run_uuid, artifact_uri FROM runs"+where, args...)
	if err != nil {
		return est, err
	}
	var uris []string
	for rows.Next() {
		var id string
		var uri *string
		if err := rows.Scan(&id, &uri); err != nil {
			rows.Close()
			return est, err
		}
		est.Runs++
		if uri != nil {
			uris = append(uris, *uri)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return est, err
	}
	q := "SELECT count(*) FROM metrics"
	if where != "" {
		q += " WHERE run_uuid IN (SELECT run_uuid FROM runs" + where + ")"
	}
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&est.MetricPoints); err != nil {
		return est, err
	}
	for _, uri := range uris {
		if err := ctx.Err(); err != nil {
			return est, err
		}
		t, err := s.artifacts.Resolve(ctx, uri, "")
		if err != nil || t == nil {
			continue
		}
		if err := t.Walk(ctx, func(f mlflowimport.ArtifactFile) error {
			est.ArtifactFiles++
			est.ArtifactBytes += f.Size
			return nil
		}); err != nil {
			return est, err
		}
	}
	return est, nil
}
