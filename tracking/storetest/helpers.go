package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

const root = ArtifactRoot

// missingRun is a well-formed run id no store has.
const missingRun = "00000000000000000000000000000000"

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr asserts err is a *tracking.Error with code and, unless msg is
// empty, exactly the message msg.
func wantErr(t testing.TB, err error, code tracking.ErrorCode, msg string) {
	t.Helper()
	e, isErr := tracking.AsError(err)
	if !isErr {
		t.Fatalf("want %s error %q, got %v", code, msg, err)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("want %s %q, got %s %q", code, msg, e.Code, e.Message)
	}
}

// wantBadToken asserts err refuses a page token the way the handlers
// report as 400 INVALID_PARAMETER_VALUE: a *search.Error, or a
// *tracking.Error with that code, whose message starts "Invalid page token".
func wantBadToken(t testing.TB, what string, err error) {
	t.Helper()
	var se *search.Error
	msg := ""
	switch e, isErr := tracking.AsError(err); {
	case errors.As(err, &se):
		msg = se.Message
	case isErr && e.Code == tracking.InvalidParameterValue:
		msg = e.Message
	default:
		t.Fatalf("%s: got %v, want INVALID_PARAMETER_VALUE Invalid page token", what, err)
	}
	if !strings.HasPrefix(msg, "Invalid page token") {
		t.Fatalf("%s: message %q, want Invalid page token...", what, msg)
	}
}

func mkExp(t testing.TB, s tracking.Store, name string) string {
	t.Helper()
	id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: root})
	ok(t, err)
	return id
}

func mkRun(t testing.TB, s tracking.Store, exp, name string, start int64) string {
	t.Helper()
	r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "u", RunName: name, StartTime: start,
		Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}}})
	ok(t, err)
	return r.Info.RunID
}

func mkModel(t testing.TB, s tracking.Store, name string, tags ...tracking.Tag) {
	t.Helper()
	_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: name, Tags: tags})
	ok(t, err)
}

func tagMap(tags []tracking.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func lifecycle(t testing.TB, s tracking.Store, id string) string {
	t.Helper()
	r, err := s.GetRun(bg, id)
	ok(t, err)
	return r.Info.LifecycleStage
}

// searchIDs runs a search and returns the names of the runs found.
func searchIDs(t testing.TB, s tracking.Store, q tracking.RunQuery) ([]string, string) {
	t.Helper()
	p, err := s.SearchRuns(bg, q)
	ok(t, err)
	var ids []string
	for _, r := range p.Runs {
		ids = append(ids, r.Info.RunName)
	}
	return ids, p.NextPageToken
}

// allRuns returns the names of every run of a search, following pages.
func allRuns(t testing.TB, s tracking.Store, q tracking.RunQuery) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		ids, next := searchIDs(t, s, q)
		out = append(out, ids...)
		if next == "" {
			return out
		}
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		q.PageToken = next
	}
}

func itoa(i int) string { return fmt.Sprintf("%02d", i) }

func latest(t testing.TB, s tracking.Store, id, key string) tracking.Metric {
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

func history(t testing.TB, s tracking.Store, id, key string) []tracking.Metric {
	t.Helper()
	var out []tracking.Metric
	ok(t, s.MetricHistory(bg, id, key, 0, func(ms []tracking.Metric) error { out = append(out, ms...); return nil }))
	return out
}

func logM(t testing.TB, s tracking.Store, id string, ms ...tracking.Metric) {
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

func versionsOf(mvs []*tracking.ModelVersion) []string {
	out := make([]string, len(mvs))
	for i, mv := range mvs {
		out[i] = mv.Name + "/" + mv.Version + ":" + mv.CurrentStage
	}
	return out
}

func lmNames(p tracking.LoggedModelPage) string {
	var out []string
	for _, m := range p.Models {
		out = append(out, m.Info.Name)
	}
	return strings.Join(out, ",")
}
