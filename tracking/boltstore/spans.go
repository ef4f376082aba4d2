package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Span buckets. A span's key orders a trace's spans as they are served
// (root spans first, then by start time); the by-id bucket finds a span's
// key again when the span is sent twice.
var (
	bSpan   = []byte("span")   // str(trace id) | 0 root / 1 child | u64(ord start) | span id -> tracking.Span (JSON)
	bSpanID = []byte("spanid") // str(trace id) | span id -> the bSpan key after str(trace id)
)

func init() { allBucket = append(allBucket, bSpan, bSpanID) }

var _ tracking.SpanStore = (*Store)(nil)

// spanOrderKey is the part of a span's bSpan key after its trace prefix.
func spanOrderKey(s *tracking.Span) []byte {
	k := make([]byte, 0, 9+len(s.SpanID))
	if s.ParentSpanID == "" {
		k = append(k, 0)
	} else {
		k = append(k, 1)
	}
	k = appendU64(k, ordInt(s.StartTimeNs))
	return append(k, s.SpanID...)
}

// putSpan stores a span, replacing one stored with the same id.
func putSpan(tx *bolt.Tx, s *tracking.Span) error {
	prefix := appendStr(nil, s.TraceID)
	idKey := append(bytes.Clone(prefix), s.SpanID...)
	spans, ids := tx.Bucket(bSpan), tx.Bucket(bSpanID)
	if old := ids.Get(idKey); old != nil {
		if err := spans.Delete(append(bytes.Clone(prefix), old...)); err != nil {
			return err
		}
	}
	order := spanOrderKey(s)
	if err := ids.Put(idKey, order); err != nil {
		return err
	}
	return putJSON(spans, append(prefix, order...), s)
}

// deleteTraceSpans removes every stored span of a trace.
func deleteTraceSpans(tx *bolt.Tx, traceID string) error {
	prefix := appendStr(nil, traceID)
	if err := deletePrefix(tx.Bucket(bSpan), prefix); err != nil {
		return err
	}
	return deletePrefix(tx.Bucket(bSpanID), prefix)
}

// LogSpans implements tracking.SpanStore: one group-committed write for
// the whole export.
func (s *Store) LogSpans(ctx context.Context, experimentID string, batches []tracking.SpanBatch) ([]string, error) {
	var rejected []string
	err := s.update(ctx, "log spans", func(tx *bolt.Tx) error {
		rejected = nil
		expID, exp, err := mustExp(tx, experimentID)
		if err != nil {
			return err
		}
		if exp.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(expID, exp.Lifecycle)
		}
		exps := fmtExpID(expID)
		for i := range batches {
			b := &batches[i]
			old, err := getTrace(tx, b.TraceID)
			switch {
			case tracking.IsCode(err, tracking.ResourceDoesNotExist):
				old = nil
			case err != nil:
				return err
			case old.ExperimentID != exps:
				rejected = append(rejected, b.TraceID)
				continue
			}
			t := tracking.ApplySpanBatch(old, exps, joinURI(exp.ArtifactLocation, "traces", b.TraceID, "artifacts"), b)
			if err := putJSON(tx.Bucket(bTrace), []byte(t.RequestID), t); err != nil {
				return err
			}
			if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, t.RequestID), nil); err != nil {
				return err
			}
			for j := range b.Spans {
				if err := putSpan(tx, &b.Spans[j]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return rejected, err
}

// TraceSpans implements tracking.SpanStore.
func (s *Store) TraceSpans(ctx context.Context, traceID string, chunkSize int, fn func([]tracking.Span) error) error {
	if chunkSize <= 0 {
		chunkSize = 1000
	}
	prefix := appendStr(nil, traceID)
	var after []byte // last key read
	chunk := make([]tracking.Span, 0, chunkSize)
	for {
		chunk = chunk[:0]
		err := s.view(ctx, "read spans", func(tx *bolt.Tx) error {
			c := tx.Bucket(bSpan).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.Seek(prefix)
			} else {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(chunk) < chunkSize; k, v = c.Next() {
				var sp tracking.Span
				if err := json.Unmarshal(v, &sp); err != nil {
					return fmt.Errorf("decode span of trace %s: %w", traceID, err)
				}
				chunk = append(chunk, sp)
				after = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil
		}
		if err := fn(chunk); err != nil {
			return err
		}
		if len(chunk) < chunkSize {
			return nil
		}
	}
}
