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

// Assessment and session indexes of traces, for feedback, expectation and
// issue clauses (search.MatchAssessment):
//
//	traceasmt:     str(type) | str(name) | str(request_id) | assessment_id -> flags | str(session) | value
//	traceasmtsess: the same, for the session-scoped assessments only
//	traceasmtval:  str(type) | str(name) | uvarint(len(value)) | value[:maxKeyedValue] | str(request_id) | assessment_id
//	               -> flags | str(session) | value, for the valid feedback and expectations only
//	tracesess:     str(session) | request_id -> empty
//
// type is feedback, expectation or issue, value the text MLflow's SQL
// store compares (tracking.Assessment.SearchFields), flags bit 0 valid
// and bit 1 session-scoped, session the trace's mlflow.trace.session
// metadata. A clause reads the entries of one kind and name, across
// experiments, and expands session-scoped matches (traceasmtsess) through
// tracesess to every trace of the session, as SqlAlchemyStore does. An
// equality clause instead seeks its value in traceasmtval and reads only
// the entries holding it (a value longer than maxKeyedValue is keyed by
// its length and first bytes; the entry's full value decides). When
// few traces match, the search reads just those; when many do, it walks
// the order index and looks each trace's entries up (asmtFilter). indexTrace keeps all
// in the transaction that writes the trace, and the trace index build
// (metaTraceIdx) covers them; traceasmtval, added in schema 6, has its
// own build (asmtValBuild) for files written before it.
var (
	bTraceAsmt     = []byte("traceasmt")
	bTraceAsmtSess = []byte("traceasmtsess") // the session-scoped entries of traceasmt again
	bTraceAsmtVal  = []byte("traceasmtval")  // the valid feedback and expectations by value
	bTraceSession  = []byte("tracesess")
	// metaAsmtValIdx marks traceasmtval complete, metaAsmtValIdxPos is the
	// trace id its build has indexed up to.
	metaAsmtValIdx    = []byte("tavx")
	metaAsmtValIdxPos = []byte("tavxpos")
)

func init() {
	allBucket = append(allBucket, bTraceAsmt, bTraceAsmtSess, bTraceAsmtVal, bTraceSession)
}

// useAsmtValIndex lets tests compare value seeks with the name scans.
var useAsmtValIndex = true

// asmtReadHook, when set (tests), is called for every assessment index
// entry a search reads.
var asmtReadHook func(bucket []byte)

// hasTraceIndexBuckets reports whether the database has every trace index
// bucket but traceasmtval (asmtValBuild's); one written without some gets
// them built on open.
func hasTraceIndexBuckets(tx *bolt.Tx) bool {
	for _, b := range [][]byte{bTraceOrd, bTraceAsmt, bTraceAsmtSess, bTraceSession} {
		if tx.Bucket(b) == nil {
			return false
		}
	}
	return true
}

// asmtValBuild is traceasmtval's background build for files written
// before it (schema 5 and older). Until it is ready, equality clauses
// scan the entries of their name, as before.
var asmtValBuild = keyedBuild{what: "assessment value", records: bTrace, ready: metaAsmtValIdx, pos: metaAsmtValIdxPos,
	index: func(tx *bolt.Tx, key []byte) error {
		t, err := getTrace(tx, string(key))
		if err != nil {
			return err
		}
		_, vals := asmtEntries(t)
		b := tx.Bucket(bTraceAsmtVal)
		for k, v := range vals {
			if err := b.Put([]byte(k), v); err != nil {
				return fmt.Errorf("index assessment values of %s: %w", t.RequestID, err)
			}
		}
		return nil
	}}

// prepareAsmtValIndex decides, in the opening transaction, whether
// traceasmtval must be built. When the whole trace index is built from
// scratch (hadTraceIndex false), that build writes it too, and searches
// use neither until it is done.
func prepareAsmtValIndex(tx *bolt.Tx, hadTraceIndex, hadBucket bool) (bool, error) {
	if !hadTraceIndex {
		meta := tx.Bucket(bMeta)
		if err := meta.Delete(metaAsmtValIdxPos); err != nil {
			return false, err
		}
		return false, meta.Put(metaAsmtValIdx, []byte{1})
	}
	return asmtValBuild.prepare(tx, hadBucket)
}

