package tracking

import (
	"context"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Trace statuses as MLflow 2.x names them on the wire (TraceStatus).
const (
	TraceStatusUnspecified = "TRACE_STATUS_UNSPECIFIED"
	TraceStatusOK          = "OK"
	TraceStatusError       = "ERROR"
	TraceStatusInProgress  = "IN_PROGRESS"
)

// Reserved trace tag and metadata keys the server itself reads or writes.
const (
	// TraceTagArtifactLocation is the tag holding the URI of the
	// directory with the trace's data (traces.json).
	TraceTagArtifactLocation = "mlflow.artifactLocation"
	// TraceTagName is the trace's name (searchable as "name").
	TraceTagName = "mlflow.traceName"
	// TraceMetadataSourceRun is the run a trace was created in
	// (searchable as "run_id").
	TraceMetadataSourceRun = "mlflow.sourceRun"
	// TraceDataFile is the name of the trace data artifact.
	TraceDataFile = "traces.json"
)

// TraceInfo is a trace's metadata as MLflow 2.x's REST API returns it
// (TraceInfo in service.proto). ExecutionTimeMs is always present (0 while
// the trace is in progress); empty lists are omitted.
type TraceInfo struct {
	RequestID       string `json:"request_id"`
	ExperimentID    string `json:"experiment_id"`
	TimestampMs     int64  `json:"timestamp_ms"`
	ExecutionTimeMs int64  `json:"execution_time_ms"`
	Status          string `json:"status"`
	RequestMetadata []Tag  `json:"request_metadata,omitempty"`
	Tags            []Tag  `json:"tags,omitempty"`
}

// Tag returns the value of a trace tag.
func (t *TraceInfo) Tag(key string) (string, bool) { return lookupTag(t.Tags, key) }

// Metadata returns the value of a request metadata entry.
func (t *TraceInfo) Metadata(key string) (string, bool) { return lookupTag(t.RequestMetadata, key) }

func lookupTag(tags []Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// TraceStore is the trace part of a backend (MLflow 2.x trace info; the
// span data lives in the artifact store, written by the client).
type TraceStore interface {
	// StartTrace creates an IN_PROGRESS trace in an existing experiment,
	// generating its request id and adding the mlflow.artifactLocation tag
	// (<experiment artifact location>/traces/<request id>/artifacts).
	StartTrace(ctx context.Context, req StartTrace) (*TraceInfo, error)
	// EndTrace sets a trace's status and execution time (timestampMs minus
	// its start) and upserts metadata and tags.
	EndTrace(ctx context.Context, req EndTrace) (*TraceInfo, error)
	// GetTraceInfo returns a trace; a missing one is RESOURCE_DOES_NOT_EXIST.
	GetTraceInfo(ctx context.Context, requestID string) (*TraceInfo, error)
	// SetTraceTag upserts a trace tag.
	SetTraceTag(ctx context.Context, requestID string, tag Tag) error
	// DeleteTraceTag removes a trace tag; a missing tag is
	// RESOURCE_DOES_NOT_EXIST.
	DeleteTraceTag(ctx context.Context, requestID, key string) error
	// SearchTraces returns one page of traces of the given experiments.
	SearchTraces(ctx context.Context, q TraceQuery) (TracePage, error)
	// DeleteTraces deletes traces of an experiment, either those listed in
	// RequestIDs or the oldest (at most MaxTraces, 0 meaning all) with a
	// timestamp ≤ MaxTimestampMillis, and returns how many were deleted.
	DeleteTraces(ctx context.Context, req DeleteTraces) (int, error)
}

// StartTrace is the input of TraceStore.StartTrace.
type StartTrace struct {
	ExperimentID    string
	TimestampMs     int64
	RequestMetadata []Tag
	Tags            []Tag
}

// EndTrace is the input of TraceStore.EndTrace.
type EndTrace struct {
	RequestID       string
	TimestampMs     int64
	Status          string
	RequestMetadata []Tag
	Tags            []Tag
}

// DeleteTraces is the input of TraceStore.DeleteTraces.
type DeleteTraces struct {
	ExperimentID       string
	MaxTimestampMillis int64
	MaxTraces          int
	RequestIDs         []string
}

// TraceQuery is a parsed search-traces request.
type TraceQuery struct {
	ExperimentIDs []string
	Filter        []search.Clause
	OrderBy       []search.OrderKey
	MaxResults    int
	PageToken     string
}

// TracePage is one page of traces.
type TracePage struct {
	Traces        []*TraceInfo
	NextPageToken string
}

// TraceAttr returns an attribute of the trace for searches: the string
// attributes request_id, experiment_id and status, or the numeric ones
// timestamp_ms and execution_time_ms.
func (t *TraceInfo) TraceAttr(key string) (string, int64) {
	switch key {
	case "request_id":
		return t.RequestID, 0
	case "experiment_id":
		return t.ExperimentID, 0
	case "status":
		return t.Status, 0
	case "timestamp_ms":
		return "", t.TimestampMs
	case "execution_time_ms":
		return "", t.ExecutionTimeMs
	}
	return "", 0
}
