package boltstore

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Bounds applied when a query carries no (or an absurd) max_results. The
// handlers validate the limits; these only keep the store safe.
const (
	defaultMaxResults = 1000
	maxMaxResults     = 1 << 20
)

// decodeCursor decodes a page token for the query fp; a bad one is
// INVALID_PARAMETER_VALUE with MLflow's message.
func decodeCursor(token string, fp *search.Fingerprint) (*search.Cursor, error) {
	cur, err := search.DecodeCursor(token, fp)
	if err != nil {
		if se, ok := err.(*search.Error); ok {
			return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", se.Message)
		}
		return nil, tracking.Errorf(tracking.InvalidParameterValue, "%s", err.Error())
	}
	return cur, nil
}

// pageLimit bounds a requested max_results.
func pageLimit(maxResults int) int {
	limit := maxResults
	if limit <= 0 {
		limit = defaultMaxResults
	}
	return min(limit, maxMaxResults)
}

// expIDsFingerprint adds experiment ids to fp in a canonical order (the
// order of the request's ids does not change the rows).
func expIDsFingerprint(fp *search.Fingerprint, ids []uint64) *search.Fingerprint {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	fp.AddInt(int64(len(sorted)))
	for _, id := range sorted {
		fp.AddInt(int64(id))
	}
	return fp
}

// ---------------------------------------------------------------------------
// Runs.

// runSearch holds what the lazy views of one search share: the read
// transaction's buckets, a key buffer and the first decoding error.
type runSearch struct {
	runs, params, tags, latest, inputs *bolt.Bucket
	key                                []byte
	err                                error
	slab                               []runView // views are allocated in chunks
}

func (rs *runSearch) newView(id string, start int64) *runView {
	if len(rs.slab) == cap(rs.slab) {
		rs.slab = make([]runView, 0, 256)
	}
	rs.slab = append(rs.slab, runView{rs: rs, id: id, start: start, haveStart: true})
	return &rs.slab[len(rs.slab)-1]
}

// newLazyView is newView for a run found in ridx: its start time is read
// from the record on first use.
func (rs *runSearch) newLazyView(id string) *runView {
	v := rs.newView(id, 0)
	v.haveStart = false
	return v
}

func errCorruptIndex(k []byte) error { return fmt.Errorf("corrupt run index key %x", k) }

func (rs *runSearch) fail(err error) {
	if rs.err == nil {
		rs.err = err
	}
}

type cacheEntry struct {
	kind byte // 'm' metric, 'p' param, 't' tag
	key  string
	num  float64
	str  string
	ok   bool
}

// runView is a search.RunView that reads lazily from the open read
// transaction: the id and start time come from the index key; the info
// record, metrics, params, tags and datasets are read on first use and
// cached.
type runView struct {
	rs        *runSearch
	id        string
	start     int64
	haveStart bool // start is known (from exprun); else read from rec
	rec       *runRecord
	cache     []cacheEntry
	cacheBuf  [2]cacheEntry // inline room for the usual one or two keys
	datasets  []search.Dataset
	dsLoaded  bool
}

var _ search.RunView = (*runView)(nil)

// tryRecord loads the run record; nil when the run is gone (the index
// entry is dangling) or cannot be decoded (reported as the search's error).
func (v *runView) tryRecord() *runRecord {
	if v.rec == nil {
		rec, err := getRunFrom(v.rs.runs, v.id)
		if err != nil {
			v.rs.fail(err)
		}
		if rec == nil {
			return nil
		}
		v.rec = rec
	}
	return v.rec
}

func (v *runView) record() *runRecord {
	if v.rec == nil {
		rec, err := getRunFrom(v.rs.runs, v.id)
		if err != nil || rec == nil {
			if err == nil {
				err = fmt.Errorf("run index points at missing run %s", v.id)
			}
			v.rs.fail(err)
			rec = &runRecord{StartTime: v.start}
		}
		v.rec = rec
	}
	return v.rec
}

func getRunFrom(b *bolt.Bucket, runID string) (*runRecord, error) {
	data := b.Get([]byte(runID))
	if data == nil {
		return nil, nil
	}
	var rec runRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return &rec, nil
}

func (v *runView) RunID() string { return v.id }
func (v *runView) StartTime() int64 {
	if !v.haveStart {
		v.start, v.haveStart = v.record().StartTime, true
	}
	return v.start
}
func (v *runView) RunName() string     { return v.record().Name }
func (v *runView) UserID() string      { return v.record().UserID }
func (v *runView) Status() string      { return v.record().Status }
func (v *runView) ArtifactURI() string { return v.record().ArtifactURI }

func (v *runView) EndTime() (int64, bool) {
	if et := v.record().EndTime; et != nil {
		return *et, true
	}
	return 0, false
}

