package tracking

import (
	"context"
	"encoding/json"

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

// TraceInfo is a trace's metadata, one record for both of MLflow's views:
// the 2.x TraceInfo (request_id, timestamp_ms, execution_time_ms, status,
// request_metadata, tags) and the 3.x TraceInfoV3 (trace_id, request_time,
// execution_duration, state, trace_metadata, tags, previews, client request
// id, assessments). The handlers build each wire form from it; its JSON
// form is the stored one. ExecutionTimeMs is 0 while the trace is in
// progress; Status holds the 2.x names (TraceStatus*).
type TraceInfo struct {
	RequestID       string `json:"request_id"`
	ExperimentID    string `json:"experiment_id"`
	TimestampMs     int64  `json:"timestamp_ms"`
	ExecutionTimeMs int64  `json:"execution_time_ms"`
	Status          string `json:"status"`
	RequestMetadata []Tag  `json:"request_metadata,omitempty"`
	Tags            []Tag  `json:"tags,omitempty"`

	// ClientRequestID, RequestPreview and ResponsePreview are MLflow 3
	// fields (empty for traces started through the 2.x API).
	ClientRequestID string `json:"client_request_id,omitempty"`
	RequestPreview  string `json:"request_preview,omitempty"`
	ResponsePreview string `json:"response_preview,omitempty"`
	// Assessments are the trace's feedback and expectations.
	Assessments []Assessment `json:"assessments,omitempty"`
	// LinkedRunIDs are the runs the trace was linked to with
	// link-to-run; a search for run_id matches them as well as the
	// mlflow.sourceRun metadata.
	LinkedRunIDs []string `json:"linked_run_ids,omitempty"`
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

	// StartTraceV3 records a trace the client identified itself (MLflow
	// 3's StartTraceV3) in an active experiment, with the
	// mlflow.artifactLocation tag added. If the id exists, the trace is
	// replaced by t, keeping stored tags and metadata t does not set and
	// stored previews t leaves empty. Starting an existing trace in
	// another experiment is INVALID_PARAMETER_VALUE.
	StartTraceV3(ctx context.Context, t *TraceInfo) (*TraceInfo, error)
	// LinkTracesToRun links existing traces to an existing run (unknown
	// trace ids are ignored, as MLflow does).
	LinkTracesToRun(ctx context.Context, traceIDs []string, runID string) error

	// CreateAssessment adds an assessment to its trace (a.TraceID),
	// generating its id (a-<32 hex>) when empty; an assessment it
	// overrides becomes invalid.
	CreateAssessment(ctx context.Context, a Assessment) (*Assessment, error)
	// GetAssessment returns one assessment of a trace.
	GetAssessment(ctx context.Context, traceID, assessmentID string) (*Assessment, error)
	// UpdateAssessment applies fn to an assessment and stores it with
	// LastUpdateTimeMs set to now.
	UpdateAssessment(ctx context.Context, traceID, assessmentID string, fn func(*Assessment) error) (*Assessment, error)
	// DeleteAssessment removes an assessment (a missing one is fine); the
	// assessment it overrode becomes valid again.
	DeleteAssessment(ctx context.Context, traceID, assessmentID string) error
}

// Assessment is feedback on or an expectation of a trace (MLflow 3's
// assessments.Assessment). The value messages (source, feedback,
// expectation, issue, error) are kept as their proto JSON; times are
// milliseconds.
type Assessment struct {
	AssessmentID     string            `json:"assessment_id"`
	AssessmentName   string            `json:"assessment_name"`
	TraceID          string            `json:"trace_id"`
	SpanID           string            `json:"span_id,omitempty"`
	Source           json.RawMessage   `json:"source,omitempty"`
	CreateTimeMs     int64             `json:"create_time_ms"`
	LastUpdateTimeMs int64             `json:"last_update_time_ms"`
	Feedback         json.RawMessage   `json:"feedback,omitempty"`
	Expectation      json.RawMessage   `json:"expectation,omitempty"`
	Issue            json.RawMessage   `json:"issue,omitempty"`
	Rationale        string            `json:"rationale,omitempty"`
	Error            json.RawMessage   `json:"error,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	Overrides        string            `json:"overrides,omitempty"`
	Valid            bool              `json:"valid"`
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
// attributes request_id, experiment_id, status and client_request_id, or
// the numeric ones timestamp_ms, execution_time_ms and end_time_ms.
func (t *TraceInfo) TraceAttr(key string) (string, int64) {
	switch key {
	case "client_request_id":
		return t.ClientRequestID, 0
	case "end_time_ms":
		return "", t.TimestampMs + t.ExecutionTimeMs
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

// LinkedToRun reports whether the trace was linked to the run with
// link-to-run.
func (t *TraceInfo) LinkedToRun(runID string) bool {
	for _, id := range t.LinkedRunIDs {
		if id == runID {
			return true
		}
	}
	return false
}
