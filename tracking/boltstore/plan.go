package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// The search planner (runs/search on the indexes of index.go).
//
// For each requested experiment it chooses how to find the rows of the
// page:
//
//   - ordered: walk the index of the first order key (exprun for the
//     default order and start_time) in the requested direction, narrowed
//     by the filter's clauses on that key and started at the page token's
//     position. Entries with equal values form a group; a group's runs are
//     checked against the whole filter with search.MatchRun and sorted
//     with search.CompareRuns (later keys and tie-breakers), so the output
//     is exactly the comparator's order. NaN metrics come after the
//     numbers and runs without the key last, as CompareRuns has it. The
//     walk stops once the page is full.
//   - driven by a clause: the filter clause whose index range holds the
//     fewest entries gives the candidates; each is checked against the
//     filter and the best page is picked with CompareRuns.
//   - a scan of every run (no usable index).
//
// The clauses' index ranges are counted up to a small probe budget
// (probeBudget). When one holds fewer candidates, an ordered walk gets a
// budget of twice that many index entries; otherwise the walk gets the
// probe budget (most filters fill the page within it) and, failing that,
// the ranges are counted further (up to countCap) and the walk is retried
// within twice the smallest range. A walk that has not filled the page
// within its budget (the other clauses reject most runs) gives way to the
// clause with the fewest candidates. The indexes always yield a superset
// of a clause's matches (bounds are widened, never narrowed), and every
// candidate goes through the same matcher as the scan, so a plan changes
// the cost, never the rows.

// Planner tuning (variables so that tests can force every plan on small
// data): countCap bounds the counting of a clause's index range; an
// ordered walk's probe budget is probePerRow per row of the page plus
// probeMin entries.
var (
	countCap    = 10000
	probePerRow = 8
	probeMin    = 1024
)

// ixIDs marks a path of run-id lookups (run_id = / IN).
const ixIDs byte = 0xFF

// span is a key range [from, to) of one index.
type span struct{ from, to []byte }

func (sp span) empty() bool { return bytes.Compare(sp.from, sp.to) >= 0 }

// ixPath is where the runs a clause (or an order key) may match are.
type ixPath struct {
	kind   byte   // index kind; ixStarted: exprun; ixIDs: run ids
	name   string // metric, param or tag key
	prefix []byte // prefix of the index's entries for the experiment
	main   span   // numbers, strings or times
	nan    bool   // metrics: the NaN entries may match
	ids    []string
	count  int
}

// prefixEnd returns the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	e := bytes.Clone(p)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xFF {
			e[i]++
			return e[:i+1]
		}
	}
	return nil // no bound
}

func appendBytes(p []byte, b ...byte) []byte { return append(bytes.Clone(p), b...) }

// orderSource maps an order key to its index: kind and name; ok is false
// for keys without one (run_id, artifact_uri).
func orderSource(k search.OrderKey) (kind byte, name string, ok bool) {
	return entitySource(k.Entity, k.Key)
}

// clauseSource maps a filter clause to the index it can be answered from.
// It is orderSource's mapping but for two attributes: run_name filters
// match the mlflow.runName tag (run_name ordering uses the run record's
// name), and run_id filters are answered by looking the ids up.
func clauseSource(c *search.Clause) (kind byte, name string, ok bool) {
	if c.Entity == search.EntityAttribute {
		switch canonAttr(c.Key) {
		case "run_name":
			return ixTag, tracking.TagRunName, true
		case "run_id":
			return ixIDs, "", true
		}
	}
	return entitySource(c.Entity, c.Key)
}

// entitySource maps an entity and key to the index that holds their
// values.
func entitySource(entity search.Entity, key string) (kind byte, name string, ok bool) {
	switch entity {
	case search.EntityMetric:
		return ixMetric, key, true
	case search.EntityParam:
		return ixParam, key, true
	case search.EntityTag:
		return ixTag, key, tagIndexed(key)
	case search.EntityAttribute:
		switch canonAttr(key) {
		case "start_time":
			return ixStarted, "", true
		case "end_time":
			return ixEnd, "", true
		case "status":
			return ixStatus, "", true
		case "run_name":
			return ixName, "", true
		case "user_id":
			return ixUser, "", true
		}
	}
	return 0, "", false
}

