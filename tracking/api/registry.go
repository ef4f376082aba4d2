package api

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Registry limits (MLflow 2.22.1).
const (
	// MaxRegistryTagValueLength caps registered model and model version
	// tag values (code points).
	MaxRegistryTagValueLength = 100000
	// MaxAliasLength caps alias names (code points).
	MaxAliasLength = 255
	// DefaultSearchRegisteredModels is search-registered-models' default
	// max_results; MaxSearchRegisteredModels its maximum.
	DefaultSearchRegisteredModels = 100
	MaxSearchRegisteredModels     = 1000
	// MaxSearchModelVersions is search-model-versions' default and maximum
	// max_results.
	MaxSearchModelVersions = 200000
)

// registerRegistry adds the model registry routes (ModelRegistryService)
// under /api/2.0/mlflow and /ajax-api/2.0/mlflow, named by MLflow's RPC
// names.
func (s *Server) registerRegistry() {
	s.addTracking("POST", "/registered-models/create", "CreateRegisteredModel", (*Server).createRegisteredModel)
	s.addTracking("POST", "/registered-models/rename", "RenameRegisteredModel", (*Server).renameRegisteredModel)
	s.addTracking("PATCH", "/registered-models/update", "UpdateRegisteredModel", (*Server).updateRegisteredModel)
	s.addTracking("DELETE", "/registered-models/delete", "DeleteRegisteredModel", (*Server).deleteRegisteredModel)
	s.addTracking("GET", "/registered-models/get", "GetRegisteredModel", (*Server).getRegisteredModel)
	s.addTracking("GET", "/registered-models/search", "SearchRegisteredModels", (*Server).searchRegisteredModels)
	s.addTracking("POST", "/registered-models/get-latest-versions", "GetLatestVersions", (*Server).getLatestVersions)
	s.addTracking("GET", "/registered-models/get-latest-versions", "GetLatestVersions", (*Server).getLatestVersions)
	s.addTracking("POST", "/registered-models/set-tag", "SetRegisteredModelTag", (*Server).setRegisteredModelTag)
	s.addTracking("DELETE", "/registered-models/delete-tag", "DeleteRegisteredModelTag", (*Server).deleteRegisteredModelTag)
	s.addTracking("POST", "/registered-models/alias", "SetRegisteredModelAlias", (*Server).setRegisteredModelAlias)
	s.addTracking("DELETE", "/registered-models/alias", "DeleteRegisteredModelAlias", (*Server).deleteRegisteredModelAlias)
	s.addTracking("GET", "/registered-models/alias", "GetModelVersionByAlias", (*Server).getModelVersionByAlias)

	s.addTracking("POST", "/model-versions/create", "CreateModelVersion", (*Server).createModelVersion)
	s.addTracking("PATCH", "/model-versions/update", "UpdateModelVersion", (*Server).updateModelVersion)
	s.addTracking("DELETE", "/model-versions/delete", "DeleteModelVersion", (*Server).deleteModelVersion)
	s.addTracking("GET", "/model-versions/get", "GetModelVersion", (*Server).getModelVersion)
	s.addTracking("GET", "/model-versions/search", "SearchModelVersions", (*Server).searchModelVersions)
	s.addTracking("GET", "/model-versions/get-download-uri", "GetModelVersionDownloadUri", (*Server).getModelVersionDownloadURI)
	s.addTracking("POST", "/model-versions/transition-stage", "TransitionModelVersionStage", (*Server).transitionModelVersionStage)
	s.addTracking("POST", "/model-versions/set-tag", "SetModelVersionTag", (*Server).setModelVersionTag)
	s.addTracking("DELETE", "/model-versions/delete-tag", "DeleteModelVersionTag", (*Server).deleteModelVersionTag)
}

type registeredModelResponse struct {
	RegisteredModel *tracking.RegisteredModel `json:"registered_model"`
}

type modelVersionResponse struct {
	ModelVersion *tracking.ModelVersion `json:"model_version"`
}

type modelVersionsResponse struct {
	ModelVersions []*tracking.ModelVersion `json:"model_versions,omitempty"`
	NextPageToken string                   `json:"next_page_token,omitempty"`
}

// version reads the required model version number ("version", a string or
// a number on the wire).
func (f *fields) version() (int64, error) {
	s, _, err := f.strAt("version", "version", true)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, missingValue("version")
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return 0, invalidParam("Parameter 'version' must be an integer, got '%s'.", s)
	}
	return n, nil
}

// boolean reads a bool field. A JSON bool is taken as is; the strings
// "true"/"false" are accepted as protobuf's JSON parser does for query
// values; anything else is an invalid value.
func (f *fields) boolean(name string) (bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return false, nil
	}
	if v.query {
		switch strings.ToLower(v.q[0]) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return false, invalidType(name, v)
	}
	if kindOf(v.raw) == kindBool {
		return string(v.raw) == "true", nil
	}
	return false, invalidType(name, v)
}