// buildAsmtValIndex runs asmtValBuild (see runKeyedBuild).
func (s *Store) buildAsmtValIndex(ctx context.Context, maxChunks int) error {
	return s.runKeyedBuild(ctx, asmtValBuild, maxChunks)
}

// asmtValReady reports whether equality clauses may seek traceasmtval.
func asmtValReady(tx *bolt.Tx) bool {
	return useAsmtValIndex && tx.Bucket(bMeta).Get(metaAsmtValIdx) != nil
}

const (
	asmtValid         = 1
	asmtSessionScoped = 2
	// maxIndexedSession bounds the session ids indexed (bbolt keys are at
	// most 32 KiB); longer ones are not expanded to their session.
	maxIndexedSession = 16 << 10
	// maxKeyedValue bounds the bytes of a value in a traceasmtval key.
	maxKeyedValue = 512
)

func traceSession(t *tracking.TraceInfo) string {
	s, _ := t.Metadata(search.TraceMetadataSession)
	if len(s) > maxIndexedSession {
		return ""
	}
	return s
}

func asmtPrefix(typ, name string) []byte { return appendStr(appendStr(nil, typ), name) }

// asmtValPrefix is the traceasmtval prefix of the entries of one kind,
// name and value: only those have it (the length is self-delimiting),
// and, for a value longer than maxKeyedValue, those of the same length
// and first bytes.
func asmtValPrefix(typ, name, value string) []byte {
	k := binary.AppendUvarint(asmtPrefix(typ, name), uint64(len(value)))
	return append(k, value[:min(len(value), maxKeyedValue)]...)
}

// asmtEntries lists the traceasmt and traceasmtval entries of a trace
// (nil: none).
func asmtEntries(t *tracking.TraceInfo) (byTrace, byValue map[string][]byte) {
	if t == nil || len(t.Assessments) == 0 {
		return nil, nil
	}
	session := traceSession(t)
	byTrace = make(map[string][]byte, len(t.Assessments))
	for i := range t.Assessments {
		a := &t.Assessments[i]
		f := a.SearchFields()
		if f.Type == "" || len(f.Name) > maxIndexedSession {
			continue
		}
		k := appendStr(asmtPrefix(f.Type, f.Name), t.RequestID)
		k = append(k, a.AssessmentID...)
		var flags byte
		if f.Valid {
			flags |= asmtValid
		}
		if f.SessionScoped {
			flags |= asmtSessionScoped
		}
		v := appendStr([]byte{flags}, session)
		v = append(v, f.Value...)
		byTrace[string(k)] = v
		// Value clauses match valid assessments only; issues are
		// matched by name.
		if f.Valid && f.Type != "issue" {
			vk := appendStr(asmtValPrefix(f.Type, f.Name, f.Value), t.RequestID)
			vk = append(vk, a.AssessmentID...)
			if byValue == nil {
				byValue = map[string][]byte{}
			}
			byValue[string(vk)] = v
		}
	}
	return byTrace, byValue
}

// indexTraceAssessments replaces the assessment and session entries of
// old (nil: none) by those of t (nil: the trace was deleted), writing
// only what changed.
func indexTraceAssessments(tx *bolt.Tx, old, t *tracking.TraceInfo) error {
	b, bs := tx.Bucket(bTraceAsmt), tx.Bucket(bTraceAsmtSess)
	oldE, oldV := asmtEntries(old)
	newE, newV := asmtEntries(t)
	if err := syncEntries(tx.Bucket(bTraceAsmtVal), oldV, newV); err != nil {
		return fmt.Errorf("index assessment values: %w", err)
	}
	for k, v := range oldE {
		if _, ok := newE[k]; !ok {
			if err := b.Delete([]byte(k)); err != nil {
				return fmt.Errorf("unindex assessments: %w", err)
			}
			if v[0]&asmtSessionScoped != 0 {
				if err := bs.Delete([]byte(k)); err != nil {
					return fmt.Errorf("unindex assessments: %w", err)
				}
			}
		}
	}
	for k, v := range newE {
		ov, had := oldE[k]
		if had && bytes.Equal(ov, v) {
			continue
		}
		if err := b.Put([]byte(k), v); err != nil {
			return fmt.Errorf("index assessments: %w", err)
		}
		var err error
		switch {
		case v[0]&asmtSessionScoped != 0:
			err = bs.Put([]byte(k), v)
		case had && ov[0]&asmtSessionScoped != 0:
			err = bs.Delete([]byte(k))
		}
		if err != nil {
			return fmt.Errorf("index assessments: %w", err)
		}
	}
	sb := tx.Bucket(bTraceSession)
	oldS, newS := "", ""
	if old != nil {
		oldS = traceSession(old)
	}
	if t != nil {
		newS = traceSession(t)
	}
	if oldS != "" && (oldS != newS || t == nil) {
		if err := sb.Delete(append(appendStr(nil, oldS), old.RequestID...)); err != nil {
			return fmt.Errorf("unindex session: %w", err)
		}
	}
	if newS != "" {
		if err := sb.Put(append(appendStr(nil, newS), t.RequestID...), nil); err != nil {
			return fmt.Errorf("index session: %w", err)
		}
	}
	return nil
}

