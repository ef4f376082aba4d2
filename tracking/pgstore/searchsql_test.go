package pgstore

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// memRun is a loaded run as a search.RunView with its datasets, for
// evaluating searches in memory with tracking/search's matcher and
// comparator (the semantics the bbolt store has, checked against MLflow).
type memRun struct {
	pageRun
}

func (v *memRun) Datasets() []search.Dataset {
	var out []search.Dataset
	for _, in := range v.run.Inputs.DatasetInputs {
		d := search.Dataset{Name: in.Dataset.Name, Digest: in.Dataset.Digest}
		for _, t := range in.Tags {
			if t.Key == tracking.InputTagContext {
				d.Context = t.Value
			}
		}
		out = append(out, d)
	}
	return out
}

// TestSearchRunsMatchesInMemorySemantics compiles many filters and orders
// to SQL and compares every page walk with the in-memory matcher and
// comparator over the same runs: NULL/NaN ordering, LIKE/ILIKE without
// escapes, IN/NOT IN, IS [NOT] NULL, attributes, datasets and the
// tie-breakers.
func TestSearchRunsMatchesInMemorySemantics(t *testing.T) {
	s := openCore(t)
	ea, eb := mkExp(t, s, "a"), mkExp(t, s, "b")
	rng := rand.New(rand.NewSource(7))
	names := []string{"alpha", "Alpha", "beta", "b_ta", "gam%ma", "Ärger", "ärger", "zeta", ""}
	vals := []string{"x", "X", "10", "9", "a_b", "a%b", "ab", "", "Äb"}
	statuses := []string{"RUNNING", "FINISHED", "FAILED"}
	var ids []string
	for i := 0; i < 70; i++ {
		exp := ea
		if i%3 == 0 {
			exp = eb
		}
		name := names[rng.Intn(len(names))]
		r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: []string{"u1", "u2"}[i%2],
			RunName: name, StartTime: int64(rng.Intn(8)), Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}}})
		ok(t, err)
		id := r.Info.RunID
		ids = append(ids, id)
		var b tracking.Batch
		for _, k := range []string{"m1", "m2"} {
			switch rng.Intn(5) {
			case 0: // missing
			case 1:
				b.Metrics = append(b.Metrics, tracking.Metric{Key: k, Value: math.NaN(), Timestamp: 1})
			default:
				b.Metrics = append(b.Metrics, tracking.Metric{Key: k, Value: float64(rng.Intn(6)) - 2, Timestamp: 1, Step: int64(rng.Intn(3))})
			}
		}
		for _, k := range []string{"p1", "p2"} {
			if rng.Intn(4) != 0 {
				b.Params = append(b.Params, tracking.Param{Key: k, Value: vals[rng.Intn(len(vals))]})
			}
		}
		if rng.Intn(3) != 0 {
			b.Tags = append(b.Tags, tracking.Tag{Key: "t1", Value: vals[rng.Intn(len(vals))]})
		}
		ok(t, s.LogBatch(bg, id, b))
		if rng.Intn(2) == 0 {
			st := statuses[rng.Intn(len(statuses))]
			end := int64(rng.Intn(5) + 1)
			_, err := s.UpdateRun(bg, id, tracking.UpdateRun{Status: &st, EndTime: &end})
			ok(t, err)
		}
		if rng.Intn(3) == 0 {
			var tags []tracking.Tag
			if rng.Intn(2) == 0 {
				tags = []tracking.Tag{{Key: tracking.InputTagContext, Value: []string{"train", "eval"}[rng.Intn(2)]}}
			}
			ok(t, s.LogInputs(bg, id, []tracking.DatasetInput{{Tags: tags,
				Dataset: tracking.Dataset{Name: []string{"mnist", "MNIST", "cifar"}[rng.Intn(3)], Digest: "d" + fmt.Sprint(rng.Intn(2)), SourceType: "s", Source: "{}"}}}, nil))
		}
		if rng.Intn(8) == 0 {
			ok(t, s.DeleteRun(bg, id))
		}
	}
	// Every run, in memory.
	var all []*memRun
	for _, id := range ids {
		r, err := s.GetRun(bg, id)
		ok(t, err)
		all = append(all, &memRun{pageRun{run: *r, endOK: r.Info.EndTime != 0}})
	}
	filters := []string{
		"",
		"metrics.m1 > 0", "metrics.m1 = 0", "metrics.m1 != 0", "metrics.m2 <= -1 AND metrics.m1 >= 0",
		"params.p1 = 'x'", "params.p1 != 'x'", "params.p1 LIKE 'a_b'", "params.p1 LIKE 'a%'", "params.p1 ILIKE 'x'",
		"params.p1 ILIKE 'äb'", "params.p1 = ''", "params.p2 ILIKE '%B'",
		"params.p2 IS NULL", "params.p2 IS NOT NULL", "tags.t1 IS NULL", "tags.t1 != 'x'", "tags.t1 LIKE '_'",
		"attributes.run_name = 'alpha'", "attributes.run_name ILIKE 'ALPHA'", "attributes.run_name LIKE '%\\%%'",
		"attributes.run_name ILIKE 'ärger'", "attributes.run_name != 'zeta'", "attributes.run_id IN ('" + ids[1] + "', '" + ids[2] + "')", "attributes.run_id NOT IN ('" + ids[0] + "')",
		"attributes.status = 'FINISHED'", "attributes.status != 'RUNNING'", "attributes.end_time > 2",
		"attributes.start_time < 4", "attributes.user_id = 'u1' AND metrics.m2 > -5", "attributes.run_id LIKE '" + ids[3][:3] + "%'",
		"datasets.name = 'mnist'", "datasets.name ILIKE 'mnist'", "datasets.context = 'train'", "datasets.digest IN ('d1')",
		"datasets.context != 'train'", "datasets.name NOT IN ('cifar')",
		"metrics.m1 > 0 AND params.p1 = 'x'",
	}
	orders := [][]string{
		nil, {"metrics.m1 DESC"}, {"metrics.m1 ASC"}, {"metrics.m2 DESC", "params.p1 ASC"},
		{"params.p1 DESC"}, {"tags.t1 ASC"}, {"attributes.end_time DESC"}, {"attributes.end_time ASC"},
		{"attributes.start_time ASC"}, {"attributes.run_name DESC", "metrics.m1 ASC"}, {"attributes.status ASC", "attributes.user_id DESC"},
		{"attributes.run_id DESC"}, {"attributes.artifact_uri ASC"},
	}
	for _, fs := range filters {
		f, err := search.ParseRunFilter(fs)
		if err != nil {
			t.Fatalf("%q: %v", fs, err)
		}
		for _, os := range orders {
			ob, err := search.ParseRunOrderBy(os)
			ok(t, err)
			for _, vt := range []tracking.ViewType{tracking.ActiveOnly, tracking.AllViews} {
				var want []string
				var match []*memRun
				for _, r := range all {
					if r.run.Info.ExperimentID != "0" && vt.Includes(r.run.Info.LifecycleStage) && search.MatchRun(f, r) {
						match = append(match, r)
					}
				}
				slices.SortFunc(match, func(a, b *memRun) int { return search.CompareRuns(ob, a, b) })
				for _, r := range match {
					want = append(want, r.run.Info.RunID)
				}
				var got []string
				token := ""
				for pages := 0; ; pages++ {
					p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{ea, eb}, Filter: f, OrderBy: ob,
						ViewType: vt, MaxResults: 7, PageToken: token})
					if err != nil {
						t.Fatalf("filter %q order %v: %v", fs, os, err)
					}
					for _, r := range p.Runs {
						got = append(got, r.Info.RunID)
					}
					if p.NextPageToken == "" || pages > 20 {
						break
					}
					token = p.NextPageToken
				}
				if !slices.Equal(got, want) {
					t.Errorf("filter %q order %v view %d:\n got %s\nwant %s", fs, os, vt, strings.Join(got, ","), strings.Join(want, ","))
				}
			}
		}
	}
}

