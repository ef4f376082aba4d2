package api

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"go.uber.org/zap"
)

// maxUIUploadSize is MLflow's cap on the UI's upload-artifact (10 MiB).
const maxUIUploadSize = 10 << 20

// artifactPrefix splits a path under one of the mlflow-artifacts prefixes.
func artifactPrefix(p string) (prefix, rest string, ok bool) {
	for _, pre := range []string{"/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"} {
		if strings.HasPrefix(p, pre) && (len(p) == len(pre) || p[len(pre)] == '/') {
			return pre, p[len(pre):], true
		}
	}
	return "", "", false
}

// serveArtifacts answers the mlflow-artifacts routes: through the artifact
// handler when artifacts are served, else MLflow's --no-serve-artifacts 503.
// The handler gets the escaped remainder of the path (after the prefix).
func (s *Server) serveArtifacts(w http.ResponseWriter, r *http.Request, prefix, rest string) {
	if s.artifacts == nil {
		rule, ok := artifactRule(r.Method, rest)
		if !ok {
			notFound(w)
			return
		}
		disabled(w, "Endpoint: "+prefix+rule+" disabled due to the mlflow server running with `--no-serve-artifacts`. "+
			"To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`")
		return
	}
	escaped := r.URL.EscapedPath()
	if _, erest, ok := artifactPrefix(escaped); ok {
		rest = erest
	}
	s.artifacts.ServeArtifacts(w, r, rest)
}

// artifactRule finds the Flask rule of an mlflow-artifacts route.
func artifactRule(method, rest string) (string, bool) {
	var found string
	for _, rt := range artifactRoutes {
		match := false
		if base, ok := strings.CutSuffix(rt.pattern, "/{path...}"); ok {
			match = strings.HasPrefix(rest, base+"/") && len(rest) > len(base)+1
		} else {
			match = rest == rt.pattern
		}
		if match {
			found = rt.rule
			if rt.method == method || (method == http.MethodHead && rt.method == http.MethodGet) {
				return rt.rule, true
			}
		}
	}
	return found, found != ""
}

func newArtifactHandler(opts Options) *artifact.Handler {
	return artifact.NewHandler(opts.Artifacts, artifact.HandlerOptions{
		MaxUploadSize: opts.MaxUploadSize, Logger: opts.Logger, SigningKey: opts.MultipartSigningKey,
	})
}

// writeNoSpace answers a write that failed because the server's storage
// is full (a bbolt commit or an artifact write: ENOSPC, EDQUOT) with
// RESOURCE_EXHAUSTED, 507, and logs it with its cause. It reports whether
// err was such a failure.
func (s *Server) writeNoSpace(w http.ResponseWriter, r *http.Request, err error) bool {
	if !tracking.IsNoSpace(err) {
		return false
	}
	s.log.Error("storage full: write refused", zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.Error(err))
	what := "the tracking data"
	if r.URL.Path == uploadArtifactPath {
		what = "the artifact"
	}
	writeJSON(w, http.StatusInsufficientStorage, tracking.NoSpace(what))
	return true
}

// uploadArtifactPath is the UI's upload route.
const uploadArtifactPath = "/ajax-api/2.0/mlflow/upload-artifact"

// runArtifactRoot resolves a run's artifact URI to its directory in the
// proxied artifact store.
func (s *Server) runArtifactRoot(uri string) (string, bool) {
	if s.opts.Artifacts == nil {
		return "", false
	}
	return artifact.URIPath(uri)
}

// listArtifactsRequest is ListArtifacts.
type listArtifactsRequest struct {
	RunID     string
	Path      *string
	PageToken string
	rel       string // Path, cleaned
}

func (q *listArtifactsRequest) decl() []spec {
	return []spec{runIDField(&q.RunID), optStr("path", &q.Path), str("page_token", &q.PageToken)}
}

func (q *listArtifactsRequest) validate() (err error) {
	if q.Path != nil {
		q.rel, err = artifact.CleanPath(*q.Path)
	}
	return err
}

