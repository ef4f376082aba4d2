package pgstore

import (
	"context"
	"math"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// DefaultHistoryChunk is the chunk size MetricHistory uses when asked for
// a non-positive one.
const DefaultHistoryChunk = 1000

// MetricHistory implements tracking.Store. Points come in the order of the
// metrics primary key, (timestamp, step, value) with NaN right after 0:
// the ORDER BY of MLflow's SqlAlchemyStore.get_metric_history. Each chunk
// is one short query (its own implicit transaction) resuming after the
// last point delivered, a range scan of the primary key; fn runs with no
// query or transaction open. Points written while streaming show up if
// they sort after the resume point.
func (s *Store) MetricHistory(ctx context.Context, runID, key string, chunkSize int, fn func([]tracking.Metric) error) error {
	if chunkSize <= 0 {
		chunkSize = DefaultHistoryChunk
	}
	if !storable(runID) || !storable(key) {
		return nil // no such run or key can be stored
	}
	buf := make([]tracking.Metric, 0, min(chunkSize, 4096))
	// The position after which the next chunk starts.
	var ts, step int64
	var val float64
	var nan bool
	first := true
	for {
		buf = buf[:0]
		var sql string
		args := []any{runID, key, chunkSize}
		if first {
			sql = `SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = $1 AND key = $2
				ORDER BY run_uuid, key, timestamp, step, value, is_nan LIMIT $3`
		} else {
			// The equalities fix the index prefix and the row comparison
			// on the rest starts the index scan at the cursor (a row
			// comparison that repeats run_uuid and key is not used as a
			// start point, and every chunk read the history from its
			// start: quadratic).
			sql = `SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = $1 AND key = $2
				AND (timestamp, step, value, is_nan) > ($4, $5, $6, $7)
				ORDER BY run_uuid, key, timestamp, step, value, is_nan LIMIT $3`
			args = append(args, ts, step, val, nan)
		}
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return wrapErr("metric history", err)
		}
		for rows.Next() {
			if err := rows.Scan(&ts, &step, &val, &nan); err != nil {
				rows.Close()
				return wrapErr("metric history", err)
			}
			v := val
			if nan {
				v = math.NaN()
			}
			buf = append(buf, tracking.Metric{Key: key, Value: v, Timestamp: ts, Step: step})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrapErr("metric history", err)
		}
		first = false
		if len(buf) > 0 {
			if err := fn(buf); err != nil {
				return err
			}
		}
		if len(buf) < chunkSize {
			return nil
		}
	}
}
