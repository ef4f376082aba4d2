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

// traceTags reads and checks a list of trace tags or request metadata:
// keys follow MLflow's name rules and are at most 250 code points; values
// are truncated to 8000 code points, as MLflow does.
func traceTags(f *fields, name string) ([]tracking.Tag, error) {
	tags, err := readTags(f, name)
	if err != nil {
		return nil, err
	}
	for i := range tags {
		if err := checkTraceTagKey(tags[i].Key); err != nil {
			return nil, err
		}
		tags[i].Value = validate.TruncateTagValue(tags[i].Value)
	}
	return tags, nil
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

func (s *Server) startTrace(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	// MLflow 2.22.1 answers a database error (400 BAD_REQUEST) without an
	// experiment id; the empty id is refused here before it could mean the
	// Default experiment.
	expID, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	ts, _, err := f.int64("timestamp_ms")
	if err != nil {
		return err
	}
	meta, err := traceTags(f, "request_metadata")
	if err != nil {
		return err
	}
	tags, err := traceTags(f, "tags")
	if err != nil {
		return err
	}
	t, err := s.store.StartTrace(r.Context(), tracking.StartTrace{
		ExperimentID: expID, TimestampMs: ts, RequestMetadata: meta, Tags: tags,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, traceInfoResponse{toV2(t)})
	return nil
}

func (s *Server) endTrace(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id := traceIDParam(r)
	ts, _, err := f.int64("timestamp_ms")
	if err != nil {
		return err
	}
	st, _, err := f.enum("status", traceStatuses)
	if err != nil {
		return err
	}
	meta, err := traceTags(f, "request_metadata")
	if err != nil {
		return err
	}
	tags, err := traceTags(f, "tags")
	if err != nil {
		return err
	}
	t, err := s.store.EndTrace(r.Context(), tracking.EndTrace{
		RequestID: id, TimestampMs: ts, Status: traceStatusNames[st], RequestMetadata: meta, Tags: tags,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, traceInfoResponse{toV2(t)})
	return nil
}

func (s *Server) getTraceInfo(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTraceInfo(r.Context(), traceIDParam(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, traceInfoResponse{toV2(t)})
	return nil
}

func (s *Server) setTraceTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	value, _, err := f.str("value")
	if err != nil {
		return err
	}
	if err := checkTraceTagKey(key); err != nil {
		return err
	}
	tag := tracking.Tag{Key: key, Value: validate.TruncateTagValue(value)}
	if err := s.store.SetTraceTag(r.Context(), traceIDParam(r), tag); err != nil {
		return err
	}
	return writeEmpty(w)
}

// deleteTraceTag reads the key from the JSON body, as MLflow does (a key
// in the query string is a missing key).
func (s *Server) deleteTraceTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	if err := s.store.DeleteTraceTag(r.Context(), traceIDParam(r), key); err != nil {
		return err
	}
	return writeEmpty(w)
}

// traceSearchParams reads the parameters shared by the v2 and v3 trace
// searches (the experiment ids are read by the caller).
func traceSearchParams(f *fields, ids []string) (tracking.TraceQuery, error) {
	var q tracking.TraceQuery
	filter, _, err := f.str("filter")
	if err != nil {
		return q, err
	}
	maxResults, _, err := f.maxResults(DefaultSearchTraces)
	if err != nil {
		return q, err
	}
	if maxResults < 1 {
		return q, invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", maxResults)
	}
	if maxResults > MaxSearchTraces {
		return q, invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be at most %d", maxResults, MaxSearchTraces)
	}
	orderBy, _, err := f.strList("order_by", false)
	if err != nil {
		return q, err
	}
	token, _, err := f.str("page_token")
	if err != nil {
		return q, err
	}
	clauses, err := search.ParseTraceFilter(filter)
	if err != nil {
		return q, err
	}
	keys, err := search.ParseTraceOrderBy(orderBy)
	if err != nil {
		return q, err
	}
	return tracking.TraceQuery{ExperimentIDs: ids, Filter: clauses, OrderBy: keys,
		MaxResults: int(maxResults), PageToken: token}, nil
}

func (s *Server) searchTraces(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	ids, _, err := f.strList("experiment_ids", true)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return missingValue("experiment_ids")
	}
	return searchTracesAs(s, w, r, f, ids, toV2)
}

// searchTracesAs runs a trace search over the experiments ids with the
// request's filter, ordering and paging, and answers the page with each
// trace in the wire form that view gives (v2 or v3).
func searchTracesAs[T any](s *Server, w http.ResponseWriter, r *http.Request, f *fields, ids []string, view func(*tracking.TraceInfo) T) error {
	q, err := traceSearchParams(f, ids)
	if err != nil {
		return err
	}
	page, err := s.store.SearchTraces(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]T, len(page.Traces))
	for i, t := range page.Traces {
		out[i] = view(t)
	}
	writeJSON(w, http.StatusOK, struct {
		Traces        []T    `json:"traces,omitempty"`
		NextPageToken string `json:"next_page_token,omitempty"`
	}{out, page.NextPageToken})
	return nil
}

func (s *Server) deleteTraces(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	req, err := readDeleteTraces(f, "request_ids")
	if err != nil {
		return err
	}
	n, err := s.store.DeleteTraces(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		TracesDeleted int `json:"traces_deleted"`
	}{n})
	return nil
}

// readDeleteTraces reads a delete-traces request (idsField names the list
// of ids: request_ids in v2, trace_ids in v3).
func readDeleteTraces(f *fields, idsField string) (tracking.DeleteTraces, error) {
	var req tracking.DeleteTraces
	expID, err := f.experimentID("experiment_id")
	if err != nil {
		return req, err
	}
	maxTS, hasTS, err := f.int64("max_timestamp_millis")
	if err != nil {
		return req, err
	}
	maxTraces, _, err := f.int64("max_traces")
	if err != nil {
		return req, err
	}
	ids, _, err := f.strList(idsField, false)
	if err != nil {
		return req, err
	}
	if !hasTS && len(ids) == 0 {
		return req, invalidParam("Either `max_timestamp_millis` or `%s` must be specified.", idsField)
	}
	if hasTS && len(ids) > 0 {
		return req, invalidParam("Only one of `max_timestamp_millis` and `%s` can be specified.", idsField)
	}
	if maxTraces < 0 {
		return req, invalidParam("Invalid value %d for parameter 'max_traces' supplied. It must be a positive integer", maxTraces)
	}
	return tracking.DeleteTraces{ExperimentID: expID, MaxTimestampMillis: maxTS, MaxTraces: int(maxTraces), RequestIDs: ids}, nil
}

// getTraceArtifact is the UI's get-trace-artifact: the trace's data
// (traces.json under its mlflow.artifactLocation), served from the
// artifact store only when that location is inside it.
func (s *Server) getTraceArtifact(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("request_id")
	if id == "" {
		return missingValue("request_id")
	}
	t, err := s.store.GetTraceInfo(r.Context(), id)
	if err != nil {
		return err
	}
	loc, _ := t.Tag(tracking.TraceTagArtifactLocation)
	root, ok := s.runArtifactRoot(loc)
	if !ok || loc == "" {
		return tracking.Errorf(tracking.ResourceDoesNotExist,
			"The data of trace %s is not stored by this server (artifact location %q).", id, loc)
	}
	return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, tracking.TraceDataFile))
}
