package api

import (
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Trace search limits (MLflow 2.22.1's SearchTraces).
const (
	// DefaultSearchTraces is search-traces' default max_results.
	DefaultSearchTraces = 100
	// MaxSearchTraces is search-traces' largest max_results.
	MaxSearchTraces = 500
)

var traceStatuses = map[string]int{
	tracking.TraceStatusUnspecified: 0,
	tracking.TraceStatusOK:          1,
	tracking.TraceStatusError:       2,
	tracking.TraceStatusInProgress:  3,
}

var traceStatusNames = []string{
	tracking.TraceStatusUnspecified, tracking.TraceStatusOK, tracking.TraceStatusError, tracking.TraceStatusInProgress,
}

// registerTraces adds MLflow 2.x's trace routes (MlflowService's
// StartTrace, EndTrace, GetTraceInfo, SearchTraces, DeleteTraces,
// SetTraceTag, DeleteTraceTag) and the UI's get-trace-artifact. Routes
// with a {request_id} segment are matched by serveParamRoute.
func (s *Server) registerTraces() {
	s.addTracking("POST", "/traces", "StartTrace", (*Server).startTrace)
	s.addTracking("GET", "/traces", "SearchTraces", (*Server).searchTraces)
	s.addTracking("POST", "/traces/delete-traces", "DeleteTraces", (*Server).deleteTraces)
	s.addTracking("PATCH", "/traces/{request_id}", "EndTrace", (*Server).endTrace)
	s.addTracking("GET", "/traces/{request_id}/info", "GetTraceInfo", (*Server).getTraceInfo)
	s.addTracking("PATCH", "/traces/{request_id}/tags", "SetTraceTag", (*Server).setTraceTag)
	s.addTracking("DELETE", "/traces/{request_id}/tags", "DeleteTraceTag", (*Server).deleteTraceTag)
	s.add("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", "GetTraceArtifact", true, (*Server).getTraceArtifact)
	s.add("GET", "/ajax-api/3.0/mlflow/get-trace-artifact", "GetTraceArtifact", true, (*Server).getTraceArtifact)
}

// serveParamRoute answers a request whose path matches a registered
// pattern with "{name}" segments (each matching one non-empty path
// segment, available to the handler as r.PathValue(name)). It reports
// whether it answered. Exact patterns are tried first by ServeHTTP.
func (s *Server) serveParamRoute(w http.ResponseWriter, r *http.Request) bool {
	segs := strings.Split(r.URL.Path, "/")
	for pattern, e := range s.routes {
		if !strings.Contains(pattern, "{") {
			continue
		}
		psegs := strings.Split(pattern, "/")
		if len(psegs) != len(segs) {
			continue
		}
		var names, vals []string
		ok := true
		for i, ps := range psegs {
			if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") && !strings.HasSuffix(ps, "...}") {
				if segs[i] == "" {
					ok = false
					break
				}
				names = append(names, ps[1:len(ps)-1])
				vals = append(vals, segs[i])
				continue
			}
			if ps != segs[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for i, n := range names {
			r.SetPathValue(n, vals[i])
		}
		s.dispatch(e, w, r)
		return true
	}
	return false
}

// traceInfoV2 is MLflow 2.x's TraceInfo on the wire.
type traceInfoV2 struct {
	RequestID       string         `json:"request_id"`
	ExperimentID    string         `json:"experiment_id"`
	TimestampMs     int64          `json:"timestamp_ms"`
	ExecutionTimeMs int64          `json:"execution_time_ms"`
	Status          string         `json:"status"`
	RequestMetadata []tracking.Tag `json:"request_metadata,omitempty"`
	Tags            []tracking.Tag `json:"tags,omitempty"`
}

func toV2(t *tracking.TraceInfo) *traceInfoV2 {
	return &traceInfoV2{RequestID: t.RequestID, ExperimentID: t.ExperimentID, TimestampMs: t.TimestampMs,
		ExecutionTimeMs: t.ExecutionTimeMs, Status: t.Status, RequestMetadata: t.RequestMetadata, Tags: t.Tags}
}

type traceInfoResponse struct {
	TraceInfo *traceInfoV2 `json:"trace_info"`
}

// traceIDParam is the trace id of a path: {request_id} in the 2.x routes,
// {trace_id} in the 3.x ones.
func traceIDParam(r *http.Request) string {
	if id := r.PathValue("request_id"); id != "" {
		return id
	}
	return r.PathValue("trace_id")
}

func checkTraceTagKey(key string) error {
	if key == "" {
		return missingValue("key")
	}
	if utf8.RuneCountInString(key) > validate.MaxEntityKeyLength {
		return invalidParam("'key' exceeds the maximum length of %d characters", validate.MaxEntityKeyLength)
	}
	return validate.Name(key, "key")
}

// traceV2Request is StartTrace and EndTrace (which names its trace in the
// path and has a status rather than an experiment).
type traceV2Request struct {
	ExperimentID string
	TimestampMs  int64
	Status       int
	Meta, Tags   []tracking.Tag
	end          bool
}

func (q *traceV2Request) decl() []spec {
	// MLflow 2.22.1 answers a database error (400 BAD_REQUEST) to a start
	// without an experiment id; the empty id is refused here before it
	// could mean the Default experiment.
	ts := int64Field("timestamp_ms", &q.TimestampMs, 0)
	d := []spec{idStr("experiment_id", &q.ExperimentID).req(), ts}
	if q.end {
		d = []spec{ts, enumStrField("status", &q.Status, traceStatuses, 0)}
	}
	return append(d, tagList("request_metadata", &q.Meta), tagList("tags", &q.Tags))
}

func (q *traceV2Request) validate() error {
	if err := entityTags(q.Meta); err != nil {
		return err
	}
	return entityTags(q.Tags)
}

func (s *Server) startTrace(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *traceV2Request) error {
		t, err := s.store.StartTrace(r.Context(), tracking.StartTrace{
			ExperimentID: q.ExperimentID, TimestampMs: q.TimestampMs, RequestMetadata: q.Meta, Tags: q.Tags,
		})
		return answerTraceV2(w, t, err)
	})
}

