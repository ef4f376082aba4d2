package restsource

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// LoggedModels implements mlflowimport.Source: logged-models/search of
// the experiment (MLflow 3; a server without it has none).
func (s *Source) LoggedModels(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.LoggedModel) error) error {
	return s.c.EachLoggedModel(ctx, []string{exp.ExperimentID}, func(m mlflowclient.LoggedModel) error {
		if m.Info.ModelID == "" {
			report(mlflowimport.Problem{Kind: "logged model", ID: m.Info.Name, Err: fmt.Errorf("no model_id")})
			return nil
		}
		lm := &tracking.LoggedModel{Info: tracking.LoggedModelInfo{ModelID: m.Info.ModelID, ExperimentID: m.Info.ExperimentID,
			Name: m.Info.Name, CreationTimestampMs: int64(m.Info.CreationTimestampMs), LastUpdatedTimestampMs: int64(m.Info.LastUpdatedTimestampMs),
			ArtifactURI: m.Info.ArtifactURI, Status: m.Info.Status, ModelType: m.Info.ModelType, SourceRunID: m.Info.SourceRunID,
			StatusMessage: m.Info.StatusMessage, Tags: tags(m.Info.Tags)}}
		for _, p := range m.Data.Params {
			lm.Data.Params = append(lm.Data.Params, tracking.Param{Key: p.Key, Value: p.Value})
		}
		sort.Slice(lm.Data.Params, func(i, j int) bool { return lm.Data.Params[i].Key < lm.Data.Params[j].Key })
		for _, x := range m.Data.Metrics {
			lm.Data.Metrics = append(lm.Data.Metrics, tracking.ModelMetric{Key: x.Key, Value: float64(x.Value),
				Timestamp: int64(x.Timestamp), Step: int64(x.Step), DatasetName: x.DatasetName, DatasetDigest: x.DatasetDigest,
				ModelID: x.ModelID, RunID: x.RunID})
		}
		return fn(&mlflowimport.LoggedModel{Model: lm, Artifacts: s.loggedModelTree(m.Info.ModelID, m.Info.ArtifactURI)})
	})
}

