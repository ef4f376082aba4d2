package pgstore

import (
	"context"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storetest"
)

// TestStoreSuite runs the backend-independent tracking.Store suite on a
// fresh database per test; Replica opens a second store with a pool of
// its own on the same database, as a second replica of the server would.
func TestStoreSuite(t *testing.T) {
	var mu sync.Mutex
	uris := map[tracking.Store]string{}
	open := func(t *testing.T, uri string) tracking.Store {
		s, err := Open(context.Background(), uri, pgdb.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		var st tracking.Store = s
		mu.Lock()
		uris[st] = uri
		mu.Unlock()
		return st
	}
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) tracking.Store { return open(t, pgtest.NewDatabase(t)) },
		Replica: func(t *testing.T, s tracking.Store) tracking.Store {
			mu.Lock()
			uri, ok := uris[s]
			mu.Unlock()
			if !ok {
				t.Fatal("Replica of a store the suite's Open did not make")
			}
			return open(t, uri)
		},
	})
}
