package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// bigTraceSpanCount is the large trace: 5,000 spans.
const bigTraceSpanCount = 5000

// bigSpanParent is the parent of span i of the big trace: a root, 50
// steps under it, and the rest spread over the steps (i in 1..n-1).
func bigSpanParent(i int) int {
	if i <= 50 {
		return 0
	}
	return 1 + (i-51)%50
}

// bigTraceData is a traces.json (Span.to_dict) of n spans shaped like an
// agent's run: inputs, outputs, a span type and a token count per span.
func bigTraceData(traceID []byte, n int) []byte {
	const t0 = 1_700_000_000_000_000_000
	sid := func(i int) string {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, uint64(i+1))
		return base64.StdEncoding.EncodeToString(b)
	}
	type span struct {
		TraceID    string            `json:"trace_id"`
		SpanID     string            `json:"span_id"`
		Parent     *string           `json:"parent_span_id"`
		Name       string            `json:"name"`
		Start      int64             `json:"start_time_unix_nano"`
		End        int64             `json:"end_time_unix_nano"`
		Status     map[string]string `json:"status"`
		Attributes map[string]string `json:"attributes"`
		Events     []any             `json:"events"`
	}
	spans := make([]span, n)
	for i := range spans {
		var parent *string
		if i > 0 {
			p := sid(bigSpanParent(i))
			parent = &p
		}
		spans[i] = span{TraceID: base64.StdEncoding.EncodeToString(traceID), SpanID: sid(i), Parent: parent,
			Name: fmt.Sprintf("llm_call_%04d", i), Start: t0 + int64(i)*1e6, End: t0 + int64(i)*1e6 + 9e5,
			Status: map[string]string{"code": "STATUS_CODE_OK", "message": ""},
			Attributes: map[string]string{
				"mlflow.traceRequestId": `"tr-` + fmt.Sprintf("%x", traceID) + `"`,
				"mlflow.spanType":       `"CHAT_MODEL"`,
				"mlflow.spanInputs":     fmt.Sprintf(`{"messages": [{"role": "user", "content": "sub-question %d"}]}`, i),
				"mlflow.spanOutputs":    fmt.Sprintf(`{"choices": [{"message": {"role": "assistant", "content": "sub-answer %d"}}]}`, i),
				"llm.tokens":            fmt.Sprint(100 + i%50),
			}, Events: []any{}}
	}
	b, err := json.Marshal(map[string]any{"spans": spans})
	if err != nil {
		panic(err)
	}
	return b
}

// bigTraceExport is the same trace as one OTLP export.
func bigTraceExport(traceID []byte, n int) *coltracepb.ExportTraceServiceRequest {
	const t0 = 1_700_000_000_000_000_000
	sid := func(i int) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, uint64(i+1))
		return b
	}
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		sp := &tracepb.Span{TraceId: traceID, SpanId: sid(i), Name: fmt.Sprintf("llm_call_%04d", i),
			StartTimeUnixNano: t0 + uint64(i)*1e6, EndTimeUnixNano: t0 + uint64(i)*1e6 + 9e5,
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
			Attributes: []*commonpb.KeyValue{strAttr("mlflow.spanType", `"CHAT_MODEL"`),
				strAttr("mlflow.spanInputs", fmt.Sprintf(`{"messages": [{"role": "user", "content": "sub-question %d"}]}`, i)),
				strAttr("mlflow.spanOutputs", fmt.Sprintf(`{"choices": [{"message": {"role": "assistant", "content": "sub-answer %d"}}]}`, i)),
				intAttr("llm.tokens", int64(100+i%50))}}
		if i > 0 {
			sp.ParentSpanId = sid(bigSpanParent(i))
		}
		spans[i] = sp
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
}

// seedBigTrace stores a 5,000-span trace in exp, its spans in the span
// store (OTLP) or in a traces.json artifact, and returns its id.
func seedBigTrace(t testing.TB, ts *httptest.Server, exp string, inStore bool) string {
	t.Helper()
	tid := make([]byte, 16)
	binary.BigEndian.PutUint64(tid[:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(tid[8:], 0xb16)
	id := fmt.Sprintf("tr-%x", tid)
	if inStore {
		r := otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, bigTraceExport(tid, bigTraceSpanCount)))
		wantStatus(t, r, 200)
		return id
	}
	startV3(t, ts, exp, id, time.Now().UnixMilli(), nil)
	wantStatus(t, call(t, ts, "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+exp+"/traces/"+id+"/artifacts/traces.json",
		"application/json", bigTraceData(tid, bigTraceSpanCount)), 200)
	return id
}