// traceInfoV3 is MLflow 3's TraceInfoV3 as a server answers it
// (mlflow/protos/service.proto): times as protobuf JSON Timestamp and
// Duration strings, metadata and tags as maps.
type traceInfoV3 struct {
	TraceID         string `json:"trace_id"`
	ClientRequestID string `json:"client_request_id"`
	TraceLocation   struct {
		MlflowExperiment *struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"mlflow_experiment"`
	} `json:"trace_location"`
	RequestPreview  string            `json:"request_preview"`
	ResponsePreview string            `json:"response_preview"`
	RequestTime     string            `json:"request_time"`
	Duration        string            `json:"execution_duration"`
	State           json.RawMessage   `json:"state"`
	TraceMetadata   map[string]string `json:"trace_metadata"`
	Tags            map[string]string `json:"tags"`
	Assessments     []assessmentV3    `json:"assessments"`
}

// assessmentV3 is MLflow 3's Assessment message (assessments.proto).
type assessmentV3 struct {
	AssessmentID   string            `json:"assessment_id"`
	AssessmentName string            `json:"assessment_name"`
	TraceID        string            `json:"trace_id"`
	SpanID         string            `json:"span_id"`
	Source         json.RawMessage   `json:"source"`
	CreateTime     string            `json:"create_time"`
	LastUpdateTime string            `json:"last_update_time"`
	Feedback       json.RawMessage   `json:"feedback"`
	Expectation    json.RawMessage   `json:"expectation"`
	Issue          json.RawMessage   `json:"issue"`
	Rationale      string            `json:"rationale"`
	Error          json.RawMessage   `json:"error"`
	Metadata       map[string]string `json:"metadata"`
	Overrides      string            `json:"overrides"`
	Valid          *bool             `json:"valid"`
}

// traceStates are TraceInfoV3.State's names by proto number.
var traceStates = []string{"STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"}

// parseTime reads a protobuf JSON Timestamp as ms since the epoch.
func parseTime(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t.UnixMilli(), nil
}

// parseDuration reads a protobuf JSON Duration ("1.5s") as ms.
func parseDuration(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num, ok := strings.CutSuffix(s, "s")
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("duration %q is not protobuf's form (\"1.5s\")", s)
	}
	ms := f * 1000
	if ms < 0 {
		return int64(ms - 0.5), nil
	}
	return int64(ms + 0.5), nil
}

func mapTags(m map[string]string) []tracking.Tag {
	if len(m) == 0 {
		return nil
	}
	out := make([]tracking.Tag, 0, len(m))
	for k, v := range m {
		out = append(out, tracking.Tag{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// traceInfo converts a TraceInfoV3 into the destination's trace record
// (the inverse of the mapping tracking/api's v3 routes serve).
func traceInfo(raw json.RawMessage, expID string) (*tracking.TraceInfo, error) {
	var in traceInfoV3
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("decoding TraceInfoV3: %w", err)
	}
	if in.TraceID == "" {
		return nil, fmt.Errorf("TraceInfoV3 without trace_id")
	}
	t := &tracking.TraceInfo{RequestID: in.TraceID, ExperimentID: expID, ClientRequestID: in.ClientRequestID,
		RequestPreview: in.RequestPreview, ResponsePreview: in.ResponsePreview, Status: tracking.TraceStatusUnspecified,
		RequestMetadata: mapTags(in.TraceMetadata), Tags: mapTags(in.Tags)}
	if in.TraceLocation.MlflowExperiment != nil && in.TraceLocation.MlflowExperiment.ExperimentID != "" {
		t.ExperimentID = in.TraceLocation.MlflowExperiment.ExperimentID
	}
	var err error
	if t.TimestampMs, err = parseTime(in.RequestTime); err != nil {
		return nil, err
	}
	if t.ExecutionTimeMs, err = parseDuration(in.Duration); err != nil {
		return nil, err
	}
	if st := strings.Trim(string(in.State), `"`); st != "" && st != "null" {
		if n, err := strconv.Atoi(st); err == nil && n >= 0 && n < len(traceStates) {
			st = traceStates[n]
		}
		if st != "STATE_UNSPECIFIED" {
			t.Status = st
		}
	}
	for _, a := range in.Assessments {
		x := tracking.Assessment{AssessmentID: a.AssessmentID, AssessmentName: a.AssessmentName, TraceID: t.RequestID,
			SpanID: a.SpanID, Source: nonNull(a.Source), Feedback: nonNull(a.Feedback), Expectation: nonNull(a.Expectation),
			Issue: nonNull(a.Issue), Rationale: a.Rationale, Error: nonNull(a.Error), Metadata: a.Metadata,
			Overrides: a.Overrides, Valid: a.Valid == nil || *a.Valid}
		if x.CreateTimeMs, err = parseTime(a.CreateTime); err != nil {
			return nil, fmt.Errorf("assessment %s: %w", a.AssessmentID, err)
		}
		if x.LastUpdateTimeMs, err = parseTime(a.LastUpdateTime); err != nil {
			return nil, fmt.Errorf("assessment %s: %w", a.AssessmentID, err)
		}
		t.Assessments = append(t.Assessments, x)
	}
	return t, nil
}

func nonNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return r
}

// Traces implements mlflowimport.Source: traces/search (v3) of the
// experiment, each trace's full info read again with GET traces/<id>
// (searches may leave assessments out), and its data. A server without
// the v3 routes has none.
func (s *Source) Traces(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Trace) error) error {
	return s.c.EachTraceV3(ctx, []string{exp.ExperimentID}, func(raw json.RawMessage) error {
		var id struct {
			TraceID string `json:"trace_id"`
		}
		_ = json.Unmarshal(raw, &id)
		if id.TraceID != "" {
			full, err := s.c.GetTraceInfoV3(ctx, id.TraceID)
			switch {
			case err == nil && len(full) > 0:
				raw = full
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil && !mlflowclient.IsEndpointMissing(err):
				report(mlflowimport.Problem{Kind: "trace", ID: id.TraceID, Err: err})
				return nil
			}
		}
		t, err := traceInfo(raw, exp.ExperimentID)
		if err != nil {
			report(mlflowimport.Problem{Kind: "trace", ID: id.TraceID, Err: err})
			return nil
		}
		loc, _ := t.Tag(tracking.TraceTagArtifactLocation)
		return fn(&mlflowimport.Trace{Trace: t, Artifacts: s.traceTree(t.RequestID, loc)})
	})
}
