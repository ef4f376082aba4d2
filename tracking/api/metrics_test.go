package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
)

func logSteps(t testing.TB, tsURL func(string) string, client *http.Client, run, key string, from, to int) {
	t.Helper()
	for lo := from; lo < to; lo += 1000 {
		var sb strings.Builder
		sb.WriteString(`{"run_id":"` + run + `","metrics":[`)
		for i := lo; i < min(lo+1000, to); i++ {
			if i > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"%s","value":%d.5,"timestamp":%d,"step":%d}`, key, i, 1000+i, i)
		}
		sb.WriteString(`]}`)
		resp, err := client.Post(tsURL("/api/2.0/mlflow/runs/log-batch"), "application/json", strings.NewReader(sb.String()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("log-batch: %d %s", resp.StatusCode, b)
		}
	}
}

func TestMetricHistoryStreaming(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "hist")
	run := mkRun(t, ts, exp)
	const n = 100000
	url := func(p string) string { return ts.URL + p }
	logSteps(t, url, ts.Client(), run, "loss", 0, n)

	resp, err := ts.Client().Get(ts.URL + "/api/2.0/mlflow/metrics/get-history?run_id=" + run + "&metric_key=loss&max_results=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength != -1 {
		t.Errorf("history was not streamed (Content-Length %d)", resp.ContentLength)
	}
	dec := json.NewDecoder(resp.Body)
	var body struct {
		Metrics []struct {
			Key       string  `json:"key"`
			Value     float64 `json:"value"`
			Timestamp int64   `json:"timestamp"`
			Step      int64   `json:"step"`
		} `json:"metrics"`
	}
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Metrics) != n {
		t.Fatalf("%d points, want %d", len(body.Metrics), n)
	}
	for i, m := range body.Metrics {
		if m.Step != int64(i) || m.Timestamp != int64(1000+i) || m.Value != float64(i)+0.5 || m.Key != "loss" {
			t.Fatalf("point %d = %+v", i, m)
		}
	}

	// Unknown run or key: {}.
	for _, q := range []string{"run_id=" + run + "&metric_key=nope", "run_id=00000000000000000000000000000000&metric_key=loss"} {
		r := get(t, ts, "metrics/get-history?"+q)
		if r.status != 200 || string(r.body) != "{}" {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
	}
	wantError(t, get(t, ts, "metrics/get-history?run_id="+run), 400, "INVALID_PARAMETER_VALUE", "'metric_key'")
	wantError(t, get(t, ts, "metrics/get-history?metric_key=loss"), 400, "INVALID_PARAMETER_VALUE", "'run_id'")
}

func TestMetricHistoryBulk(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "bulk")
	a, b := mkRun(t, ts, exp), mkRun(t, ts, exp)
	url := func(p string) string { return ts.URL + p }
	logSteps(t, url, ts.Client(), a, "loss", 0, 50)
	logSteps(t, url, ts.Client(), b, "loss", 0, 120)

	steps := func(r response) map[string][]int64 {
		t.Helper()
		wantStatus(t, r, 200)
		var body struct {
			Metrics []struct {
				RunID string `json:"run_id"`
				Step  int64  `json:"step"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		out := map[string][]int64{}
		for _, m := range body.Metrics {
			out[m.RunID] = append(out[m.RunID], m.Step)
		}
		return out
	}
	eq := func(got []int64, want ...int64) bool {
		return fmt.Sprint(got) == fmt.Sprint(want)
	}

	got := steps(get(t, ts, "metrics/get-history-bulk-interval?run_ids="+a+"&run_ids="+b+"&metric_key=loss&max_results=10"))
	if !eq(got[a], 0, 12, 24, 36, 48, 49) || !eq(got[b], 0, 12, 24, 36, 48, 49, 60, 72, 84, 96, 108, 119) {
		t.Fatalf("sampled steps %v", got)
	}
	// MLflow 2.22.1's index check drops samples past the range's length.
	got = steps(get(t, ts, "metrics/get-history-bulk-interval?run_ids="+b+"&metric_key=loss&start_step=10&end_step=40&max_results=5"))
	if !eq(got[b], 10, 16, 22, 28, 40) {
		t.Fatalf("sampled steps %v", got[b])
	}
	got = steps(get(t, ts, "metrics/get-history-bulk-interval?run_ids="+a+"&metric_key=loss"))
	if len(got[a]) != 50 {
		t.Fatalf("%d steps", len(got[a]))
	}
	for q, msg := range map[string]string{
		"metric_key=loss": "'run_ids'",
		"run_ids=" + a:    "'metric_key'",
		"run_ids=" + a + "&metric_key=loss&start_step=1":                         "both must be specified",
		"run_ids=" + a + "&metric_key=loss&start_step=5&end_step=1":              "end_step must be greater",
		"run_ids=" + a + "&metric_key=loss&max_results=0":                        "between 1 and 2500",
		"run_ids=" + a + "&metric_key=loss&max_results=2501":                     "between 1 and 2500",
		"run_ids=" + strings.Repeat(a+"&run_ids=", 100) + a + "&metric_key=loss": "at most 100 run_ids",
	} {
		wantError(t, get(t, ts, "metrics/get-history-bulk-interval?"+q), 400, "INVALID_PARAMETER_VALUE", msg)
	}
	r := get(t, ts, "metrics/get-history-bulk-interval?run_ids=00000000000000000000000000000000&metric_key=loss")
	if string(r.body) != "{}" {
		t.Fatalf("%s", r.body)
	}

	// The UI's get-history-bulk: ordered by run id, at most max_results.
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+b+"&run_id="+a+"&metric_key=loss&max_results=60", "", nil)
	wantStatus(t, r, 200)
	var body struct {
		Metrics []map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	first, second := a, b
	if b < a {
		first, second = b, a
	}
	if len(body.Metrics) != 60 || body.Metrics[0]["run_id"] != first || body.Metrics[59]["run_id"] != second && len(body.Metrics) > 50 && first == a {
		t.Fatalf("bulk: %d points, first %v", len(body.Metrics), body.Metrics[0]["run_id"])
	}
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?metric_key=loss", "", nil)
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "at least one run_id")
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+a, "", nil)
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "must specify a metric_key")
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+a+"&metric_key=loss&max_results=x", "", nil)
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "max_results")
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id="+a+"&metric_key=none", "", nil)
	if string(r.body) != `{"metrics":[]}` {
		t.Fatalf("%s", r.body)
	}
	// Not served under /api.
	wantStatus(t, call(t, ts, "GET", "/api/2.0/mlflow/metrics/get-history-bulk?run_id="+a+"&metric_key=loss", "", nil), 404)
}

