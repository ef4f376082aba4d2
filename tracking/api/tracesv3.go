package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/tracespans"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// MLflow 3's trace API: TraceInfoV3 records over the same stored traces as
// the 2.x routes (a trace started with either is visible to both), span
// data read from the traces.json artifact the client uploads, and
// assessments.

// maxLinkTraces is how many traces one link-to-run call may name.
const maxLinkTraces = 100

// maxTraceDataSize caps the traces.json read for /traces/get.
const maxTraceDataSize = 64 << 20

// traceLocationExperiment is TraceLocation's type for an MLflow experiment.
const traceLocationExperiment = "MLFLOW_EXPERIMENT"

// v3 states by their proto numbers, and the stored 2.x status of each.
var (
	traceStates     = map[string]int{"STATE_UNSPECIFIED": 0, "OK": 1, "ERROR": 2, "IN_PROGRESS": 3}
	traceStateNames = []string{"STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"}
)

func stateToStatus(state string) string {
	if state == "STATE_UNSPECIFIED" || state == "" {
		return tracking.TraceStatusUnspecified
	}
	return state
}

func statusToState(status string) string {
	if status == tracking.TraceStatusUnspecified || status == "" {
		return "STATE_UNSPECIFIED"
	}
	return status
}

// registerTracesV3 adds MLflow 3's trace routes under /api/3.0/mlflow and
// /ajax-api/3.0/mlflow, and link-to-run under /api/2.0/mlflow.
func (s *Server) registerTracesV3() {
	add := func(method, p, name string, h handlerFunc) {
		s.add(method, "/api/3.0/mlflow"+p, name, true, h)
		s.add(method, "/ajax-api/3.0/mlflow"+p, name, true, h)
	}
	add("POST", "/traces", "StartTraceV3", (*Server).startTraceV3)
	add("GET", "/traces/get", "GetTrace", (*Server).getTraceV3)
	add("GET", "/traces/batchGet", "BatchGetTraces", (*Server).batchGetTraces)
	add("POST", "/traces/batchGetInfos", "BatchGetTraceInfos", (*Server).batchGetTraceInfos)
	add("POST", "/traces/search", "SearchTracesV3", (*Server).searchTracesV3)
	add("POST", "/traces/delete-traces", "DeleteTracesV3", (*Server).deleteTraces)
	add("GET", "/traces/{trace_id}", "GetTraceInfoV3", (*Server).getTraceInfoV3)
	add("PATCH", "/traces/{trace_id}/tags", "SetTraceTagV3", (*Server).setTraceTag)
	add("DELETE", "/traces/{trace_id}/tags", "DeleteTraceTagV3", (*Server).deleteTraceTag)
	add("POST", "/traces/{trace_id}/assessments", "CreateAssessment", (*Server).createAssessment)
	add("GET", "/traces/{trace_id}/assessments/{assessment_id}", "GetAssessment", (*Server).getAssessment)
	add("PATCH", "/traces/{trace_id}/assessments/{assessment_id}", "UpdateAssessment", (*Server).updateAssessment)
	add("DELETE", "/traces/{trace_id}/assessments/{assessment_id}", "DeleteAssessment", (*Server).deleteAssessment)
	s.addTracking("POST", "/traces/link-to-run", "LinkTracesToRun", (*Server).linkTracesToRun)
	s.add("POST", "/v1/traces", "ExportTraceSpans", true, (*Server).otlpTraces)
}

// --- wire forms ---

type traceExperimentLocation struct {
	ExperimentID string `json:"experiment_id"`
}

type traceLocation struct {
	Type             string                   `json:"type"`
	MlflowExperiment *traceExperimentLocation `json:"mlflow_experiment,omitempty"`
}

