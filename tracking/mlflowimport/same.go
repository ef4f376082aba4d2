package mlflowimport

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// These compare what the destination holds with what an import would
// write, as the stores give records back: order does not matter, metric
// values are compared after ClampMetricValue (NaN equal to NaN).

func tagSet(ts []tracking.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

func paramSet(ps []tracking.Param) map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// valueKey is a metric value as a store keeps it.
func valueKey(v float64) string {
	v = tracking.ClampMetricValue(v)
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func latestSet(ms []tracking.Metric) map[string]string {
	m := make(map[string]string, len(ms))
	for _, x := range ms {
		m[x.Key] = fmt.Sprintf("%s@%d/%d", valueKey(x.Value), x.Step, x.Timestamp)
	}
	return m
}

func inputSet(ins []tracking.DatasetInput) map[string]string {
	m := make(map[string]string, len(ins))
	for _, in := range ins {
		tags := tagSet(in.Tags)
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ts string
		for _, k := range keys {
			ts += strconv.Quote(k) + "=" + strconv.Quote(tags[k]) + ";"
		}
		m[strconv.Quote(in.Dataset.Name)+"/"+strconv.Quote(in.Dataset.Digest)] = ts
	}
	return m
}

// sameRun reports whether have (read from the destination) equals want
// (the run as the import writes it).
func sameRun(have, want *tracking.Run) bool {
	a, b := have.Info, want.Info
	if a.RunID != b.RunID || a.ExperimentID != b.ExperimentID || a.RunName != b.RunName || a.UserID != b.UserID ||
		a.Status != b.Status || a.StartTime != b.StartTime || a.EndTime != b.EndTime || a.ArtifactURI != b.ArtifactURI ||
		a.LifecycleStage != b.LifecycleStage {
		return false
	}
	return sameMap(paramSet(have.Data.Params), paramSet(want.Data.Params)) &&
		sameMap(tagSet(have.Data.Tags), tagSet(want.Data.Tags)) &&
		sameMap(latestSet(have.Data.Metrics), latestSet(want.Data.Metrics)) &&
		sameMap(inputSet(have.Inputs.DatasetInputs), inputSet(want.Inputs.DatasetInputs))
}

func modelMetricSet(ms []tracking.ModelMetric) []string {
	out := make([]string, 0, len(ms))
	for _, x := range ms {
		out = append(out, fmt.Sprintf("%q %s %d %d %q %q %q", x.Key, valueKey(x.Value), x.Timestamp, x.Step, x.RunID, x.DatasetName, x.DatasetDigest))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// sameLoggedModel reports whether have equals want.
func sameLoggedModel(have, want *tracking.LoggedModel) bool {
	a, b := have.Info, want.Info
	if a.ModelID != b.ModelID || a.ExperimentID != b.ExperimentID || a.Name != b.Name || a.ArtifactURI != b.ArtifactURI ||
		a.CreationTimestampMs != b.CreationTimestampMs || a.LastUpdatedTimestampMs != b.LastUpdatedTimestampMs ||
		a.Status != b.Status || a.ModelType != b.ModelType || a.SourceRunID != b.SourceRunID || a.StatusMessage != b.StatusMessage {
		return false
	}
	return sameMap(tagSet(a.Tags), tagSet(b.Tags)) && sameMap(paramSet(have.Data.Params), paramSet(want.Data.Params)) &&
		slices.Equal(modelMetricSet(have.Data.Metrics), modelMetricSet(want.Data.Metrics))
}

func assessmentSet(as []tracking.Assessment) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		b, err := json.Marshal(a)
		if err != nil {
			b = []byte(a.AssessmentID)
		}
		out = append(out, compactJSON(b))
	}
	sort.Strings(out)
	return out
}

// compactJSON re-encodes a JSON document through generic values, so
// that the same content compares equal whatever its spacing and key
// order.
func compactJSON(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(b)
	}
	return string(out)
}

// sameTrace reports whether have equals want.
func sameTrace(have, want *tracking.TraceInfo) bool {
	if have.RequestID != want.RequestID || have.ExperimentID != want.ExperimentID || have.TimestampMs != want.TimestampMs ||
		have.ExecutionTimeMs != want.ExecutionTimeMs || have.Status != want.Status || have.ClientRequestID != want.ClientRequestID ||
		have.RequestPreview != want.RequestPreview || have.ResponsePreview != want.ResponsePreview {
		return false
	}
	a, b := slices.Clone(have.LinkedRunIDs), slices.Clone(want.LinkedRunIDs)
	sort.Strings(a)
	sort.Strings(b)
	return sameMap(tagSet(have.Tags), tagSet(want.Tags)) && sameMap(tagSet(have.RequestMetadata), tagSet(want.RequestMetadata)) &&
		slices.Equal(a, b) && slices.Equal(assessmentSet(have.Assessments), assessmentSet(want.Assessments))
}
