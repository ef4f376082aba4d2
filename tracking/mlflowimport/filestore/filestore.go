// Package filestore reads MLflow's file store (an mlruns/ directory, as
// mlflow/store/tracking/file_store.py and
// mlflow/store/model_registry/file_store.py write it) as an
// mlflowimport.Source.
package filestore

import (
	"bufio"
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
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/artifactsrc"
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
	root      string
	artifacts *artifactsrc.Resolver
	// ChunkSize is the most metric points a run's History hands over at
	// once (mlflowimport.HistoryChunk unless set).
	ChunkSize int
}

// Open returns the file store at root (a path or a file:// URI).
// artifactsFrom, when set, is where mlflow-artifacts:/ locations resolve
// (the source server's --artifacts-destination: a directory or
// gs://bucket/prefix).
func Open(root, artifactsFrom string) (*Source, error) {
	return OpenWith(root, &artifactsrc.Resolver{From: artifactsFrom})
}

// OpenWith is Open with the resolver of artifact locations given (for
// a gs:// client of one's own); Close closes it.
func OpenWith(root string, artifacts *artifactsrc.Resolver) (*Source, error) {
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
	return &Source{root: root, artifacts: artifacts, ChunkSize: mlflowimport.HistoryChunk}, nil
}

// Name implements mlflowimport.Source.
func (s *Source) Name() string { return s.root }

