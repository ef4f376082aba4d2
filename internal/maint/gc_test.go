package maint

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

var bg = context.Background()

func TestParseOlderThan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "8h": 8 * time.Hour, "2d8h5m20s": 56*time.Hour + 5*time.Minute + 20*time.Second,
		"2m4s": 2*time.Minute + 4*time.Second, "1.5h": 90 * time.Minute, "0.5s": 500 * time.Millisecond,
	} {
		got, err := ParseOlderThan(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "1w", "5h1d", "-1d", "d", "1d "} {
		_, err := ParseOlderThan(in)
		te, ok := tracking.AsError(err)
		if in == "d" { // MLflow's regex accepts "d" (an empty number) then float() fails
			if err == nil {
				t.Errorf("%q parsed", in)
			}
			continue
		}
		if !ok || te.Code != tracking.InvalidParameterValue || !strings.Contains(te.Message, "Could not parse any time information from '"+in+"'") {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

type fixture struct {
	s    *boltstore.Store
	arts *artifact.Local
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	s, err := boltstore.Open(filepath.Join(dir, "mlflow.db"), boltstore.Options{})
	must(t, err)
	t.Cleanup(func() { _ = s.Close() })
	must(t, s.EnsureDefaultExperiment(bg, "mlflow-artifacts:/"))
	arts, err := artifact.NewLocal(filepath.Join(dir, "artifacts"))
	must(t, err)
	return &fixture{s: s, arts: arts, dir: dir}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) exp(t *testing.T, name string) string {
	id, err := f.s.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: "mlflow-artifacts:/"})
	must(t, err)
	return id
}

// run creates a run with a param and an artifact file.
func (f *fixture) run(t *testing.T, exp string) string {
	r, err := f.s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, StartTime: 1})
	must(t, err)
	must(t, f.s.LogParam(bg, r.Info.RunID, tracking.Param{Key: "p", Value: "v"}))
	p, ok := artifact.URIPath(r.Info.ArtifactURI)
	if !ok {
		t.Fatalf("artifact uri %s", r.Info.ArtifactURI)
	}
	must(t, f.arts.Put(bg, p+"/model/weights.bin", strings.NewReader("w")))
	return r.Info.RunID
}

func (f *fixture) hasArtifacts(t *testing.T, runID string) bool {
	r, err := f.s.GetRun(bg, runID)
	must(t, err)
	p, _ := artifact.URIPath(r.Info.ArtifactURI)
	_, err = os.Stat(filepath.Join(f.dir, "artifacts", filepath.FromSlash(p), "model", "weights.bin"))
	return err == nil
}

func (f *fixture) exists(runID string) bool {
	_, err := f.s.GetRun(bg, runID)
	return err == nil
}

func (f *fixture) gc(opts GCOptions) (GCResult, string, error) {
	var out bytes.Buffer
	res, err := CollectGarbage(bg, f.s, StoreDeleter(f.arts, nil), opts, &out)
	return res, out.String(), err
}

func TestCollectGarbageAll(t *testing.T) {
	f := newFixture(t)
	e1, e2 := f.exp(t, "live"), f.exp(t, "doomed")
	alive, dead := f.run(t, e1), f.run(t, e1)
	inDoomed := f.run(t, e2)
	must(t, f.s.DeleteRun(bg, dead))
	must(t, f.s.DeleteExperiment(bg, e2))

	res, out, err := f.gc(GCOptions{})
	must(t, err)
	if len(res.Runs) != 2 || len(res.Experiments) != 1 || res.Experiments[0] != e2 {
		t.Fatalf("result %+v", res)
	}
	for _, line := range []string{"Run with ID " + dead + " has been permanently deleted.",
		"Run with ID " + inDoomed + " has been permanently deleted.",
		"Experiment with ID " + e2 + " has been permanently deleted."} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if f.exists(dead) || f.exists(inDoomed) {
		t.Fatal("deleted runs survived")
	}
	if !f.exists(alive) || !f.hasArtifacts(t, alive) {
		t.Fatal("the active run was touched")
	}
	for _, p := range []string{e1 + "/" + dead + "/artifacts", e2 + "/" + inDoomed + "/artifacts"} {
		if _, err := os.Stat(filepath.Join(f.dir, "artifacts", p)); !os.IsNotExist(err) {
			t.Fatalf("artifacts %s remain: %v", p, err)
		}
	}
	if _, err := f.s.GetExperiment(bg, e2); err == nil {
		t.Fatal("experiment survived")
	}
	// Nothing left: a second gc deletes nothing.
	res, _, err = f.gc(GCOptions{})
	must(t, err)
	if len(res.Runs)+len(res.Experiments) != 0 {
		t.Fatalf("second gc: %+v", res)
	}
}

