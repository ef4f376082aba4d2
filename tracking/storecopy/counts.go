package storecopy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Counts are how many records of each kind a stream carried. They are
// what copy-store verifies: the destination, read back after the copy,
// must hold as many of each kind as the source gave.
type Counts struct {
	Experiments         int64
	ExperimentTags      int64
	Runs                int64
	Params              int64
	RunTags             int64
	LatestMetrics       int64
	MetricPoints        int64
	DatasetInputs       int64
	ModelInputs         int64
	ModelOutputs        int64
	LoggedModels        int64
	LoggedModelParams   int64
	LoggedModelTags     int64
	LoggedModelMetrics  int64
	RegisteredModels    int64
	RegisteredModelTags int64
	Aliases             int64
	ModelVersions       int64
	ModelVersionTags    int64
	Traces              int64
	TraceTags           int64
	TraceMetadata       int64
	Assessments         int64
	Users               int64
	Tokens              int64
	Grants              int64
	Sessions            int64
}

// Kind is one line of a Counts: its name and value.
type Kind struct {
	Name  string
	Value int64
}

// Kinds lists the counts in field order, named in snake case.
func (c Counts) Kinds() []Kind {
	v := reflect.ValueOf(c)
	t := v.Type()
	out := make([]Kind, t.NumField())
	for i := range out {
		out[i] = Kind{Name: snake(t.Field(i).Name), Value: v.Field(i).Int()}
	}
	return out
}

// Total is the number of records of every kind.
func (c Counts) Total() int64 {
	var n int64
	for _, k := range c.Kinds() {
		n += k.Value
	}
	return n
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Mismatch is one kind whose counts differ between source and destination.
type Mismatch struct {
	Kind        string
	Source      int64
	Destination int64
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: source %d, destination %d", m.Kind, m.Source, m.Destination)
}

// Compare returns the kinds whose destination count differs from the
// source's. With atLeast (a copy into a store that already held records)
// only a destination holding fewer is a mismatch.
func Compare(src, dst Counts, atLeast bool) []Mismatch {
	var out []Mismatch
	d := dst.Kinds()
	for i, k := range src.Kinds() {
		if k.Value == d[i].Value || (atLeast && d[i].Value > k.Value) {
			continue
		}
		out = append(out, Mismatch{Kind: k.Name, Source: k.Value, Destination: d[i].Value})
	}
	return out
}

// Counter is an Importer that only counts what it is given. It is safe
// to read (Snapshot) while another goroutine feeds it.
type Counter struct {
	mu sync.Mutex
	c  Counts
}

// Snapshot returns the counts so far.
func (n *Counter) Snapshot() Counts {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.c
}

func (n *Counter) add(fn func(c *Counts)) error {
	n.mu.Lock()
	fn(&n.c)
	n.mu.Unlock()
	return nil
}

var _ tracking.Importer = (*Counter)(nil)

// ImportExperiment implements tracking.Importer.
func (n *Counter) ImportExperiment(_ context.Context, e *tracking.Experiment) error {
	return n.add(func(c *Counts) {
		c.Experiments++
		c.ExperimentTags += int64(len(e.Tags))
	})
}

// ImportRun implements tracking.Importer.
func (n *Counter) ImportRun(_ context.Context, r *tracking.Run) error {
	return n.add(func(c *Counts) {
		c.Runs++
		c.Params += int64(len(r.Data.Params))
		c.RunTags += int64(len(r.Data.Tags))
		c.LatestMetrics += int64(len(r.Data.Metrics))
		c.DatasetInputs += int64(len(r.Inputs.DatasetInputs))
		c.ModelInputs += int64(len(r.Inputs.ModelInputs))
		if r.Outputs != nil {
			c.ModelOutputs += int64(len(r.Outputs.ModelOutputs))
		}
	})
}

// ImportMetricHistory implements tracking.Importer.
func (n *Counter) ImportMetricHistory(_ context.Context, _ string, points []tracking.Metric) error {
	return n.add(func(c *Counts) { c.MetricPoints += int64(len(points)) })
}

// FinishRunImport implements tracking.Importer.
func (n *Counter) FinishRunImport(context.Context, string) error { return nil }

// ImportLoggedModel implements tracking.Importer.
func (n *Counter) ImportLoggedModel(_ context.Context, m *tracking.LoggedModel) error {
	return n.add(func(c *Counts) {
		c.LoggedModels++
		c.LoggedModelParams += int64(len(m.Data.Params))
		c.LoggedModelTags += int64(len(m.Info.Tags))
		c.LoggedModelMetrics += int64(len(m.Data.Metrics))
	})
}

// ImportRegisteredModel implements tracking.Importer.
func (n *Counter) ImportRegisteredModel(_ context.Context, m *tracking.RegisteredModel, _ int64) error {
	return n.add(func(c *Counts) {
		c.RegisteredModels++
		c.RegisteredModelTags += int64(len(m.Tags))
		c.Aliases += int64(len(m.Aliases))
	})
}

// ImportModelVersion implements tracking.Importer.
func (n *Counter) ImportModelVersion(_ context.Context, v *tracking.ModelVersion) error {
	return n.add(func(c *Counts) {
		c.ModelVersions++
		c.ModelVersionTags += int64(len(v.Tags))
	})
}

// ImportTrace implements tracking.Importer.
func (n *Counter) ImportTrace(_ context.Context, t *tracking.TraceInfo) error {
	return n.add(func(c *Counts) {
		c.Traces++
		c.TraceTags += int64(len(t.Tags))
		c.TraceMetadata += int64(len(t.RequestMetadata))
		c.Assessments += int64(len(t.Assessments))
	})
}
