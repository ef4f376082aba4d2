// Package loadtest drives a running MLflow tracking server over HTTP with N
// concurrent clients and measures throughput and latency per operation. It
// backs the cmd/mlflow-bench binary and e2e/bench.sh.
//
// Every operation has an optional seed phase (creating the experiment, runs
// or metric history it needs) that runs before, and is timed separately
// from, the measured phase. Only loopback targets are accepted.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Operation names accepted by Config.Op.
const (
	OpRaw        = "raw"         // GET Config.RawURL
	OpLogBatch   = "log-batch"   // 10 metrics per request to pre-created runs
	OpCreateRun  = "create-run"  // runs/create in one experiment
	OpSearchRuns = "search-runs" // metric filter + order_by, max_results 100, over SeedRuns runs
	// OpSearchIssue is the filtered and ordered search of issue 14 over the
	// same runs: metrics.loss < 0.5 and params.lr = '3' ordered by
	// metrics.loss DESC, max_results 100.
	OpSearchIssue = "search-runs-issue"
	OpGetHistory  = "get-history" // the full history of a HistoryPoints-point metric
	OpGetRun      = "get-run"     // runs/get of GetRunSeed runs with 10 params, tags and metrics each
)

// Ops lists the operations in the order "all" runs them.
var Ops = []string{OpLogBatch, OpCreateRun, OpSearchRuns, OpSearchIssue, OpGetHistory, OpGetRun}

// Config describes one measured operation.
type Config struct {
	// URL is the tracking server base URL, e.g. http://127.0.0.1:5000.
	URL string
	// RawURL is fetched by OpRaw; empty means URL + "/health".
	RawURL string
	// Op is one of the Op* constants.
	Op string
	// Concurrency is the number of concurrent clients (>= 1).
	Concurrency int
	// Duration bounds the measured phase when Requests is 0.
	Duration time.Duration
	// Requests, when > 0, is the total number of measured requests.
	Requests int
	// SeedRuns is the number of runs search-runs searches over (default 10000).
	SeedRuns int
	// ReuseSeed keeps the search runs in an experiment named after
	// SeedRuns ("bench-search-<SeedRuns>") and searches an earlier
	// invocation's runs when that experiment was completely seeded,
	// instead of seeding a new experiment every time.
	ReuseSeed bool
	// HistoryPoints is the length of the metric get-history fetches (default 100000).
	HistoryPoints int
	// MetricsPerBatch is the number of metrics per log-batch request (default 10).
	MetricsPerBatch int
	// GetRunSeed is the number of runs get-run reads, round robin (default 100).
	GetRunSeed int
	// Authorization, when set, is sent as the Authorization header of every
	// MLflow request (not of OpRaw), e.g. "Bearer mlft_..." or "Basic ...".
	Authorization string
	// AllowRemote lifts the loopback-only restriction.
	AllowRemote bool
}

// Result is the outcome of one measured operation.
type Result struct {
	Op        string
	Requests  int64 // completed requests, errors included
	Errors    int64
	Elapsed   time.Duration
	P50, P99  time.Duration
	SeedTime  time.Duration
	SeedNote  string
	FirstErr  string
	ReqPerSec float64
}

func (c *Config) defaults() error {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.Requests <= 0 && c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.SeedRuns <= 0 {
		c.SeedRuns = 10000
	}
	if c.HistoryPoints <= 0 {
		c.HistoryPoints = 100000
	}
	if c.MetricsPerBatch <= 0 {
		c.MetricsPerBatch = 10
	}
	if c.GetRunSeed <= 0 {
		c.GetRunSeed = 100
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.RawURL == "" {
		c.RawURL = c.URL + "/health"
	}
	for _, u := range []string{c.URL, c.RawURL} {
		if err := checkTarget(u, c.AllowRemote); err != nil {
			return err
		}
	}
	return nil
}

// checkTarget accepts only http(s) URLs on a loopback host unless allowRemote.
func checkTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("URL %q: only loopback targets (127.0.0.1, ::1, localhost) are allowed", raw)
}