func TestCollectGarbageSelection(t *testing.T) {
	f := newFixture(t)
	e1 := f.exp(t, "a")
	alive, d1, d2 := f.run(t, e1), f.run(t, e1), f.run(t, e1)
	must(t, f.s.DeleteRun(bg, d1))
	must(t, f.s.DeleteRun(bg, d2))
	e2, e3 := f.exp(t, "b"), f.exp(t, "c")
	must(t, f.s.DeleteExperiment(bg, e2))

	errCode := func(err error, code tracking.ErrorCode, msg string) {
		t.Helper()
		te, ok := tracking.AsError(err)
		if !ok || te.Code != code || !strings.Contains(te.Message, msg) {
			t.Fatalf("err = %v, want %s %q", err, code, msg)
		}
	}
	// An active run among --run-ids: error, and nothing deleted.
	_, _, err := f.gc(GCOptions{RunIDs: []string{d1, alive}})
	errCode(err, tracking.InvalidParameterValue, "Run "+alive+" is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.")
	if !f.exists(d1) || !f.hasArtifacts(t, d1) {
		t.Fatal("a failed gc deleted something")
	}
	_, _, err = f.gc(GCOptions{RunIDs: []string{"0123456789abcdef0123456789abcdef"}})
	errCode(err, tracking.ResourceDoesNotExist, "")
	// An active experiment among --experiment-ids.
	_, _, err = f.gc(GCOptions{ExperimentIDs: []string{e2, e3}})
	errCode(err, tracking.InvalidParameterValue, "Experiments ['"+e3+"'] are not in the deleted lifecycle stage.")
	_, _, err = f.gc(GCOptions{ExperimentIDs: []string{"999"}})
	errCode(err, tracking.ResourceDoesNotExist, "")
	// --older-than: just deleted is too young.
	_, _, err = f.gc(GCOptions{OlderThan: "1d", RunIDs: []string{d1}})
	errCode(err, tracking.InvalidParameterValue, "Run "+d1+" is not older than the required age. Only runs older than 1d can be deleted.")
	_, _, err = f.gc(GCOptions{OlderThan: "1d", ExperimentIDs: []string{e2}})
	errCode(err, tracking.InvalidParameterValue, "Experiments ['"+e2+"'] are not older than the required age.")
	res, _, err := f.gc(GCOptions{OlderThan: "1d"})
	must(t, err)
	if len(res.Runs)+len(res.Experiments) != 0 {
		t.Fatalf("too-young objects deleted: %+v", res)
	}
	_, _, err = f.gc(GCOptions{OlderThan: "1x"})
	errCode(err, tracking.InvalidParameterValue, "Could not parse any time information from '1x'")

	// --run-ids alone: just that run; experiments are still collected.
	res, _, err = f.gc(GCOptions{RunIDs: []string{d1}, ExperimentIDs: []string{e2}})
	must(t, err)
	if len(res.Runs) != 1 || res.Runs[0] != d1 || f.exists(d1) || !f.exists(d2) || f.hasArtifacts(t, d2) == false {
		t.Fatalf("--run-ids: %+v", res)
	}
	// Two days later, --older-than 1d takes the rest.
	res, _, err = f.gc(GCOptions{OlderThan: "1d", Now: func() time.Time { return time.Now().Add(48 * time.Hour) }})
	must(t, err)
	if len(res.Runs) != 1 || res.Runs[0] != d2 || f.exists(d2) || !f.exists(alive) {
		t.Fatalf("--older-than later: %+v", res)
	}
}