func (v *runView) lookup(kind byte, key string) *cacheEntry {
	for i := range v.cache {
		if e := &v.cache[i]; e.kind == kind && e.key == key {
			return e
		}
	}
	if v.cache == nil {
		v.cache = v.cacheBuf[:0]
	}
	e := cacheEntry{kind: kind, key: key}
	rs := v.rs
	rs.key, _ = runPrefix(rs.key[:0], v.id)
	rs.key = append(rs.key, key...)
	switch kind {
	case 'm':
		if data := rs.latest.Get(rs.key); data != nil {
			_, _, val, ok := readPoint(data)
			if !ok {
				rs.fail(fmt.Errorf("corrupt latest metric %q of run %s", key, v.id))
			}
			e.num, e.ok = val, ok
		}
	case 'p':
		if data := rs.params.Get(rs.key); data != nil {
			e.str, e.ok = string(data), true
		}
	case 't':
		if data := rs.tags.Get(rs.key); data != nil {
			e.str, e.ok = string(data), true
		}
	}
	v.cache = append(v.cache, e)
	return &v.cache[len(v.cache)-1]
}

func (v *runView) LatestMetric(key string) (float64, bool) {
	e := v.lookup('m', key)
	return e.num, e.ok
}

func (v *runView) Param(key string) (string, bool) {
	e := v.lookup('p', key)
	return e.str, e.ok
}

func (v *runView) Tag(key string) (string, bool) {
	e := v.lookup('t', key)
	return e.str, e.ok
}

func (v *runView) Datasets() []search.Dataset {
	if v.dsLoaded {
		return v.datasets
	}
	v.dsLoaded = true
	prefix, _ := runPrefix(nil, v.id)
	c := v.rs.inputs.Cursor()
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		name, rest, ok := readStr(k[len(prefix):])
		if !ok {
			v.rs.fail(fmt.Errorf("corrupt input key of run %s", v.id))
			continue
		}
		d := search.Dataset{Name: name, Digest: string(rest)}
		if len(val) > 0 {
			var tags []tracking.Tag
			if err := json.Unmarshal(val, &tags); err != nil {
				v.rs.fail(fmt.Errorf("decode input tags of run %s: %w", v.id, err))
			}
			for _, t := range tags {
				if t.Key == tracking.InputTagContext {
					d.Context = t.Value
				}
			}
		}
		v.datasets = append(v.datasets, d)
	}
	return v.datasets
}

// idxCursor walks one experiment's slice of the exprun index.
type idxCursor struct {
	c      *bolt.Cursor
	prefix [8]byte
	k      []byte // current key (suffix compares across experiments)
	v      []byte
}

func (ic *idxCursor) valid() bool { return ic.k != nil && bytes.HasPrefix(ic.k, ic.prefix[:]) }