// registryTag checks a registered model or model version tag: MLflow's
// name rules on the key (at most 250 code points) and a value of at most
// 100000 code points.
func registryTag(key, value string) error {
	if err := validate.Name(key, "key"); err != nil {
		return err
	}
	if utf8.RuneCountInString(key) > validate.MaxEntityKeyLength {
		return invalidParam("'key' exceeds the maximum length of %d characters", validate.MaxEntityKeyLength)
	}
	if utf8.RuneCountInString(value) > MaxRegistryTagValueLength {
		return invalidParam("'value' exceeds the maximum length of %d characters", MaxRegistryTagValueLength)
	}
	return nil
}

func registryTags(tags []tracking.Tag) error {
	for _, t := range tags {
		if t.Key == "" {
			return missingValue("key")
		}
		if err := registryTag(t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

// checkAlias is MLflow's _validate_model_alias_name: non-empty, only
// letters, digits (any script), '_' and '-', at most 255 code points, and
// not reserved ("latest" and v<digits>, case-insensitive).
func checkAlias(alias string) error {
	if alias == "" {
		return invalidParam("Registered model alias name cannot be empty.")
	}
	for _, r := range alias {
		if r != '_' && r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return invalidParam("Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
		}
	}
	if utf8.RuneCountInString(alias) > MaxAliasLength {
		return invalidParam("'%s' alias name exceeds the maximum length of %d characters", alias, MaxAliasLength)
	}
	if isReservedAlias(alias) {
		return invalidParam("'%s' alias name (case insensitive) is reserved.", alias)
	}
	return nil
}

func isReservedAlias(alias string) bool {
	if strings.EqualFold(alias, "latest") {
		return true
	}
	if len(alias) < 2 || (alias[0] != 'v' && alias[0] != 'V') {
		return false
	}
	for _, c := range alias[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// --- registered models ---

func (s *Server) createRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	tags, err := readTags(f, "tags")
	if err != nil {
		return err
	}
	desc, _, err := f.str("description")
	if err != nil {
		return err
	}
	if err := registryTags(tags); err != nil {
		return err
	}
	m, err := s.store.CreateRegisteredModel(r.Context(), tracking.CreateRegisteredModel{Name: name, Description: desc, Tags: tags})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registeredModelResponse{m})
	return nil
}

func (s *Server) renameRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	_, name, newName, err := requiredStrPair(r, "name", "new_name")
	if err != nil {
		return err
	}
	m, err := s.store.RenameRegisteredModel(r.Context(), name, newName)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registeredModelResponse{m})
	return nil
}

func (s *Server) updateRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	desc, _, err := f.str("description")
	if err != nil {
		return err
	}
	m, err := s.store.UpdateRegisteredModel(r.Context(), name, desc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registeredModelResponse{m})
	return nil
}

func (s *Server) deleteRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	if err := s.store.DeleteRegisteredModel(r.Context(), name); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) getRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	m, err := s.store.GetRegisteredModel(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registeredModelResponse{m})
	return nil
}

// searchParams reads the common fields of the registry searches.
func searchParams(f *fields, def, limit int64) (filter string, orderBy []string, maxResults int64, token string, err error) {
	if filter, _, err = f.str("filter"); err != nil {
		return
	}
	if maxResults, _, err = f.maxResults(def); err != nil {
		return
	}
	if orderBy, _, err = f.strList("order_by", false); err != nil {
		return
	}
	if token, _, err = f.str("page_token"); err != nil {
		return
	}
	if maxResults < 1 {
		err = invalidParam("Invalid value for request parameter max_results. It must be at least 1, but got value %d", maxResults)
	} else if maxResults > limit {
		err = invalidParam("Invalid value for request parameter max_results. It must be at most %d, but got value %d", limit, maxResults)
	}
	return
}

func (s *Server) searchRegisteredModels(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	filter, orderBy, maxResults, token, err := searchParams(f, DefaultSearchRegisteredModels, MaxSearchRegisteredModels)
	if err != nil {
		return err
	}
	clauses, err := search.ParseRegisteredModelFilter(filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseRegisteredModelOrderBy(orderBy)
	if err != nil {
		return err
	}
	page, err := s.store.SearchRegisteredModels(r.Context(), tracking.RegisteredModelQuery{
		Filter: clauses, OrderBy: keys, MaxResults: int(maxResults), PageToken: token,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		RegisteredModels []*tracking.RegisteredModel `json:"registered_models,omitempty"`
		NextPageToken    string                      `json:"next_page_token,omitempty"`
	}{page.Models, page.NextPageToken})
	return nil
}

// canonicalStage maps a stage to its canonical name or answers MLflow's
// error.
func canonicalStage(stage string) (string, error) {
	st, ok := tracking.CanonicalStage(stage)
	if !ok {
		return "", invalidParam("Invalid Model Version stage: %s. Value must be one of %s.",
			stage, strings.Join(tracking.AllStages, ", "))
	}
	return st, nil
}

func (s *Server) getLatestVersions(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	stages, _, err := f.strList("stages", false)
	if err != nil {
		return err
	}
	for i, st := range stages {
		if stages[i], err = canonicalStage(st); err != nil {
			return err
		}
	}
	mvs, err := s.store.GetLatestVersions(r.Context(), name, stages)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionsResponse{ModelVersions: mvs})
	return nil
}

