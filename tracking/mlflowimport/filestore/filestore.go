// Package filestore reads MLflow's file store (an mlruns/ directory, as
// mlflow/store/tracking/file_store.py and
// mlflow/store/model_registry/file_store.py write it) as an
// mlflowimport.Source.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// Folder names of MLflow's file store (FileStore's constants).
const (
	trashDir    = ".trash"
	modelsDir   = "models"
	metaFile    = "meta.yaml"
	metricsDir  = "metrics"
	paramsDir   = "params"
	tagsDir     = "tags"
	inputsDir   = "inputs"
	datasetsDir = "datasets"
	tracesDir   = "traces"
	artifactDir = "artifacts"
	aliasesDir  = "aliases"
	// deletedStage is the stage the registry file store gives deleted
	// versions (STAGE_DELETED_INTERNAL), which it then hides.
	deletedStage = "Deleted_Internal"
)

// Source is an mlruns/ directory.
type Source struct {
	root          string
	artifactsFrom string
}

// Open returns the file store at root (a path or a file:// URI).
// artifactsFrom, when set, is the directory mlflow-artifacts:/ locations
// resolve against (the source server's --artifacts-destination).
func Open(root, artifactsFrom string) (*Source, error) {
	if strings.HasPrefix(root, "file:") {
		p, err := uriPath(root)
		if err != nil {
			return nil, err
		}
		root = p
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("the MLflow file store: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("the MLflow file store %s is not a directory", root)
	}
	return &Source{root: root, artifactsFrom: artifactsFrom}, nil
}

// Name implements mlflowimport.Source.
func (s *Source) Name() string { return s.root }

// Close implements mlflowimport.Source.
func (s *Source) Close() error { return nil }

type expMeta struct {
	ExperimentID     string            `yaml:"experiment_id"`
	Name             string            `yaml:"name"`
	ArtifactLocation string            `yaml:"artifact_location"`
	LifecycleStage   string            `yaml:"lifecycle_stage"`
	CreationTime     int64             `yaml:"creation_time"`
	LastUpdateTime   int64             `yaml:"last_update_time"`
	Tags             map[string]string `yaml:"tags"`
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// expDirs maps experiment ids to their directories (active ones under
// the root, deleted ones under .trash).
func (s *Source) expDirs() (map[string]string, error) {
	out := map[string]string{}
	for _, parent := range []string{s.root, filepath.Join(s.root, trashDir)} {
		ents, err := os.ReadDir(parent)
		if errors.Is(err, fs.ErrNotExist) && parent != s.root {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() || e.Name() == trashDir || (parent == s.root && e.Name() == modelsDir) {
				continue
			}
			if _, err := os.Stat(filepath.Join(parent, e.Name(), metaFile)); err != nil {
				continue
			}
			out[e.Name()] = filepath.Join(parent, e.Name())
		}
	}
	return out, nil
}

// Experiments implements mlflowimport.Source.
func (s *Source) Experiments(ctx context.Context, report func(mlflowimport.Problem)) ([]*tracking.Experiment, error) {
	dirs, err := s.expDirs()
	if err != nil {
		return nil, fmt.Errorf("listing experiments: %w", err)
	}
	var out []*tracking.Experiment
	for id, dir := range dirs {
		e, err := readExperiment(dir)
		if err == nil && e.ExperimentID != id {
			err = fmt.Errorf("meta.yaml names experiment %q", e.ExperimentID)
		}
		if err != nil {
			report(mlflowimport.Problem{Kind: "experiment", ID: id, Err: err})
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func readExperiment(dir string) (*tracking.Experiment, error) {
	var m expMeta
	if err := readYAML(filepath.Join(dir, metaFile), &m); err != nil {
		return nil, err
	}
	if m.Name == "" || m.ExperimentID == "" {
		return nil, errors.New("meta.yaml has no experiment_id or name")
	}
	if m.LifecycleStage == "" {
		m.LifecycleStage = tracking.LifecycleActive
	}
	e := &tracking.Experiment{
		ExperimentID: m.ExperimentID, Name: m.Name, ArtifactLocation: m.ArtifactLocation,
		LifecycleStage: m.LifecycleStage, CreationTime: m.CreationTime, LastUpdateTime: m.LastUpdateTime,
	}
	tags, err := readKV(filepath.Join(dir, tagsDir))
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	for k, v := range m.Tags {
		if _, ok := tags[k]; !ok {
			tags[k] = v
		}
	}
	e.Tags = tagList(tags)
	return e, nil
}

// readKV reads a params or tags folder: one file per key, the key being
// the path below dir (keys may hold '/'), the value the file's content.
func readKV(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out, err
}

func tagList(m map[string]string) []tracking.Tag {
	out := make([]tracking.Tag, 0, len(m))
	for k, v := range m {
		out = append(out, tracking.Tag{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

type runMeta struct {
	RunID          string `yaml:"run_id"`
	RunUUID        string `yaml:"run_uuid"`
	ExperimentID   string `yaml:"experiment_id"`
	RunName        string `yaml:"run_name"`
	UserID         string `yaml:"user_id"`
	Status         any    `yaml:"status"`
	StartTime      int64  `yaml:"start_time"`
	EndTime        *int64 `yaml:"end_time"`
	ArtifactURI    string `yaml:"artifact_uri"`
	LifecycleStage string `yaml:"lifecycle_stage"`
	DeletedTime    *int64 `yaml:"deleted_time"`
}

// runStatus names RunStatus's numbers (mlflow/protos/service.proto).
var runStatus = map[int]string{1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}

// Runs implements mlflowimport.Source.
func (s *Source) Runs(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Run) error) error {
	dirs, err := s.expDirs()
	if err != nil {
		return err
	}
	dir := dirs[exp.ExperimentID]
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		switch e.Name() {
		case tagsDir, datasetsDir, tracesDir, modelsDir:
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := s.readRun(dir, e.Name())
		if err != nil {
			report(mlflowimport.Problem{Kind: "run", ID: e.Name(), Err: err})
			continue
		}
		if r.ArtifactsUnreadable {
			report(mlflowimport.Problem{Kind: "artifact", ID: r.Run.Info.RunID,
				Err: fmt.Errorf("artifacts at %s cannot be read from here; the run is imported without them", r.Run.Info.ArtifactURI)})
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readRun(expDir, name string) (*mlflowimport.Run, error) {
	runDir := filepath.Join(expDir, name)
	var m runMeta
	if err := readYAML(filepath.Join(runDir, metaFile), &m); err != nil {
		return nil, err
	}
	id := m.RunID
	if id == "" {
		id = m.RunUUID
	}
	if id != name {
		return nil, fmt.Errorf("meta.yaml names run %q", id)
	}
	status := "RUNNING"
	switch v := m.Status.(type) {
	case int:
		if n, ok := runStatus[v]; ok {
			status = n
		} else {
			return nil, fmt.Errorf("unknown run status %d", v)
		}
	case string:
		status = v
	}
	info := tracking.RunInfo{
		RunUUID: id, RunID: id, ExperimentID: m.ExperimentID, RunName: m.RunName, UserID: m.UserID,
		Status: status, StartTime: m.StartTime, ArtifactURI: m.ArtifactURI, LifecycleStage: m.LifecycleStage,
	}
	if info.LifecycleStage == "" {
		info.LifecycleStage = tracking.LifecycleActive
	}
	if m.EndTime != nil {
		info.EndTime = *m.EndTime
	}
	if m.DeletedTime != nil {
		info.DeletedTime = *m.DeletedTime
	}
	params, err := readKV(filepath.Join(runDir, paramsDir))
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	tags, err := readKV(filepath.Join(runDir, tagsDir))
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	if info.RunName == "" {
		info.RunName = tags["mlflow.runName"]
	}
	hist, err := readMetrics(filepath.Join(runDir, metricsDir))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	inputs, err := readInputs(expDir, filepath.Join(runDir, inputsDir))
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	run := &tracking.Run{Info: info, Inputs: tracking.RunInputs{DatasetInputs: inputs}}
	run.Data.Tags = tagList(tags)
	for k, v := range params {
		run.Data.Params = append(run.Data.Params, tracking.Param{Key: k, Value: v})
	}
	sort.Slice(run.Data.Params, func(i, j int) bool { return run.Data.Params[i].Key < run.Data.Params[j].Key })
	run.Data.Metrics = Latest(hist)
	dir, ok := s.artifactDir(info.ArtifactURI, runDir)
	return &mlflowimport.Run{Run: run, History: hist, ArtifactDir: dir, ArtifactsUnreadable: !ok}, nil
}

// Latest returns the latest point of each metric key, by MLflow's
// order (tracking.MetricNewer), sorted by key.
func Latest(hist []tracking.Metric) []tracking.Metric {
	latest := map[string]tracking.Metric{}
	for _, m := range hist {
		if old, ok := latest[m.Key]; !ok || tracking.MetricNewer(m, old) {
			latest[m.Key] = m
		}
	}
	out := make([]tracking.Metric, 0, len(latest))
	for _, m := range latest {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// readMetrics reads every metrics file: lines "timestamp value [step]"
// (FileStore._get_metric_from_line), values as Python's float() writes
// them (nan, inf, -inf).
func readMetrics(dir string) ([]tracking.Metric, error) {
	kv, err := readKV(dir)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []tracking.Metric
	for _, key := range keys {
		for i, line := range strings.Split(kv[key], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			f := strings.Split(line, " ")
			if len(f) != 2 && len(f) != 3 {
				return nil, fmt.Errorf("metric %q line %d: %d fields, want 2 or 3", key, i+1, len(f))
			}
			ts, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("metric %q line %d: timestamp: %w", key, i+1, err)
			}
			v, err := ParseFloat(f[1])
			if err != nil {
				return nil, fmt.Errorf("metric %q line %d: value: %w", key, i+1, err)
			}
			var step int64
			if len(f) == 3 {
				if step, err = strconv.ParseInt(f[2], 10, 64); err != nil {
					return nil, fmt.Errorf("metric %q line %d: step: %w", key, i+1, err)
				}
			}
			out = append(out, tracking.Metric{Key: key, Value: v, Timestamp: ts, Step: step})
		}
	}
	return out, nil
}

// ParseFloat parses a value as Python's float() accepts it: also nan,
// inf, infinity, with any case and sign.
func ParseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimLeft(s, "+")) {
	case "nan", "-nan":
		return math.NaN(), nil
	case "inf", "infinity":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

type inputMeta struct {
	SourceType      string            `yaml:"source_type"`
	SourceID        string            `yaml:"source_id"`
	DestinationType string            `yaml:"destination_type"`
	Tags            map[string]string `yaml:"tags"`
}

type datasetMeta struct {
	Name       string  `yaml:"name"`
	Digest     string  `yaml:"digest"`
	SourceType string  `yaml:"source_type"`
	Source     string  `yaml:"source"`
	Schema     *string `yaml:"schema"`
	Profile    *string `yaml:"profile"`
}

// readInputs reads a run's inputs/<id>/meta.yaml files and the datasets
// they name under the experiment's datasets/ folder.
func readInputs(expDir, dir string) ([]tracking.DatasetInput, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []tracking.DatasetInput
	for _, e := range ents {
		var in inputMeta
		if err := readYAML(filepath.Join(dir, e.Name(), metaFile), &in); err != nil {
			return nil, err
		}
		if in.SourceType != "DATASET" {
			continue
		}
		var d datasetMeta
		if err := readYAML(filepath.Join(expDir, datasetsDir, in.SourceID, metaFile), &d); err != nil {
			return nil, err
		}
		ds := tracking.DatasetInput{Tags: tagList(in.Tags), Dataset: tracking.Dataset{
			Name: d.Name, Digest: d.Digest, SourceType: d.SourceType, Source: d.Source,
		}}
		if d.Schema != nil {
			ds.Dataset.Schema = *d.Schema
		}
		if d.Profile != nil {
			ds.Dataset.Profile = *d.Profile
		}
		out = append(out, ds)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Dataset.Name+out[i].Dataset.Digest < out[j].Dataset.Name+out[j].Dataset.Digest
	})
	return out, nil
}

// artifactDir resolves a run's artifact URI (see ResolveArtifacts), with
// the run's own artifacts/ folder as the fallback for a moved tree.
func (s *Source) artifactDir(uri, runDir string) (string, bool) {
	return ResolveArtifacts(uri, s.artifactsFrom, filepath.Join(runDir, artifactDir))
}

// ResolveArtifacts turns an artifact URI into a local directory: file:
// URIs and plain paths as they are, mlflow-artifacts:/ locations below
// artifactsFrom; when that directory does not exist, fallback (if it
// exists). readable is false when the URI cannot be read from here (an
// unsupported scheme, or mlflow-artifacts:/ without artifactsFrom); dir
// is "" when there is nothing to copy (a run that logged no artifacts
// has no directory).
func ResolveArtifacts(uri, artifactsFrom, fallback string) (dir string, readable bool) {
	var p string
	switch {
	case uri == "":
		return "", true
	case strings.HasPrefix(uri, "file:"):
		p, _ = uriPath(uri)
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		if artifactsFrom != "" {
			rest := strings.TrimPrefix(uri, "mlflow-artifacts:")
			if u, err := url.Parse(uri); err == nil && u.Host != "" {
				rest = u.Path
			}
			p = filepath.Join(artifactsFrom, filepath.FromSlash(strings.TrimLeft(rest, "/")))
		}
	case !strings.Contains(uri, "://"):
		p = uri
	}
	if p != "" {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, true
		}
	}
	if fallback != "" {
		if st, err := os.Stat(fallback); err == nil && st.IsDir() {
			return fallback, true
		}
	}
	return "", p != ""
}

func uriPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%q: %w", uri, err)
	}
	return filepath.FromSlash(u.Path), nil
}
