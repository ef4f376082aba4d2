package pgstore

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func lmNamesPG(p tracking.LoggedModelPage) string {
	var out []string
	for _, m := range p.Models {
		out = append(out, m.Info.Name)
	}
	return strings.Join(out, ",")
}

func TestLoggedModelsCRUDPG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	m, err := s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: exp, Name: "n", ModelType: "agent",
		SourceRunID: "no-such-run", Params: []tracking.Param{{Key: "p", Value: "1"}, {Key: "a", Value: "2"}},
		Tags: []tracking.Tag{{Key: "t2", Value: "x"}, {Key: "t1", Value: "y"}, {Key: "t2", Value: "z"}}})
	regOK(t, err)
	id := m.Info.ModelID
	if !strings.HasPrefix(id, "m-") || len(id) != 34 || m.Info.Status != tracking.LoggedModelStatusPending ||
		m.Info.ArtifactURI != "mlflow-artifacts:/e/models/"+id+"/artifacts" || m.Info.ExperimentID != exp ||
		m.Info.SourceRunID != "no-such-run" || m.Info.ModelType != "agent" {
		t.Fatalf("created %+v", m.Info)
	}
	if fmt.Sprint(m.Info.Tags) != "[{t2 z} {t1 y}]" || fmt.Sprint(m.Data.Params) != "[{p 1} {a 2}]" {
		t.Fatalf("tags %v params %v", m.Info.Tags, m.Data.Params)
	}
	_, err = s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: "424242"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=424242 exists")
	_, err = s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: "x"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=x exists")

	regOK(t, s.LogLoggedModelParams(regCtx, id, []tracking.Param{{Key: "p", Value: "1"}, {Key: "b", Value: "3"}}))
	err = s.LogLoggedModelParams(regCtx, id, []tracking.Param{{Key: "p", Value: "other"}})
	regWantErr(t, err, tracking.InvalidParameterValue, "Changing param values is not allowed. Param with key='p' was already logged "+
		"with value='1' for logged model ID='"+id+"'. Attempted logging new value 'other'.")
	regOK(t, s.SetLoggedModelTags(regCtx, id, []tracking.Tag{{Key: "t1", Value: "new"}, {Key: "t3", Value: "3"}}))
	regOK(t, s.DeleteLoggedModelTag(regCtx, id, "t2"))
	err = s.DeleteLoggedModelTag(regCtx, id, "t2")
	regWantErr(t, err, tracking.ResourceDoesNotExist, fmt.Sprintf("No tag with key %q found for model with ID %q.", "t2", id))
	m, err = s.FinalizeLoggedModel(regCtx, id, tracking.LoggedModelStatusReady)
	regOK(t, err)
	if m.Info.Status != tracking.LoggedModelStatusReady || fmt.Sprint(m.Info.Tags) != "[{t1 new} {t3 3}]" ||
		fmt.Sprint(m.Data.Params) != "[{p 1} {a 2} {b 3}]" || m.Info.LastUpdatedTimestampMs < m.Info.CreationTimestampMs {
		t.Fatalf("finalized %+v", m)
	}
	_, err = s.FinalizeLoggedModel(regCtx, "m-nope", tracking.LoggedModelStatusReady)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID 'm-nope' not found.")

	// Outputs of a run; an inactive run or a missing model is refused.
	run := regRun(t, s, exp)
	regOK(t, s.LogOutputs(regCtx, run, []tracking.ModelOutput{{ModelID: id, Step: 7}}))
	var step int64
	regOK(t, s.Pool().QueryRow(regCtx, "SELECT step FROM run_model_outputs WHERE run_uuid = $1 AND model_id = $2", run, id).Scan(&step))
	if step != 7 {
		t.Fatalf("output step %d", step)
	}
	m0, err := s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: exp, Name: "zero"})
	regOK(t, err)
	regOK(t, s.LogOutputs(regCtx, run, []tracking.ModelOutput{{ModelID: m0.Info.ModelID, Step: 1}, {ModelID: id, Step: 8}}))
	outs, err := s.runOutputs(regCtx, s.Pool(), []string{run, "other"})
	regOK(t, err)
	wantOuts := []tracking.ModelOutput{{ModelID: id, Step: 8}, {ModelID: m0.Info.ModelID, Step: 1}}
	if wantOuts[0].ModelID > wantOuts[1].ModelID {
		wantOuts[0], wantOuts[1] = wantOuts[1], wantOuts[0]
	}
	if len(outs) != 1 || fmt.Sprint(outs[run]) != fmt.Sprint(wantOuts) {
		t.Fatalf("run outputs %v, want %v", outs, wantOuts)
	}
	regWantErr(t, s.LogOutputs(regCtx, run, []tracking.ModelOutput{{ModelID: "m-nope"}}), tracking.ResourceDoesNotExist,
		"Logged model with ID 'm-nope' not found.")
	regWantErr(t, s.LogOutputs(regCtx, "nope", nil), tracking.ResourceDoesNotExist, "Run with id=nope not found")

	// The registry records versions made from the model in its
	// mlflow.modelVersions tag, except prompt versions.
	_, err = s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "reg"})
	regOK(t, err)
	for range 2 {
		mv, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "reg", Source: "models:/" + id,
			StorageLocation: m.Info.ArtifactURI, ModelID: id})
		regOK(t, err)
		if mv.ModelID != id || mv.StorageLocation != m.Info.ArtifactURI {
			t.Fatalf("version %+v", mv)
		}
	}
	_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "reg", Source: "x", ModelID: id,
		Tags: []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "true"}}})
	regOK(t, err)
	lm, err := s.GetLoggedModel(regCtx, id)
	regOK(t, err)
	if v, _ := lm.Tag(tracking.TagModelVersions); v != `[{"name": "reg", "version": 1}, {"name": "reg", "version": 2}]` {
		t.Fatalf("modelVersions tag %q", v)
	}
	_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "reg", Source: "s3://b", ModelID: "m-nope"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID 'm-nope' not found.")

	// A deleted experiment refuses new models.
	regSetExpStage(t, s, exp, tracking.LifecycleDeleted)
	_, err = s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: exp})
	regWantErr(t, err, tracking.InvalidParameterValue, "The experiment "+exp+" must be in the 'active' state. Current state is deleted.")

	regOK(t, s.DeleteLoggedModel(regCtx, id))
	regWantErr(t, s.DeleteLoggedModel(regCtx, id), tracking.ResourceDoesNotExist, "Logged model with ID '"+id+"' not found.")
	_, err = s.GetLoggedModel(regCtx, id)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID '"+id+"' not found.")
}