// traceInfoV3 is TraceInfoV3 in proto JSON: request_time is an RFC 3339
// timestamp and execution_duration a duration string ("1.500s").
type traceInfoV3 struct {
	TraceID           string            `json:"trace_id"`
	ClientRequestID   string            `json:"client_request_id,omitempty"`
	TraceLocation     traceLocation     `json:"trace_location"`
	RequestPreview    string            `json:"request_preview,omitempty"`
	ResponsePreview   string            `json:"response_preview,omitempty"`
	RequestTime       string            `json:"request_time"`
	ExecutionDuration string            `json:"execution_duration,omitempty"`
	State             string            `json:"state"`
	TraceMetadata     map[string]string `json:"trace_metadata,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Assessments       []*assessmentJSON `json:"assessments,omitempty"`
}

// traceV3 is the Trace message: info plus OpenTelemetry spans.
type traceV3 struct {
	TraceInfo *traceInfoV3      `json:"trace_info"`
	Spans     []json.RawMessage `json:"spans,omitempty"`
}

type traceV3Response struct {
	Trace traceV3 `json:"trace"`
}

// assessmentJSON is assessments.Assessment in proto JSON.
type assessmentJSON struct {
	AssessmentID   string            `json:"assessment_id,omitempty"`
	AssessmentName string            `json:"assessment_name"`
	TraceID        string            `json:"trace_id,omitempty"`
	SpanID         string            `json:"span_id,omitempty"`
	Source         json.RawMessage   `json:"source,omitempty"`
	CreateTime     string            `json:"create_time,omitempty"`
	LastUpdateTime string            `json:"last_update_time,omitempty"`
	Feedback       json.RawMessage   `json:"feedback,omitempty"`
	Expectation    json.RawMessage   `json:"expectation,omitempty"`
	Issue          json.RawMessage   `json:"issue,omitempty"`
	Rationale      string            `json:"rationale,omitempty"`
	Error          json.RawMessage   `json:"error,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Overrides      string            `json:"overrides,omitempty"`
	Valid          *bool             `json:"valid,omitempty"`
}

// formatTimestamp writes ms since the epoch as protobuf's JSON Timestamp:
// RFC 3339 in UTC with 0 or 3 fractional digits.
func formatTimestamp(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	if ms%1000 == 0 {
		return t.Format("2006-01-02T15:04:05Z")
	}
	return t.Format("2006-01-02T15:04:05.000Z")
}

// parseTimestamp reads a protobuf JSON Timestamp (RFC 3339) as ms.
func parseTimestamp(s, field string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, invalidParam("Invalid value '%s' for parameter '%s': not an RFC 3339 timestamp", s, field)
	}
	return t.UnixMilli(), nil
}

// formatDuration writes ms as protobuf's JSON Duration ("2s", "1.500s").
func formatDuration(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	if ms%1000 == 0 {
		return fmt.Sprintf("%s%ds", sign, ms/1000)
	}
	return fmt.Sprintf("%s%d.%03ds", sign, ms/1000, ms%1000)
}

