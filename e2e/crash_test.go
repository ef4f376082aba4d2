package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
)

// TestCrashDurability checks the Store contract "a nil error from a write
// means the write is durable": workers log over HTTP, the server is killed
// with SIGKILL at a random moment, restarted on the same bolt file, and every
// write that was answered 200 before the kill must be there. Writes in flight
// at kill time may or may not be present, but a log-batch must be all or
// nothing (the Store writes a batch in one transaction).
func TestCrashDurability(t *testing.T) {
	crashDurability(t, "", 6)
}

// TestCrashDurabilityPostgres is TestCrashDurability with the tracking
// data in PostgreSQL (a fresh database of the test server): an
// acknowledged write is a committed transaction, whatever happens to the
// Caddy process afterwards.
func TestCrashDurabilityPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts and kills the server several times; skipped with -short")
	}
	crashDurability(t, pgtest.NewDatabase(t), 4)
}

// crashDurability runs the kill -9 cycles against a server on backend (the
// bolt file in the test directory when empty).
func crashDurability(t *testing.T, backend string, cycles int) {
	if testing.Short() {
		t.Skip("crash test starts and kills the server several times; skipped with -short")
	}
	const (
		workers      = 6
		batchMetrics = 5
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	srv := newServer(t, t.TempDir(), 0)
	srv.backend = backend
	// Each cycle makes its clients from srv.URL after the restart, so a
	// restart may land on another port if its own stays taken.
	srv.canMove = true
	srv.start()
	c := newAPIClient(srv.URL)
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	if code, body := c.post("experiments/create", map[string]any{"name": "crash"}, &exp); code != 200 {
		t.Fatalf("create experiment: %d %s", code, body)
	}

	l := &ledger{runs: map[string]*runRecord{}}
	for cycle := range cycles {
		if !srv.running() {
			srv.start()
		}
		c := newAPIClient(srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashWorker(ctx, c, l, exp.ExperimentID, cycle, w, batchMetrics)
			}()
		}
		killAfter := 150*time.Millisecond + time.Duration(rng.Int64N(int64(900*time.Millisecond)))
		time.Sleep(killAfter)
		srv.kill()
		cancel()
		wg.Wait()
		c.close()

		acked, inflight := l.counts()
		t.Logf("cycle %d: killed after %v; acknowledged so far: %d runs, %d batches, %d tags; %d batches in flight at kill",
			cycle, killAfter.Round(time.Millisecond), acked.runs, acked.batches, acked.tags, inflight)

		srv.start()
		verifyLedger(t, newAPIClient(srv.URL), l, batchMetrics)
		if t.Failed() {
			t.Fatalf("acknowledged writes lost after kill -9 in cycle %d", cycle)
		}
	}
	if acked, _ := l.counts(); acked.batches == 0 {
		t.Fatal("no log-batch was acknowledged in any cycle; the test proved nothing")
	}
	srv.stop()
}

// ledger records what was acknowledged (and what was in flight) per run.
type ledger struct {
	mu   sync.Mutex
	runs map[string]*runRecord
}

type runRecord struct {
	id      string
	name    string
	batches []int // acknowledged log-batch sequence numbers
	pending []int // log-batch sequence numbers sent but not acknowledged
	setTags []int // acknowledged set-tag sequence numbers
	logged  []int // acknowledged log-metric sequence numbers (metric "lm")
}

type ackCounts struct{ runs, batches, tags int }

func (l *ledger) counts() (a ackCounts, inflight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.runs {
		a.runs++
		a.batches += len(r.batches)
		a.tags += len(r.setTags)
		inflight += len(r.pending)
	}
	return a, inflight
}

func (l *ledger) addRun(id, name string) *runRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &runRecord{id: id, name: name}
	l.runs[id] = r
	return r
}

func (l *ledger) update(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn()
}

