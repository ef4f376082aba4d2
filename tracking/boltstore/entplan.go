package boltstore

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// The planner of search_experiments, search_registered_models and
// search_model_versions (on the indexes of entindex.go and the name-keyed
// buckets). Like the run planner (plan.go) it picks, per search, one of:
//
//   - driven by a clause: the filter clause whose index range holds the
//     fewest entries (counted up to countCap) gives the candidates;
//   - ordered: walk the index of the first order key (or of the default
//     order's first key) in the requested direction from the page token's
//     position, narrowed by a clause on the same key; entries with equal
//     values form a group, and the walk stops at the end of the group in
//     which the page (plus one row, to know whether a next page exists)
//     is full;
//   - a scan of every entity.
//
// When the fewest candidates of a clause exceed the ordered walk's probe
// budget (probePerRow per row of the page plus probeMin), the walk goes
// first, within twice that many entries; a walk over its budget gives way
// to the clause. Whatever the plan, every candidate goes through the
// route's own matcher, view type and page-token checks, and the route
// sorts what was collected with its comparator: index ranges are
// supersets of a clause's matches, so a plan changes the cost, never the
// rows.

// epath is where the entities a clause (or an order key) may match are:
// key ranges of one bucket, and how a key names its entity.
type epath struct {
	b     *bolt.Bucket
	id    string // which index (an order walk and a clause on the same key share it)
	spans []span
	// ref returns the group (the key's sort value; equal values tie) and
	// the entity reference of an entry.
	ref   func(k, v []byte) (group, ref []byte, ok bool)
	count int
}

// countUpTo counts the entries of p, up to limit.
func (p *epath) countUpTo(limit int) int {
	n := 0
	for _, sp := range p.spans {
		if n >= limit {
			break
		}
		n += countSpan(p.b, sp, limit-n)
	}
	return n
}

// entPlan runs one search.
type entPlan struct {
	ctx     context.Context
	clauses []*epath
	order   *epath // nil: the order has no index
	rev     bool   // walk order backwards
	need    int    // rows wanted (offset + page + 1); negative: all
	// consider checks the entity ref names and collects it when it
	// matches; it reports whether it did.
	consider func(ref []byte) (bool, error)
	scan     func() error // considers every entity
	reset    func()       // drops what was collected
}

func (pl *entPlan) run() error {
	var best *epath
	for _, p := range pl.clauses {
		p.count = p.countUpTo(countCap)
		if best == nil || p.count < best.count {
			best = p
		}
	}
	if pl.order == nil || pl.need < 0 {
		if best != nil {
			return pl.driven(best)
		}
		return pl.scan()
	}
	for _, p := range pl.clauses {
		if p.id == pl.order.id && len(p.spans) == 1 && len(pl.order.spans) == 1 {
			pl.order.spans[0] = intersect(pl.order.spans[0], p.spans[0])
		}
	}
	probe := probePerRow*pl.need + probeMin
	if best != nil && best.count <= probe {
		return pl.driven(best)
	}
	budget := -1
	if best != nil {
		budget = max(probe, 2*best.count)
	}
	aborted, err := pl.ordered(budget)
	if err != nil || !aborted {
		return err
	}
	pl.reset()
	return pl.driven(best)
}

func intersect(a, b span) span {
	if bytes.Compare(b.from, a.from) > 0 {
		a.from = b.from
	}
	if b.to != nil && (a.to == nil || bytes.Compare(b.to, a.to) < 0) {
		a.to = b.to
	}
	return a
}

