package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

type response struct {
	status int
	ctype  string
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r response) errorCode(t testing.TB) string {
	t.Helper()
	code, _ := r.json(t)["error_code"].(string)
	return code
}

func (r response) message(t testing.TB) string {
	t.Helper()
	msg, _ := r.json(t)["message"].(string)
	return msg
}

// call sends a request; body is sent as is when it is a string or []byte,
// and JSON-encoded otherwise. ctype "" sends no Content-Type; "json" is
// application/json.
func call(t testing.TB, ts *httptest.Server, method, target, ctype string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, ts.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype == "json" {
		ctype = "application/json"
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, b}
}

func post(t testing.TB, ts *httptest.Server, path string, body any) response {
	t.Helper()
	return call(t, ts, "POST", "/api/2.0/mlflow/"+path, "json", body)
}

func get(t testing.TB, ts *httptest.Server, pathAndQuery string) response {
	t.Helper()
	return call(t, ts, "GET", "/api/2.0/mlflow/"+pathAndQuery, "", nil)
}

func wantStatus(t testing.TB, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

func wantError(t testing.TB, r response, status int, code, msgPart string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := r.errorCode(t); got != code {
		t.Fatalf("error_code %q, want %q; body %s", got, code, r.body)
	}
	if msgPart != "" && !strings.Contains(r.message(t), msgPart) {
		t.Fatalf("message %q does not contain %q", r.message(t), msgPart)
	}
}

// mkExperiment creates an experiment and returns its id.
func mkExperiment(t testing.TB, ts *httptest.Server, name string) string {
	t.Helper()
	r := post(t, ts, "experiments/create", map[string]any{"name": name})
	wantStatus(t, r, 200)
	return r.json(t)["experiment_id"].(string)
}

// mkRun creates a run and returns its id.
func mkRun(t testing.TB, ts *httptest.Server, expID string) string {
	t.Helper()
	r := post(t, ts, "runs/create", map[string]any{"experiment_id": expID, "start_time": 1})
	wantStatus(t, r, 200)
	return r.json(t)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
}

func getRun(t testing.TB, ts *httptest.Server, id string) map[string]any {
	t.Helper()
	r := get(t, ts, "runs/get?run_id="+id)
	wantStatus(t, r, 200)
	return r.json(t)["run"].(map[string]any)
}

func TestServerRoutes(t *testing.T) {
	ts, srv := newTestServer(t)

	t.Run("health and version", func(t *testing.T) {
		r := call(t, ts, "GET", "/health", "", nil)
		if r.status != 200 || string(r.body) != "OK" || !strings.HasPrefix(r.ctype, "text/html") {
			t.Fatalf("health: %d %q %q", r.status, r.ctype, r.body)
		}
		r = call(t, ts, "GET", "/version", "", nil)
		if r.status != 200 || string(r.body) != "2.22.1" {
			t.Fatalf("version: %d %q", r.status, r.body)
		}
		r = call(t, ts, "GET", "/api/3.0/mlflow/server-info", "", nil)
		wantStatus(t, r, 200)
		if m := r.json(t); m["workspaces_enabled"] != false || m["server_version"] != "test" {
			t.Fatalf("server-info: %s", r.body)
		}
	})

	t.Run("unknown routes and methods", func(t *testing.T) {
		for _, p := range []string{"/api/2.0/mlflow/nope", "/api/2.0/mlflow/experiments/get/", "/api/2.1/mlflow/experiments/get",
			"/ajax-api/2.0/mlflow/nope", "/", "/api/2.0/mlflow/experiments/search-datasets", "/api/2.0/mlflow/upload-artifact"} {
			r := call(t, ts, "GET", p, "", nil)
			if p == "/" {
				if r.status != 404 || !strings.HasPrefix(r.ctype, "text/html") {
					t.Errorf("GET %s: %d %q", p, r.status, r.ctype)
				}
				continue
			}
			if r.status != 404 || r.json(t)["error_code"] != "ENDPOINT_NOT_FOUND" {
				t.Errorf("GET %s: %d %q %s", p, r.status, r.ctype, r.body)
			}
		}
		r := call(t, ts, "GET", "/api/2.0/mlflow/experiments/create", "", nil)
		wantStatus(t, r, 405)
		if allow := r.header.Get("Allow"); allow != "OPTIONS, POST" {
			t.Errorf("Allow %q", allow)
		}
		r = call(t, ts, "PUT", "/api/2.0/mlflow/experiments/create", "json", `{"name":"x"}`)
		wantStatus(t, r, 405)
		r = call(t, ts, "OPTIONS", "/api/2.0/mlflow/experiments/search", "", nil)
		wantStatus(t, r, 200)
		if allow := r.header.Get("Allow"); allow != "GET, HEAD, OPTIONS, POST" {
			t.Errorf("Allow %q", allow)
		}
		// HEAD runs the GET handler but, like Flask, reads no query string.
		r = call(t, ts, "HEAD", "/api/2.0/mlflow/experiments/get?experiment_id=0", "", nil)
		wantStatus(t, r, 400)
		r = call(t, ts, "HEAD", "/health", "", nil)
		wantStatus(t, r, 200)
	})

	t.Run("routes list", func(t *testing.T) {
		seen := map[string]bool{}
		for _, rt := range srv.Routes() {
			if rt.Name == "" || rt.Method == "" || !strings.HasPrefix(rt.Pattern, "/") {
				t.Errorf("bad route %+v", rt)
			}
			seen[rt.Method+" "+rt.Pattern] = true
		}
		for _, want := range []string{
			"POST /api/2.0/mlflow/runs/log-batch", "POST /ajax-api/2.0/mlflow/runs/log-batch",
			"GET /ajax-api/2.0/mlflow/metrics/get-history-bulk", "GET /get-artifact",
			"POST /ajax-api/2.0/mlflow/upload-artifact", "PUT /api/2.0/mlflow-artifacts/artifacts/{path...}",
			"POST /api/2.0/mlflow/experiments/delete-experiment-tag", "GET /api/2.0/mlflow/experiments/search",
		} {
			if !seen[want] {
				t.Errorf("Routes lacks %s", want)
			}
		}
	})
}

func TestRequestDecoding(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "decoding")
	run := mkRun(t, ts, exp)

	t.Run("content type", func(t *testing.T) {
		r := call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "", `{"name":"ct"}`)
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Content-Type header is missing")
		r = call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "text/plain", `{"name":"ct"}`)
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']")
		r = call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "application/json; charset=utf-8", `{"name":"ct"}`)
		wantStatus(t, r, 200)
	})

	t.Run("lenient bodies", func(t *testing.T) {
		for _, body := range []string{"", "{not json", "[1,2]", "42"} {
			r := call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "json", body)
			wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
		}
		// A JSON string holding JSON is decoded again; unknown fields are ignored.
		enc, _ := json.Marshal(`{"name":"double-encoded","unknown":{"x":[1,2]}}`)
		r := call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "json", enc)
		wantStatus(t, r, 200)
		// An empty string counts as missing.
		r = post(t, ts, "experiments/create", map[string]any{"name": ""})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
	})

	t.Run("oversized body", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", MaxJSONBodySize) + `"}`
		r := call(t, ts, "POST", "/api/2.0/mlflow/experiments/create", "json", big)
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "too large")
	})

	t.Run("query strings", func(t *testing.T) {
		// A scalar given twice takes the first value.
		r := get(t, ts, "experiments/get?experiment_id=0&experiment_id="+exp)
		wantStatus(t, r, 200)
		if name := r.json(t)["experiment"].(map[string]any)["name"]; name != "Default" {
			t.Fatalf("got experiment %v", name)
		}
		// Repeated keys make lists; view_type by name or number.
		r = get(t, ts, "experiments/search?max_results=5&filter=name+LIKE+%27D%25%27&order_by=name+DESC&order_by=experiment_id&view_type=3")
		wantStatus(t, r, 200)
		exps := r.json(t)["experiments"].([]any)
		if len(exps) != 1 || exps[0].(map[string]any)["name"] != "Default" {
			t.Fatalf("search: %s", r.body)
		}
		r = get(t, ts, "experiments/search?max_results=abc")
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "for parameter 'max_results'")
		r = get(t, ts, "experiments/search?view_type=ALL")
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 0 for parameter 'max_results'")
		r = get(t, ts, "experiments/search?max_results=50001")
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "at most 50000")
		// A GET without a query string reads the body.
		r = call(t, ts, "GET", "/api/2.0/mlflow/experiments/get", "", `{"experiment_id":"0"}`)
		wantStatus(t, r, 200)
	})

	t.Run("experiment ids as numbers", func(t *testing.T) {
		r := post(t, ts, "runs/search", map[string]any{"experiment_ids": []any{json.Number(exp)}})
		wantStatus(t, r, 200)
		if n := len(r.json(t)["runs"].([]any)); n != 1 {
			t.Fatalf("%d runs", n)
		}
		r = call(t, ts, "GET", "/api/2.0/mlflow/experiments/get", "", `{"experiment_id":0}`)
		wantStatus(t, r, 200)
	})

	t.Run("numbers", func(t *testing.T) {
		metric := func(fields string) response {
			return call(t, ts, "POST", "/api/2.0/mlflow/runs/log-metric", "json",
				`{"run_id":"`+run+`",`+fields+`}`)
		}
		wantStatus(t, metric(`"key":"s","value":"1.5","timestamp":"1700000000000","step":"7"`), 200)
		wantStatus(t, metric(`"key":"nan","value":"NaN","timestamp":1`), 200)
		wantStatus(t, metric(`"key":"inf","value":"Infinity","timestamp":1`), 200)
		wantStatus(t, metric(`"key":"ninf","value":"-Infinity","timestamp":1`), 200)
		wantStatus(t, metric(`"key":"whole","value":3,"timestamp":1e3,"step":2.0`), 200)
		// A non-integral int64 leaves the field at its default, as MLflow's
		// failed protobuf parse does.
		wantStatus(t, metric(`"key":"frac","value":1,"timestamp":1,"step":1.5`), 200)
		wantError(t, metric(`"key":"big","value":1,"timestamp":123456789012345678901234567890`), 400,
			"INVALID_PARAMETER_VALUE", "'timestamp'")
		wantError(t, metric(`"key":"big","value":1,"timestamp":"99999999999999999999"`), 400,
			"INVALID_PARAMETER_VALUE", "'timestamp'")
		wantError(t, metric(`"key":"bad","value":"abc","timestamp":1`), 400,
			"INVALID_PARAMETER_VALUE", `Invalid value "abc" for parameter 'value' supplied:  Hint: Value was of type 'str'.`)
		wantError(t, metric(`"key":"bad","value":NaN,"timestamp":1`), 400, "INVALID_PARAMETER_VALUE", "bare NaN")
		wantError(t, metric(`"key":"bad","value":1,"timestamp":-Infinity`), 400, "INVALID_PARAMETER_VALUE", "bare -Infinity")
		wantError(t, metric(`"key":"bad","value":true,"timestamp":1`), 400, "INVALID_PARAMETER_VALUE", "'bool'")
		wantError(t, metric(`"key":"bad","value":1,"timestamp":"x"`), 400, "INVALID_PARAMETER_VALUE",
			`Invalid value "x" for parameter 'timestamp'`)
		wantError(t, metric(`"key":"bad","value":"","timestamp":1`), 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'value'")
		wantError(t, metric(`"key":"bad","value":1`), 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'timestamp'")
		wantError(t, metric(`"key":"bad","value":1,"timestamp":-1`), 400, "INVALID_PARAMETER_VALUE", "nonnegative")

		data := getRun(t, ts, run)["data"].(map[string]any)
		got := map[string]string{}
		for _, m := range data["metrics"].([]any) {
			mm := m.(map[string]any)
			got[mm["key"].(string)] = fmt.Sprint(mm["value"], "@", mm["timestamp"], "/", mm["step"])
		}
		want := map[string]string{
			"s": "1.5@1700000000000/7", "nan": "NaN@1/0", "inf": "1.7976931348623157e+308@1/0",
			"ninf": "-1.7976931348623157e+308@1/0", "whole": "3.0@1000/2", "frac": "1.0@1/0",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("metric %s = %q, want %q", k, got[k], v)
			}
		}
	})

	t.Run("strings must be strings", func(t *testing.T) {
		r := post(t, ts, "runs/log-parameter", map[string]any{"run_id": run, "key": "p", "value": 3})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Invalid value 3 for parameter 'value' supplied:  Hint: Value was of type 'int'.")
		r = post(t, ts, "runs/set-tag", map[string]any{"run_id": run, "key": []string{"k"}, "value": "v"})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "'list'")
	})

	t.Run("enums", func(t *testing.T) {
		up := func(status any) response {
			return post(t, ts, "runs/update", map[string]any{"run_id": run, "status": status})
		}
		status := func(r response) string {
			return r.json(t)["run_info"].(map[string]any)["status"].(string)
		}
		r := up("FINISHED")
		wantStatus(t, r, 200)
		if s := status(r); s != "FINISHED" {
			t.Fatal(s)
		}
		r = up(5)
		if s := status(r); s != "KILLED" {
			t.Fatal(s)
		}
		r = up("DONE") // unknown names are ignored
		if s := status(r); s != "KILLED" {
			t.Fatal(s)
		}
		wantError(t, up(9), 400, "INVALID_PARAMETER_VALUE", "'status'")
		r = up("RUNNING")
		if s := status(r); s != "RUNNING" {
			t.Fatal(s)
		}
	})
}

func TestExperimentsAPI(t *testing.T) {
	ts, _ := newTestServer(t)
	r := post(t, ts, "experiments/create", map[string]any{"name": "e1", "tags": []map[string]string{{"key": "a", "value": "1"}}})
	wantStatus(t, r, 200)
	id := r.json(t)["experiment_id"].(string)

	wantError(t, post(t, ts, "experiments/create", map[string]any{"name": "e1"}), 400, "RESOURCE_ALREADY_EXISTS", "")
	wantError(t, post(t, ts, "experiments/create", map[string]any{"name": strings.Repeat("n", 501)}), 400, "INVALID_PARAMETER_VALUE", "500")
	wantError(t, post(t, ts, "experiments/create", map[string]any{"name": "frag", "artifact_location": "s3://b/p#frag"}), 400,
		"INVALID_PARAMETER_VALUE", "fragments")
	wantError(t, post(t, ts, "experiments/create", map[string]any{"name": "badtag", "tags": []map[string]string{{"key": "../x", "value": "1"}}}),
		400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, post(t, ts, "experiments/create", map[string]any{"name": "badtags", "tags": "x"}), 400, "INVALID_PARAMETER_VALUE", "'tags'")

	r = get(t, ts, "experiments/get?experiment_id="+id)
	wantStatus(t, r, 200)
	e := r.json(t)["experiment"].(map[string]any)
	if e["artifact_location"] != "mlflow-artifacts:/"+id || e["lifecycle_stage"] != "active" {
		t.Fatalf("experiment %v", e)
	}
	wantError(t, get(t, ts, "experiments/get?experiment_id=999"), 404, "RESOURCE_DOES_NOT_EXIST", "")
	wantError(t, get(t, ts, "experiments/get"), 400, "INVALID_PARAMETER_VALUE", "'experiment_id'")
	wantError(t, get(t, ts, "experiments/get-by-name?experiment_name=zz"), 404, "RESOURCE_DOES_NOT_EXIST", "Could not find experiment with name 'zz'")

	wantStatus(t, post(t, ts, "experiments/update", map[string]any{"experiment_id": id, "new_name": "e2"}), 200)
	wantError(t, post(t, ts, "experiments/update", map[string]any{"experiment_id": id}), 400, "INVALID_PARAMETER_VALUE", "'new_name'")
	wantStatus(t, get(t, ts, "experiments/get-by-name?experiment_name=e2"), 200)

	wantStatus(t, post(t, ts, "experiments/set-experiment-tag", map[string]any{"experiment_id": id, "key": "b", "value": "2"}), 200)
	wantError(t, post(t, ts, "experiments/set-experiment-tag", map[string]any{"experiment_id": id, "key": "b", "value": strings.Repeat("v", 5001)}),
		400, "INVALID_PARAMETER_VALUE", "5000")
	wantStatus(t, post(t, ts, "experiments/delete-experiment-tag", map[string]any{"experiment_id": id, "key": "a"}), 200)
	wantError(t, post(t, ts, "experiments/delete-experiment-tag", map[string]any{"experiment_id": id, "key": "a"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	tags := get(t, ts, "experiments/get?experiment_id="+id).json(t)["experiment"].(map[string]any)["tags"].([]any)
	if len(tags) != 1 || tags[0].(map[string]any)["key"] != "b" {
		t.Fatalf("tags %v", tags)
	}

	wantStatus(t, post(t, ts, "experiments/delete", map[string]any{"experiment_id": id}), 200)
	r = post(t, ts, "experiments/search", map[string]any{"max_results": 10, "view_type": "DELETED_ONLY"})
	wantStatus(t, r, 200)
	if n := len(r.json(t)["experiments"].([]any)); n != 1 {
		t.Fatalf("%d deleted experiments", n)
	}
	// Renaming a deleted experiment is a client mistake: never a 5xx.
	r = post(t, ts, "experiments/update", map[string]any{"experiment_id": id, "new_name": "e3"})
	if r.status >= 500 {
		t.Fatalf("rename of a deleted experiment: %d %s", r.status, r.body)
	}
	wantStatus(t, post(t, ts, "experiments/restore", map[string]any{"experiment_id": id}), 200)

	r = post(t, ts, "experiments/search", map[string]any{"max_results": 1, "filter": "name = 'e2'"})
	wantStatus(t, r, 200)
	if exps := r.json(t)["experiments"].([]any); len(exps) != 1 {
		t.Fatalf("search: %s", r.body)
	}
	wantError(t, post(t, ts, "experiments/search", map[string]any{"max_results": 1, "filter": "name = "}), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, post(t, ts, "experiments/search", map[string]any{"max_results": 1, "order_by": []string{"nope DESC"}}), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, post(t, ts, "experiments/search", map[string]any{"max_results": 1, "page_token": "!!"}), 400, "INVALID_PARAMETER_VALUE", "page token")
	// Paging: a token while more rows exist.
	r = post(t, ts, "experiments/search", map[string]any{"max_results": 1})
	tok, _ := r.json(t)["next_page_token"].(string)
	if tok == "" {
		t.Fatalf("no page token: %s", r.body)
	}
	r = post(t, ts, "experiments/search", map[string]any{"max_results": 1, "page_token": tok})
	wantStatus(t, r, 200)
	if _, more := r.json(t)["next_page_token"]; more {
		t.Fatalf("unexpected token on the last page: %s", r.body)
	}

	// The ajax mirror.
	r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id="+id, "", nil)
	wantStatus(t, r, 200)
}

func TestRunsAPI(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "runs")

	t.Run("create", func(t *testing.T) {
		r := post(t, ts, "runs/create", map[string]any{"experiment_id": exp})
		wantStatus(t, r, 200)
		run := r.json(t)["run"].(map[string]any)
		info := run["info"].(map[string]any)
		name := info["run_name"].(string)
		if parts := strings.Split(name, "-"); len(parts) != 3 || len(name) > 20 {
			t.Fatalf("generated name %q", name)
		}
		if info["start_time"] != json.Number("0") || info["user_id"] != "" || info["status"] != "RUNNING" {
			t.Fatalf("info %v", info)
		}
		if _, ok := info["end_time"]; ok {
			t.Fatal("end_time set on a new run")
		}
		tags := run["data"].(map[string]any)["tags"].([]any)
		if len(tags) != 1 || tags[0].(map[string]any)["value"] != name {
			t.Fatalf("tags %v", tags)
		}
		if _, ok := run["inputs"]; !ok {
			t.Fatal("no inputs")
		}

		r = post(t, ts, "runs/create", map[string]any{"experiment_id": exp, "tags": []map[string]string{{"key": "mlflow.runName", "value": "from-tag"}}})
		if n := r.json(t)["run"].(map[string]any)["info"].(map[string]any)["run_name"]; n != "from-tag" {
			t.Fatalf("run name %v", n)
		}
		r = post(t, ts, "runs/create", map[string]any{"experiment_id": exp, "run_name": "a", "tags": []map[string]string{{"key": "mlflow.runName", "value": "b"}}})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Both 'run_name' argument and 'mlflow.runName' tag are specified")
		wantError(t, post(t, ts, "runs/create", map[string]any{"run_name": "x"}), 400, "INVALID_PARAMETER_VALUE", "'experiment_id'")
		wantError(t, post(t, ts, "runs/create", map[string]any{"experiment_id": "999"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	})

	id := mkRun(t, ts, exp)
	t.Run("update, tags, params", func(t *testing.T) {
		r := post(t, ts, "runs/update", map[string]any{"run_uuid": id, "end_time": 5, "run_name": "renamed"})
		wantStatus(t, r, 200)
		info := r.json(t)["run_info"].(map[string]any)
		if info["end_time"] != json.Number("5") || info["run_name"] != "renamed" {
			t.Fatalf("info %v", info)
		}
		wantError(t, post(t, ts, "runs/update", map[string]any{"status": "FINISHED"}), 400, "INVALID_PARAMETER_VALUE", "'run_id'")
		wantError(t, post(t, ts, "runs/update", map[string]any{"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST", "")

		wantStatus(t, post(t, ts, "runs/set-tag", map[string]any{"run_id": id, "key": "long", "value": strings.Repeat("v", 8001)}), 200)
		wantStatus(t, post(t, ts, "runs/log-parameter", map[string]any{"run_id": id, "key": "p", "value": strings.Repeat("p", 6001)}), 200)
		wantStatus(t, post(t, ts, "runs/log-parameter", map[string]any{"run_id": id, "key": "q"}), 200)
		wantError(t, post(t, ts, "runs/log-parameter", map[string]any{"run_id": id, "key": "q", "value": "other"}), 400,
			"INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
		wantError(t, post(t, ts, "runs/log-parameter", map[string]any{"run_id": id, "key": "bad key!", "value": "x"}), 400,
			"INVALID_PARAMETER_VALUE", "Names may only contain")
		wantError(t, post(t, ts, "runs/set-tag", map[string]any{"run_id": id, "value": "v"}), 400, "INVALID_PARAMETER_VALUE", "'key'")
		data := getRun(t, ts, id)["data"].(map[string]any)
		for _, tg := range data["tags"].([]any) {
			if m := tg.(map[string]any); m["key"] == "long" && len(m["value"].(string)) != 8000 {
				t.Fatalf("tag not truncated: %d", len(m["value"].(string)))
			}
		}
		for _, p := range data["params"].([]any) {
			if m := p.(map[string]any); m["key"] == "p" && len(m["value"].(string)) != 6000 {
				t.Fatalf("param not truncated: %d", len(m["value"].(string)))
			}
		}
		wantStatus(t, post(t, ts, "runs/delete-tag", map[string]any{"run_id": id, "key": "long"}), 200)
		wantError(t, post(t, ts, "runs/delete-tag", map[string]any{"run_id": id, "key": "long"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	})

	t.Run("log-batch", func(t *testing.T) {
		body := map[string]any{
			"run_id":  id,
			"metrics": []map[string]any{{"key": "m", "value": 1, "timestamp": 10}, {"key": "m", "value": "NaN", "timestamp": 11, "step": 1}},
			"params":  []map[string]any{{"key": "bp", "value": "1"}},
			"tags":    []map[string]any{{"key": "bt"}},
		}
		wantStatus(t, post(t, ts, "runs/log-batch", body), 200)
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_uuid": id, "tags": []map[string]any{{"key": "x", "value": "y"}}}),
			400, "INVALID_PARAMETER_VALUE", `Invalid value "" for parameter 'run_id' supplied.`)
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "metrics": []map[string]any{{"key": "m", "value": 1}}}),
			400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'metrics[0].timestamp'")
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "metrics": []map[string]any{{"key": "m", "value": "x", "timestamp": 1}}}),
			400, "INVALID_PARAMETER_VALUE", "'metrics[0].value'")
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "params": []map[string]any{{"value": "x"}}}),
			400, "INVALID_PARAMETER_VALUE", "'params[0].key'")
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "params": []map[string]any{{"key": "d", "value": "1"}, {"key": "d", "value": "1"}}}),
			400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys")
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "metrics": "x"}), 400, "INVALID_PARAMETER_VALUE", "'metrics'")
		many := make([]map[string]any, 101)
		for i := range many {
			many[i] = map[string]any{"key": fmt.Sprint("k", i), "value": "v"}
		}
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": id, "params": many}), 400, "INVALID_PARAMETER_VALUE", "at most 100 params")
		wantError(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": "00000000000000000000000000000000"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
		r := get(t, ts, "metrics/get-history?run_id="+id+"&metric_key=m")
		wantStatus(t, r, 200)
		if want := `{"metrics":[{"key":"m","value":1.0,"timestamp":10,"step":0},{"key":"m","value":"NaN","timestamp":11,"step":1}]}`; string(r.body) != want {
			t.Fatalf("history %s", r.body)
		}
	})

	t.Run("log-inputs", func(t *testing.T) {
		ds := map[string]any{"tags": []map[string]string{{"key": "z", "value": "1"}, {"key": "mlflow.data.context", "value": "train"}},
			"dataset": map[string]string{"name": "d", "digest": "x", "source_type": "code", "source": "{}"}}
		wantStatus(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{ds}}), 200)
		wantStatus(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{}}), 200)
		wantStatus(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": id}), 200) // datasets optional since MLflow 3
		wantError(t, post(t, ts, "runs/log-inputs", map[string]any{"datasets": []any{}}), 400, "INVALID_PARAMETER_VALUE", "'run_id'")
		bad := map[string]any{"dataset": map[string]string{"name": strings.Repeat("n", 501)}}
		wantError(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": id, "datasets": []any{bad}}), 400, "INVALID_PARAMETER_VALUE", "500")
		inputs := getRun(t, ts, id)["inputs"].(map[string]any)["dataset_inputs"].([]any)
		tags := inputs[0].(map[string]any)["tags"].([]any)
		if tags[0].(map[string]any)["key"] != "mlflow.data.context" {
			t.Fatalf("input tags not ordered by key: %v", tags)
		}
		r := call(t, ts, "POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", "json", map[string]any{"experiment_ids": []string{exp}})
		wantStatus(t, r, 200)
		want := `{"dataset_summaries":[{"experiment_id":"` + exp + `","name":"d","digest":"x","context":"train"}]}`
		if string(r.body) != want {
			t.Fatalf("search-datasets %s", r.body)
		}
		r = call(t, ts, "POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", "json", map[string]any{})
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "at least one experiment_id")
	})

	t.Run("log-model", func(t *testing.T) {
		model := `{"artifact_path": "m", "run_id": "` + id + `", "utc_time_created": "2023-11-14 22:13:20.000000",` +
			` "flavors": {"python_function": {"loader_module": "x", "config": {"a": 1}, "v": 1e-05, "n": [1.0, 2, "\u00e9"]}},` +
			` "model_uuid": "u", "mlflow_version": "2.22.1"}`
		wantStatus(t, post(t, ts, "runs/log-model", map[string]any{"run_id": id, "model_json": model}), 200)
		wantError(t, post(t, ts, "runs/log-model", map[string]any{"run_id": id, "model_json": "not json"}), 400, "INVALID_PARAMETER_VALUE", "Malformed model info")
		wantError(t, post(t, ts, "runs/log-model", map[string]any{"run_id": id, "model_json": "{}"}), 400, "INVALID_PARAMETER_VALUE",
			"Model json is missing mandatory fields: {'artifact_path', 'flavors', 'run_id', 'utc_time_created'}")
		wantError(t, post(t, ts, "runs/log-model", map[string]any{"run_id": id, "model_json": "[1]"}), 400, "INVALID_PARAMETER_VALUE", "")
		wantError(t, post(t, ts, "runs/log-model", map[string]any{"run_id": id}), 400, "INVALID_PARAMETER_VALUE", "'model_json'")
		var hist string
		for _, tg := range getRun(t, ts, id)["data"].(map[string]any)["tags"].([]any) {
			if m := tg.(map[string]any); m["key"] == tracking.TagLogModelHistory {
				hist = m["value"].(string)
			}
		}
		want := `[{"run_id": "` + id + `", "artifact_path": "m", "utc_time_created": "2023-11-14 22:13:20.000000", "model_uuid": "u", ` +
			`"flavors": {"python_function": {"loader_module": "x", "v": 1e-05, "n": [1.0, 2, "\u00e9"]}}}]`
		if hist != want {
			t.Fatalf("history tag\n got %s\nwant %s", hist, want)
		}
	})

	t.Run("search", func(t *testing.T) {
		r := post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 2})
		wantStatus(t, r, 200)
		tok, _ := r.json(t)["next_page_token"].(string)
		if tok == "" {
			t.Fatalf("no token: %s", r.body)
		}
		wantError(t, post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 50001}), 400, "INVALID_PARAMETER_VALUE", "'max_results'")
		wantError(t, post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": "metrics.x >"}), 400, "INVALID_PARAMETER_VALUE", "")
		wantError(t, post(t, ts, "runs/search", map[string]any{"experiment_ids": exp}), 400, "INVALID_PARAMETER_VALUE", "'experiment_ids'")
		r = post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "filter": "params.bp = '1'"})
		wantStatus(t, r, 200)
		if n := len(r.json(t)["runs"].([]any)); n != 1 {
			t.Fatalf("%d runs", n)
		}
		r = post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{"12345"}})
		if string(r.body) != "{}" {
			t.Fatalf("empty search: %s", r.body)
		}
	})

	t.Run("delete and restore", func(t *testing.T) {
		wantStatus(t, post(t, ts, "runs/delete", map[string]any{"run_id": id}), 200)
		wantError(t, post(t, ts, "runs/set-tag", map[string]any{"run_id": id, "key": "k", "value": "v"}), 400, "INVALID_PARAMETER_VALUE", "must be in the 'active' state")
		wantStatus(t, post(t, ts, "runs/restore", map[string]any{"run_id": id}), 200)
		wantError(t, post(t, ts, "runs/delete", map[string]any{"run_id": "0000"}), 404, "RESOURCE_DOES_NOT_EXIST", "")
	})
}

func TestArtifactsOnlyAndNoServe(t *testing.T) {
	t.Run("artifacts only", func(t *testing.T) {
		srv, err := New(Options{ArtifactsOnly: true, MLflowVersion: "3.6.0"})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		r := post(t, ts, "runs/create", map[string]any{})
		wantStatus(t, r, 503)
		if want := "Endpoint: /api/2.0/mlflow/runs/create disabled due to the mlflow server running in `--artifacts-only` mode. " +
			"To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"; string(r.body) != want || !strings.HasPrefix(r.ctype, "text/html") {
			t.Fatalf("%q %q", r.ctype, r.body)
		}
		r = call(t, ts, "GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=x&metric_key=m", "", nil)
		wantStatus(t, r, 503)
		wantStatus(t, call(t, ts, "GET", "/health", "", nil), 200)
		wantStatus(t, call(t, ts, "GET", "/version", "", nil), 200)
		wantStatus(t, call(t, ts, "GET", "/api/3.0/mlflow/server-info", "", nil), 200)
		wantStatus(t, call(t, ts, "GET", "/api/2.0/mlflow/experiments/create", "", nil), 405)
		r = call(t, ts, "GET", "/api/2.0/mlflow-artifacts/artifacts", "", nil)
		wantStatus(t, r, 503) // artifacts are not served either in this configuration
	})
	t.Run("no serve artifacts", func(t *testing.T) {
		ts, _ := newTestServer(t, func(o *Options) { o.ServeArtifacts = false; o.Artifacts = nil; o.DefaultArtifactRoot = "/tmp/mlruns" })
		r := call(t, ts, "PUT", "/api/2.0/mlflow-artifacts/artifacts/1/x.txt", "", "data")
		wantStatus(t, r, 503)
		if want := "Endpoint: /api/2.0/mlflow-artifacts/artifacts/<path:artifact_path> disabled due to the mlflow server running with " +
			"`--no-serve-artifacts`. To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`"; string(r.body) != want {
			t.Fatalf("%q", r.body)
		}
		r = call(t, ts, "GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=1", "", nil)
		wantStatus(t, r, 503)
		if !strings.Contains(string(r.body), "/ajax-api/2.0/mlflow-artifacts/artifacts disabled") {
			t.Fatalf("%q", r.body)
		}
		wantStatus(t, call(t, ts, "GET", "/api/2.0/mlflow-artifacts/nope", "", nil), 404)
		exp := get(t, ts, "experiments/get?experiment_id=0").json(t)["experiment"].(map[string]any)
		if exp["artifact_location"] != "/tmp/mlruns/0" {
			t.Fatalf("default experiment location %v", exp["artifact_location"])
		}
		// Listing a run whose artifacts this server does not hold: no files.
		run := mkRun(t, ts, "0")
		r = get(t, ts, "artifacts/list?run_id="+run)
		wantStatus(t, r, 200)
		if _, ok := r.json(t)["files"]; ok {
			t.Fatalf("%s", r.body)
		}
	})
}

