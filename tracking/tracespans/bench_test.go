package tracespans

import (
	"fmt"
	"strings"
	"testing"
)

// benchDoc is a traces.json of 5,000 spans shaped like an agent's.
func benchDoc() []byte {
	var sb strings.Builder
	sb.WriteString(`{"spans": [`)
	for i := 0; i < 5000; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, `{"trace_id": "ASNFZ4mrze8BI0VniavN7w==", "span_id": "AAAAAAAAAAE=", "parent_span_id": "AAAAAAAAAAI=", "name": "llm_call_%04d", `+
			`"start_time_unix_nano": %d, "end_time_unix_nano": %d, "status": {"code": "STATUS_CODE_OK", "message": ""}, `+
			`"attributes": {"mlflow.traceRequestId": "\"tr-0123456789abcdef0123456789abcdef\"", "mlflow.spanType": "\"CHAT_MODEL\"", `+
			`"mlflow.spanInputs": "{\"messages\": [{\"role\": \"user\", \"content\": \"sub-question %d\"}]}", `+
			`"mlflow.spanOutputs": "{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"sub-answer %d\"}}]}", "llm.tokens": "%d"}, "events": []}`,
			i, 1700000000000000000+i*1000000, 1700000000000000000+i*1000000+900000, i, i, 100+i%50)
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

// BenchmarkConvertTraceData converts a 5,000-span traces.json.
func BenchmarkConvertTraceData(b *testing.B) {
	doc := benchDoc()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	var out []byte
	for i := 0; i < b.N; i++ {
		spans, ok := TraceDataSpans(doc)
		if !ok {
			b.Fatal("unreadable")
		}
		out = out[:0]
		for _, sp := range spans {
			var err error
			if out, err = AppendSpan(out, sp); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkConvertTraceDataReference is the map-based conversion.
func BenchmarkConvertTraceDataReference(b *testing.B) {
	doc := benchDoc()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok, err := refFromTraceData(doc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
