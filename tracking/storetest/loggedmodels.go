package storetest

import (
	"cmp"
	"math"
	"regexp"
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

var modelID = regexp.MustCompile(`^m-[0-9a-f]{32}$`)

func testLoggedModels(t *testing.T, f Factory) {
	t.Run("Lifecycle", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		within := nowWindow(t)
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m", ModelType: "agent", SourceRunID: "no-such-run",
			Params: []tracking.Param{{Key: "p", Value: "1"}}, Tags: []tracking.Tag{{Key: "t", Value: "1"}}})
		ok(t, err)
		id := m.Info.ModelID
		if !modelID.MatchString(id) || m.Info.ExperimentID != exp || m.Info.Name != "m" || m.Info.ModelType != "agent" ||
			m.Info.SourceRunID != "no-such-run" || m.Info.Status != tracking.LoggedModelStatusPending ||
			m.Info.ArtifactURI != "mlflow-artifacts:/"+exp+"/models/"+id+"/artifacts" || len(m.Data.Params) != 1 || tagMap(m.Info.Tags)["t"] != "1" {
			t.Fatalf("created %+v", m)
		}
		within("creation_timestamp_ms", m.Info.CreationTimestampMs)
		_, err = s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: "999", Name: "m"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		Tick()
		m, err = s.FinalizeLoggedModel(bg, id, tracking.LoggedModelStatusReady)
		ok(t, err)
		if m.Info.Status != tracking.LoggedModelStatusReady || m.Info.LastUpdatedTimestampMs <= m.Info.CreationTimestampMs {
			t.Fatalf("finalized %+v", m.Info)
		}
		ok(t, s.SetLoggedModelTags(bg, id, []tracking.Tag{{Key: "t", Value: "2"}, {Key: "u", Value: "3"}}))
		ok(t, s.DeleteLoggedModelTag(bg, id, "u"))
		wantErr(t, s.DeleteLoggedModelTag(bg, id, "u"), tracking.ResourceDoesNotExist, "")
		ok(t, s.LogLoggedModelParams(bg, id, []tracking.Param{{Key: "p", Value: "1"}, {Key: "q", Value: "2"}}))
		wantErr(t, s.LogLoggedModelParams(bg, id, []tracking.Param{{Key: "p", Value: "changed"}}), tracking.InvalidParameterValue, "")
		m, err = s.GetLoggedModel(bg, id)
		ok(t, err)
		if tm := tagMap(m.Info.Tags); tm["t"] != "2" || len(tm) != 1 || len(m.Data.Params) != 2 {
			t.Fatalf("got %+v", m)
		}
		if v, _ := m.Param("p"); v != "1" {
			t.Fatalf("param p %q", v)
		}
		ok(t, s.DeleteLoggedModel(bg, id))
		_, err = s.GetLoggedModel(bg, id)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		wantErr(t, s.DeleteLoggedModel(bg, id), tracking.ResourceDoesNotExist, "")
		_, err = s.FinalizeLoggedModel(bg, id, tracking.LoggedModelStatusReady)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		wantErr(t, s.SetLoggedModelTags(bg, id, []tracking.Tag{{Key: "t"}}), tracking.ResourceDoesNotExist, "")
	})

	t.Run("MetricsSearch", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		run := mkRun(t, s, exp, "r", 1)
		ids := map[string]string{}
		for _, n := range []string{"a", "b", "c"} {
			Tick()
			m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: n, SourceRunID: run})
			ok(t, err)
			ids[n] = m.Info.ModelID
		}
		mm := func(model string, v float64, ts int64, ds string) tracking.ModelMetric {
			return tracking.ModelMetric{Key: "acc", Value: v, Timestamp: ts, ModelID: ids[model], DatasetName: ds, DatasetDigest: ds + "-d"}
		}
		ok(t, s.LogBatch(bg, run, tracking.Batch{
			Metrics:      []tracking.Metric{{Key: "acc", Value: 0.5, Timestamp: 1}},
			ModelMetrics: []tracking.ModelMetric{mm("a", 0.5, 1, "eval"), mm("a", 0.9, 2, "train"), mm("b", 0.7, 1, "eval"), mm("c", math.NaN(), 1, "eval")},
		}))
		// Exact repeats are ignored; NaN survives.
		ok(t, s.LogBatch(bg, run, tracking.Batch{ModelMetrics: []tracking.ModelMetric{mm("a", 0.5, 1, "eval"), mm("c", math.NaN(), 1, "eval")}}))
		a, err := s.GetLoggedModel(bg, ids["a"])
		ok(t, err)
		if len(a.Data.Metrics) != 2 || a.Data.Metrics[0].RunID != run || a.Data.Metrics[0].ModelID != ids["a"] {
			t.Fatalf("a's metrics %+v", a.Data.Metrics)
		}
		c, err := s.GetLoggedModel(bg, ids["c"])
		ok(t, err)
		if len(c.Data.Metrics) != 1 || !math.IsNaN(c.Data.Metrics[0].Value) {
			t.Fatalf("c's metrics %+v", c.Data.Metrics)
		}
		err = s.LogBatch(bg, run, tracking.Batch{ModelMetrics: []tracking.ModelMetric{{Key: "x", ModelID: "m-nope"}}})
		wantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID 'm-nope' not found.")

		q := func(filter string, datasets []search.DatasetRef, order []search.LoggedModelOrder, offset, max int) tracking.LoggedModelPage {
			t.Helper()
			f, err := search.ParseLoggedModelFilter(filter)
			ok(t, err)
			keys, err := search.ParseLoggedModelOrderBy(order)
			ok(t, err)
			p, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, Filter: f,
				Datasets: datasets, OrderBy: keys, Offset: offset, MaxResults: max})
			ok(t, err)
			return p
		}
		if got := lmNames(q("", nil, nil, 0, 10)); got != "c,b,a" {
			t.Fatalf("default %s", got)
		}
		desc := []search.LoggedModelOrder{{FieldName: "metrics.acc", Ascending: false, DatasetName: "eval"}}
		if got := lmNames(q("", nil, desc, 0, 10)); got != "b,a,c" {
			t.Fatalf("acc desc on eval %s", got)
		}
		if got := lmNames(q("metrics.acc >= 0.7", nil, nil, 0, 10)); got != "b,a" {
			t.Fatalf("acc >= 0.7 %s", got)
		}
		if got := lmNames(q("metrics.acc >= 0.7", []search.DatasetRef{{Name: "eval", Digest: "eval-d"}}, nil, 0, 10)); got != "b" {
			t.Fatalf("acc >= 0.7 on eval %s", got)
		}
		if got := lmNames(q("", []search.DatasetRef{{Name: "train"}}, nil, 0, 10)); got != "a" {
			t.Fatalf("datasets only %s", got)
		}
		if got := lmNames(q("name = 'b'", nil, nil, 0, 10)); got != "b" {
			t.Fatalf("name filter %s", got)
		}
		p := q("", nil, []search.LoggedModelOrder{{FieldName: "name", Ascending: true}}, 1, 1)
		if lmNames(p) != "b" || !p.More {
			t.Fatalf("page %s more=%v", lmNames(p), p.More)
		}
		if p = q("", nil, nil, 2, 5); lmNames(p) != "a" || p.More {
			t.Fatalf("last page %s more=%v", lmNames(p), p.More)
		}
		// A search that reads no metrics still answers the page's models with
		// all their metric points.
		if len(p.Models[0].Data.Metrics) != 2 {
			t.Fatalf("metrics of a on a metric-free search: %+v", p.Models[0].Data.Metrics)
		}
		if p = q("metrics.acc >= 0.7", nil, nil, 0, 10); len(p.Models) != 2 || len(p.Models[1].Data.Metrics) != 2 {
			t.Fatalf("metrics of a on a metric search: %+v", p.Models)
		}
	})

	t.Run("DefaultOrderAcrossExperiments", func(t *testing.T) {
		// Newest first, then model id, merged over several experiments,
		// page by page and with an offset (MLflow's own page tokens),
		// whatever index the store answers the default order from.
		s := open(t, f)
		exps := []string{mkExp(t, s, "a"), mkExp(t, s, "b"), mkExp(t, s, "c")}
		var all []*tracking.LoggedModel
		for i := 0; i < 14; i++ {
			e := i % 3 // then the newest all in b: a page's models come from one experiment's range
			if i >= 6 {
				e = 1
			}
			m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exps[e], Name: "m"})
			ok(t, err)
			if e != 2 {
				all = append(all, m)
			}
			if i%4 == 0 {
				Tick()
			}
		}
		slices.SortFunc(all, func(a, b *tracking.LoggedModel) int {
			if c := cmp.Compare(b.Info.CreationTimestampMs, a.Info.CreationTimestampMs); c != 0 {
				return c
			}
			return cmp.Compare(a.Info.ModelID, b.Info.ModelID)
		})
		var want []string
		for _, m := range all {
			want = append(want, m.Info.ModelID)
		}
		for _, order := range [][]search.LoggedModelOrder{nil, {{FieldName: "creation_timestamp"}}} {
			if order != nil { // descending
				order[0].Ascending = false
			}
			keys, err := search.ParseLoggedModelOrderBy(order)
			ok(t, err)
			for _, offset := range []int{0, 2} {
				var got []string
				after := ""
				for pages := 0; pages < 20; pages++ {
					p, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exps[1], exps[0]},
						OrderBy: keys, MaxResults: 3, Offset: offset, After: after})
					ok(t, err)
					for _, m := range p.Models {
						got = append(got, m.Info.ModelID)
					}
					if !p.More {
						break
					}
					after = p.Next
				}
				// An offset applies on every page after the cursor.
				var exp []string
				for i := offset; i < len(want); i += 3 + offset {
					exp = append(exp, want[i:min(i+3, len(want))]...)
				}
				if !slices.Equal(got, exp) {
					t.Fatalf("order %v offset %d:\n got %v\nwant %v", order, offset, got, exp)
				}
			}
		}
	})

	t.Run("RunOutputsAndVersionModelID", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		run := mkRun(t, s, exp, "r", 1)
		got, err := s.GetRun(bg, run)
		ok(t, err)
		if got.Outputs != nil {
			t.Fatalf("outputs of a new run %+v", got.Outputs)
		}
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m"})
		ok(t, err)
		ok(t, s.LogOutputs(bg, run, []tracking.ModelOutput{{ModelID: m.Info.ModelID, Step: 7}}))
		got, err = s.GetRun(bg, run)
		ok(t, err)
		if got.Outputs == nil || len(got.Outputs.ModelOutputs) != 1 || got.Outputs.ModelOutputs[0] != (tracking.ModelOutput{ModelID: m.Info.ModelID, Step: 7}) {
			t.Fatalf("outputs %+v", got.Outputs)
		}
		wantErr(t, s.LogOutputs(bg, missingRun, []tracking.ModelOutput{{ModelID: m.Info.ModelID}}), tracking.ResourceDoesNotExist, "")

		mkModel(t, s, "reg")
		for range 2 {
			mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "models:/" + m.Info.ModelID,
				StorageLocation: m.Info.ArtifactURI, ModelID: m.Info.ModelID})
			ok(t, err)
			if mv.ModelID != m.Info.ModelID || mv.StorageLocation != m.Info.ArtifactURI {
				t.Fatalf("version %+v", mv)
			}
		}
		// A prompt version does not touch the logged model.
		_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "x", ModelID: m.Info.ModelID,
			Tags: []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "true"}}})
		ok(t, err)
		lm, err := s.GetLoggedModel(bg, m.Info.ModelID)
		ok(t, err)
		if v, _ := lm.Tag(tracking.TagModelVersions); v != `[{"name": "reg", "version": 1}, {"name": "reg", "version": 2}]` {
			t.Fatalf("modelVersions tag %q", v)
		}
		_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "s3://b", ModelID: "m-nope"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID 'm-nope' not found.")
		mv, err := s.GetModelVersion(bg, "reg", 1)
		ok(t, err)
		if mv.ModelID != m.Info.ModelID {
			t.Fatalf("get %+v", mv)
		}
		// The failed create did not take a number.
		mv, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "s3://b"})
		ok(t, err)
		if mv.Version != "4" {
			t.Fatalf("version after a failed create %s", mv.Version)
		}
	})
}
