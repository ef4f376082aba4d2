package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// otlpRawPost posts an export with exactly the given headers (a nil value
// leaves the header out, "" sends it empty).
func otlpRawPost(t testing.TB, url string, headers map[string]*string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if v != nil {
			req.Header[http.CanonicalHeaderKey(k)] = []string{*v}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, b}
}

func strp(s string) *string { return &s }

// otlpAnswer is what one OTLP error answer must be.
type otlpAnswer struct {
	status int
	ctype  string
	// kind is the body's shape: "detail" (FastAPI's {"detail": "..."}),
	// "validation" (FastAPI's 422 list), "mlflow" ({"error_code",
	// "message"}) or "rpc" (a google.rpc.Status in ctype's encoding,
	// RESOURCE_EXHAUSTED for a 413, INVALID_ARGUMENT otherwise).
	kind string
	// detail is the exact detail, or with prefix set its beginning; for
	// "mlflow" it is the error_code; for "rpc" the message's beginning,
	// or with prefix set a part of it.
	detail string
	prefix bool
	// message is a part of the MLflow error's message.
	message string
}

func checkOTLPAnswer(t *testing.T, r response, want otlpAnswer) {
	t.Helper()
	if r.status != want.status || r.ctype != want.ctype {
		t.Fatalf("answer %d %q %s, want %d %q", r.status, r.ctype, r.body, want.status, want.ctype)
	}
	switch want.kind {
	case "detail":
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 1 {
			t.Fatalf("body %s is not {\"detail\": ...} (%v)", r.body, err)
		}
		d, ok := got["detail"].(string)
		if !ok || (want.prefix && !strings.HasPrefix(d, want.detail)) || (!want.prefix && d != want.detail) {
			t.Fatalf("detail %q, want %q (prefix %v)", got["detail"], want.detail, want.prefix)
		}
	case "validation":
		var got, exp any
		_ = json.Unmarshal(otlpMissingHeader, &exp)
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		gb, _ := json.Marshal(got)
		eb, _ := json.Marshal(exp)
		if !bytes.Equal(gb, eb) {
			t.Fatalf("body %s, want %s", gb, eb)
		}
	case "mlflow":
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 2 {
			t.Fatalf("body %s is not an MLflow error (%v)", r.body, err)
		}
		if got["error_code"] != want.detail || !strings.Contains(got["message"].(string), want.message) {
			t.Fatalf("body %s, want %s with %q", r.body, want.detail, want.message)
		}
	case "rpc":
		var st spb.Status
		var err error
		if want.ctype == "application/json" {
			err = protojson.Unmarshal(r.body, &st)
		} else {
			err = proto.Unmarshal(r.body, &st)
		}
		code := int32(rpcInvalidArgument)
		if want.status == http.StatusRequestEntityTooLarge {
			code = rpcResourceExhausted
		}
		if err != nil || st.Code != code || !strings.Contains(st.Message, want.detail) ||
			(!want.prefix && !strings.HasPrefix(st.Message, want.detail)) {
			t.Fatalf("body %q (%v), want a google.rpc.Status code %d with %q", r.body, err, code, want.detail)
		}
	default:
		t.Fatalf("unknown kind %q", want.kind)
	}
}