func TestLoggedModelMetricsSearchPG(t *testing.T) {
	s := openTest(t)
	regClock(s, 1000)
	exp := regExp(t, s, "e")
	run := regRun(t, s, exp)
	ids := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		m, err := s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: exp, Name: n, SourceRunID: run,
			Params: []tracking.Param{{Key: "p", Value: n}}, Tags: []tracking.Tag{{Key: "t", Value: strings.ToUpper(n)}}})
		regOK(t, err)
		ids[n] = m.Info.ModelID
	}
	mm := func(model string, v float64, ts int64, ds string) tracking.ModelMetric {
		return tracking.ModelMetric{Key: "acc", Value: v, Timestamp: ts, ModelID: ids[model], DatasetName: ds, DatasetDigest: ds + "-d"}
	}
	regOK(t, regLogModelMetrics(s, run, []tracking.ModelMetric{mm("a", 0.5, 1, "eval"), mm("a", 0.9, 2, "train"),
		mm("b", 0.7, 1, "eval"), mm("c", math.NaN(), 1, "eval")}))
	// Exact repeats are ignored; NaN survives.
	regOK(t, regLogModelMetrics(s, run, []tracking.ModelMetric{mm("a", 0.5, 1, "eval"), mm("c", math.NaN(), 1, "eval")}))
	a, err := s.GetLoggedModel(regCtx, ids["a"])
	regOK(t, err)
	if len(a.Data.Metrics) != 2 || a.Data.Metrics[0].RunID != run || a.Data.Metrics[0].DatasetName != "eval" {
		t.Fatalf("a's metrics %+v", a.Data.Metrics)
	}
	c, err := s.GetLoggedModel(regCtx, ids["c"])
	regOK(t, err)
	if len(c.Data.Metrics) != 1 || !math.IsNaN(c.Data.Metrics[0].Value) {
		t.Fatalf("c's metrics %+v", c.Data.Metrics)
	}
	err = regLogModelMetrics(s, run, []tracking.ModelMetric{{Key: "x", ModelID: "m-nope"}})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Logged model with ID 'm-nope' not found.")

	q := func(filter string, datasets []search.DatasetRef, order []search.LoggedModelOrder, offset, max int) tracking.LoggedModelPage {
		t.Helper()
		f, err := search.ParseLoggedModelFilter(filter)
		regOK(t, err)
		keys, err := search.ParseLoggedModelOrderBy(order)
		regOK(t, err)
		p, err := s.SearchLoggedModels(regCtx, tracking.LoggedModelQuery{ExperimentIDs: []string{exp, "999", "x"}, Filter: f,
			Datasets: datasets, OrderBy: keys, Offset: offset, MaxResults: max})
		regOK(t, err)
		return p
	}
	if got := lmNamesPG(q("", nil, nil, 0, 10)); got != "c,b,a" {
		t.Fatalf("default %s", got)
	}
	for _, tc := range []struct {
		filter   string
		datasets []search.DatasetRef
		order    []search.LoggedModelOrder
		want     string
	}{
		{"", nil, []search.LoggedModelOrder{{FieldName: "metrics.acc", DatasetName: "eval"}}, "b,a,c"},
		{"", nil, []search.LoggedModelOrder{{FieldName: "metrics.acc", Ascending: true, DatasetName: "eval"}}, "c,a,b"},
		{"", nil, []search.LoggedModelOrder{{FieldName: "metrics.acc", Ascending: true}}, "c,b,a"},
		{"", nil, []search.LoggedModelOrder{{FieldName: "metrics.acc", Ascending: true, DatasetName: "train"}}, "a,c,b"},
		{"metrics.acc >= 0.7", nil, nil, "b,a"},
		{"metrics.acc != 0.7", nil, nil, "c,a"},
		{"metrics.acc >= 0.7", []search.DatasetRef{{Name: "eval", Digest: "eval-d"}}, nil, "b"},
		{"", []search.DatasetRef{{Name: "train"}}, nil, "a"},
		{"", []search.DatasetRef{{Name: "train", Digest: "nope"}}, nil, ""},
		{"params.p = 'b'", nil, nil, "b"},
		{"tags.t ILIKE 'a'", nil, nil, "a"},
		{"tags.t LIKE 'a'", nil, nil, ""},
		{"name IN ('a', 'c')", nil, nil, "c,a"},
		{"name NOT IN ('a', 'c')", nil, nil, "b"},
		{"creation_timestamp > 1001", nil, []search.LoggedModelOrder{{FieldName: "name", Ascending: true}}, "b,c"},
		{"status = 'LOGGED_MODEL_PENDING'", nil, []search.LoggedModelOrder{{FieldName: "creation_time", Ascending: true}}, "a,b,c"},
		{"", nil, []search.LoggedModelOrder{{FieldName: "model_type", Ascending: true}, {FieldName: "name", Ascending: false}}, "c,b,a"},
	} {
		if got := lmNamesPG(q(tc.filter, tc.datasets, tc.order, 0, 10)); got != tc.want {
			t.Errorf("%q %v %v: %s, want %s", tc.filter, tc.datasets, tc.order, got, tc.want)
		}
	}
	p := q("", nil, []search.LoggedModelOrder{{FieldName: "name", Ascending: true}}, 1, 1)
	if lmNamesPG(p) != "b" || !p.More || p.Next == "" {
		t.Fatalf("page %s more=%v", lmNamesPG(p), p.More)
	}
	if p = q("", nil, nil, 2, 5); lmNamesPG(p) != "a" || p.More || len(p.Models[0].Data.Metrics) != 2 {
		t.Fatalf("last page %s more=%v", lmNamesPG(p), p.More)
	}
}