// syncEntries replaces the entries old of bucket b by new, writing only
// what changed.
func syncEntries(b *bolt.Bucket, old, new map[string][]byte) error {
	for k := range old {
		if _, ok := new[k]; !ok {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
	}
	for k, v := range new {
		if ov, had := old[k]; had && bytes.Equal(ov, v) {
			continue
		}
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

// asmtFilter is a search's assessment clauses resolved against the
// indexes (or the records while the indexes are not ready). A clause few
// traces satisfy is a set of trace ids; one many satisfy is looked up per
// trace (lazy), with the traces its session-scoped matches cover as a set.
type asmtFilter struct {
	tx      *bolt.Tx
	clauses []asmtClause
}

type asmtClause struct {
	c     *search.Clause
	neg   bool                // IS NULL: the trace must not match
	set   map[string]struct{} // the traces matching; nil when lazy
	lazy  []byte              // str(type) | str(name): look the trace up
	extra map[string]struct{} // lazy: the traces covered through sessions
}

// asmtSetMax bounds the traces a clause is resolved to before it turns
// lazy (the search then walks the order index).
var asmtSetMax = 4096

func (f *asmtFilter) match(id string) bool {
	if f == nil {
		return true
	}
	for i := range f.clauses {
		ac := &f.clauses[i]
		var in bool
		if ac.set != nil {
			_, in = ac.set[id]
		} else {
			_, in = ac.extra[id]
			in = in || f.lookup(ac, id)
		}
		if in == ac.neg {
			return false
		}
	}
	return true
}

// lookup reports whether one of the trace's own assessments matches.
func (f *asmtFilter) lookup(ac *asmtClause, id string) bool {
	prefix := appendStr(bytes.Clone(ac.lazy), id)
	cur := f.tx.Bucket(bTraceAsmt).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if asmtReadHook != nil {
			asmtReadHook(bTraceAsmt)
		}
		if fields, _, ok := asmtFields(ac.c, v); ok && search.MatchAssessment(ac.c, &fields) {
			return true
		}
	}
	return false
}

// candidates returns the smallest set a matching trace must be in.
func (f *asmtFilter) candidates() (map[string]struct{}, bool) {
	if f == nil {
		return nil, false
	}
	var best map[string]struct{}
	found := false
	for _, ac := range f.clauses {
		if !ac.neg && ac.set != nil && (!found || len(ac.set) < len(best)) {
			best, found = ac.set, true
		}
	}
	return best, found
}

// asmtFields decodes an index entry's value for clause c.
func asmtFields(c *search.Clause, v []byte) (search.AssessmentFields, string, bool) {
	if len(v) < 1 {
		return search.AssessmentFields{}, "", false
	}
	session, value, ok := readStr(v[1:])
	if !ok {
		return search.AssessmentFields{}, "", false
	}
	name := c.Key
	if c.Entity == search.EntityIssue {
		name = c.Str
	}
	return search.AssessmentFields{Type: search.AssessmentType(c), Name: name, Value: string(value),
		Valid: v[0]&asmtValid != 0, SessionScoped: v[0]&asmtSessionScoped != 0}, session, true
}

// newAsmtFilter resolves the filter's assessment clauses (nil when it has
// none): from the indexes when they are ready, otherwise from the records
// of the searched experiments' traces. An equality reads only the entries
// of its value once traceasmtval is ready; any other comparison reads
// the entries of its kind and name.
func newAsmtFilter(tx *bolt.Tx, clauses []search.Clause, ready bool, expIDs []uint64) (*asmtFilter, error) {
	ac := search.AssessmentClauses(clauses)
	if len(ac) == 0 {
		return nil, nil
	}
	valReady := ready && asmtValReady(tx)
	var records []*tracking.TraceInfo
	if !ready {
		for _, exp := range expIDs {
			ts, err := expTraces(tx, exp)
			if err != nil {
				return nil, err
			}
			records = append(records, ts...)
		}
	}
	f := &asmtFilter{tx: tx}
	for i := range ac {
		c := &ac[i]
		name := c.Key
		if c.Entity == search.EntityIssue {
			name = c.Str
		}
		out := asmtClause{c: c, neg: c.Op == search.OpIsNull}
		set := map[string]struct{}{}
		sessions := map[string]struct{}{}
		visit := func(traceID, session string, fields *search.AssessmentFields) {
			if !search.MatchAssessment(c, fields) {
				return
			}
			set[traceID] = struct{}{}
			if c.Entity != search.EntityIssue && fields.SessionScoped && session != "" {
				sessions[session] = struct{}{}
			}
		}
		if ready {
			prefix := asmtPrefix(search.AssessmentType(c), name)
			// scan calls fn on the entries of bucket b under p until fn
			// returns false.
			scan := func(b, p []byte, fn func(id, session string, fields *search.AssessmentFields) bool) error {
				cur := tx.Bucket(b).Cursor()
				for k, v := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = cur.Next() {
					if asmtReadHook != nil {
						asmtReadHook(b)
					}
					id, _, ok := readStr(k[len(p):])
					fields, session, vok := asmtFields(c, v)
					if !ok || !vok {
						return fmt.Errorf("assessment index entry %x: malformed", k)
					}
					if !fn(id, session, &fields) {
						return nil
					}
				}
				return nil
			}
			full := func(id, session string, fields *search.AssessmentFields) bool {
				visit(id, session, fields)
				return len(set) <= asmtSetMax
			}
			// An equality seeks the entries holding each text it
			// matches (the raw operand and its JSON string), up to
			// asmtSetMax traces: those and their sessions are every
			// match. Past asmtSetMax it turns lazy, and the sessions
			// come from every session-scoped entry of the name.
			seek := c.Op == search.OpEq && c.Entity != search.EntityIssue && valReady
			if seek {
				for _, text := range c.List {
					if err := scan(bTraceAsmtVal, asmtValPrefix(search.AssessmentType(c), name, text), full); err != nil {
						return nil, err
					}
				}
			}
			if !seek || len(set) > asmtSetMax {
				// Every session-scoped match: the sessions covered.
				if err := scan(bTraceAsmtSess, prefix, func(id, session string, fields *search.AssessmentFields) bool {
					visit(id, session, fields)
					return true
				}); err != nil {
					return nil, err
				}
			}
			if !seek {
				// The traces matching directly, up to asmtSetMax.
				set = map[string]struct{}{}
				if err := scan(bTraceAsmt, prefix, func(id, session string, fields *search.AssessmentFields) bool {
					if search.MatchAssessment(c, fields) {
						set[id] = struct{}{}
					}
					return len(set) <= asmtSetMax
				}); err != nil {
					return nil, err
				}
			}
			if len(set) > asmtSetMax {
				out.lazy, set = prefix, nil
			}
			covered := map[string]struct{}{}
			for s := range sessions {
				p := appendStr(nil, s)
				sc := tx.Bucket(bTraceSession).Cursor()
				for k, _ := sc.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = sc.Next() {
					covered[string(k[len(p):])] = struct{}{}
				}
			}
			if out.lazy != nil {
				out.extra = covered
			} else {
				for id := range covered {
					set[id] = struct{}{}
				}
				out.set = set
			}
		} else {
			for _, t := range records {
				session := traceSession(t)
				for j := range t.Assessments {
					fields := t.Assessments[j].SearchFields()
					visit(t.RequestID, session, &fields)
				}
			}
			for _, t := range records {
				if s := traceSession(t); s != "" {
					if _, ok := sessions[s]; ok {
						set[t.RequestID] = struct{}{}
					}
				}
			}
			out.set = set
		}
		f.clauses = append(f.clauses, out)
	}
	return f, nil
}