func (s *Server) setRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	f, name, key, err := requiredStrPair(r, "name", "key")
	if err != nil {
		return err
	}
	value, _, err := f.str("value")
	if err != nil {
		return err
	}
	if err := registryTag(key, value); err != nil {
		return err
	}
	if err := s.store.SetRegisteredModelTag(r.Context(), name, tracking.Tag{Key: key, Value: value}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	_, name, key, err := requiredStrPair(r, "name", "key")
	if err != nil {
		return err
	}
	if err := s.store.DeleteRegisteredModelTag(r.Context(), name, key); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) setRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	f, name, alias, err := requiredStrPair(r, "name", "alias")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	if err := checkAlias(alias); err != nil {
		return err
	}
	if err := s.store.SetRegisteredModelAlias(r.Context(), name, alias, version); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	_, name, alias, err := requiredStrPair(r, "name", "alias")
	if err != nil {
		return err
	}
	if err := s.store.DeleteRegisteredModelAlias(r.Context(), name, alias); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) error {
	_, name, alias, err := requiredStrPair(r, "name", "alias")
	if err != nil {
		return err
	}
	mv, err := s.store.GetModelVersionByAlias(r.Context(), name, alias)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionResponse{mv})
	return nil
}

// --- model versions ---

func (s *Server) createModelVersion(w http.ResponseWriter, r *http.Request) error {
	f, name, source, err := requiredStrPair(r, "name", "source")
	if err != nil {
		return err
	}
	runID, _, err := f.str("run_id")
	if err != nil {
		return err
	}
	tags, err := readTags(f, "tags")
	if err != nil {
		return err
	}
	runLink, _, err := f.str("run_link")
	if err != nil {
		return err
	}
	desc, _, err := f.str("description")
	if err != nil {
		return err
	}
	modelID, _, err := f.str("model_id")
	if err != nil {
		return err
	}
	if err := registryTags(tags); err != nil {
		return err
	}
	src, err := s.checkModelSource(r, source, runID, modelID)
	if err != nil {
		return err
	}
	if runID == "" {
		runID = src.runID
	}
	mv, err := s.store.CreateModelVersion(r.Context(), tracking.CreateModelVersion{
		Name: name, Source: source, RunID: runID, RunLink: runLink, Description: desc,
		Tags: tags, StorageLocation: src.storage, ModelID: modelID,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionResponse{mv})
	return nil
}

func (s *Server) updateModelVersion(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	desc, has, err := f.str("description")
	if err != nil {
		return err
	}
	var mv *tracking.ModelVersion
	if has {
		mv, err = s.store.UpdateModelVersion(r.Context(), name, version, desc)
	} else {
		mv, err = s.store.GetModelVersion(r.Context(), name, version)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionResponse{mv})
	return nil
}

func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	if err := s.store.DeleteModelVersion(r.Context(), name, version); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	mv, err := s.store.GetModelVersion(r.Context(), name, version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionResponse{mv})
	return nil
}

func (s *Server) searchModelVersions(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	filter, orderBy, maxResults, token, err := searchParams(f, MaxSearchModelVersions, MaxSearchModelVersions)
	if err != nil {
		return err
	}
	clauses, err := search.ParseModelVersionFilter(filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseModelVersionOrderBy(orderBy)
	if err != nil {
		return err
	}
	page, err := s.store.SearchModelVersions(r.Context(), tracking.ModelVersionQuery{
		Filter: clauses, OrderBy: keys, MaxResults: int(maxResults), PageToken: token,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionsResponse{page.Versions, page.NextPageToken})
	return nil
}

func (s *Server) getModelVersionDownloadURI(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	mv, err := s.store.GetModelVersion(r.Context(), name, version)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ArtifactURI string `json:"artifact_uri"`
	}{mv.StorageLocation})
	return nil
}

func (s *Server) transitionModelVersionStage(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	stage, err := f.requiredStr("stage")
	if err != nil {
		return err
	}
	archive, err := f.boolean("archive_existing_versions")
	if err != nil {
		return err
	}
	if stage, err = canonicalStage(stage); err != nil {
		return err
	}
	mv, err := s.store.TransitionModelVersionStage(r.Context(), name, version, stage, archive)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, modelVersionResponse{mv})
	return nil
}

func (s *Server) setModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
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
	if err := registryTag(key, value); err != nil {
		return err
	}
	if err := s.store.SetModelVersionTag(r.Context(), name, version, tracking.Tag{Key: key, Value: value}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	version, err := f.version()
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	if err := s.store.DeleteModelVersionTag(r.Context(), name, version, key); err != nil {
		return err
	}
	return writeEmpty(w)
}

// requiredStrPair reads the request's fields and two required string
// fields, a then b: the order MLflow checks them in, which decides the
// error a request missing both gets.
func requiredStrPair(r *http.Request, a, b string) (f *fields, va, vb string, err error) {
	if f, err = requestFields(r); err != nil {
		return nil, "", "", err
	}
	if va, err = f.requiredStr(a); err != nil {
		return nil, "", "", err
	}
	if vb, err = f.requiredStr(b); err != nil {
		return nil, "", "", err
	}
	return f, va, vb, nil
}
