package pgstore

import (
	"context"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

var bg = context.Background()

// openCore returns a store on a fresh database with the Default
// experiment, as the bbolt tests' openTest does.
func openCore(t testing.TB) *Store {
	t.Helper()
	s := openTest(t)
	if err := s.EnsureDefaultExperiment(bg, root); err != nil {
		t.Fatal(err)
	}
	return s
}

const root = "mlflow-artifacts:/"

func wantErr(t *testing.T, err error, code tracking.ErrorCode, msg string) {
	t.Helper()
	e, ok := tracking.AsError(err)
	if !ok {
		t.Fatalf("want %s error %q, got %v", code, msg, err)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, e.Code, e.Message)
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mkExp(t testing.TB, s *Store, name string) string {
	t.Helper()
	id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: root})
	ok(t, err)
	return id
}

func mkRun(t testing.TB, s *Store, exp, name string, start int64) string {
	t.Helper()
	r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "u", RunName: name, StartTime: start,
		Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}}})
	ok(t, err)
	return r.Info.RunID
}

func tagMap(tags []tracking.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func TestExperiments(t *testing.T) {
	s := openCore(t)
	var clock int64 = 1000
	s.now = func() int64 { clock++; return clock }

	id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "alpha", DefaultArtifactRoot: root,
		Tags: []tracking.Tag{{Key: "team", Value: "ml"}, {Key: "p", Value: "1"}}})
	ok(t, err)
	if id != "1" {
		t.Fatalf("first id %s", id)
	}
	id2, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "gamma", ArtifactLocation: "s3://b/p", DefaultArtifactRoot: root})
	ok(t, err)
	e, err := s.GetExperiment(bg, id)
	ok(t, err)
	if e.ArtifactLocation != "mlflow-artifacts:/1" || e.LifecycleStage != "active" || len(e.Tags) != 2 || e.CreationTime != e.LastUpdateTime {
		t.Fatalf("%+v", e)
	}
	e2, _ := s.GetExperiment(bg, id2)
	if e2.ArtifactLocation != "s3://b/p" {
		t.Fatalf("%+v", e2)
	}
	_, err = s.CreateExperiment(bg, tracking.CreateExperiment{Name: "alpha"})
	wantErr(t, err, tracking.ResourceAlreadyExists, "Experiment(name=alpha) already exists.")
	_, err = s.GetExperiment(bg, "999")
	wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=999 exists")
	_, err = s.GetExperiment(bg, "abc")
	wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=abc exists")
	_, err = s.GetExperimentByName(bg, "nope")
	wantErr(t, err, tracking.ResourceDoesNotExist, "Could not find experiment with name 'nope'")
	byName, err := s.GetExperimentByName(bg, "gamma")
	ok(t, err)
	if byName.ExperimentID != id2 {
		t.Fatal(byName)
	}

	// Tags: upsert, no last_update change; delete.
	ok(t, s.SetExperimentTag(bg, id, tracking.Tag{Key: "team", Value: "platform"}))
	e, _ = s.GetExperiment(bg, id)
	if tagMap(e.Tags)["team"] != "platform" || e.LastUpdateTime != e.CreationTime {
		t.Fatalf("%+v", e)
	}
	ok(t, s.DeleteExperimentTag(bg, id, "p"))
	wantErr(t, s.DeleteExperimentTag(bg, id, "p"), tracking.ResourceDoesNotExist, "No tag with name: p in experiment with id 1")
	wantErr(t, s.SetExperimentTag(bg, "77", tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "No Experiment with id=77 exists")

	// Rename.
	ok(t, s.RenameExperiment(bg, id, "alpha2"))
	e, _ = s.GetExperiment(bg, id)
	if e.Name != "alpha2" || e.LastUpdateTime <= e.CreationTime {
		t.Fatalf("%+v", e)
	}
	_, err = s.GetExperimentByName(bg, "alpha")
	wantErr(t, err, tracking.ResourceDoesNotExist, "")
	ok(t, s.RenameExperiment(bg, id, "alpha2")) // same name is fine
	wantErr(t, s.RenameExperiment(bg, id, "gamma"), tracking.BadRequest, "")
	mkExp(t, s, "alpha") // old name is free again

	// Delete / restore.
	before := e.LastUpdateTime
	ok(t, s.DeleteExperiment(bg, id2))
	e2, _ = s.GetExperiment(bg, id2)
	if e2.LifecycleStage != "deleted" || e2.LastUpdateTime <= before {
		t.Fatalf("%+v", e2)
	}
	byName, err = s.GetExperimentByName(bg, "gamma")
	ok(t, err)
	if byName.LifecycleStage != "deleted" {
		t.Fatal(byName)
	}
	_, err = s.CreateExperiment(bg, tracking.CreateExperiment{Name: "gamma"})
	wantErr(t, err, tracking.ResourceAlreadyExists, "")
	wantErr(t, s.DeleteExperiment(bg, id2), tracking.ResourceDoesNotExist, "No Experiment with id=2 exists")
	wantErr(t, s.RenameExperiment(bg, id2, "zzz"), tracking.InvalidState, "Cannot rename a non-active experiment.")
	wantErr(t, s.SetExperimentTag(bg, id2, tracking.Tag{Key: "k"}), tracking.InvalidParameterValue,
		"The experiment 2 must be in the 'active' state. Current state is deleted.")
	wantErr(t, s.DeleteExperimentTag(bg, id2, "k"), tracking.InvalidParameterValue, "")
	wantErr(t, s.RestoreExperiment(bg, id), tracking.ResourceDoesNotExist, "No Experiment with id=1 exists")
	ok(t, s.RestoreExperiment(bg, id2))
	e2, _ = s.GetExperiment(bg, id2)
	if e2.LifecycleStage != "active" {
		t.Fatal(e2)
	}
	wantErr(t, s.DeleteExperiment(bg, "x"), tracking.ResourceDoesNotExist, "No Experiment with id=x exists")
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRuns(t *testing.T) {
	s := openCore(t)
	exp := mkExp(t, s, "runs")
	r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "alice", RunName: "first", StartTime: 1700000000000,
		Tags: []tracking.Tag{{Key: "team", Value: "go"}}})
	ok(t, err)
	id := r.Info.RunID
	if !hex32.MatchString(id) || r.Info.RunUUID != id {
		t.Fatalf("run id %q", id)
	}
	if r.Info.ArtifactURI != "mlflow-artifacts:/1/"+id+"/artifacts" || r.Info.Status != "RUNNING" ||
		r.Info.LifecycleStage != "active" || r.Info.UserID != "alice" || r.Info.ExperimentID != "1" || r.Info.RunName != "first" {
		t.Fatalf("%+v", r.Info)
	}
	if m := tagMap(r.Data.Tags); m["mlflow.runName"] != "first" || m["team"] != "go" || len(m) != 2 {
		t.Fatalf("%+v", r.Data.Tags)
	}
	// Run name from the tag alone.
	r2, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: "from-tag"}}})
	ok(t, err)
	if r2.Info.RunName != "from-tag" {
		t.Fatal(r2.Info)
	}
	// Default experiment via empty id.
	r3, err := s.CreateRun(bg, tracking.CreateRun{RunName: "d"})
	ok(t, err)
	if r3.Info.ExperimentID != "0" || !strings.HasPrefix(r3.Info.ArtifactURI, "mlflow-artifacts:/0/") {
		t.Fatal(r3.Info)
	}

	_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: "999"})
	wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=999 exists")
	_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: "abc"})
	wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=abc exists")
	_, err = s.GetRun(bg, "00000000000000000000000000000000")
	wantErr(t, err, tracking.ResourceDoesNotExist, "Run with id=00000000000000000000000000000000 not found")
	_, err = s.GetRun(bg, "not-a-run")
	wantErr(t, err, tracking.ResourceDoesNotExist, "Run with id=not-a-run not found")

	// Update.
	st, et, nm := "FINISHED", int64(-5), "renamed"
	info, err := s.UpdateRun(bg, id, tracking.UpdateRun{Status: &st, EndTime: &et, RunName: &nm})
	ok(t, err)
	if info.Status != "FINISHED" || info.EndTime != -5 || info.RunName != "renamed" {
		t.Fatal(info)
	}
	empty := ""
	info, err = s.UpdateRun(bg, id, tracking.UpdateRun{RunName: &empty})
	ok(t, err)
	if info.RunName != "renamed" {
		t.Fatal(info)
	}
	got, _ := s.GetRun(bg, id)
	if tagMap(got.Data.Tags)["mlflow.runName"] != "renamed" || got.Info.EndTime != -5 {
		t.Fatal(got)
	}
	_, err = s.UpdateRun(bg, "00000000000000000000000000000000", tracking.UpdateRun{Status: &st})
	wantErr(t, err, tracking.ResourceDoesNotExist, "")

	// mlflow.runName tag renames the run; an empty value is ignored.
	ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.runName", Value: "by-tag"}}}))
	ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.runName", Value: ""}}}))
	got, _ = s.GetRun(bg, id)
	if got.Info.RunName != "by-tag" || tagMap(got.Data.Tags)["mlflow.runName"] != "by-tag" {
		t.Fatal(got.Info, got.Data.Tags)
	}

	// Tags: upsert and delete.
	ok(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "team", Value: "platform"}, {Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}))
	got, _ = s.GetRun(bg, id)
	if m := tagMap(got.Data.Tags); m["team"] != "platform" || m["k"] != "2" {
		t.Fatal(m)
	}
	ok(t, s.DeleteTag(bg, id, "k"))
	wantErr(t, s.DeleteTag(bg, id, "k"), tracking.ResourceDoesNotExist, "No tag with name: k in run with id "+id)
	wantErr(t, s.DeleteTag(bg, "00000000000000000000000000000000", "k"), tracking.ResourceDoesNotExist, "Run with id=00000000000000000000000000000000 not found")

	// Delete (twice) and writes to a deleted run.
	ok(t, s.DeleteRun(bg, id))
	ok(t, s.DeleteRun(bg, id))
	notActive := "The run " + id + " must be in the 'active' state. Current state is deleted."
	wantErr(t, s.LogParam(bg, id, tracking.Param{Key: "p", Value: "v"}), tracking.InvalidParameterValue, notActive)
	wantErr(t, s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "a"}}}), tracking.InvalidParameterValue, notActive)
	wantErr(t, s.LogBatch(bg, id, tracking.Batch{}), tracking.InvalidParameterValue, notActive)
	_, err = s.UpdateRun(bg, id, tracking.UpdateRun{Status: &st})
	wantErr(t, err, tracking.InvalidParameterValue, notActive)
	wantErr(t, s.DeleteTag(bg, id, "team"), tracking.InvalidParameterValue, notActive)
	wantErr(t, s.LogInputs(bg, id, nil, nil), tracking.InvalidParameterValue, notActive)
	wantErr(t, s.AppendModelHistory(bg, id, []byte(`{}`)), tracking.InvalidParameterValue, notActive)
	got, err = s.GetRun(bg, id)
	ok(t, err)
	if got.Info.LifecycleStage != "deleted" || got.Info.DeletedTime == 0 {
		t.Fatal(got.Info)
	}
	ok(t, s.RestoreRun(bg, id))
	ok(t, s.RestoreRun(bg, id)) // restoring an active run is fine
	got, _ = s.GetRun(bg, id)
	if got.Info.LifecycleStage != "active" || got.Info.DeletedTime != 0 {
		t.Fatal(got.Info)
	}
	wantErr(t, s.DeleteRun(bg, "00000000000000000000000000000000"), tracking.ResourceDoesNotExist, "")
	wantErr(t, s.RestoreRun(bg, "00000000000000000000000000000000"), tracking.ResourceDoesNotExist, "")

	// Runs cannot be created in a deleted experiment.
	ok(t, s.DeleteExperiment(bg, exp))
	_, err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp})
	wantErr(t, err, tracking.InvalidParameterValue, "The experiment 1 must be in the 'active' state. Current state is deleted.")
}

