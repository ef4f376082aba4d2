package mlflowclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Float is a double as MLflow's protobuf JSON carries it: a number, or
// the strings "NaN", "Infinity" and "-Infinity" (and, from Flask's
// jsonify, the bare tokens NaN/Infinity/-Infinity are not valid JSON, so
// they never reach here). It marshals non-finite values as those strings,
// which MLflow's parse_dict and caddy-mlflow accept.
type Float float64

// MarshalJSON writes a number, or "NaN"/"Infinity"/"-Infinity".
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number or a string protobuf's parser takes.
func (f *Float) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch strings.TrimSpace(s) {
		case "NaN", "nan":
			*f = Float(math.NaN())
			return nil
		case "Infinity", "inf", "+Infinity":
			*f = Float(math.Inf(1))
			return nil
		case "-Infinity", "-inf":
			*f = Float(math.Inf(-1))
			return nil
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("not a double: %q", s)
		}
		*f = Float(v)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a double: %s", b)
	}
	*f = Float(v)
	return nil
}

// Int64 is an int64 that also decodes from a JSON string (protobuf's JSON
// form of int64; MLflow's server writes numbers, other servers may not).
type Int64 int64

// UnmarshalJSON reads a number or a decimal string.
func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// 1e3 style numbers
		fv, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil {
			return fmt.Errorf("not an int64: %s", b)
		}
		v = int64(fv)
	}
	*n = Int64(v)
	return nil
}

// Tag is a key/value pair (experiment, run, model and version tags).
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param is a run parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is one metric point.
type Metric struct {
	Key       string `json:"key"`
	Value     Float  `json:"value"`
	Timestamp Int64  `json:"timestamp"`
	Step      Int64  `json:"step"`
	// RunID, DatasetName, DatasetDigest and ModelID are MLflow 3's
	// optional links (only in logged-model metrics and bulk answers).
	RunID         string `json:"run_id,omitempty"`
	DatasetName   string `json:"dataset_name,omitempty"`
	DatasetDigest string `json:"dataset_digest,omitempty"`
	ModelID       string `json:"model_id,omitempty"`
}

// Experiment is MLflow's Experiment message.
type Experiment struct {
	ExperimentID     string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location,omitempty"`
	LifecycleStage   string `json:"lifecycle_stage,omitempty"`
	LastUpdateTime   Int64  `json:"last_update_time,omitempty"`
	CreationTime     Int64  `json:"creation_time,omitempty"`
	Tags             []Tag  `json:"tags,omitempty"`
}

// RunInfo is MLflow's RunInfo message.
type RunInfo struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid,omitempty"`
	RunName        string `json:"run_name,omitempty"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id,omitempty"`
	Status         string `json:"status,omitempty"`
	StartTime      Int64  `json:"start_time,omitempty"`
	EndTime        Int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
}

// ID is the run's id (run_id, or run_uuid from old servers).
func (r RunInfo) ID() string {
	if r.RunID != "" {
		return r.RunID
	}
	return r.RunUUID
}

// RunData is a run's latest metrics, params and tags.
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// Dataset is MLflow's Dataset message.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset a run used, with its input tags.
type DatasetInput struct {
	Tags    []Tag   `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// ModelInput is a logged model a run used (MLflow 3).
type ModelInput struct {
	ModelID string `json:"model_id"`
}

// RunInputs are a run's inputs.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
	ModelInputs   []ModelInput   `json:"model_inputs,omitempty"`
}

// ModelOutput is a logged model a run produced (MLflow 3).
type ModelOutput struct {
	ModelID string `json:"model_id"`
	Step    Int64  `json:"step"`
}

// RunOutputs are a run's outputs (MLflow 3).
type RunOutputs struct {
	ModelOutputs []ModelOutput `json:"model_outputs,omitempty"`
}

// Run is MLflow's Run message.
type Run struct {
	Info    RunInfo     `json:"info"`
	Data    RunData     `json:"data"`
	Inputs  *RunInputs  `json:"inputs,omitempty"`
	Outputs *RunOutputs `json:"outputs,omitempty"`
}

// FileInfo is one artifact listing entry.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize Int64  `json:"file_size,omitempty"`
}

// RegisteredModelAlias is an alias of a registered model.
type RegisteredModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// RegisteredModel is MLflow's RegisteredModel message.
type RegisteredModel struct {
	Name                 string                 `json:"name"`
	CreationTimestamp    Int64                  `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp Int64                  `json:"last_updated_timestamp,omitempty"`
	UserID               string                 `json:"user_id,omitempty"`
	Description          string                 `json:"description,omitempty"`
	LatestVersions       []ModelVersion         `json:"latest_versions,omitempty"`
	Tags                 []Tag                  `json:"tags,omitempty"`
	Aliases              []RegisteredModelAlias `json:"aliases,omitempty"`
}

// ModelVersion is MLflow's ModelVersion message.
type ModelVersion struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    Int64    `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp Int64    `json:"last_updated_timestamp,omitempty"`
	UserID               string   `json:"user_id,omitempty"`
	CurrentStage         string   `json:"current_stage,omitempty"`
	Description          string   `json:"description,omitempty"`
	Source               string   `json:"source,omitempty"`
	RunID                string   `json:"run_id,omitempty"`
	Status               string   `json:"status,omitempty"`
	StatusMessage        string   `json:"status_message,omitempty"`
	Tags                 []Tag    `json:"tags,omitempty"`
	RunLink              string   `json:"run_link,omitempty"`
	Aliases              []string `json:"aliases,omitempty"`
	ModelID              string   `json:"model_id,omitempty"`
}

// LoggedModelInfo is MLflow 3's LoggedModelInfo message.
type LoggedModelInfo struct {
	ModelID                string `json:"model_id"`
	ExperimentID           string `json:"experiment_id"`
	Name                   string `json:"name"`
	CreationTimestampMs    Int64  `json:"creation_timestamp_ms,omitempty"`
	LastUpdatedTimestampMs Int64  `json:"last_updated_timestamp_ms,omitempty"`
	ArtifactURI            string `json:"artifact_uri,omitempty"`
	Status                 string `json:"status,omitempty"`
	CreatorID              Int64  `json:"creator_id,omitempty"`
	ModelType              string `json:"model_type,omitempty"`
	SourceRunID            string `json:"source_run_id,omitempty"`
	StatusMessage          string `json:"status_message,omitempty"`
	Tags                   []Tag  `json:"tags,omitempty"`
}

// LoggedModelData is a logged model's params and metrics.
type LoggedModelData struct {
	Params  []Param  `json:"params,omitempty"`
	Metrics []Metric `json:"metrics,omitempty"`
}

// LoggedModel is MLflow 3's LoggedModel message.
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}
