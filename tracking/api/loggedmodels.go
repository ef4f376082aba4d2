package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Logged model search limits.
const (
	// DefaultSearchLoggedModels is search-logged-models' default max_results.
	DefaultSearchLoggedModels = 100
	// MaxSearchLoggedModels is its largest max_results.
	MaxSearchLoggedModels = 1000
)

var loggedModelStatuses = map[string]int{
	tracking.LoggedModelStatusUnspecified:  0,
	tracking.LoggedModelStatusPending:      1,
	tracking.LoggedModelStatusReady:        2,
	tracking.LoggedModelStatusUploadFailed: 3,
}

// registerLoggedModels adds MLflow 3's logged model routes (CreateLoggedModel
// and the rest of the logged-models family), runs/outputs (LogOutputs), the
// UI's logged model file download and /model-versions/get-artifact.
func (s *Server) registerLoggedModels() {
	s.addTracking("POST", "/logged-models", "CreateLoggedModel", (*Server).createLoggedModel)
	s.addTracking("POST", "/logged-models/search", "SearchLoggedModels", (*Server).searchLoggedModels)
	s.addTracking("GET", "/logged-models/{model_id}", "GetLoggedModel", (*Server).getLoggedModel)
	s.addTracking("PATCH", "/logged-models/{model_id}", "FinalizeLoggedModel", (*Server).finalizeLoggedModel)
	s.addTracking("DELETE", "/logged-models/{model_id}", "DeleteLoggedModel", (*Server).deleteLoggedModel)
	s.addTracking("PATCH", "/logged-models/{model_id}/tags", "SetLoggedModelTags", (*Server).setLoggedModelTags)
	s.addTracking("DELETE", "/logged-models/{model_id}/tags/{tag_key}", "DeleteLoggedModelTag", (*Server).deleteLoggedModelTag)
	s.addTracking("POST", "/logged-models/{model_id}/params", "LogLoggedModelParams", (*Server).logLoggedModelParams)
	s.addTracking("GET", "/logged-models/{model_id}/artifacts/directories", "ListLoggedModelArtifacts", (*Server).listLoggedModelArtifacts)
	s.add("GET", "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files", "GetLoggedModelArtifact", true, (*Server).getLoggedModelArtifact)
	s.addTracking("POST", "/runs/outputs", "LogOutputs", (*Server).logOutputs)
	s.add("GET", "/model-versions/get-artifact", "GetModelVersionArtifact", true, (*Server).getModelVersionArtifact)
}

type loggedModelResponse struct {
	Model *tracking.LoggedModel `json:"model"`
}

// readParams reads a list of {key, value} params and checks them as run
// params are checked (values longer than 6000 code points are truncated).
func readParams(f *fields, name string) ([]tracking.Param, error) {
	tags, err := readTags(f, name)
	if err != nil {
		return nil, err
	}
	params := make([]tracking.Param, 0, len(tags))
	for i, t := range tags {
		p := tracking.Param{Key: t.Key, Value: t.Value}
		if err := validate.Param(&p, name+"["+strconv.Itoa(i)+"]."); err != nil {
			return nil, err
		}
		params = append(params, p)
	}
	return params, nil
}