func lifecycle(t *testing.T, s *Store, id string) string {
	t.Helper()
	r, err := s.GetRun(bg, id)
	ok(t, err)
	return r.Info.LifecycleStage
}

func searchIDs(t *testing.T, s *Store, q tracking.RunQuery) ([]string, string) {
	t.Helper()
	p, err := s.SearchRuns(bg, q)
	ok(t, err)
	var ids []string
	for _, r := range p.Runs {
		ids = append(ids, r.Info.RunName)
	}
	return ids, p.NextPageToken
}

func TestCascade(t *testing.T) {
	s := openCore(t)
	e1, e2 := mkExp(t, s, "cascade"), mkExp(t, s, "other")
	c0, c1, c2 := mkRun(t, s, e1, "c0", 0), mkRun(t, s, e1, "c1", 1), mkRun(t, s, e1, "c2", 2)
	o := mkRun(t, s, e2, "o", 9)
	ok(t, s.DeleteRun(bg, c0))
	ok(t, s.DeleteExperiment(bg, e1))
	for _, id := range []string{c0, c1, c2} {
		if lifecycle(t, s, id) != "deleted" {
			t.Fatal("not cascaded")
		}
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.ActiveOnly}); len(ids) != 0 {
		t.Fatal(ids)
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.DeletedOnly}); strings.Join(ids, ",") != "c2,c1,c0" {
		t.Fatal(ids)
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1, e2}, ViewType: tracking.AllViews}); strings.Join(ids, ",") != "o,c2,c1,c0" {
		t.Fatal(ids)
	}
	wantErr(t, s.LogParam(bg, c1, tracking.Param{Key: "p", Value: "v"}), tracking.InvalidParameterValue,
		"The run "+c1+" must be in the 'active' state. Current state is deleted.")
	ok(t, s.RestoreRun(bg, c1)) // allowed while the experiment is deleted
	if lifecycle(t, s, c1) != "active" {
		t.Fatal()
	}
	ok(t, s.RestoreExperiment(bg, e1))
	for _, id := range []string{c0, c1, c2} {
		if lifecycle(t, s, id) != "active" {
			t.Fatal("individually deleted run not restored")
		}
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.DeletedOnly}); len(ids) != 0 {
		t.Fatal(ids)
	}
	// Unknown and empty experiment lists.
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{"999"}, ViewType: tracking.AllViews}); len(ids) != 0 {
		t.Fatal(ids)
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e2, "999", "abc", e2}, ViewType: tracking.AllViews}); strings.Join(ids, ",") != "o" {
		t.Fatal(ids)
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{}); len(ids) != 0 {
		t.Fatal(ids)
	}
	_ = o
}

