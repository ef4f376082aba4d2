package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"slices"
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

// createLoggedModelRequest is CreateLoggedModel.
type createLoggedModelRequest struct {
	ExperimentID, Name, ModelType, SourceRunID string
	Params                                     []tracking.Param
	Tags                                       []tracking.Tag
}

func (q *createLoggedModelRequest) decl() []spec {
	return []spec{
		idStr("experiment_id", &q.ExperimentID).req(),
		str("name", &q.Name),
		str("model_type", &q.ModelType),
		str("source_run_id", &q.SourceRunID),
		paramList("params", &q.Params),
		tagList("tags", &q.Tags),
	}
}

// validate checks the tags; the store names an unnamed model.
func (q *createLoggedModelRequest) validate() error {
	if q.Name == "" {
		q.Name = generateRunName()
	}
	return entityTags(q.Tags)
}

// loggedModelTagsRequest is SetLoggedModelTags.
type loggedModelTagsRequest struct{ Tags []tracking.Tag }

func (q *loggedModelTagsRequest) decl() []spec { return []spec{tagList("tags", &q.Tags)} }

func (q *loggedModelTagsRequest) validate() error { return entityTags(q.Tags) }

// The body of LogLoggedModelParamsRequest and FinalizeLoggedModel repeats
// the path's model_id, required by MLflow's schema; the model acted on is
// the path's, the one the gateway authorized (see Decisions).

// loggedModelParamsRequest is LogLoggedModelParamsRequest.
type loggedModelParamsRequest struct {
	ModelID string
	Params  []tracking.Param
}

func (q *loggedModelParamsRequest) decl() []spec {
	return []spec{str("model_id", &q.ModelID).req(), paramList("params", &q.Params)}
}

// finalizeLoggedModelRequest is FinalizeLoggedModel: an unspecified status
// is a missing one.
type finalizeLoggedModelRequest struct {
	ModelID string
	Status  int
}

func (q *finalizeLoggedModelRequest) decl() []spec {
	return []spec{
		str("model_id", &q.ModelID).req(),
		enumStrField("status", &q.Status, loggedModelStatuses, 0).req().check(func(_ value, path string) error {
			if q.Status == 0 {
				return missingValue(path)
			}
			return nil
		}),
	}
}

func (s *Server) createLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createLoggedModelRequest) error {
		m, err := s.store.CreateLoggedModel(r.Context(), tracking.CreateLoggedModel{
			ExperimentID: q.ExperimentID, Name: q.Name, ModelType: q.ModelType, SourceRunID: q.SourceRunID, Params: q.Params, Tags: q.Tags,
		})
		return answerLoggedModel(w, m, err)
	})
}

func (s *Server) getLoggedModel(w http.ResponseWriter, r *http.Request) error {
	m, err := s.store.GetLoggedModel(r.Context(), r.PathValue("model_id"))
	return answerLoggedModel(w, m, err)
}

func (s *Server) finalizeLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *finalizeLoggedModelRequest) error {
		m, err := s.store.FinalizeLoggedModel(r.Context(), r.PathValue("model_id"), tracking.LoggedModelStatuses[q.Status])
		return answerLoggedModel(w, m, err)
	})
}

// answerLoggedModel answers {"model": m}, or err.
func answerLoggedModel(w http.ResponseWriter, m *tracking.LoggedModel, err error) error {
	return answer(w, loggedModelResponse{m}, err)
}

func (s *Server) deleteLoggedModel(w http.ResponseWriter, r *http.Request) error {
	return answerEmpty(w, s.store.DeleteLoggedModel(r.Context(), r.PathValue("model_id")))
}

func (s *Server) setLoggedModelTags(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *loggedModelTagsRequest) error {
		return answerEmpty(w, s.store.SetLoggedModelTags(r.Context(), r.PathValue("model_id"), q.Tags))
	})
}

func (s *Server) deleteLoggedModelTag(w http.ResponseWriter, r *http.Request) error {
	return answerEmpty(w, s.store.DeleteLoggedModelTag(r.Context(), r.PathValue("model_id"), r.PathValue("tag_key")))
}

func (s *Server) logLoggedModelParams(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *loggedModelParamsRequest) error {
		return answerEmpty(w, s.store.LogLoggedModelParams(r.Context(), r.PathValue("model_id"), q.Params))
	})
}

// searchLoggedModelsRequest is SearchLoggedModels.
type searchLoggedModelsRequest struct {
	ExperimentIDs []string
	Filter        string
	Datasets      []datasetRefMessage
	MaxResults    int64
	OrderBy       []loggedModelOrderMessage
	PageToken     string
}

