package boltstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Schema migrations run when Open meets a database of an older layout.
// Each step moves data in bounded chunks, one transaction per chunk, so a
// large database never needs one huge transaction; every chunk is
// complete in itself (what it moved is gone from the old place), so a
// migration interrupted by a crash resumes where it stopped on the next
// Open. The version is raised only when a step has finished.

// migrateChunk is how many entries one migration transaction moves.
var migrateChunk = 10000

// migrations[v] upgrades a database at version v to v+1.
var migrations = map[int]func(db *bolt.DB) error{
	1: migrateV1,
	// Version 3 maintains the run indexes (bucket ridx) on every write, so
	// that a binary without them refuses the database instead of letting
	// the indexes go stale. The indexes themselves are built in the
	// background after Open (indexbuild.go).
	2: func(*bolt.DB) error { return nil },
	// Version 4 maintains the experiment and registry indexes (bucket
	// eidx) on every write, for the same reason; they are built in the
	// background after Open (entindex.go).
	3: func(*bolt.DB) error { return nil },
	// Version 5 packs the run index entries into front-coded blocks
	// (ixblock.go). An older run index (one key per entry) is dropped and
	// built again in the background after Open; searches scan until then.
	4: dropRunIndex,
	// Version 6 maintains the assessment value index (bucket
	// traceasmtval, traceassess.go) on every trace write, so that a
	// binary without it refuses the database instead of letting it go
	// stale; it is built in the background after Open (asmtValBuild),
	// equality clauses scanning their name until then.
	5: func(*bolt.DB) error { return nil },
}

// dropRunIndex empties bucket ridx and forgets the build's state, so that
// Open starts the background build from scratch.
func dropRunIndex(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bRunIdx) != nil {
			if err := tx.DeleteBucket(bRunIdx); err != nil {
				return fmt.Errorf("drop run index: %w", err)
			}
		}
		if _, err := tx.CreateBucket(bRunIdx); err != nil {
			return fmt.Errorf("create run index: %w", err)
		}
		meta := tx.Bucket(bMeta)
		if err := meta.Delete(metaIndexReady); err != nil {
			return err
		}
		return meta.Delete(metaIndexPos)
	})
}

// bHistV1 is the version-1 metric history bucket: rp(runID) | str(key) |
// ord(step) | ord(ts) | ord(value) | nan -> "".
var bHistV1 = []byte("hist")

// migrate brings the database from version from to schemaVersion.
func migrate(db *bolt.DB, from int) error {
	for v := from; v < schemaVersion; v++ {
		step, ok := migrations[v]
		if !ok {
			return fmt.Errorf("no migration from schema version %d", v)
		}
		if err := step(db); err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put([]byte("version"), u64(uint64(v+1)))
		}); err != nil {
			return fmt.Errorf("record schema version %d: %w", v+1, err)
		}
	}
	return nil
}

// migrateV1 re-keys metric history from (step, timestamp, value) to
// (timestamp, step, value) order, and moves logged models' metrics out of
// their records into one key per point.
func migrateV1(db *bolt.DB) error {
	if err := moveBucket(db, bHistV1, bHist, func(k []byte) ([]byte, error) {
		// The prefix (run, metric key) is everything before the point.
		if len(k) < pointLen {
			return nil, fmt.Errorf("corrupt history key %x", k)
		}
		cut := len(k) - pointLen
		step, ts, v, ok := readPoint(k[cut:])
		if !ok {
			return nil, fmt.Errorf("corrupt history key %x", k)
		}
		return appendHistPoint(bytes.Clone(k[:cut]), step, ts, v), nil
	}); err != nil {
		return err
	}
	return splitLoggedModelMetrics(db)
}

// moveBucket moves every entry of bucket from into bucket to under
// rekey(key), chunk by chunk, then drops from.
func moveBucket(db *bolt.DB, from, to []byte, rekey func(k []byte) ([]byte, error)) error {
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			src := tx.Bucket(from)
			if src == nil {
				done = true
				return nil
			}
			dst, err := tx.CreateBucketIfNotExists(to)
			if err != nil {
				return err
			}
			var keys [][]byte
			c := src.Cursor()
			for k, v := c.First(); k != nil && len(keys) < migrateChunk; k, v = c.Next() {
				nk, err := rekey(k)
				if err != nil {
					return err
				}
				if err := dst.Put(nk, bytes.Clone(v)); err != nil {
					return err
				}
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := src.Delete(k); err != nil {
					return err
				}
			}
			if len(keys) < migrateChunk {
				done = true
				return tx.DeleteBucket(from)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// splitLoggedModelMetrics moves the metrics a version-1 logged model
// record carries into bLMMetric, a chunk of models per transaction.
func splitLoggedModelMetrics(db *bolt.DB) error {
	var after []byte
	for {
		done := false
		err := db.Update(func(tx *bolt.Tx) error {
			models := tx.Bucket(bLoggedModel)
			metrics, err := tx.CreateBucketIfNotExists(bLMMetric)
			if err != nil {
				return err
			}
			c := models.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			var todo []*tracking.LoggedModel
			n := 0
			for ; k != nil && n < migrateChunk; k, v = c.Next() {
				after = bytes.Clone(k)
				var m tracking.LoggedModel
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("decode logged model %q: %w", k, err)
				}
				if len(m.Data.Metrics) == 0 {
					continue
				}
				for i := range m.Data.Metrics {
					p := &m.Data.Metrics[i]
					p.ModelID = m.Info.ModelID
					n++
					if err := metrics.Put(lmMetricKey(nil, p), []byte{}); err != nil {
						return err
					}
				}
				todo = append(todo, &m)
			}
			done = k == nil
			for _, m := range todo {
				if err := putLoggedModel(tx, m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}
