package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// replicaExample is the replica Caddyfile startCluster runs.
var replicaExample = "Caddyfile.replica.example"

// Credentials of the bootstrap admin of the replica cluster.
const (
	clusterAdmin    = "admin"
	clusterPassword = "replica-admin-password"
)

// cluster is the deployment README.md's "Scaling out" describes, run from
// the two example files it documents: replicas running
// Caddyfile.replica.example on one PostgreSQL database and one artifact
// directory, and a balancer running Caddyfile.balancer.example in front.
type cluster struct {
	t         *testing.T
	dir       string
	backend   string
	artifacts string
	replicas  []*server
	front     *server
	basic     string // Authorization header of the bootstrap admin
	token     string // Authorization header with an API token of the admin
}

// exampleConfig reads one of the repository's example Caddyfiles.
func exampleConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startCluster starts n replicas on backend (launched together, so their
// schema migrations race as they would in a real roll-out) and the
// balancer, and mints an API token for the admin.
func startCluster(t *testing.T, backend string, n int) *cluster {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(clusterPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl := &cluster{
		t:         t,
		dir:       dir,
		backend:   backend,
		artifacts: filepath.Join(dir, "shared-artifacts"),
		basic:     "Basic " + base64.StdEncoding.EncodeToString([]byte(clusterAdmin+":"+clusterPassword)),
	}
	replicaConf := exampleConfig(t, replicaExample)
	for i := range n {
		rd := filepath.Join(dir, fmt.Sprintf("replica-%d", i))
		if err := os.MkdirAll(rd, 0o755); err != nil {
			t.Fatal(err)
		}
		// The balancer lists the replicas by address, so a restarted
		// replica keeps its port (canMove stays false).
		s := newServer(t, rd, 0)
		s.config = replicaConf
		s.prepare = func(s *server) {
			s.env = []string{
				fmt.Sprintf("MLFLOW_LISTEN=127.0.0.1:%d", s.port),
				"MLFLOW_BACKEND_STORE_URI=" + backend,
				"MLFLOW_ARTIFACTS=" + cl.artifacts,
				"MLFLOW_BALANCER=127.0.0.1/32",
				"MLFLOW_ADMIN_HASH=" + string(hash),
			}
		}
		cl.replicas = append(cl.replicas, s)
	}
	for _, s := range cl.replicas {
		s.launch()
	}
	// A replica whose port was taken meanwhile starts again on another;
	// the balancer's list is made from where they ended up.
	var upstreams []string
	for _, s := range cl.replicas {
		s.waitHealthy(60 * time.Second)
		upstreams = append(upstreams, fmt.Sprintf("127.0.0.1:%d", s.port))
	}
	fd := filepath.Join(dir, "balancer")
	if err := os.MkdirAll(fd, 0o755); err != nil {
		t.Fatal(err)
	}
	cl.front = newServer(t, fd, 0)
	cl.front.config = exampleConfig(t, "Caddyfile.balancer.example")
	cl.front.prepare = func(s *server) {
		s.env = []string{
			fmt.Sprintf("MLFLOW_SITE=http://127.0.0.1:%d", s.port),
			"MLFLOW_REPLICAS=" + strings.Join(upstreams, " "),
		}
	}
	cl.front.start()

	c := cl.client(cl.front, cl.basic)
	defer c.close()
	var tok struct {
		Token string `json:"token"`
	}
	if code, body := c.post("users/tokens/create", map[string]any{"name": "load"}, &tok); code != 200 || tok.Token == "" {
		t.Fatalf("tokens/create through the balancer: %d %s", code, body)
	}
	cl.token = "Bearer " + tok.Token
	return cl
}

func (cl *cluster) client(s *server, auth string) *apiClient {
	c := newAPIClient(s.URL)
	c.auth = auth
	return c
}

// loadStats counts the outcome of the load phase.
type loadStats struct {
	acked    atomic.Int64 // writes answered 200
	reads    atomic.Int64 // runs/get answered 200 with the right run
	failed   atomic.Int64 // requests not answered 200
	inWindow atomic.Int64 // of those, failed between the kill and the restart plus the grace period
	wrong    atomic.Int64 // 200 answers with wrong content
	mu       sync.Mutex
	statuses map[int]int    // failed requests by status (0: transport error)
	codes    map[string]int // failed requests by "status error_code" ("503 -" without a JSON body)
	samples  []string
}

func (ls *loadStats) fail(code int, what, body string, inWindow bool) {
	ls.failed.Add(1)
	if inWindow {
		ls.inWindow.Add(1)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.statuses == nil {
		ls.statuses, ls.codes = map[int]int{}, map[string]int{}
	}
	ls.statuses[code]++
	var e struct {
		ErrorCode string `json:"error_code"`
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.ErrorCode == "" {
		e.ErrorCode = "-"
	}
	ls.codes[fmt.Sprintf("%d %s", code, e.ErrorCode)]++
	if len(ls.samples) < 10 {
		ls.samples = append(ls.samples, fmt.Sprintf("%s: %d %s", what, code, tail(body, 200)))
	}
}

func (ls *loadStats) summary() string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	codes := make([]int, 0, len(ls.statuses))
	for c := range ls.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", ls.statuses[c], c))
	}
	var ecs []string
	for k, n := range ls.codes {
		ecs = append(ecs, fmt.Sprintf("%d×%s", n, k))
	}
	sort.Strings(ecs)
	return strings.Join(parts, " ") + " [" + strings.Join(ecs, ", ") + "]"
}

// window reports whether now is inside [from, to) (to zero: still open).
type window struct {
	mu       sync.Mutex
	from, to time.Time
}

func (w *window) set(from, to time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.from, w.to = from, to
}

func (w *window) contains(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.from.IsZero() && !t.Before(w.from) && (w.to.IsZero() || t.Before(w.to))
}

// replicaWorker creates runs through c and logs to them (log-batch,
// log-metric) and reads them back (runs/get), recording every answer: a
// failure is counted and the worker goes on (it is talking to the
// balancer, which stays up).
func replicaWorker(ctx context.Context, c *apiClient, l *ledger, ls *loadStats, win *window, expID string, w, batchMetrics int) {
	seq := 0
	for ctx.Err() == nil {
		name := fmt.Sprintf("replica-%d-%d", w, seq)
		var created struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		code, body := c.post("runs/create", map[string]any{
			"experiment_id": expID,
			"run_name":      name,
			"start_time":    1700000000000 + int64(seq),
			"tags":          []map[string]string{{"key": "worker", "value": strconv.Itoa(w)}},
		}, &created)
		seq++
		if code != 200 || created.Run.Info.RunID == "" {
			ls.fail(code, "runs/create", body, win.contains(time.Now()))
			time.Sleep(20 * time.Millisecond)
			continue
		}
		ls.acked.Add(1)
		run := l.addRun(created.Run.Info.RunID, name)
		for range 6 {
			if ctx.Err() != nil {
				return
			}
			s := seq
			seq++
			switch s % 3 {
			case 0:
				code, body := c.post("runs/log-metric", map[string]any{
					"run_id": run.id, "key": "lm", "value": float64(s) + 0.25, "timestamp": 1700000000000 + s, "step": s,
				}, nil)
				if code != 200 {
					ls.fail(code, "runs/log-metric", body, win.contains(time.Now()))
					continue
				}
				ls.acked.Add(1)
				l.update(func() { run.logged = append(run.logged, s) })
			case 1:
				l.update(func() { run.pending = append(run.pending, s) })
				code, body := c.post("runs/log-batch", crashBatch(run.id, s, batchMetrics), nil)
				if code != 200 {
					// Left pending: it may or may not have been applied,
					// but never in part.
					ls.fail(code, "runs/log-batch", body, win.contains(time.Now()))
					continue
				}
				ls.acked.Add(1)
				l.update(func() {
					run.batches = append(run.batches, s)
					for i, p := range run.pending {
						if p == s {
							run.pending = append(run.pending[:i], run.pending[i+1:]...)
							break
						}
					}
				})
			case 2:
				var got struct {
					Run wireRun `json:"run"`
				}
				code, body := c.get("runs/get", url.Values{"run_id": {run.id}}, &got)
				if code != 200 {
					ls.fail(code, "runs/get", body, win.contains(time.Now()))
					continue
				}
				if got.Run.Info.RunID != run.id || got.Run.Info.RunName != name {
					ls.wrong.Add(1)
					ls.fail(code, "runs/get (wrong run)", body, win.contains(time.Now()))
					continue
				}
				ls.reads.Add(1)
			}
		}
	}
}

// TestReplicas runs the scaled-out deployment from the example files: two
// replicas on one PostgreSQL database and one artifact directory behind a
// Caddy balancer. Clients log through the balancer while one replica is
// killed with SIGKILL and restarted: the balancer keeps answering, and
// every write that got a 200 is there afterwards, through the balancer and
// in the database. A multipart upload whose parts go to different replicas
// completes, and an API token revoked through one replica is refused by
// the other at once.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three Caddy processes; skipped with -short")
	}
	backend := pgtest.NewDatabase(t)
	cl := startCluster(t, backend, 2)

	t.Run("KillReplicaUnderLoad", func(t *testing.T) { replicaKillUnderLoad(t, cl) })
	t.Run("MultipartAcrossReplicas", func(t *testing.T) { multipartAcrossReplicas(t, cl) })
	t.Run("TokenRevokedOnOtherReplica", func(t *testing.T) { tokenRevokedAcrossReplicas(t, cl) })
}