func canonAttr(key string) string {
	if key == "created" || key == "Created" {
		return "start_time"
	}
	return key
}

func idxPrefixFor(expID uint64, kind byte, name string) []byte {
	if kind == ixStarted {
		return u64(expID)
	}
	return ixPrefix(nil, expID, kind, name)
}

// fullPath is every entry of an index (with NaN for metrics).
func fullPath(expID uint64, kind byte, name string) *ixPath {
	p := &ixPath{kind: kind, name: name, prefix: idxPrefixFor(expID, kind, name)}
	if kind == ixMetric {
		p.main = span{appendBytes(p.prefix, 0), appendBytes(p.prefix, 1)}
		p.nan = true
	} else {
		p.main = span{p.prefix, prefixEnd(p.prefix)}
	}
	return p
}

// intBounds returns int64 bounds [lo, hi] that hold every v with
// compareNum(float64(v), op, num) true (wider when in doubt).
func intBounds(op string, num float64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if math.IsNaN(num) || math.Abs(num) > 1<<52 {
		return
	}
	switch op {
	case search.OpGt, search.OpGe:
		lo = int64(math.Floor(num))
	case search.OpLt, search.OpLe:
		hi = int64(math.Ceil(num))
	case search.OpEq:
		lo, hi = int64(math.Floor(num)), int64(math.Ceil(num))
	}
	return
}

// clausePath returns the index range holding every run that may match c
// in experiment expID, or nil when c cannot be answered from an index (or
// is IS NULL, which matches runs outside every index).
func clausePath(expID uint64, c *search.Clause) *ixPath {
	kind, name, ok := clauseSource(c)
	if !ok || c.Op == search.OpIsNull {
		return nil
	}
	if kind == ixIDs {
		switch c.Op {
		case search.OpEq:
			return &ixPath{kind: ixIDs, ids: []string{c.Str}}
		case search.OpIn:
			return &ixPath{kind: ixIDs, ids: c.List}
		}
		return nil
	}
	p := fullPath(expID, kind, name)
	switch kind {
	case ixMetric:
		num := c.Num
		if num == 0 {
			num = 0 // fold -0
		}
		if math.IsNaN(num) {
			return p
		}
		p.nan = compareNumClause(0, c.Op, num) // NaN compares as 0
		at := appendU64(appendBytes(p.prefix, 0), ordFloat(num))
		switch c.Op {
		case search.OpGt, search.OpGe:
			p.main.from = at
		case search.OpLt, search.OpLe:
			p.main.to = prefixEnd(at)
		case search.OpEq:
			p.main = span{at, prefixEnd(at)}
		}
	case ixStarted, ixEnd:
		lo, hi := intBounds(c.Op, c.Num)
		if kind == ixEnd {
			if lo != math.MinInt64 {
				p.main.from = appendU64(bytes.Clone(p.prefix), ordInt(lo))
			}
			if hi != math.MaxInt64 {
				p.main.to = prefixEnd(appendU64(bytes.Clone(p.prefix), ordInt(hi)))
			}
		} else { // exprun holds ^ord(start): descending
			if hi != math.MaxInt64 {
				p.main.from = appendU64(bytes.Clone(p.prefix), ^ordInt(hi))
			}
			if lo != math.MinInt64 {
				p.main.to = prefixEnd(appendU64(bytes.Clone(p.prefix), ^ordInt(lo)))
			}
		}
	default: // strings
		switch c.Op {
		case search.OpEq:
			at := appendIxStr(bytes.Clone(p.prefix), c.Str)
			p.main = span{at, prefixEnd(at)}
		case search.OpLike:
			lit := c.Str
			if i := strings.IndexAny(lit, "%_"); i >= 0 {
				lit = lit[:i]
			}
			if lit != "" {
				at := appendIxStrPrefix(bytes.Clone(p.prefix), lit)
				p.main = span{at, prefixEnd(at)}
			}
		}
	}
	if p.main.to == nil {
		p.main.to = prefixEnd(p.prefix)
	}
	return p
}