func loggedModelTags(f *fields) ([]tracking.Tag, error) {
	tags, err := readTags(f, "tags")
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

func (s *Server) createLoggedModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	expID, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	name, _, err := f.str("name")
	if err != nil {
		return err
	}
	modelType, _, err := f.str("model_type")
	if err != nil {
		return err
	}
	runID, _, err := f.str("source_run_id")
	if err != nil {
		return err
	}
	params, err := readParams(f, "params")
	if err != nil {
		return err
	}
	tags, err := loggedModelTags(f)
	if err != nil {
		return err
	}
	if name == "" {
		name = generateRunName()
	}
	m, err := s.store.CreateLoggedModel(r.Context(), tracking.CreateLoggedModel{
		ExperimentID: expID, Name: name, ModelType: modelType, SourceRunID: runID, Params: params, Tags: tags,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loggedModelResponse{m})
	return nil
}

func (s *Server) getLoggedModel(w http.ResponseWriter, r *http.Request) error {
	m, err := s.store.GetLoggedModel(r.Context(), r.PathValue("model_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loggedModelResponse{m})
	return nil
}

func (s *Server) finalizeLoggedModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	st, ok, err := f.enum("status", loggedModelStatuses)
	if err != nil {
		return err
	}
	if !ok || st == 0 {
		return missingValue("status")
	}
	m, err := s.store.FinalizeLoggedModel(r.Context(), r.PathValue("model_id"), tracking.LoggedModelStatuses[st])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loggedModelResponse{m})
	return nil
}

func (s *Server) deleteLoggedModel(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.DeleteLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) setLoggedModelTags(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	tags, err := loggedModelTags(f)
	if err != nil {
		return err
	}
	if err := s.store.SetLoggedModelTags(r.Context(), r.PathValue("model_id"), tags); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteLoggedModelTag(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.DeleteLoggedModelTag(r.Context(), r.PathValue("model_id"), r.PathValue("tag_key")); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) logLoggedModelParams(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	params, err := readParams(f, "params")
	if err != nil {
		return err
	}
	if err := s.store.LogLoggedModelParams(r.Context(), r.PathValue("model_id"), params); err != nil {
		return err
	}
	return writeEmpty(w)
}

// searchLoggedModels answers SearchLoggedModels with MLflow's filter,
// datasets, order_by and page token semantics (the token echoes the
// request, which must not change between pages).
func (s *Server) searchLoggedModels(w http.ResponseWriter, r *http.Request) error {
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
	filter, _, err := f.str("filter")
	if err != nil {
		return err
	}
	maxResults, _, err := f.maxResults(DefaultSearchLoggedModels)
	if err != nil {
		return err
	}
	if maxResults == 0 {
		maxResults = DefaultSearchLoggedModels
	}
	if maxResults < 1 || maxResults > MaxSearchLoggedModels {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be between 1 and %d", maxResults, MaxSearchLoggedModels)
	}
	token, _, err := f.str("page_token")
	if err != nil {
		return err
	}
	datasets, err := readDatasetRefs(f)
	if err != nil {
		return err
	}
	orders, err := readLoggedModelOrders(f)
	if err != nil {
		return err
	}
	clauses, err := search.ParseLoggedModelFilter(filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseLoggedModelOrderBy(orders)
	if err != nil {
		return err
	}
	echo := newLoggedModelToken(ids, filter, orders)
	var prev loggedModelToken
	if token != "" {
		if prev, err = echo.check(token); err != nil {
			return err
		}
	}
	page, err := s.store.SearchLoggedModels(r.Context(), tracking.LoggedModelQuery{
		ExperimentIDs: ids, Filter: clauses, Datasets: datasets, OrderBy: keys,
		MaxResults: int(maxResults), Offset: prev.Offset, After: prev.After,
	})
	if err != nil {
		return err
	}
	next := ""
	if page.More {
		echo.After = page.Next
		next = echo.encode()
	}
	writeJSON(w, http.StatusOK, struct {
		Models        []*tracking.LoggedModel `json:"models,omitempty"`
		NextPageToken string                  `json:"next_page_token,omitempty"`
	}{page.Models, next})
	return nil
}

// readDatasetRefs reads search-logged-models' datasets:
// [{dataset_name, dataset_digest}].
func readDatasetRefs(f *fields) ([]search.DatasetRef, error) {
	elems, _, err := f.array("datasets")
	if err != nil {
		return nil, err
	}
	var out []search.DatasetRef
	for i, raw := range elems {
		p := "datasets[" + strconv.Itoa(i) + "]"
		m, err := message(raw, p)
		if err != nil {
			return nil, err
		}
		name, _, err := m.strAt("dataset_name", p+".dataset_name", false)
		if err != nil {
			return nil, err
		}
		digest, _, err := m.strAt("dataset_digest", p+".dataset_digest", false)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, invalidParam("`dataset_name` in the `datasets` clause must be specified.")
		}
		out = append(out, search.DatasetRef{Name: name, Digest: digest})
	}
	return out, nil
}

// readLoggedModelOrders reads search-logged-models' order_by:
// [{field_name, ascending (default true), dataset_name, dataset_digest}].
func readLoggedModelOrders(f *fields) ([]search.LoggedModelOrder, error) {
	elems, _, err := f.array("order_by")
	if err != nil {
		return nil, err
	}
	var out []search.LoggedModelOrder
	for i, raw := range elems {
		p := "order_by[" + strconv.Itoa(i) + "]"
		m, err := message(raw, p)
		if err != nil {
			return nil, err
		}
		var o search.LoggedModelOrder
		if o.FieldName, _, err = m.strAt("field_name", p+".field_name", false); err != nil {
			return nil, err
		}
		if o.FieldName == "" {
			return nil, missingValue(p + ".field_name")
		}
		asc, has := (&Params{f: m}).Bool("ascending")
		if m.has("ascending") && !has {
			v, _ := m.lookup("ascending")
			return nil, invalidType(p+".ascending", v)
		}
		o.Ascending = asc || !has
		if o.DatasetName, _, err = m.strAt("dataset_name", p+".dataset_name", false); err != nil {
			return nil, err
		}
		if o.DatasetDigest, _, err = m.strAt("dataset_digest", p+".dataset_digest", false); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// loggedModelOrderJSON is an order_by entry as the page token echoes it.
type loggedModelOrderJSON struct {
	FieldName     string  `json:"field_name"`
	Ascending     bool    `json:"ascending"`
	DatasetName   *string `json:"dataset_name"`
	DatasetDigest *string `json:"dataset_digest"`
}

// loggedModelToken is MLflow's SearchLoggedModelsPaginationToken: the
// request echoed, as base64 JSON, with the position of the next page
// (After, the store's keyset cursor; MLflow's own tokens carry an Offset,
// which is still accepted).
type loggedModelToken struct {
	ExperimentIDs []string               `json:"experiment_ids"`
	FilterString  *string                `json:"filter_string"`
	OrderBy       []loggedModelOrderJSON `json:"order_by"`
	Offset        int                    `json:"offset"`
	After         string                 `json:"after,omitempty"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func newLoggedModelToken(ids []string, filter string, orders []search.LoggedModelOrder) *loggedModelToken {
	t := &loggedModelToken{ExperimentIDs: ids, FilterString: optString(filter)}
	for _, o := range orders {
		t.OrderBy = append(t.OrderBy, loggedModelOrderJSON{FieldName: o.FieldName, Ascending: o.Ascending,
			DatasetName: optString(o.DatasetName), DatasetDigest: optString(o.DatasetDigest)})
	}
	return t
}

func (t *loggedModelToken) encode() string {
	b, _ := json.Marshal(t)
	return base64.StdEncoding.EncodeToString(b)
}

// check decodes a page token, makes sure it was issued for the same
// request (MLflow's messages) and returns its offset.
func (t *loggedModelToken) check(token string) (loggedModelToken, error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	var got loggedModelToken
	if err == nil {
		err = json.Unmarshal(raw, &got)
	}
	if err != nil || got.Offset < 0 {
		return got, invalidParam("Invalid page token: %s.", token)
	}
	if !slices.Equal(got.ExperimentIDs, t.ExperimentIDs) {
		return got, invalidParam("Experiment IDs in the page token do not match the requested experiment IDs. "+
			"Expected: %s. Found: %s", pyStrList(t.ExperimentIDs), pyStrList(got.ExperimentIDs))
	}
	if pyOpt(got.FilterString) != pyOpt(t.FilterString) {
		return got, invalidParam("Filter string in the page token does not match the requested filter string. "+
			"Expected: %s. Found: %s", pyOpt(t.FilterString), pyOpt(got.FilterString))
	}
	a, _ := json.Marshal(got.OrderBy)
	b, _ := json.Marshal(t.OrderBy)
	if !bytes.Equal(a, b) {
		return got, invalidParam("Order by in the page token does not match the requested order by. "+
			"Expected: %s. Found: %s", b, a)
	}
	return got, nil
}

func pyOpt(s *string) string {
	if s == nil {
		return "None"
	}
	return *s
}

func pyStrList(l []string) string {
	if l == nil {
		return "None"
	}
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = pyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// loggedModelRoot resolves a logged model's artifact URI to its directory
// in the proxied artifact store.
func (s *Server) loggedModelRoot(r *http.Request, id string) (*tracking.LoggedModel, string, error) {
	m, err := s.store.GetLoggedModel(r.Context(), id)
	if err != nil {
		return nil, "", err
	}
	root, ok := s.runArtifactRoot(m.Info.ArtifactURI)
	if !ok {
		return nil, "", tracking.Errorf(tracking.ResourceDoesNotExist,
			"Artifacts of logged model %s are not stored by this server (artifact URI %s).", id, m.Info.ArtifactURI)
	}
	return m, root, nil
}

func (s *Server) listLoggedModelArtifacts(w http.ResponseWriter, r *http.Request) error {
	rel := r.URL.Query().Get("artifact_directory_path")
	var err error
	if rel != "" {
		if rel, err = artifact.CleanPath(rel); err != nil {
			return err
		}
	}
	m, root, err := s.loggedModelRoot(r, r.PathValue("model_id"))
	if err != nil {
		return err
	}
	dir := root
	if rel != "" {
		dir = path.Join(root, rel)
	}
	entries, err := s.opts.Artifacts.List(r.Context(), dir)
	if err != nil {
		return err
	}
	files := make([]tracking.FileInfo, 0, len(entries))
	for _, e := range entries {
		name := path.Base(e.Path)
		if rel != "" {
			name = path.Join(rel, name)
		}
		files = append(files, tracking.FileInfo{Path: name, IsDir: e.IsDir, FileSize: e.FileSize})
	}
	writeJSON(w, http.StatusOK, struct {
		RootURI string              `json:"root_uri"`
		Files   []tracking.FileInfo `json:"files,omitempty"`
	}{m.Info.ArtifactURI, files})
	return nil
}

func (s *Server) getLoggedModelArtifact(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if !q.Has("artifact_file_path") {
		return missingValue("artifact_file_path")
	}
	rel, err := artifact.CleanPath(q.Get("artifact_file_path"))
	if err != nil {
		return err
	}
	_, root, err := s.loggedModelRoot(r, r.PathValue("model_id"))
	if err != nil {
		return err
	}
	return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, rel))
}

func (s *Server) logOutputs(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	runID, err := f.requiredStr("run_id")
	if err != nil {
		return err
	}
	elems, _, err := f.array("models")
	if err != nil {
		return err
	}
	outputs := make([]tracking.ModelOutput, 0, len(elems))
	for i, raw := range elems {
		p := "models[" + strconv.Itoa(i) + "]"
		m, err := message(raw, p)
		if err != nil {
			return err
		}
		id, _, err := m.strAt("model_id", p+".model_id", false)
		if err != nil {
			return err
		}
		if id == "" {
			return missingValue(p + ".model_id")
		}
		step, _, err := m.int64At("step", p+".step")
		if err != nil {
			return err
		}
		outputs = append(outputs, tracking.ModelOutput{ModelID: id, Step: step})
	}
	if err := s.store.LogOutputs(r.Context(), runID, outputs); err != nil {
		return err
	}
	return writeEmpty(w)
}

// getModelVersionArtifact is the UI's /model-versions/get-artifact: one
// file under a model version's storage location, served only when that
// location is inside this server's artifact store (never from a path a
// client chose outside it).
func (s *Server) getModelVersionArtifact(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		return missingValue("name")
	}
	verText := q.Get("version")
	if verText == "" {
		return missingValue("version")
	}
	version, perr := strconv.ParseInt(verText, 10, 64)
	if perr != nil {
		return invalidParam("Parameter 'version' must be an integer, got '%s'.", verText)
	}
	if !q.Has("path") {
		return tracking.Errorf(tracking.BadRequest, "Missing value for required parameter 'path'.")
	}
	rel, err := artifact.CleanPath(q.Get("path"))
	if err != nil {
		return err
	}
	mv, err := s.store.GetModelVersion(r.Context(), name, version)
	if err != nil {
		return err
	}
	loc, err := s.resolveRunsURI(r, mv.StorageLocation)
	if err != nil {
		return err
	}
	root, ok := s.runArtifactRoot(loc)
	if !ok {
		return tracking.Errorf(tracking.ResourceDoesNotExist,
			"Files of model version %s/%d are not stored by this server (location %s).", name, version, mv.StorageLocation)
	}
	return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, rel))
}

// resolveRunsURI turns runs:/<run_id>/<path> into the run's artifact URI
// joined with path; other URIs are returned unchanged.
func (s *Server) resolveRunsURI(r *http.Request, uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "runs:/")
	if !ok {
		return uri, nil
	}
	runID, rel, _ := strings.Cut(strings.TrimLeft(rest, "/"), "/")
	run, err := s.store.GetRun(r.Context(), runID)
	if err != nil {
		return "", err
	}
	if run == nil {
		return "", runNotFound(runID)
	}
	if rel == "" {
		return run.Info.ArtifactURI, nil
	}
	return strings.TrimSuffix(run.Info.ArtifactURI, "/") + "/" + rel, nil
}
