package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Logged model order index. Every logged model has one entry keyed
//
//	u64(expID) | ^ordInt(creation_timestamp_ms) | model_id -> ""
//
// so that an experiment's models are a contiguous range in the default
// search order (creation_timestamp DESC, then model_id ASC: MLflow's
// SqlAlchemyStore._apply_order_by_search_logged_models appends
// creation_timestamp_ms DESC, CompareLoggedModels adds model_id as the
// final tie-breaker). Neither part of the key ever changes after the model
// is created (finalize, tags and params only touch the record), so only
// create, delete, import and experiment purges maintain the entries, in
// the transaction that writes the model. A search in that order walks the
// range from the page token's position, decides creation_timestamp and
// model_id clauses from the key and decodes a record only for the other
// clauses, and stops once the page (plus one model, to know whether more
// follow) is found. creation_timestamp ASC (then model_id ASC, the same
// tie-break) walks the range backwards (ascOrdWalk).
//
// A database written before the index gets it built in the background
// after open (buildLMIndex), resumable at meta "lmixpos"; meta "lmix"
// marks it complete, and searches scan until then.
var (
	bLMOrd       = []byte("lmord")
	metaLMIdx    = []byte("lmix")
	metaLMIdxPos = []byte("lmixpos")
)

// useLMIndex lets tests compare indexed searches with full scans.
var useLMIndex = true

func init() { allBucket = append(allBucket, bLMOrd) }

func lmOrdKey(expID uint64, created int64, id string) []byte { return timeOrdKey(expID, created, id) }

// indexLoggedModel replaces the index entry of old (nil: none) by that of
// m (nil: the model was deleted).
func indexLoggedModel(tx *bolt.Tx, old, m *tracking.LoggedModel) error {
	b := tx.Bucket(bLMOrd)
	if old != nil {
		if exp, ok := parseExpID(old.Info.ExperimentID); ok {
			if err := b.Delete(lmOrdKey(exp, old.Info.CreationTimestampMs, old.Info.ModelID)); err != nil {
				return fmt.Errorf("unindex logged model %s: %w", old.Info.ModelID, err)
			}
		}
	}
	if m == nil {
		return nil
	}
	exp, ok := parseExpID(m.Info.ExperimentID)
	if !ok {
		return fmt.Errorf("index logged model %s: bad experiment id %q", m.Info.ModelID, m.Info.ExperimentID)
	}
	if err := b.Put(lmOrdKey(exp, m.Info.CreationTimestampMs, m.Info.ModelID), nil); err != nil {
		return fmt.Errorf("index logged model %s: %w", m.Info.ModelID, err)
	}
	return nil
}

// lmBuild is the logged model index's background build.
var lmBuild = keyedBuild{what: "logged model", records: bLoggedModel, ready: metaLMIdx, pos: metaLMIdxPos,
	index: func(tx *bolt.Tx, key []byte) error {
		m, err := getLoggedModelRecord(tx, string(key))
		if err != nil {
			return err
		}
		return indexLoggedModel(tx, nil, m)
	}}

// buildLMIndex runs lmBuild (see runKeyedBuild). Searches scan until the
// index is ready.
func (s *Store) buildLMIndex(ctx context.Context, maxChunks int) error {
	return s.runKeyedBuild(ctx, lmBuild, maxChunks)
}

// lmIndexReady reports whether searches may use the logged model index.
func lmIndexReady(tx *bolt.Tx) bool {
	return useLMIndex && tx.Bucket(bMeta).Get(metaLMIdx) != nil
}

// indexLMOrder reports whether keys order like the index walked forwards
// or backwards: none, or creation time either way (CompareLoggedModels
// then breaks ties by model_id ASC alone, as in the default order; the
// column is NOT NULL in MLflow, so no NULLs to place). asc is the
// direction.
func indexLMOrder(keys []search.LoggedModelOrder) (ok, asc bool) {
	switch len(keys) {
	case 0:
		return true, false
	case 1:
		return keys[0].Attr() == "creation_timestamp" && keys[0].Metric() == "", keys[0].Ascending
	}
	return false, false
}

// lmEntry is a logged model as its index entry knows it: creation time
// and id (and the experiment); other attributes read as empty.
type lmEntry struct {
	id      string
	created int64
}

// LoggedModelAttr answers model_id and creation_timestamp.
func (e *lmEntry) LoggedModelAttr(key string) (string, int64) {
	switch key {
	case "model_id":
		return e.id, 0
	case "creation_timestamp":
		return "", e.created
	}
	return "", 0
}

