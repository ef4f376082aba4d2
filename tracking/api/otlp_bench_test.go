package api

import (
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// benchBatch is one export of 100 spans of about 1 KiB each (a 1 KiB
// mlflow.spanInputs attribute), one trace per export: a root and 99
// children.
func benchBatch(b *testing.B, n uint64) []byte {
	tid := make([]byte, 16)
	binary.BigEndian.PutUint64(tid[8:], n)
	binary.BigEndian.PutUint64(tid[:8], uint64(time.Now().UnixNano()))
	payload := `"` + strings.Repeat("x", 1022) + `"`
	spans := make([]*tracepb.Span, 100)
	for i := range spans {
		sid := make([]byte, 8)
		binary.BigEndian.PutUint64(sid, uint64(i+1))
		sp := &tracepb.Span{TraceId: tid, SpanId: sid, Name: "span", StartTimeUnixNano: 1_700_000_000_000_000_000 + uint64(i)*1000,
			EndTimeUnixNano: 1_700_000_000_000_000_000 + uint64(i)*1000 + 500,
			Attributes:      []*commonpb.KeyValue{strAttr("mlflow.spanInputs", payload)}}
		if i > 0 {
			sp.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, 1}
		}
		spans[i] = sp
	}
	return mustProto(b, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}})
}

// BenchmarkOTLPIngest posts OTLP exports of 100 spans of 1 KiB over HTTP
// to a server on a bbolt store (each export a durable write) and reports
// spans ingested per second; parallel clients share group commits.
func BenchmarkOTLPIngest(b *testing.B) {
	b.Run("bbolt", func(b *testing.B) { benchOTLPIngest(b) })
	b.Run("postgres", func(b *testing.B) {
		st, err := pgstore.Open(context.Background(), pgtest.NewDatabase(b), pgdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		benchOTLPIngest(b, func(o *Options) { o.Store = st })
	})
}

func benchOTLPIngest(b *testing.B, mutate ...func(*Options)) {
	ts, _ := newTestServer(b, mutate...)
	exp := mkExperiment(b, ts, "bench")
	var seq atomic.Uint64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := benchBatch(b, seq.Add(1))
			if r := otlpPost(b, ts, exp, "application/x-protobuf", "", body); r.status != 200 {
				b.Errorf("status %d: %s", r.status, r.body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "spans/s")
}