// crashWorker creates runs and logs batches and tags to them until ctx is
// done or a request fails (the server was killed).
func crashWorker(ctx context.Context, c *apiClient, l *ledger, expID string, cycle, w, batchMetrics int) {
	seq := 0
	for ctx.Err() == nil {
		name := fmt.Sprintf("crash-%d-%d-%d", cycle, w, seq)
		var created struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		code, _ := c.post("runs/create", map[string]any{
			"experiment_id": expID,
			"run_name":      name,
			"start_time":    1700000000000 + int64(seq),
			"tags":          []map[string]string{{"key": "worker", "value": strconv.Itoa(w)}},
		}, &created)
		if code != 200 || created.Run.Info.RunID == "" {
			return
		}
		run := l.addRun(created.Run.Info.RunID, name)
		seq++
		for range 8 {
			if ctx.Err() != nil {
				return
			}
			s := seq
			seq++
			if s%3 == 2 {
				code, _ := c.post("runs/set-tag", map[string]any{
					"run_id": run.id, "key": fmt.Sprintf("s%d", s), "value": fmt.Sprintf("sv%d", s),
				}, nil)
				if code != 200 {
					return
				}
				l.update(func() { run.setTags = append(run.setTags, s) })
				continue
			}
			l.update(func() { run.pending = append(run.pending, s) })
			code, _ := c.post("runs/log-batch", crashBatch(run.id, s, batchMetrics), nil)
			if code != 200 {
				return
			}
			l.update(func() {
				run.batches = append(run.batches, s)
				run.pending = run.pending[:len(run.pending)-1]
			})
		}
	}
}

// crashBatch is log-batch number s of a run: batchMetrics points of metric
// "m" at steps s*batchMetrics+i, param p<s>, tag t<s>.
func crashBatch(runID string, s, batchMetrics int) map[string]any {
	metrics := make([]map[string]any, batchMetrics)
	for i := range metrics {
		step := s*batchMetrics + i
		metrics[i] = map[string]any{"key": "m", "value": float64(step) + 0.5, "timestamp": 1700000000000 + step, "step": step}
	}
	return map[string]any{
		"run_id":  runID,
		"metrics": metrics,
		"params":  []map[string]string{{"key": fmt.Sprintf("p%d", s), "value": fmt.Sprintf("pv%d", s)}},
		"tags":    []map[string]string{{"key": fmt.Sprintf("t%d", s), "value": fmt.Sprintf("tv%d", s)}},
	}
}

type wireRun struct {
	Info struct {
		RunID   string `json:"run_id"`
		RunName string `json:"run_name"`
	} `json:"info"`
	Data struct {
		Params []kv `json:"params"`
		Tags   []kv `json:"tags"`
	} `json:"data"`
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type wirePoint struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Timestamp int64           `json:"timestamp"`
	Step      int64           `json:"step"`
}

func verifyLedger(t *testing.T, c *apiClient, l *ledger, batchMetrics int) {
	t.Helper()
	defer c.close()
	l.mu.Lock()
	runs := make([]runRecord, 0, len(l.runs))
	for _, r := range l.runs {
		cp := *r
		cp.batches = append([]int(nil), r.batches...)
		cp.pending = append([]int(nil), r.pending...)
		cp.setTags = append([]int(nil), r.setTags...)
		cp.logged = append([]int(nil), r.logged...)
		runs = append(runs, cp)
	}
	l.mu.Unlock()

	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
		next = make(chan runRecord)
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				verifyRun(c, r, batchMetrics, fail)
			}
		}()
	}
	for _, r := range runs {
		next <- r
	}
	close(next)
	wg.Wait()
	for i, e := range errs {
		if i == 20 {
			t.Errorf("… and %d more", len(errs)-20)
			break
		}
		t.Error(e)
	}
}

