package tracking

import (
	"context"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Model version stages as MLflow spells them on the wire.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
)

// AllStages lists the stages a client can set, in MLflow's order.
var AllStages = []string{StageNone, StageStaging, StageProduction, StageArchived}

// CanonicalStage maps a case-insensitive stage name to its canonical
// spelling; ok is false for anything else.
func CanonicalStage(s string) (string, bool) {
	for _, st := range AllStages {
		if strings.EqualFold(s, st) {
			return st, true
		}
	}
	return "", false
}

// ModelVersionStatusReady is the only status this server gives versions:
// registration is synchronous.
const ModelVersionStatusReady = "READY"

// TagIsPrompt marks registered models and versions that are MLflow prompts;
// registry searches leave them out unless the filter names this tag.
const TagIsPrompt = "mlflow.prompt.is_prompt"

// RegisteredModelAlias maps an alias to a version number.
type RegisteredModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// RegisteredModel is a registered model as MLflow's REST API returns it.
// Empty lists and the empty description are omitted on the wire.
type RegisteredModel struct {
	Name                 string                 `json:"name"`
	CreationTimestamp    int64                  `json:"creation_timestamp"`
	LastUpdatedTimestamp int64                  `json:"last_updated_timestamp"`
	Description          string                 `json:"description,omitempty"`
	LatestVersions       []*ModelVersion        `json:"latest_versions,omitempty"`
	Tags                 []Tag                  `json:"tags,omitempty"`
	Aliases              []RegisteredModelAlias `json:"aliases,omitempty"`
}

// ModelVersion is a model version as MLflow's REST API returns it. The
// description, run_id and run_link are always present, even empty, as in
// MLflow 2.22.1; the version number travels as a string.
type ModelVersion struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    int64    `json:"creation_timestamp"`
	LastUpdatedTimestamp int64    `json:"last_updated_timestamp"`
	UserID               string   `json:"user_id,omitempty"`
	CurrentStage         string   `json:"current_stage"`
	Description          string   `json:"description"`
	Source               string   `json:"source"`
	RunID                string   `json:"run_id"`
	Status               string   `json:"status"`
	Tags                 []Tag    `json:"tags,omitempty"`
	RunLink              string   `json:"run_link"`
	Aliases              []string `json:"aliases,omitempty"`
	// ModelID is the MLflow 3 logged model the version was registered
	// from ("" for versions without one).
	ModelID string `json:"model_id,omitempty"`

	// StorageLocation is where the version's files are: the source, or
	// for a models:/<name>/<version> source the referenced version's
	// storage location. It is not part of the wire form.
	StorageLocation string `json:"-"`
}

// RegistryStore is the model registry part of a backend. Names are exact
// (case-sensitive); versions are numbers ≥ 1, never reused within a model.
// Missing models and versions are RESOURCE_DOES_NOT_EXIST with MLflow's
// messages. Handlers validate names, tags and aliases before calling.
type RegistryStore interface {
	// CreateRegisteredModel creates a model; a used name is
	// RESOURCE_ALREADY_EXISTS.
	CreateRegisteredModel(ctx context.Context, req CreateRegisteredModel) (*RegisteredModel, error)
	// GetRegisteredModel returns a model with its tags, aliases and latest
	// version per stage.
	GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error)
	// RenameRegisteredModel renames a model and its versions.
	RenameRegisteredModel(ctx context.Context, name, newName string) (*RegisteredModel, error)
	// UpdateRegisteredModel sets a model's description.
	UpdateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error)
	// DeleteRegisteredModel deletes a model with its versions, tags and
	// aliases.
	DeleteRegisteredModel(ctx context.Context, name string) error
	// SearchRegisteredModels returns one page of models.
	SearchRegisteredModels(ctx context.Context, q RegisteredModelQuery) (RegisteredModelPage, error)
	// GetLatestVersions returns the latest version per stage, restricted
	// to stages (canonical names) unless stages is empty.
	GetLatestVersions(ctx context.Context, name string, stages []string) ([]*ModelVersion, error)
	// SetRegisteredModelTag upserts a model tag.
	SetRegisteredModelTag(ctx context.Context, name string, tag Tag) error
	// DeleteRegisteredModelTag removes a model tag (a missing tag is fine).
	DeleteRegisteredModelTag(ctx context.Context, name, key string) error
	// SetRegisteredModelAlias points alias at an existing version.
	SetRegisteredModelAlias(ctx context.Context, name, alias string, version int64) error
	// DeleteRegisteredModelAlias removes an alias (a missing alias is fine).
	DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error
	// GetModelVersionByAlias returns the version an alias points at; the
	// alias "latest" (any case) is the highest live version.
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error)

	// CreateModelVersion creates the next version of a model (max ever +
	// 1); with a ModelID it also updates that logged model's
	// mlflow.modelVersions tag in the same transaction.
	CreateModelVersion(ctx context.Context, req CreateModelVersion) (*ModelVersion, error)
	// GetModelVersion returns a live version with its tags and aliases.
	GetModelVersion(ctx context.Context, name string, version int64) (*ModelVersion, error)
	// UpdateModelVersion sets a version's description.
	UpdateModelVersion(ctx context.Context, name string, version int64, description string) (*ModelVersion, error)
	// TransitionModelVersionStage moves a version to stage (canonical);
	// with archive, the model's other versions in that stage become
	// Archived.
	TransitionModelVersionStage(ctx context.Context, name string, version int64, stage string, archive bool) (*ModelVersion, error)
	// DeleteModelVersion deletes a version and its aliases; its number is
	// not reused.
	DeleteModelVersion(ctx context.Context, name string, version int64) error
	// SearchModelVersions returns one page of live versions.
	SearchModelVersions(ctx context.Context, q ModelVersionQuery) (ModelVersionPage, error)
	// SetModelVersionTag upserts a version tag.
	SetModelVersionTag(ctx context.Context, name string, version int64, tag Tag) error
	// DeleteModelVersionTag removes a version tag (a missing tag is fine).
	DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error
}

// CreateRegisteredModel is the input of RegistryStore.CreateRegisteredModel.
type CreateRegisteredModel struct {
	Name        string
	Description string
	Tags        []Tag
}

// CreateModelVersion is the input of RegistryStore.CreateModelVersion.
type CreateModelVersion struct {
	Name        string
	Source      string
	RunID       string
	RunLink     string
	Description string
	UserID      string
	Tags        []Tag
	// StorageLocation is the resolved location of the files (see
	// ModelVersion.StorageLocation); empty means Source.
	StorageLocation string
	// ModelID is the logged model the version comes from. Unless the
	// version is a prompt, the store records the new version in that
	// model's mlflow.modelVersions tag, as MLflow does.
	ModelID string
}

// TagModelVersions is the logged model tag listing the registered model
// versions made from it: a JSON list of {"name", "version"}.
const TagModelVersions = "mlflow.modelVersions"

// RegisteredModelQuery is a parsed search-registered-models request.
type RegisteredModelQuery struct {
	Filter     []search.Clause
	OrderBy    []search.OrderKey
	MaxResults int
	PageToken  string
}

// RegisteredModelPage is one page of registered models.
type RegisteredModelPage struct {
	Models        []*RegisteredModel
	NextPageToken string
}

// ModelVersionQuery is a parsed search-model-versions request.
type ModelVersionQuery struct {
	Filter     []search.Clause
	OrderBy    []search.OrderKey
	MaxResults int
	PageToken  string
}

// ModelVersionPage is one page of model versions.
type ModelVersionPage struct {
	Versions      []*ModelVersion
	NextPageToken string
}