func TestParams(t *testing.T) {
	s := openCore(t)
	id := mkRun(t, s, mkExp(t, s, "p"), "r", 0)
	ok(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.5"}))
	ok(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.5"}))
	ok(t, s.LogParam(bg, id, tracking.Param{Key: "empty", Value: ""}))
	wantErr(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.6"}), tracking.InvalidParameterValue,
		"Changing param values is not allowed. Param with key='alpha' was already logged with value='0.5' for run ID='"+id+"'. Attempted logging new value '0.6'.")
	wantErr(t, s.LogParam(bg, "00000000000000000000000000000000", tracking.Param{Key: "a"}), tracking.ResourceDoesNotExist, "")

	// A batch with a conflicting param writes nothing at all.
	err := s.LogBatch(bg, id, tracking.Batch{
		Params:  []tracking.Param{{Key: "new", Value: "1"}, {Key: "alpha", Value: "it's"}, {Key: "empty", Value: ""}},
		Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1}},
		Tags:    []tracking.Tag{{Key: "t", Value: "v"}, {Key: tracking.TagRunName, Value: "nope"}},
	})
	wantErr(t, err, tracking.InvalidParameterValue,
		`Changing param values is not allowed. Params were already logged='[{'key': 'alpha', 'old_value': '0.5', 'new_value': "it's"}]' for run ID='`+id+`'.`)
	r, _ := s.GetRun(bg, id)
	if len(r.Data.Params) != 2 || len(r.Data.Metrics) != 0 || tagMap(r.Data.Tags)["t"] != "" || r.Info.RunName != "r" {
		t.Fatalf("partial batch written: %+v %+v", r.Data, r.Info)
	}
	// Same values again are skipped; new ones are written.
	ok(t, s.LogBatch(bg, id, tracking.Batch{Params: []tracking.Param{{Key: "alpha", Value: "0.5"}, {Key: "new", Value: "1"}, {Key: "new", Value: "1"}}}))
	r, _ = s.GetRun(bg, id)
	if len(r.Data.Params) != 3 {
		t.Fatal(r.Data.Params)
	}
}

