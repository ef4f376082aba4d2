package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Trace buckets. A trace's record holds its tags and request metadata
// (both small, read and written together); the per-experiment index keeps
// searches and timestamp deletes within one experiment's traces.
var (
	bTrace    = []byte("trace")    // request_id -> tracking.TraceInfo (JSON)
	bExpTrace = []byte("exptrace") // u64(expID) | request_id -> empty
)

func init() { allBucket = append(allBucket, bTrace, bExpTrace) }

var _ tracking.TraceStore = (*Store)(nil)

func errNoTrace(id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Trace with request_id '%s' not found.", id)
}

func getTrace(tx *bolt.Tx, id string) (*tracking.TraceInfo, error) {
	v := tx.Bucket(bTrace).Get([]byte(id))
	if v == nil {
		return nil, errNoTrace(id)
	}
	var t tracking.TraceInfo
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("decode trace %q: %w", id, err)
	}
	return &t, nil
}

func expTraceKey(exp uint64, id string) []byte { return append(u64(exp), id...) }

// upsertTags sets each of add in tags (in place when the key exists,
// appended otherwise) and returns the result.
func upsertTags(tags []tracking.Tag, add []tracking.Tag) []tracking.Tag {
	for _, a := range add {
		i := slices.IndexFunc(tags, func(t tracking.Tag) bool { return t.Key == a.Key })
		if i >= 0 {
			tags[i].Value = a.Value
		} else {
			tags = append(tags, a)
		}
	}
	return tags
}

// StartTrace implements tracking.TraceStore.
func (s *Store) StartTrace(ctx context.Context, req tracking.StartTrace) (*tracking.TraceInfo, error) {
	id, err := newRunID()
	if err != nil {
		return nil, err
	}
	var out *tracking.TraceInfo
	err = s.update(ctx, "start trace", func(tx *bolt.Tx) error {
		out = nil
		expID, exp, err := mustExp(tx, req.ExperimentID)
		if err != nil {
			return err
		}
		t := &tracking.TraceInfo{
			RequestID:       id,
			ExperimentID:    fmtExpID(expID),
			TimestampMs:     req.TimestampMs,
			Status:          tracking.TraceStatusInProgress,
			RequestMetadata: upsertTags(nil, req.RequestMetadata),
			Tags:            upsertTags(nil, req.Tags),
		}
		t.Tags = upsertTags(t.Tags, []tracking.Tag{{
			Key:   tracking.TraceTagArtifactLocation,
			Value: joinURI(exp.ArtifactLocation, "traces", id, "artifacts"),
		}})
		if err := putJSON(tx.Bucket(bTrace), []byte(id), t); err != nil {
			return err
		}
		if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, id), nil); err != nil {
			return err
		}
		if err := indexTrace(tx, nil, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// modifyTrace loads a trace, applies fn and stores it.
func (s *Store) modifyTrace(ctx context.Context, op, id string, fn func(t *tracking.TraceInfo) error) (*tracking.TraceInfo, error) {
	var out *tracking.TraceInfo
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		out = nil
		t, err := getTrace(tx, id)
		if err != nil {
			return err
		}
		old := traceIndexCopy(t)
		if err := fn(t); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bTrace), []byte(id), t); err != nil {
			return err
		}
		if err := indexTrace(tx, old, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// EndTrace implements tracking.TraceStore.
func (s *Store) EndTrace(ctx context.Context, req tracking.EndTrace) (*tracking.TraceInfo, error) {
	return s.modifyTrace(ctx, "end trace", req.RequestID, func(t *tracking.TraceInfo) error {
		t.ExecutionTimeMs = req.TimestampMs - t.TimestampMs
		t.Status = req.Status
		t.RequestMetadata = upsertTags(t.RequestMetadata, req.RequestMetadata)
		t.Tags = upsertTags(t.Tags, req.Tags)
		return nil
	})
}

// GetTraceInfo implements tracking.TraceStore.
func (s *Store) GetTraceInfo(ctx context.Context, id string) (*tracking.TraceInfo, error) {
	var out *tracking.TraceInfo
	err := s.view(ctx, "get trace", func(tx *bolt.Tx) error {
		t, err := getTrace(tx, id)
		out = t
		return err
	})
	return out, err
}

// SetTraceTag implements tracking.TraceStore.
func (s *Store) SetTraceTag(ctx context.Context, id string, tag tracking.Tag) error {
	_, err := s.modifyTrace(ctx, "set trace tag", id, func(t *tracking.TraceInfo) error {
		t.Tags = upsertTags(t.Tags, []tracking.Tag{tag})
		return nil
	})
	return err
}

// DeleteTraceTag implements tracking.TraceStore.
func (s *Store) DeleteTraceTag(ctx context.Context, id, key string) error {
	_, err := s.modifyTrace(ctx, "delete trace tag", id, func(t *tracking.TraceInfo) error {
		i := slices.IndexFunc(t.Tags, func(tg tracking.Tag) bool { return tg.Key == key })
		if i < 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist,
				"No trace tag with key '%s' for trace with request_id '%s'", key, id)
		}
		t.Tags = slices.Delete(t.Tags, i, i+1)
		return nil
	})
	return err
}