func TestPythonJSONFormatting(t *testing.T) {
	floats := map[float64]string{
		1: "1.0", 0.5: "0.5", 1e-05: "1e-05", 0.0001: "0.0001", 1e16: "1e+16", 1234567890123456: "1234567890123456.0",
		-2.5e-7: "-2.5e-07", 1.7976931348623157e308: "1.7976931348623157e+308", 123.456: "123.456",
	}
	tenth, fifth := 0.1, 0.2
	floats[tenth+fifth] = "0.30000000000000004"
	for v, want := range floats {
		if got := string(pyjson.AppendFloat(nil, v)); got != want {
			t.Errorf("pyjson.AppendFloat(%v) = %s, want %s", v, got, want)
		}
	}
	for raw, want := range map[string]string{
		`{"a":1,"b":[1.0,2e3,-0,"x\u00e9\ud83d\ude00"],"a":2}`: `{"a": 2, "b": [1.0, 2000.0, 0, "x\u00e9\ud83d\ude00"]}`,
		`{"s":"tab\tquote\"slash/"}`:                           `{"s": "tab\tquote\"slash/"}`,
		`[true,false,null,NaN,-Infinity]`:                      `[true, false, null, NaN, -Infinity]`,
	} {
		v, err := parseJSONValue([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := string(appendPyJSON(nil, v, 0)); got != want {
			t.Errorf("appendPyJSON(%s) = %s, want %s", raw, got, want)
		}
	}
}

func TestJSONScanner(t *testing.T) {
	for _, bad := range []string{``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `"\x"`, "\"a\nb\"", `nul`, `{"a":1} x`, `-`, `1e`} {
		if _, err := parseJSONValue([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for _, good := range []string{`{}`, `[]`, ` {"a" : [1, -2.5e+3, "x", true, null, {"b": {}}]} `, `NaN`, `-Infinity`, `"\ud83d\ude00"`} {
		if _, err := parseJSONValue([]byte(good)); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	s, err := decodeString([]byte(`"a\u00e9\ud83d\ude00\ud800\n\/"`))
	if err != nil || s != "aé😀\uFFFD\n/" {
		t.Errorf("decodeString = %q, %v", s, err)
	}
	obj := bodyObject([]byte(`{"k":"v","k":"w","n":null}`))
	f := &fields{obj: obj}
	if v, _, _ := f.str("k"); v != "w" {
		t.Errorf("last duplicate should win, got %q", v)
	}
	if _, ok := f.lookup("n"); ok {
		t.Error("null should count as absent")
	}
}

func BenchmarkLogBatchDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"run_id":"0123456789abcdef0123456789abcdef","metrics":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"key":"metric_%d","value":%d.25,"timestamp":1700000000%03d,"step":%d}`, i%10, i, i, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var q logBatchRequest
		if err := decodeFields(&fields{obj: bodyObject(body)}, &q); err != nil {
			b.Fatal(err)
		}
	}
	_ = bytes.MinRead
}
