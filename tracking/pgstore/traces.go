package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Traces (tracking.TraceStore) on the tables trace_info, trace_tags,
// trace_request_metadata, trace_run_links and assessments, with the bbolt
// store's semantics and messages (tracking/boltstore/traces.go). Every
// change of one trace locks its trace_info row (FOR UPDATE), so that read
// modify write steps (assessment overrides, V3 upserts) are atomic across
// replicas.

func errNoTrace(id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Trace with request_id '%s' not found.", id)
}

func errNoAssessment(traceID, id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist,
		"Assessment with ID '%s' not found for trace '%s'", id, traceID)
}

// lockTrace locks a trace row (mode "" for none) and returns its
// experiment id and start time; a missing trace is RESOURCE_DOES_NOT_EXIST.
func lockTrace(ctx context.Context, tx dbtx, id, mode string) (exp, start int64, err error) {
	if !storable(id) {
		return 0, 0, errNoTrace(id)
	}
	err = tx.QueryRow(ctx, "SELECT experiment_id, timestamp_ms FROM trace_info WHERE request_id = $1 "+mode, id).Scan(&exp, &start)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, errNoTrace(id)
	}
	return exp, start, err
}

// upsertTraceKV sets a tag or request metadata entry (table trace_tags or
// trace_request_metadata), keeping the position of an existing key.
func upsertTraceKV(ctx context.Context, tx dbtx, table, id string, t tracking.Tag) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+table+` (request_id, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (request_id, key) DO UPDATE SET value = EXCLUDED.value`, id, t.Key, t.Value)
	return err
}

const traceColumns = "ti.request_id, ti.experiment_id::text, ti.timestamp_ms, ti.execution_time_ms, ti.status, " +
	"ti.client_request_id, ti.request_preview, ti.response_preview"

// queryTraces runs a query selecting traceColumns and loads the traces'
// tags, metadata, run links and assessments.
func queryTraces(ctx context.Context, tx dbtx, sql string, args ...any) ([]*tracking.TraceInfo, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []*tracking.TraceInfo
	for rows.Next() {
		t := &tracking.TraceInfo{}
		if err := rows.Scan(&t.RequestID, &t.ExperimentID, &t.TimestampMs, &t.ExecutionTimeMs, &t.Status,
			&t.ClientRequestID, &t.RequestPreview, &t.ResponsePreview); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, fillTraces(ctx, tx, out)
}

// fillTraces loads tags, request metadata, run links and assessments (each
// in the order they were first set).
func fillTraces(ctx context.Context, tx dbtx, ts []*tracking.TraceInfo) error {
	if len(ts) == 0 {
		return nil
	}
	ids := make([]string, len(ts))
	idx := make(map[string]*tracking.TraceInfo, len(ts))
	for i, t := range ts {
		ids[i] = t.RequestID
		idx[t.RequestID] = t
	}
	for _, table := range []string{"trace_tags", "trace_request_metadata"} {
		rows, err := tx.Query(ctx, "SELECT request_id, key, value FROM "+table+
			" WHERE request_id = ANY($1::text[]) ORDER BY request_id, seq", ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var kv tracking.Tag
			if err := rows.Scan(&id, &kv.Key, &kv.Value); err != nil {
				rows.Close()
				return err
			}
			if t := idx[id]; table == "trace_tags" {
				t.Tags = append(t.Tags, kv)
			} else {
				t.RequestMetadata = append(t.RequestMetadata, kv)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, "SELECT request_id, run_id FROM trace_run_links WHERE request_id = ANY($1::text[]) ORDER BY request_id, seq", ids)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, run string
		if err := rows.Scan(&id, &run); err != nil {
			rows.Close()
			return err
		}
		idx[id].LinkedRunIDs = append(idx[id].LinkedRunIDs, run)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, "SELECT request_id, body::text FROM assessments WHERE request_id = ANY($1::text[]) ORDER BY request_id, seq", ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		var a tracking.Assessment
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return fmt.Errorf("decode assessment of trace %q: %w", id, err)
		}
		idx[id].Assessments = append(idx[id].Assessments, a)
	}
	return rows.Err()
}

// readTrace returns one trace with everything it has.
func readTrace(ctx context.Context, tx dbtx, id string) (*tracking.TraceInfo, error) {
	if !storable(id) {
		return nil, errNoTrace(id)
	}
	ts, err := queryTraces(ctx, tx, "SELECT "+traceColumns+" FROM trace_info ti WHERE ti.request_id = $1", id)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errNoTrace(id)
	}
	return ts[0], nil
}