// parseDuration reads a protobuf JSON Duration ("1.5s") as ms.
func parseDuration(s, field string) (int64, error) {
	num, ok := strings.CutSuffix(s, "s")
	bad := invalidParam("Invalid value '%s' for parameter '%s': not a duration such as \"1.5s\"", s, field)
	if !ok || num == "" {
		return 0, bad
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f != f || f > 3.2e11 || f < -3.2e11 {
		return 0, bad
	}
	return int64(f*1000 + 0.5*sign(f)), nil
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func tagMap(tags []tracking.Tag) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// toV3 builds the TraceInfoV3 view of a trace. execution_duration is
// omitted while the trace is in progress and has none.
func toV3(t *tracking.TraceInfo) *traceInfoV3 {
	out := &traceInfoV3{
		TraceID:         t.RequestID,
		ClientRequestID: t.ClientRequestID,
		TraceLocation: traceLocation{Type: traceLocationExperiment,
			MlflowExperiment: &traceExperimentLocation{ExperimentID: t.ExperimentID}},
		RequestPreview:  t.RequestPreview,
		ResponsePreview: t.ResponsePreview,
		RequestTime:     formatTimestamp(t.TimestampMs),
		State:           statusToState(t.Status),
		TraceMetadata:   tagMap(t.RequestMetadata),
		Tags:            tagMap(t.Tags),
	}
	if t.ExecutionTimeMs != 0 || t.Status != tracking.TraceStatusInProgress {
		out.ExecutionDuration = formatDuration(t.ExecutionTimeMs)
	}
	for i := range t.Assessments {
		out.Assessments = append(out.Assessments, toAssessmentJSON(&t.Assessments[i]))
	}
	return out
}

func toAssessmentJSON(a *tracking.Assessment) *assessmentJSON {
	valid := a.Valid
	return &assessmentJSON{
		AssessmentID: a.AssessmentID, AssessmentName: a.AssessmentName, TraceID: a.TraceID, SpanID: a.SpanID,
		Source: a.Source, CreateTime: formatTimestamp(a.CreateTimeMs), LastUpdateTime: formatTimestamp(a.LastUpdateTimeMs),
		Feedback: a.Feedback, Expectation: a.Expectation, Issue: a.Issue, Rationale: a.Rationale, Error: a.Error,
		Metadata: a.Metadata, Overrides: a.Overrides, Valid: &valid,
	}
}

// fromAssessmentJSON checks and converts a client's assessment.
func fromAssessmentJSON(in *assessmentJSON, prefix string) (tracking.Assessment, error) {
	a := tracking.Assessment{
		AssessmentID: in.AssessmentID, AssessmentName: in.AssessmentName, TraceID: in.TraceID, SpanID: in.SpanID,
		Source: in.Source, Feedback: in.Feedback, Expectation: in.Expectation, Issue: in.Issue,
		Rationale: in.Rationale, Error: in.Error, Metadata: in.Metadata, Overrides: in.Overrides, Valid: true,
	}
	if in.Valid != nil {
		a.Valid = *in.Valid
	}
	if a.AssessmentName == "" {
		return a, missingValue(prefix + "assessment_name")
	}
	n := 0
	for _, v := range []json.RawMessage{a.Feedback, a.Expectation, a.Issue} {
		if len(v) > 0 && string(v) != "null" {
			n++
		}
	}
	if n > 1 {
		return a, invalidParam("Only one of 'feedback', 'expectation' and 'issue' may be set on an assessment.")
	}
	var err error
	if in.CreateTime != "" {
		if a.CreateTimeMs, err = parseTimestamp(in.CreateTime, prefix+"create_time"); err != nil {
			return a, err
		}
	}
	if in.LastUpdateTime != "" {
		if a.LastUpdateTimeMs, err = parseTimestamp(in.LastUpdateTime, prefix+"last_update_time"); err != nil {
			return a, err
		}
	}
	return a, nil
}

// traceInfoIn is TraceInfoV3 as a client sends it: enums by name or
// number, times as protobuf JSON strings.
type traceInfoIn struct {
	TraceID         string            `json:"trace_id"`
	ClientRequestID string            `json:"client_request_id"`
	TraceLocation   *traceLocationIn  `json:"trace_location"`
	RequestPreview  string            `json:"request_preview"`
	ResponsePreview string            `json:"response_preview"`
	RequestTime     string            `json:"request_time"`
	Duration        string            `json:"execution_duration"`
	State           json.RawMessage   `json:"state"`
	TraceMetadata   map[string]string `json:"trace_metadata"`
	Tags            map[string]string `json:"tags"`
	Assessments     []*assessmentJSON `json:"assessments"`
}

// traceLocationIn is a client's TraceLocation: the type by enum name or
// number.
type traceLocationIn struct {
	Type             json.RawMessage          `json:"type"`
	MlflowExperiment *traceExperimentLocation `json:"mlflow_experiment"`
}

// decodeTraceInfo reads a TraceInfoV3 message.
func decodeTraceInfo(raw []byte) (*tracking.TraceInfo, error) {
	var in traceInfoIn
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return nil, invalidParam("Invalid value for parameter 'trace.trace_info': %s", jsonProblem(err))
	}
	if in.TraceID == "" {
		return nil, missingValue("trace.trace_info.trace_id")
	}
	if in.TraceLocation == nil || in.TraceLocation.MlflowExperiment == nil || in.TraceLocation.MlflowExperiment.ExperimentID == "" {
		return nil, invalidParam("A trace location of type %s with an experiment_id is required in 'trace.trace_info.trace_location'.", traceLocationExperiment)
	}
	if t := strings.Trim(string(in.TraceLocation.Type), `"`); t != "" && t != "null" && t != traceLocationExperiment && t != "1" {
		return nil, invalidParam("Unsupported trace location type '%s': this server stores traces in MLflow experiments only.", t)
	}
	t := &tracking.TraceInfo{
		RequestID:       in.TraceID,
		ExperimentID:    in.TraceLocation.MlflowExperiment.ExperimentID,
		ClientRequestID: in.ClientRequestID,
		RequestPreview:  in.RequestPreview,
		ResponsePreview: in.ResponsePreview,
		Status:          tracking.TraceStatusUnspecified,
	}
	var err error
	if in.RequestTime != "" {
		if t.TimestampMs, err = parseTimestamp(in.RequestTime, "trace.trace_info.request_time"); err != nil {
			return nil, err
		}
	}
	if in.Duration != "" {
		if t.ExecutionTimeMs, err = parseDuration(in.Duration, "trace.trace_info.execution_duration"); err != nil {
			return nil, err
		}
	}
	if len(in.State) > 0 && string(in.State) != "null" {
		st, _, err := (&fields{obj: object{{name: []byte("state"), raw: in.State}}}).enum("state", traceStates)
		if err != nil {
			return nil, err
		}
		t.Status = stateToStatus(traceStateNames[st])
	}
	for k, v := range in.TraceMetadata {
		t.RequestMetadata = append(t.RequestMetadata, tracking.Tag{Key: k, Value: validate.TruncateTagValue(v)})
	}
	for k, v := range in.Tags {
		t.Tags = append(t.Tags, tracking.Tag{Key: k, Value: validate.TruncateTagValue(v)})
	}
	for i, aj := range in.Assessments {
		if aj == nil {
			continue
		}
		a, err := fromAssessmentJSON(aj, "trace.trace_info.assessments["+strconv.Itoa(i)+"].")
		if err != nil {
			return nil, err
		}
		if a.AssessmentID == "" {
			return nil, missingValue("trace.trace_info.assessments[" + strconv.Itoa(i) + "].assessment_id")
		}
		if a.CreateTimeMs == 0 {
			a.CreateTimeMs = t.TimestampMs
		}
		if a.LastUpdateTimeMs == 0 {
			a.LastUpdateTimeMs = a.CreateTimeMs
		}
		a.TraceID = t.RequestID
		t.Assessments = append(t.Assessments, a)
	}
	return t, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field '%s' has the wrong type (%s)", te.Field, te.Value)
	}
	return err.Error()
}