// NewHTTPClient returns a client whose transport keeps one idle connection
// per concurrent worker, so the measured phase does not churn connections.
func NewHTTPClient(concurrency int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

// Runner runs operations against one server, reusing one HTTP client.
type Runner struct {
	cfg  Config
	hc   *http.Client
	api  string
	uniq string
	// searchExp is the experiment of the seeded search runs (empty until
	// a search operation seeded or found it); both searches share it.
	searchExp string
	// Log, if set, receives progress lines (seed phases).
	Log io.Writer
}

// NewRunner validates cfg and prepares a Runner. cfg.Op is ignored; pass
// the operation to Run.
func NewRunner(cfg Config) (*Runner, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg:  cfg,
		hc:   NewHTTPClient(cfg.Concurrency),
		api:  cfg.URL + "/api/2.0/mlflow/",
		uniq: strconv.FormatInt(time.Now().UnixNano(), 36),
	}, nil
}

// Close releases idle connections.
func (r *Runner) Close() { r.hc.CloseIdleConnections() }

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

// request is one measured request; worker is the client index, i the
// request number of that worker. It returns an error for anything but the
// expected answer.
type request func(ctx context.Context, worker, i int) error

// Run seeds (if the operation needs it) and measures op.
func (r *Runner) Run(ctx context.Context, op string) (Result, error) {
	res := Result{Op: op}
	r.logf("running %s ...", op)
	seedStart := time.Now()
	req, note, err := r.prepare(ctx, op)
	if err != nil {
		return res, fmt.Errorf("%s seed: %w", op, err)
	}
	if note != "" {
		res.SeedTime = time.Since(seedStart)
		res.SeedNote = note
	}
	r.measure(ctx, req, &res)
	return res, nil
}

func (r *Runner) prepare(ctx context.Context, op string) (request, string, error) {
	switch op {
	case OpRaw:
		return r.rawOp(), "", nil
	case OpLogBatch:
		return r.logBatchOp(ctx)
	case OpCreateRun:
		return r.createRunOp(ctx)
	case OpSearchRuns:
		return r.searchRunsOp(ctx)
	case OpSearchIssue:
		return r.searchIssueOp(ctx)
	case OpGetHistory:
		return r.getHistoryOp(ctx)
	case OpGetRun:
		return r.getRunOp(ctx)
	}
	return nil, "", fmt.Errorf("unknown op %q (want raw, %s)", op, strings.Join(Ops, ", "))
}

// measure runs req from cfg.Concurrency workers until the duration elapses
// or cfg.Requests requests were made.
func (r *Runner) measure(ctx context.Context, req request, res *Result) {
	c := r.cfg.Concurrency
	if r.cfg.Requests > 0 {
		var cancel context.CancelFunc
		// A generous bound so a stuck server cannot hang the run forever.
		ctx, cancel = context.WithTimeout(ctx, 30*time.Minute)
		defer cancel()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Duration)
		defer cancel()
	}
	var (
		issued   atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, c)
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 1024)
			for i := 0; ; i++ {
				if ctx.Err() != nil {
					break
				}
				if r.cfg.Requests > 0 && issued.Add(1) > int64(r.cfg.Requests) {
					break
				}
				t0 := time.Now()
				err := req(ctx, w, i)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil && r.cfg.Requests == 0 {
						// Cut off by the end of the measured window: not counted.
						break
					}
					errCount.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
				}
				own = append(own, d)
			}
			lat[w] = own
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Requests = int64(len(all))
	res.Errors = errCount.Load()
	if p := firstErr.Load(); p != nil {
		res.FirstErr = *p
	}
	if len(all) > 0 {
		res.P50 = percentile(all, 0.50)
		res.P99 = percentile(all, 0.99)
	}
	if res.Elapsed > 0 {
		res.ReqPerSec = float64(res.Requests-res.Errors) / res.Elapsed.Seconds()
	}
}

// percentile of sorted durations, nearest-rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// ---- operations ----

func (r *Runner) rawOp() request {
	return func(ctx context.Context, _, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.RawURL, nil)
		if err != nil {
			return err
		}
		resp, err := r.hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", r.cfg.RawURL, resp.Status)
		}
		return nil
	}
}

