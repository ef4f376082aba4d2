// Package api implements MLflow's tracking REST API over a tracking.Store:
// the /api/2.0/mlflow/... routes and their /ajax-api mirror, the
// mlflow-artifacts proxy (delegated to the artifact package), /health,
// /version, /get-artifact and the UI's upload endpoint.
//
// Wire compatibility follows MLflow 2.22.1 as recorded in the conformance
// transcripts: request decoding mirrors MLflow's protobuf-JSON parsing and
// per-endpoint schema checks (decode.go), responses omit empty lists and
// unset fields, and errors are {"error_code","message"} JSON with MLflow's
// status table. Deliberate deviations (never a 5xx for a client mistake,
// never database text in a message) are documented where they happen.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// DefaultMLflowVersion is what GET /version answers when Options leaves
// MLflowVersion empty: a current 3.x release, so that clients enable their
// 3.x features (span logging needs ≥ 3.4).
const DefaultMLflowVersion = "3.6.0"

// Options configure a Server.
type Options struct {
	// Store holds the tracking data. It may be nil only with ArtifactsOnly.
	Store tracking.Store
	// Artifacts is the proxied artifact store; nil when artifacts are not
	// served.
	Artifacts artifact.Store
	// ServeArtifacts enables the mlflow-artifacts routes (503 otherwise).
	ServeArtifacts bool
	// ArtifactsOnly answers every tracking route with MLflow's
	// --artifacts-only 503.
	ArtifactsOnly bool
	// DefaultArtifactRoot is the artifact root of new experiments
	// ("mlflow-artifacts:/" when serving artifacts and none configured).
	DefaultArtifactRoot string
	// MLflowVersion is what GET /version answers.
	MLflowVersion string
	// BuildVersion is this server's own version, reported by
	// /api/3.0/mlflow/server-info.
	BuildVersion string
	// MaxUploadSize caps artifact uploads in bytes; 0 means unlimited
	// (the UI's upload-artifact endpoint keeps MLflow's 10 MiB cap).
	MaxUploadSize int64
	// MultipartSigningKey signs multipart upload ids and part URLs; nil
	// means a random key per process (see artifact.HandlerOptions).
	MultipartSigningKey []byte
	// Logger receives internal errors; nil means no logging.
	Logger *zap.Logger
	// OTLPLimits bound OTLP span exports (POST /v1/traces); zero fields
	// take otlpspans.DefaultLimits.
	OTLPLimits otlpspans.Limits
}

// Server is the MLflow tracking server's HTTP handler.
type Server struct {
	opts      Options
	store     tracking.Store
	log       *zap.Logger
	routes    map[string]*pathEntry
	list      []Route
	artifacts *artifact.Handler // mlflow-artifacts routes; nil when not served
}

// Route describes one route the server answers, for authorization tables.
type Route struct {
	// Method is the HTTP method (HEAD and OPTIONS are implied for GET
	// routes and every route respectively, and are not listed).
	Method string
	// Pattern is the path. A trailing "{path...}" matches the rest of the
	// path, slashes included.
	Pattern string
	// Name is a stable name for the operation, shared by the /api and
	// /ajax-api forms of a route. Tracking routes use MLflow's RPC names.
	Name string
	// Tracking reports whether the route is disabled in artifacts-only mode.
	Tracking bool
}

type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request) error

type endpoint struct {
	method   string
	name     string
	tracking bool
	h        handlerFunc
}

type pathEntry struct {
	pattern   string
	endpoints []endpoint
	allow     string
}