func replicaKillUnderLoad(t *testing.T, cl *cluster) {
	const (
		workers      = 8
		batchMetrics = 5
	)
	front := cl.client(cl.front, cl.token)
	defer front.close()
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	if code, body := front.post("experiments/create", map[string]any{"name": "replicas"}, &exp); code != 200 {
		t.Fatalf("create experiment through the balancer: %d %s", code, body)
	}

	l := &ledger{runs: map[string]*runRecord{}}
	ls := &loadStats{}
	win := &window{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cl.client(cl.front, cl.token)
			defer c.close()
			replicaWorker(ctx, c, l, ls, win, exp.ExperimentID, w, batchMetrics)
		}()
	}
	victim := cl.replicas[0]
	time.Sleep(1500 * time.Millisecond)
	before := ls.acked.Load()
	killed := time.Now()
	win.set(killed, time.Time{})
	victim.kill()
	time.Sleep(2 * time.Second)
	// On a loaded machine the first write the balancer fails over can
	// take longer: the replica stays down until one is acknowledged (at
	// most 10s more), so the check below is about failing over, not speed.
	for deadline := time.Now().Add(10 * time.Second); ls.acked.Load() == before && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	duringDown := ls.acked.Load() - before
	victim.start()
	restarted := time.Now()
	// Failures up to 3s after the restart are counted in the window (the
	// balancer's health check puts the replica back within 2s).
	win.set(killed, restarted.Add(3*time.Second))
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()

	acked, inflight := l.counts()
	t.Logf("FIGURES replica kill -9: %d writes acknowledged (%d runs, %d log-batch, %d log-metric; %d acknowledged while the replica was down), %d reads ok, %d failed requests (%d between the kill and 3s after the restart; by status: %s), %d wrong answers, %d log-batch unacknowledged; replica down %v",
		ls.acked.Load(), acked.runs, acked.batches, loggedCount(l), duringDown, ls.reads.Load(), ls.failed.Load(), ls.inWindow.Load(), ls.summary(), ls.wrong.Load(), inflight, restarted.Sub(killed).Round(time.Millisecond))
	for _, s := range ls.samples {
		t.Logf("failed: %s", s)
	}
	if ls.wrong.Load() > 0 {
		t.Errorf("%d answers with a 200 carried the wrong run", ls.wrong.Load())
	}
	if duringDown == 0 {
		t.Errorf("no write was acknowledged while one replica was down: the balancer did not fail over")
	}
	if acked.batches == 0 || loggedCount(l) == 0 {
		t.Fatal("no log-batch or log-metric acknowledged: the test proved nothing")
	}
	if n := ls.failed.Load() - ls.inWindow.Load(); n > 0 {
		t.Errorf("%d requests failed outside the kill window", n)
	}

	// Every acknowledged write, read back through the balancer (so from
	// either replica) and straight from the database.
	verifyLedger(t, cl.client(cl.front, cl.token), l, batchMetrics)
	lost := verifyLedgerInDB(t, cl.backend, l, batchMetrics)
	t.Logf("FIGURES replica kill -9: lost acknowledged writes in the database: %d", lost)
	// A fresh client per replica answers too (the restarted one included).
	for i, s := range cl.replicas {
		c := cl.client(s, cl.token)
		if code, body := c.get("experiments/get", url.Values{"experiment_id": {exp.ExperimentID}}, nil); code != 200 {
			t.Errorf("replica %d after the test: experiments/get %d %s", i, code, body)
		}
		c.close()
	}
}

