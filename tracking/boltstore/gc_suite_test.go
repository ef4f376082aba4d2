package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storetest"
)

// TestGCSuite runs the backend-independent tracking.GarbageCollector
// contract on bbolt.
func TestGCSuite(t *testing.T) {
	storetest.RunGC(t, storetest.Factory{
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
