package tracking

import "context"

// GCRun is what garbage collection needs to know about a run.
type GCRun struct {
	RunID        string `json:"run_id"`
	ExperimentID string `json:"experiment_id"`
	// ArtifactURI is where the run's artifacts live.
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
	// DeletedTime is when the run was deleted (ms since the epoch; 0 for
	// an active run).
	DeletedTime int64 `json:"deleted_time,omitempty"`
}

// GCExperiment is what garbage collection needs to know about an
// experiment.
type GCExperiment struct {
	ExperimentID     string `json:"experiment_id"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
	// LastUpdateTime is, for a deleted experiment, when it was deleted.
	LastUpdateTime int64 `json:"last_update_time"`
}

// GarbageCollector is implemented by stores that can delete runs and
// experiments permanently, as MLflow's SQL store does for `mlflow gc`
// (_hard_delete_run, _hard_delete_experiment, _get_deleted_runs). The
// selection rules (ages, given ids, errors) live with the caller (package
// internal/maint); the store only lists and deletes.
type GarbageCollector interface {
	// DeletedRuns lists every run in the deleted lifecycle stage.
	DeletedRuns(ctx context.Context) ([]GCRun, error)
	// DeletedExperiments lists every experiment in the deleted stage.
	DeletedExperiments(ctx context.Context) ([]GCExperiment, error)
	// GCRun describes one run in any stage (RESOURCE_DOES_NOT_EXIST when
	// unknown).
	GCRun(ctx context.Context, runID string) (GCRun, error)
	// GCExperiment describes one experiment in any stage
	// (RESOURCE_DOES_NOT_EXIST when unknown).
	GCExperiment(ctx context.Context, experimentID string) (GCExperiment, error)
	// ExperimentRuns lists every run of an experiment, in any stage.
	ExperimentRuns(ctx context.Context, experimentID string) ([]GCRun, error)
	// HardDeleteRun removes a run in the deleted stage and everything
	// recorded under it (params, tags, metric history and latest values,
	// dataset and model inputs, model outputs). It refuses an active run
	// (INVALID_PARAMETER_VALUE). Registered model versions and logged
	// models that name the run keep the id, as in MLflow.
	HardDeleteRun(ctx context.Context, runID string) error
	// HardDeleteExperiment removes an experiment in the deleted stage with
	// its tags, all of its runs (as HardDeleteRun, whatever their stage),
	// its logged models and its traces; its name becomes free. It refuses
	// an active experiment (INVALID_PARAMETER_VALUE).
	HardDeleteExperiment(ctx context.Context, experimentID string) error
}
