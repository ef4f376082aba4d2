package mlflowimport

import (
	"context"
	"fmt"
	"io"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Problem is a source record that could not be read; it is skipped.
type Problem struct {
	// Kind is the kind of record ("experiment", "run", "logged model",
	// "trace", "registered model", "model version", "artifact").
	Kind string
	// ID names the record (an id, a path or a name).
	ID string
	// Err is why it was skipped.
	Err error
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %v", p.Kind, p.ID, p.Err) }

// HistoryChunk is the most metric points a Source hands over in one call
// of a Run's History, and what Import writes per ImportMetricHistory.
const HistoryChunk = 5000

// Run is one source run: the run (info, params, tags, latest metrics in
// Data.Metrics, inputs), a stream of its whole metric history, and its
// artifacts.
type Run struct {
	Run *tracking.Run
	// History calls fn with the run's metric history in chunks of at
	// most HistoryChunk points (any keys, any order; each point once,
	// exact duplicates allowed), never holding the whole history. It may
	// be called more than once (a dry run counts, an import writes) and
	// reads the source again each time. An error from fn is returned as
	// it is; an unreadable history is an error too. Nil means no history.
	History func(ctx context.Context, fn func([]tracking.Metric) error) error
	// Artifacts is the run's artifact tree, or nil when there is none to
	// copy (none logged, or the location cannot be read from here, which
	// the source reports as a Problem of kind "artifact").
	Artifacts ArtifactTree
}

// LoggedModel is one MLflow 3 logged model (with every metric point in
// Model.Data.Metrics) and its artifacts.
type LoggedModel struct {
	Model *tracking.LoggedModel
	// Artifacts is the model's artifact tree (nil as for Run.Artifacts).
	Artifacts ArtifactTree
}

// Trace is one trace: its info with tags, request metadata, assessments
// and linked runs, and its data artifacts (traces.json).
type Trace struct {
	Trace *tracking.TraceInfo
	// Artifacts is the trace's artifact directory, the one its
	// mlflow.artifactLocation tag names (nil as for Run.Artifacts).
	Artifacts ArtifactTree
}

// Model is one registered model with all its versions.
type Model struct {
	Model    *tracking.RegisteredModel
	Versions []*tracking.ModelVersion
	// DeletedVersions are numbers the model had and deleted: not
	// imported, but never reused.
	DeletedVersions []string
}

// Source reads an MLflow installation. Every method reports unreadable
// records through report and goes on; a returned error stops the import
// (and so does an error returned by fn, which the method returns as it
// is). Import calls Experiments, then for each experiment LoggedModels,
// Runs and Traces in that order (runs name logged models, traces link
// runs), then Models. A REST source (or any other) implements the same
// methods; Estimator is optional.
type Source interface {
	// Name describes the source for messages.
	Name() string
	// Experiments lists every experiment, active and deleted, with tags.
	Experiments(ctx context.Context, report func(Problem)) ([]*tracking.Experiment, error)
	// Runs calls fn with each run of the experiment, active and deleted.
	Runs(ctx context.Context, exp *tracking.Experiment, report func(Problem), fn func(*Run) error) error
	// LoggedModels calls fn with each logged model of the experiment
	// (none for an MLflow without them).
	LoggedModels(ctx context.Context, exp *tracking.Experiment, report func(Problem), fn func(*LoggedModel) error) error
	// Traces calls fn with each trace of the experiment.
	Traces(ctx context.Context, exp *tracking.Experiment, report func(Problem), fn func(*Trace) error) error
	// Models calls fn with each registered model and its versions.
	Models(ctx context.Context, report func(Problem), fn func(*Model) error) error
	// Close releases the source.
	Close() error
}

// Estimate is a Source's cheap guess of its size, for a progress
// display's ETA; a zero field is unknown.
type Estimate struct {
	Runs, MetricPoints, ArtifactFiles, ArtifactBytes int64
}

// Estimator is implemented by sources that can guess their size without
// reading every record (counting rows, summing file sizes).
type Estimator interface {
	// Estimate returns the guess for the experiments named (all when
	// experiments is empty, names or ids).
	Estimate(ctx context.Context, experiments []string) (Estimate, error)
}

// ArtifactFile is one file of an ArtifactTree.
type ArtifactFile struct {
	// Path is the file's path below the tree's root, slash-separated,
	// clean and relative.
	Path string
	// Size is its length in bytes.
	Size int64
	// MD5 is the file's MD5 digest when the source keeps one (a cloud
	// object's hash), so that an unchanged copy is recognised without
	// reading the source; nil when unknown.
	MD5 []byte
}

// ArtifactTree is a directory of artifacts wherever it is (a local
// directory, a bucket prefix, a remote server).
type ArtifactTree interface {
	// Location names the tree for messages (a path or a URI).
	Location() string
	// Walk calls fn with every regular file below the root (a tree that
	// does not exist has none). An error from fn is returned as it is.
	Walk(ctx context.Context, fn func(ArtifactFile) error) error
	// Open streams one file by its Path. Import opens several files of
	// a tree at once (from several goroutines) while Walk goes on.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
}
