package api

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Model version sources are checked as MLflow 2.22.1's create handler
// checks them (§4.7). The server never reads from a source: it stores the
// URI and, for models:/ sources, the referenced version's storage location.

var multiSlash = regexp.MustCompile(`/+`)

func invalidSource(source string) *tracking.Error {
	return invalidParam("Invalid model version source: '%s'. If supplying a source as an http, https, local file path, "+
		"ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path "+
		"references present. Please provide an absolute path.", source)
}

func localSourceError(source string) *tracking.Error {
	return invalidParam("Invalid model version source: '%s'. To use a local path as a model version source, the run_id "+
		"request parameter has to be specified and the local path has to be contained within the artifact directory "+
		"of the run specified by the run_id.", source)
}

// sourceScheme returns the URI scheme of a source as Python's urlparse
// reads it ("" for plain paths; Windows drive letters count as paths).
func sourceScheme(source string) string {
	i := strings.IndexByte(source, ':')
	if i <= 1 {
		return ""
	}
	for k, c := range source[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || k > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return ""
		}
	}
	return strings.ToLower(source[:i])
}

// unquoteAll percent-decodes (with '+' as space) until the text stops
// changing, as MLflow's loop over urllib.parse.unquote_plus does.
func unquoteAll(s string) string {
	for range 100 {
		u, err := url.QueryUnescape(s)
		if err != nil || u == s {
			return s
		}
		s = u
	}
	return s
}

// checkNonLocalSource is MLflow's
// _validate_non_local_source_contains_relative_paths.
func checkNonLocalSource(source string) error {
	dec := unquoteAll(source)
	if strings.ContainsRune(dec, 0) {
		return invalidSource(source)
	}
	for _, seg := range strings.Split(dec, "/") {
		if seg == ".." {
			return invalidSource(source)
		}
	}
	u, err := url.Parse(dec)
	if err != nil {
		return invalidSource(source)
	}
	p := multiSlash.ReplaceAllString(strings.TrimRight(u.Path, "/"), "/")
	// MLflow compares the path with its resolved form, which only an
	// absolute, already-normal path survives.
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return invalidSource(source)
	}
	return nil
}

// resolvedSource is what checkModelSource learns about a source.
type resolvedSource struct {
	// storage is the storage location to record ("" meaning the source).
	storage string
	// runID is the run to record when the request names none: the source
	// run of the logged model the version comes from.
	runID string
}

// promptSourceError is MLflow's answer to a prompt version whose source
// is a local path.
func promptSourceError(source string) *tracking.Error {
	return invalidParam("Invalid prompt source: '%s'. Local source paths are not allowed for prompts.", source)
}

// isPromptRequest is MLflow's _is_prompt_request: a create-model-version
// request is a prompt version when it carries the prompt tag, whatever
// its value.
func isPromptRequest(tags []tracking.Tag) bool {
	for _, t := range tags {
		if t.Key == tracking.TagIsPrompt {
			return true
		}
	}
	return false
}

// checkModelSource validates a create-model-version source as MLflow 3
// does: local sources must sit inside the artifact directory of the
// logged model (modelID) or else of the run (runID); others must be
// absolute without relative references. models:/ sources are resolved.
// Prompt versions (prompt) have placeholder sources ("dummy-source"):
// MLflow's _create_model_version refuses only file: URIs and absolute
// paths for them, and checks relative references only in URIs.
func (s *Server) checkModelSource(r *http.Request, source, runID, modelID string, prompt bool) (resolvedSource, error) {
	var out resolvedSource
	if err := s.checkSourceReadable(r.Context(), source, runID, modelID); err != nil {
		return out, err
	}
	scheme := sourceScheme(source)
	if prompt {
		if scheme == "file" || scheme == "" && strings.HasPrefix(source, "/") {
			return out, promptSourceError(source)
		}
		if scheme == "" {
			return out, nil
		}
	}
	if modelID != "" {
		m, err := s.store.GetLoggedModel(r.Context(), modelID)
		if err != nil {
			return out, err
		}
		out.runID = m.Info.SourceRunID
	}
	if !prompt && (scheme == "" || scheme == "file") {
		if modelID != "" {
			return out, s.checkLocalModelSource(r, source, modelID)
		}
		return out, s.checkLocalSource(r, source, runID)
	}
	if err := checkNonLocalSource(source); err != nil {
		return out, err
	}
	if scheme == "models" {
		loc, srcRun, err := s.resolveModelsURI(r, source)
		if err != nil {
			return out, err
		}
		out.storage = loc
		if out.runID == "" {
			out.runID = srcRun
		}
	}
	return out, nil
}

// checkLocalModelSource accepts a local path only inside the local
// artifact directory of the logged model.
func (s *Server) checkLocalModelSource(r *http.Request, source, modelID string) error {
	bad := invalidParam("Invalid model version source: '%s'. To use a local path as a model version source, the model_id "+
		"request parameter has to be specified and the local path has to be contained within the artifact directory "+
		"of the run specified by the model_id.", source)
	m, err := s.store.GetLoggedModel(r.Context(), modelID)
	if err != nil {
		return err
	}
	if !insideLocalDir(localPath(m.Info.ArtifactURI), localPath(source)) {
		return bad
	}
	return nil
}

