package graphql

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// longString is MLflow's LongString scalar: a 64-bit integer written as a
// decimal string (JavaScript numbers lose precision past 2^53). Input
// accepts an integer literal, or a number or numeric string as a variable.
type longString int64

// ImplementsGraphQLType maps the type to the LongString scalar.
func (longString) ImplementsGraphQLType(name string) bool { return name == "LongString" }

// UnmarshalGraphQL reads an input value.
func (l *longString) UnmarshalGraphQL(input any) error {
	switch v := input.(type) {
	case int32:
		*l = longString(v)
	case int64:
		*l = longString(v)
	case int:
		*l = longString(v)
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<63-1 {
			return fmt.Errorf("LongString cannot represent %v", v)
		}
		*l = longString(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("LongString cannot represent %q", v)
		}
		*l = longString(n)
	default:
		return fmt.Errorf("LongString cannot represent %T", input)
	}
	return nil
}

// MarshalJSON writes the decimal string.
func (l longString) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatInt(int64(l), 10)), nil
}

func str(s string) *string     { return &s }
func long(n int64) *longString { l := longString(n); return &l }
func boolean(b bool) *bool     { return &b }
func list[T any](l []T) *[]T {
	if l == nil {
		l = []T{}
	}
	return &l
}

// floatValue is a metric value as MLflow's GraphQL answers it: null for
// NaN (MLflow's MlflowMetricExtension.resolve_value) and, as JSON cannot
// carry them, for infinities.
func floatValue(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// wireFloat reads a REST float: a JSON number or "NaN", "Infinity",
// "-Infinity".
type wireFloat float64

func (f *wireFloat) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = wireFloat(math.NaN())
		case "Infinity":
			*f = wireFloat(math.Inf(1))
		case "-Infinity":
			*f = wireFloat(math.Inf(-1))
		default:
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return err
			}
			*f = wireFloat(v)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = wireFloat(v)
	return nil
}

// ---- REST answers, as decoded ----

type wireMetric struct {
	Key       string    `json:"key"`
	Value     wireFloat `json:"value"`
	Timestamp int64     `json:"timestamp"`
	Step      int64     `json:"step"`
	RunID     string    `json:"run_id"`
}

type wireRun struct {
	Info tracking.RunInfo `json:"info"`
	Data struct {
		Metrics []wireMetric     `json:"metrics"`
		Params  []tracking.Param `json:"params"`
		Tags    []tracking.Tag   `json:"tags"`
	} `json:"data"`
	Inputs  tracking.RunInputs   `json:"inputs"`
	Outputs *tracking.RunOutputs `json:"outputs"`
}

// ---- GraphQL objects ----

// testObj is Test and TestMutation.
type testObj struct {
	Output *string
}

// apiError is MLflow's ApiError; MLflow's server never fills it (errors
// go to the answer's errors list), and neither do we.
type apiError struct {
	Code         *string
	Message      *string
	HelpURL      *string
	TraceID      *string
	ErrorDetails *[]*errorDetail
}

type errorDetail struct {
	Field   *string
	Message *string
}

// keyValue backs the key/value tag and param types.
type keyValue struct {
	Key   *string
	Value *string
}

func tags(l []tracking.Tag) *[]*keyValue {
	out := make([]*keyValue, len(l))
	for i, t := range l {
		out[i] = &keyValue{str(t.Key), str(t.Value)}
	}
	return &out
}

type experimentObj struct {
	ExperimentID     *string
	Name             *string
	ArtifactLocation *string
	LifecycleStage   *string
	LastUpdateTime   *longString
	CreationTime     *longString
	Tags             *[]*keyValue
}

func newExperiment(e *tracking.Experiment) *experimentObj {
	return &experimentObj{
		ExperimentID:     str(e.ExperimentID),
		Name:             str(e.Name),
		ArtifactLocation: str(e.ArtifactLocation),
		LifecycleStage:   str(e.LifecycleStage),
		LastUpdateTime:   long(e.LastUpdateTime),
		CreationTime:     long(e.CreationTime),
		Tags:             tags(e.Tags),
	}
}

type runInfoObj struct {
	RunID          *string
	RunUUID        *string
	RunName        *string
	ExperimentID   *string
	UserID         *string
	Status         *string
	StartTime      *longString
	EndTime        *longString
	ArtifactURI    *string
	LifecycleStage *string
}

type metricObj struct {
	Key           *string
	Value         *float64
	Timestamp     *longString
	Step          *longString
	DatasetName   *string
	DatasetDigest *string
	ModelID       *string
	RunID         *string
}

type runDataObj struct {
	Metrics *[]*metricObj
	Params  *[]*keyValue
	Tags    *[]*keyValue
}

type datasetObj struct {
	Name       *string
	Digest     *string
	SourceType *string
	Source     *string
	Schema     *string
	Profile    *string
}

type datasetInputObj struct {
	Tags    *[]*keyValue
	Dataset *datasetObj
}

type modelInputObj struct {
	ModelID *string
}

type runInputsObj struct {
	DatasetInputs *[]*datasetInputObj
	ModelInputs   *[]*modelInputObj
}

type modelOutputObj struct {
	ModelID *string
	Step    *longString
}

type runOutputsObj struct {
	ModelOutputs *[]*modelOutputObj
}

// runObj is MlflowRunExtension: a run, and resolvers for its experiment
// and its model versions.
type runObj struct {
	q    *request
	meta tracking.RunInfo

	Info    *runInfoObj
	Data    *runDataObj
	Inputs  *runInputsObj
	Outputs *runOutputsObj
}

