package tracking

import "context"

// Importer writes records into a backend as they are: with their ids,
// version numbers, timestamps and lifecycle stages, not as new entities
// the way the Store's create methods make them. It is what moving a store
// to another backend (copy-store) and importing from another MLflow server
// write through. Each method replaces the record it names if it exists
// (with its children: a run's params, tags, latest metrics, inputs,
// outputs and metric history; a model's tags and aliases; a version's
// tags), so a repeated import converges instead of duplicating.
//
// Records arrive parents first: an experiment before its runs, logged
// models and traces; a registered model before its versions; a run
// before its metric history. Metric values are stored as given, after
// ClampMetricValue (NaN kept).
type Importer interface {
	// ImportExperiment writes an experiment with its id, name, artifact
	// location, lifecycle stage, times and tags. A name held by another
	// experiment is RESOURCE_ALREADY_EXISTS.
	ImportExperiment(ctx context.Context, e *Experiment) error
	// ImportRun writes a run's info (id, times, status, lifecycle,
	// deleted time), params, tags, latest metric values (Data.Metrics),
	// dataset and model inputs and model outputs, and marks the run
	// "import pending", in one transaction. Its metric history follows
	// through ImportMetricHistory; whatever history the run had in the
	// destination is dropped.
	ImportRun(ctx context.Context, r *Run) error
	// ImportMetricHistory appends points of one run's metric history
	// (any keys, any order; exact duplicates are stored once). Latest
	// values are not derived from them: they come with ImportRun.
	ImportMetricHistory(ctx context.Context, runID string, points []Metric) error
	// FinishRunImport clears the run's "import pending" mark after its
	// last history chunk: from then on the run is known to be whole. A
	// run that is not there is RESOURCE_DOES_NOT_EXIST.
	FinishRunImport(ctx context.Context, runID string) error
	// ImportLoggedModel writes a logged model with its id, attributes,
	// tags, params and every metric point.
	ImportLoggedModel(ctx context.Context, m *LoggedModel) error
	// ImportRegisteredModel writes a registered model with its times,
	// description, tags and aliases (LatestVersions is ignored: versions
	// come through ImportModelVersion). maxVersion is the highest version
	// number the model ever had (deleted versions included), so that
	// numbers are not reused after the import; 0 means the highest
	// imported version.
	ImportRegisteredModel(ctx context.Context, m *RegisteredModel, maxVersion int64) error
	// ImportModelVersion writes a version with its number, times, stage,
	// source, storage location, run, user, status, model id and tags.
	ImportModelVersion(ctx context.Context, v *ModelVersion) error
	// ImportTrace writes a trace's info with its tags, metadata,
	// assessments and linked runs.
	ImportTrace(ctx context.Context, t *TraceInfo) error
}

// ImportTarget is a backend that can be the destination of a whole-store
// copy.
type ImportTarget interface {
	Importer
	// IsEmpty reports whether the backend holds no records: nothing but,
	// at most, the Default experiment as EnsureDefaultExperiment makes it
	// (no runs, tags, logged models or traces in it), which an import
	// replaces.
	IsEmpty(ctx context.Context) (bool, error)
	// FinishImport runs after the last record: sequences (the next
	// experiment id) move past the imported ids and everything is made
	// durable.
	FinishImport(ctx context.Context) error
	// RunImportPending reports whether ImportRun wrote the run and its
	// FinishRunImport has not come yet: an import cut off in the middle
	// of the run's history (false for a run that is not there, or was
	// not imported).
	RunImportPending(ctx context.Context, runID string) (bool, error)
}

// ModelVersionCounter is implemented by stores that can say the highest
// version number a registered model ever had, which registry searches do
// not show once the highest versions are deleted.
type ModelVersionCounter interface {
	// MaxModelVersion returns the highest version number the model ever
	// had (0 for a model without versions).
	MaxModelVersion(ctx context.Context, name string) (int64, error)
}