func compareNumClause(a float64, op string, b float64) bool {
	switch op {
	case search.OpEq:
		return a == b
	case search.OpNe:
		return a != b
	case search.OpGt:
		return a > b
	case search.OpGe:
		return a >= b
	case search.OpLt:
		return a < b
	case search.OpLe:
		return a <= b
	}
	return false
}

// planner runs one search over the indexes.
type planner struct {
	ctx      context.Context
	tx       *bolt.Tx
	rs       *runSearch
	ridx     *bolt.Bucket
	exprun   *bolt.Bucket
	filter   search.RunFilter
	keys     []search.OrderKey
	viewType tracking.ViewType
	cur      *search.Cursor
	need     int        // rows to produce: offset + limit
	seed     cacheEntry // the current index entry's value (kind 0: none)
	visits   int
	budget   int // -1: none
	aborted  bool
	err      error
}

// cursor returns a cursor over the index of kind: exprun's own for
// start_time, a packed-block cursor over ridx for the others.
func (pl *planner) cursor(kind byte) kvCursor {
	if kind == ixStarted {
		return pl.exprun.Cursor()
	}
	return newIxCursor(pl.ridx)
}

// cursorErr reports a corrupt block met by c.
func (pl *planner) cursorErr(c kvCursor) {
	if x, ok := c.(*ixCursor); ok && x.err != nil {
		pl.rs.fail(x.err)
	}
}

// entry splits a key of index kind into its value and run id.
func entry(kind byte, prefix, k []byte) (val []byte, runID string, ok bool) {
	rest := k[len(prefix):]
	n := ixValueLen(kind, rest)
	if n < 0 {
		return nil, "", false
	}
	if kind == ixStarted {
		return rest[:8], string(rest[8:]), true
	}
	runID, ok = readIxRun(rest[n:])
	return rest[:n], runID, ok
}