func (r *Runner) logBatchOp(ctx context.Context) (request, string, error) {
	expID, err := r.createExperiment(ctx, "log-batch")
	if err != nil {
		return nil, "", err
	}
	runs := make([]string, r.cfg.Concurrency)
	err = r.parallel(ctx, len(runs), func(ctx context.Context, i int) error {
		id, err := r.createRun(ctx, expID, int64(i))
		runs[i] = id
		return err
	})
	if err != nil {
		return nil, "", err
	}
	n := r.cfg.MetricsPerBatch
	return func(ctx context.Context, w, i int) error {
		metrics := make([]metric, n)
		ts := time.Now().UnixMilli()
		for k := range metrics {
			metrics[k] = metric{Key: "m" + strconv.Itoa(k), Value: rand.Float64(), Timestamp: ts, Step: int64(i)}
		}
		return r.post(ctx, "runs/log-batch", map[string]any{"run_id": runs[w], "metrics": metrics}, nil)
	}, fmt.Sprintf("1 experiment, %d runs", len(runs)), nil
}

func (r *Runner) createRunOp(ctx context.Context) (request, string, error) {
	expID, err := r.createExperiment(ctx, "create-run")
	if err != nil {
		return nil, "", err
	}
	return func(ctx context.Context, w, i int) error {
		// The current time, as MLflow's client sends it: concurrent
		// clients create runs with nearly equal start times.
		_, err := r.createRunAt(ctx, expID, time.Now().UnixMilli())
		return err
	}, "1 experiment", nil
}

// seededSearchTag marks a search experiment whose seeding completed (the
// value is the number of runs).
const seededSearchTag = "mlflow-bench.seeded-runs"

// searchRuns returns the experiment of the search operations' runs,
// seeding it on first use: SeedRuns runs, each with metrics score and loss
// (uniform in [0, 1)) and param lr (one of "0" to "9"). The note tells
// what was seeded or reused ("" when an earlier operation of this Runner
// did it).
func (r *Runner) searchRuns(ctx context.Context) (string, string, error) {
	if r.searchExp != "" {
		return r.searchExp, "", nil
	}
	n := r.cfg.SeedRuns
	var expID string
	if r.cfg.ReuseSeed {
		name := fmt.Sprintf("bench-search-%d", n)
		id, tags, found, err := r.experimentByName(ctx, name)
		if err != nil {
			return "", "", err
		}
		if found {
			if tags[seededSearchTag] != strconv.Itoa(n) {
				return "", "", fmt.Errorf("experiment %q exists but its seeding did not complete; delete it or use another server", name)
			}
			r.searchExp = id
			return id, fmt.Sprintf("reused %d runs of experiment %s", n, name), nil
		}
		if expID, err = r.createNamedExperiment(ctx, name); err != nil {
			return "", "", err
		}
	} else {
		var err error
		if expID, err = r.createExperiment(ctx, "search-runs"); err != nil {
			return "", "", err
		}
	}
	start := time.Now()
	var done atomic.Int64
	err := r.parallel(ctx, n, func(ctx context.Context, i int) error {
		id, err := r.createRun(ctx, expID, int64(i))
		if err != nil {
			return err
		}
		err = r.post(ctx, "runs/log-batch", map[string]any{
			"run_id": id,
			"metrics": []metric{{Key: "score", Value: rand.Float64(), Timestamp: 1700000000000, Step: 0},
				{Key: "loss", Value: rand.Float64(), Timestamp: 1700000000000, Step: 0}},
			"params": []map[string]string{{"key": "lr", "value": strconv.Itoa(rand.IntN(10))}},
		}, nil)
		if d := done.Add(1); d%10000 == 0 {
			r.logf("seeded %d of %d search runs (%v)", d, n, time.Since(start).Round(time.Second))
		}
		return err
	})
	if err != nil {
		return "", "", err
	}
	if r.cfg.ReuseSeed {
		if err := r.post(ctx, "experiments/set-experiment-tag", map[string]any{
			"experiment_id": expID, "key": seededSearchTag, "value": strconv.Itoa(n)}, nil); err != nil {
			return "", "", err
		}
	}
	r.searchExp = expID
	return expID, fmt.Sprintf("%d runs with metrics score, loss and param lr", n), nil
}