func (q *searchLoggedModelsRequest) decl() []spec {
	return []spec{
		idList("experiment_ids", &q.ExperimentIDs).req().check(nonEmptyList(&q.ExperimentIDs)),
		str("filter", &q.Filter),
		msgList("datasets", &q.Datasets, (*datasetRefMessage).decl),
		int64Field("max_results", &q.MaxResults, DefaultSearchLoggedModels),
		msgList("order_by", &q.OrderBy, (*loggedModelOrderMessage).decl),
		str("page_token", &q.PageToken),
	}
}

// validate is the store's max_results range (0 is the default).
func (q *searchLoggedModelsRequest) validate() error {
	if q.MaxResults == 0 {
		q.MaxResults = DefaultSearchLoggedModels
	}
	if q.MaxResults < 1 || q.MaxResults > MaxSearchLoggedModels {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be between 1 and %d", q.MaxResults, MaxSearchLoggedModels)
	}
	return nil
}

// datasetRefMessage is SearchLoggedModels.Dataset.
type datasetRefMessage struct{ search.DatasetRef }

func (d *datasetRefMessage) decl() []spec {
	return []spec{str("dataset_name", &d.Name), str("dataset_digest", &d.Digest)}
}

func (d *datasetRefMessage) validate() error {
	if d.Name == "" {
		return invalidParam("`dataset_name` in the `datasets` clause must be specified.")
	}
	return nil
}

// loggedModelOrderMessage is SearchLoggedModels.OrderBy (ascending
// defaults to true).
type loggedModelOrderMessage struct{ search.LoggedModelOrder }

func (o *loggedModelOrderMessage) decl() []spec {
	return []spec{
		str("field_name", &o.FieldName).req(),
		looseBool("ascending", &o.Ascending, true),
		str("dataset_name", &o.DatasetName),
		str("dataset_digest", &o.DatasetDigest),
	}
}

// searchLoggedModels answers SearchLoggedModels with MLflow's filter,
// datasets, order_by and page token semantics (the token echoes the
// request, which must not change between pages).
func (s *Server) searchLoggedModels(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *searchLoggedModelsRequest) error {
		var datasets []search.DatasetRef
		for _, d := range q.Datasets {
			datasets = append(datasets, d.DatasetRef)
		}
		var orders []search.LoggedModelOrder
		for _, o := range q.OrderBy {
			orders = append(orders, o.LoggedModelOrder)
		}
		clauses, err := search.ParseLoggedModelFilter(q.Filter)
		if err != nil {
			return err
		}
		keys, err := search.ParseLoggedModelOrderBy(orders)
		if err != nil {
			return err
		}
		echo := newLoggedModelToken(q.ExperimentIDs, q.Filter, orders)
		var prev loggedModelToken
		if q.PageToken != "" {
			if prev, err = echo.check(q.PageToken); err != nil {
				return err
			}
		}
		page, err := s.store.SearchLoggedModels(r.Context(), tracking.LoggedModelQuery{
			ExperimentIDs: q.ExperimentIDs, Filter: clauses, Datasets: datasets, OrderBy: keys,
			MaxResults: int(q.MaxResults), Offset: prev.Offset, After: prev.After,
		})
		if err != nil {
			return err
		}
		next := ""
		if page.More {
			echo.After = page.Next
			next = echo.encode()
		}
		return answer(w, struct {
			Models        []*tracking.LoggedModel `json:"models,omitempty"`
			NextPageToken string                  `json:"next_page_token,omitempty"`
		}{page.Models, next}, nil)
	})
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
		parts[i] = validate.PyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
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

// loggedModelArtifactsRequest is ListLoggedModelArtifacts.
type loggedModelArtifactsRequest struct{ Dir string }

func (q *loggedModelArtifactsRequest) decl() []spec {
	return []spec{str("artifact_directory_path", &q.Dir)}
}

func (q *loggedModelArtifactsRequest) validate() (err error) {
	if q.Dir != "" {
		q.Dir, err = artifact.CleanPath(q.Dir)
	}
	return err
}

