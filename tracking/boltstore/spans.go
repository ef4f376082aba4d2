package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Span buckets. A span's key orders a trace's spans as they are served
// (root spans first, then by start time); the by-id bucket finds a span's
// key again when the span is sent twice.
var (
	bSpan   = []byte("span")   // str(trace id) | 0 root / 1 child | u64(ord start) | span id -> encodeSpan
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
	return spans.Put(append(prefix, order...), encodeSpan(s))
}

// spanFormat is the first byte of a stored span.
const spanFormat = 1

// encodeSpan is a span's bSpan value: spanFormat, the span id, parent,
// name, type and status as length-prefixed strings, the start and end
// times, then the content (JSON) to the end. The content is not
// re-encoded: it is the client's data as converted, kept byte for byte.
func encodeSpan(s *tracking.Span) []byte {
	b := make([]byte, 0, 32+len(s.SpanID)+len(s.ParentSpanID)+len(s.Name)+len(s.Type)+len(s.Status)+len(s.Content))
	b = append(b, spanFormat)
	for _, f := range []string{s.SpanID, s.ParentSpanID, s.Name, s.Type, s.Status} {
		b = appendStr(b, f)
	}
	b = appendU64(b, ordInt(s.StartTimeNs))
	b = appendU64(b, ordInt(s.EndTimeNs))
	return append(b, s.Content...)
}

// decodeSpan reads a bSpan value (copying what it keeps: bbolt's memory
// is only valid inside the transaction).
func decodeSpan(traceID string, v []byte) (tracking.Span, error) {
	sp := tracking.Span{TraceID: traceID}
	if len(v) == 0 || v[0] != spanFormat {
		return sp, errors.New("unknown span format")
	}
	rest := v[1:]
	for _, dst := range []*string{&sp.SpanID, &sp.ParentSpanID, &sp.Name, &sp.Type, &sp.Status} {
		var ok bool
		if *dst, rest, ok = readStr(rest); !ok {
			return sp, errors.New("truncated span")
		}
	}
	if len(rest) < 16 {
		return sp, errors.New("truncated span")
	}
	sp.StartTimeNs = unordInt(binary.BigEndian.Uint64(rest))
	sp.EndTimeNs = unordInt(binary.BigEndian.Uint64(rest[8:]))
	sp.Content = bytes.Clone(rest[16:])
	return sp, nil
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
			// ApplySpanBatch updates old in place: keep what its index
			// entry is keyed on (a root span arriving after its children
			// moves the trace's start earlier).
			var prev *tracking.TraceInfo
			if old != nil {
				prev = traceIndexCopy(old)
			}
			t := tracking.ApplySpanBatch(old, exps, joinURI(exp.ArtifactLocation, "traces", b.TraceID, "artifacts"), b)
			if err := putJSON(tx.Bucket(bTrace), []byte(t.RequestID), t); err != nil {
				return err
			}
			if err := tx.Bucket(bExpTrace).Put(expTraceKey(expID, t.RequestID), nil); err != nil {
				return err
			}
			if err := indexTrace(tx, prev, t); err != nil {
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
				sp, err := decodeSpan(traceID, v)
				if err != nil {
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