func (s *Server) endTrace(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &traceV2Request{end: true}, func(q *traceV2Request) error {
		t, err := s.store.EndTrace(r.Context(), tracking.EndTrace{
			RequestID: traceIDParam(r), TimestampMs: q.TimestampMs, Status: traceStatusNames[q.Status], RequestMetadata: q.Meta, Tags: q.Tags,
		})
		return answerTraceV2(w, t, err)
	})
}

func (s *Server) getTraceInfo(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTraceInfo(r.Context(), traceIDParam(r))
	return answerTraceV2(w, t, err)
}

// answerTraceV2 answers {"trace_info": t} in the 2.x form, or err.
func answerTraceV2(w http.ResponseWriter, t *tracking.TraceInfo, err error) error {
	if err != nil {
		return err
	}
	return answer(w, traceInfoResponse{toV2(t)}, nil)
}

// traceTagRequest is SetTraceTag and DeleteTraceTag (which has no value),
// v2 and v3 alike. The key is read from the JSON body, as MLflow does (a
// key in the query string of a DELETE is a missing key).
type traceTagRequest struct {
	Key, Value string
	set        bool
}

func (q *traceTagRequest) decl() []spec {
	if !q.set {
		return []spec{str("key", &q.Key).req()}
	}
	return []spec{str("key", &q.Key).req(), str("value", &q.Value)}
}

func (q *traceTagRequest) validate() error {
	if !q.set {
		return nil
	}
	q.Value = validate.TruncateTagValue(q.Value)
	return checkTraceTagKey(q.Key)
}

func (s *Server) setTraceTag(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &traceTagRequest{set: true}, func(q *traceTagRequest) error {
		return answerEmpty(w, s.store.SetTraceTag(r.Context(), traceIDParam(r), tracking.Tag{Key: q.Key, Value: q.Value}))
	})
}

func (s *Server) deleteTraceTag(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *traceTagRequest) error {
		return answerEmpty(w, s.store.DeleteTraceTag(r.Context(), traceIDParam(r), q.Key))
	})
}

// traceSearchRequest is SearchTraces (experiment_ids) and SearchTracesV3
// (locations): the same search otherwise.
type traceSearchRequest struct {
	ExperimentIDs []string
	Locations     []traceLocationMessage
	Filter        string
	MaxResults    int64
	OrderBy       []string
	PageToken     string
	v3            bool
}

func (q *traceSearchRequest) decl() []spec {
	first := idList("experiment_ids", &q.ExperimentIDs).req().check(nonEmptyList(&q.ExperimentIDs))
	if q.v3 {
		first = msgList("locations", &q.Locations, (*traceLocationMessage).decl).req()
	}
	return []spec{
		first,
		str("filter", &q.Filter),
		int64Field("max_results", &q.MaxResults, DefaultSearchTraces).check(atMost(&q.MaxResults, MaxSearchTraces)),
		strList("order_by", &q.OrderBy),
		str("page_token", &q.PageToken),
	}
}

