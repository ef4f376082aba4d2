// Package storetest is the backend-independent test suite of the
// tracking.Store contract (tracking/store.go, registry.go, loggedmodels.go,
// traces.go): every behaviour the MLflow REST handlers rely on that a
// backend must provide, checked only through the interface. Each backend
// (tracking/boltstore, tracking/pgstore) runs it from one test:
//
//	func TestStoreSuite(t *testing.T) {
//		storetest.Run(t, storetest.Factory{Open: ..., Replica: ...})
//	}
//
// The subtests are grouped by area ("Experiments", "Runs", "Params",
// "Metrics", "Search", "Keyset", "Registry", "LoggedModels", "Traces",
// "Spans", "Concurrency", "Import"), so a backend under construction can
// run a part with
// -run, e.g. -run 'TestStoreSuite/(Experiments|Runs)/'.
//
// Stores stamp times themselves, so no test depends on exact times: where
// an order by time matters, the test waits for the millisecond clock to
// move on (Tick) between writes, and creation times are checked against
// the wall-clock window of the call.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Factory makes stores of one backend for the suite.
type Factory struct {
	// Open returns a fresh, empty store (no experiments, no default
	// experiment yet) and arranges for it to be closed with t.Cleanup.
	// It is called once per leaf subtest (about 70 times); the suite
	// then calls EnsureDefaultExperiment(ctx, ArtifactRoot) on it.
	Open func(t *testing.T) tracking.Store
	// Replica returns a second handle on the data of s, as a second
	// replica of the server would have (its own connections, no memory
	// shared with s), closed with t.Cleanup. Nil for backends that allow
	// one handle only (bbolt); the concurrency tests then run all their
	// goroutines on s.
	Replica func(t *testing.T, s tracking.Store) tracking.Store
}

// ArtifactRoot is the default artifact root the suite's stores are set up
// with (experiment "0" gets ArtifactRoot + "0").
const ArtifactRoot = "mlflow-artifacts:/"

var bg = context.Background()

// Run runs the whole suite against the backend f makes stores of.
func Run(t *testing.T, f Factory) {
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	t.Run("Experiments", func(t *testing.T) { testExperiments(t, f) })
	t.Run("Runs", func(t *testing.T) { testRuns(t, f) })
	t.Run("Params", func(t *testing.T) { testParams(t, f) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(t, f) })
	t.Run("Search", func(t *testing.T) { testSearch(t, f) })
	t.Run("Keyset", func(t *testing.T) { testKeyset(t, f) })
	t.Run("Registry", func(t *testing.T) { testRegistry(t, f) })
	t.Run("LoggedModels", func(t *testing.T) { testLoggedModels(t, f) })
	t.Run("Traces", func(t *testing.T) { testTraces(t, f) })
	t.Run("Spans", func(t *testing.T) { testSpans(t, f) })
	t.Run("SpanFilters", func(t *testing.T) { testSpanFilters(t, f) })
	t.Run("TraceFilters", func(t *testing.T) { TraceFilters(t, f) })
	t.Run("TraceFiltersImport", func(t *testing.T) { testTraceFiltersImport(t, f) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, f) })
	t.Run("Import", func(t *testing.T) { testImport(t, f) })
}

// open returns a fresh store of f with the Default experiment created.
func open(t *testing.T, f Factory) tracking.Store {
	t.Helper()
	s := f.Open(t)
	if s == nil {
		t.Fatal("storetest: Factory.Open returned nil")
	}
	ok(t, s.EnsureDefaultExperiment(bg, ArtifactRoot))
	return s
}

// handles returns the handles the concurrency tests spread their
// goroutines over: s and, where the backend has replicas, a second one.
func handles(t *testing.T, f Factory, s tracking.Store) []tracking.Store {
	t.Helper()
	if f.Replica == nil {
		return []tracking.Store{s}
	}
	r := f.Replica(t, s)
	if r == nil {
		t.Fatal("storetest: Factory.Replica returned nil")
	}
	return []tracking.Store{s, r}
}

// Tick waits until the millisecond clock has moved on by at least two
// milliseconds, so that a store stamps the next write with a later time
// than the previous one.
func Tick() {
	start := time.Now().UnixMilli()
	for time.Now().UnixMilli() < start+2 {
		time.Sleep(500 * time.Microsecond)
	}
}

// clockSlack is how far a store's stamps may be off the test's clock (a
// database server may stamp with its own clock).
const clockSlack = 2000

// nowWindow returns a function that checks a stamp (ms) lies in the
// wall-clock window from nowWindow's call to its own, give or take
// clockSlack: a stamp in seconds, or zero, fails.
func nowWindow(t *testing.T) func(what string, ms int64) {
	t.Helper()
	before := time.Now().UnixMilli() - clockSlack
	return func(what string, ms int64) {
		t.Helper()
		after := time.Now().UnixMilli() + clockSlack
		if ms < before || ms > after {
			t.Fatalf("%s = %d, want within [%d, %d]", what, ms, before, after)
		}
	}
}