func (r *Runner) searchRunsOp(ctx context.Context) (request, string, error) {
	return r.searchOp(ctx, "metrics.score > 0.5", "metrics.score DESC", func(n int) bool { return n == 100 })
}

func (r *Runner) searchIssueOp(ctx context.Context) (request, string, error) {
	// About 5% of the runs match: a full page from 2,000 runs up.
	return r.searchOp(ctx, "metrics.loss < 0.5 and params.lr = '3'", "metrics.loss DESC", func(n int) bool {
		return n > 0 && n <= 100 && (r.cfg.SeedRuns < 4000 || n == 100)
	})
}

// searchOp is a runs/search of the seeded runs (first page of 100) with
// filter and order; pageOK checks the number of runs returned.
func (r *Runner) searchOp(ctx context.Context, filter, order string, pageOK func(n int) bool) (request, string, error) {
	expID, note, err := r.searchRuns(ctx)
	if err != nil {
		return nil, "", err
	}
	body := map[string]any{
		"experiment_ids": []string{expID},
		"filter":         filter,
		"order_by":       []string{order},
		"max_results":    100,
	}
	return func(ctx context.Context, _, _ int) error {
		var out struct {
			Runs []json.RawMessage `json:"runs"`
		}
		if err := r.post(ctx, "runs/search", body, &out); err != nil {
			return err
		}
		if !pageOK(len(out.Runs)) {
			return fmt.Errorf("runs/search %q returned %d runs", filter, len(out.Runs))
		}
		return nil
	}, note, nil
}

func (r *Runner) getHistoryOp(ctx context.Context) (request, string, error) {
	expID, err := r.createExperiment(ctx, "get-history")
	if err != nil {
		return nil, "", err
	}
	runID, err := r.createRun(ctx, expID, 0)
	if err != nil {
		return nil, "", err
	}
	const perBatch = 1000 // MLflow's log-batch limit
	total := r.cfg.HistoryPoints
	batches := (total + perBatch - 1) / perBatch
	err = r.parallel(ctx, batches, func(ctx context.Context, b int) error {
		lo, hi := b*perBatch, min((b+1)*perBatch, total)
		metrics := make([]metric, 0, hi-lo)
		for s := lo; s < hi; s++ {
			metrics = append(metrics, metric{Key: "loss", Value: 1 / float64(s+1), Timestamp: 1700000000000 + int64(s), Step: int64(s)})
		}
		return r.post(ctx, "runs/log-batch", map[string]any{"run_id": runID, "metrics": metrics}, nil)
	})
	if err != nil {
		return nil, "", err
	}
	return func(ctx context.Context, _, _ int) error {
		n, err := r.history(ctx, runID, "loss")
		if err != nil {
			return err
		}
		if n != total {
			return fmt.Errorf("get-history returned %d points, want %d", n, total)
		}
		return nil
	}, fmt.Sprintf("1 run, %d-point metric in %d log-batch requests", total, batches), nil
}

func (r *Runner) getRunOp(ctx context.Context) (request, string, error) {
	expID, err := r.createExperiment(ctx, "get-run")
	if err != nil {
		return nil, "", err
	}
	runs := make([]string, r.cfg.GetRunSeed)
	err = r.parallel(ctx, len(runs), func(ctx context.Context, i int) error {
		id, err := r.createRun(ctx, expID, int64(i))
		if err != nil {
			return err
		}
		runs[i] = id
		var params, tags []map[string]string
		var metrics []metric
		for k := range 10 {
			params = append(params, map[string]string{"key": "p" + strconv.Itoa(k), "value": strconv.Itoa(i * k)})
			tags = append(tags, map[string]string{"key": "t" + strconv.Itoa(k), "value": "v" + strconv.Itoa(k)})
			metrics = append(metrics, metric{Key: "m" + strconv.Itoa(k), Value: float64(k), Timestamp: 1700000000000, Step: 0})
		}
		return r.post(ctx, "runs/log-batch", map[string]any{"run_id": id, "metrics": metrics, "params": params, "tags": tags}, nil)
	})
	if err != nil {
		return nil, "", err
	}
	return func(ctx context.Context, w, i int) error {
		id := runs[(w*7919+i)%len(runs)]
		var out struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := r.do(ctx, http.MethodGet, "runs/get?run_id="+url.QueryEscape(id), nil, &out); err != nil {
			return err
		}
		if out.Run.Info.RunID != id {
			return fmt.Errorf("runs/get %s answered run %q", id, out.Run.Info.RunID)
		}
		return nil
	}, fmt.Sprintf("%d runs with 10 params, tags and metrics each", len(runs)), nil
}