func newRun(q *request, w *wireRun) *runObj {
	i := w.Info
	r := &runObj{q: q, meta: i}
	r.Info = &runInfoObj{
		RunID: str(i.RunID), RunUUID: str(i.RunUUID), RunName: str(i.RunName),
		ExperimentID: str(i.ExperimentID), UserID: str(i.UserID), Status: str(i.Status),
		StartTime: long(i.StartTime), EndTime: long(i.EndTime),
		ArtifactURI: str(i.ArtifactURI), LifecycleStage: str(i.LifecycleStage),
	}
	metrics := make([]*metricObj, len(w.Data.Metrics))
	for k, m := range w.Data.Metrics {
		metrics[k] = &metricObj{
			Key: str(m.Key), Value: floatValue(float64(m.Value)),
			Timestamp: long(m.Timestamp), Step: long(m.Step),
			DatasetName: str(""), DatasetDigest: str(""), ModelID: str(""), RunID: str(m.RunID),
		}
	}
	params := make([]*keyValue, len(w.Data.Params))
	for k, p := range w.Data.Params {
		params[k] = &keyValue{str(p.Key), str(p.Value)}
	}
	r.Data = &runDataObj{Metrics: &metrics, Params: &params, Tags: tags(w.Data.Tags)}
	dis := make([]*datasetInputObj, len(w.Inputs.DatasetInputs))
	for k, d := range w.Inputs.DatasetInputs {
		ds := d.Dataset
		dis[k] = &datasetInputObj{Tags: tags(d.Tags), Dataset: &datasetObj{
			Name: str(ds.Name), Digest: str(ds.Digest), SourceType: str(ds.SourceType),
			Source: str(ds.Source), Schema: str(ds.Schema), Profile: str(ds.Profile),
		}}
	}
	mis := make([]*modelInputObj, len(w.Inputs.ModelInputs))
	for k, m := range w.Inputs.ModelInputs {
		mis[k] = &modelInputObj{str(m.ModelID)}
	}
	r.Inputs = &runInputsObj{DatasetInputs: &dis, ModelInputs: &mis}
	var outs []*modelOutputObj
	if w.Outputs != nil {
		for _, o := range w.Outputs.ModelOutputs {
			outs = append(outs, &modelOutputObj{str(o.ModelID), long(o.Step)})
		}
	}
	r.Outputs = &runOutputsObj{ModelOutputs: list(outs)}
	return r
}

type modelParamObj struct {
	Name  *string
	Value *string
}

type deploymentJobStateObj struct {
	JobID           *string
	RunID           *string
	JobState        *string
	RunState        *string
	CurrentTaskName *string
}

type modelVersionObj struct {
	Name                 *string
	Version              *string
	CreationTimestamp    *longString
	LastUpdatedTimestamp *longString
	UserID               *string
	CurrentStage         *string
	Description          *string
	Source               *string
	RunID                *string
	Status               *string
	StatusMessage        *string
	Tags                 *[]*keyValue
	RunLink              *string
	Aliases              *[]*string
	ModelID              *string
	ModelParams          *[]*modelParamObj
	ModelMetrics         *[]*metricObj
	DeploymentJobState   *deploymentJobStateObj
}

type wireModelVersion struct {
	tracking.ModelVersion
	StatusMessage string `json:"status_message"`
}

func newModelVersion(v *wireModelVersion) *modelVersionObj {
	aliases := make([]*string, len(v.Aliases))
	for i, a := range v.Aliases {
		aliases[i] = str(a)
	}
	var status *string
	if v.Status != "" {
		status = str(v.Status)
	}
	return &modelVersionObj{
		Name: str(v.Name), Version: str(v.Version),
		CreationTimestamp: long(v.CreationTimestamp), LastUpdatedTimestamp: long(v.LastUpdatedTimestamp),
		UserID: str(v.UserID), CurrentStage: str(v.CurrentStage), Description: str(v.Description),
		Source: str(v.Source), RunID: str(v.RunID), Status: status, StatusMessage: str(v.StatusMessage),
		Tags: tags(v.Tags), RunLink: str(v.RunLink), Aliases: &aliases, ModelID: str(v.ModelID),
		ModelParams: list[*modelParamObj](nil), ModelMetrics: list[*metricObj](nil),
	}
}

type fileInfoObj struct {
	Path     *string
	IsDir    *bool
	FileSize *longString
}

type datasetSummaryObj struct {
	ExperimentID *string
	Name         *string
	Digest       *string
	Context      *string
}

type metricWithRunIDObj struct {
	Key       *string
	Value     *float64
	Timestamp *longString
	Step      *longString
	RunID     *string
}

// ---- responses ----

type getExperimentResponse struct {
	Experiment *experimentObj
	APIError   *apiError
}

type getRunResponse struct {
	Run      *runObj
	APIError *apiError
}

type searchRunsResponse struct {
	Runs          *[]*runObj
	NextPageToken *string
	APIError      *apiError
}

type listArtifactsResponse struct {
	RootURI       *string
	Files         *[]*fileInfoObj
	NextPageToken *string
	APIError      *apiError
}

type bulkIntervalResponse struct {
	Metrics  *[]*metricWithRunIDObj
	APIError *apiError
}

type searchDatasetsResponse struct {
	DatasetSummaries *[]*datasetSummaryObj
	APIError         *apiError
}

type searchModelVersionsResponse struct {
	ModelVersions *[]*modelVersionObj
	NextPageToken *string
	APIError      *apiError
}
