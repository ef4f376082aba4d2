package pgauth

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// sweepEvery is how often (per process) full buckets are deleted.
const sweepEvery = 10 * time.Minute

// throttle is the authstore.Throttle in gateway_throttle. Each call is
// one transaction that locks the rows of its buckets in key order (so two
// calls never deadlock), which makes Take all-or-nothing across replicas.
type throttle struct {
	pool *pgxpool.Pool

	mu        sync.Mutex
	lastSweep time.Time
}

// prepare sorts limits by key and drops repeated keys.
func prepare(limits []authstore.Limit) ([]authstore.Limit, error) {
	ls := slices.Clone(limits)
	for _, l := range ls {
		if l.Refill <= 0 || l.Burst <= 0 {
			return nil, errors.New("pgauth: throttle limit needs a positive burst and refill")
		}
	}
	slices.SortFunc(ls, func(a, b authstore.Limit) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(ls, func(a, b authstore.Limit) bool { return a.Key == b.Key }), nil
}

// update runs fn on the current levels (full for a bucket without a row)
// of limits' buckets, locked, and stores the levels it returns when it
// reports true. Rows are created only when fn stores.
func (t *throttle) update(ctx context.Context, now time.Time, limits []authstore.Limit,
	fn func(levels []float64) bool) (bool, error) {
	ls, err := prepare(limits)
	if err != nil || len(ls) == 0 {
		return err == nil, err
	}
	now = ts(now)
	keys := make([][]byte, len(ls))
	for i, l := range ls {
		keys[i] = []byte(l.Key)
	}
	stored := false
	err = pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		// Lock the keys in order, existing or not: a transaction-scoped
		// advisory lock per key, so two first attempts on a fresh bucket
		// cannot both find it full.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(encode(k, 'hex'), 7177)) FROM unnest($1::bytea[]) WITH ORDINALITY AS u(k, i) ORDER BY i`, keys); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT key, tokens, updated FROM gateway_throttle WHERE key = ANY($1)`, keys)
		if err != nil {
			return err
		}
		type row struct {
			tokens  float64
			updated time.Time
		}
		found := map[string]row{}
		for rows.Next() {
			var k []byte
			var r row
			if err := rows.Scan(&k, &r.tokens, &r.updated); err != nil {
				rows.Close()
				return err
			}
			found[string(k)] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		levels := make([]float64, len(ls))
		for i, l := range ls {
			levels[i] = l.Burst
			if r, ok := found[l.Key]; ok {
				levels[i] = level(l, r.tokens, r.updated, now)
			}
		}
		if !fn(levels) {
			return nil
		}
		stored = true
		for i, l := range ls {
			if _, err := tx.Exec(ctx, `INSERT INTO gateway_throttle (key, tokens, updated, burst, refill_us) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (key) DO UPDATE SET tokens = EXCLUDED.tokens, updated = EXCLUDED.updated,
				burst = EXCLUDED.burst, refill_us = EXCLUDED.refill_us`,
				keys[i], levels[i], now, l.Burst, max(1, l.Refill.Microseconds())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, wrap("sign-in throttle", err)
	}
	t.maybeSweep(ctx, now)
	return stored, nil
}

// level is l's bucket at now, refilled from tokens at last (a clock
// behind last refills nothing).
func level(l authstore.Limit, tokens float64, last, now time.Time) float64 {
	if el := now.Sub(last); el > 0 {
		tokens += float64(el) / float64(l.Refill)
	}
	return min(l.Burst, tokens)
}

// Take implements authstore.Throttle.
func (t *throttle) Take(ctx context.Context, now time.Time, limits ...authstore.Limit) (bool, error) {
	return t.update(ctx, now, limits, func(levels []float64) bool {
		for _, v := range levels {
			if v < 1 {
				return false
			}
		}
		for i := range levels {
			levels[i]--
		}
		return true
	})
}

// Give implements authstore.Throttle.
func (t *throttle) Give(ctx context.Context, now time.Time, limits ...authstore.Limit) error {
	ls, err := prepare(limits)
	if err != nil {
		return err
	}
	_, err = t.update(ctx, now, ls, func(levels []float64) bool {
		for i := range levels {
			levels[i] = min(ls[i].Burst, levels[i]+1)
		}
		return true
	})
	return err
}

// Forget implements authstore.Throttle.
func (t *throttle) Forget(ctx context.Context, keys ...string) error {
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	_, err := t.pool.Exec(ctx, `DELETE FROM gateway_throttle WHERE key = ANY($1)`, bs)
	return wrap("sign-in throttle", err)
}

// maybeSweep deletes the buckets that have refilled (they hold no state),
// at most every sweepEvery per process. A failure only delays the sweep.
func (t *throttle) maybeSweep(ctx context.Context, now time.Time) {
	t.mu.Lock()
	if now.Sub(t.lastSweep) < sweepEvery {
		t.mu.Unlock()
		return
	}
	t.lastSweep = now
	t.mu.Unlock()
	_, _ = t.pool.Exec(ctx, `DELETE FROM gateway_throttle
		WHERE tokens + GREATEST(0, extract(epoch FROM ($1 - updated)) * 1e6) / refill_us >= burst`, now)
}

// Len reports how many buckets are stored (tests).
func (t *throttle) Len(ctx context.Context) (int, error) {
	var n int
	err := t.pool.QueryRow(ctx, `SELECT count(*) FROM gateway_throttle`).Scan(&n)
	return n, err
}

var _ authstore.Throttle = (*throttle)(nil)