// Concurrent batches on one run: a conflicting one must fail alone with
// its own error (and write nothing), and the others must all be written.
func TestConcurrentBatchConflicts(t *testing.T) {
	s := openCore(t)
	exp := mkExp(t, s, "g")
	id := mkRun(t, s, exp, "r", 0)
	ok(t, s.LogParam(bg, id, tracking.Param{Key: "fixed", Value: "1"}))
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := tracking.Batch{
				Metrics: []tracking.Metric{{Key: "m", Value: float64(i), Timestamp: int64(i), Step: int64(i)}},
				Params:  []tracking.Param{{Key: "p" + itoa(i), Value: "v"}},
			}
			if i%4 == 0 {
				b.Params = append(b.Params, tracking.Param{Key: "fixed", Value: "2"})
			}
			errs[i] = s.LogBatch(bg, id, b)
		}(i)
	}
	wg.Wait()
	r, _ := s.GetRun(bg, id)
	params := map[string]bool{}
	for _, p := range r.Data.Params {
		params[p.Key] = true
	}
	var hist []tracking.Metric
	ok(t, s.MetricHistory(bg, id, "m", 7, func(ms []tracking.Metric) error { hist = append(hist, ms...); return nil }))
	steps := map[int64]bool{}
	for _, m := range hist {
		steps[m.Step] = true
	}
	for i := 0; i < n; i++ {
		if i%4 == 0 {
			wantErr(t, errs[i], tracking.InvalidParameterValue, "")
			if !strings.Contains(errs[i].Error(), "'key': 'fixed'") {
				t.Fatal(errs[i])
			}
			if params["p"+itoa(i)] || steps[int64(i)] {
				t.Fatalf("batch %d partially written", i)
			}
		} else {
			ok(t, errs[i])
			if !params["p"+itoa(i)] || !steps[int64(i)] {
				t.Fatalf("batch %d lost", i)
			}
		}
	}
	if r.Data.Metrics[0].Step != n-1 {
		t.Fatal(r.Data.Metrics)
	}
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Replace(string(rune('0'+i/10))+string(rune('0'+i%10)), "\x00", "", -1))
}

func latest(t *testing.T, s *Store, id, key string) tracking.Metric {
	t.Helper()
	r, err := s.GetRun(bg, id)
	ok(t, err)
	for _, m := range r.Data.Metrics {
		if m.Key == key {
			return m
		}
	}
	t.Fatalf("no metric %s", key)
	return tracking.Metric{}
}

func history(t *testing.T, s *Store, id, key string) []tracking.Metric {
	t.Helper()
	var out []tracking.Metric
	ok(t, s.MetricHistory(bg, id, key, 0, func(ms []tracking.Metric) error { out = append(out, ms...); return nil }))
	return out
}

func logM(t *testing.T, s *Store, id string, ms ...tracking.Metric) {
	t.Helper()
	ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: ms}))
}

