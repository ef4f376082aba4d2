package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:5000", "http://localhost:1/x", "http://[::1]:80", "http://127.0.0.2:9"} {
		if err := checkTarget(u, false); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://example.com", "http://10.0.0.1:5000", "ftp://127.0.0.1", "http://0.0.0.0:5000"} {
		if err := checkTarget(u, false); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if err := checkTarget("http://example.com", true); err != nil {
		t.Errorf("allow-remote: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := percentile(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
}

// fakeServer answers just enough of the MLflow API for the operations.
func fakeServer(t *testing.T, historyPoints int) (*httptest.Server, *atomic.Int64) {
	var batches atomic.Int64
	var runs atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK")) })
	// Experiments by name, with their tags (for -reuse-seed).
	var mu sync.Mutex
	exps := map[string]map[string]string{} // name -> tags
	names := map[string]string{}           // id -> name
	mux.HandleFunc("POST /api/2.0/mlflow/experiments/create", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Name string `json:"name"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		defer mu.Unlock()
		id := strconv.Itoa(len(exps) + 1)
		exps[b.Name], names[id] = map[string]string{}, b.Name
		fmt.Fprintf(w, `{"experiment_id":%q}`, id)
	})
	mux.HandleFunc("GET /api/2.0/mlflow/experiments/get-by-name", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name := r.URL.Query().Get("experiment_name")
		tags, ok := exps[name]
		if !ok {
			w.WriteHeader(404)
			w.Write([]byte(`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no"}`))
			return
		}
		var id string
		for i, n := range names {
			if n == name {
				id = i
			}
		}
		var ts []map[string]string
		for k, v := range tags {
			ts = append(ts, map[string]string{"key": k, "value": v})
		}
		json.NewEncoder(w).Encode(map[string]any{"experiment": map[string]any{"experiment_id": id, "tags": ts}})
	})
	mux.HandleFunc("POST /api/2.0/mlflow/experiments/set-experiment-tag", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			ExperimentID string `json:"experiment_id"`
			Key          string `json:"key"`
			Value        string `json:"value"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		defer mu.Unlock()
		exps[names[b.ExperimentID]][b.Key] = b.Value
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("POST /api/2.0/mlflow/runs/create", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"run":{"info":{"run_id":"r%d"}}}`, runs.Add(1))
	})
	mux.HandleFunc("POST /api/2.0/mlflow/runs/log-batch", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			RunID   string   `json:"run_id"`
			Metrics []metric `json:"metrics"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.RunID == "" {
			http.Error(w, "bad batch", 400)
			return
		}
		batches.Add(1)
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("GET /api/2.0/mlflow/runs/get", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "no auth", 401)
			return
		}
		fmt.Fprintf(w, `{"run":{"info":{"run_id":%q}}}`, r.URL.Query().Get("run_id"))
	})
	mux.HandleFunc("POST /api/2.0/mlflow/runs/search", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"runs":[{}` + strings.Repeat(`,{}`, 99) + `]}`))
	})
	mux.HandleFunc("GET /api/2.0/mlflow/metrics/get-history", func(w http.ResponseWriter, r *http.Request) {
		// Two pages to exercise token following.
		half := historyPoints / 2
		var buf bytes.Buffer
		n, tok := half, `,"next_page_token":"x"`
		if r.URL.Query().Get("page_token") == "x" {
			n, tok = historyPoints-half, ""
		}
		buf.WriteString(`{"metrics":[`)
		for i := range n {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(`{"key":"loss","value":1,"timestamp":1,"step":1}`)
		}
		buf.WriteString(`]` + tok + `}`)
		w.Write(buf.Bytes())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &batches
}

func TestRunOps(t *testing.T) {
	srv, batches := fakeServer(t, 3000)
	r, err := NewRunner(Config{URL: srv.URL, Concurrency: 4, Requests: 50, SeedRuns: 20, HistoryPoints: 3000, GetRunSeed: 7, Authorization: "Bearer t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var results []Result
	for _, op := range append([]string{OpRaw}, Ops...) {
		res, err := r.Run(context.Background(), op)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if res.Requests != 50 || res.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors (%s)", op, res.Requests, res.Errors, res.FirstErr)
		}
		if res.P50 <= 0 || res.P99 < res.P50 || res.ReqPerSec <= 0 {
			t.Errorf("%s: bad stats %+v", op, res)
		}
		results = append(results, res)
	}
	// 50 measured log-batch + 20 seeded for search-runs + 3 seeded for
	// get-history + 7 seeded for get-run.
	if got := batches.Load(); got != 80 {
		t.Errorf("log-batch requests = %d, want 80", got)
	}
	var out bytes.Buffer
	PrintTable(&out, results)
	for _, want := range []string{"op", "req/s", "p99", "log-batch", "get-history", "get-run", "search-runs-issue",
		"seed search-runs: 20 runs", "seed get-run: 7 runs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if _, ok := Ratio(results, OpLogBatch, OpRaw); !ok {
		t.Error("no log-batch/raw ratio")
	}
}

func TestDurationMode(t *testing.T) {
	srv, _ := fakeServer(t, 10)
	r, err := NewRunner(Config{URL: srv.URL, Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	res, err := r.Run(context.Background(), OpRaw)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("%+v", res)
	}
}

func TestServerErrorsCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", 500)
	}))
	defer srv.Close()
	r, err := NewRunner(Config{URL: srv.URL, Concurrency: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Run(context.Background(), OpRaw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 10 || res.ReqPerSec != 0 || !strings.Contains(res.FirstErr, "500") {
		t.Errorf("%+v", res)
	}
	if _, err := r.Run(context.Background(), OpLogBatch); err == nil {
		t.Error("log-batch seed against a failing server succeeded")
	}
}

// TestReuseSeed: with ReuseSeed the search runs are seeded once into an
// experiment named after their count, marked complete, and found again by
// the next Runner instead of being seeded anew; an experiment whose
// seeding did not complete is refused.
func TestReuseSeed(t *testing.T) {
	srv, batches := fakeServer(t, 10)
	run := func() (Result, error) {
		r, err := NewRunner(Config{URL: srv.URL, Concurrency: 2, Requests: 5, SeedRuns: 20, ReuseSeed: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.Run(context.Background(), OpSearchIssue)
	}
	res, err := run()
	if err != nil || res.Errors != 0 || !strings.Contains(res.SeedNote, "20 runs with") {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if got := batches.Load(); got != 20 {
		t.Fatalf("seeded %d runs, want 20", got)
	}
	res, err = run()
	if err != nil || res.Errors != 0 || !strings.Contains(res.SeedNote, "reused 20 runs") {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if got := batches.Load(); got != 20 {
		t.Fatalf("second run seeded again (%d log-batches)", got)
	}
	// An experiment left by an interrupted seed.
	r, err := NewRunner(Config{URL: srv.URL, Concurrency: 2, Requests: 5, SeedRuns: 30, ReuseSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.createNamedExperiment(context.Background(), "bench-search-30"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), OpSearchRuns); err == nil || !strings.Contains(err.Error(), "did not complete") {
		t.Fatalf("half-seeded experiment: %v", err)
	}
}