// StartTrace implements tracking.TraceStore.
func (s *Store) StartTrace(ctx context.Context, req tracking.StartTrace) (*tracking.TraceInfo, error) {
	id, err := newRunID()
	if err != nil {
		return nil, err
	}
	var out *tracking.TraceInfo
	err = s.inTx(ctx, "start trace", func(tx pgx.Tx) error {
		expID, loc, err := childExperiment(ctx, tx, req.ExperimentID, false)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status) VALUES ($1, $2, $3, $4)`,
			id, expID, req.TimestampMs, tracking.TraceStatusInProgress); err != nil {
			return err
		}
		for _, m := range req.RequestMetadata {
			if err := upsertTraceKV(ctx, tx, "trace_request_metadata", id, m); err != nil {
				return err
			}
		}
		tags := append(append([]tracking.Tag(nil), req.Tags...), tracking.Tag{
			Key: tracking.TraceTagArtifactLocation, Value: joinURI(loc, "traces", id, "artifacts")})
		for _, t := range tags {
			if err := upsertTraceKV(ctx, tx, "trace_tags", id, t); err != nil {
				return err
			}
		}
		out, err = readTrace(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// modifyTrace locks a trace, applies fn and returns the trace.
func (s *Store) modifyTrace(ctx context.Context, op, id string, fn func(tx pgx.Tx, start int64) error) (*tracking.TraceInfo, error) {
	var out *tracking.TraceInfo
	err := s.inTx(ctx, op, func(tx pgx.Tx) error {
		_, start, err := lockTrace(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := fn(tx, start); err != nil {
			return err
		}
		out, err = readTrace(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EndTrace implements tracking.TraceStore.
func (s *Store) EndTrace(ctx context.Context, req tracking.EndTrace) (*tracking.TraceInfo, error) {
	return s.modifyTrace(ctx, "end trace", req.RequestID, func(tx pgx.Tx, start int64) error {
		if _, err := tx.Exec(ctx, "UPDATE trace_info SET execution_time_ms = $2, status = $3 WHERE request_id = $1",
			req.RequestID, req.TimestampMs-start, req.Status); err != nil {
			return err
		}
		for _, m := range req.RequestMetadata {
			if err := upsertTraceKV(ctx, tx, "trace_request_metadata", req.RequestID, m); err != nil {
				return err
			}
		}
		for _, t := range req.Tags {
			if err := upsertTraceKV(ctx, tx, "trace_tags", req.RequestID, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetTraceInfo implements tracking.TraceStore.
func (s *Store) GetTraceInfo(ctx context.Context, id string) (*tracking.TraceInfo, error) {
	var out *tracking.TraceInfo
	err := s.readOnly(ctx, "get trace", func(tx pgx.Tx) error {
		var err error
		out, err = readTrace(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetTraceTag implements tracking.TraceStore.
func (s *Store) SetTraceTag(ctx context.Context, id string, tag tracking.Tag) error {
	return s.inTx(ctx, "set trace tag", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		return upsertTraceKV(ctx, tx, "trace_tags", id, tag)
	})
}

// DeleteTraceTag implements tracking.TraceStore.
func (s *Store) DeleteTraceTag(ctx context.Context, id, key string) error {
	return s.inTx(ctx, "delete trace tag", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		n := int64(0)
		if storable(key) {
			tag, err := tx.Exec(ctx, "DELETE FROM trace_tags WHERE request_id = $1 AND key = $2", id, key)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		}
		if n == 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist,
				"No trace tag with key '%s' for trace with request_id '%s'", key, id)
		}
		return nil
	})
}

// DeleteTraces implements tracking.TraceStore.
func (s *Store) DeleteTraces(ctx context.Context, req tracking.DeleteTraces) (int, error) {
	var n int
	err := s.inTx(ctx, "delete traces", func(tx pgx.Tx) error {
		n = 0
		exp, ok := parseExpID(req.ExperimentID)
		if !ok {
			return nil
		}
		var err error
		var tag interface{ RowsAffected() int64 }
		if len(req.RequestIDs) > 0 {
			var ids []string
			for _, id := range req.RequestIDs {
				if storable(id) {
					ids = append(ids, id)
				}
			}
			tag, err = tx.Exec(ctx, "DELETE FROM trace_info WHERE experiment_id = $1 AND request_id = ANY($2::text[])", exp, listOf(ids))
		} else {
			limit := any(nil)
			if req.MaxTraces > 0 {
				limit = int64(req.MaxTraces)
			}
			tag, err = tx.Exec(ctx, `DELETE FROM trace_info WHERE request_id IN (
				SELECT request_id FROM trace_info WHERE experiment_id = $1 AND timestamp_ms <= $2
				ORDER BY timestamp_ms, request_id LIMIT $3)`, exp, req.MaxTimestampMillis, limit)
		}
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
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
	err := s.inTx(ctx, "start trace v3", func(tx pgx.Tx) error {
		expID, loc, err := childExperiment(ctx, tx, in.ExperimentID, true)
		if err != nil {
			return err
		}
		t := *in
		t.ExperimentID = fmt.Sprint(expID)
		t.RequestMetadata = dedupeKV(in.RequestMetadata)
		t.Tags = dedupeKV(in.Tags)
		t.Assessments = append([]tracking.Assessment(nil), in.Assessments...)
		t.LinkedRunIDs = nil
		old, err := lockedTrace(ctx, tx, in.RequestID)
		if err != nil {
			return err
		}
		if old != nil {
			if old.ExperimentID != t.ExperimentID {
				// Moving a trace would merge its data into an experiment
				// its readers may not read.
				return tracking.Errorf(tracking.InvalidParameterValue,
					"Trace '%s' already exists in experiment %s; it cannot be started again in experiment %s.",
					t.RequestID, old.ExperimentID, t.ExperimentID)
			}
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
			if _, err := tx.Exec(ctx, `UPDATE trace_info SET timestamp_ms = $2, execution_time_ms = $3, status = $4,
					client_request_id = $5, request_preview = $6, response_preview = $7 WHERE request_id = $1`,
				t.RequestID, t.TimestampMs, t.ExecutionTimeMs, t.Status, t.ClientRequestID, t.RequestPreview, t.ResponsePreview); err != nil {
				return err
			}
			for _, table := range []string{"trace_tags", "trace_request_metadata", "assessments"} {
				if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE request_id = $1", t.RequestID); err != nil {
					return err
				}
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, execution_time_ms,
				status, client_request_id, request_preview, response_preview) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.RequestID, expID, t.TimestampMs, t.ExecutionTimeMs, t.Status, t.ClientRequestID, t.RequestPreview, t.ResponsePreview); err != nil {
			return err
		}
		t.Tags = append(t.Tags, tracking.Tag{Key: tracking.TraceTagArtifactLocation, Value: joinURI(loc, "traces", t.RequestID, "artifacts")})
		for _, m := range t.RequestMetadata {
			if err := upsertTraceKV(ctx, tx, "trace_request_metadata", t.RequestID, m); err != nil {
				return err
			}
		}
		for _, tg := range t.Tags {
			if err := upsertTraceKV(ctx, tx, "trace_tags", t.RequestID, tg); err != nil {
				return err
			}
		}
		for i := range t.Assessments {
			a := t.Assessments[i]
			if a.TraceID == "" {
				a.TraceID = t.RequestID
			}
			if err := putAssessment(ctx, tx, t.RequestID, &a); err != nil {
				return err
			}
		}
		out, err = readTrace(ctx, tx, t.RequestID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dedupeKV applies entries in order as upserts (a repeated key keeps its
// first position and takes its last value).
func dedupeKV(in []tracking.Tag) []tracking.Tag {
	var out []tracking.Tag
	for _, kv := range in {
		found := false
		for i := range out {
			if out[i].Key == kv.Key {
				out[i].Value, found = kv.Value, true
				break
			}
		}
		if !found {
			out = append(out, kv)
		}
	}
	return out
}

// lockedTrace locks and reads a trace; nil when it does not exist.
func lockedTrace(ctx context.Context, tx dbtx, id string) (*tracking.TraceInfo, error) {
	if _, _, err := lockTrace(ctx, tx, id, "FOR UPDATE"); err != nil {
		if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			return nil, nil
		}
		return nil, err
	}
	return readTrace(ctx, tx, id)
}

// LinkTracesToRun implements tracking.TraceStore.
func (s *Store) LinkTracesToRun(ctx context.Context, traceIDs []string, runID string) error {
	return s.inTx(ctx, "link traces to run", func(tx pgx.Tx) error {
		if _, _, err := runLocked(ctx, tx, runID, "FOR KEY SHARE"); err != nil {
			return err
		}
		for _, id := range traceIDs {
			if !storable(id) {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO trace_run_links (request_id, run_id)
				SELECT request_id, $2 FROM trace_info WHERE request_id = $1 ON CONFLICT DO NOTHING`, id, runID); err != nil {
				return err
			}
		}
		return nil
	})
}

