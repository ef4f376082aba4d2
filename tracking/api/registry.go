package api

import (
	"net/http"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Registry search limits (MLflow 3.x handlers.py and its registry store);
// the tag and alias limits are in package validate.
const (
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

// registryTags checks tags as the registry store does before creating a
// model or version, one tag at a time.
func registryTags(tags []tracking.Tag, check func(key, value string) error) error {
	for _, t := range tags {
		if err := check(t.Key, t.Value); err != nil {
			return err
		}
	}
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

// --- request messages (schemas from mlflow/server/handlers.py) ---

// nameRequest is every registered-model request whose only field is the
// model's name: GetRegisteredModel, DeleteRegisteredModel.
type nameRequest struct{ Name string }

func (q *nameRequest) decl() []spec { return []spec{str("name", &q.Name).req()} }

// createRegisteredModelRequest is CreateRegisteredModel.
type createRegisteredModelRequest struct {
	Name, Description string
	Tags              []tracking.Tag
}

func (q *createRegisteredModelRequest) decl() []spec {
	return []spec{
		str("name", &q.Name).req(),
		tagList("tags", &q.Tags),
		str("description", &q.Description),
	}
}

func (q *createRegisteredModelRequest) validate() error {
	return registryTags(q.Tags, validate.RegisteredModelTag)
}

// renameRegisteredModelRequest is RenameRegisteredModel.
type renameRegisteredModelRequest struct{ Name, NewName string }

func (q *renameRegisteredModelRequest) decl() []spec {
	return []spec{str("name", &q.Name).req(), str("new_name", &q.NewName).req()}
}

// updateRegisteredModelRequest is UpdateRegisteredModel.
type updateRegisteredModelRequest struct{ Name, Description string }

func (q *updateRegisteredModelRequest) decl() []spec {
	return []spec{str("name", &q.Name).req(), str("description", &q.Description)}
}

// registrySearchRequest is SearchRegisteredModels and SearchModelVersions:
// the same fields, with different max_results defaults and limits.
type registrySearchRequest struct {
	Filter     string
	MaxResults int64
	OrderBy    []string
	PageToken  string

	def, limit int64
	versions   bool // SearchModelVersions: the store refuses max_results < 1
}

func (q *registrySearchRequest) decl() []spec {
	return []spec{
		str("filter", &q.Filter),
		int64Field("max_results", &q.MaxResults, q.def).check(atMost(&q.MaxResults, q.limit)),
		strList("order_by", &q.OrderBy),
		str("page_token", &q.PageToken),
	}
}

func (q *registrySearchRequest) validate() error {
	if q.MaxResults >= 1 {
		return nil
	}
	if q.versions {
		// SqlAlchemyStore.search_model_versions.
		return invalidParam("Invalid value for max_results. It must be a positive integer, but got %d", q.MaxResults)
	}
	// MLflow's search_registered_models has no lower bound (see Decisions).
	return invalidParam("Invalid value for request parameter max_results. It must be at least 1, but got value %d", q.MaxResults)
}

// getLatestVersionsRequest is GetLatestVersions.
type getLatestVersionsRequest struct {
	Name   string
	Stages []string
}

func (q *getLatestVersionsRequest) decl() []spec {
	return []spec{str("name", &q.Name).req(), strList("stages", &q.Stages)}
}

func (q *getLatestVersionsRequest) validate() error {
	for i, st := range q.Stages {
		var err error
		if q.Stages[i], err = canonicalStage(st); err != nil {
			return err
		}
	}
	return nil
}

// modelTagRequest is SetRegisteredModelTag and DeleteRegisteredModelTag
// (which has no value).
type modelTagRequest struct {
	Name, Key, Value string
	set              bool
}

func (q *modelTagRequest) decl() []spec {
	d := []spec{str("name", &q.Name).req(), str("key", &q.Key).req()}
	if q.set {
		d = append(d, str("value", &q.Value))
	}
	return d
}

func (q *modelTagRequest) validate() error {
	if !q.set {
		return nil
	}
	return validate.RegisteredModelTag(q.Key, q.Value)
}

// aliasRequest is SetRegisteredModelAlias, DeleteRegisteredModelAlias and
// GetModelVersionByAlias (the last two have no version).
type aliasRequest struct {
	Name, Alias string
	Version     versionNumber
	set         bool
}

func (q *aliasRequest) decl() []spec {
	d := []spec{str("name", &q.Name).req(), str("alias", &q.Alias).req()}
	if q.set {
		d = append(d, version(&q.Version))
	}
	return d
}

func (q *aliasRequest) validate() error {
	if !q.set {
		return nil
	}
	// SqlAlchemyStore.set_registered_model_alias: alias, then version.
	if err := validate.ModelAlias(q.Alias); err != nil {
		return err
	}
	return q.Version.parse()
}

// createModelVersionRequest is CreateModelVersion.
type createModelVersionRequest struct {
	Name, Source, RunID         string
	Tags                        []tracking.Tag
	RunLink, Description, Model string
}

func (q *createModelVersionRequest) decl() []spec {
	return []spec{
		str("name", &q.Name).req(),
		str("source", &q.Source).req(),
		str("run_id", &q.RunID),
		tagList("tags", &q.Tags),
		str("run_link", &q.RunLink),
		str("description", &q.Description),
		str("model_id", &q.Model),
	}
}

func (q *createModelVersionRequest) validate() error {
	return registryTags(q.Tags, validate.ModelVersionTag)
}

// versionRequest is every request naming one model version and nothing
// else: GetModelVersion, DeleteModelVersion, GetModelVersionDownloadUri.
type versionRequest struct {
	Name    string
	Version versionNumber
}

func (q *versionRequest) decl() []spec {
	return []spec{str("name", &q.Name).req(), version(&q.Version)}
}

func (q *versionRequest) validate() error { return q.Version.parse() }

// updateModelVersionRequest is UpdateModelVersion.
type updateModelVersionRequest struct {
	versionRequest
	Description *string
}

func (q *updateModelVersionRequest) decl() []spec {
	return append(q.versionRequest.decl(), optStr("description", &q.Description))
}

// transitionStageRequest is TransitionModelVersionStage.
type transitionStageRequest struct {
	versionRequest
	Stage   string
	Archive bool
}

func (q *transitionStageRequest) decl() []spec {
	return append(q.versionRequest.decl(),
		str("stage", &q.Stage).req(),
		boolField("archive_existing_versions", &q.Archive))
}

func (q *transitionStageRequest) validate() error {
	// The store canonicalizes the stage before it reads the version.
	var err error
	if q.Stage, err = canonicalStage(q.Stage); err != nil {
		return err
	}
	return q.Version.parse()
}

// versionTagRequest is SetModelVersionTag and DeleteModelVersionTag (which
// has no value).
type versionTagRequest struct {
	versionRequest
	Key, Value string
	set        bool
}

func (q *versionTagRequest) decl() []spec {
	d := append(q.versionRequest.decl(), str("key", &q.Key).req())
	if q.set {
		d = append(d, str("value", &q.Value))
	}
	return d
}

func (q *versionTagRequest) validate() error {
	if err := q.Version.parse(); err != nil {
		return err
	}
	if !q.set {
		return nil
	}
	return validate.ModelVersionTag(q.Key, q.Value)
}

// --- registered models ---

func (s *Server) createRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createRegisteredModelRequest) error {
		m, err := s.store.CreateRegisteredModel(r.Context(), tracking.CreateRegisteredModel{Name: q.Name, Description: q.Description, Tags: q.Tags})
		return answerModel(w, m, err)
	})
}