// driven considers every entity of p's ranges.
func (pl *entPlan) driven(p *epath) error {
	n := 0
	for _, sp := range p.spans {
		c := p.b.Cursor()
		for k, v := c.Seek(sp.from); k != nil && (sp.to == nil || bytes.Compare(k, sp.to) < 0); k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := pl.ctx.Err(); err != nil {
					return err
				}
			}
			_, ref, ok := p.ref(k, v)
			if !ok {
				continue
			}
			if _, err := pl.consider(ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// ordered walks the order index until the group in which need matches
// were reached ends; aborted means the budget (negative: none) ran out
// first.
func (pl *entPlan) ordered(budget int) (aborted bool, err error) {
	p := pl.order
	matched, visits := 0, 0
	var stop []byte // the group that completes the page
	for _, sp := range p.spans {
		c := p.b.Cursor()
		var k, v []byte
		if pl.rev {
			if sp.to == nil {
				k, v = c.Last()
			} else if k, v = c.Seek(sp.to); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else if sp.from == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(sp.from)
		}
		for ; k != nil; visits++ {
			if pl.rev && bytes.Compare(k, sp.from) < 0 || !pl.rev && sp.to != nil && bytes.Compare(k, sp.to) >= 0 {
				break
			}
			if budget >= 0 && visits > budget {
				return true, nil
			}
			if visits%4096 == 0 {
				if err := pl.ctx.Err(); err != nil {
					return false, err
				}
			}
			group, ref, ok := p.ref(k, v)
			if ok {
				if stop != nil && !bytes.Equal(group, stop) {
					return false, nil
				}
				hit, err := pl.consider(ref)
				if err != nil {
					return false, err
				}
				if hit {
					if matched++; matched >= pl.need && stop == nil {
						stop = bytes.Clone(group)
					}
				}
			}
			if pl.rev {
				k, v = c.Prev()
			} else {
				k, v = c.Next()
			}
		}
	}
	return false, nil
}

// wholeSpan is every key with prefix p.
func wholeSpan(p []byte) span { return span{bytes.Clone(p), prefixEnd(p)} }

// timeSpan is the range of a time index (kind) that holds every entity
// whose time satisfies op num (wider when in doubt); ok is false when the
// clause bounds nothing.
func timeSpan(kind []byte, op string, num float64) (span, bool) {
	if op == search.OpNe {
		return span{}, false
	}
	lo, hi := intBounds(op, num)
	if lo == math.MinInt64 && hi == math.MaxInt64 {
		return span{}, false
	}
	sp := wholeSpan(kind)
	if lo != math.MinInt64 {
		sp.from = appendU64(bytes.Clone(kind), ordInt(lo))
	}
	if hi != math.MaxInt64 {
		sp.to = prefixEnd(appendU64(bytes.Clone(kind), ordInt(hi)))
	}
	return sp, true
}

// timePath is a time index; its group is the time, its ref the rest.
func timePath(b *bolt.Bucket, kind []byte) *epath {
	return &epath{b: b, id: string(kind), spans: []span{wholeSpan(kind)}, ref: func(k, _ []byte) ([]byte, []byte, bool) {
		if len(k) < len(kind)+8 {
			return nil, nil, false
		}
		return k[len(kind) : len(kind)+8], k[len(kind)+8:], true
	}}
}

// afterTime starts a time walk at a page token's time.
func (p *epath) afterTime(kind []byte, t int64, rev bool) {
	at := appendU64(bytes.Clone(kind), ordInt(t))
	if rev {
		p.spans[0].to = prefixEnd(at)
	} else {
		p.spans[0].from = at
	}
}

// afterKey starts a walk of a bucket keyed by the sort value at key.
func (p *epath) afterKey(key []byte, rev bool) {
	if rev {
		p.spans[0].to = prefixEnd(key)
	} else {
		p.spans[0].from = key
	}
}

// strIxSpan is the range of the entries under prefix whose ixstr value
// may satisfy the string clause (Eq, LIKE with a literal prefix); ok is
// false for other clauses.
func strIxSpan(prefix []byte, op, str string) (span, bool) {
	switch op {
	case search.OpEq:
		return wholeSpan(appendIxStr(bytes.Clone(prefix), str)), true
	case search.OpLike:
		lit := str
		if i := strings.IndexAny(lit, "%_"); i >= 0 {
			lit = lit[:i]
		}
		if lit != "" {
			return wholeSpan(appendIxStrPrefix(bytes.Clone(prefix), lit)), true
		}
	}
	return span{}, false
}

// tagPath is the path of a tag clause on a tag index (kind); IS NOT NULL
// takes every entry of the key when notNull.
func tagPath(b *bolt.Bucket, kind []byte, c *search.Clause, notNull bool) *epath {
	prefix := tagIxPrefix(kind, c.Key)
	sp, ok := strIxSpan(prefix, c.Op, c.Str)
	if !ok {
		if !notNull || c.Op != search.OpIsNotNull {
			return nil
		}
		sp = wholeSpan(prefix)
	}
	return &epath{b: b, id: string(prefix), spans: []span{sp}, ref: func(k, _ []byte) ([]byte, []byte, bool) {
		if !bytes.HasPrefix(k, prefix) {
			return nil, nil, false
		}
		n := ixStrLen(k[len(prefix):])
		if n < 0 {
			return nil, nil, false
		}
		return k[len(prefix) : len(prefix)+n], k[len(prefix)+n:], true
	}}
}

// keyRef is the ref of buckets keyed by the entity (group and ref: the key).
func keyRef(k, _ []byte) ([]byte, []byte, bool) { return k, k, true }

// valueRef is the ref of buckets keyed by name holding the entity id.
func valueRef(k, v []byte) ([]byte, []byte, bool) { return k, v, len(v) == 8 }

// namePath is the path of a name clause on a bucket keyed by the bare
// name (Eq, or LIKE with a literal prefix when prefixOK).
func namePath(b *bolt.Bucket, c *search.Clause, ref func(k, v []byte) ([]byte, []byte, bool)) *epath {
	from, to, ok := nameRange([]search.Clause{*c}, true)
	if !ok {
		return nil
	}
	return &epath{b: b, id: "name", spans: []span{{from, to}}, ref: ref}
}

// ---------------------------------------------------------------------------
// The routes' paths.

// expPaths returns the clause paths and the order path of an experiment
// search.
func expPaths(tx *bolt.Tx, filter []search.Clause, keys []search.OrderKey, cur *search.Cursor) ([]*epath, *epath, bool) {
	ix := tx.Bucket(bEntIdx)
	var paths []*epath
	for i := range filter {
		c := &filter[i]
		var p *epath
		switch {
		case c.Entity == search.EntityTag:
			p = tagPath(ix, ekExpTag, c, true)
		case c.Key == "name":
			p = namePath(tx.Bucket(bExpName), c, valueRef)
		case c.Key == "creation_time" || c.Key == "last_update_time":
			kind := ekExpCreated
			if c.Key == "last_update_time" {
				kind = ekExpUpdated
			}
			if sp, ok := timeSpan(kind, c.Op, c.Num); ok {
				p = timePath(ix, kind)
				p.spans[0] = sp
			}
		}
		if p != nil {
			paths = append(paths, p)
		}
	}
	first := search.OrderKey{Entity: search.EntityAttribute, Key: "creation_time"}
	if len(keys) > 0 {
		first = keys[0]
	}
	rev := !first.Asc
	at, keyset := cur.AfterExperimentView()
	var order *epath
	switch first.Key {
	case "name":
		order = &epath{b: tx.Bucket(bExpName), id: "name", spans: []span{{nil, nil}}, ref: valueRef}
		if keyset {
			order.afterKey([]byte(at.Name()), rev)
		}
	case "experiment_id":
		order = &epath{b: tx.Bucket(bExp), id: "id", spans: []span{{nil, nil}}, ref: keyRef}
		if keyset {
			id, ok := parseExpID(at.ExperimentID())
			if !ok {
				return paths, nil, rev
			}
			order.afterKey(u64(id), rev)
		}
	case "creation_time", "last_update_time":
		kind := ekExpCreated
		if first.Key == "last_update_time" {
			kind = ekExpUpdated
		}
		order = timePath(ix, kind)
		if keyset {
			t := at.CreationTime()
			if first.Key == "last_update_time" {
				t = at.LastUpdateTime()
			}
			order.afterTime(kind, t, rev)
		}
	}
	return paths, order, rev
}

// rmPaths returns the clause paths and the order path of a registered
// model search.
func rmPaths(tx *bolt.Tx, filter []search.Clause, keys []search.OrderKey, cur *search.Cursor) ([]*epath, *epath, bool) {
	ix := tx.Bucket(bEntIdx)
	var paths []*epath
	for i := range filter {
		c := &filter[i]
		var p *epath
		if c.Entity == search.EntityTag {
			p = tagPath(ix, ekRMTag, c, false)
		} else if c.Key == "name" {
			p = namePath(tx.Bucket(bRM), c, keyRef)
		}
		if p != nil {
			paths = append(paths, p)
		}
	}
	first := search.OrderKey{Entity: search.EntityAttribute, Key: "name", Asc: true}
	if len(keys) > 0 {
		first = keys[0]
	}
	rev := !first.Asc
	at, keyset := cur.AfterRegisteredModelView()
	var order *epath
	switch first.Key {
	case "name":
		order = &epath{b: tx.Bucket(bRM), id: "name", spans: []span{{nil, nil}}, ref: keyRef}
		if keyset {
			order.afterKey([]byte(at.Name()), rev)
		}
	case "last_updated_timestamp":
		order = timePath(ix, ekRMUpdated)
		if keyset {
			order.afterTime(ekRMUpdated, at.LastUpdatedTimestamp(), rev)
		}
	}
	return paths, order, rev
}

// mvPaths returns the clause paths and the order path of a model version
// search.
func mvPaths(tx *bolt.Tx, filter []search.Clause, keys []search.OrderKey, cur *search.Cursor) ([]*epath, *epath, bool) {
	ix := tx.Bucket(bEntIdx)
	var paths []*epath
	for i := range filter {
		c := &filter[i]
		var p *epath
		switch {
		case c.Entity == search.EntityTag:
			p = tagPath(ix, ekMVTag, c, false)
		case c.Key == "name" && c.Op == search.OpEq:
			// modelver is keyed str(name) u64(version): the (name,
			// version) index.
			prefix := appendStr(nil, c.Str)
			sp := wholeSpan(prefix)
			for j := range filter {
				if v := &filter[j]; v.Entity == search.EntityAttribute && v.Key == "version_number" && v.Op != search.OpNe {
					sp = versionSpan(prefix, sp, v)
				}
			}
			p = &epath{b: tx.Bucket(bMV), id: "modelver", spans: []span{sp}, ref: keyRef}
		case c.Key == "run_id" && (c.Op == search.OpEq || c.Op == search.OpIn):
			vals := []string{c.Str}
			if c.Op == search.OpIn {
				vals = slices.Clone(c.List)
				slices.Sort(vals)
				vals = slices.Compact(vals)
			}
			p = &epath{b: ix, id: "run", ref: func(k, _ []byte) ([]byte, []byte, bool) {
				if !bytes.HasPrefix(k, ekMVRun) {
					return nil, nil, false
				}
				n := ixStrLen(k[len(ekMVRun):])
				if n < 0 {
					return nil, nil, false
				}
				return k[len(ekMVRun) : len(ekMVRun)+n], k[len(ekMVRun)+n:], true
			}}
			for _, v := range vals {
				p.spans = append(p.spans, wholeSpan(appendIxStr(bytes.Clone(ekMVRun), v)))
			}
		}
		if p != nil {
			paths = append(paths, p)
		}
	}
	first := search.OrderKey{Entity: search.EntityAttribute, Key: "last_updated_timestamp"}
	if len(keys) > 0 {
		first = keys[0]
	}
	rev := !first.Asc
	at, keyset := cur.AfterModelVersionView()
	var order *epath
	switch first.Key {
	case "last_updated_timestamp", "creation_timestamp":
		kind := ekMVUpdated
		if first.Key == "creation_timestamp" {
			kind = ekMVCreated
		}
		order = timePath(ix, kind)
		if keyset {
			t := at.LastUpdatedTimestamp()
			if first.Key == "creation_timestamp" {
				t = at.CreationTimestamp()
			}
			order.afterTime(kind, t, rev)
		}
	}
	return paths, order, rev
}

// versionSpan narrows sp, the versions of one model (keys prefix
// u64(version)), to those a version_number clause may match.
func versionSpan(prefix []byte, sp span, c *search.Clause) span {
	lo, hi := intBounds(c.Op, c.Num)
	if lo > 0 {
		if f := appendU64(bytes.Clone(prefix), uint64(lo)); bytes.Compare(f, sp.from) > 0 {
			sp.from = f
		}
	}
	if hi != math.MaxInt64 {
		end := sp.from // no version is below 1
		if hi >= 1 {
			end = prefixEnd(appendU64(bytes.Clone(prefix), uint64(hi)))
		}
		if sp.to == nil || bytes.Compare(end, sp.to) < 0 {
			sp.to = end
		}
	}
	return sp
}

// ---------------------------------------------------------------------------
// The routes' plans.

// rowsWanted is how many matching rows a page needs: the offset, the page
// and one more (whether a next page exists); negative when unbounded.
func rowsWanted(offset, limit int) int {
	if limit <= 0 {
		return -1
	}
	n := offset + limit + 1
	if n < 0 {
		return -1
	}
	return n
}

// planExperiments collects the candidates of an experiment search into
// *all through consider (the route's checks). Until the eidx build
// completes only the buckets keyed by name and id are used.
func (s *Store) planExperiments(ctx context.Context, tx *bolt.Tx, q tracking.ExperimentQuery, cur *search.Cursor,
	limit int, all *[]*expView, consider func(k, v []byte) error) error {
	exps := tx.Bucket(bExp)
	pl := &entPlan{ctx: ctx, need: rowsWanted(cur.Offset(), limit)}
	pl.consider = func(ref []byte) (bool, error) {
		v := exps.Get(ref)
		if v == nil {
			return false, nil
		}
		n := len(*all)
		err := consider(ref, v)
		return len(*all) > n, err
	}
	pl.scan = func() error { return exps.ForEach(consider) }
	pl.reset = func() { *all = (*all)[:0] }
	pl.clauses, pl.order, pl.rev = expPaths(tx, q.Filter, q.OrderBy, cur)
	if !entIndexReady(tx) {
		pl.clauses = namedOnly(pl.clauses, "name")
		if pl.order != nil && pl.order.id != "name" && pl.order.id != "id" {
			pl.order = nil
		}
	}
	return pl.run()
}

// rmPlan returns the paths of a registered-model search: all of them once
// eidx is built, else the name lookup only.
func rmPlan(tx *bolt.Tx, filter []search.Clause, keys []search.OrderKey, cur *search.Cursor) ([]*epath, *epath, bool) {
	if entIndexReady(tx) {
		return rmPaths(tx, filter, keys, cur)
	}
	paths, order, rev := rmPaths(tx, filter, keys, cur)
	return namedOnly(paths, "name"), keepOrder(order, "name"), rev
}

// mvPlan is rmPlan for model versions (the modelver lookups need no
// eidx).
func mvPlan(tx *bolt.Tx, filter []search.Clause, keys []search.OrderKey, cur *search.Cursor) ([]*epath, *epath, bool) {
	if entIndexReady(tx) {
		return mvPaths(tx, filter, keys, cur)
	}
	paths, _, rev := mvPaths(tx, filter, keys, cur)
	return namedOnly(paths, "modelver"), nil, rev
}

// namedOnly keeps the paths on index id.
func namedOnly(paths []*epath, id string) []*epath {
	return slices.DeleteFunc(paths, func(p *epath) bool { return p.id != id })
}

func keepOrder(p *epath, id string) *epath {
	if p != nil && p.id == id {
		return p
	}
	return nil
}