// BenchmarkGetTrace5000 times GetTrace (GET /api/3.0/mlflow/traces/get,
// the trace page's request) of a 5,000-span trace over HTTP, its spans
// read from the span store (bbolt, PostgreSQL) or from a traces.json
// artifact, body read to the end.
func BenchmarkGetTrace5000(b *testing.B) {
	b.Run("artifact", func(b *testing.B) { benchGetTrace(b, false) })
	b.Run("bbolt", func(b *testing.B) { benchGetTrace(b, true) })
	b.Run("postgres", func(b *testing.B) {
		st, err := pgstore.Open(context.Background(), pgtest.NewDatabase(b), pgdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		benchGetTrace(b, true, func(o *Options) { o.Store = st })
	})
}

func benchGetTrace(b *testing.B, inStore bool, mutate ...func(*Options)) {
	ts, _ := newTestServer(b, mutate...)
	exp := mkExperiment(b, ts, "bench")
	id := seedBigTrace(b, ts, exp, inStore)
	url := ts.URL + "/api/3.0/mlflow/traces/get?trace_id=" + id
	var size int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := ts.Client().Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		size = n
	}
	b.ReportMetric(float64(size)/1e6, "MB/op")
}

// TestGetTraceLargeTrace reads a 5,000-span trace (several flushes of the
// streamed answer) from the span store and from a traces.json, and checks
// the answer is one complete document with every span, in order.
func TestGetTraceLargeTrace(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "big")
	for _, inStore := range []bool{true, false} {
		id := seedBigTrace(t, ts, exp, inStore)
		r := v3(t, ts, "GET", "traces/get?trace_id="+id, nil)
		wantStatus(t, r, 200)
		var doc struct {
			Trace struct {
				Info struct {
					TraceID string `json:"trace_id"`
				} `json:"trace_info"`
				Spans []struct {
					Name       string           `json:"name"`
					SpanID     string           `json:"span_id"`
					Attributes []map[string]any `json:"attributes"`
				} `json:"spans"`
			} `json:"trace"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("in store %v: %v", inStore, err)
		}
		if doc.Trace.Info.TraceID != id || len(doc.Trace.Spans) != bigTraceSpanCount {
			t.Fatalf("in store %v: trace %q, %d spans", inStore, doc.Trace.Info.TraceID, len(doc.Trace.Spans))
		}
		for i, sp := range doc.Trace.Spans {
			// The store returns the root first, then by start time: the
			// order the spans were made in.
			if want := fmt.Sprintf("llm_call_%04d", i); sp.Name != want || sp.SpanID == "" || len(sp.Attributes) < 4 {
				t.Fatalf("in store %v: span %d: %+v", inStore, i, sp)
			}
		}
		if !inStore {
			continue
		}
		// The client recorded one span more than the store has: the
		// spans (megabytes of them, held back) are not answered, unless
		// partial data is asked for.
		r = v3(t, ts, "POST", "traces", map[string]any{"trace": map[string]any{"trace_info": map[string]any{
			"trace_id": id, "trace_location": map[string]any{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": map[string]any{"experiment_id": exp}},
			"request_time": "2023-11-14T22:13:20Z", "execution_duration": "1.500s", "state": "OK",
			"trace_metadata": map[string]any{"mlflow.trace.sizeStats": fmt.Sprintf(`{"num_spans": %d}`, bigTraceSpanCount+1)}}}})
		wantStatus(t, r, 200)
		wantError(t, v3(t, ts, "GET", "traces/get?trace_id="+id, nil), 404, "RESOURCE_DOES_NOT_EXIST", "not fully exported yet")
		r = v3(t, ts, "GET", "traces/get?trace_id="+id+"&allow_partial=true", nil)
		wantStatus(t, r, 200)
		if n := strings.Count(string(r.body), `"span_id"`); n != bigTraceSpanCount || !json.Valid(r.body) {
			t.Fatalf("partial: %d spans, valid %v", n, json.Valid(r.body))
		}
	}
}
