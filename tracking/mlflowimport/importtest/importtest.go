// Package importtest checks an imported store against the manifest that
// testdata/mlflow-fixtures/make_fixtures.py wrote while it logged the
// fixture through the real MLflow client.
package importtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Manifest is what the fixture script logged.
type Manifest struct {
	MLflowVersion string `json:"mlflow_version"`
	Experiments   []struct {
		ID      string            `json:"id"`
		Name    string            `json:"name"`
		Tags    map[string]string `json:"tags"`
		Deleted bool              `json:"deleted"`
	} `json:"experiments"`
	Runs []struct {
		ID           string            `json:"id"`
		ExperimentID string            `json:"experiment_id"`
		Name         string            `json:"name"`
		Status       string            `json:"status"`
		StartTime    int64             `json:"start_time"`
		EndTime      int64             `json:"end_time"`
		User         string            `json:"user"`
		Deleted      bool              `json:"deleted"`
		Params       map[string]string `json:"params"`
		Tags         map[string]string `json:"tags"`
		Metrics      [][4]any          `json:"metrics"`
		Artifacts    map[string]struct {
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"artifacts"`
		Dataset *struct {
			Name       string `json:"name"`
			Digest     string `json:"digest"`
			Context    string `json:"context"`
			SourceType string `json:"source_type"`
		} `json:"dataset"`
	} `json:"runs"`
	Models []struct {
		Name        string            `json:"name"`
		Tags        map[string]string `json:"tags"`
		Description string            `json:"description"`
		Aliases     map[string]any    `json:"aliases"`
		Versions    []struct {
			Version     any               `json:"version"`
			Stage       string            `json:"stage"`
			RunID       string            `json:"run_id"`
			Tags        map[string]string `json:"tags"`
			Description string            `json:"description"`
		} `json:"versions"`
	} `json:"models"`
}

// Dir is testdata/mlflow-fixtures.
func Dir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "mlflow-fixtures")
}

// Load reads a manifest (manifest-file.json or manifest-sqlite.json).
func Load(t testing.TB, name string) *Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func value(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		switch x {
		case "NaN":
			return math.NaN()
		case "Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
	}
	panic(fmt.Sprintf("metric value %v", v))
}

func tagMap(ts []tracking.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

func point(m tracking.Metric) string {
	v := "NaN"
	if !math.IsNaN(m.Value) {
		v = strconv.FormatFloat(m.Value, 'g', -1, 64)
	}
	return fmt.Sprintf("%s@%d/%d=%s", m.Key, m.Step, m.Timestamp, v)
}

// Check compares s, field by field, with what the manifest says was
// logged. artifactsTo, when set, is where the run artifacts must be
// (by size and SHA-256), below <experiment id>/<run id>/artifacts.
// skipRuns names runs that must be absent (skipped as corrupt).
func Check(t testing.TB, s tracking.Store, man *Manifest, artifactsTo string, skipRuns ...string) {
	t.Helper()
	ctx := context.Background()
	for _, e := range man.Experiments {
		got, err := s.GetExperiment(ctx, e.ID)
		if err != nil {
			t.Errorf("experiment %s (%s): %v", e.ID, e.Name, err)
			continue
		}
		if got.Name != e.Name {
			t.Errorf("experiment %s: name %q, want %q", e.ID, got.Name, e.Name)
		}
		if (got.LifecycleStage == tracking.LifecycleDeleted) != e.Deleted {
			t.Errorf("experiment %s: lifecycle %s, deleted=%v", e.ID, got.LifecycleStage, e.Deleted)
		}
		have := tagMap(got.Tags)
		for k, v := range e.Tags {
			if have[k] != v {
				t.Errorf("experiment %s: tag %q = %q, want %q", e.ID, k, have[k], v)
			}
		}
		if artifactsTo != "" && got.ArtifactLocation != "mlflow-artifacts:/"+e.ID {
			t.Errorf("experiment %s: artifact location %q", e.ID, got.ArtifactLocation)
		}
	}
	skip := map[string]bool{}
	for _, id := range skipRuns {
		skip[id] = true
	}
	for _, r := range man.Runs {
		got, err := s.GetRun(ctx, r.ID)
		if skip[r.ID] {
			if !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Errorf("run %s should be absent: %v", r.ID, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("run %s: %v", r.ID, err)
			continue
		}
		i := got.Info
		if i.ExperimentID != r.ExperimentID || i.RunName != r.Name || i.Status != r.Status ||
			i.StartTime != r.StartTime || i.EndTime != r.EndTime || i.UserID != r.User ||
			(i.LifecycleStage == tracking.LifecycleDeleted) != r.Deleted {
			t.Errorf("run %s: info %+v, want %+v", r.ID, i, r)
		}
		params := map[string]string{}
		for _, p := range got.Data.Params {
			params[p.Key] = p.Value
		}
		if fmt.Sprint(params) != fmt.Sprint(r.Params) {
			t.Errorf("run %s: params %v, want %v", r.ID, params, r.Params)
		}
		have := tagMap(got.Data.Tags)
		for k, v := range r.Tags {
			if have[k] != v {
				t.Errorf("run %s: tag %q = %q, want %q", r.ID, k, have[k], v)
			}
		}
		// History: every distinct point, values as the store keeps them.
		want := map[string]bool{}
		keys := map[string]bool{}
		for _, p := range r.Metrics {
			m := tracking.Metric{Key: p[0].(string), Value: tracking.ClampMetricValue(value(p[1])),
				Timestamp: int64(p[2].(float64)), Step: int64(p[3].(float64))}
			want[point(m)] = true
			keys[m.Key] = true
		}
		var pts []string
		for k := range keys {
			err := s.MetricHistory(ctx, r.ID, k, 1000, func(ms []tracking.Metric) error {
				for _, m := range ms {
					pts = append(pts, point(m))
				}
				return nil
			})
			if err != nil {
				t.Errorf("run %s: history %s: %v", r.ID, k, err)
			}
		}
		var wantPts []string
		for p := range want {
			wantPts = append(wantPts, p)
		}
		sort.Strings(pts)
		sort.Strings(wantPts)
		if fmt.Sprint(pts) != fmt.Sprint(wantPts) {
			t.Errorf("run %s: history\n got %v\nwant %v", r.ID, pts, wantPts)
		}
		if len(got.Data.Metrics) != len(keys) {
			t.Errorf("run %s: %d latest metrics, want %d", r.ID, len(got.Data.Metrics), len(keys))
		}
		if r.Dataset != nil {
			ok := false
			for _, d := range got.Inputs.DatasetInputs {
				if d.Dataset.Name == r.Dataset.Name && d.Dataset.Digest == r.Dataset.Digest &&
					d.Dataset.SourceType == r.Dataset.SourceType && tagMap(d.Tags)["mlflow.data.context"] == r.Dataset.Context {
					ok = true
				}
			}
			if !ok {
				t.Errorf("run %s: dataset inputs %+v, want %+v", r.ID, got.Inputs.DatasetInputs, r.Dataset)
			}
		}
		if artifactsTo != "" {
			if got.Info.ArtifactURI != "mlflow-artifacts:/"+r.ExperimentID+"/"+r.ID+"/artifacts" {
				t.Errorf("run %s: artifact uri %q", r.ID, got.Info.ArtifactURI)
			}
			for rel, a := range r.Artifacts {
				b, err := os.ReadFile(filepath.Join(artifactsTo, r.ExperimentID, r.ID, "artifacts", filepath.FromSlash(rel)))
				if err != nil {
					t.Errorf("run %s: artifact %s: %v", r.ID, rel, err)
					continue
				}
				sum := sha256.Sum256(b)
				if int64(len(b)) != a.Size || hex.EncodeToString(sum[:]) != a.SHA256 {
					t.Errorf("run %s: artifact %s differs", r.ID, rel)
				}
			}
		}
	}
	for _, m := range man.Models {
		got, err := s.GetRegisteredModel(ctx, m.Name)
		if err != nil {
			t.Errorf("model %q: %v", m.Name, err)
			continue
		}
		if got.Description != m.Description || fmt.Sprint(tagMap(got.Tags)) != fmt.Sprint(m.Tags) {
			t.Errorf("model %q: %+v, want %+v", m.Name, got, m)
		}
		aliases := map[string]any{}
		for _, a := range got.Aliases {
			aliases[a.Alias] = a.Version
		}
		wantAliases := map[string]any{}
		for a, v := range m.Aliases {
			wantAliases[a] = fmt.Sprint(v)
		}
		if fmt.Sprint(aliases) != fmt.Sprint(wantAliases) {
			t.Errorf("model %q: aliases %v, want %v", m.Name, aliases, m.Aliases)
		}
		for _, v := range m.Versions {
			n, _ := strconv.ParseInt(fmt.Sprint(v.Version), 10, 64)
			gv, err := s.GetModelVersion(ctx, m.Name, n)
			if err != nil {
				t.Errorf("model %q version %s: %v", m.Name, v.Version, err)
				continue
			}
			if gv.CurrentStage != v.Stage || gv.RunID != v.RunID || gv.Description != v.Description ||
				fmt.Sprint(tagMap(gv.Tags)) != fmt.Sprint(v.Tags) {
				t.Errorf("model %q version %s: %+v, want %+v", m.Name, v.Version, gv, v)
			}
		}
	}
}
