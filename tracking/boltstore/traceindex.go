package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Trace order index. Every trace has one entry keyed
//
//	u64(expID) | ^ordInt(timestamp_ms) | request_id -> ordInt(execution_time_ms) | status
//
// so that an experiment's traces are a contiguous range in the default
// search order (timestamp_ms DESC, then request_id ASC, MLflow's
// tie-breakers), and the value answers clauses on timestamp, execution
// time, end time, status and request id without decoding the record. A
// search in the default order walks the range from the page token's
// position and stops once the page is full.
//
// Writers maintain the entries in the transaction that writes the trace
// (indexTrace). A database written before the index gets it built in the
// background after open (buildTraceIndex); meta "trix" marks it complete,
// and searches scan until then.
var (
	bTraceOrd     = []byte("traceord")
	metaTraceIdx  = []byte("trix")
	traceOrdValue = 8
)

// useTraceIndex lets tests compare indexed searches with full scans.
var useTraceIndex = true

func init() { allBucket = append(allBucket, bTraceOrd) }

func traceOrdKey(expID uint64, ts int64, id string) []byte { return timeOrdKey(expID, ts, id) }

func traceOrdVal(t *tracking.TraceInfo) []byte {
	v := make([]byte, 0, traceOrdValue+len(t.Status))
	v = appendU64(v, ordInt(t.ExecutionTimeMs))
	return append(v, t.Status...)
}

// indexTrace replaces the index entries of old (nil: none) by those of t
// (nil: the trace was deleted): the order entry, and the assessment and
// session entries (traceassess.go). Both must be in the experiment they
// name; old must not share memory t was changed through (traceIndexCopy).
func indexTrace(tx *bolt.Tx, old, t *tracking.TraceInfo) error {
	if err := indexTraceAssessments(tx, old, t); err != nil {
		return fmt.Errorf("index trace %s: %w", firstID(old, t), err)
	}
	b := tx.Bucket(bTraceOrd)
	if old != nil {
		exp, ok := parseExpID(old.ExperimentID)
		if ok {
			if err := b.Delete(traceOrdKey(exp, old.TimestampMs, old.RequestID)); err != nil {
				return fmt.Errorf("unindex trace %s: %w", old.RequestID, err)
			}
		}
	}
	if t == nil {
		return nil
	}
	exp, ok := parseExpID(t.ExperimentID)
	if !ok {
		return fmt.Errorf("index trace %s: bad experiment id %q", t.RequestID, t.ExperimentID)
	}
	if err := b.Put(traceOrdKey(exp, t.TimestampMs, t.RequestID), traceOrdVal(t)); err != nil {
		return fmt.Errorf("index trace %s: %w", t.RequestID, err)
	}
	return nil
}

func firstID(a, b *tracking.TraceInfo) string {
	if a != nil {
		return a.RequestID
	}
	return b.RequestID
}

// traceIndexCopy copies what indexTrace reads of a trace; writers that
// change a trace in place keep a copy of it before the change.
func traceIndexCopy(t *tracking.TraceInfo) *tracking.TraceInfo {
	return &tracking.TraceInfo{RequestID: t.RequestID, ExperimentID: t.ExperimentID,
		TimestampMs: t.TimestampMs, ExecutionTimeMs: t.ExecutionTimeMs, Status: t.Status,
		RequestMetadata: slices.Clone(t.RequestMetadata), Assessments: slices.Clone(t.Assessments)}
}

// metaTraceIdxPos is the trace id the background build has indexed up to.
var metaTraceIdxPos = []byte("trixpos")

// traceBuild is the trace index's background build.
var traceBuild = keyedBuild{what: "trace", records: bTrace, ready: metaTraceIdx, pos: metaTraceIdxPos,
	index: func(tx *bolt.Tx, key []byte) error {
		t, err := getTrace(tx, string(key))
		if err != nil {
			return err
		}
		return indexTrace(tx, nil, t)
	}}

// buildTraceIndex runs traceBuild (see runKeyedBuild). Searches scan
// until the index is ready.
func (s *Store) buildTraceIndex(ctx context.Context, maxChunks int) error {
	return s.runKeyedBuild(ctx, traceBuild, maxChunks)
}