// New builds a Server. Unless ArtifactsOnly is set, it makes sure the
// Default experiment exists.
func New(opts Options) (*Server, error) {
	if opts.Store == nil && !opts.ArtifactsOnly {
		return nil, errors.New("api: a Store is required unless ArtifactsOnly is set")
	}
	if opts.ServeArtifacts && opts.Artifacts == nil {
		return nil, errors.New("api: ServeArtifacts needs an artifact Store")
	}
	if opts.MaxUploadSize < 0 {
		return nil, fmt.Errorf("api: negative MaxUploadSize %d", opts.MaxUploadSize)
	}
	if err := opts.OTLPLimits.Validate(); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if opts.MLflowVersion == "" {
		opts.MLflowVersion = DefaultMLflowVersion
	}
	if opts.DefaultArtifactRoot == "" && opts.ServeArtifacts {
		opts.DefaultArtifactRoot = "mlflow-artifacts:/"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{opts: opts, store: opts.Store, log: opts.Logger, routes: make(map[string]*pathEntry)}
	if opts.Store != nil {
		if err := opts.Store.EnsureDefaultExperiment(context.Background(), opts.DefaultArtifactRoot); err != nil {
			return nil, fmt.Errorf("api: creating the Default experiment: %w", err)
		}
	}
	if opts.ServeArtifacts {
		s.artifacts = newArtifactHandler(opts)
	}
	s.register()
	if err := s.registerGraphQL(); err != nil {
		return nil, err
	}
	return s, nil
}

// Routes lists every route the server answers.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.list))
	copy(out, s.list)
	return out
}

func (s *Server) add(method, pattern, name string, tracking bool, h handlerFunc) {
	e := s.routes[pattern]
	if e == nil {
		e = &pathEntry{pattern: pattern}
		s.routes[pattern] = e
	}
	e.endpoints = append(e.endpoints, endpoint{method: method, name: name, tracking: tracking, h: h})
	methods := map[string]bool{"OPTIONS": true}
	for _, ep := range e.endpoints {
		methods[ep.method] = true
		if ep.method == http.MethodGet {
			methods[http.MethodHead] = true
		}
	}
	names := make([]string, 0, len(methods))
	for m := range methods {
		names = append(names, m)
	}
	sort.Strings(names)
	e.allow = strings.Join(names, ", ")
	s.list = append(s.list, Route{Method: method, Pattern: pattern, Name: name, Tracking: tracking})
}

// addTracking registers a tracking RPC at /api/2.0/mlflow<p> and
// /ajax-api/2.0/mlflow<p>.
func (s *Server) addTracking(method, p, name string, h handlerFunc) {
	s.add(method, "/api/2.0/mlflow"+p, name, true, h)
	s.add(method, "/ajax-api/2.0/mlflow"+p, name, true, h)
}

func (s *Server) register() {
	// Experiments.
	s.addTracking("POST", "/experiments/create", "CreateExperiment", (*Server).createExperiment)
	s.addTracking("GET", "/experiments/get", "GetExperiment", (*Server).getExperiment)
	s.addTracking("GET", "/experiments/get-by-name", "GetExperimentByName", (*Server).getExperimentByName)
	s.addTracking("GET", "/experiments/search", "SearchExperiments", (*Server).searchExperiments)
	s.addTracking("POST", "/experiments/search", "SearchExperiments", (*Server).searchExperiments)
	s.addTracking("POST", "/experiments/update", "UpdateExperiment", (*Server).updateExperiment)
	s.addTracking("POST", "/experiments/delete", "DeleteExperiment", (*Server).deleteExperiment)
	s.addTracking("POST", "/experiments/restore", "RestoreExperiment", (*Server).restoreExperiment)
	s.addTracking("POST", "/experiments/set-experiment-tag", "SetExperimentTag", (*Server).setExperimentTag)
	s.addTracking("POST", "/experiments/delete-experiment-tag", "DeleteExperimentTag", (*Server).deleteExperimentTag)
	s.add("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", "SearchDatasets", true, (*Server).searchDatasets)

	// Runs.
	s.addTracking("POST", "/runs/create", "CreateRun", (*Server).createRun)
	s.addTracking("GET", "/runs/get", "GetRun", (*Server).getRun)
	s.addTracking("POST", "/runs/update", "UpdateRun", (*Server).updateRun)
	s.addTracking("POST", "/runs/delete", "DeleteRun", (*Server).deleteRun)
	s.addTracking("POST", "/runs/restore", "RestoreRun", (*Server).restoreRun)
	s.addTracking("POST", "/runs/search", "SearchRuns", (*Server).searchRuns)
	s.addTracking("POST", "/runs/log-metric", "LogMetric", (*Server).logMetric)
	s.addTracking("POST", "/runs/log-parameter", "LogParam", (*Server).logParam)
	s.addTracking("POST", "/runs/log-batch", "LogBatch", (*Server).logBatch)
	s.addTracking("POST", "/runs/set-tag", "SetTag", (*Server).setTag)
	s.addTracking("POST", "/runs/delete-tag", "DeleteTag", (*Server).deleteTag)
	s.addTracking("POST", "/runs/log-inputs", "LogInputs", (*Server).logInputs)
	s.addTracking("POST", "/runs/log-model", "LogModel", (*Server).logModel)
	s.registerRegistry()
	s.registerTraces()
	s.registerTracesV3()
	s.registerLoggedModels()
	s.registerPrompts()

	// Metrics.
	s.addTracking("GET", "/metrics/get-history", "GetMetricHistory", (*Server).getMetricHistory)
	s.addTracking("GET", "/metrics/get-history-bulk-interval", "GetMetricHistoryBulkInterval", (*Server).getMetricHistoryBulkInterval)
	s.add("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", "GetMetricHistoryBulk", true, (*Server).getMetricHistoryBulk)

	// Run artifacts through the tracking service.
	s.addTracking("GET", "/artifacts/list", "ListArtifacts", (*Server).listArtifacts)
	s.add("GET", "/get-artifact", "GetArtifact", false, (*Server).getArtifact)
	s.add("POST", "/ajax-api/2.0/mlflow/upload-artifact", "UploadArtifact", false, (*Server).uploadArtifact)

	// Server.
	s.add("GET", "/health", "Health", false, (*Server).health)
	s.add("GET", "/version", "Version", false, (*Server).version)
	s.add("GET", "/api/3.0/mlflow/server-info", "GetServerInfo", false, (*Server).serverInfo)
	s.add("GET", "/ajax-api/3.0/mlflow/server-info", "GetServerInfo", false, (*Server).serverInfo)

	// The mlflow-artifacts service, answered by the artifact handler (or a
	// 503 when artifacts are not served).
	for _, prefix := range []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"} {
		for _, r := range artifactRoutes {
			s.list = append(s.list, Route{Method: r.method, Pattern: prefix + r.pattern, Name: r.name})
		}
	}
}