// putAssessment inserts or replaces an assessment row.
func putAssessment(ctx context.Context, tx dbtx, traceID string, a *tracking.Assessment) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode assessment: %w", err)
	}
	f := searchColumns(a)
	_, err = tx.Exec(ctx, `INSERT INTO assessments (request_id, assessment_id, body, assessment_type, name, value, valid, session_scoped)
		VALUES ($1, $2, $3::text::json, $4, $5, $6, $7, $8)
		ON CONFLICT (request_id, assessment_id) DO UPDATE SET body = EXCLUDED.body, assessment_type = EXCLUDED.assessment_type,
			name = EXCLUDED.name, value = EXCLUDED.value, valid = EXCLUDED.valid, session_scoped = EXCLUDED.session_scoped`,
		traceID, a.AssessmentID, string(body), f.typ, f.name, f.value, f.valid, f.scoped)
	return err
}

// getAssessment reads one assessment of a trace; ok is false when missing.
func getAssessment(ctx context.Context, tx dbtx, traceID, id string) (*tracking.Assessment, bool, error) {
	if !storable(id) {
		return nil, false, nil
	}
	var body string
	err := tx.QueryRow(ctx, "SELECT body::text FROM assessments WHERE request_id = $1 AND assessment_id = $2", traceID, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var a tracking.Assessment
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		return nil, false, fmt.Errorf("decode assessment %q of trace %q: %w", id, traceID, err)
	}
	return &a, true, nil
}