// --- handlers ---

// startTraceV3Request is StartTraceV3: a Trace whose trace_info is
// required (decodeTraceInfo names its fields by their full path).
type startTraceV3Request struct{ Info *tracking.TraceInfo }

func (q *startTraceV3Request) decl() []spec {
	return []spec{custom("trace", func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok || v.query {
			return false, false, nil
		}
		m, err := message(v.raw, name)
		if err != nil {
			return true, false, err
		}
		info, ok := m.lookup("trace_info")
		if !ok || kindOf(info.raw) != kindObject {
			return true, false, missingValue("trace.trace_info")
		}
		q.Info, err = decodeTraceInfo(info.raw)
		return true, false, err
	}).req()}
}

func (s *Server) startTraceV3(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *startTraceV3Request) error {
		t, err := s.store.StartTraceV3(r.Context(), q.Info)
		return answerTraceV3(w, t, nil, err)
	})
}

// answerTraceV3 answers {"trace": {"trace_info": t, "spans": spans}}, or
// err.
func answerTraceV3(w http.ResponseWriter, t *tracking.TraceInfo, spans []json.RawMessage, err error) error {
	if err != nil {
		return err
	}
	return answer(w, traceV3Response{traceV3{TraceInfo: toV3(t), Spans: spans}}, nil)
}

// traceInfoV3Of loads a trace for a 3.x route, with MLflow 3's message
// for an unknown id.
func (s *Server) traceInfoV3Of(r *http.Request, id string) (*tracking.TraceInfo, error) {
	t, err := s.store.GetTraceInfo(r.Context(), id)
	if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return nil, tracking.Errorf(tracking.ResourceDoesNotExist, "Trace with ID '%s' not found.", id)
	}
	return t, err
}

func (s *Server) getTraceInfoV3(w http.ResponseWriter, r *http.Request) error {
	t, err := s.traceInfoV3Of(r, r.PathValue("trace_id"))
	return answerTraceV3(w, t, nil, err)
}

// getTraceRequest is GetTrace. allow_partial comes first: MLflow checks a
// query string's booleans while it reads the query, before the schema.
type getTraceRequest struct {
	ID      string
	Partial bool
}

func (q *getTraceRequest) decl() []spec {
	return []spec{boolField("allow_partial", &q.Partial), str("trace_id", &q.ID).req()}
}