// walk visits the entries of sp in key order (or reverse), calling fn
// with the value and run id; fn returns false to stop. A walk over the
// budget stops and marks the plan aborted.
func (pl *planner) walk(p *ixPath, sp span, rev bool, fn func(val []byte, runID string, v []byte) bool) {
	if sp.empty() {
		return
	}
	c := pl.cursor(p.kind)
	defer pl.cursorErr(c)
	var k, v []byte
	if rev {
		k, v = c.Seek(sp.to)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	} else {
		k, v = c.Seek(sp.from)
	}
	for ; k != nil; pl.visits++ {
		if rev && bytes.Compare(k, sp.from) < 0 || !rev && bytes.Compare(k, sp.to) >= 0 {
			return
		}
		if pl.budget >= 0 && pl.visits > pl.budget {
			pl.aborted = true
			return
		}
		if pl.visits%4096 == 0 && pl.ctx.Err() != nil {
			pl.err = pl.ctx.Err()
			return
		}
		val, runID, ok := entry(p.kind, p.prefix, k)
		if !ok {
			pl.rs.fail(errCorruptIndex(k))
			return
		}
		pl.seed = seedOf(p, val)
		more := fn(val, runID, v)
		pl.seed = cacheEntry{}
		if !more {
			return
		}
		if rev {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
}

// seedOf returns the cache entry an index entry's value gives a run view:
// the latest metric value, or the param or tag value when the entry holds
// all of it (kind 0 otherwise).
func seedOf(p *ixPath, val []byte) cacheEntry {
	switch p.kind {
	case ixMetric:
		e := cacheEntry{kind: 'm', key: p.name, ok: true}
		if val[0] == 1 {
			e.num = math.NaN()
		} else {
			e.num = unordFloat(binary.BigEndian.Uint64(val[1:]))
		}
		return e
	case ixParam, ixTag:
		if s, ok := unescapeIxStr(val); ok {
			kind := byte('p')
			if p.kind == ixTag {
				kind = 't'
			}
			return cacheEntry{kind: kind, key: p.name, str: s, ok: true}
		}
	}
	return cacheEntry{}
}

// count counts the entries of a path, up to limit.
func (pl *planner) count(p *ixPath, limit int) int {
	if p.kind == ixIDs {
		return len(p.ids)
	}
	n := pl.countSpan(p.kind, p.main, limit)
	if p.nan && n < limit {
		n += pl.countSpan(p.kind, nanSpan(p.prefix), limit-n)
	}
	return n
}

// countSpan counts the entries of the index of kind in sp, up to limit.
func (pl *planner) countSpan(kind byte, sp span, limit int) int {
	c := pl.cursor(kind)
	defer pl.cursorErr(c)
	return countCursor(c, sp, limit)
}

// countSpan counts the keys of b in sp, up to limit.
func countSpan(b *bolt.Bucket, sp span, limit int) int { return countCursor(b.Cursor(), sp, limit) }

// countCursor counts the keys of c in sp, up to limit.
func countCursor(c kvCursor, sp span, limit int) int {
	if sp.empty() {
		return 0
	}
	n := 0
	for k, _ := c.Seek(sp.from); k != nil && n < limit && bytes.Compare(k, sp.to) < 0; k, _ = c.Next() {
		n++
	}
	return n
}

func nanSpan(prefix []byte) span {
	return span{appendBytes(prefix, 1), appendBytes(prefix, 2)}
}

// candidate checks one run found in an index: lcv is its exprun value
// (nil when it came from ridx, whose entries do not carry the lifecycle).
//
// When the run came from the index of a metric, param or tag, seed is the
// value the entry holds (pl.seed), so that matching and ordering do not
// look it up again.
func (pl *planner) candidate(expID uint64, runID string, start int64, fromExprun bool, lcv []byte) *runView {
	if fromExprun {
		ls := tracking.LifecycleActive
		if len(lcv) == 1 && lcv[0] == lcDeleted {
			ls = tracking.LifecycleDeleted
		}
		if !pl.viewType.Includes(ls) {
			return nil
		}
		view := pl.rs.newView(runID, start)
		if len(pl.filter) > 0 && !search.MatchRun(pl.filter, view) {
			return nil
		}
		if !pl.cur.AfterRun(pl.keys, view) {
			return nil
		}
		return view
	}
	view := pl.rs.newLazyView(runID)
	if pl.seed.kind != 0 {
		view.cache = append(view.cacheBuf[:0], pl.seed)
	}
	if len(pl.filter) > 0 && !search.MatchRun(pl.filter, view) {
		return nil
	}
	rec := view.tryRecord()
	if rec == nil || rec.ExperimentID != expID || !pl.viewType.Includes(rec.Lifecycle) {
		return nil
	}
	if !pl.cur.AfterRun(pl.keys, view) {
		return nil
	}
	return view
}

// probeBudget is the first budget of an ordered walk (per row of the
// page): a walk that fills the page within it never looks at the other
// clauses' index ranges.
func (pl *planner) probeBudget() int { return probePerRow*pl.need + probeMin }

// search returns up to need rows of one experiment, in order.
func (pl *planner) search(expID uint64) []*runView {
	pl.budget, pl.visits, pl.aborted = -1, 0, false
	var order *ixPath
	if len(pl.keys) == 0 {
		order = fullPath(expID, ixStarted, "")
	} else if kind, name, ok := orderSource(pl.keys[0]); ok {
		order = fullPath(expID, kind, name)
	}
	// Count the clauses' candidates, first only up to the probe budget:
	// a clause with fewer candidates than that is the cheap way in.
	var paths []*ixPath
	for i := range pl.filter {
		if p := clausePath(expID, &pl.filter[i]); p != nil {
			paths = append(paths, p)
		}
	}
	probe := pl.probeBudget()
	best := pl.best(paths, probe)
	if order != nil {
		probed := false
		switch {
		case best != nil && best.count < probe:
			pl.budget = 2*best.count + pl.need
		case len(pl.filter) > 0:
			pl.budget, probed = probe, true
		}
		rows := pl.ordered(expID, order)
		if !pl.aborted || pl.err != nil {
			return rows
		}
		pl.budget, pl.visits, pl.aborted = -1, 0, false
		if probed {
			// The filter is more selective than the probe could tell:
			// count further, and walk again within twice the best
			// clause's candidates.
			best = pl.best(paths, countCap)
			if best != nil && best.count < countCap {
				pl.budget = 2*best.count + pl.need
			}
			rows := pl.ordered(expID, order)
			if !pl.aborted || pl.err != nil {
				return rows
			}
			pl.budget = -1
		}
	}
	if best != nil {
		return pl.driven(expID, best)
	}
	return pl.scanAll(expID)
}

// best counts the candidates of each path up to limit and returns the
// path with the fewest.
func (pl *planner) best(paths []*ixPath, limit int) *ixPath {
	var best *ixPath
	for _, p := range paths {
		p.count = pl.count(p, limit)
		if best == nil || p.count < best.count {
			best = p
		}
	}
	return best
}

// driven collects the runs of a clause's path and picks the first need.
func (pl *planner) driven(expID uint64, p *ixPath) []*runView {
	var all []*runView
	if p.kind == ixIDs {
		seen := make(map[string]bool, len(p.ids))
		for _, id := range p.ids {
			if seen[id] || len(id) > 255 {
				continue
			}
			seen[id] = true
			if view := pl.candidate(expID, id, 0, false, nil); view != nil {
				all = append(all, view)
			}
		}
	} else {
		fromExprun := p.kind == ixStarted
		collect := func(val []byte, runID string, v []byte) bool {
			var start int64
			if fromExprun {
				start = unordInt(^binary.BigEndian.Uint64(val))
			}
			if view := pl.candidate(expID, runID, start, fromExprun, v); view != nil {
				all = append(all, view)
			}
			return pl.err == nil
		}
		pl.walk(p, p.main, false, collect)
		if p.nan {
			pl.walk(p, nanSpan(p.prefix), false, collect)
		}
	}
	return topRuns(all, pl.keys, pl.need)
}

// scanAll checks every run of the experiment.
func (pl *planner) scanAll(expID uint64) []*runView {
	p := fullPath(expID, ixStarted, "")
	var all []*runView
	pl.walk(p, p.main, false, func(val []byte, runID string, v []byte) bool {
		if view := pl.candidate(expID, runID, unordInt(^binary.BigEndian.Uint64(val)), true, v); view != nil {
			all = append(all, view)
		}
		return pl.err == nil
	})
	return topRuns(all, pl.keys, pl.need)
}

// sameKey narrows an order path by the filter's clauses on the same key:
// the range of values to walk, whether NaN entries and runs without the
// key can match.
func (pl *planner) sameKey(expID uint64, order *ixPath) (main span, nan, missing bool) {
	main, nan, missing = order.main, order.nan, order.kind == ixMetric || order.kind == ixParam ||
		order.kind == ixTag || order.kind == ixEnd
	for i := range pl.filter {
		c := &pl.filter[i]
		kind, name, ok := clauseSource(c)
		if !ok || kind != order.kind || name != order.name {
			continue
		}
		if c.Op == search.OpIsNull {
			return span{}, false, missing
		}
		missing = false // every other clause needs the key
		p := clausePath(expID, c)
		if p == nil {
			continue
		}
		if bytes.Compare(p.main.from, main.from) > 0 {
			main.from = p.main.from
		}
		if bytes.Compare(p.main.to, main.to) < 0 {
			main.to = p.main.to
		}
		nan = nan && p.nan
	}
	return main, nan, missing
}

// ordered walks the index of the first order key (see the package notes
// above) and returns up to need rows in order.
func (pl *planner) ordered(expID uint64, order *ixPath) []*runView {
	var out []*runView
	main, nan, missing := pl.sameKey(expID, order)
	// Forward key order is ascending except in exprun (start DESC).
	asc := len(pl.keys) == 0 || pl.keys[0].Asc
	rev := asc == (order.kind == ixStarted)
	if len(pl.keys) == 0 {
		rev = false
	}
	// A keyset cursor starts the walk at its own value's group.
	if pv, ok := pl.cursorValue(order); ok {
		switch {
		case pv.missing:
			main, nan = span{}, false
		case pv.nan:
			main = span{}
		default:
			at := append(bytes.Clone(order.prefix), pv.enc...)
			if rev {
				if e := prefixEnd(at); bytes.Compare(e, main.to) < 0 {
					main.to = e
				}
			} else if bytes.Compare(at, main.from) > 0 {
				main.from = at
			}
		}
	}
	fromExprun := order.kind == ixStarted
	var group []*runView
	var groupVal []byte
	done := false
	flush := func() {
		if len(group) > 1 {
			slices.SortFunc(group, func(a, b *runView) int { return search.CompareRuns(pl.keys, a, b) })
		}
		out = append(out, group...)
		group = group[:0]
		if len(out) >= pl.need {
			done = true
		}
	}
	visit := func(val []byte, runID string, v []byte) bool {
		if groupVal == nil || !bytes.Equal(val, groupVal) {
			flush()
			if done {
				return false
			}
			groupVal = append(groupVal[:0], val...)
		}
		var start int64
		if fromExprun {
			start = unordInt(^binary.BigEndian.Uint64(val))
		}
		if view := pl.candidate(expID, runID, start, fromExprun, v); view != nil {
			group = append(group, view)
		}
		return pl.err == nil
	}
	pl.walk(order, main, rev, visit)
	flush()
	if done || pl.aborted || pl.err != nil {
		return out
	}
	if nan && order.kind == ixMetric {
		groupVal = nil
		pl.walk(order, nanSpan(order.prefix), false, func(val []byte, runID string, v []byte) bool {
			if view := pl.candidate(expID, runID, 0, false, v); view != nil {
				group = append(group, view)
			}
			return pl.err == nil
		})
		flush()
		if done || pl.aborted || pl.err != nil {
			return out
		}
	}
	if missing {
		out = pl.missing(expID, order, out)
	}
	return out
}

// missing appends the runs without the order key (they sort last, tied on
// it): in exprun order when that is the rest of the order (one key), else
// collected and sorted.
func (pl *planner) missing(expID uint64, order *ixPath, out []*runView) []*runView {
	all := fullPath(expID, ixStarted, "")
	stream := len(pl.keys) == 1
	var group []*runView
	pl.walk(all, all.main, false, func(val []byte, runID string, v []byte) bool {
		view := pl.candidate(expID, runID, unordInt(^binary.BigEndian.Uint64(val)), true, v)
		if view == nil || has(view, order) {
			return pl.err == nil
		}
		if stream {
			out = append(out, view)
			return len(out) < pl.need && pl.err == nil
		}
		group = append(group, view)
		return pl.err == nil
	})
	if !stream {
		out = append(out, topRuns(group, pl.keys, pl.need-len(out))...)
	}
	return out
}

// has reports whether the run has a value for the order key.
func has(v *runView, order *ixPath) bool {
	switch order.kind {
	case ixMetric:
		_, ok := v.LatestMetric(order.name)
		return ok
	case ixParam:
		_, ok := v.Param(order.name)
		return ok
	case ixTag:
		_, ok := v.Tag(order.name)
		return ok
	case ixEnd:
		_, ok := v.EndTime()
		return ok
	}
	return true
}

// cursorPos is the first order key's value recorded in a keyset cursor.
type cursorPos struct {
	enc     []byte // encoded value (the group to start at)
	nan     bool
	missing bool
}

func (pl *planner) cursorValue(order *ixPath) (cursorPos, bool) {
	var name string
	switch order.kind {
	case ixMetric:
		name = "m." + order.name
	case ixParam:
		name = "p." + order.name
	case ixTag:
		name = "t." + order.name
	case ixStarted:
		name = "start_time"
	case ixEnd:
		name = "end_time"
	case ixStatus:
		name = "status"
	case ixName:
		name = "run_name"
	case ixUser:
		name = "user_id"
	}
	v, ok := pl.cur.Value(name)
	if !ok {
		return cursorPos{}, false
	}
	switch order.kind {
	case ixMetric:
		if !v.Present {
			return cursorPos{missing: true}, true
		}
		if math.IsNaN(v.Float) {
			return cursorPos{nan: true}, true
		}
		return cursorPos{enc: appendIxNum(nil, v.Float)}, true
	case ixParam, ixTag:
		if !v.Present {
			return cursorPos{missing: true}, true
		}
		return cursorPos{enc: appendIxStr(nil, v.Str)}, true
	case ixEnd:
		if !v.Present {
			return cursorPos{missing: true}, true
		}
		return cursorPos{enc: appendU64(nil, ordInt(v.Int))}, true
	case ixStarted:
		return cursorPos{enc: appendU64(nil, ^ordInt(v.Int))}, true
	}
	return cursorPos{enc: appendIxStr(nil, v.Str)}, true
}
