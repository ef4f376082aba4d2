package sqlsource

import (
	"context"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// LoggedModels implements mlflowimport.Source.
func (s *Source) LoggedModels(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.LoggedModel) error) error {
	return nil
}

// Traces implements mlflowimport.Source.
func (s *Source) Traces(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Trace) error) error {
	return nil
}