func loggedCount(l *ledger) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.runs {
		n += len(r.logged)
	}
	return n
}

// verifyLedgerInDB checks the acknowledged writes in PostgreSQL directly
// (tables runs, params, tags, metrics) and returns how many are missing.
func verifyLedgerInDB(t *testing.T, uri string, l *ledger, batchMetrics int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect to the database: %v", err)
	}
	defer conn.Close(context.Background())

	l.mu.Lock()
	var ids []string
	want := map[string]bool{} // "kind/run/key/step"
	for id, r := range l.runs {
		ids = append(ids, id)
		want["run/"+id] = true
		for _, s := range r.batches {
			want[fmt.Sprintf("param/%s/p%d", id, s)] = true
			want[fmt.Sprintf("tag/%s/t%d", id, s)] = true
			for i := range batchMetrics {
				want[fmt.Sprintf("metric/%s/m/%d", id, s*batchMetrics+i)] = true
			}
		}
		for _, s := range r.logged {
			want[fmt.Sprintf("metric/%s/lm/%d", id, s)] = true
		}
	}
	l.mu.Unlock()

	have := map[string]bool{}
	collect := func(q string, format func(a, b string, n int64) string) {
		rows, err := conn.Query(ctx, q, ids)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b string
			var n int64
			if err := rows.Scan(&a, &b, &n); err != nil {
				t.Fatal(err)
			}
			have[format(a, b, n)] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	collect(`SELECT run_uuid, name, 0::bigint FROM runs WHERE run_uuid = ANY($1)`,
		func(a, _ string, _ int64) string { return "run/" + a })
	collect(`SELECT run_uuid, key, 0::bigint FROM params WHERE run_uuid = ANY($1)`,
		func(a, b string, _ int64) string { return "param/" + a + "/" + b })
	collect(`SELECT run_uuid, key, 0::bigint FROM tags WHERE run_uuid = ANY($1)`,
		func(a, b string, _ int64) string { return "tag/" + a + "/" + b })
	collect(`SELECT run_uuid, key, step FROM metrics WHERE run_uuid = ANY($1)`,
		func(a, b string, n int64) string { return fmt.Sprintf("metric/%s/%s/%d", a, b, n) })
	lost := 0
	for k := range want {
		if !have[k] {
			if lost < 20 {
				t.Errorf("acknowledged write missing in the database: %s", k)
			}
			lost++
		}
	}
	return lost
}

