package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
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
// follow) is found.
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

func lmOrdKey(expID uint64, created int64, id string) []byte {
	k := make([]byte, 0, 16+len(id))
	k = appendU64(k, expID)
	k = appendU64(k, ^ordInt(created))
	return append(k, id...)
}

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

// indexLMOrder reports whether keys order like the index: none, or
// creation time newest first (CompareLoggedModels then breaks ties by
// model_id alone, as in the default order).
func indexLMOrder(keys []search.LoggedModelOrder) bool {
	switch len(keys) {
	case 0:
		return true
	case 1:
		return keys[0].Attr() == "creation_timestamp" && keys[0].Metric() == "" && !keys[0].Ascending
	}
	return false
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

// less orders entries like the index: creation time DESC, then model_id.
func (e *lmEntry) less(o *lmEntry) bool {
	return e.created > o.created || (e.created == o.created && e.id < o.id)
}

func lmEntryOf(k []byte) lmEntry {
	return lmEntry{id: string(k[16:]), created: unordInt(^binary.BigEndian.Uint64(k[8:16]))}
}

func lmKeyIn(k, prefix []byte) bool { return len(k) >= 16 && bytes.HasPrefix(k, prefix) }

var _ search.LoggedModelView = (*lmEntry)(nil)

// lmKeyClause reports whether c can be decided from an index entry.
func lmKeyClause(c *search.Clause) bool {
	return c.Entity == search.EntityAttribute && (c.Key == "creation_timestamp" || c.Key == "model_id")
}

// searchLoggedModelsIndexed answers a search in the index order: it merges
// the experiments' ranges from the cursor's position, skips offset
// matches and returns up to limit more, then whether another follows.
func searchLoggedModelsIndexed(tx *bolt.Tx, expIDs []uint64, q *tracking.LoggedModelQuery, cur *search.Cursor,
	offset, limit int, needMetrics bool) ([]*tracking.LoggedModel, bool, error) {
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
	startTS, startID := hi, ""
	if v, ok := cur.Value("a.creation_timestamp"); ok && v.Int <= hi {
		id, _ := cur.Value("a.model_id")
		startTS, startID = v.Int, id.Str
	}
	type stream struct {
		c      *bolt.Cursor
		prefix []byte
		k      []byte
	}
	streams := make([]*stream, 0, len(expIDs))
	for _, exp := range expIDs {
		st := &stream{c: tx.Bucket(bLMOrd).Cursor(), prefix: u64(exp)}
		st.k, _ = st.c.Seek(lmOrdKey(exp, startTS, startID))
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
			if !lmKeyIn(st.k, st.prefix) {
				continue
			}
			e := lmEntryOf(st.k)
			if e.created < lo {
				st.k = nil // the rest of the range is older still
				continue
			}
			if best < 0 || e.less(&bestE) {
				best, bestE = i, e
			}
		}
		if best < 0 {
			return out, false, nil
		}
		streams[best].k, _ = streams[best].c.Next()
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