func TestMetrics(t *testing.T) {
	s := openCore(t)
	id := mkRun(t, s, mkExp(t, s, "m"), "r", 0)
	m := func(k string, v float64, ts, step int64) tracking.Metric {
		return tracking.Metric{Key: k, Value: v, Timestamp: ts, Step: step}
	}
	// Latest = max (step, timestamp, value): a later timestamp at a lower step loses.
	logM(t, s, id, m("loss", 1, 100, 5))
	logM(t, s, id, m("loss", 9, 200, 4))
	if l := latest(t, s, id, "loss"); l.Value != 1 || l.Step != 5 {
		t.Fatal(l)
	}
	logM(t, s, id, m("loss", 0.5, 100, 5)) // same step+ts, smaller value loses
	logM(t, s, id, m("loss", 2, 100, 5))   // larger value wins
	if l := latest(t, s, id, "loss"); l.Value != 2 {
		t.Fatal(l)
	}
	// NaN counts as 0: it beats -1 but ties with (and does not replace) 0.
	logM(t, s, id, m("n", -1, 1, 0), m("n", math.NaN(), 1, 0))
	if l := latest(t, s, id, "n"); !math.IsNaN(l.Value) {
		t.Fatal(l)
	}
	logM(t, s, id, m("z", 0, 1, 0), m("z", math.NaN(), 1, 0))
	if l := latest(t, s, id, "z"); l.Value != 0 || math.IsNaN(l.Value) {
		t.Fatal(l)
	}
	// Infinities are clamped, -0 becomes 0.
	logM(t, s, id, m("inf", math.Inf(1), 1, 0), m("ninf", math.Inf(-1), 1, 0), m("negzero", math.Copysign(0, -1), 1, 0))
	if l := latest(t, s, id, "inf"); l.Value != math.MaxFloat64 {
		t.Fatal(l)
	}
	if l := latest(t, s, id, "ninf"); l.Value != -math.MaxFloat64 {
		t.Fatal(l)
	}
	if l := latest(t, s, id, "negzero"); math.Signbit(l.Value) {
		t.Fatal(l)
	}
	// Exact duplicates dedupe (NaN included); distinct values at one step stay.
	logM(t, s, id, m("dup", 3, 10, 5), m("dup", 3, 10, 5))
	logM(t, s, id, m("dup", 3, 10, 5), m("dup", math.NaN(), 10, 5), m("dup", math.NaN(), 10, 5), m("dup", 4, 10, 5))
	h := history(t, s, id, "dup")
	// NaN is stored as 0 plus a flag, so it sorts as 0.
	if len(h) != 3 || !math.IsNaN(h[0].Value) || h[1].Value != 3 || h[2].Value != 4 {
		t.Fatalf("dup history %+v", h)
	}
	// History order: (timestamp, step, value), as MLflow's SQL store
	// orders get_metric_history; negative steps before positive ones.
	logM(t, s, id, m("o", 1, 5, 2), m("o", 1, 1, -3), m("o", 2, 1, 2), m("o", 1, 1, 2), m("o", 7, 1, 1<<40), m("o", 9, -4, 7))
	h = history(t, s, id, "o")
	want := [][2]int64{{7, -4}, {-3, 1}, {2, 1}, {2, 1}, {1 << 40, 1}, {2, 5}}
	if len(h) != len(want) {
		t.Fatal(h)
	}
	for i, w := range want {
		if h[i].Step != w[0] || h[i].Timestamp != w[1] {
			t.Fatalf("order %+v", h)
		}
	}
	if h[2].Value != 1 || h[3].Value != 2 {
		t.Fatalf("value order %+v", h)
	}
	// The caller's slice is not modified by clamping.
	in := []tracking.Metric{m("c", math.Inf(1), 1, 0)}
	ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: in}))
	if !math.IsInf(in[0].Value, 1) {
		t.Fatal("input mutated")
	}
	// Unknown run / key: no chunks, no error.
	called := false
	ok(t, s.MetricHistory(bg, "00000000000000000000000000000000", "o", 10, func([]tracking.Metric) error { called = true; return nil }))
	ok(t, s.MetricHistory(bg, id, "missing", 10, func([]tracking.Metric) error { called = true; return nil }))
	ok(t, s.MetricHistory(bg, strings.Repeat("x", 300), "o", 10, func([]tracking.Metric) error { called = true; return nil }))
	if called {
		t.Fatal("fn called")
	}
	// Unknown run for logging.
	wantErr(t, s.LogBatch(bg, "00000000000000000000000000000000", tracking.Batch{Metrics: in}), tracking.ResourceDoesNotExist,
		"Run with id=00000000000000000000000000000000 not found")
}

func TestMetricHistoryStreaming(t *testing.T) {
	s := openCore(t)
	id := mkRun(t, s, mkExp(t, s, "h"), "r", 0)
	const n = 2500
	batch := make([]tracking.Metric, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, tracking.Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)})
		if len(batch) == 1000 {
			logM(t, s, id, batch...)
			batch = batch[:0]
		}
	}
	logM(t, s, id, batch...)

	// Concurrent writers append later steps while we stream; fn also writes
	// itself, which would deadlock or fail if a transaction were held.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				step := int64(n + w*100000 + i)
				if err := s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: "loss", Value: 1, Timestamp: 1 << 40, Step: step}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	var got []tracking.Metric
	chunks := 0
	err := s.MetricHistory(bg, id, "loss", 300, func(ms []tracking.Metric) error {
		chunks++
		if len(ms) > 300 {
			t.Errorf("chunk of %d", len(ms))
		}
		got = append(got, ms...)
		return s.LogBatch(bg, id, tracking.Batch{Tags: []tracking.Tag{{Key: "inside", Value: "fn"}}})
	})
	close(stop)
	wg.Wait()
	ok(t, err)
	if len(got) < n || chunks < n/300 {
		t.Fatalf("got %d points in %d chunks", len(got), chunks)
	}
	for i := 0; i < n; i++ {
		if got[i].Step != int64(i) || got[i].Value != float64(i) || got[i].Key != "loss" {
			t.Fatalf("point %d: %+v", i, got[i])
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Step <= got[i-1].Step {
			t.Fatalf("not strictly ordered at %d", i)
		}
	}
	// fn errors stop the stream and come back unchanged.
	sentinel := errors.New("stop")
	calls := 0
	err = s.MetricHistory(bg, id, "loss", 100, func([]tracking.Metric) error { calls++; return sentinel })
	if err != sentinel || calls != 1 {
		t.Fatal(err, calls)
	}
	// Exactly a multiple of the chunk size: no empty trailing chunk.
	id2 := mkRun(t, s, "1", "r2", 0)
	logM(t, s, id2, tracking.Metric{Key: "k", Step: 1}, tracking.Metric{Key: "k", Step: 2})
	calls = 0
	ok(t, s.MetricHistory(bg, id2, "k", 2, func(ms []tracking.Metric) error { calls++; return nil }))
	if calls != 1 {
		t.Fatal(calls)
	}
	// A key that extends another is not mixed in.
	logM(t, s, id2, tracking.Metric{Key: "kk", Step: 1})
	if h := history(t, s, id2, "k"); len(h) != 2 {
		t.Fatal(h)
	}
}