// TestSearchExperimentsMatchesInMemorySemantics does the same for
// search_experiments.
func TestSearchExperimentsMatchesInMemorySemantics(t *testing.T) {
	s := openCore(t)
	clock := int64(1000)
	s.now = func() int64 { clock += int64(clock % 3); return clock } // ties in creation_time
	names := []string{"alpha", "Alpha", "beta", "b_ta", "gam%ma", "Ärger", "ärger", "zeta", "x1", "x2", "x3", "x10"}
	for i, n := range names {
		var tags []tracking.Tag
		if i%3 != 0 {
			tags = []tracking.Tag{{Key: "team", Value: []string{"a", "B", "c"}[i%3]}}
		}
		id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: n, DefaultArtifactRoot: root, Tags: tags})
		ok(t, err)
		if i%4 == 0 {
			ok(t, s.RenameExperiment(bg, id, n+"-r"))
		}
		if i%5 == 0 {
			ok(t, s.DeleteExperiment(bg, id))
		}
	}
	all, err := s.SearchExperiments(bg, tracking.ExperimentQuery{ViewType: tracking.AllViews, MaxResults: 1000})
	ok(t, err)
	filters := []string{"", "name LIKE 'x%'", "name ILIKE 'ärger%'", "name != 'beta'", "tags.team = 'a'", "tags.team IS NULL",
		"tags.team ILIKE 'b'", "creation_time > 1003", "last_update_time <= 1010", "name LIKE '%\\%%'"}
	orders := [][]string{nil, {"name ASC"}, {"name DESC"}, {"creation_time ASC"}, {"last_update_time DESC", "name ASC"},
		{"experiment_id DESC"}, {"creation_time DESC", "experiment_id ASC"}}
	for _, fs := range filters {
		f, err := search.ParseExperimentFilter(fs)
		if err != nil {
			t.Fatalf("%q: %v", fs, err)
		}
		for _, os := range orders {
			ob, err := search.ParseExperimentOrderBy(os)
			ok(t, err)
			for _, vt := range []tracking.ViewType{tracking.ActiveOnly, tracking.DeletedOnly, tracking.AllViews} {
				var match []*tracking.Experiment
				for _, e := range all.Experiments {
					if vt.Includes(e.LifecycleStage) && search.MatchExperiment(f, memExp{e}) {
						match = append(match, e)
					}
				}
				slices.SortFunc(match, func(a, b *tracking.Experiment) int {
					return search.CompareExperiments(ob, memExp{a}, memExp{b})
				})
				var want, got []string
				for _, e := range match {
					want = append(want, e.ExperimentID)
				}
				token := ""
				for pages := 0; ; pages++ {
					p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: f, OrderBy: ob, ViewType: vt, MaxResults: 3, PageToken: token})
					if err != nil {
						t.Fatalf("filter %q order %v: %v", fs, os, err)
					}
					for _, e := range p.Experiments {
						got = append(got, e.ExperimentID)
					}
					if p.NextPageToken == "" || pages > 20 {
						break
					}
					token = p.NextPageToken
				}
				if !slices.Equal(got, want) {
					t.Errorf("filter %q order %v view %d:\n got %v\nwant %v", fs, os, vt, got, want)
				}
			}
		}
	}
}

// memExp is an experiment with its tags as a search.ExperimentView.
type memExp struct{ e *tracking.Experiment }

func (v memExp) ExperimentID() string  { return v.e.ExperimentID }
func (v memExp) Name() string          { return v.e.Name }
func (v memExp) CreationTime() int64   { return v.e.CreationTime }
func (v memExp) LastUpdateTime() int64 { return v.e.LastUpdateTime }
func (v memExp) Tag(key string) (string, bool) {
	for _, t := range v.e.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}