func (s *Server) renameRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *renameRegisteredModelRequest) error {
		m, err := s.store.RenameRegisteredModel(r.Context(), q.Name, q.NewName)
		return answerModel(w, m, err)
	})
}

func (s *Server) updateRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *updateRegisteredModelRequest) error {
		m, err := s.store.UpdateRegisteredModel(r.Context(), q.Name, q.Description)
		return answerModel(w, m, err)
	})
}

func (s *Server) deleteRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *nameRequest) error {
		return answerEmpty(w, s.store.DeleteRegisteredModel(r.Context(), q.Name))
	})
}

func (s *Server) getRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *nameRequest) error {
		m, err := s.store.GetRegisteredModel(r.Context(), q.Name)
		return answerModel(w, m, err)
	})
}

func (s *Server) searchRegisteredModels(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &registrySearchRequest{def: DefaultSearchRegisteredModels, limit: MaxSearchRegisteredModels}, func(q *registrySearchRequest) error {
		clauses, err := search.ParseRegisteredModelFilter(q.Filter)
		if err != nil {
			return err
		}
		keys, err := search.ParseRegisteredModelOrderBy(q.OrderBy)
		if err != nil {
			return err
		}
		page, err := s.store.SearchRegisteredModels(r.Context(), tracking.RegisteredModelQuery{
			Filter: clauses, OrderBy: keys, MaxResults: int(q.MaxResults), PageToken: q.PageToken,
		})
		return answer(w, struct {
			RegisteredModels []*tracking.RegisteredModel `json:"registered_models,omitempty"`
			NextPageToken    string                      `json:"next_page_token,omitempty"`
		}{page.Models, page.NextPageToken}, err)
	})
}

func (s *Server) getLatestVersions(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *getLatestVersionsRequest) error {
		mvs, err := s.store.GetLatestVersions(r.Context(), q.Name, q.Stages)
		return answer(w, modelVersionsResponse{ModelVersions: mvs}, err)
	})
}

func (s *Server) setRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &modelTagRequest{set: true}, func(q *modelTagRequest) error {
		return answerEmpty(w, s.store.SetRegisteredModelTag(r.Context(), q.Name, tracking.Tag{Key: q.Key, Value: q.Value}))
	})
}