// panicStore wraps a store and fails in chosen ways.
type panicStore struct {
	tracking.Store
	mode string
}

func (p panicStore) GetExperiment(ctx context.Context, id string) (*tracking.Experiment, error) {
	switch p.mode {
	case "panic":
		panic("boom")
	case "error":
		return nil, fmt.Errorf("disk on fire: /secret/path")
	}
	return p.Store.GetExperiment(ctx, id)
}

func TestInternalErrors(t *testing.T) {
	for _, mode := range []string{"panic", "error"} {
		t.Run(mode, func(t *testing.T) {
			core, logs := observer.New(zap.ErrorLevel)
			ts, srv := newTestServer(t, func(o *Options) { o.Logger = zap.New(core) })
			srv.store = panicStore{srv.store, mode}
			r := get(t, ts, "experiments/get?experiment_id=0")
			wantError(t, r, 500, "INTERNAL_ERROR", "")
			if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "boom") {
				t.Fatalf("internal detail leaked: %s", r.body)
			}
			if logs.Len() == 0 {
				t.Fatal("internal error not logged")
			}
		})
	}
}

func TestRunArtifactRoutes(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "arts")
	run := mkRun(t, ts, exp)
	up := func(q string, body string) response {
		return call(t, ts, "POST", "/ajax-api/2.0/mlflow/upload-artifact?"+q, "application/octet-stream", body)
	}
	r := up("run_uuid="+run+"&path=dir/a.txt", "hello")
	if r.status != 200 || len(r.body) != 0 || r.ctype != "application/json" {
		t.Fatalf("upload: %d %q %q", r.status, r.ctype, r.body)
	}
	wantError(t, up("path=a.txt", "x"), 400, "INVALID_PARAMETER_VALUE", "run_uuid")
	wantError(t, up("run_uuid="+run, "x"), 400, "INVALID_PARAMETER_VALUE", "path")
	wantError(t, up("run_uuid="+run+"&path=a.txt", ""), 400, "INVALID_PARAMETER_VALUE", "data")
	wantError(t, up("run_uuid="+run+"&path=../a.txt", "x"), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, up("run_uuid="+run+"&path=a.txt", strings.Repeat("x", maxUIUploadSize+1)), 400, "INVALID_PARAMETER_VALUE", "too large")
	wantError(t, up("run_uuid=nope&path=a.txt", "x"), 404, "RESOURCE_DOES_NOT_EXIST", "")

	r = get(t, ts, "artifacts/list?run_id="+run)
	wantStatus(t, r, 200)
	if want := `{"root_uri":"mlflow-artifacts:/` + exp + `/` + run + `/artifacts","files":[{"path":"dir","is_dir":true}]}`; string(r.body) != want {
		t.Fatalf("list %s", r.body)
	}
	r = get(t, ts, "artifacts/list?run_id="+run+"&path=dir")
	if !strings.Contains(string(r.body), `{"path":"dir/a.txt","is_dir":false,"file_size":5}`) {
		t.Fatalf("list %s", r.body)
	}
	wantError(t, get(t, ts, "artifacts/list?run_id="+run+"&path=../x"), 400, "INVALID_PARAMETER_VALUE", "")
	wantError(t, get(t, ts, "artifacts/list?run_id="+run+"&path=%2e%2e/x"), 400, "INVALID_PARAMETER_VALUE", "")

	r = call(t, ts, "GET", "/get-artifact?run_id="+run+"&path=dir/a.txt", "", nil)
	if r.status != 200 || string(r.body) != "hello" || r.ctype != "text/plain" ||
		r.header.Get("Content-Disposition") != "attachment; filename=a.txt" {
		t.Fatalf("get-artifact: %d %q %q %v", r.status, r.ctype, r.body, r.header)
	}
	wantError(t, call(t, ts, "GET", "/get-artifact?run_id="+run+"&path=missing", "", nil), 404, "RESOURCE_DOES_NOT_EXIST", "")
	wantError(t, call(t, ts, "GET", "/get-artifact?path=a", "", nil), 404, "RESOURCE_DOES_NOT_EXIST", "Run with id=None not found")
	wantStatus(t, call(t, ts, "GET", "/get-artifact?run_id="+run+"&path=../../x", "", nil), 400)
	if r := call(t, ts, "GET", "/get-artifact?run_id="+run, "", nil); r.status != 400 {
		t.Fatalf("get-artifact without path: %d", r.status)
	}
}