// setAssessmentValid sets the valid flag of an assessment if it exists.
func setAssessmentValid(ctx context.Context, tx dbtx, traceID, id string, valid bool) (bool, error) {
	a, ok, err := getAssessment(ctx, tx, traceID, id)
	if err != nil || !ok {
		return ok, err
	}
	a.Valid = valid
	return true, putAssessment(ctx, tx, traceID, a)
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
	err := s.inTx(ctx, "create assessment", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, a.TraceID, "FOR UPDATE"); err != nil {
			return err
		}
		if _, ok, err := getAssessment(ctx, tx, a.TraceID, a.AssessmentID); err != nil || ok {
			if ok {
				return tracking.Errorf(tracking.ResourceAlreadyExists,
					"Assessment with ID '%s' already exists for trace '%s'", a.AssessmentID, a.TraceID)
			}
			return err
		}
		if a.Overrides != "" {
			ok, err := setAssessmentValid(ctx, tx, a.TraceID, a.Overrides, false)
			if err != nil {
				return err
			}
			if !ok {
				return errNoAssessment(a.TraceID, a.Overrides)
			}
		}
		return putAssessment(ctx, tx, a.TraceID, &a)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// GetAssessment implements tracking.TraceStore.
func (s *Store) GetAssessment(ctx context.Context, traceID, id string) (*tracking.Assessment, error) {
	var out *tracking.Assessment
	err := s.readOnly(ctx, "get assessment", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, traceID, ""); err != nil {
			return err
		}
		a, ok, err := getAssessment(ctx, tx, traceID, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoAssessment(traceID, id)
		}
		out = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateAssessment implements tracking.TraceStore.
func (s *Store) UpdateAssessment(ctx context.Context, traceID, id string, fn func(*tracking.Assessment) error) (*tracking.Assessment, error) {
	now := s.now()
	var out *tracking.Assessment
	err := s.inTx(ctx, "update assessment", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, traceID, "FOR UPDATE"); err != nil {
			return err
		}
		a, ok, err := getAssessment(ctx, tx, traceID, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoAssessment(traceID, id)
		}
		a.Metadata = maps.Clone(a.Metadata)
		if err := fn(a); err != nil {
			return err
		}
		a.AssessmentID, a.TraceID = id, traceID
		a.LastUpdateTimeMs = now
		out = a
		return putAssessment(ctx, tx, traceID, a)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteAssessment implements tracking.TraceStore.
func (s *Store) DeleteAssessment(ctx context.Context, traceID, id string) error {
	return s.inTx(ctx, "delete assessment", func(tx pgx.Tx) error {
		if _, _, err := lockTrace(ctx, tx, traceID, "FOR UPDATE"); err != nil {
			return err
		}
		a, ok, err := getAssessment(ctx, tx, traceID, id)
		if err != nil || !ok {
			return err
		}
		if a.Overrides != "" {
			if _, err := setAssessmentValid(ctx, tx, traceID, a.Overrides, true); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "DELETE FROM assessments WHERE request_id = $1 AND assessment_id = $2", traceID, id)
		return err
	})
}