// validate takes the experiments of the v3 locations (MLflow's handler
// keeps those with mlflow_experiment) and checks the store's lower bound
// of max_results.
func (q *traceSearchRequest) validate() error {
	if q.v3 {
		for _, l := range q.Locations {
			if l.Experiment != nil {
				q.ExperimentIDs = append(q.ExperimentIDs, l.Experiment.ID)
			}
		}
		if len(q.ExperimentIDs) == 0 {
			return invalidParam("At least one location of type %s is required in 'locations'.", traceLocationExperiment)
		}
	}
	if q.MaxResults < 1 {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", q.MaxResults)
	}
	return nil
}

func (s *Server) searchTraces(w http.ResponseWriter, r *http.Request) error {
	return searchTracesAs(s, w, r, false, toV2)
}

// searchTracesAs decodes a trace search (v2 or v3), runs it and answers
// the page with each trace in the wire form that view gives.
func searchTracesAs[T any](s *Server, w http.ResponseWriter, r *http.Request, v3 bool, view func(*tracking.TraceInfo) T) error {
	q := traceSearchRequest{v3: v3}
	if err := decode(r, &q); err != nil {
		return err
	}
	clauses, err := search.ParseTraceFilter(q.Filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseTraceOrderBy(q.OrderBy)
	if err != nil {
		return err
	}
	page, err := s.store.SearchTraces(r.Context(), tracking.TraceQuery{ExperimentIDs: q.ExperimentIDs, Filter: clauses,
		OrderBy: keys, MaxResults: int(q.MaxResults), PageToken: q.PageToken})
	if err != nil {
		return err
	}
	out := make([]T, len(page.Traces))
	for i, t := range page.Traces {
		out[i] = view(t)
	}
	return answer(w, struct {
		Traces        []T    `json:"traces,omitempty"`
		NextPageToken string `json:"next_page_token,omitempty"`
	}{out, page.NextPageToken}, nil)
}

// deleteTracesRequest is DeleteTraces (v2 and v3).
type deleteTracesRequest struct {
	ExperimentID string
	MaxTS        *int64
	MaxTraces    int64
	IDs          []string
}

func (q *deleteTracesRequest) decl() []spec {
	return []spec{
		idStr("experiment_id", &q.ExperimentID).req(),
		optInt64("max_timestamp_millis", &q.MaxTS),
		int64Field("max_traces", &q.MaxTraces, 0),
		strList("request_ids", &q.IDs),
	}
}

func (q *deleteTracesRequest) validate() error {
	if q.MaxTS == nil && len(q.IDs) == 0 {
		return invalidParam("Either `max_timestamp_millis` or `request_ids` must be specified.")
	}
	if q.MaxTS != nil && len(q.IDs) > 0 {
		return invalidParam("Only one of `max_timestamp_millis` and `request_ids` can be specified.")
	}
	if q.MaxTraces < 0 {
		return invalidParam("Invalid value %d for parameter 'max_traces' supplied. It must be a positive integer", q.MaxTraces)
	}
	return nil
}

func (s *Server) deleteTraces(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *deleteTracesRequest) error {
		req := tracking.DeleteTraces{ExperimentID: q.ExperimentID, MaxTraces: int(q.MaxTraces), RequestIDs: q.IDs}
		if q.MaxTS != nil {
			req.MaxTimestampMillis = *q.MaxTS
		}
		n, err := s.store.DeleteTraces(r.Context(), req)
		return answer(w, struct {
			TracesDeleted int `json:"traces_deleted"`
		}{n}, err)
	})
}

// traceArtifactRequest is the UI's get-trace-artifact.
type traceArtifactRequest struct{ ID string }

func (q *traceArtifactRequest) decl() []spec { return []spec{str("request_id", &q.ID).req()} }

// getTraceArtifact is the UI's get-trace-artifact: the trace's data
// (traces.json under its mlflow.artifactLocation), served from the
// artifact store only when that location is inside it.
func (s *Server) getTraceArtifact(w http.ResponseWriter, r *http.Request) error {
	var q traceArtifactRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	id := q.ID
	t, err := s.store.GetTraceInfo(r.Context(), id)
	if err != nil {
		return err
	}
	if t.SpansInStore() {
		return s.serveStoredTraceData(w, r, t) // otlp.go
	}
	loc, _ := t.Tag(tracking.TraceTagArtifactLocation)
	root, ok := s.runArtifactRoot(loc)
	if !ok || loc == "" {
		return tracking.Errorf(tracking.ResourceDoesNotExist,
			"The data of trace %s is not stored by this server (artifact location %q).", id, loc)
	}
	return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, tracking.TraceDataFile))
}