func TestCollectGarbageUnresolvableArtifacts(t *testing.T) {
	f := newFixture(t)
	e, err := f.s.CreateExperiment(bg, tracking.CreateExperiment{Name: "s3", ArtifactLocation: "s3://bucket/x"})
	must(t, err)
	r, err := f.s.CreateRun(bg, tracking.CreateRun{ExperimentID: e, StartTime: 1})
	must(t, err)
	must(t, f.s.DeleteRun(bg, r.Info.RunID))
	res, out, err := f.gc(GCOptions{})
	must(t, err)
	if len(res.Runs) != 1 || len(res.Warnings) != 1 || !strings.Contains(out, "left in place") {
		t.Fatalf("res %+v out %s", res, out)
	}
}

// TestCollectGarbageChurn: a create/log/delete/gc loop, as a busy server
// with a nightly gc sees. Every round's deleted runs are gone with their
// metadata and artifacts, the active runs made before the loop keep
// everything, and once bbolt's freed pages absorb the churn the file stops
// growing.
func TestCollectGarbageChurn(t *testing.T) {
	f := newFixture(t)
	exp := f.exp(t, "churn")
	path := filepath.Join(f.dir, "mlflow.db")
	points := func(n int) []tracking.Metric {
		ms := make([]tracking.Metric, n)
		for i := range ms {
			ms[i] = tracking.Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)}
		}
		return ms
	}
	var active []string
	for i := 0; i < 3; i++ {
		id := f.run(t, exp)
		must(t, f.s.LogBatch(bg, id, tracking.Batch{Metrics: points(500)}))
		active = append(active, id)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}
	round := func() []string {
		var doomed []string
		for j := 0; j < 3; j++ {
			id := f.run(t, exp)
			must(t, f.s.LogBatch(bg, id, tracking.Batch{Metrics: points(500)}))
			must(t, f.s.DeleteRun(bg, id))
			doomed = append(doomed, id)
		}
		res, _, err := f.gc(GCOptions{})
		must(t, err)
		if len(res.Runs) != len(doomed) {
			t.Fatalf("gc deleted %v, want %v", res.Runs, doomed)
		}
		return doomed
	}
	for i := 0; i < 10; i++ {
		round()
	}
	warm := size()
	var last []string
	for i := 0; i < 40; i++ {
		last = round()
	}
	if got := size(); got > warm {
		t.Fatalf("the file grew from %d to %d bytes under create/delete/gc churn: freed pages are not reused", warm, got)
	}
	for _, id := range last {
		if f.exists(id) {
			t.Fatalf("gc'd run %s is still there", id)
		}
	}
	// Only the active runs' artifacts are left (as with MLflow, a gc'd
	// run's location <run id>/artifacts goes, its empty parent stays).
	var left []string
	must(t, filepath.WalkDir(filepath.Join(f.dir, "artifacts", exp), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}))
	if len(left) != len(active) {
		t.Fatalf("artifact files left: %v, want only those of the active runs %v", left, active)
	}
	for _, id := range active {
		if !f.hasArtifacts(t, id) {
			t.Fatalf("active run %s lost its artifacts", id)
		}
		n := 0
		must(t, f.s.MetricHistory(bg, id, "loss", 1000, func(ms []tracking.Metric) error { n += len(ms); return nil }))
		if n != 500 {
			t.Fatalf("active run %s has %d metric points, want 500", id, n)
		}
	}
}