// insideLocalDir reports whether the local path src is root or under it
// (root must be absolute).
func insideLocalDir(root, src string) bool {
	if root == "" || src == "" || !filepath.IsAbs(root) {
		return false
	}
	if !filepath.IsAbs(src) {
		abs, err := filepath.Abs(src)
		if err != nil {
			return false
		}
		src = abs
	}
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(src))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkLocalSource accepts a local path only inside the local artifact
// directory of the given run; runs whose artifacts live in the proxied
// store (mlflow-artifacts:) have no such directory.
func (s *Server) checkLocalSource(r *http.Request, source, runID string) error {
	if runID == "" {
		return localSourceError(source)
	}
	run, err := s.findRun(r.Context(), runID)
	if err != nil {
		return err
	}
	root := localPath(run.Info.ArtifactURI)
	src := localPath(source)
	if root == "" || src == "" || !filepath.IsAbs(root) {
		return localSourceError(source)
	}
	if !filepath.IsAbs(src) {
		abs, err := filepath.Abs(src)
		if err != nil {
			return localSourceError(source)
		}
		src = abs
	}
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(src))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return localSourceError(source)
	}
	return nil
}

// localPath turns a file: URI or a plain path into a path; "" for other
// URIs.
func localPath(uri string) string {
	switch sourceScheme(uri) {
	case "":
		return uri
	case "file":
		u, err := url.Parse(uri)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return ""
		}
		return u.Path
	}
	return ""
}

// resolveModelsURI resolves models:/<name>/<version>, models:/<name>@<alias>
// and models:/<name>/latest to the referenced version's storage location,
// and MLflow 3's models:/<model_id> to the logged model's artifact
// location (with the model's source run).
func (s *Server) resolveModelsURI(r *http.Request, source string) (loc, runID string, err error) {
	unresolvable := invalidParam("Unable to fetch model from model URI source artifact location '%s'.", source)
	rest := strings.TrimPrefix(source[len("models:"):], "/")
	var mv *tracking.ModelVersion
	if rest != "" && !strings.ContainsAny(rest, "/@") {
		m, err := s.store.GetLoggedModel(r.Context(), rest)
		if err != nil {
			if _, ok := tracking.AsError(err); ok {
				return "", "", unresolvable
			}
			return "", "", err
		}
		return m.Info.ArtifactURI, m.Info.SourceRunID, nil
	}
	if name, alias, ok := strings.Cut(rest, "@"); ok && name != "" && !strings.Contains(alias, "/") {
		mv, err = s.store.GetModelVersionByAlias(r.Context(), name, alias)
	} else if i := strings.LastIndexByte(rest, '/'); i > 0 {
		name, ver := rest[:i], rest[i+1:]
		if strings.EqualFold(ver, "latest") {
			mv, err = s.store.GetModelVersionByAlias(r.Context(), name, "latest")
		} else {
			n, perr := strconv.ParseInt(ver, 10, 64)
			if perr != nil {
				return "", "", unresolvable
			}
			mv, err = s.store.GetModelVersion(r.Context(), name, n)
		}
	} else {
		return "", "", unresolvable
	}
	if err != nil {
		if _, ok := tracking.AsError(err); ok {
			return "", "", unresolvable
		}
		return "", "", err
	}
	return mv.StorageLocation, "", nil
}

// checkSourceReadable refuses to register a source the caller may not read.
// A model version is read through its registered model's permissions, so
// registering another experiment's run, logged model or artifacts (or a
// version of a model the caller cannot read) would hand them out to anyone
// who may read the new version. Without an Authorizer (auth off) everything
// is readable.
func (s *Server) checkSourceReadable(ctx context.Context, source, runID, modelID string) error {
	a := authorizerFrom(ctx)
	if a == nil {
		return nil
	}
	exps := map[string]bool{}
	addRun := func(id string) error {
		run, err := s.findRun(ctx, id)
		if err != nil {
			return err
		}
		exps[run.Info.ExperimentID] = true
		return nil
	}
	addModel := func(id string) error {
		m, err := s.store.GetLoggedModel(ctx, id)
		if err != nil {
			return err
		}
		exps[m.Info.ExperimentID] = true
		return nil
	}
	if modelID != "" {
		if err := addModel(modelID); err != nil {
			return err
		}
	}
	if runID != "" {
		if err := addRun(runID); err != nil {
			return err
		}
	}
	rest := strings.TrimLeft(source[len(sourceScheme(source))+1:], "/")
	switch sourceScheme(source) {
	case "runs":
		if id, _, _ := strings.Cut(rest, "/"); id != "" {
			if err := addRun(id); err != nil {
				return err
			}
		}
	case "models":
		if rest != "" && !strings.ContainsAny(rest, "/@") {
			if err := addModel(rest); err != nil {
				return err
			}
			break
		}
		name := rest
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		} else if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[:i]
		}
		ok, err := a.CanReadRegisteredModel(ctx, name)
		if err != nil {
			return err
		}
		if !ok {
			return sourceDenied()
		}
	case "mlflow-artifacts":
		// The proxied store keeps experiment artifacts under <experiment id>/,
		// which the artifact routes authorize by; a source there is the same.
		if strings.HasPrefix(source, "mlflow-artifacts://") {
			_, rest, _ = strings.Cut(rest, "/") // skip the host
		}
		if head, _, _ := strings.Cut(rest, "/"); head != "" && strings.Trim(head, "0123456789") == "" {
			exps[head] = true
		}
	}
	for id := range exps {
		ok, err := a.CanReadExperiment(ctx, id)
		if err != nil {
			return err
		}
		if !ok {
			return sourceDenied()
		}
	}
	return nil
}

// sourceDenied is the error for a source the caller may not read.
func sourceDenied() error {
	return tracking.Errorf(tracking.PermissionDenied, "Permission denied: you cannot read the source of this model version.")
}
