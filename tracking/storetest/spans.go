package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// mkSpan builds a span of trace (a "tr-" id) for the span tests.
func mkSpan(trace, id, parent string, startNs, endNs int64) tracking.Span {
	return tracking.Span{TraceID: trace, SpanID: id, ParentSpanID: parent, Name: "n-" + id, Type: "CHAIN",
		Status: "OK", StartTimeNs: startNs, EndTimeNs: endNs,
		Content: json.RawMessage(fmt.Sprintf(`{"span_id":%q,"name":"n-%s"}`, id, id))}
}

// readSpans reads a trace's spans in chunks of chunk and returns their ids
// and the number of chunks.
func readSpans(t *testing.T, s tracking.Store, trace string, chunk int) ([]string, int) {
	t.Helper()
	var ids []string
	n := 0
	ok(t, s.TraceSpans(bg, trace, chunk, func(spans []tracking.Span) error {
		n++
		if len(spans) > chunk {
			t.Fatalf("chunk of %d spans, asked for %d", len(spans), chunk)
		}
		for _, sp := range spans {
			if sp.TraceID != trace {
				t.Fatalf("span of trace %q read for %q", sp.TraceID, trace)
			}
			ids = append(ids, sp.SpanID)
		}
		return nil
	}))
	return ids, n
}

