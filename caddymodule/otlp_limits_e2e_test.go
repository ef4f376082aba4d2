package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestOTLPLimitsThroughCaddy lowers the OTLP bounds in the Caddyfile's
// otlp block and checks that real exports over them get OTLP's answers:
// 413 (RESOURCE_EXHAUSTED) for a body over max_body_size and for more
// spans than max_spans, while an export within the bounds is stored (the
// default bounds are 16 MiB and 10,000 spans).
func TestOTLPLimitsThroughCaddy(t *testing.T) {
	lowered := caddytest.Start(t, caddytest.Options{Directives: []string{"otlp {\n\t\t\tmax_body_size 2KiB\n\t\t\tmax_spans 3\n\t\t}"}})

	// Four spans of about 1 KiB each: over both lowered bounds.
	tid := bytes.Repeat([]byte{7}, 16)
	export := func(n, payload int) []byte {
		var spans []*tracepb.Span
		for i := 0; i < n; i++ {
			sp := &tracepb.Span{TraceId: tid, SpanId: []byte{0, 0, 0, 0, 0, 0, 1, byte(i + 1)}, Name: "s",
				StartTimeUnixNano: 1_700_000_000_000_000_000, EndTimeUnixNano: 1_700_000_000_100_000_000}
			if payload > 0 {
				sp.Name = strings.Repeat("x", payload)
			}
			if i > 0 {
				sp.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 1, 1}
			}
			spans = append(spans, sp)
		}
		b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	post := func(srv *caddytest.Server, body []byte) (int, *spb.Status) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("x-mlflow-experiment-id", "0")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		st := &spb.Status{}
		if resp.StatusCode != 200 {
			if err := proto.Unmarshal(b, st); err != nil {
				t.Fatalf("status %d, body not a google.rpc.Status: %q", resp.StatusCode, b)
			}
		}
		return resp.StatusCode, st
	}

	big := export(4, 1024)
	if code, st := post(lowered, big); code != http.StatusRequestEntityTooLarge || st.Code != 8 || !strings.Contains(st.Message, "larger than 2048 bytes") {
		t.Fatalf("body over max_body_size: %d %v", code, st)
	}
	if code, st := post(lowered, export(4, 0)); code != http.StatusRequestEntityTooLarge || !strings.Contains(st.Message, "4 spans, more than the 3") {
		t.Fatalf("spans over max_spans: %d %v", code, st)
	}
	if code, st := post(lowered, export(3, 0)); code != 200 {
		t.Fatalf("export within the bounds: %d %v", code, st)
	}
	out := map[string]any{}
	resp, err := lowered.Client().Get(lowered.URL + "/api/3.0/mlflow/traces/get?trace_id=tr-" + strings.Repeat("07", 16))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("stored trace: %d %v", resp.StatusCode, err)
	}
	if spans, _ := out["trace"].(map[string]any)["spans"].([]any); len(spans) != 3 {
		t.Fatalf("stored spans: %v", out)
	}
}