// getTraceV3 answers GetTrace: the info with the spans of the stored
// trace data, streamed (see traceAnswer). Without data, allow_partial
// answers the info alone; without it the trace is "not fully exported
// yet", as MLflow says.
func (s *Server) getTraceV3(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *getTraceRequest) error {
		t, err := s.traceInfoV3Of(r, q.ID)
		if err != nil {
			return err
		}
		info, err := json.Marshal(toV3(t))
		if err != nil {
			return fmt.Errorf("encode trace %s: %w", t.RequestID, err)
		}
		a := &traceAnswer{w: w, id: t.RequestID, info: info}
		if t.SpansInStore() && !q.Partial {
			// Spans go out only once the trace is known complete.
			a.threshold = max(1, expectedSpans(t))
		}
		found, err := s.eachTraceSpan(r.Context(), t, a.span)
		if err != nil {
			if a.started {
				// The status is sent: cut the body short so that the
				// client sees invalid JSON, not a truncated document.
				s.log.Error("reading spans failed mid-response", zap.String("trace", t.RequestID), zap.Error(err))
				panic(http.ErrAbortHandler)
			}
			return err
		}
		if !found && !q.Partial {
			return tracking.Errorf(tracking.ResourceDoesNotExist,
				"Trace with ID %s is not fully exported yet, please try again later.", q.ID)
		}
		return a.finish()
	})
}

// traceIDsRequest is BatchGetTraces and BatchGetTraceInfos.
type traceIDsRequest struct{ IDs []string }

func (q *traceIDsRequest) decl() []spec { return []spec{strList("trace_ids", &q.IDs).req()} }

// requestedTraces reads the required trace_ids of a batch request and
// returns those traces the caller may read (see readableTraces).
func (s *Server) requestedTraces(r *http.Request) ([]*tracking.TraceInfo, error) {
	var q traceIDsRequest
	if err := decode(r, &q); err != nil {
		return nil, err
	}
	return s.readableTraces(r, q.IDs)
}

// batchGetTraces answers BatchGetTraces: the complete traces (those with
// stored span data) among trace_ids, in the order asked; unknown ids and
// traces the caller may not read are left out.
func (s *Server) batchGetTraces(w http.ResponseWriter, r *http.Request) error {
	infos, err := s.requestedTraces(r)
	if err != nil {
		return err
	}
	out := make([]traceV3, 0, len(infos))
	for _, t := range infos {
		spans, found, err := s.traceSpans(r, t)
		if err != nil {
			return err
		}
		if found {
			out = append(out, traceV3{TraceInfo: toV3(t), Spans: spans})
		}
	}
	return answer(w, struct {
		Traces []traceV3 `json:"traces,omitempty"`
	}{out}, nil)
}

// batchGetTraceInfos answers BatchGetTraceInfos: the infos of trace_ids
// without spans.
func (s *Server) batchGetTraceInfos(w http.ResponseWriter, r *http.Request) error {
	infos, err := s.requestedTraces(r)
	if err != nil {
		return err
	}
	out := make([]*traceInfoV3, len(infos))
	for i, t := range infos {
		out[i] = toV3(t)
	}
	return answer(w, struct {
		TraceInfos []*traceInfoV3 `json:"trace_infos,omitempty"`
	}{out}, nil)
}