// TestLoggedModelKeysetPagesPG pages through models ordered by a metric
// while models are created between pages (replicas writing at once).
func TestLoggedModelKeysetPagesPG(t *testing.T) {
	s1, s2 := regTwoStores(t)
	exp := regExp(t, s1, "e")
	run := regRun(t, s1, exp)
	var want []string
	mk := func(s *Store, name string, v float64) {
		t.Helper()
		m, err := s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: exp, Name: name})
		regOK(t, err)
		if !math.IsInf(v, 1) {
			regOK(t, regLogModelMetrics(s, run, []tracking.ModelMetric{{Key: "loss", Value: v, Timestamp: 1, ModelID: m.Info.ModelID}}))
		}
	}
	for i := 0; i < 15; i++ {
		n := fmt.Sprintf("m%02d", i)
		want = append(want, n)
		v := float64(i % 4) // ties
		switch i {
		case 3:
			v = math.NaN()
		case 7:
			v = math.Inf(1) // no metric at all
		}
		mk(s1, n, v)
	}
	for _, asc := range []bool{true, false} {
		order, err := search.ParseLoggedModelOrderBy([]search.LoggedModelOrder{{FieldName: "metrics.loss", Ascending: asc}})
		regOK(t, err)
		seen := map[string]int{}
		after := ""
		for page := 0; ; page++ {
			p, err := []*Store{s1, s2}[page%2].SearchLoggedModels(regCtx, tracking.LoggedModelQuery{ExperimentIDs: []string{exp},
				OrderBy: order, MaxResults: 4, After: after})
			regOK(t, err)
			for _, m := range p.Models {
				seen[m.Info.Name]++
			}
			if page < 3 {
				var wg sync.WaitGroup
				for j, v := range []float64{-1, 1.5, 99} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						mk([]*Store{s1, s2}[j%2], fmt.Sprintf("new-%v-%d-%d", asc, page, j), v)
					}()
				}
				wg.Wait()
			}
			if !p.More {
				break
			}
			after = p.Next
		}
		for _, n := range want {
			if seen[n] != 1 {
				t.Fatalf("asc=%v: %s seen %d times (%v)", asc, n, seen[n], seen)
			}
		}
		for n, c := range seen {
			if c != 1 {
				t.Fatalf("asc=%v: %s seen %d times", asc, n, c)
			}
		}
	}
}