func (s *Server) deleteRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *modelTagRequest) error {
		return answerEmpty(w, s.store.DeleteRegisteredModelTag(r.Context(), q.Name, q.Key))
	})
}

func (s *Server) setRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &aliasRequest{set: true}, func(q *aliasRequest) error {
		return answerEmpty(w, s.store.SetRegisteredModelAlias(r.Context(), q.Name, q.Alias, q.Version.n))
	})
}

func (s *Server) deleteRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *aliasRequest) error {
		return answerEmpty(w, s.store.DeleteRegisteredModelAlias(r.Context(), q.Name, q.Alias))
	})
}

func (s *Server) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *aliasRequest) error {
		mv, err := s.store.GetModelVersionByAlias(r.Context(), q.Name, q.Alias)
		return answerVersion(w, mv, err)
	})
}

// --- model versions ---

func (s *Server) createModelVersion(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createModelVersionRequest) error {
		src, err := s.checkModelSource(r, q.Source, q.RunID, q.Model, isPromptRequest(q.Tags))
		if err != nil {
			return err
		}
		if q.RunID == "" {
			q.RunID = src.runID
		}
		mv, err := s.store.CreateModelVersion(r.Context(), tracking.CreateModelVersion{
			Name: q.Name, Source: q.Source, RunID: q.RunID, RunLink: q.RunLink, Description: q.Description,
			Tags: q.Tags, StorageLocation: src.storage, ModelID: q.Model,
		})
		return answerVersion(w, mv, err)
	})
}

func (s *Server) updateModelVersion(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *updateModelVersionRequest) error {
		var mv *tracking.ModelVersion
		var err error
		if q.Description != nil {
			mv, err = s.store.UpdateModelVersion(r.Context(), q.Name, q.Version.n, *q.Description)
		} else {
			mv, err = s.store.GetModelVersion(r.Context(), q.Name, q.Version.n)
		}
		return answerVersion(w, mv, err)
	})
}

func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *versionRequest) error {
		return answerEmpty(w, s.store.DeleteModelVersion(r.Context(), q.Name, q.Version.n))
	})
}

func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *versionRequest) error {
		mv, err := s.store.GetModelVersion(r.Context(), q.Name, q.Version.n)
		return answerVersion(w, mv, err)
	})
}

func (s *Server) searchModelVersions(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &registrySearchRequest{def: MaxSearchModelVersions, limit: MaxSearchModelVersions, versions: true}, func(q *registrySearchRequest) error {
		clauses, err := search.ParseModelVersionFilter(q.Filter)
		if err != nil {
			return err
		}
		keys, err := search.ParseModelVersionOrderBy(q.OrderBy)
		if err != nil {
			return err
		}
		page, err := s.store.SearchModelVersions(r.Context(), tracking.ModelVersionQuery{
			Filter: clauses, OrderBy: keys, MaxResults: int(q.MaxResults), PageToken: q.PageToken,
		})
		return answer(w, modelVersionsResponse{page.Versions, page.NextPageToken}, err)
	})
}

func (s *Server) getModelVersionDownloadURI(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *versionRequest) error {
		mv, err := s.store.GetModelVersion(r.Context(), q.Name, q.Version.n)
		if err != nil {
			return err
		}
		return answer(w, struct {
			ArtifactURI string `json:"artifact_uri"`
		}{mv.StorageLocation}, nil)
	})
}

func (s *Server) transitionModelVersionStage(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *transitionStageRequest) error {
		mv, err := s.store.TransitionModelVersionStage(r.Context(), q.Name, q.Version.n, q.Stage, q.Archive)
		return answerVersion(w, mv, err)
	})
}

func (s *Server) setModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &versionTagRequest{set: true}, func(q *versionTagRequest) error {
		return answerEmpty(w, s.store.SetModelVersionTag(r.Context(), q.Name, q.Version.n, tracking.Tag{Key: q.Key, Value: q.Value}))
	})
}

func (s *Server) deleteModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *versionTagRequest) error {
		return answerEmpty(w, s.store.DeleteModelVersionTag(r.Context(), q.Name, q.Version.n, q.Key))
	})
}

// answerModel answers {"registered_model": m}, or err.
func answerModel(w http.ResponseWriter, m *tracking.RegisteredModel, err error) error {
	return answer(w, registeredModelResponse{m}, err)
}

// answerVersion answers {"model_version": mv}, or err.
func answerVersion(w http.ResponseWriter, mv *tracking.ModelVersion, err error) error {
	return answer(w, modelVersionResponse{mv}, err)
}

// answer answers v as JSON with status 200, or err when the store call
// failed (v must then be safe to build from the call's zero results).
func answer(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// answerEmpty answers {} when the store call succeeded, or its error.
func answerEmpty(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	return writeEmpty(w)
}