// readableTraces loads the listed traces, skipping unknown ids, repeats
// and (with an authorizer in the context) traces of experiments the
// caller may not read.
func (s *Server) readableTraces(r *http.Request, ids []string) ([]*tracking.TraceInfo, error) {
	a := authorizerFrom(r.Context())
	seen := make(map[string]bool, len(ids))
	canRead := map[string]bool{}
	var out []*tracking.TraceInfo
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		t, err := s.store.GetTraceInfo(r.Context(), id)
		if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if a != nil {
			ok, known := canRead[t.ExperimentID]
			if !known {
				if ok, err = a.CanReadExperiment(r.Context(), t.ExperimentID); err != nil {
					return nil, err
				}
				canRead[t.ExperimentID] = ok
			}
			if !ok {
				continue
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// checkTracesReadable refuses a request that names a trace of an
// experiment the caller may not read: the gateway authorized the run, and
// linking must not reach into other experiments. Unknown ids are left to
// the store.
func (s *Server) checkTracesReadable(r *http.Request, ids []string) error {
	if authorizerFrom(r.Context()) == nil {
		return nil
	}
	readable, err := s.readableTraces(r, ids)
	if err != nil {
		return err
	}
	ok := make(map[string]bool, len(readable))
	for _, t := range readable {
		ok[t.RequestID] = true
	}
	for _, id := range ids {
		if ok[id] {
			continue
		}
		if _, err := s.store.GetTraceInfo(r.Context(), id); tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			continue
		}
		return tracking.Errorf(tracking.PermissionDenied, "Permission denied: you cannot read trace %s.", id)
	}
	return nil
}

// traceLocationMessage is a TraceLocation of a search: only its MLflow
// experiment is read.
type traceLocationMessage struct{ Experiment *experimentLocationMessage }

func (l *traceLocationMessage) decl() []spec {
	return []spec{optMsg("mlflow_experiment", &l.Experiment, (*experimentLocationMessage).decl)}
}

// experimentLocationMessage is MlflowExperimentLocation.
type experimentLocationMessage struct{ ID string }

func (e *experimentLocationMessage) decl() []spec { return []spec{idStr("experiment_id", &e.ID)} }

func (s *Server) searchTracesV3(w http.ResponseWriter, r *http.Request) error {
	return searchTracesAs(s, w, r, true, toV3)
}

// linkTracesRequest is LinkTracesToRun.
type linkTracesRequest struct {
	IDs   []string
	RunID string
}

func (q *linkTracesRequest) decl() []spec {
	return []spec{strList("trace_ids", &q.IDs).req(), str("run_id", &q.RunID).req()}
}

func (q *linkTracesRequest) validate() error {
	if len(q.IDs) > maxLinkTraces {
		return invalidParam("Cannot link more than %d traces to a run in a single request. Provided %d traces.", maxLinkTraces, len(q.IDs))
	}
	return nil
}

func (s *Server) linkTracesToRun(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *linkTracesRequest) error {
		if len(q.IDs) == 0 {
			return writeEmpty(w)
		}
		if err := s.checkTracesReadable(r, q.IDs); err != nil {
			return err
		}
		return answerEmpty(w, s.store.LinkTracesToRun(r.Context(), q.IDs, q.RunID))
	})
}

// --- span data ---