// Close implements mlflowimport.Source.
func (s *Source) Close() error { return s.artifacts.Close() }

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
		r, err := s.readRun(ctx, dir, e.Name(), report)
		if err != nil {
			report(mlflowimport.Problem{Kind: "run", ID: e.Name(), Err: err})
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readRun(ctx context.Context, expDir, name string, report func(mlflowimport.Problem)) (*mlflowimport.Run, error) {
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
	// One pass over the metric files finds the latest values and checks
	// every line, so that a bad history is found before anything is
	// written; History reads them again, chunk by chunk.
	mdir := filepath.Join(runDir, metricsDir)
	latest, err := latestMetrics(ctx, mdir)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	inputs, models, err := readInputs(expDir, filepath.Join(runDir, inputsDir))
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	outputs, err := readOutputs(filepath.Join(runDir, outputsDir))
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	run := &tracking.Run{Info: info, Inputs: tracking.RunInputs{DatasetInputs: inputs, ModelInputs: models}}
	if len(outputs) > 0 {
		run.Outputs = &tracking.RunOutputs{ModelOutputs: outputs}
	}
	run.Data.Tags = tagList(tags)
	for k, v := range params {
		run.Data.Params = append(run.Data.Params, tracking.Param{Key: k, Value: v})
	}
	sort.Slice(run.Data.Params, func(i, j int) bool { return run.Data.Params[i].Key < run.Data.Params[j].Key })
	run.Data.Metrics = latest
	chunk := s.ChunkSize
	if chunk <= 0 {
		chunk = mlflowimport.HistoryChunk
	}
	out := &mlflowimport.Run{Run: run, History: func(ctx context.Context, fn func([]tracking.Metric) error) error {
		return streamMetrics(ctx, mdir, chunk, fn)
	}}
	out.Artifacts = s.resolve(ctx, "artifact", id, info.ArtifactURI, filepath.Join(runDir, artifactDir), report)
	return out, nil
}

// resolve turns an artifact location into a tree; one that cannot be
// read from here is reported and gives nil.
func (s *Source) resolve(ctx context.Context, kind, id, uri, fallback string, report func(mlflowimport.Problem)) mlflowimport.ArtifactTree {
	t, err := s.artifacts.Resolve(ctx, uri, fallback)
	if err != nil {
		report(mlflowimport.Problem{Kind: kind, ID: id, Err: fmt.Errorf("%w; imported without its artifacts", err)})
		return nil
	}
	return t
}

// Latest returns the latest point of each metric key, by MLflow's
// order (tracking.MetricNewer), sorted by key.
func Latest(hist []tracking.Metric) []tracking.Metric {
	l := latestOf{}
	l.add(hist)
	return l.list()
}

// latestOf keeps the latest point per key.
type latestOf map[string]tracking.Metric

func (l latestOf) add(ms []tracking.Metric) {
	for _, m := range ms {
		if old, ok := l[m.Key]; !ok || tracking.MetricNewer(m, old) {
			l[m.Key] = m
		}
	}
}

func (l latestOf) list() []tracking.Metric {
	out := make([]tracking.Metric, 0, len(l))
	for _, m := range l {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// latestMetrics reads every metrics file once, keeping only the latest
// point of each key.
func latestMetrics(ctx context.Context, dir string) ([]tracking.Metric, error) {
	l := latestOf{}
	err := streamMetrics(ctx, dir, mlflowimport.HistoryChunk, func(ms []tracking.Metric) error {
		l.add(ms)
		return nil
	})
	return l.list(), err
}

// metricFiles lists the metrics folder: one file per key, the key being
// the path below dir (keys may hold '/'), sorted.
func metricFiles(dir string) ([]string, error) {
	var keys []string
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
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// streamMetrics reads the metrics files line by line, "timestamp value
// [step]" (FileStore._get_metric_from_line), values as Python's float()
// writes them (nan, inf, -inf), and hands them to fn in chunks of at
// most chunk points.
func streamMetrics(ctx context.Context, dir string, chunk int, fn func([]tracking.Metric) error) error {
	keys, err := metricFiles(dir)
	if err != nil {
		return err
	}
	buf := make([]tracking.Metric, 0, min(chunk, 1024))
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := fn(buf)
		buf = make([]tracking.Metric, 0, cap(buf))
		return err
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := readMetricFile(filepath.Join(dir, filepath.FromSlash(key)), key, func(m tracking.Metric) error {
			buf = append(buf, m)
			if len(buf) >= chunk {
				return flush()
			}
			return nil
		})
		var fe errFromFn
		if errors.As(err, &fe) {
			return fe.err
		}
		if err != nil {
			return err
		}
	}
	return flush()
}

// errFromFn marks an error returned by a callback, passed on as it is.
type errFromFn struct{ err error }

func (e errFromFn) Error() string { return e.err.Error() }
func (e errFromFn) Unwrap() error { return e.err }

func readMetricFile(path, key string, fn func(tracking.Metric) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for i := 1; sc.Scan(); i++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		m, err := parseMetricLine(key, line)
		if err != nil {
			return fmt.Errorf("metric %q line %d: %w", key, i, err)
		}
		if err := fn(m); err != nil {
			return errFromFn{err}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("metric %q: %w", key, err)
	}
	return nil
}

func parseMetricLine(key, line string) (tracking.Metric, error) {
	// MLflow 3 appends the dataset a value was computed on: "timestamp
	// value step dataset_name dataset_digest" (FileStore._log_run_metric).
	f := strings.Split(line, " ")
	if len(f) != 2 && len(f) != 3 && len(f) != 5 {
		return tracking.Metric{}, fmt.Errorf("%d fields, want 2, 3 or 5", len(f))
	}
	ts, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return tracking.Metric{}, fmt.Errorf("timestamp: %w", err)
	}
	v, err := ParseFloat(f[1])
	if err != nil {
		return tracking.Metric{}, fmt.Errorf("value: %w", err)
	}
	var step int64
	if len(f) >= 3 {
		if step, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return tracking.Metric{}, fmt.Errorf("step: %w", err)
		}
	}
	return tracking.Metric{Key: key, Value: v, Timestamp: ts, Step: step}, nil
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

// readInputs reads a run's inputs/<id>/meta.yaml files: datasets (named
// under the experiment's datasets/ folder) and logged models.
func readInputs(expDir, dir string) ([]tracking.DatasetInput, []tracking.ModelInput, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []tracking.DatasetInput
	var models []tracking.ModelInput
	for _, e := range ents {
		var in inputMeta
		if err := readYAML(filepath.Join(dir, e.Name(), metaFile), &in); err != nil {
			return nil, nil, err
		}
		switch in.SourceType {
		case "MODEL":
			models = append(models, tracking.ModelInput{ModelID: in.SourceID})
			continue
		case "DATASET":
		default:
			continue
		}
		var d datasetMeta
		if err := readYAML(filepath.Join(expDir, datasetsDir, in.SourceID, metaFile), &d); err != nil {
			return nil, nil, err
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
	sort.Slice(models, func(i, j int) bool { return models[i].ModelID < models[j].ModelID })
	return out, models, nil
}

func uriPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%q: %w", uri, err)
	}
	return filepath.FromSlash(u.Path), nil
}