// ---- HTTP helpers ----

type metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

func (r *Runner) createExperiment(ctx context.Context, op string) (string, error) {
	return r.createNamedExperiment(ctx, fmt.Sprintf("bench-%s-%s", op, r.uniq))
}

func (r *Runner) createNamedExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ExperimentID string `json:"experiment_id"`
	}
	if err := r.post(ctx, "experiments/create", map[string]any{"name": name}, &out); err != nil {
		return "", err
	}
	if out.ExperimentID == "" {
		return "", errors.New("experiments/create returned no experiment_id")
	}
	return out.ExperimentID, nil
}

// experimentByName looks an experiment up by name: its id and tags, or
// found false when the server answers RESOURCE_DOES_NOT_EXIST.
func (r *Runner) experimentByName(ctx context.Context, name string) (string, map[string]string, bool, error) {
	var out struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
			Tags         []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"tags"`
		} `json:"experiment"`
	}
	err := r.do(ctx, http.MethodGet, "experiments/get-by-name?"+url.Values{"experiment_name": {name}}.Encode(), nil, &out)
	if err != nil {
		if strings.Contains(err.Error(), "RESOURCE_DOES_NOT_EXIST") {
			return "", nil, false, nil
		}
		return "", nil, false, err
	}
	tags := map[string]string{}
	for _, t := range out.Experiment.Tags {
		tags[t.Key] = t.Value
	}
	return out.Experiment.ExperimentID, tags, true, nil
}

// createRun creates a seed run in expID with start time 1700000000000+n.
func (r *Runner) createRun(ctx context.Context, expID string, n int64) (string, error) {
	return r.createRunAt(ctx, expID, 1700000000000+n)
}

// createRunAt creates a run in expID with the given start time (ms).
func (r *Runner) createRunAt(ctx context.Context, expID string, startTime int64) (string, error) {
	var out struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	err := r.post(ctx, "runs/create", map[string]any{
		"experiment_id": expID,
		"start_time":    startTime,
	}, &out)
	if err != nil {
		return "", err
	}
	if out.Run.Info.RunID == "" {
		return "", errors.New("runs/create returned no run id")
	}
	return out.Run.Info.RunID, nil
}

// history fetches a full metric history (following page tokens) and returns
// the number of points.
func (r *Runner) history(ctx context.Context, runID, key string) (int, error) {
	n := 0
	token := ""
	for range 10000 {
		q := url.Values{"run_id": {runID}, "metric_key": {key}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Metrics       []json.RawMessage `json:"metrics"`
			NextPageToken string            `json:"next_page_token"`
		}
		if err := r.do(ctx, http.MethodGet, "metrics/get-history?"+q.Encode(), nil, &page); err != nil {
			return n, err
		}
		n += len(page.Metrics)
		if page.NextPageToken == "" {
			return n, nil
		}
		token = page.NextPageToken
	}
	return n, errors.New("get-history: too many pages")
}

func (r *Runner) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return r.do(ctx, http.MethodPost, path, b, out)
}

func (r *Runner) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.api+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.cfg.Authorization != "" {
		req.Header.Set("Authorization", r.cfg.Authorization)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, strings.SplitN(path, "?", 2)[0], resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	return nil
}

// parallel runs fn(0..n-1) on cfg.Concurrency workers and returns the first
// error (stopping the others).
func (r *Runner) parallel(ctx context.Context, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(r.cfg.Concurrency, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