// artifactRoutes are the mlflow-artifacts service routes, relative to the
// /api/2.0/mlflow-artifacts prefix, with Flask's rule for the 503 message.
var artifactRoutes = []struct {
	method, pattern, rule, name string
}{
	{"GET", "/artifacts", "/artifacts", "ListArtifactsMlflowArtifacts"},
	{"GET", "/artifacts/{path...}", "/artifacts/<path:artifact_path>", "DownloadArtifact"},
	{"PUT", "/artifacts/{path...}", "/artifacts/<path:artifact_path>", "UploadArtifact"},
	{"DELETE", "/artifacts/{path...}", "/artifacts/<path:artifact_path>", "DeleteArtifact"},
	{"POST", "/mpu/create/{path...}", "/mpu/create/<path:path>", "CreateMultipartUpload"},
	{"POST", "/mpu/complete/{path...}", "/mpu/complete/<path:path>", "CompleteMultipartUpload"},
	{"POST", "/mpu/abort/{path...}", "/mpu/abort/<path:path>", "AbortMultipartUpload"},
	// The part URLs mpu/create hands out (not an MLflow route: MLflow's
	// stores answer with presigned cloud URLs); the client PUTs to them
	// without credentials, the URL's signature authorizes.
	{"PUT", "/mpu/part/{path...}", "/mpu/part/<path:path>", "UploadMultipartPart"},
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in MLflow API handler",
				zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Any("panic", v), zap.Stack("stack"))
			if rw.wroteHeader {
				panic(http.ErrAbortHandler) // cut the response short rather than send garbage
			}
			writeJSON(rw, http.StatusInternalServerError, internalError())
		}
	}()
	path := r.URL.Path
	if e, ok := s.routes[path]; ok {
		s.dispatch(e, rw, r)
		return
	}
	if prefix, rest, ok := artifactPrefix(path); ok {
		s.serveArtifacts(rw, r, prefix, rest)
		return
	}
	if s.serveParamRoute(rw, r) {
		return
	}
	if strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/ajax-api/") {
		endpointNotFound(rw, path)
		return
	}
	notFound(rw)
}