// multipartAcrossReplicas: the upload is created through the balancer,
// part 1 is PUT straight to replica 0 and part 2 straight to replica 1
// (the part URLs name the balancer; the test sends each to a replica of
// its choosing), and completed through replica 1: the part URLs and the
// upload id are signed with the key the replicas share in the database.
func multipartAcrossReplicas(t *testing.T, cl *cluster) {
	c := cl.client(cl.front, cl.token)
	defer c.close()
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	if code, body := c.post("experiments/create", map[string]any{"name": "replicas-mpu"}, &exp); code != 200 {
		t.Fatalf("create experiment: %d %s", code, body)
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if code, body := c.post("runs/create", map[string]any{"experiment_id": exp.ExperimentID}, &run); code != 200 {
		t.Fatalf("create run: %d %s", code, body)
	}
	dir := fmt.Sprintf("%s/%s/artifacts", exp.ExperimentID, run.Run.Info.RunID)
	hc := &http.Client{Transport: &authTransport{auth: cl.token}, Timeout: 30 * time.Second}
	cr, err := artifacttest.Create(hc, cl.front.URL, dir, "model.bin", 2)
	if err != nil {
		t.Fatalf("mpu/create through the balancer: %v", err)
	}
	if len(cr.Credentials) != 2 {
		t.Fatalf("%d credentials, want 2", len(cr.Credentials))
	}
	data := [][]byte{[]byte(strings.Repeat("a", 1000) + "|"), []byte("|" + strings.Repeat("b", 1000))}
	var parts []artifacttest.PartResult
	for i, cred := range cr.Credentials {
		u, err := url.Parse(cred.URL)
		if err != nil {
			t.Fatal(err)
		}
		if u.Host != strings.TrimPrefix(cl.front.URL, "http://") {
			t.Errorf("part URL %s does not name the balancer %s", cred.URL, cl.front.URL)
		}
		u.Host = fmt.Sprintf("127.0.0.1:%d", cl.replicas[i%len(cl.replicas)].port)
		cred.URL = u.String()
		etag, err := artifacttest.PutPart(cred, data[cred.PartNumber-1])
		if err != nil {
			t.Fatalf("part %d on replica %d: %v", cred.PartNumber, i%len(cl.replicas), err)
		}
		parts = append(parts, artifacttest.PartResult{PartNumber: cred.PartNumber, ETag: etag})
	}
	other := cl.replicas[len(cl.replicas)-1]
	if err := artifacttest.Complete(hc, other.URL, dir, "model.bin", cr.UploadID, parts); err != nil {
		t.Fatalf("mpu/complete on the other replica: %v", err)
	}
	for i, s := range append([]*server{cl.front}, cl.replicas...) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/2.0/mlflow-artifacts/artifacts/"+dir+"/model.bin", nil)
		code, body := (&apiClient{hc: hc}).do(req, nil)
		if code != 200 || body != string(data[0])+string(data[1]) {
			t.Errorf("download from server %d: %d %q", i, code, tail(body, 100))
		}
	}
}

