package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api/replay"
)

const mlflow3Dir = "../../testdata/conformance-mlflow3"

// newMLflow3Server is newTestServer reporting a 3.x version, as a server
// the MLflow 3 client exports spans to must.
func newMLflow3Server(t testing.TB) *httptest.Server {
	ts, _ := newTestServer(t, func(o *Options) { o.MLflowVersion = DefaultMLflowVersion })
	return ts
}

// TestConformanceMLflow3 replays the exchanges recorded from MLflow 3's
// Python client (span export over OTLP, v3 trace routes; see the folder's
// README) against a fresh server each.
func TestConformanceMLflow3(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance replay skipped in -short mode")
	}
	// The transcripts compare /version by status only; the client sends
	// spans to /v1/traces only when the answer is at least 3.4
	// (RestStore.log_spans).
	ts := newMLflow3Server(t)
	resp, err := http.Get(ts.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var major, minor int
	if _, err := fmt.Sscanf(string(v), "%d.%d", &major, &minor); err != nil || major < 3 || major == 3 && minor < 4 {
		t.Fatalf("/version answers %q: MLflow 3 clients would not export spans", v)
	}
	results := replay.RunDir(t, mlflow3Dir, func(t testing.TB) string {
		return newMLflow3Server(t).URL
	}, nil, nil)
	for _, r := range results {
		exs, err := replay.Load(r.File)
		if err != nil {
			t.Fatal(err)
		}
		if r.Passed != len(exs) {
			t.Errorf("%s: %d of %d exchanges passed", r.File, r.Passed, len(exs))
		}
	}
}

// TestConformanceMLflow3NeedsSpans checks that the span export transcript
// fails against a server that answers the OTLP export but stores nothing:
// what the client reads back (get_trace, search, batchGet) is compared,
// not just statuses.
func TestConformanceMLflow3NeedsSpans(t *testing.T) {
	ts, _ := newTestServer(t, func(o *Options) { o.MLflowVersion = DefaultMLflowVersion })
	u, _ := url.Parse(ts.URL)
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			w.Header().Set("Content-Type", "application/x-protobuf")
			return
		}
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(drop.Close)
	res, err := replay.Replay(context.Background(), drop.URL, filepath.Join(mlflow3Dir, "mlflow3_span_export.jsonl"), replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, f := range res.Failures {
		failed[f.Step] = true
	}
	for _, step := range []string{"get_trace_ok", "search_traces"} {
		if !failed[step] {
			t.Errorf("step %s passed without stored spans; failures: %v", step, res.Failures)
		}
	}
}

// TestRecorderRoundTrip records exchanges of each body kind through
// replay.Recorder, then replays the transcript against a server whose
// experiment ids are shifted: the OTLP export's experiment header is bound
// like the ids in bodies and paths, so the replay passes.
func TestRecorderRoundTrip(t *testing.T) {
	upstream := newMLflow3Server(t)
	u, _ := url.Parse(upstream.URL)
	var transcript bytes.Buffer
	rec := &replay.Recorder{Upstream: u, Out: &transcript}
	proxy := httptest.NewServer(rec)
	t.Cleanup(proxy.Close)

	send := func(method, path, ctype string, body []byte, hdr ...string) {
		t.Helper()
		req, err := http.NewRequest(method, proxy.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		req.SetBasicAuth("someone", "secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	send("POST", replay.StepPath, "", []byte("create"))
	send("POST", "/api/2.0/mlflow/experiments/create", "application/json", []byte(`{"name": "rt"}`))
	send("POST", replay.StepPath, "", []byte("export"))
	send("POST", "/v1/traces", "application/x-protobuf", mustProto(t, otlpRequest(otlpTraceID)), "X-Mlflow-Experiment-Id", "1")
	send("GET", "/api/3.0/mlflow/traces/get?trace_id="+otlpMLflowID, "", nil)
	send("GET", "/api/2.0/mlflow/experiments/get?experiment_id=1", "", nil)
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(transcript.String(), "secret") || strings.Contains(strings.ToLower(transcript.String()), "authorization") {
		t.Fatalf("credentials recorded: %s", transcript.String())
	}
	path := filepath.Join(t.TempDir(), "rt.jsonl")
	if err := os.WriteFile(path, transcript.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	exs, err := replay.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds, steps []string
	for _, ex := range exs {
		kinds = append(kinds, ex.ReqBodyKind+"/"+ex.RespBodyKind)
		steps = append(steps, ex.Step)
	}
	if got := strings.Join(kinds, " "); got != "json/json base64/none none/json none/json" {
		t.Fatalf("body kinds %s", got)
	}
	if got := strings.Join(steps, " "); got != "create export export export" {
		t.Fatalf("steps %s", got)
	}
	if exs[1].ReqHeaders["x-mlflow-experiment-id"] != "1" || exs[1].ReqHeaders["content-type"] != "application/x-protobuf" {
		t.Fatalf("OTLP request headers %v", exs[1].ReqHeaders)
	}
	var otlp coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(mustBase64(t, exs[1].ReqBody), &otlp); err != nil || len(otlp.ResourceSpans) != 1 {
		t.Fatalf("recorded OTLP body: %v", err)
	}

	// Replay where experiment "1" already exists: the transcript's "1" is
	// the new experiment "2", in the header too.
	target := newMLflow3Server(t)
	wantStatus(t, post(t, target, "experiments/create", map[string]any{"name": "other"}), http.StatusOK)
	res, err := replay.Replay(context.Background(), target.URL, path, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Passed != 4 {
		t.Fatalf("replay: %s %v", res, res.Failures)
	}
}

func mustBase64(t testing.TB, raw []byte) []byte {
	t.Helper()
	v, err := replay.ParseJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := v.Get("base64")
	if !ok {
		t.Fatalf("not a base64 body: %s", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s.Str)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