// cursorHeap merges experiments' index ranges in (start DESC, run_id ASC)
// order: the key suffix after the experiment id.
type cursorHeap []*idxCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return bytes.Compare(h[i].k[8:], h[j].k[8:]) < 0 }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*idxCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// SearchRuns implements tracking.Store.
//
// Runs come from the exprun index of each requested experiment (unknown
// ids contribute nothing, as in MLflow; deleted experiments contribute
// their runs, which are deleted too unless restored one by one). The index
// value carries the lifecycle, so the view type costs no decoding. Without
// order_by the merged index already is MLflow's default order: a page
// token's position is a seek in every experiment's range, and the scan
// stops as soon as the page is filled. With order_by every matching run
// after the token's position is collected and the first page's worth is
// selected with search.CompareRuns; views only read what the filter and
// the order keys ask for. Only the runs of the page are materialised. As
// in MLflow, every full page has a next token.
func (s *Store) SearchRuns(ctx context.Context, q tracking.RunQuery) (tracking.RunPage, error) {
	var page tracking.RunPage
	limit := pageLimit(q.MaxResults)
	// Distinct, parseable experiment ids.
	var expIDs []uint64
	for _, idStr := range q.ExperimentIDs {
		if idStr == "" {
			continue
		}
		id, ok := parseExpID(idStr)
		if ok && !slices.Contains(expIDs, id) {
			expIDs = append(expIDs, id)
		}
	}
	viewType := q.ViewType
	if viewType != tracking.DeletedOnly && viewType != tracking.AllViews {
		viewType = tracking.ActiveOnly
	}
	fp := expIDsFingerprint(search.NewFingerprint("runs"), expIDs).AddInt(int64(viewType)).
		AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := decodeCursor(q.PageToken, fp)
	if err != nil {
		return page, err
	}
	offset := cur.Offset()
	wantLC := func(b []byte) bool {
		ls := tracking.LifecycleActive
		if len(b) == 1 && b[0] == lcDeleted {
			ls = tracking.LifecycleDeleted
		}
		return viewType.Includes(ls)
	}

	if len(expIDs) == 0 {
		return page, nil
	}
	err = s.view(ctx, "search runs", func(tx *bolt.Tx) error {
		rs := &runSearch{
			runs: tx.Bucket(bRun), params: tx.Bucket(bParam), tags: tx.Bucket(bTag),
			latest: tx.Bucket(bLatest), inputs: tx.Bucket(bInput),
		}
		var selected []*runView
		if !s.scanSearch && indexReady(tx) {
			need := offset + limit
			if need < 0 {
				need = maxMaxResults
			}
			pl := &planner{ctx: ctx, tx: tx, rs: rs, ridx: tx.Bucket(bRunIdx), exprun: tx.Bucket(bExpRun),
				filter: q.Filter, keys: q.OrderBy, viewType: viewType, cur: cur, need: need}
			var all []*runView
			for _, id := range expIDs {
				all = append(all, pl.search(id)...)
				if pl.err != nil {
					return pl.err
				}
			}
			selected = topRuns(all, q.OrderBy, need)
			selected = selected[min(offset, len(selected)):]
		} else {
			var err error
			if selected, err = scanRuns(ctx, tx, rs, expIDs, q, cur, wantLC, limit); err != nil {
				return err
			}
		}
		if rs.err != nil {
			return rs.err
		}
		page.Runs = make([]*tracking.Run, 0, len(selected))
		for _, view := range selected {
			rec := view.record()
			if rs.err != nil {
				return rs.err
			}
			run, err := loadRun(tx, view.id, rec)
			if err != nil {
				return err
			}
			page.Runs = append(page.Runs, run)
		}
		// Like MLflow's search_runs, a full page always has a next token
		// (the page after it may be empty).
		if len(selected) == limit {
			page.NextPageToken = search.RunPageToken(fp, q.OrderBy, selected[len(selected)-1])
		}
		return nil
	})
	if err != nil {
		return tracking.RunPage{}, err
	}
	return page, nil
}

// scanRuns selects a page by visiting every run of the experiments (the
// plan when the indexes are not built yet; see plan.go otherwise).
func scanRuns(ctx context.Context, tx *bolt.Tx, rs *runSearch, expIDs []uint64, q tracking.RunQuery,
	cur *search.Cursor, wantLC func([]byte) bool, limit int) ([]*runView, error) {
	offset := cur.Offset()
	{
		idx := tx.Bucket(bExpRun)
		h := make(cursorHeap, 0, len(expIDs))
		// In the default order the index is the order: a keyset cursor
		// seeks straight past its position in every experiment.
		start, afterID, seek := cur.RunPosition()
		seek = seek && len(q.OrderBy) == 0
		var seekKey []byte
		for _, id := range expIDs {
			ic := &idxCursor{c: idx.Cursor()}
			binary.BigEndian.PutUint64(ic.prefix[:], id)
			if seek {
				seekKey = expRunKey(seekKey[:0], id, start, afterID)
				ic.k, ic.v = ic.c.Seek(seekKey)
				if ic.k != nil && bytes.Equal(ic.k, seekKey) {
					ic.k, ic.v = ic.c.Next()
				}
			} else {
				ic.k, ic.v = ic.c.Seek(ic.prefix[:])
			}
			if ic.valid() {
				h = append(h, ic)
			}
		}
		heap.Init(&h)
		next := func() *runView {
			for h.Len() > 0 {
				ic := h[0]
				k, v := ic.k, ic.v
				ic.k, ic.v = ic.c.Next()
				if ic.valid() {
					heap.Fix(&h, 0)
				} else {
					heap.Pop(&h)
				}
				if !wantLC(v) {
					continue
				}
				_, start, runID, ok := splitExpRunKey(k)
				if !ok {
					rs.fail(fmt.Errorf("corrupt run index key %x", k))
					continue
				}
				view := rs.newView(runID, start)
				if len(q.Filter) > 0 && !search.MatchRun(q.Filter, view) {
					continue
				}
				return view
			}
			return nil
		}

		var selected []*runView
		if len(q.OrderBy) == 0 {
			// Streaming: the merge order is the default order.
			seen := 0
			for len(selected) < limit {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				view := next()
				if view == nil {
					break
				}
				if seen < offset {
					seen++
					continue
				}
				selected = append(selected, view)
			}
		} else {
			var all []*runView
			for n := 0; ; n++ {
				if n%4096 == 0 {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
				}
				view := next()
				if view == nil {
					break
				}
				if cur.AfterRun(q.OrderBy, view) {
					all = append(all, view)
				}
			}
			selected = topRuns(all, q.OrderBy, offset+limit)
			selected = selected[min(offset, len(selected)):]
		}
		return selected, nil
	}
}