func TestInputsAndModelHistory(t *testing.T) {
	s := openCore(t)
	exp := mkExp(t, s, "in")
	a, b := mkRun(t, s, exp, "a", 0), mkRun(t, s, exp, "b", 1)
	train := tracking.Dataset{Name: "train", Digest: "abc123", SourceType: "s3", Source: `{"uri": "s3://b/train.csv"}`, Schema: "{}", Profile: "{}"}
	ok(t, s.LogInputs(bg, a, []tracking.DatasetInput{
		{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "training"}}, Dataset: train},
		{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "dup"}}, Dataset: train},
		{Dataset: tracking.Dataset{Name: "eval", Digest: "e1", SourceType: "code", Source: "{}"}},
	}, []tracking.ModelInput{{ModelID: "m-1"}, {ModelID: "m-1"}}))
	ok(t, s.LogInputs(bg, a, []tracking.DatasetInput{{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "again"}}, Dataset: train}}, nil))
	changed := train
	changed.Source = "other"
	ok(t, s.LogInputs(bg, b, []tracking.DatasetInput{{Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: "testing"}}, Dataset: changed}}, nil))
	ok(t, s.LogInputs(bg, b, nil, nil))
	wantErr(t, s.LogInputs(bg, "00000000000000000000000000000000", nil, nil), tracking.ResourceDoesNotExist, "")

	ra, _ := s.GetRun(bg, a)
	if len(ra.Inputs.DatasetInputs) != 2 || len(ra.Inputs.ModelInputs) != 1 || ra.Inputs.ModelInputs[0].ModelID != "m-1" {
		t.Fatalf("%+v", ra.Inputs)
	}
	for _, in := range ra.Inputs.DatasetInputs {
		if in.Dataset.Name == "train" && (tagMap(in.Tags)["mlflow.data.context"] != "training" || in.Dataset != train) {
			t.Fatalf("%+v", in)
		}
		if in.Dataset.Name == "eval" && len(in.Tags) != 0 {
			t.Fatalf("%+v", in)
		}
	}
	rb, _ := s.GetRun(bg, b)
	if len(rb.Inputs.DatasetInputs) != 1 || rb.Inputs.DatasetInputs[0].Dataset.Source != train.Source ||
		tagMap(rb.Inputs.DatasetInputs[0].Tags)["mlflow.data.context"] != "testing" {
		t.Fatalf("%+v", rb.Inputs)
	}
	// datasets.* filters see name, digest and context.
	f, err := search.ParseRunFilter("datasets.context = 'testing' AND datasets.name = 'train'")
	ok(t, err)
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f}); strings.Join(ids, ",") != "b" {
		t.Fatal(ids)
	}

	// Model history.
	m1 := `{"run_id": "x", "artifact_path": "model"}`
	m2 := `{"run_id": "x", "artifact_path": "raw-model"}`
	ok(t, s.AppendModelHistory(bg, a, []byte(m1)))
	ok(t, s.AppendModelHistory(bg, a, []byte(m2)))
	ra, _ = s.GetRun(bg, a)
	if v := tagMap(ra.Data.Tags)["mlflow.log-model.history"]; v != "["+m1+", "+m2+"]" {
		t.Fatalf("history tag %q", v)
	}
	wantErr(t, s.AppendModelHistory(bg, a, []byte("not json")), tracking.InvalidParameterValue, "")
	ok(t, s.LogBatch(bg, b, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.log-model.history", Value: "[]"}}}))
	ok(t, s.AppendModelHistory(bg, b, []byte(m1)))
	ok(t, s.LogBatch(bg, a, tracking.Batch{Tags: []tracking.Tag{{Key: "mlflow.log-model.history", Value: "garbage"}}}))
	wantErr(t, s.AppendModelHistory(bg, a, []byte(m1)), tracking.InvalidParameterValue, "")
	rb, _ = s.GetRun(bg, b)
	if v := tagMap(rb.Data.Tags)["mlflow.log-model.history"]; v != "["+m1+"]" {
		t.Fatalf("history tag %q", v)
	}
}

func TestSearchRuns(t *testing.T) {
	s := openCore(t)
	ea, eb := mkExp(t, s, "a"), mkExp(t, s, "b")
	// 12 runs alternating experiments; start times interleave.
	for i := 0; i < 12; i++ {
		exp := ea
		if i%2 == 1 {
			exp = eb
		}
		id := mkRun(t, s, exp, "r"+itoa(i), int64(1000+i))
		ms := []tracking.Metric{{Key: "score", Value: float64((i * 7) % 12), Timestamp: 1}}
		if i == 3 {
			ms[0].Value = math.NaN()
		}
		if i == 5 {
			ms = nil // no score at all
		}
		ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: ms, Params: []tracking.Param{{Key: "idx", Value: itoa(i)}}}))
	}
	both := []string{ea, eb}

	// Default order: start_time DESC across experiments, paged by 5.
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		ids, next := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, MaxResults: 5, PageToken: token})
		all = append(all, ids...)
		if next == "" {
			if pages != 2 || len(ids) != 2 {
				t.Fatalf("pages %d last %v", pages, ids)
			}
			break
		}
		token = next
	}
	if strings.Join(all, ",") != "r11,r10,r09,r08,r07,r06,r05,r04,r03,r02,r01,r00" {
		t.Fatal(all)
	}
	// Exactly one full page: a token (as MLflow's search_runs issues for
	// every full page), and the page after it is empty, without one.
	ids, next := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 6})
	if len(ids) != 6 || next == "" {
		t.Fatal(ids, next)
	}
	if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 6, PageToken: next}); len(ids) != 0 || next != "" {
		t.Fatal(ids, next)
	}
	// Filter + order_by metric DESC: NaN after numbers, missing excluded by the filter's inner join.
	f, err := search.ParseRunFilter("metrics.score >= 0")
	ok(t, err)
	ob, err := search.ParseRunOrderBy([]string{"metrics.score DESC"})
	ok(t, err)
	ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, OrderBy: ob, MaxResults: 4})
	if strings.Join(ids, ",") != "r10,r08,r01,r06" || next == "" {
		t.Fatal(ids, next)
	}
	ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, OrderBy: ob, MaxResults: 100, PageToken: next})
	if strings.Join(ids, ",") != "r11,r04,r09,r02,r07,r00,r03" || next != "" {
		t.Fatal(ids)
	}
	// Order by metric with missing values: missing last.
	ob, _ = search.ParseRunOrderBy([]string{"metrics.score ASC"})
	ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, OrderBy: ob, MaxResults: 100})
	if len(ids) != 12 || ids[11] != "r05" || ids[10] != "r03" {
		t.Fatal(ids)
	}
	// Param filter without order_by streams in default order.
	f, _ = search.ParseRunFilter("params.idx LIKE '1%'")
	ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1})
	if strings.Join(ids, ",") != "r11" || next == "" {
		t.Fatal(ids, next)
	}
	ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1, PageToken: next})
	if strings.Join(ids, ",") != "r10" || next == "" {
		t.Fatal(ids, next)
	}
	if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1, PageToken: next}); len(ids) != 0 || next != "" {
		t.Fatal(ids, next)
	}
	// Attribute filter and order by run_name.
	f, _ = search.ParseRunFilter("attributes.run_name = 'r04'")
	if ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f}); strings.Join(ids, ",") != "r04" {
		t.Fatal(ids)
	}
	ob, _ = search.ParseRunOrderBy([]string{"attributes.run_name ASC"})
	if ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{eb}, OrderBy: ob}); strings.Join(ids, ",") != "r01,r03,r05,r07,r09,r11" {
		t.Fatal(ids)
	}
	// Page beyond the end, bad tokens.
	if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, PageToken: search.EncodePageToken(50)}); len(ids) != 0 || next != "" {
		t.Fatal(ids)
	}
	_, err = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: both, PageToken: "!!!"})
	wantErr(t, err, tracking.InvalidParameterValue, "")
	_, err = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: both, PageToken: search.EncodePageToken(0)})
	wantErr(t, err, tracking.InvalidParameterValue, "")
	// Search results carry data.
	p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 1})
	ok(t, err)
	if len(p.Runs) != 1 || len(p.Runs[0].Data.Params) != 1 || len(p.Runs[0].Data.Metrics) != 1 || p.Runs[0].Info.ExperimentID != ea {
		t.Fatalf("%+v", p.Runs)
	}
}

