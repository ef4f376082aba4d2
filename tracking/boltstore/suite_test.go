package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storetest"
)

// TestStoreSuite runs the backend-independent tracking.Store suite on a
// fresh bbolt file per test. A bbolt file has one handle only, so there
// is no Replica: the concurrency tests run all their goroutines on one
// store (through its group commit).
func TestStoreSuite(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) tracking.Store {
			s, err := Open(filepath.Join(t.TempDir(), "mlflow.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	})
}

// TestTraceFilterPaths runs the suite's MLflow 3 trace filter checks on
// each of the bbolt store's search paths: the traces an assessment clause
// found read directly (the suite's run, equalities seeking the value
// index), the order index walked with the assessment sets checked per
// entry, every assessment clause reading the entries of its name (the
// value index not ready), and the full scan with assessments read from
// the records (the indexes not ready).
func TestTraceFilterPaths(t *testing.T) {
	f := storetest.Factory{Open: func(t *testing.T) tracking.Store {
		s, err := Open(filepath.Join(t.TempDir(), "mlflow.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
	t.Run("OrderIndex", func(t *testing.T) {
		defer func(old func(int) int) { candidateScanMax = old }(candidateScanMax)
		candidateScanMax = func(int) int { return -1 }
		storetest.TraceFilters(t, f)
	})
	t.Run("NameScan", func(t *testing.T) {
		defer func(old bool) { useAsmtValIndex = old }(useAsmtValIndex)
		useAsmtValIndex = false
		storetest.TraceFilters(t, f)
	})
	t.Run("Scan", func(t *testing.T) {
		defer func(old bool) { useTraceIndex = old }(useTraceIndex)
		useTraceIndex = false
		storetest.TraceFilters(t, f)
	})
}

// TestTraceFilterLazyAssessments runs the suite's trace filter checks with
// every assessment clause looked up per trace (as for clauses matching
// more than asmtSetMax traces), on the order-index walks.
func TestTraceFilterLazyAssessments(t *testing.T) {
	defer func(old int) { asmtSetMax = old }(asmtSetMax)
	asmtSetMax = -1
	storetest.TraceFilters(t, storetest.Factory{Open: func(t *testing.T) tracking.Store {
		s, err := Open(filepath.Join(t.TempDir(), "mlflow.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}})
}