// TestOTLPErrorAnswers: every refusal of POST /v1/traces has its status,
// content type and body shape: a body refused before the store gets
// OTLP/HTTP's answer (415 or 400, a google.rpc.Status in the request's
// encoding) with the message of MLflow's export_traces or
// decompress_otlp_body; a missing header FastAPI's 422; a store refusal
// MLflow's JSON error; our own bounds a 413 RESOURCE_EXHAUSTED. None of
// them is a status OTLP exporters retry.
func TestOTLPErrorAnswers(t *testing.T) {
	ts, _ := newTestServer(t, func(o *Options) { o.OTLPLimits.MaxBodyBytes = 64 << 10 })
	exp := mkExperiment(t, ts, "otlp-errors")
	gone := mkExperiment(t, ts, "otlp-errors-deleted")
	wantStatus(t, post(t, ts, "experiments/delete", map[string]any{"experiment_id": gone}), 200)

	good := mustProto(t, otlpRequest(otlpTraceID))
	goodJSON, _ := protojson.Marshal(otlpRequest(otlpTraceID))
	badID := mustProto(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{
		Spans: []*tracepb.Span{{TraceId: []byte{1}, SpanId: bytes.Repeat([]byte{2}, 8)}}}}}}})
	big := bytes.Repeat([]byte{0}, 65<<10)
	const pb, js = "application/x-protobuf", "application/json"
	hdr := func(exp, ctype, enc *string) map[string]*string {
		return map[string]*string{"x-mlflow-experiment-id": exp, "Content-Type": ctype, "Content-Encoding": enc}
	}

	for _, c := range []struct {
		name    string
		headers map[string]*string
		body    []byte
		want    otlpAnswer
	}{
		// FastAPI validates the required header before export_traces runs
		// (and so before the content type).
		{"no experiment header", hdr(nil, strp(pb), nil), good,
			otlpAnswer{status: 422, ctype: js, kind: "validation"}},
		{"no experiment header, bad content type", hdr(nil, strp("text/plain"), nil), good,
			otlpAnswer{status: 422, ctype: js, kind: "validation"}},
		// An empty header passes FastAPI; it names no experiment (and
		// must not fall back to the Default one).
		{"empty experiment header", hdr(strp(""), strp(pb), nil), good,
			otlpAnswer{status: 400, ctype: js, kind: "mlflow", detail: "INVALID_PARAMETER_VALUE", message: "x-mlflow-experiment-id"}},
		{"unsupported content type", hdr(&exp, strp("text/plain"), nil), good,
			otlpAnswer{status: 415, ctype: js, kind: "rpc",
				detail: "Invalid Content-Type: text/plain. Expected: application/x-protobuf or application/json"}},
		{"no content type", hdr(&exp, nil, nil), good,
			otlpAnswer{status: 415, ctype: js, kind: "rpc",
				detail: "Invalid Content-Type: None. Expected: application/x-protobuf or application/json"}},
		{"bad protobuf", hdr(&exp, strp(pb), nil), good[:len(good)-7],
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Invalid OpenTelemetry format", prefix: true}},
		{"empty protobuf", hdr(&exp, strp(pb), nil), nil,
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Invalid OpenTelemetry format - no spans found"}},
		{"bad JSON", hdr(&exp, strp(js), nil), []byte(`{"resourceSpans": [`),
			otlpAnswer{status: 400, ctype: js, kind: "rpc", detail: "Invalid OpenTelemetry format", prefix: true}},
		{"JSON of the wrong shape", hdr(&exp, strp(js+"; charset=utf-8"), nil), []byte(`{"resourceSpans": 5}`),
			otlpAnswer{status: 400, ctype: js, kind: "rpc", detail: "Invalid OpenTelemetry format", prefix: true}},
		{"empty JSON export", hdr(&exp, strp(js), nil), []byte(`{}`),
			otlpAnswer{status: 400, ctype: js, kind: "rpc", detail: "Invalid OpenTelemetry format - no spans found"}},
		{"bad gzip", hdr(&exp, strp(pb), strp("gzip")), good,
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Failed to decompress gzip payload"}},
		{"bad deflate", hdr(&exp, strp(pb), strp("deflate")), good,
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Failed to decompress deflate payload"}},
		{"unsupported encoding", hdr(&exp, strp(pb), strp("br")), good,
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Unsupported Content-Encoding: br"}},
		{"span MLflow cannot convert", hdr(&exp, strp(pb), nil), badID,
			otlpAnswer{status: 400, ctype: pb, kind: "rpc", detail: "Cannot convert OpenTelemetry span to MLflow span", prefix: true}},
		// Store refusals: MLflow's JSON error with the code's status.
		{"nonexistent experiment", hdr(strp("12345"), strp(pb), nil), good,
			otlpAnswer{status: 404, ctype: js, kind: "mlflow", detail: "RESOURCE_DOES_NOT_EXIST", message: "12345"}},
		{"nonexistent experiment, JSON export", hdr(strp("nope"), strp(js), nil), goodJSON,
			otlpAnswer{status: 404, ctype: js, kind: "mlflow", detail: "RESOURCE_DOES_NOT_EXIST", message: "nope"}},
		{"deleted experiment", hdr(&gone, strp(pb), nil), good,
			otlpAnswer{status: 400, ctype: js, kind: "mlflow", detail: "INVALID_PARAMETER_VALUE", message: "must be in the 'active' state"}},
		// Our bounds: OTLP's 413 with a google.rpc.Status in the
		// request's encoding.
		{"body too large", hdr(&exp, strp(pb), nil), big,
			otlpAnswer{status: 413, ctype: pb, kind: "rpc", detail: "larger than 65536 bytes", prefix: true}},
		{"body too large, JSON", hdr(&exp, strp(js), nil), big,
			otlpAnswer{status: 413, ctype: js, kind: "rpc", detail: "larger than 65536 bytes", prefix: true}},
		{"inflates too large", hdr(&exp, strp(pb), strp("gzip")), gzipped(t, big),
			otlpAnswer{status: 413, ctype: pb, kind: "rpc", detail: "larger than 65536 bytes", prefix: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := otlpRawPost(t, ts.URL, c.headers, c.body)
			checkOTLPAnswer(t, r, c.want)
			switch r.status {
			case 429, 502, 503, 504:
				t.Fatalf("a permanent refusal answered the retryable %d", r.status)
			}
		})
	}
	// Nothing was stored by any of these.
	wantError(t, v3(t, ts, "GET", "traces/"+otlpMLflowID, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	// A content type with parameters is still protobuf.
	r := otlpRawPost(t, ts.URL, hdr(&exp, strp(pb+"; charset=binary"), nil), good)
	if r.status != 200 || r.ctype != pb {
		t.Fatalf("export with a content type parameter: %d %q %s", r.status, r.ctype, r.body)
	}
}

// TestOTLPStoreFailure: a store failure that is not an MLflow error is
// logged and answered as export_traces answers it: 422 {"detail": "Failed
// to log OpenTelemetry spans"}, no internals in the body.
func TestOTLPStoreFailure(t *testing.T) {
	var st io.Closer
	ts, _ := newTestServer(t, func(o *Options) { st = o.Store.(io.Closer) })
	exp := mkExperiment(t, ts, "otlp-store-failure")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r := otlpRawPost(t, ts.URL, map[string]*string{"x-mlflow-experiment-id": &exp, "Content-Type": strp("application/x-protobuf")},
		mustProto(t, otlpRequest(otlpTraceID)))
	checkOTLPAnswer(t, r, otlpAnswer{status: 422, ctype: "application/json", kind: "detail", detail: "Failed to log OpenTelemetry spans"})
}

// TestOTLPStoreUnavailablePostgres: a database that does not answer in
// time is TEMPORARILY_UNAVAILABLE, 503, the one answer OTLP exporters
// retry; nothing is stored, and the same export succeeds once the
// database answers.
func TestOTLPStoreUnavailablePostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	st, err := pgstore.Open(ctx, uri, pgdb.Options{StatementTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts, _ := newTestServer(t, func(o *Options) { o.Store = st })
	exp := mkExperiment(t, ts, "otlp-unavailable")

	// Another session holds the experiment's row, which LogSpans must
	// share-lock: the export's statement runs past statement_timeout.
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM experiments WHERE experiment_id = $1 FOR UPDATE", exp); err != nil {
		t.Fatal(err)
	}
	headers := map[string]*string{"x-mlflow-experiment-id": &exp, "Content-Type": strp("application/x-protobuf")}
	body := mustProto(t, otlpRequest(otlpTraceID))
	r := otlpRawPost(t, ts.URL, headers, body)
	checkOTLPAnswer(t, r, otlpAnswer{status: 503, ctype: "application/json", kind: "mlflow", detail: "TEMPORARILY_UNAVAILABLE", message: "retry later"})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantError(t, v3(t, ts, "GET", "traces/"+otlpMLflowID, nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	if r := otlpRawPost(t, ts.URL, headers, body); r.status != 200 {
		t.Fatalf("the retried export: %d %s", r.status, r.body)
	}
}