func verifyRun(c *apiClient, r runRecord, batchMetrics int, fail func(string, ...any)) {
	var got struct {
		Run wireRun `json:"run"`
	}
	q := url.Values{"run_id": {r.id}}
	if code, body := c.get("runs/get", q, &got); code != 200 {
		fail("acknowledged run %s (%s) missing after restart: runs/get %d %s", r.id, r.name, code, tail(body, 300))
		return
	}
	params := map[string]string{}
	for _, p := range got.Run.Data.Params {
		params[p.Key] = p.Value
	}
	tags := map[string]string{}
	for _, p := range got.Run.Data.Tags {
		tags[p.Key] = p.Value
	}
	if got.Run.Info.RunName != r.name || tags["mlflow.runName"] != r.name {
		fail("run %s: run_name %q / mlflow.runName tag %q, want %q", r.id, got.Run.Info.RunName, tags["mlflow.runName"], r.name)
	}
	if tags["worker"] == "" {
		fail("run %s: creation tag 'worker' missing", r.id)
	}
	for _, s := range r.setTags {
		if v, want := tags[fmt.Sprintf("s%d", s)], fmt.Sprintf("sv%d", s); v != want {
			fail("run %s: acknowledged set-tag s%d = %q, want %q", r.id, s, v, want)
		}
	}

	points, code, body := c.history(r.id, "m")
	if code != 200 {
		fail("run %s: get-history %d %s", r.id, code, tail(body, 300))
		return
	}
	steps := map[int64]wirePoint{}
	for _, p := range points {
		steps[p.Step] = p
	}
	present := func(s int) (nParts int, detail string) {
		if params[fmt.Sprintf("p%d", s)] == fmt.Sprintf("pv%d", s) {
			nParts++
		} else {
			detail += fmt.Sprintf(" param p%d=%q;", s, params[fmt.Sprintf("p%d", s)])
		}
		if tags[fmt.Sprintf("t%d", s)] == fmt.Sprintf("tv%d", s) {
			nParts++
		} else {
			detail += fmt.Sprintf(" tag t%d=%q;", s, tags[fmt.Sprintf("t%d", s)])
		}
		for i := range batchMetrics {
			step := int64(s*batchMetrics + i)
			p, ok := steps[step]
			want := strconv.FormatFloat(float64(step)+0.5, 'g', -1, 64)
			if ok && p.Timestamp == 1700000000000+step && numEqual(p.Value, want) {
				nParts++
			} else {
				detail += fmt.Sprintf(" metric step %d=%s;", step, p.Value)
			}
		}
		return nParts, detail
	}
	if len(r.logged) > 0 {
		lm, code, body := c.history(r.id, "lm")
		if code != 200 {
			fail("run %s: get-history lm %d %s", r.id, code, tail(body, 300))
			return
		}
		got := map[int64]bool{}
		for _, p := range lm {
			got[p.Step] = p.Timestamp == 1700000000000+p.Step && numEqual(p.Value, strconv.FormatFloat(float64(p.Step)+0.25, 'g', -1, 64))
		}
		for _, s := range r.logged {
			if !got[int64(s)] {
				fail("run %s: acknowledged log-metric lm step %d missing or wrong", r.id, s)
			}
		}
	}
	all := 2 + batchMetrics
	for _, s := range r.batches {
		if n, detail := present(s); n != all {
			fail("run %s: acknowledged log-batch #%d only %d/%d parts present after restart:%s", r.id, s, n, all, detail)
		}
	}
	for _, s := range r.pending {
		if n, detail := present(s); n != 0 && n != all {
			fail("run %s: in-flight log-batch #%d partially applied (%d/%d parts):%s", r.id, s, n, all, detail)
		}
	}
}

// numEqual compares a JSON number (or numeric string) with a formatted float.
func numEqual(raw json.RawMessage, want string) bool {
	s := string(bytes.Trim(raw, `"`))
	a, err1 := strconv.ParseFloat(s, 64)
	b, err2 := strconv.ParseFloat(want, 64)
	return err1 == nil && err2 == nil && a == b
}

// apiClient is a minimal MLflow REST client for the tests.
type apiClient struct {
	base string
	hc   *http.Client
	// auth, when set, is sent as the Authorization header.
	auth string
}

func newAPIClient(base string) *apiClient {
	return &apiClient{
		base: base + "/api/2.0/mlflow/",
		hc: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 16},
		},
	}
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// post sends a JSON body and decodes a 200 answer into out (if non-nil). It
// returns the status (0 on a transport error) and the body or error text.
func (c *apiClient) post(path string, in any, out any) (int, string) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, err.Error()
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

func (c *apiClient) get(path string, q url.Values, out any) (int, string) {
	req, err := http.NewRequest(http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return 0, err.Error()
	}
	return c.do(req, out)
}

func (c *apiClient) do(req *http.Request, out any) (int, string) {
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	return decode(resp, err, out)
}

// history fetches a whole metric history, following page tokens.
func (c *apiClient) history(runID, key string) ([]wirePoint, int, string) {
	var all []wirePoint
	token := ""
	for range 1000 {
		q := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {"25000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page struct {
			Metrics       []wirePoint `json:"metrics"`
			NextPageToken string      `json:"next_page_token"`
		}
		code, body := c.get("metrics/get-history", q, &page)
		if code != 200 {
			return nil, code, body
		}
		all = append(all, page.Metrics...)
		if page.NextPageToken == "" {
			return all, 200, ""
		}
		token = page.NextPageToken
	}
	return nil, 0, "get-history: too many pages"
}

func decode(resp *http.Response, err error, out any) (int, string) {
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	if resp.StatusCode == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return 0, fmt.Sprintf("decode %s: %v", tail(string(body), 200), err)
		}
	}
	return resp.StatusCode, string(body)
}