func (s *Server) dispatch(e *pathEntry, w http.ResponseWriter, r *http.Request) {
	method := r.Method
	var ep *endpoint
	for i := range e.endpoints {
		if e.endpoints[i].method == method || (method == http.MethodHead && e.endpoints[i].method == http.MethodGet) {
			ep = &e.endpoints[i]
			break
		}
	}
	if ep == nil {
		if method == http.MethodOptions {
			w.Header().Set("Allow", e.allow)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			return
		}
		methodNotAllowed(w, e.allow)
		return
	}
	if ep.tracking && s.opts.ArtifactsOnly {
		disabled(w, "Endpoint: "+e.pattern+" disabled due to the mlflow server running in `--artifacts-only` mode. "+
			"To enable tracking server functionality, run `mlflow server` without `--artifacts-only`")
		return
	}
	if err := ep.h(s, w, r); err != nil {
		s.writeError(w, r, err)
	}
}

// responseWriter records whether the header was written, so that a panic
// after streaming started aborts the response instead of appending JSON.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		w.wroteHeader = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

const (
	html404 = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n" +
		"<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"
	html405 = "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n" +
		"<p>The method is not allowed for the requested URL.</p>\n"
)

// endpointNotFound answers an unknown API route: 404 with MLflow's
// ENDPOINT_NOT_FOUND error JSON, the code MLflow's client also derives from
// Flask's HTML 404 (and keys its v3→v2 fallbacks on).
func endpointNotFound(w http.ResponseWriter, path string) {
	writeJSON(w, http.StatusNotFound, tracking.Errorf(tracking.EndpointNotFound, "No API route for %s", path))
}

// notFound answers an unknown route as Flask does: an HTML 404, which
// MLflow's client reads as ENDPOINT_NOT_FOUND.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(html404))
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = w.Write([]byte(html405))
}

// disabled answers a route switched off by configuration: 503 text/html,
// as MLflow does.
func disabled(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(msg))
}

func internalError() *tracking.Error {
	return &tracking.Error{Code: tracking.InternalError, Message: "Internal server error; see the server log."}
}

// writeError answers err: a *tracking.Error with its code and status, a
// search grammar error as INVALID_PARAMETER_VALUE, anything else as a
// logged, detail-free INTERNAL_ERROR.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if te, ok := tracking.AsError(err); ok {
		status := te.Code.HTTPStatus()
		if te.Code == tracking.InvalidState {
			// MLflow answers 500 (e.g. renaming a deleted experiment); it is
			// a client mistake, and MLflow's client retries 5xx for minutes.
			status = http.StatusBadRequest
		}
		if status >= 500 && te.Code == tracking.InternalError {
			s.log.Error("internal error in MLflow API handler", zap.String("method", r.Method),
				zap.String("path", r.URL.Path), zap.Error(err))
		}
		writeJSON(w, status, te)
		return
	}
	var se *search.Error
	if errors.As(err, &se) {
		writeJSON(w, http.StatusBadRequest, &tracking.Error{Code: tracking.InvalidParameterValue, Message: se.Message})
		return
	}
	if s.writeNoSpace(w, r, err) { // artifacts.go
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.log.Debug("request canceled", zap.String("path", r.URL.Path))
		writeJSON(w, http.StatusServiceUnavailable, &tracking.Error{Code: tracking.TemporarilyUnavailable, Message: "Request canceled."})
		return
	}
	s.log.Error("internal error in MLflow API handler", zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.Error(err))
	writeJSON(w, http.StatusInternalServerError, internalError())
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(internalError())
		status = http.StatusInternalServerError
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var emptyObject = []byte("{}")

// writeEmpty answers a successful mutation: {}.
func writeEmpty(w http.ResponseWriter) error {
	writeRawJSON(w, http.StatusOK, emptyObject)
	return nil
}

// --- server routes ---

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("OK"))
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(s.opts.MLflowVersion))
	return nil
}

func (s *Server) serverInfo(w http.ResponseWriter, r *http.Request) error {
	return answer(w, struct {
		StoreType         string `json:"store_type"`
		WorkspacesEnabled bool   `json:"workspaces_enabled"`
		Server            string `json:"server"`
		ServerVersion     string `json:"server_version,omitempty"`
		MLflowVersion     string `json:"mlflow_version"`
	}{"SqlStore", false, "caddy-mlflow", s.opts.BuildVersion, s.opts.MLflowVersion}, nil)
}