// expTraces loads every trace of an experiment.
func expTraces(tx *bolt.Tx, exp uint64) ([]*tracking.TraceInfo, error) {
	var out []*tracking.TraceInfo
	prefix := u64(exp)
	c := tx.Bucket(bExpTrace).Cursor()
	for k, _ := c.Seek(prefix); k != nil && len(k) > 8 && string(k[:8]) == string(prefix); k, _ = c.Next() {
		t, err := getTrace(tx, string(k[8:]))
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// SearchTraces implements tracking.TraceStore. Unknown experiment ids
// match nothing, as in MLflow's SQL store.
func (s *Store) SearchTraces(ctx context.Context, q tracking.TraceQuery) (tracking.TracePage, error) {
	limit := pageLimit(q.MaxResults)
	var expIDs []uint64
	for _, idStr := range q.ExperimentIDs {
		id, ok := parseExpID(idStr)
		if ok && idStr != "" && !slices.Contains(expIDs, id) {
			expIDs = append(expIDs, id)
		}
	}
	fp := expIDsFingerprint(search.NewFingerprint("traces"), expIDs).AddClauses(q.Filter).AddOrderKeys(q.OrderBy)
	cur, err := decodeCursor(q.PageToken, fp)
	if err != nil {
		return tracking.TracePage{}, err
	}
	var all []*tracking.TraceInfo
	spanClauses := search.SpanClauses(q.Filter)
	indexed := false
	err = s.view(ctx, "search traces", func(tx *bolt.Tx) error {
		ready := useTraceIndex && tx.Bucket(bMeta).Get(metaTraceIdx) != nil
		af, err := newAsmtFilter(tx, q.Filter, ready, expIDs)
		if err != nil {
			return err
		}
		cand, hasCand := af.candidates()
		fewCand := hasCand && len(cand) <= candidateScanMax(limit)
		if ok, asc := indexTraceOrder(q.OrderBy); ok && cur.Offset() == 0 && ready && !fewCand {
			indexed = true
			all, err = searchTracesIndexed(tx, expIDs, q, cur, limit, asc, af)
			return err
		}
		if cur.Offset() == 0 && ready && !fewCand && entryOrder(q.OrderBy) {
			indexed = true
			all, err = searchTracesByEntries(tx, expIDs, q, cur, limit, af)
			return err
		}
		keep := func(t *tracking.TraceInfo) error {
			if !search.MatchTrace(q.Filter, t) || !cur.AfterTrace(q.OrderBy, t) || !af.match(t.RequestID) {
				return nil
			}
			if ok, err := traceSpansMatch(tx, t.RequestID, spanClauses); err != nil || !ok {
				return err
			}
			all = append(all, t)
			return nil
		}
		if hasCand {
			// The traces an assessment clause found: read only those.
			for id := range cand {
				t, err := getTrace(tx, id)
				if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					continue
				}
				if err != nil {
					return err
				}
				if exp, ok := parseExpID(t.ExperimentID); !ok || !slices.Contains(expIDs, exp) {
					continue
				}
				if err := keep(t); err != nil {
					return err
				}
			}
			return nil
		}
		for _, id := range expIDs {
			ts, err := expTraces(tx, id)
			if err != nil {
				return err
			}
			for _, t := range ts {
				if err := keep(t); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return tracking.TracePage{}, err
	}
	var page tracking.TracePage
	if indexed {
		page.Traces = all
	} else {
		sort.SliceStable(all, func(i, j int) bool { return search.CompareTraces(q.OrderBy, all[i], all[j]) < 0 })
	}
	if offset := cur.Offset(); !indexed && offset < len(all) {
		page.Traces = all[offset:min(offset+limit, len(all))]
	}
	// Like MLflow's search_traces, a full page always has a next token.
	if len(page.Traces) == limit {
		page.NextPageToken = search.TracePageToken(fp, q.OrderBy, page.Traces[limit-1])
	}
	return page, nil
}

// candidateScanMax is the size up to which the traces an assessment
// clause found are read directly rather than walking the order index
// (which stops once the page is full).
// Tests change it to select the ordered walk.
var candidateScanMax = func(limit int) int { return max(1000, 4*limit) }

// DeleteTraces implements tracking.TraceStore.
func (s *Store) DeleteTraces(ctx context.Context, req tracking.DeleteTraces) (int, error) {
	var n int
	err := s.update(ctx, "delete traces", func(tx *bolt.Tx) error {
		n = 0
		exp, ok := parseExpID(req.ExperimentID)
		if !ok {
			return nil
		}
		var victims []*tracking.TraceInfo
		if len(req.RequestIDs) > 0 {
			for _, id := range req.RequestIDs {
				t, err := getTrace(tx, id)
				if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					continue
				}
				if err != nil {
					return err
				}
				if t.ExperimentID == fmtExpID(exp) {
					victims = append(victims, t)
				}
			}
		} else {
			ts, err := expTraces(tx, exp)
			if err != nil {
				return err
			}
			sort.SliceStable(ts, func(i, j int) bool { return ts[i].TimestampMs < ts[j].TimestampMs })
			for _, t := range ts {
				if t.TimestampMs > req.MaxTimestampMillis || (req.MaxTraces > 0 && len(victims) >= req.MaxTraces) {
					break
				}
				victims = append(victims, t)
			}
		}
		for _, t := range victims {
			if err := tx.Bucket(bTrace).Delete([]byte(t.RequestID)); err != nil {
				return err
			}
			if err := tx.Bucket(bExpTrace).Delete(expTraceKey(exp, t.RequestID)); err != nil {
				return err
			}
			if err := deleteTraceSpans(tx, t.RequestID); err != nil {
				return err
			}
			if err := indexTrace(tx, t, nil); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// StartTraceV3 implements tracking.TraceStore.
func (s *Store) StartTraceV3(ctx context.Context, in *tracking.TraceInfo) (*tracking.TraceInfo, error) {
	if in.RequestID == "" {
		return nil, tracking.Errorf(tracking.InvalidParameterValue, "Missing value for required parameter 'trace.trace_info.trace_id'.")
	}
	var out *tracking.TraceInfo
	err := s.update(ctx, "start trace v3", func(tx *bolt.Tx) error {
		out = nil
		expID, exp, err := mustExp(tx, in.ExperimentID)
		if err != nil {
			return err
		}
		if exp.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(expID, exp.Lifecycle)
		}
		t := *in
		t.ExperimentID = fmtExpID(expID)
		t.RequestMetadata = upsertTags(nil, in.RequestMetadata)
		t.Tags = upsertTags(nil, in.Tags)
		t.Assessments = slices.Clone(in.Assessments)
		old, err := getTrace(tx, in.RequestID)
		switch {
		case tracking.IsCode(err, tracking.ResourceDoesNotExist):
		case err != nil:
			return err
		case old.ExperimentID != t.ExperimentID:
			// Moving a trace would merge its data into an experiment
			// its readers may not read.
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Trace '%s' already exists in experiment %s; it cannot be started again in experiment %s.",
				t.RequestID, old.ExperimentID, t.ExperimentID)
		default:
			// Upsert: keep what the new record does not say.
			for _, tg := range old.Tags {
				if _, ok := t.Tag(tg.Key); !ok {
					t.Tags = append(t.Tags, tg)
				}
			}
			for _, m := range old.RequestMetadata {
				if _, ok := t.Metadata(m.Key); !ok {
					t.RequestMetadata = append(t.RequestMetadata, m)
				}
			}
			if t.RequestPreview == "" {
				t.RequestPreview = old.RequestPreview
			}
			if t.ResponsePreview == "" {
				t.ResponsePreview = old.ResponsePreview
			}
			if len(t.Assessments) == 0 {
				t.Assessments = old.Assessments
			}
			t.LinkedRunIDs = old.LinkedRunIDs
		}
		for i := range t.Assessments {
			if t.Assessments[i].TraceID == "" {
				t.Assessments[i].TraceID = t.RequestID
			}
		}
		t.Tags = upsertTags(t.Tags, []tracking.Tag{{
			Key:   tracking.TraceTagArtifactLocation,
			Value: joinURI(exp.ArtifactLocation, "traces", t.RequestID, "artifacts"),
		}})
		if err := putJSON(tx.Bucket(bTrace), []byte(t.RequestID), &t); err != nil {
			return err
		}
		if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, t.RequestID), nil); err != nil {
			return err
		}
		if err := indexTrace(tx, old, &t); err != nil {
			return err
		}
		out = &t
		return nil
	})
	return out, err
}

// LinkTracesToRun implements tracking.TraceStore.
func (s *Store) LinkTracesToRun(ctx context.Context, traceIDs []string, runID string) error {
	return s.update(ctx, "link traces to run", func(tx *bolt.Tx) error {
		if _, err := mustRun(tx, runID); err != nil {
			return err
		}
		for _, id := range traceIDs {
			t, err := getTrace(tx, id)
			if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if t.LinkedToRun(runID) {
				continue
			}
			t.LinkedRunIDs = append(t.LinkedRunIDs, runID)
			if err := putJSON(tx.Bucket(bTrace), []byte(id), t); err != nil {
				return err
			}
		}
		return nil
	})
}

func errNoAssessment(traceID, id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist,
		"Assessment with ID '%s' not found for trace '%s'", id, traceID)
}

func findAssessment(t *tracking.TraceInfo, id string) int {
	return slices.IndexFunc(t.Assessments, func(a tracking.Assessment) bool { return a.AssessmentID == id })
}

// CreateAssessment implements tracking.TraceStore.
func (s *Store) CreateAssessment(ctx context.Context, a tracking.Assessment) (*tracking.Assessment, error) {
	if a.AssessmentID == "" {
		hex, err := newRunID()
		if err != nil {
			return nil, err
		}
		a.AssessmentID = "a-" + hex
	}
	now := s.now()
	if a.CreateTimeMs == 0 {
		a.CreateTimeMs = now
	}
	if a.LastUpdateTimeMs == 0 {
		a.LastUpdateTimeMs = a.CreateTimeMs
	}
	var out *tracking.Assessment
	_, err := s.modifyTrace(ctx, "create assessment", a.TraceID, func(t *tracking.TraceInfo) error {
		out = nil
		if findAssessment(t, a.AssessmentID) >= 0 {
			return tracking.Errorf(tracking.ResourceAlreadyExists,
				"Assessment with ID '%s' already exists for trace '%s'", a.AssessmentID, a.TraceID)
		}
		if a.Overrides != "" {
			i := findAssessment(t, a.Overrides)
			if i < 0 {
				return errNoAssessment(a.TraceID, a.Overrides)
			}
			t.Assessments[i].Valid = false
		}
		t.Assessments = append(t.Assessments, a)
		cp := a
		out = &cp
		return nil
	})
	return out, err
}

// GetAssessment implements tracking.TraceStore.
func (s *Store) GetAssessment(ctx context.Context, traceID, id string) (*tracking.Assessment, error) {
	t, err := s.GetTraceInfo(ctx, traceID)
	if err != nil {
		return nil, err
	}
	i := findAssessment(t, id)
	if i < 0 {
		return nil, errNoAssessment(traceID, id)
	}
	return &t.Assessments[i], nil
}

// UpdateAssessment implements tracking.TraceStore.
func (s *Store) UpdateAssessment(ctx context.Context, traceID, id string, fn func(*tracking.Assessment) error) (*tracking.Assessment, error) {
	now := s.now()
	var out *tracking.Assessment
	_, err := s.modifyTrace(ctx, "update assessment", traceID, func(t *tracking.TraceInfo) error {
		out = nil
		i := findAssessment(t, id)
		if i < 0 {
			return errNoAssessment(traceID, id)
		}
		a := t.Assessments[i]
		a.Metadata = maps.Clone(a.Metadata)
		if err := fn(&a); err != nil {
			return err
		}
		a.AssessmentID, a.TraceID = id, traceID
		a.LastUpdateTimeMs = now
		t.Assessments[i] = a
		out = &a
		return nil
	})
	return out, err
}

// DeleteAssessment implements tracking.TraceStore.
func (s *Store) DeleteAssessment(ctx context.Context, traceID, id string) error {
	_, err := s.modifyTrace(ctx, "delete assessment", traceID, func(t *tracking.TraceInfo) error {
		i := findAssessment(t, id)
		if i < 0 {
			return nil
		}
		if o := t.Assessments[i].Overrides; o != "" {
			if j := findAssessment(t, o); j >= 0 {
				t.Assessments[j].Valid = true
			}
		}
		t.Assessments = slices.Delete(t.Assessments, i, i+1)
		return nil
	})
	return err
}