func testSpans(t *testing.T, f Factory) {
	const tr = "tr-0123456789abcdef0123456789abcdef"

	t.Run("LogAndRead", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		// The children arrive first (as a batch span processor sends
		// them), the root later, in a second export.
		child := tracking.SpanBatch{TraceID: tr, StartMs: 2000, EndMs: 2500,
			Spans:      []tracking.Span{mkSpan(tr, "0000000000000002", "0000000000000001", 2000e6, 2400e6), mkSpan(tr, "0000000000000003", "0000000000000001", 2100e6, 2500e6)},
			TokenUsage: map[string]int64{"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}, SessionID: "sess"}
		rej, err := s.LogSpans(bg, exp, []tracking.SpanBatch{child})
		ok(t, err)
		if len(rej) != 0 {
			t.Fatalf("rejected %v", rej)
		}
		got, err := s.GetTraceInfo(bg, tr)
		ok(t, err)
		if got.Status != tracking.TraceStatusInProgress || got.TimestampMs != 2000 || got.ExecutionTimeMs != 500 || got.ExperimentID != exp || !got.SpansInStore() {
			t.Fatalf("after the children: %+v", got)
		}
		if loc, _ := got.Tag(tracking.TraceTagArtifactLocation); loc != ArtifactRoot+exp+"/traces/"+tr+"/artifacts" {
			t.Fatalf("artifact location %q", loc)
		}
		root := tracking.SpanBatch{TraceID: tr, StartMs: 1000, EndMs: 3000, RootStatus: tracking.TraceStatusError,
			RequestPreview: `{"q": 1}`, ResponsePreview: "answer",
			Spans:      []tracking.Span{mkSpan(tr, "0000000000000001", "", 1000e6, 3000e6)},
			TokenUsage: map[string]int64{"input_tokens": 10, "output_tokens": 1, "total_tokens": 11}, SessionID: "other", UserID: "u"}
		_, err = s.LogSpans(bg, exp, []tracking.SpanBatch{root})
		ok(t, err)
		got, err = s.GetTraceInfo(bg, tr)
		ok(t, err)
		if got.Status != tracking.TraceStatusError || got.TimestampMs != 1000 || got.ExecutionTimeMs != 2000 ||
			got.RequestPreview != `{"q": 1}` || got.ResponsePreview != "answer" {
			t.Fatalf("after the root: %+v", got)
		}
		md := tagMap(got.RequestMetadata)
		if md[tracking.TraceMetadataTokenUsage] != `{"input_tokens":13,"output_tokens":5,"total_tokens":18}` ||
			md[tracking.TraceMetadataSession] != "sess" || md[tracking.TraceMetadataUser] != "u" {
			t.Fatalf("metadata %v", md)
		}
		// The root moved the trace's start earlier: searches (every order,
		// time filters) list it once, at its new time, as MLflow 3's
		// client needs when it exports children before the root.
		for _, q := range []struct{ filter, order string }{{"", ""}, {"", "timestamp_ms ASC"}, {"timestamp_ms < 1500", ""}} {
			clauses, err := search.ParseTraceFilter(q.filter)
			ok(t, err)
			var order []string
			if q.order != "" {
				order = []string{q.order}
			}
			keys, err := search.ParseTraceOrderBy(order)
			ok(t, err)
			if ids := traceIDs(t, s, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses, OrderBy: keys}); !slices.Equal(ids, []string{tr}) {
				t.Fatalf("search %+v after the root: %v", q, ids)
			}
		}
		ids, chunks := readSpans(t, s, tr, 2)
		if !slices.Equal(ids, []string{"0000000000000001", "0000000000000002", "0000000000000003"}) || chunks != 2 {
			t.Fatalf("spans %v in %d chunks", ids, chunks)
		}
		// The span's fields and content come back as stored.
		ok(t, s.TraceSpans(bg, tr, 10, func(spans []tracking.Span) error {
			want := mkSpan(tr, "0000000000000002", "0000000000000001", 2000e6, 2400e6)
			sp := spans[1]
			var a, b any
			_ = json.Unmarshal(sp.Content, &a)
			_ = json.Unmarshal(want.Content, &b)
			if sp.Name != want.Name || sp.Type != want.Type || sp.Status != want.Status || sp.ParentSpanID != want.ParentSpanID ||
				sp.StartTimeNs != want.StartTimeNs || sp.EndTimeNs != want.EndTimeNs || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("span %+v, want %+v", sp, want)
			}
			return nil
		}))

		// A span sent again replaces the stored one (a new start time
		// moves it in the order).
		again := mkSpan(tr, "0000000000000002", "0000000000000001", 2200e6, 2400e6)
		again.Name = "renamed"
		_, err = s.LogSpans(bg, exp, []tracking.SpanBatch{{TraceID: tr, StartMs: 2200, EndMs: 2400, Spans: []tracking.Span{again}}})
		ok(t, err)
		ids, _ = readSpans(t, s, tr, 100)
		if !slices.Equal(ids, []string{"0000000000000001", "0000000000000003", "0000000000000002"}) {
			t.Fatalf("spans after the resend %v", ids)
		}
		got, _ = s.GetTraceInfo(bg, tr)
		if got.Status != tracking.TraceStatusError || got.TimestampMs != 1000 || got.ExecutionTimeMs != 2000 {
			t.Fatalf("a late child changed the trace: %+v", got)
		}

		// Unknown traces read as no spans; traces started through the
		// API have none and are not marked.
		ids, chunks = readSpans(t, s, "tr-ffffffffffffffffffffffffffffffff", 10)
		if len(ids) != 0 || chunks != 0 {
			t.Fatalf("unknown trace: %v in %d chunks", ids, chunks)
		}
		v2, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: exp, TimestampMs: 1})
		ok(t, err)
		if v2.SpansInStore() {
			t.Fatal("a trace started through the API says its spans are in the store")
		}
	})

	t.Run("ExperimentChecks", func(t *testing.T) {
		s := open(t, f)
		a, b := mkExp(t, s, "a"), mkExp(t, s, "b")
		one := tracking.SpanBatch{TraceID: tr, StartMs: 1, EndMs: 2, RootStatus: tracking.TraceStatusOK,
			Spans: []tracking.Span{mkSpan(tr, "0000000000000001", "", 1e6, 2e6)}}
		const other = "tr-11111111111111111111111111111111"
		two := tracking.SpanBatch{TraceID: other, StartMs: 1, Spans: []tracking.Span{mkSpan(other, "0000000000000009", "", 1e6, 0)}}
		_, err := s.LogSpans(bg, a, []tracking.SpanBatch{one})
		ok(t, err)
		// The trace belongs to a: spans for it sent to b are refused
		// (and not stored), the rest of the export goes in.
		intruder := mkSpan(tr, "00000000000000ff", "0000000000000001", 1e6, 2e6)
		rej, err := s.LogSpans(bg, b, []tracking.SpanBatch{{TraceID: tr, StartMs: 1, Spans: []tracking.Span{intruder}}, two})
		ok(t, err)
		if !slices.Equal(rej, []string{tr}) {
			t.Fatalf("rejected %v", rej)
		}
		if ids, _ := readSpans(t, s, tr, 10); !slices.Equal(ids, []string{"0000000000000001"}) {
			t.Fatalf("spans of the guarded trace %v", ids)
		}
		got, err := s.GetTraceInfo(bg, other)
		ok(t, err)
		if got.ExperimentID != b || got.Status != tracking.TraceStatusInProgress || got.ExecutionTimeMs != 0 {
			t.Fatalf("the accepted trace %+v", got)
		}
		// A trace started through StartTraceV3 in b takes its spans in b
		// only.
		const v3 = "tr-22222222222222222222222222222222"
		_, err = s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: v3, ExperimentID: b, TimestampMs: 5, ExecutionTimeMs: 10,
			Status: tracking.TraceStatusOK, RequestPreview: "client preview",
			RequestMetadata: []tracking.Tag{{Key: tracking.TraceMetadataInfoFinalized, Value: "true"}}})
		ok(t, err)
		rej, err = s.LogSpans(bg, a, []tracking.SpanBatch{{TraceID: v3, StartMs: 1, Spans: []tracking.Span{mkSpan(v3, "0000000000000001", "", 1e6, 2e6)}}})
		ok(t, err)
		if !slices.Equal(rej, []string{v3}) {
			t.Fatalf("rejected %v", rej)
		}
		_, err = s.LogSpans(bg, b, []tracking.SpanBatch{{TraceID: v3, StartMs: 1, EndMs: 100, RootStatus: tracking.TraceStatusError,
			RequestPreview: "span preview", Spans: []tracking.Span{mkSpan(v3, "0000000000000001", "", 1e6, 100e6)}}})
		ok(t, err)
		got, err = s.GetTraceInfo(bg, v3)
		ok(t, err)
		// Finalized by the client: times, state and preview stay.
		if got.TimestampMs != 5 || got.ExecutionTimeMs != 10 || got.Status != tracking.TraceStatusOK || got.RequestPreview != "client preview" || !got.SpansInStore() {
			t.Fatalf("the client's trace %+v", got)
		}

		_, err = s.LogSpans(bg, "12345", []tracking.SpanBatch{one})
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		ok(t, s.DeleteExperiment(bg, a))
		_, err = s.LogSpans(bg, a, []tracking.SpanBatch{one})
		wantErr(t, err, tracking.InvalidParameterValue, "")
	})

	t.Run("DeleteTraces", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "e")
		const keep = "tr-33333333333333333333333333333333"
		var spans []tracking.Span
		for i := range 5 {
			spans = append(spans, mkSpan(tr, fmt.Sprintf("%016x", i+1), "", int64(i)*1e6, int64(i+1)*1e6))
		}
		_, err := s.LogSpans(bg, exp, []tracking.SpanBatch{{TraceID: tr, StartMs: 0, EndMs: 5, Spans: spans},
			{TraceID: keep, StartMs: 10, Spans: []tracking.Span{mkSpan(keep, "0000000000000001", "", 10e6, 0)}}})
		ok(t, err)
		n, err := s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{tr}})
		ok(t, err)
		if n != 1 {
			t.Fatalf("deleted %d", n)
		}
		if ids, _ := readSpans(t, s, tr, 10); len(ids) != 0 {
			t.Fatalf("spans of a deleted trace survived: %v", ids)
		}
		if ids, _ := readSpans(t, s, keep, 10); len(ids) != 1 {
			t.Fatalf("spans of the kept trace: %v", ids)
		}
		// Logging spans again recreates the trace from them alone.
		_, err = s.LogSpans(bg, exp, []tracking.SpanBatch{{TraceID: tr, StartMs: 7, Spans: spans[:1]}})
		ok(t, err)
		if ids, _ := readSpans(t, s, tr, 10); len(ids) != 1 {
			t.Fatalf("spans after recreation: %v", ids)
		}
	})
}
