package pgstore

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
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

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

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