// Tag is not in the index entry.
func (e *lmEntry) Tag(string) (string, bool) { return "", false }

// Param is not in the index entry.
func (e *lmEntry) Param(string) (string, bool) { return "", false }

// MetricPoints are not in the index entry.
func (e *lmEntry) MetricPoints(string) []search.MetricPoint { return nil }

// HasDatasetMetric is not answered by the index entry.
func (e *lmEntry) HasDatasetMetric([]search.DatasetRef) bool { return false }

// less orders entries by creation time (DESC, or ASC when asc), then
// model_id.
func (e *lmEntry) less(o *lmEntry, asc bool) bool {
	if e.created != o.created {
		return (e.created < o.created) == asc
	}
	return e.id < o.id
}

func lmEntryOf(k []byte) lmEntry {
	return lmEntry{id: string(k[16:]), created: timeOrdTS(k)}
}

func lmKeyIn(k, prefix []byte) bool { return len(k) >= 16 && bytes.HasPrefix(k, prefix) }

var _ search.LoggedModelView = (*lmEntry)(nil)

// lmKeyClause reports whether c can be decided from an index entry.
func lmKeyClause(c *search.Clause) bool {
	return c.Entity == search.EntityAttribute && (c.Key == "creation_timestamp" || c.Key == "model_id")
}

// lmStream is one experiment's index range in the search order.
type lmStream struct {
	c      *bolt.Cursor // forwards (DESC)
	prefix []byte
	k      []byte
	asc    *ascOrdWalk // or backwards (ASC)
}

func (st *lmStream) head() []byte {
	if st.asc != nil {
		st.k, _ = st.asc.head()
	}
	return st.k
}

func (st *lmStream) next() {
	if st.asc != nil {
		st.asc.next()
		return
	}
	st.k, _ = st.c.Next()
}

// searchLoggedModelsIndexed answers a search in an index order (asc: the
// index walked backwards): it merges the experiments' ranges from the
// cursor's position, skips offset matches and returns up to limit more,
// then whether another follows.
func searchLoggedModelsIndexed(tx *bolt.Tx, expIDs []uint64, q *tracking.LoggedModelQuery, cur *search.Cursor,
	offset, limit int, asc, needMetrics bool) ([]*tracking.LoggedModel, bool, error) {
	var cheap, rest []search.Clause
	for i := range q.Filter {
		if lmKeyClause(&q.Filter[i]) {
			cheap = append(cheap, q.Filter[i])
		} else {
			rest = append(rest, q.Filter[i])
		}
	}
	lo, hi := attrBounds(cheap, "creation_timestamp")
	if lo > hi {
		return nil, false, nil
	}
	// Start at the cursor's position when it is inside [lo, hi].
	curV, hasCur := cur.Value("a.creation_timestamp")
	streams := make([]*lmStream, 0, len(expIDs))
	for _, exp := range expIDs {
		st := &lmStream{prefix: u64(exp)}
		if asc {
			from := lo
			if hasCur && curV.Int > from {
				from = curV.Int
			}
			st.asc = newAscOrdWalk(tx.Bucket(bLMOrd), exp, from, hi)
		} else {
			startTS, startID := hi, ""
			if hasCur && curV.Int <= hi {
				id, _ := cur.Value("a.model_id")
				startTS, startID = curV.Int, id.Str
			}
			st.c = tx.Bucket(bLMOrd).Cursor()
			st.k, _ = st.c.Seek(lmOrdKey(exp, startTS, startID))
		}
		streams = append(streams, st)
	}
	get := getLoggedModelRecord
	if needMetrics {
		get = getLoggedModel
	}
	var out []*tracking.LoggedModel
	matched := 0
	for {
		best := -1
		var bestE lmEntry
		for i, st := range streams {
			k := st.head()
			if !lmKeyIn(k, st.prefix) {
				continue
			}
			e := lmEntryOf(k)
			if !asc && e.created < lo {
				st.k = nil // the rest of the range is older still
				continue
			}
			if best < 0 || e.less(&bestE, asc) {
				best, bestE = i, e
			}
		}
		if best < 0 {
			return out, false, nil
		}
		streams[best].next()
		if !cur.AfterLoggedModel(q.OrderBy, &bestE) || !search.MatchLoggedModel(cheap, nil, &bestE) {
			continue
		}
		m, err := get(tx, bestE.id)
		if err != nil {
			return nil, false, err
		}
		if !search.MatchLoggedModel(rest, q.Datasets, m) {
			continue
		}
		if matched >= offset+limit {
			return out, true, nil
		}
		if matched >= offset {
			out = append(out, m)
		}
		matched++
	}
}
