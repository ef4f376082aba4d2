package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// DefaultHistoryChunk is the chunk size MetricHistory uses when asked for
// a non-positive one.
const DefaultHistoryChunk = 1000

// MetricHistory implements tracking.Store. Points come in key order, which
// is (timestamp, step, value) with NaN next to 0: the ORDER BY of MLflow's
// SqlAlchemyStore.get_metric_history. Each chunk is read in its
// own read transaction, resuming after the last key delivered; fn runs with
// no transaction open. Points written while streaming show up if they sort
// after the resume point.
func (s *Store) MetricHistory(ctx context.Context, runID, key string, chunkSize int, fn func([]tracking.Metric) error) error {
	if chunkSize <= 0 {
		chunkSize = DefaultHistoryChunk
	}
	prefix, ok := histPrefix(nil, runID, key)
	if !ok {
		return nil // such a run cannot exist
	}
	buf := make([]tracking.Metric, 0, min(chunkSize, 4096))
	var after []byte
	for {
		buf = buf[:0]
		more := false
		err := s.view(ctx, "metric history", func(tx *bolt.Tx) error {
			c := tx.Bucket(bHist).Cursor()
			var k []byte
			if after == nil {
				k, _ = c.Seek(prefix)
			} else {
				k, _ = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, _ = c.Next()
				}
			}
			var last []byte
			for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(buf) == chunkSize {
					more = true
					break
				}
				step, ts, v, ok := readHistPoint(k[len(prefix):])
				if !ok {
					return fmt.Errorf("corrupt history key %x", k)
				}
				buf = append(buf, tracking.Metric{Key: key, Value: v, Timestamp: ts, Step: step})
				last = k
			}
			if last != nil {
				after = append(after[:0], last...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(buf) > 0 {
			if err := fn(buf); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}