// ---------------------------------------------------------------------------
// Experiments.

type expView struct {
	id   uint64
	ids  string
	rec  expRecord
	tags *bolt.Bucket
	key  []byte
}

var _ search.ExperimentView = (*expView)(nil)

func (e *expView) ExperimentID() string  { return e.ids }
func (e *expView) Name() string          { return e.rec.Name }
func (e *expView) CreationTime() int64   { return e.rec.CreationTime }
func (e *expView) LastUpdateTime() int64 { return e.rec.LastUpdateTime }

func (e *expView) Tag(key string) (string, bool) {
	e.key = append(appendU64(e.key[:0], e.id), key...)
	if v := e.tags.Get(e.key); v != nil {
		return string(v), true
	}
	return "", false
}

// SearchExperiments implements tracking.Store.
func (s *Store) SearchExperiments(ctx context.Context, q tracking.ExperimentQuery) (tracking.ExperimentPage, error) {
	var page tracking.ExperimentPage
	limit := pageLimit(q.MaxResults)
	viewType := q.ViewType
	if viewType != tracking.DeletedOnly && viewType != tracking.AllViews {
		viewType = tracking.ActiveOnly
	}
	fp := search.NewFingerprint("experiments").AddInt(int64(viewType)).AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := decodeCursor(q.PageToken, fp)
	if err != nil {
		return page, err
	}
	offset := cur.Offset()
	err = s.view(ctx, "search experiments", func(tx *bolt.Tx) error {
		tags := tx.Bucket(bExpTag)
		var all []*expView
		consider := func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("corrupt experiment key %x", k)
			}
			ev := &expView{id: u64be(k), tags: tags}
			if err := json.Unmarshal(v, &ev.rec); err != nil {
				return fmt.Errorf("decode experiment %d: %w", ev.id, err)
			}
			if !viewType.Includes(ev.rec.Lifecycle) {
				return nil
			}
			ev.ids = fmtExpID(ev.id)
			if len(q.Filter) > 0 && !search.MatchExperiment(q.Filter, ev) {
				return nil
			}
			if !cur.AfterExperiment(q.OrderBy, ev) {
				return nil
			}
			all = append(all, ev)
			return nil
		}
		exps := tx.Bucket(bExp)
		if s.scanSearch {
			if err := exps.ForEach(consider); err != nil {
				return err
			}
		} else if err := s.planExperiments(ctx, tx, q, cur, limit, &all, consider); err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b *expView) int { return search.CompareExperiments(q.OrderBy, a, b) })
		if offset >= len(all) {
			return nil
		}
		end := min(offset+limit, len(all))
		for _, ev := range all[offset:end] {
			page.Experiments = append(page.Experiments, ev.rec.experiment(ev.id, expTags(tx, ev.id)))
		}
		if end < len(all) {
			page.NextPageToken = search.ExperimentPageToken(fp, q.OrderBy, all[end-1])
		}
		return nil
	})
	if err != nil {
		return tracking.ExperimentPage{}, err
	}
	return page, nil
}

// topRuns returns the first n runs of all under CompareRuns(keys), in
// order. A bounded max-heap keeps it at O(len(all)·log n) when n is small.
func topRuns(all []*runView, keys []search.OrderKey, n int) []*runView {
	cmpRuns := func(a, b *runView) int { return search.CompareRuns(keys, a, b) }
	if n <= 0 || n >= len(all)/2 {
		slices.SortFunc(all, cmpRuns)
		return all[:min(n, len(all))]
	}
	h := &runMaxHeap{cmp: cmpRuns, v: make([]*runView, 0, n)}
	for _, r := range all {
		if len(h.v) < n {
			heap.Push(h, r)
		} else if cmpRuns(r, h.v[0]) < 0 {
			h.v[0] = r
			heap.Fix(h, 0)
		}
	}
	out := h.v
	slices.SortFunc(out, cmpRuns)
	return out
}

// runMaxHeap keeps the greatest run (under cmp) at the root.
type runMaxHeap struct {
	cmp func(a, b *runView) int
	v   []*runView
}

func (h *runMaxHeap) Len() int           { return len(h.v) }
func (h *runMaxHeap) Less(i, j int) bool { return h.cmp(h.v[i], h.v[j]) > 0 }
func (h *runMaxHeap) Swap(i, j int)      { h.v[i], h.v[j] = h.v[j], h.v[i] }
func (h *runMaxHeap) Push(x any)         { h.v = append(h.v, x.(*runView)) }
func (h *runMaxHeap) Pop() any {
	x := h.v[len(h.v)-1]
	h.v = h.v[:len(h.v)-1]
	return x
}