func TestSearchExperiments(t *testing.T) {
	s := openCore(t)
	clock := time.Now().UnixMilli() + 1000
	s.now = func() int64 { clock += 10; return clock }
	for _, n := range []string{"Alpha", "alpha-2", "beta", "gamma"} {
		_, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: n, DefaultArtifactRoot: root, Tags: []tracking.Tag{{Key: "team", Value: n[:1]}}})
		ok(t, err)
	}
	ok(t, s.DeleteExperiment(bg, "4"))
	names := func(q tracking.ExperimentQuery) ([]string, string) {
		t.Helper()
		p, err := s.SearchExperiments(bg, q)
		ok(t, err)
		var out []string
		for _, e := range p.Experiments {
			out = append(out, e.Name)
		}
		return out, p.NextPageToken
	}
	// Default: creation_time DESC; Default (created first) last.
	if got, _ := names(tracking.ExperimentQuery{MaxResults: 100}); strings.Join(got, ",") != "beta,alpha-2,Alpha,Default" {
		t.Fatal(got)
	}
	if got, _ := names(tracking.ExperimentQuery{MaxResults: 100, ViewType: tracking.DeletedOnly}); strings.Join(got, ",") != "gamma" {
		t.Fatal(got)
	}
	if got, _ := names(tracking.ExperimentQuery{MaxResults: 100, ViewType: tracking.AllViews}); len(got) != 5 {
		t.Fatal(got)
	}
	f, err := search.ParseExperimentFilter("name ILIKE 'alpha%'")
	ok(t, err)
	ob, err := search.ParseExperimentOrderBy([]string{"name ASC"})
	ok(t, err)
	got, next := names(tracking.ExperimentQuery{Filter: f, OrderBy: ob, MaxResults: 1})
	if strings.Join(got, ",") != "Alpha" || next == "" {
		t.Fatal(got)
	}
	got, next = names(tracking.ExperimentQuery{Filter: f, OrderBy: ob, MaxResults: 1, PageToken: next})
	if strings.Join(got, ",") != "alpha-2" || next != "" {
		t.Fatal(got, next)
	}
	f, _ = search.ParseExperimentFilter("tags.team = 'b'")
	if got, _ = names(tracking.ExperimentQuery{Filter: f, MaxResults: 10}); strings.Join(got, ",") != "beta" {
		t.Fatal(got)
	}
	_, err = s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 10, PageToken: "bad"})
	wantErr(t, err, tracking.InvalidParameterValue, "")
}