// authTransport adds an Authorization header to every request.
type authTransport struct{ auth string }

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.auth)
	return http.DefaultTransport.RoundTrip(r)
}

// tokenRevokedAcrossReplicas: a token minted and revoked through replica 0
// is accepted by replica 1 before, and refused by it (401) right after.
func tokenRevokedAcrossReplicas(t *testing.T, cl *cluster) {
	a := cl.client(cl.replicas[0], cl.basic)
	defer a.close()
	var tok struct {
		Token     string `json:"token"`
		TokenInfo struct {
			ID string `json:"id"`
		} `json:"token_info"`
	}
	if code, body := a.post("users/tokens/create", map[string]any{"name": "revoke-me"}, &tok); code != 200 || tok.Token == "" {
		t.Fatalf("tokens/create on replica 0: %d %s", code, body)
	}
	b := cl.client(cl.replicas[1], "Bearer "+tok.Token)
	defer b.close()
	if code, body := b.get("users/current", nil, nil); code != 200 {
		t.Fatalf("new token on replica 1: %d %s", code, body)
	}
	if code, body := a.post("users/tokens/revoke", map[string]any{"id": tok.TokenInfo.ID}, nil); code != 200 {
		t.Fatalf("tokens/revoke on replica 0: %d %s", code, body)
	}
	// No replica caches token checks (README.md, "Scaling out"): the
	// very next request on the other replica is refused.
	revoked := time.Now()
	if code, body := b.get("users/current", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked token on replica 1: %d %s, want 401 at once", code, body)
	}
	t.Logf("FIGURES revocation: refused by the other replica at its first request, %v after the revoke was answered", time.Since(revoked).Round(time.Millisecond))
	// Still refused through the balancer (either replica).
	f := cl.client(cl.front, "Bearer "+tok.Token)
	defer f.close()
	for range 4 {
		if code, _ := f.get("users/current", nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("revoked token through the balancer: %d, want 401", code)
		}
	}
}
