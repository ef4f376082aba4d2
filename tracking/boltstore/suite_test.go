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