func TestCanceledContext(t *testing.T) {
	s := openCore(t)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := s.GetExperiment(ctx, "0"); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := s.MetricHistory(ctx, "r", "k", 1, func([]tracking.Metric) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// Odd inputs must produce errors or empty results, never panics.
func TestOddInputs(t *testing.T) {
	s := openCore(t)
	long := strings.Repeat("a", 1000)
	for _, id := range []string{"", long, "\x00", "-1", "18446744073709551616", "+1"} {
		if _, err := s.GetRun(bg, id); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatalf("GetRun(%q): %v", id, err)
		}
		if id != "" {
			if _, err := s.GetExperiment(bg, id); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatalf("GetExperiment(%q): %v", id, err)
			}
		}
		_ = s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: long}}})
		_ = s.MetricHistory(bg, id, long, -5, func([]tracking.Metric) error { return nil })
		_, _ = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{id}, MaxResults: -1})
	}
	// Empty keys and values round-trip.
	run := mkRun(t, s, "0", "r", math.MinInt64)
	ok(t, s.LogBatch(bg, run, tracking.Batch{
		Metrics: []tracking.Metric{{Key: "", Value: math.NaN(), Timestamp: math.MinInt64, Step: math.MaxInt64}},
		Params:  []tracking.Param{{Key: "", Value: ""}},
		Tags:    []tracking.Tag{{Key: "", Value: ""}},
	}))
	r, err := s.GetRun(bg, run)
	ok(t, err)
	if len(r.Data.Metrics) != 1 || r.Data.Metrics[0].Step != math.MaxInt64 || r.Data.Metrics[0].Timestamp != math.MinInt64 {
		t.Fatal(r.Data.Metrics)
	}
	if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{"0"}}); len(ids) != 1 {
		t.Fatal(ids)
	}
}

func TestSearchRunAttributes(t *testing.T) {
	s := openCore(t)
	exp := mkExp(t, s, "attrs")
	a, b, c := mkRun(t, s, exp, "a", 10), mkRun(t, s, exp, "b", 20), mkRun(t, s, exp, "c", 30)
	fin, end := "FINISHED", int64(100)
	_, err := s.UpdateRun(bg, a, tracking.UpdateRun{Status: &fin, EndTime: &end})
	ok(t, err)
	end2 := int64(50)
	_, err = s.UpdateRun(bg, b, tracking.UpdateRun{EndTime: &end2})
	ok(t, err)
	q := func(filter string, order ...string) string {
		t.Helper()
		f, err := search.ParseRunFilter(filter)
		ok(t, err)
		ob, err := search.ParseRunOrderBy(order)
		ok(t, err)
		ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, ViewType: tracking.AllViews})
		return strings.Join(ids, ",")
	}
	for _, tc := range []struct{ got, want string }{
		{q("attributes.status = 'FINISHED'"), "a"},
		{q("attributes.end_time > 60"), "a"},
		{q("attributes.user_id = 'u' AND attributes.start_time >= 20"), "c,b"},
		{q("attributes.artifact_uri LIKE '%" + c + "%'"), "c"},
		{q("", "attributes.end_time DESC"), "a,b,c"},
		{q("", "attributes.start_time ASC"), "a,b,c"},
		{q("", "attributes.run_id ASC"), strings.Join(sortedNames(map[string]string{a: "a", b: "b", c: "c"}), ",")},
		{q("", "attributes.status DESC", "attributes.user_id ASC", "attributes.start_time DESC"), "c,b,a"},
		{q("run_id IN ('" + b + "')"), "b"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q want %q", tc.got, tc.want)
		}
	}
}

func sortedNames(byID map[string]string) []string {
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out
}
