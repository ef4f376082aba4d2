package pgstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Spans (tracking.SpanStore) on the table trace_spans, with the bbolt
// store's semantics (tracking/boltstore/spans.go).

var _ tracking.SpanStore = (*Store)(nil)

// LogSpans implements tracking.SpanStore in one transaction. Traces are
// locked in id order, so that concurrent exports of overlapping traces do
// not deadlock.
func (s *Store) LogSpans(ctx context.Context, experimentID string, batches []tracking.SpanBatch) ([]string, error) {
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return batches[order[a]].TraceID < batches[order[b]].TraceID })
	var rejected []string
	err := s.inTx(ctx, "log spans", func(tx pgx.Tx) error {
		rejected = nil
		expID, loc, err := childExperiment(ctx, tx, experimentID, true)
		if err != nil {
			return err
		}
		exps := fmt.Sprint(expID)
		for _, i := range order {
			b := &batches[i]
			if !storable(b.TraceID) {
				rejected = append(rejected, b.TraceID)
				continue
			}
			tag, err := tx.Exec(ctx, `INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status)
				VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING`,
				b.TraceID, expID, b.StartMs, tracking.TraceStatusInProgress)
			if err != nil {
				return err
			}
			created := tag.RowsAffected() == 1
			old, err := lockedTrace(ctx, tx, b.TraceID)
			if err != nil {
				return err
			}
			if old == nil {
				return fmt.Errorf("trace %s vanished while its spans were logged", b.TraceID)
			}
			if old.ExperimentID != exps {
				rejected = append(rejected, b.TraceID)
				continue
			}
			if created {
				old = nil
			}
			t := tracking.ApplySpanBatch(old, exps, joinURI(loc, "traces", b.TraceID, "artifacts"), b)
			if _, err := tx.Exec(ctx, `UPDATE trace_info SET timestamp_ms = $2, execution_time_ms = $3, status = $4,
					request_preview = $5, response_preview = $6 WHERE request_id = $1`,
				t.RequestID, t.TimestampMs, t.ExecutionTimeMs, t.Status, t.RequestPreview, t.ResponsePreview); err != nil {
				return err
			}
			for _, tg := range t.Tags {
				if created || tg.Key == tracking.TraceTagSpansLocation {
					if err := upsertTraceKV(ctx, tx, "trace_tags", t.RequestID, tg); err != nil {
						return err
					}
				}
			}
			for _, m := range t.RequestMetadata {
				switch m.Key {
				case tracking.TraceMetadataTokenUsage, tracking.TraceMetadataSession, tracking.TraceMetadataUser:
					if err := upsertTraceKV(ctx, tx, "trace_request_metadata", t.RequestID, m); err != nil {
						return err
					}
				}
			}
			if err := putSpans(ctx, tx, b.Spans); err != nil {
				return err
			}
		}
		return nil
	})
	return rejected, err
}

// putSpans upserts spans in one statement.
func putSpans(ctx context.Context, tx pgx.Tx, spans []tracking.Span) error {
	n := len(spans)
	trace, id, parent, name, typ, status, content := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	start, end := make([]int64, n), make([]int64, n)
	for i, sp := range spans {
		trace[i], id[i], parent[i], name[i], typ[i], status[i], content[i] =
			sp.TraceID, sp.SpanID, sp.ParentSpanID, sp.Name, sp.Type, sp.Status, string(sp.Content)
		start[i], end[i] = sp.StartTimeNs, sp.EndTimeNs
	}
	// A span sent twice in one statement would make ON CONFLICT touch a
	// row twice: keep the last of each id.
	_, err := tx.Exec(ctx, `INSERT INTO trace_spans (request_id, span_id, parent_span_id, name, type, status,
			start_time_unix_nano, end_time_unix_nano, content)
		SELECT DISTINCT ON (r, s) r, s, p, nm, ty, st, b, e, c FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
			$5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[]) WITH ORDINALITY AS u(r, s, p, nm, ty, st, b, e, c, ord)
		ORDER BY r, s, ord DESC
		ON CONFLICT (request_id, span_id) DO UPDATE SET parent_span_id = EXCLUDED.parent_span_id, name = EXCLUDED.name,
			type = EXCLUDED.type, status = EXCLUDED.status, start_time_unix_nano = EXCLUDED.start_time_unix_nano,
			end_time_unix_nano = EXCLUDED.end_time_unix_nano, content = EXCLUDED.content`,
		trace, id, parent, name, typ, status, start, end, content)
	return err
}

// TraceSpans implements tracking.SpanStore: keyset pages in the order of
// the trace_spans_order index, one query each.
func (s *Store) TraceSpans(ctx context.Context, traceID string, chunkSize int, fn func([]tracking.Span) error) error {
	if chunkSize <= 0 {
		chunkSize = 1000
	}
	if !storable(traceID) {
		return nil
	}
	chunk := make([]tracking.Span, 0, chunkSize)
	var (
		started  bool
		lastRoot bool
		lastTime int64
		lastID   string
	)
	for {
		chunk = chunk[:0]
		err := func() error {
			rows, err := s.pool.Query(ctx, `SELECT span_id, parent_span_id, name, type, status, start_time_unix_nano,
					end_time_unix_nano, content FROM trace_spans
				WHERE request_id = $1 AND (NOT $2 OR ((parent_span_id <> ''), start_time_unix_nano, span_id) > ($3, $4, $5))
				ORDER BY (parent_span_id <> ''), start_time_unix_nano, span_id LIMIT $6`,
				traceID, started, !lastRoot, lastTime, lastID, chunkSize)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				sp := tracking.Span{TraceID: traceID}
				var content string
				if err := rows.Scan(&sp.SpanID, &sp.ParentSpanID, &sp.Name, &sp.Type, &sp.Status, &sp.StartTimeNs,
					&sp.EndTimeNs, &content); err != nil {
					return err
				}
				sp.Content = []byte(content)
				chunk = append(chunk, sp)
			}
			return rows.Err()
		}()
		if err != nil {
			return wrapErr("read spans", err)
		}
		if len(chunk) == 0 {
			return nil
		}
		last := chunk[len(chunk)-1]
		started, lastRoot, lastTime, lastID = true, last.ParentSpanID == "", last.StartTimeNs, last.SpanID
		if err := fn(chunk); err != nil {
			return err
		}
		if len(chunk) < chunkSize {
			return nil
		}
	}
}
