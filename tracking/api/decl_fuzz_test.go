package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// fuzzRequests are the declared request types FuzzDecode feeds: the
// repeated-message ones, the searches, the registry, the optional fields.
var fuzzRequests = []func() request{
	func() request { return &logBatchRequest{} },
	func() request { return &logMetricRequest{} },
	func() request { return &logInputsRequest{} },
	func() request { return &searchRunsRequest{} },
	func() request { return &createRunRequest{} },
	func() request { return &updateRunRequest{} },
	func() request { return &bulkIntervalRequest{} },
	func() request { return &historyBulkRequest{} },
	func() request { return &logModelRequest{} },
	func() request { return &createRegisteredModelRequest{} },
	func() request { return &searchExperimentsRequest{} },
	func() request { return &createExperimentRequest{} },
}

// fuzzAttacks are bodies aimed at the JSON scanner and the field readers.
var fuzzAttacks = []string{
	strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
	`{"metrics":` + strings.Repeat(`[{"a":`, 2000) + `1` + strings.Repeat(`}]`, 2000) + `}`,
	`{"run_id":"r","metrics":[{"key":"k","value":1e400,"timestamp":1e400,"step":-1e400}]}`,
	`{"run_id":"r","metrics":[{"key":"k","value":NaN,"timestamp":Infinity,"step":-Infinity}]}`,
	`{"run_id":"r","metrics":[{"key":"k","value":"nan","timestamp":"9223372036854775808","step":"-9223372036854775809"}]}`,
	`{"max_results":99999999999999999999999999,"run_view_type":1e3,"experiment_ids":[1,2.5,"x"]}`,
	`{"run_id":"a","run_id":"b","run_id":5,"key":"k","key":null}`,
	"{\"run_id\":\"\xff\xfe\",\"metrics\":[{\"key\":\"\xc3\x28\",\"value\":1,\"timestamp\":1}]}",
	`{"run_id":"\ud800\udc00\ud800","params":[{"key":"\u0000","value":"\\"}]}`,
	`"{\"run_id\":\"r\",\"tags\":[{\"key\":\"k\",\"value\":\"v\"}]}"`,
	`{"name":"m","tags":[{"key":1},{"key":"k","value":[]}],"description":{}}`,
	`{"start_step":1,"end_step":0,"run_ids":[],"metric_key":"","max_results":"1.5"}`,
	`{"datasets":[{"tags":null,"dataset":[]},{"dataset":{"name":{"a":1}}}],"models":[null,{}]}`,
	`{"model_json":"{\"flavors\":{\"a\":{\"config\":1}},\"run_id\":1,\"artifact_path\":[],\"utc_time_created\":true}"}`,
	`{"metrics":[1,2,3` + strings.Repeat(",1", 10000) + `]}`,
	`{"value": -0, "timestamp": 0.0, "step": 1E2, "key": "k", "run_id": "r"}`,
}

var fuzzQueries = []string{
	"", "run_id=a&run_id=b&metric_key=m&max_results=3", "run_ids=%FF%FE&metric_key=%C3%28",
	"max_results=1e400&run_view_type=9&experiment_ids=1&experiment_ids=", "a=%zz;b=1&&=&",
	"start_step=-9223372036854775809&end_step=9223372036854775807",
}

// FuzzDecode feeds arbitrary JSON bodies and query strings to decode for
// several declared request types: decode must not panic, every error must
// be a *tracking.Error with an MLflow code, and a decoded log-batch,
// search-runs or create-registered-model request, encoded again, must
// decode to the same request.
func FuzzDecode(f *testing.F) {
	for _, c := range conformanceSeeds(f) {
		f.Add(c.body, c.query)
	}
	for _, b := range fuzzAttacks {
		f.Add([]byte(b), "")
	}
	for _, q := range fuzzQueries {
		f.Add([]byte(nil), q)
	}
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		for i, mk := range fuzzRequests {
			for _, r := range fuzzHTTPRequests(body, query) {
				q := mk()
				err := decode(r, q)
				if err != nil {
					checkMLflowError(t, i, err)
					continue
				}
				if enc := reencode(q); enc != nil {
					q2 := mk()
					if err := decode(jsonRequest(enc), q2); err != nil {
						t.Fatalf("request %d: %s decoded, its re-encoding %s did not: %v", i, body, enc, err)
					}
					if enc2 := reencode(q2); !bytes.Equal(enc, enc2) {
						t.Fatalf("request %d: unstable round trip\n first %s\nsecond %s", i, enc, enc2)
					}
				}
			}
		}
	})
}