// traceSpans returns the trace's spans in OpenTelemetry's proto JSON (see
// eachTraceSpan), at most maxTraceDataSize bytes of them.
func (s *Server) traceSpans(r *http.Request, t *tracking.TraceInfo) (spans []json.RawMessage, found bool, err error) {
	size := 0
	found, err = s.eachTraceSpan(r.Context(), t, func(dict []byte) error {
		j, err := tracespans.AppendSpan(nil, dict)
		if err != nil {
			return fmt.Errorf("trace %s: %w", t.RequestID, err)
		}
		if size += len(j); size > maxTraceDataSize {
			return traceTooLarge(t.RequestID)
		}
		spans = append(spans, j)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return spans, found, nil
}

func traceTooLarge(id string) error {
	return tracking.Errorf(tracking.InvalidParameterValue, "The data of trace %s is larger than %d bytes.", id, maxTraceDataSize)
}

// eachTraceSpan calls fn with each span of t in MLflow's stored form
// (Span.to_dict; the slice is valid during the call only), read from the
// span store (traces ingested over OTLP) or the trace's traces.json
// artifact. found is false when the data is not (yet) there: no or an
// unreadable traces.json, or fewer stored spans than the client recorded
// (like MLflow's SQL store, a trace whose spans are in the store is
// otherwise complete once it has any).
func (s *Server) eachTraceSpan(ctx context.Context, t *tracking.TraceInfo, fn func(dict []byte) error) (found bool, err error) {
	if t.SpansInStore() {
		n := 0
		err := s.store.TraceSpans(ctx, t.RequestID, storedSpanChunk, func(spans []tracking.Span) error {
			for _, sp := range spans {
				n++
				if err := fn(sp.Content); err != nil {
					return err
				}
			}
			return nil
		})
		return err == nil && n > 0 && n >= expectedSpans(t), err
	}
	data, err := s.traceData(ctx, t)
	if err != nil || data == nil {
		return false, err
	}
	spans, ok := tracespans.TraceDataSpans(data)
	if !ok {
		return false, nil
	}
	for _, sp := range spans {
		if err := fn(sp); err != nil {
			return false, err
		}
	}
	return true, nil
}

// traceData reads the trace's traces.json from the artifact store; nil
// when there is none or the trace's artifacts are not served here.
func (s *Server) traceData(ctx context.Context, t *tracking.TraceInfo) ([]byte, error) {
	loc, _ := t.Tag(tracking.TraceTagArtifactLocation)
	root, ok := s.runArtifactRoot(loc)
	if !ok || loc == "" {
		return nil, nil
	}
	obj, err := s.opts.Artifacts.Open(ctx, path.Join(root, tracking.TraceDataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the data of trace %s: %w", t.RequestID, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxTraceDataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the data of trace %s: %w", t.RequestID, err)
	}
	if len(data) > maxTraceDataSize {
		return nil, traceTooLarge(t.RequestID)
	}
	return data, nil
}

// spanFlushSize is how much span JSON a streamed GetTrace answer gathers
// before it writes it out.
const spanFlushSize = 64 << 10

// traceAnswer streams GetTrace's {"trace": {"trace_info": ..., "spans":
// [...]}}: each span is converted straight into a buffer written out every
// spanFlushSize bytes, so that memory stays bounded whatever the trace's
// size. The answer starts once threshold spans are in (a trace known
// complete); until then the spans are held, at most maxTraceDataSize
// bytes of them.
type traceAnswer struct {
	w         http.ResponseWriter
	id        string
	info      []byte // the trace_info JSON
	threshold int
	buf       []byte
	n         int
	started   bool
}

// span adds one span in MLflow's stored form.
func (a *traceAnswer) span(dict []byte) error {
	if a.n > 0 {
		a.buf = append(a.buf, ',')
	}
	var err error
	if a.buf, err = tracespans.AppendSpan(a.buf, dict); err != nil {
		return fmt.Errorf("trace %s: %w", a.id, err)
	}
	a.n++
	switch {
	case a.n >= a.threshold && len(a.buf) >= spanFlushSize:
		return a.flush()
	case !a.started && len(a.buf) > maxTraceDataSize:
		return traceTooLarge(a.id)
	}
	return nil
}

// flush writes out the buffered spans, after the answer's head the first
// time.
func (a *traceAnswer) flush() error {
	if !a.started {
		a.started = true
		a.w.Header().Set("Content-Type", "application/json")
		a.w.WriteHeader(http.StatusOK)
		head := make([]byte, 0, len(a.info)+40)
		head = append(append(append(head, `{"trace":{"trace_info":`...), a.info...), `,"spans":[`...)
		if _, err := a.w.Write(head); err != nil {
			return err
		}
	}
	_, err := a.w.Write(a.buf)
	a.buf = a.buf[:0]
	return err
}

// finish writes the rest of the answer (no "spans" without spans, as
// encoding/json's omitempty leaves them out).
func (a *traceAnswer) finish() error {
	if a.n == 0 {
		writeRawJSON(a.w, http.StatusOK, append(append([]byte(`{"trace":{"trace_info":`), a.info...), "}}"...))
		return nil
	}
	// The status is sent: a write error means the client is gone.
	if a.flush() == nil {
		_, _ = a.w.Write([]byte("]}}"))
	}
	return nil
}

// --- assessments ---

type assessmentResponse struct {
	Assessment *assessmentJSON `json:"assessment"`
}

// assessmentField declares the assessment message of a request, read
// whole in its proto JSON form.
func assessmentField(dst *assessmentJSON) spec {
	return spec{name: "assessment", read: func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok || v.query {
			return false, false, nil
		}
		if kindOf(v.raw) != kindObject {
			return true, false, invalidType(name, v)
		}
		if err := json.Unmarshal(v.raw, dst); err != nil {
			return true, false, invalidParam("Invalid value for parameter '%s': %s", name, jsonProblem(err))
		}
		return true, false, nil
	}}
}

// createAssessmentRequest is CreateAssessment.
type createAssessmentRequest struct {
	In assessmentJSON
	A  tracking.Assessment
}

func (q *createAssessmentRequest) decl() []spec { return []spec{assessmentField(&q.In).req()} }

func (q *createAssessmentRequest) validate() (err error) {
	q.A, err = fromAssessmentJSON(&q.In, "assessment.")
	return err
}

func (s *Server) createAssessment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createAssessmentRequest) error {
		q.A.TraceID = r.PathValue("trace_id")
		a, err := s.store.CreateAssessment(r.Context(), q.A)
		return answerAssessment(w, a, err)
	})
}