// listArtifacts lists one level of a run's artifacts, with paths relative
// to the run's artifact root.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *listArtifactsRequest) error {
		id, rel := q.RunID, q.rel
		run, err := s.findRun(r.Context(), id)
		if err != nil {
			return err
		}
		var files []tracking.FileInfo
		if root, ok := s.runArtifactRoot(run.Info.ArtifactURI); ok {
			dir := root
			if rel != "" {
				dir = path.Join(root, rel)
			}
			entries, err := s.opts.Artifacts.List(r.Context(), dir)
			if err != nil {
				return err
			}
			for _, e := range entries {
				name := path.Base(e.Path)
				if rel != "" {
					name = path.Join(rel, name)
				}
				files = append(files, tracking.FileInfo{Path: name, IsDir: e.IsDir, FileSize: e.FileSize})
			}
		}
		return answer(w, struct {
			RootURI string              `json:"root_uri"`
			Files   []tracking.FileInfo `json:"files,omitempty"`
		}{run.Info.ArtifactURI, files}, nil)
	})
}

// getArtifact is the UI's /get-artifact: one file of a run's artifacts as
// an attachment.
func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request) error {
	if s.store == nil {
		disabled(w, "Endpoint: /get-artifact disabled due to the mlflow server running in `--artifacts-only` mode. "+
			"To enable tracking server functionality, run `mlflow server` without `--artifacts-only`")
		return nil
	}
	q := r.URL.Query()
	id := q.Get("run_id")
	if id == "" {
		id = q.Get("run_uuid")
	}
	if !q.Has("path") {
		return tracking.Errorf(tracking.BadRequest, "Missing value for required parameter 'path'.")
	}
	rel, err := artifact.CleanPath(q.Get("path"))
	if err != nil {
		return err
	}
	if id == "" {
		return runNotFound("None")
	}
	run, err := s.findRun(r.Context(), id)
	if err != nil {
		return err
	}
	root, ok := s.runArtifactRoot(run.Info.ArtifactURI)
	if !ok {
		return tracking.Errorf(tracking.ResourceDoesNotExist,
			"Artifacts of run %s are not stored by this server (artifact URI %s).", id, run.Info.ArtifactURI)
	}
	return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, rel))
}

// uploadArtifact is the UI's upload-artifact: the raw body becomes the
// file at path in the run's artifacts.
func (s *Server) uploadArtifact(w http.ResponseWriter, r *http.Request) error {
	if s.store == nil || s.opts.Artifacts == nil {
		disabled(w, "Endpoint: /ajax-api/2.0/mlflow/upload-artifact disabled: this server does not store run artifacts.")
		return nil
	}
	q := r.URL.Query()
	id := q.Get("run_uuid")
	if id == "" {
		return invalidParam("Request must specify run_uuid.")
	}
	p := q.Get("path")
	if p == "" {
		return invalidParam("Request must specify path.")
	}
	rel, err := artifact.CleanPath(p)
	if err != nil {
		return err
	}
	limit := int64(maxUIUploadSize)
	if s.opts.MaxUploadSize > 0 && s.opts.MaxUploadSize < limit {
		limit = s.opts.MaxUploadSize
	}
	if r.ContentLength > limit {
		return invalidParam("Artifact size is too large. Max size is 10MB.")
	}
	data, err := readBody(r, limit)
	if err != nil {
		if tracking.IsCode(err, tracking.InvalidParameterValue) {
			return invalidParam("Artifact size is too large. Max size is 10MB.")
		}
		return err
	}
	if len(data) == 0 {
		return invalidParam("Request must specify data.")
	}
	run, err := s.findRun(r.Context(), id)
	if err != nil {
		return err
	}
	root, ok := s.runArtifactRoot(run.Info.ArtifactURI)
	if !ok {
		return invalidParam("Artifacts of run %s are not stored by this server (artifact URI %s).", id, run.Info.ArtifactURI)
	}
	target := path.Join(root, rel)
	if err := s.opts.Artifacts.Put(r.Context(), target, strings.NewReader(string(data))); err != nil {
		if _, ok := tracking.AsError(err); ok {
			return err
		}
		return fmt.Errorf("artifact write of %q (%d bytes) failed: %w", target, len(data), err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return nil
}
