package boltstore

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// The behaviour every tracking.Store shares is tested by the suite in
// tracking/storetest (suite_test.go); this file keeps what is particular
// to the bbolt store: its file, locking, reopening and key encodings.

var bg = context.Background()

const root = "mlflow-artifacts:/"

func openTest(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mlflow.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.EnsureDefaultExperiment(bg, root); err != nil {
		t.Fatal(err)
	}
	return s, path
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

func history(t *testing.T, s *Store, id, key string) []tracking.Metric {
	t.Helper()
	var out []tracking.Metric
	ok(t, s.MetricHistory(bg, id, key, 0, func(ms []tracking.Metric) error { out = append(out, ms...); return nil }))
	return out
}

func TestOpenReopenDurability(t *testing.T) {
	s, path := openTest(t)
	exp := mkExp(t, s, "e")
	run := mkRun(t, s, exp, "r", 5)
	ok(t, s.LogBatch(bg, run, tracking.Batch{
		Metrics: []tracking.Metric{{Key: "m", Value: 1.5, Timestamp: 10, Step: 2}},
		Params:  []tracking.Param{{Key: "p", Value: "v"}},
		Tags:    []tracking.Tag{{Key: "t", Value: "x"}},
	}))
	ok(t, s.Close())
	ok(t, s.Close()) // idempotent
	st, err := os.Stat(path)
	ok(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	s2, err := Open(path, Options{})
	ok(t, err)
	defer s2.Close()
	ok(t, s2.EnsureDefaultExperiment(bg, "other:/")) // no-op now
	r, err := s2.GetRun(bg, run)
	ok(t, err)
	if len(r.Data.Metrics) != 1 || r.Data.Metrics[0].Value != 1.5 || len(r.Data.Params) != 1 || tagMap(r.Data.Tags)["t"] != "x" {
		t.Fatalf("after reopen: %+v", r.Data)
	}
	d, err := s2.GetExperiment(bg, "0")
	ok(t, err)
	if d.ArtifactLocation != "mlflow-artifacts:/0" || d.Name != "Default" {
		t.Fatalf("default: %+v", d)
	}
	// The next experiment id continues after reopen.
	if id := mkExp(t, s2, "e2"); id != "2" {
		t.Fatalf("id %s", id)
	}
}

func TestOpenTimeout(t *testing.T) {
	_, path := openTest(t)
	start := time.Now()
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("second open of a locked file succeeded")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("timeout not applied")
	}
}

func TestOpenDBShared(t *testing.T) {
	db, err := OpenBolt(filepath.Join(t.TempDir(), "x.db"), Options{})
	ok(t, err)
	defer db.Close()
	s1, err := OpenDB(db)
	ok(t, err)
	ok(t, s1.EnsureDefaultExperiment(bg, root))
	exp := mkExp(t, s1, "shared")
	ok(t, s1.Close())
	s2, err := OpenDB(db) // e.g. after a config reload
	ok(t, err)
	defer s2.Close()
	if _, err := s2.GetExperiment(bg, exp); err != nil {
		t.Fatalf("db closed by non-owning store: %v", err)
	}
	if s2.DB() != db {
		t.Fatal("DB is not the shared handle")
	}
	if _, err := OpenDB(nil); err == nil {
		t.Fatal("nil db accepted")
	}
}

func TestEncodings(t *testing.T) {
	vals := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1)}
	for i := 1; i < len(vals); i++ {
		if ordFloat(vals[i-1]) >= ordFloat(vals[i]) {
			t.Fatalf("float order at %v", vals[i])
		}
		if unordFloat(ordFloat(vals[i])) != vals[i] {
			t.Fatalf("float round trip %v", vals[i])
		}
	}
	ints := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}
	for i := 1; i < len(ints); i++ {
		if ordInt(ints[i-1]) >= ordInt(ints[i]) || unordInt(ordInt(ints[i])) != ints[i] {
			t.Fatalf("int order at %v", ints[i])
		}
	}
	if _, _, _, ok := readPoint([]byte{1}); ok {
		t.Fatal("short point decoded")
	}
	if _, _, ok := readStr([]byte{0xff}); ok {
		t.Fatal("bad uvarint decoded")
	}
	if joinURI("mlflow-artifacts:/", "1") != "mlflow-artifacts:/1" || joinURI("s3://b/p", "r", "artifacts") != "s3://b/p/r/artifacts" ||
		joinURI("file:///", "0") != "file:///0" {
		t.Fatal("joinURI")
	}
}

func TestRegistryDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := Open(path, Options{})
	ok(t, err)
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m"})
	ok(t, err)
	_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b", StorageLocation: "s3://elsewhere"})
	ok(t, err)
	ok(t, s.Close())
	s, err = Open(path, Options{})
	ok(t, err)
	defer s.Close()
	mv, err := s.GetModelVersion(bg, "m", 1)
	ok(t, err)
	if mv.StorageLocation != "s3://elsewhere" || mv.Source != "s3://b" {
		t.Fatalf("reopened %+v", mv)
	}
}
