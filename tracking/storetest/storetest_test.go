package storetest_test

import (
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storetest"
)

// handle is a second handle on the same bbolt store, standing in for a
// replica: its Close leaves the store open for the first handle.
type handle struct{ tracking.Store }

func (handle) Close() error { return nil }

// TestSuiteWithReplica runs the suite's two-handle paths (the
// concurrency and keyset tests spread over Factory.Replica) on bbolt,
// which has no real replicas, so that they are exercised without a
// PostgreSQL server.
func TestSuiteWithReplica(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) tracking.Store {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "mlflow.db"), boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Replica: func(t *testing.T, s tracking.Store) tracking.Store { return handle{s} },
	})
}
