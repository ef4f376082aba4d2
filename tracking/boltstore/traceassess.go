package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Assessment and session indexes of traces, for feedback, expectation and
// issue clauses (search.MatchAssessment):
//
//	traceasmt: str(type) | str(name) | str(request_id) | assessment_id -> flags | str(session) | value
//	tracesess: str(session) | request_id -> empty
//
// type is feedback, expectation or issue, value the text MLflow's SQL
// store compares (tracking.Assessment.SearchFields), flags bit 0 valid
// and bit 1 session-scoped, session the trace's mlflow.trace.session
// metadata. A clause reads the entries of one kind and name, across
// experiments, and expands session-scoped matches through tracesess to
// every trace of the session, as SqlAlchemyStore does; the traces found
// are then checked against the rest of the filter. indexTrace keeps both
// in the transaction that writes the trace, and the trace index build
// (metaTraceIdx) covers them.
var (
	bTraceAsmt    = []byte("traceasmt")
	bTraceSession = []byte("tracesess")
)

func init() { allBucket = append(allBucket, bTraceAsmt, bTraceSession) }

const (
	asmtValid         = 1
	asmtSessionScoped = 2
	// maxIndexedSession bounds the session ids indexed (bbolt keys are at
	// most 32 KiB); longer ones are not expanded to their session.
	maxIndexedSession = 16 << 10
)

func traceSession(t *tracking.TraceInfo) string {
	s, _ := t.Metadata(search.TraceMetadataSession)
	if len(s) > maxIndexedSession {
		return ""
	}
	return s
}

func asmtPrefix(typ, name string) []byte { return appendStr(appendStr(nil, typ), name) }

// asmtEntries lists the index entries of a trace (nil: none).
func asmtEntries(t *tracking.TraceInfo) map[string][]byte {
	if t == nil || len(t.Assessments) == 0 {
		return nil
	}
	session := traceSession(t)
	out := make(map[string][]byte, len(t.Assessments))
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
		out[string(k)] = append(v, f.Value...)
	}
	return out
}

// indexTraceAssessments replaces the assessment and session entries of
// old (nil: none) by those of t (nil: the trace was deleted), writing
// only what changed.
func indexTraceAssessments(tx *bolt.Tx, old, t *tracking.TraceInfo) error {
	b := tx.Bucket(bTraceAsmt)
	oldE, newE := asmtEntries(old), asmtEntries(t)
	for k := range oldE {
		if _, ok := newE[k]; !ok {
			if err := b.Delete([]byte(k)); err != nil {
				return fmt.Errorf("unindex assessments: %w", err)
			}
		}
	}
	for k, v := range newE {
		if ov, ok := oldE[k]; ok && bytes.Equal(ov, v) {
			continue
		}
		if err := b.Put([]byte(k), v); err != nil {
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

// asmtFilter is a search's assessment clauses resolved to the traces that
// have a matching assessment (directly or through their session).
type asmtFilter struct {
	sets []map[string]struct{}
	neg  []bool // IS NULL: the trace must not be in the set
}

func (f *asmtFilter) match(id string) bool {
	if f == nil {
		return true
	}
	for i, set := range f.sets {
		if _, in := set[id]; in == f.neg[i] {
			return false
		}
	}
	return true
}

// candidates returns the smallest set a matching trace must be in.
func (f *asmtFilter) candidates() (map[string]struct{}, bool) {
	if f == nil {
		return nil, false
	}
	var best map[string]struct{}
	found := false
	for i, set := range f.sets {
		if !f.neg[i] && (!found || len(set) < len(best)) {
			best, found = set, true
		}
	}
	return best, found
}

// assessmentView is one assessment as the filter reads it.
type assessmentView struct {
	traceID string
	session string
	fields  search.AssessmentFields
}

// newAsmtFilter resolves the filter's assessment clauses (nil when it has
// none): from the indexes when they are ready, otherwise from the records
// of the searched experiments' traces.
func newAsmtFilter(tx *bolt.Tx, clauses []search.Clause, ready bool, expIDs []uint64) (*asmtFilter, error) {
	ac := search.AssessmentClauses(clauses)
	if len(ac) == 0 {
		return nil, nil
	}
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
	f := &asmtFilter{}
	for i := range ac {
		c := &ac[i]
		name := c.Key
		if c.Entity == search.EntityIssue {
			name = c.Str
		}
		set := map[string]struct{}{}
		sessions := map[string]struct{}{}
		visit := func(a *assessmentView) {
			if !search.MatchAssessment(c, &a.fields) {
				return
			}
			set[a.traceID] = struct{}{}
			if c.Entity != search.EntityIssue && a.fields.SessionScoped && a.session != "" {
				sessions[a.session] = struct{}{}
			}
		}
		if ready {
			prefix := asmtPrefix(search.AssessmentType(c), name)
			cur := tx.Bucket(bTraceAsmt).Cursor()
			for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
				id, _, ok := readStr(k[len(prefix):])
				if !ok || len(v) < 1 {
					return nil, fmt.Errorf("assessment index entry %x: malformed", k)
				}
				session, value, ok := readStr(v[1:])
				if !ok {
					return nil, fmt.Errorf("assessment index entry %x: malformed value", k)
				}
				visit(&assessmentView{traceID: id, session: session, fields: search.AssessmentFields{
					Type: search.AssessmentType(c), Name: name, Value: string(value),
					Valid: v[0]&asmtValid != 0, SessionScoped: v[0]&asmtSessionScoped != 0}})
			}
			for s := range sessions {
				p := appendStr(nil, s)
				sc := tx.Bucket(bTraceSession).Cursor()
				for k, _ := sc.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = sc.Next() {
					set[string(k[len(p):])] = struct{}{}
				}
			}
		} else {
			for _, t := range records {
				session := traceSession(t)
				for j := range t.Assessments {
					visit(&assessmentView{traceID: t.RequestID, session: session, fields: t.Assessments[j].SearchFields()})
				}
			}
			for _, t := range records {
				if s := traceSession(t); s != "" {
					if _, ok := sessions[s]; ok {
						set[t.RequestID] = struct{}{}
					}
				}
			}
		}
		f.sets = append(f.sets, set)
		f.neg = append(f.neg, c.Op == search.OpIsNull)
	}
	return f, nil
}