// indexTraceOrder reports whether keys order like the index, forwards
// (none, or timestamp_ms DESC) or backwards (timestamp_ms ASC), either
// optionally followed by request_id ASC, the tie-breaker CompareTraces
// adds.
func indexTraceOrder(keys []search.OrderKey) (ok, asc bool) {
	if len(keys) == 0 {
		return true, false
	}
	if len(keys) > 2 {
		return false, false
	}
	k := keys[0]
	if k.Entity != search.EntityAttribute || k.Key != "timestamp_ms" {
		return false, false
	}
	if len(keys) == 2 {
		k2 := keys[1]
		if k2.Entity != search.EntityAttribute || k2.Key != "request_id" || !k2.Asc {
			return false, false
		}
	}
	return true, k.Asc
}

// indexOnlyClause reports whether c can be decided from an index entry.
func indexOnlyClause(c *search.Clause) bool {
	if c.Entity != search.EntityAttribute {
		return false
	}
	switch c.Key {
	case "timestamp_ms", "execution_time_ms", "end_time_ms", "status", "request_id":
		return true
	}
	return false
}

// attrBounds narrows the range [lo, hi] of the integer attribute key
// (a timestamp) from the filter's clauses on it, to seek and stop in an
// order index. The matcher still checks every entry, so the bounds only
// need to be conservative: only whole numbers well inside int64 tighten
// them.
func attrBounds(clauses []search.Clause, key string) (lo, hi int64) {
	lo, hi = -1<<63, 1<<63-1
	for i := range clauses {
		c := &clauses[i]
		if c.Entity != search.EntityAttribute || c.Key != key ||
			c.Num != float64(int64(c.Num)) || c.Num > 9e18 || c.Num < -9e18 {
			continue
		}
		n := int64(c.Num)
		switch c.Op {
		case search.OpEq:
			lo, hi = max(lo, n), min(hi, n)
		case search.OpGt:
			lo = max(lo, n+1)
		case search.OpGe:
			lo = max(lo, n)
		case search.OpLt:
			hi = min(hi, n-1)
		case search.OpLe:
			hi = min(hi, n)
		}
	}
	return lo, hi
}

// traceOrdCursor walks one experiment's index range in order.
type traceOrdCursor struct {
	c      *bolt.Cursor
	prefix []byte
	k, v   []byte
	lo     int64
}

func (oc *traceOrdCursor) valid() bool {
	if oc.k == nil || len(oc.k) < 16 || !bytes.HasPrefix(oc.k, oc.prefix) {
		return false
	}
	return unordInt(^binary.BigEndian.Uint64(oc.k[8:16])) >= oc.lo
}

// entry decodes the current index entry into a trace holding only the
// indexed fields.
func (oc *traceOrdCursor) entry(expStr string) (*tracking.TraceInfo, bool) {
	if len(oc.v) < traceOrdValue {
		return nil, false
	}
	return &tracking.TraceInfo{
		RequestID:       string(oc.k[16:]),
		ExperimentID:    expStr,
		TimestampMs:     unordInt(^binary.BigEndian.Uint64(oc.k[8:16])),
		ExecutionTimeMs: unordInt(binary.BigEndian.Uint64(oc.v[:8])),
		Status:          string(oc.v[8:]),
	}, true
}

// traceStream yields one experiment's index entries in the search
// order.
type traceStream interface {
	// head is the current entry, nil at the end.
	head() (*tracking.TraceInfo, error)
	next()
}

// descStream walks forwards: timestamp DESC, request_id ASC.
type descStream struct {
	oc  *traceOrdCursor
	exp string
}

func (d *descStream) head() (*tracking.TraceInfo, error) {
	if !d.oc.valid() {
		return nil, nil
	}
	e, ok := d.oc.entry(d.exp)
	if !ok {
		return nil, fmt.Errorf("trace index entry %x: short value", d.oc.k)
	}
	return e, nil
}

func (d *descStream) next() { d.oc.k, d.oc.v = d.oc.c.Next() }

// ascStream walks an experiment's entries timestamp ASC, request_id ASC
// (ascOrdWalk), decoding each once.
type ascStream struct {
	w   *ascOrdWalk
	exp string
	cur *tracking.TraceInfo
}

