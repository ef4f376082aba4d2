package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// DefaultOpenTimeout is how long Provision waits for the lock on the bbolt
// file when another process holds it.
const DefaultOpenTimeout = 5 * time.Second

// dbPool holds the open bbolt databases of this process, keyed by absolute
// file path. A config reload provisions the new handler before the old one
// is cleaned up, so both refer to the same entry and the database stays
// open; opening the file a second time instead would block on bbolt's file
// lock, which the old config still holds.
var dbPool = caddy.NewUsagePool()

// sharedDB is a pooled bbolt database. Destruct runs when the last handler
// using it is cleaned up.
type sharedDB struct {
	path string
	db   *bolt.DB
}

// Destruct closes the database. It implements caddy.Destructor.
func (s *sharedDB) Destruct() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing bbolt database %s: %w", s.path, err)
	}
	return nil
}

var _ caddy.Destructor = (*sharedDB)(nil)

// acquireDB returns the pooled database at the absolute path, opening it
// (and creating its parent directory) if this process has not yet. Every
// successful call must be matched by one releaseDB(path).
func acquireDB(path string, timeout time.Duration) (*sharedDB, error) {
	v, _, err := dbPool.LoadOrNew(path, func() (caddy.Destructor, error) {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("creating directory of backend store %s: %w", path, err)
		}
		db, err := boltstore.OpenBolt(path, boltstore.Options{Timeout: timeout})
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening backend store %s: timed out after %s waiting for its file lock; is another process (mlflow/caddy) using it?", path, timeout)
		}
		if err != nil {
			return nil, fmt.Errorf("opening backend store %s: %w", path, err)
		}
		return &sharedDB{path: path, db: db}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedDB), nil
}

// releaseDB drops one reference to the pooled database at path, closing it
// when it was the last one.
func releaseDB(path string) error {
	if _, err := dbPool.Delete(path); err != nil {
		return fmt.Errorf("releasing backend store %s: %w", path, err)
	}
	return nil
}

// dbReferences reports how many handlers hold the database at path (for
// tests).
func dbReferences(path string) int {
	n, _ := dbPool.References(path)
	return n
}