// checkMLflowError asserts err is a *tracking.Error whose code is one a
// request decode may answer, or a search grammar error (which writeError
// answers as INVALID_PARAMETER_VALUE).
func checkMLflowError(t *testing.T, i int, err error) {
	t.Helper()
	if se, ok := err.(*search.Error); ok {
		if se.Message == "" {
			t.Fatalf("request %d: empty search error message", i)
		}
		return
	}
	te, ok := err.(*tracking.Error)
	if !ok {
		t.Fatalf("request %d: error %T %v is not a *tracking.Error", i, err, err)
	}
	switch te.Code {
	case tracking.InvalidParameterValue, tracking.BadRequest:
	default:
		t.Fatalf("request %d: code %s for a decode error: %s", i, te.Code, te.Message)
	}
	if te.Message == "" {
		t.Fatalf("request %d: empty message", i)
	}
}

func jsonRequest(body []byte) *http.Request {
	r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/x"}, Header: http.Header{},
		Body: http.NoBody, ContentLength: int64(len(body))}
	r.Header.Set("Content-Type", "application/json")
	if len(body) > 0 {
		r.Body = nopCloser{bytes.NewReader(body)}
	}
	return r
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// fuzzHTTPRequests are the POST of body and, with a query, the GET.
func fuzzHTTPRequests(body []byte, query string) []*http.Request {
	rs := []*http.Request{jsonRequest(body)}
	if query != "" {
		rs = append(rs, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/x", RawQuery: query},
			Header: http.Header{}, Body: http.NoBody})
	}
	return rs
}

// reencode writes a decoded request back as its JSON message, for the types
// whose round trip is checked; nil for the others.
func reencode(q request) []byte {
	b := []byte{'{'}
	field := func(name string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(append(b, strconv.Quote(name)...), ':')
	}
	str := func(name, v string) {
		field(name)
		enc, _ := json.Marshal(v)
		b = append(b, enc...)
	}
	strs := func(name string, vs []string) {
		field(name)
		enc, _ := json.Marshal(vs)
		if vs == nil {
			enc = []byte("[]")
		}
		b = append(b, enc...)
	}
	kvs := func(name string, n int, kv func(int) (string, string)) {
		field(name)
		b = append(b, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			k, v := kv(i)
			ek, _ := json.Marshal(k)
			ev, _ := json.Marshal(v)
			b = append(append(append(append(append(b, `{"key":`...), ek...), `,"value":`...), ev...), '}')
		}
		b = append(b, ']')
	}
	switch q := q.(type) {
	case *logBatchRequest:
		str("run_id", q.ID)
		field("metrics")
		b = append(b, '[')
		for i, m := range q.Metrics {
			if i > 0 {
				b = append(b, ',')
			}
			ek, _ := json.Marshal(m.Key)
			b = append(append(append(b, `{"key":`...), ek...), `,"value":`...)
			b = appendFloatText(b, m.Value)
			b = strconv.AppendInt(append(b, `,"timestamp":`...), m.Timestamp, 10)
			b = strconv.AppendInt(append(b, `,"step":`...), m.Step, 10)
			for _, f := range [][2]string{{"model_id", m.ModelID}, {"dataset_name", m.DatasetName}, {"dataset_digest", m.DatasetDigest}} {
				ev, _ := json.Marshal(f[1])
				b = append(append(append(append(b, `,"`...), f[0]...), `":`...), ev...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
		kvs("params", len(q.Params), func(i int) (string, string) { return q.Params[i].Key, q.Params[i].Value })
		kvs("tags", len(q.Tags), func(i int) (string, string) { return q.Tags[i].Key, q.Tags[i].Value })
	case *searchRunsRequest:
		strs("experiment_ids", q.ExperimentIDs)
		str("filter", q.Filter)
		field("max_results")
		b = strconv.AppendInt(b, q.MaxResults, 10)
		strs("order_by", q.OrderBy)
		field("run_view_type")
		b = strconv.AppendInt(b, int64(q.ViewType), 10)
		str("page_token", q.PageToken)
	case *createRegisteredModelRequest:
		str("name", q.Name)
		kvs("tags", len(q.Tags), func(i int) (string, string) { return q.Tags[i].Key, q.Tags[i].Value })
		str("description", q.Description)
	default:
		return nil
	}
	return append(b, '}')
}

// appendFloatText writes x as protobuf's JSON does: a number, or the
// strings "NaN", "Infinity", "-Infinity".
func appendFloatText(b []byte, x float64) []byte {
	switch {
	case math.IsNaN(x):
		return append(b, `"NaN"`...)
	case math.IsInf(x, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(x, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

type fuzzSeed struct {
	body  []byte
	query string
}

// conformanceSeeds are the requests of the recorded exchanges: JSON bodies
// and query strings.
func conformanceSeeds(tb testing.TB) []fuzzSeed {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "conformance", "*.jsonl"))
	var out []fuzzSeed
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var line struct {
				Query string          `json:"query"`
				Kind  string          `json:"req_body_kind"`
				Body  json.RawMessage `json:"req_body"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			var seed fuzzSeed
			if line.Kind == "json" {
				seed.body = line.Body
			}
			seed.query = line.Query
			if seed.body != nil || seed.query != "" {
				out = append(out, seed)
			}
		}
		fh.Close()
	}
	if len(out) == 0 {
		tb.Fatal("no conformance requests found")
	}
	return out
}