func (s *Server) listLoggedModelArtifacts(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *loggedModelArtifactsRequest) error {
		rel := q.Dir
		m, root, err := s.loggedModelRoot(r, r.PathValue("model_id"))
		if err != nil {
			return err
		}
		entries, err := s.opts.Artifacts.List(r.Context(), path.Join(root, rel))
		if err != nil {
			return err
		}
		files := make([]tracking.FileInfo, 0, len(entries))
		for _, e := range entries {
			files = append(files, tracking.FileInfo{Path: path.Join(rel, path.Base(e.Path)), IsDir: e.IsDir, FileSize: e.FileSize})
		}
		return answer(w, struct {
			RootURI string              `json:"root_uri"`
			Files   []tracking.FileInfo `json:"files,omitempty"`
		}{m.Info.ArtifactURI, files}, nil)
	})
}

// artifactFileRequest is the UI's get-artifact of a logged model: the file
// path (artifact_file_path) is required, possibly empty.
type artifactFileRequest struct{ Path *string }

func (q *artifactFileRequest) decl() []spec {
	return []spec{optStr("artifact_file_path", &q.Path)}
}

func (q *artifactFileRequest) validate() error {
	if q.Path == nil {
		return missingValue("artifact_file_path")
	}
	rel, err := artifact.CleanPath(*q.Path)
	q.Path = &rel
	return err
}

func (s *Server) getLoggedModelArtifact(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *artifactFileRequest) error {
		_, root, err := s.loggedModelRoot(r, r.PathValue("model_id"))
		if err != nil {
			return err
		}
		return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, *q.Path))
	})
}

// logOutputsRequest is LogOutputs.
type logOutputsRequest struct {
	RunID  string
	Models []modelOutputMessage
}

func (q *logOutputsRequest) decl() []spec {
	return []spec{str("run_id", &q.RunID).req(), msgList("models", &q.Models, (*modelOutputMessage).decl).req()}
}

// modelOutputMessage is LoggedModelOutput.
type modelOutputMessage struct{ tracking.ModelOutput }

func (m *modelOutputMessage) decl() []spec {
	return []spec{str("model_id", &m.ModelID).req(), int64Field("step", &m.Step, 0)}
}

func (s *Server) logOutputs(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logOutputsRequest) error {
		outputs := make([]tracking.ModelOutput, len(q.Models))
		for i, m := range q.Models {
			outputs[i] = m.ModelOutput
		}
		return answerEmpty(w, s.store.LogOutputs(r.Context(), q.RunID, outputs))
	})
}

// modelVersionArtifactRequest is the UI's /model-versions/get-artifact.
type modelVersionArtifactRequest struct {
	versionRequest
	Path *string
}

func (q *modelVersionArtifactRequest) decl() []spec {
	return append(q.versionRequest.decl(), optStr("path", &q.Path))
}

func (q *modelVersionArtifactRequest) validate() error {
	if err := q.Version.parse(); err != nil {
		return err
	}
	if q.Path == nil {
		return tracking.Errorf(tracking.BadRequest, "Missing value for required parameter 'path'.")
	}
	rel, err := artifact.CleanPath(*q.Path)
	q.Path = &rel
	return err
}

// getModelVersionArtifact is the UI's /model-versions/get-artifact: one
// file under a model version's storage location, served only when that
// location is inside this server's artifact store (never from a path a
// client chose outside it).
func (s *Server) getModelVersionArtifact(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *modelVersionArtifactRequest) error {
		mv, err := s.store.GetModelVersion(r.Context(), q.Name, q.Version.n)
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
				"Files of model version %s/%d are not stored by this server (location %s).", q.Name, q.Version.n, mv.StorageLocation)
		}
		return artifact.ServeFile(w, r, s.opts.Artifacts, path.Join(root, *q.Path))
	})
}

// resolveRunsURI turns runs:/<run_id>/<path> into the run's artifact URI
// joined with path; other URIs are returned unchanged.
func (s *Server) resolveRunsURI(r *http.Request, uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "runs:/")
	if !ok {
		return uri, nil
	}
	runID, rel, _ := strings.Cut(strings.TrimLeft(rest, "/"), "/")
	run, err := s.findRun(r.Context(), runID)
	if err != nil {
		return "", err
	}
	if rel == "" {
		return run.Info.ArtifactURI, nil
	}
	return strings.TrimSuffix(run.Info.ArtifactURI, "/") + "/" + rel, nil
}

// entityTags checks tags of a trace or logged model in place: keys follow
// MLflow's name rules and are at most 250 code points; values are
// truncated to 8000 code points, as MLflow does.
func entityTags(tags []tracking.Tag) error {
	for i := range tags {
		if err := checkTraceTagKey(tags[i].Key); err != nil {
			return err
		}
		tags[i].Value = validate.TruncateTagValue(tags[i].Value)
	}
	return nil
}