func (s *Server) getAssessment(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.GetAssessment(r.Context(), r.PathValue("trace_id"), r.PathValue("assessment_id"))
	return answerAssessment(w, a, err)
}

// answerAssessment answers {"assessment": a}, or err.
func answerAssessment(w http.ResponseWriter, a *tracking.Assessment, err error) error {
	if err != nil {
		return err
	}
	return answer(w, assessmentResponse{toAssessmentJSON(a)}, nil)
}

// updateMaskPaths reads a FieldMask: proto JSON writes it as one string of
// comma-separated lowerCamelCase paths; a {"paths": [...]} object is
// accepted too. Paths come back in snake_case.
func updateMaskPaths(raw []byte) ([]string, error) {
	var parts []string
	switch kindOf(raw) {
	case kindString:
		s, err := decodeString(raw)
		if err != nil {
			return nil, invalidType("update_mask", value{raw: raw})
		}
		parts = strings.Split(s, ",")
	case kindObject:
		var m struct {
			Paths []string `json:"paths"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, invalidType("update_mask", value{raw: raw})
		}
		parts = m.Paths
	default:
		return nil, invalidType("update_mask", value{raw: raw})
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		var b strings.Builder
		for _, c := range p {
			if c >= 'A' && c <= 'Z' {
				b.WriteByte('_')
				c += 'a' - 'A'
			}
			b.WriteRune(c)
		}
		out = append(out, b.String())
	}
	return out, nil
}

// updateAssessmentRequest is UpdateAssessment: the assessment and the
// paths of its update_mask.
type updateAssessmentRequest struct {
	In  assessmentJSON
	set map[string]bool
}

func (q *updateAssessmentRequest) decl() []spec {
	return []spec{
		assessmentField(&q.In).req(),
		custom("update_mask", func(f *fields, name string) (bool, bool, error) {
			v, ok := f.lookup(name)
			if !ok || v.query {
				return false, false, nil
			}
			paths, err := updateMaskPaths(v.raw)
			q.set = map[string]bool{}
			for _, p := range paths {
				q.set[p] = true
			}
			return true, false, err
		}).req(),
	}
}

func (q *updateAssessmentRequest) validate() error {
	if q.set["feedback"] && q.set["expectation"] {
		return invalidParam("Cannot specify both `expectation` and `feedback` parameters.")
	}
	return nil
}

// apply makes the update on a stored assessment, as MLflow's
// update_assessment does: name, feedback or expectation (on an assessment
// of that kind), rationale, metadata (merged), valid.
func (q *updateAssessmentRequest) apply(a *tracking.Assessment) error {
	in, set := &q.In, q.set
	if set["assessment_name"] && in.AssessmentName != "" {
		a.AssessmentName = in.AssessmentName
	}
	if set["expectation"] {
		if len(a.Expectation) == 0 {
			return invalidParam("Cannot update expectation value on a Feedback assessment.")
		}
		a.Expectation = in.Expectation
	}
	if set["feedback"] {
		if len(a.Feedback) == 0 {
			return invalidParam("Cannot update feedback value on an Expectation assessment.")
		}
		a.Feedback = in.Feedback
	}
	if set["rationale"] {
		a.Rationale = in.Rationale
	}
	if set["metadata"] && len(in.Metadata) > 0 {
		if a.Metadata == nil {
			a.Metadata = map[string]string{}
		}
		for k, v := range in.Metadata {
			a.Metadata[k] = v
		}
	}
	if set["valid"] {
		a.Valid = in.Valid == nil || *in.Valid
	}
	return nil
}

func (s *Server) updateAssessment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *updateAssessmentRequest) error {
		a, err := s.store.UpdateAssessment(r.Context(), r.PathValue("trace_id"), r.PathValue("assessment_id"), q.apply)
		return answerAssessment(w, a, err)
	})
}

func (s *Server) deleteAssessment(w http.ResponseWriter, r *http.Request) error {
	return answerEmpty(w, s.store.DeleteAssessment(r.Context(), r.PathValue("trace_id"), r.PathValue("assessment_id")))
}