func (a *ascStream) head() (*tracking.TraceInfo, error) {
	if a.cur != nil {
		return a.cur, nil
	}
	k, v := a.w.head()
	if k == nil {
		return nil, nil
	}
	oc := traceOrdCursor{k: k, v: v}
	e, ok := oc.entry(a.exp)
	if !ok {
		return nil, fmt.Errorf("trace index entry %x: short value", k)
	}
	a.cur = e
	return e, nil
}

func (a *ascStream) next() {
	a.w.next()
	a.cur = nil
}

// newAscStream positions an ascending walk at the first entry of exp
// whose timestamp is at least from.
func newAscStream(tx *bolt.Tx, exp uint64, from, hi int64) *ascStream {
	return &ascStream{w: newAscOrdWalk(tx.Bucket(bTraceOrd), exp, from, hi), exp: fmtExpID(exp)}
}

// searchTracesIndexed answers a search in an index order from the index:
// it merges the experiments' ranges, checks the clauses the entries
// answer first, then the assessment clauses (af) and the span clauses
// (the span store), decodes a record only for the rest, and stops at
// limit.
func searchTracesIndexed(tx *bolt.Tx, expIDs []uint64, q tracking.TraceQuery, cur *search.Cursor, limit int, asc bool, af *asmtFilter) ([]*tracking.TraceInfo, error) {
	cheap, rest := splitIndexClauses(q.Filter)
	spanClauses := search.SpanClauses(rest)
	lo, hi := attrBounds(q.Filter, "timestamp_ms")
	if lo > hi {
		return nil, nil
	}
	// Start at the cursor's position when it is inside [lo, hi].
	after, hasAfter := cur.AfterTraceView()
	var curTS int64
	curID := ""
	if hasAfter {
		_, curTS = after.TraceAttr("timestamp_ms")
		curID, _ = after.TraceAttr("request_id")
	}
	streams := make([]traceStream, 0, len(expIDs))
	for _, exp := range expIDs {
		if asc {
			from := lo
			if hasAfter && curTS > from {
				from = curTS
			}
			streams = append(streams, newAscStream(tx, exp, from, hi))
			continue
		}
		startTS, startID := hi, ""
		if hasAfter {
			if curTS < startTS {
				startTS, startID = curTS, curID
			} else if curTS == startTS {
				startID = curID
			}
		}
		oc := &traceOrdCursor{c: tx.Bucket(bTraceOrd).Cursor(), prefix: u64(exp), lo: lo}
		oc.k, oc.v = oc.c.Seek(traceOrdKey(exp, startTS, startID))
		streams = append(streams, &descStream{oc: oc, exp: fmtExpID(exp)})
	}
	heads := make([]*tracking.TraceInfo, len(streams))
	var out []*tracking.TraceInfo
	for len(out) < limit {
		best := -1
		for i, st := range streams {
			h, err := st.head()
			if err != nil {
				return nil, err
			}
			heads[i] = h
			if h != nil && (best < 0 || search.CompareTraces(q.OrderBy, h, heads[best]) < 0) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		e := heads[best]
		streams[best].next()
		if !search.MatchTrace(cheap, e) || !cur.AfterTrace(q.OrderBy, e) {
			continue
		}
		t, err := matchEntry(tx, e.RequestID, af, spanClauses, rest)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// entryOrder reports whether every order key is a trace attribute the
// index entries hold (any direction): such a search sorts the matching
// entries and decodes records only for the page.
func entryOrder(keys []search.OrderKey) bool {
	for _, k := range keys {
		if k.Entity != search.EntityAttribute {
			return false
		}
		switch k.Key {
		case "timestamp_ms", "execution_time_ms", "end_time_ms", "status", "request_id", "experiment_id":
		default:
			return false
		}
	}
	return true
}

// searchTracesByEntries answers a search ordered by execution time, end
// time, status or the like from the index: it collects the entries that
// pass the clauses the entries answer, sorts them, then checks the
// assessment clauses and spans and decodes records in that order until
// the page is full.
func searchTracesByEntries(tx *bolt.Tx, expIDs []uint64, q tracking.TraceQuery, cur *search.Cursor, limit int, af *asmtFilter) ([]*tracking.TraceInfo, error) {
	cheap, rest := splitIndexClauses(q.Filter)
	spanClauses := search.SpanClauses(rest)
	lo, hi := attrBounds(q.Filter, "timestamp_ms")
	if lo > hi {
		return nil, nil
	}
	var ents []*tracking.TraceInfo
	for _, exp := range expIDs {
		oc := &traceOrdCursor{c: tx.Bucket(bTraceOrd).Cursor(), prefix: u64(exp), lo: lo}
		expStr := fmtExpID(exp)
		for oc.k, oc.v = oc.c.Seek(traceOrdKey(exp, hi, "")); oc.valid(); oc.k, oc.v = oc.c.Next() {
			e, ok := oc.entry(expStr)
			if !ok {
				return nil, fmt.Errorf("trace index entry %x: short value", oc.k)
			}
			if search.MatchTrace(cheap, e) && cur.AfterTrace(q.OrderBy, e) {
				ents = append(ents, e)
			}
		}
	}
	slices.SortFunc(ents, func(a, b *tracking.TraceInfo) int { return compareEntries(q.OrderBy, a, b) })
	var out []*tracking.TraceInfo
	for _, e := range ents {
		if len(out) == limit {
			break
		}
		t, err := matchEntry(tx, e.RequestID, af, spanClauses, rest)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// compareEntries is search.CompareTraces for index entries and keys
// entryOrder accepts, reading the fields directly (a sort of every entry
// of an experiment calls it millions of times).
func compareEntries(keys []search.OrderKey, a, b *tracking.TraceInfo) int {
	hasTS, hasID := false, false
	for i := range keys {
		k := &keys[i]
		hasTS = hasTS || k.Key == "timestamp_ms"
		hasID = hasID || k.Key == "request_id"
		if c := compareEntryKey(k.Key, k.Asc, a, b); c != 0 {
			return c
		}
	}
	if !hasTS {
		if c := compareEntryKey("timestamp_ms", false, a, b); c != 0 {
			return c
		}
	}
	if !hasID {
		return compareEntryKey("request_id", true, a, b)
	}
	return 0
}

func compareEntryKey(key string, asc bool, a, b *tracking.TraceInfo) int {
	var c int
	switch key {
	case "timestamp_ms":
		c = cmp.Compare(a.TimestampMs, b.TimestampMs)
	case "execution_time_ms":
		c = cmp.Compare(a.ExecutionTimeMs, b.ExecutionTimeMs)
	case "end_time_ms":
		c = cmp.Compare(a.TimestampMs+a.ExecutionTimeMs, b.TimestampMs+b.ExecutionTimeMs)
	case "status":
		c = cmp.Compare(a.Status, b.Status)
	case "request_id":
		c = cmp.Compare(a.RequestID, b.RequestID)
	case "experiment_id":
		c = cmp.Compare(a.ExperimentID, b.ExperimentID)
	}
	if !asc {
		c = -c
	}
	return c
}

// splitIndexClauses splits a filter into the clauses an order index entry
// decides (indexOnlyClause) and the rest.
func splitIndexClauses(filter []search.Clause) (cheap, rest []search.Clause) {
	for i := range filter {
		if indexOnlyClause(&filter[i]) {
			cheap = append(cheap, filter[i])
		} else {
			rest = append(rest, filter[i])
		}
	}
	return cheap, rest
}

// matchEntry checks the trace of an index entry that passed the clauses
// the entry answers against the rest: the assessment clauses (af), then
// the span clauses (the span store answers without decoding the trace),
// then, on the decoded record, the others. It returns the trace, or nil
// when it does not match.
func matchEntry(tx *bolt.Tx, id string, af *asmtFilter, spanClauses, rest []search.Clause) (*tracking.TraceInfo, error) {
	if !af.match(id) {
		return nil, nil
	}
	ok, err := traceSpansMatch(tx, id, spanClauses)
	if err != nil || !ok {
		return nil, err
	}
	t, err := getTrace(tx, id)
	if err != nil {
		return nil, err
	}
	if !search.MatchTrace(rest, t) {
		return nil, nil
	}
	return t, nil
}
