package caddymodule_test

// Operator metrics end to end: a real Caddy with its admin endpoint on,
// the mlflow handler with auth and the artifact proxy, real requests, and
// the admin /metrics endpoint scraped before and after. Assertions are on
// counter deltas, never on absolute or wall-clock values.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/metrics" // admin /metrics and the metrics handler
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// sample is one series of a scrape.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is a parsed Prometheus text exposition.
type scrape []sample

// scrapeURL GETs a Prometheus text endpoint and parses it.
func scrapeURL(t *testing.T, c *http.Client, url string) scrape {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	out, err := parseExposition(body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return out
}

// parseExposition parses the Prometheus text format: name{k="v",...} value.
func parseExposition(body []byte) (scrape, error) {
	var out scrape
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			rest = line[i+1:]
			for !strings.HasPrefix(rest, "}") {
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					return nil, fmt.Errorf("bad labels in %q", line)
				}
				k := rest[:eq]
				rest = rest[eq+2:]
				var v strings.Builder
				for i := 0; ; i++ {
					if i >= len(rest) {
						return nil, fmt.Errorf("unterminated label value in %q", line)
					}
					if rest[i] == '\\' && i+1 < len(rest) {
						i++
						switch rest[i] {
						case 'n':
							v.WriteByte('\n')
						default:
							v.WriteByte(rest[i])
						}
						continue
					}
					if rest[i] == '"' {
						rest = rest[i+1:]
						break
					}
					v.WriteByte(rest[i])
				}
				s.labels[k] = v.String()
				rest = strings.TrimPrefix(rest, ",")
			}
			rest = strings.TrimSpace(rest[1:])
		} else {
			name, r, _ := strings.Cut(line, " ")
			s.name, rest = name, r
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// get returns the value of the series name with labels (a subset match
// summed over the rest), and whether any series matched.
func (s scrape) get(name string, labels ...string) (float64, bool) {
	sum, found := 0.0, false
next:
	for _, x := range s {
		if x.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if x.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		sum += x.value
		found = true
	}
	return sum, found
}

// value is get that is 0 for a series not (yet) exposed.
func (s scrape) value(name string, labels ...string) float64 {
	v, _ := s.get(name, labels...)
	return v
}

// metricsEnv is a running server with auth, the artifact proxy and the
// admin endpoint.
type metricsEnv struct {
	srv   *caddytest.Server
	opts  caddytest.Options
	admin string // Authorization of the admin user
	t     *testing.T
}

func startMetricsEnv(t *testing.T) *metricsEnv {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ADMIN_HASH", string(hash))
	opts := caddytest.Options{
		Admin: true,
		Directives: []string{"serve_artifacts on", `auth {
			admin root {env.MLFLOW_TEST_ADMIN_HASH}
			basic
			api_tokens
			default_permission NO_PERMISSIONS
		}`},
	}
	return &metricsEnv{srv: caddytest.Start(t, opts), opts: opts, admin: basic("root", adminPassword), t: t}
}

// do sends a request with an optional Authorization header and body and
// returns the status and the body.
func (e *metricsEnv) do(method, path, auth string, body io.Reader, contentType string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// json sends a JSON request and fails unless the status is want.
func (e *metricsEnv) json(method, path, auth string, in any, want int) map[string]any {
	e.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	code, data := e.do(method, path, auth, bytes.NewReader(b), "application/json")
	if code != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, code, data, want)
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

func (e *metricsEnv) scrape() scrape {
	e.t.Helper()
	return scrapeURL(e.t, e.srv.Client(), e.srv.AdminURL+"/metrics")
}

// TestMetricsAppearAndMove drives a tracking workload, artifact transfers
// and refused requests through a real Caddy and checks that every
// caddy_mlflow_* family is on the admin /metrics endpoint and moved by
// what was done.
func TestMetricsAppearAndMove(t *testing.T) {
	e := startMetricsEnv(t)
	before := e.scrape()

	// Tracking: an experiment, a run, one log-batch, one search.
	exp := e.json("POST", "/api/2.0/mlflow/experiments/create", e.admin, map[string]any{"name": "metrics"}, 200)
	expID, _ := exp["experiment_id"].(string)
	run := e.json("POST", "/api/2.0/mlflow/runs/create", e.admin, map[string]any{"experiment_id": expID}, 200)
	runID, _ := run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	e.json("POST", "/api/2.0/mlflow/runs/log-batch", e.admin, map[string]any{
		"run_id":  runID,
		"metrics": []map[string]any{{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}, {"key": "loss", "value": 0.25, "timestamp": 2, "step": 1}},
		"params":  []map[string]any{{"key": "lr", "value": "0.1"}},
	}, 200)
	e.json("POST", "/api/2.0/mlflow/runs/search", e.admin, map[string]any{"experiment_ids": []string{expID}}, 200)

	// Artifacts through the proxy: one upload, one download of it.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	artPath := "/api/2.0/mlflow-artifacts/artifacts/" + expID + "/" + runID + "/artifacts/data/blob.bin"
	if code, body := e.do("PUT", artPath, e.admin, bytes.NewReader(payload), "application/octet-stream"); code != 200 {
		t.Fatalf("upload = %d %s", code, body)
	}
	code, got := e.do("GET", artPath, e.admin, nil, "")
	if code != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("download = %d, %d bytes; want 200 and the %d uploaded", code, len(got), len(payload))
	}

	// Refused requests, one per reason.
	e.json("POST", "/api/2.0/mlflow/users/create", e.admin, map[string]any{"username": "bob", "password": bobPassword}, 200)
	bob := basic("bob", bobPassword)
	tok := e.json("POST", "/api/2.0/mlflow/users/tokens/create", bob, map[string]any{"name": "old"}, 200)
	tokInfo, _ := tok["token_info"].(map[string]any)
	e.json("POST", "/api/2.0/mlflow/users/tokens/revoke", bob, map[string]any{"id": tokInfo["id"]}, 200)
	refused := []struct{ auth, why string }{
		{"", "missing_credentials"},
		{basic("root", "not-the-password"), "bad_password"},
		{basic("mallory", "whatever-password"), "unknown_user"},
		{"Bearer " + tok["token"].(string), "token_revoked"},
		{"Bearer not.a.jwt", "bad_credentials"}, // JWT is not enabled: an unsupported bearer
	}
	for _, r := range refused {
		if code, body := e.do("GET", "/api/2.0/mlflow/experiments/get?experiment_id="+expID, r.auth, nil, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s: GET experiment = %d %s, want 401", r.why, code, body)
		}
	}
	if code, body := e.do("GET", "/api/2.0/mlflow/experiments/get?experiment_id="+expID, bob, nil, ""); code != http.StatusForbidden {
		t.Fatalf("bob: GET experiment = %d %s, want 403", code, body)
	}
	// A path MLflow does not serve.
	if code, _ := e.do("GET", "/api/2.0/mlflow/no/such/route/"+runID, e.admin, nil, ""); code != http.StatusNotFound {
		t.Fatalf("unknown route = %d, want 404", code)
	}

	after := e.scrape()
	delta := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	wantDelta := func(want float64, name string, labels ...string) {
		t.Helper()
		if d := delta(name, labels...); d != want {
			t.Errorf("%s%v moved by %v, want %v", name, labels, d, want)
		}
	}

	wantDelta(1, "caddy_mlflow_requests_total", "route", "LogBatch", "code", "200")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "SearchRuns", "code", "200")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "CreateRun", "code", "200")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "UploadArtifact", "code", "200")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "DownloadArtifact", "code", "200")
	wantDelta(5, "caddy_mlflow_requests_total", "route", "GetExperiment", "code", "401")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "GetExperiment", "code", "403")
	wantDelta(1, "caddy_mlflow_requests_total", "route", "other", "code", "404")
	wantDelta(1, "caddy_mlflow_request_duration_seconds_count", "route", "LogBatch")
	wantDelta(1, "caddy_mlflow_request_duration_seconds_count", "route", "SearchRuns")
	if d := delta("caddy_mlflow_request_duration_seconds_sum", "route", "LogBatch"); d <= 0 {
		t.Errorf("request_duration_seconds_sum{LogBatch} moved by %v, want > 0", d)
	}
	// Bounded labels: route values are operation names, never paths.
	for _, s := range after {
		if s.name == "caddy_mlflow_requests_total" && strings.Contains(s.labels["route"], "/") {
			t.Errorf("route label is a path: %v", s.labels)
		}
	}

	wantDelta(float64(len(payload)), "caddy_mlflow_artifact_bytes_total", "direction", "in")
	wantDelta(float64(len(payload)), "caddy_mlflow_artifact_bytes_total", "direction", "out")

	for _, r := range refused {
		wantDelta(1, "caddy_mlflow_auth_failures_total", "reason", r.why)
	}
	wantDelta(1, "caddy_mlflow_auth_failures_total", "reason", "forbidden")

	// Tracking writes: experiment, run, log-batch (users and tokens live
	// in the gateway's own store, artifacts in files).
	if d := delta("caddy_mlflow_store_commit_batch_size_sum"); d < 3 {
		t.Errorf("store_commit_batch_size_sum moved by %v, want >= 3 committed write calls", d)
	}
	commits := delta("caddy_mlflow_store_commit_duration_seconds_count")
	if commits < 1 || commits != delta("caddy_mlflow_store_commit_batch_size_count") {
		t.Errorf("commits: duration count moved by %v, batch size count by %v; want the same, >= 1",
			commits, delta("caddy_mlflow_store_commit_batch_size_count"))
	}

	size, ok := after.get("caddy_mlflow_bbolt_file_size_bytes", "db", e.srv.BoltPath)
	if !ok || size <= 0 {
		t.Errorf("bbolt_file_size_bytes{db=%q} = %v (exposed %v), want > 0", e.srv.BoltPath, size, ok)
	}
	for _, name := range []string{"caddy_mlflow_bbolt_free_pages", "caddy_mlflow_bbolt_pending_pages", "caddy_mlflow_bbolt_free_bytes", "caddy_mlflow_bbolt_open_read_transactions"} {
		if v, ok := after.get(name, "db", e.srv.BoltPath); !ok || v < 0 || math.IsNaN(v) {
			t.Errorf("%s{db=%q} = %v (exposed %v)", name, e.srv.BoltPath, v, ok)
		}
	}
}

// TestMetricsAcrossReload reloads the config (a fresh registry from Caddy
// that the same collectors join) and adds a metrics handler to the site:
// no double registration, counters continue instead of restarting, and
// both endpoints serve the same families.
func TestMetricsAcrossReload(t *testing.T) {
	e := startMetricsEnv(t)
	e.json("POST", "/api/2.0/mlflow/experiments/create", e.admin, map[string]any{"name": "before-reload"}, 200)
	if code, _ := e.do("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", "", nil, ""); code != 401 {
		t.Fatalf("no credentials = %d, want 401", code)
	}
	s1 := e.scrape()
	created1 := s1.value("caddy_mlflow_requests_total", "route", "CreateExperiment", "code", "200")
	missing1 := s1.value("caddy_mlflow_auth_failures_total", "reason", "missing_credentials")
	if created1 < 1 || missing1 < 1 {
		t.Fatalf("before reload: CreateExperiment %v, missing_credentials %v; want >= 1", created1, missing1)
	}

	opts := e.opts
	opts.Site = []string{"handle /site-metrics {\n\t\tmetrics\n\t}"}
	e.srv.Reload(t, opts)
	e.srv.Reload(t, opts) // twice: each reload registers in a new registry
	e.json("POST", "/api/2.0/mlflow/experiments/create", e.admin, map[string]any{"name": "after-reload"}, 200)

	s2 := e.scrape()
	if got := s2.value("caddy_mlflow_requests_total", "route", "CreateExperiment", "code", "200"); got != created1+1 {
		t.Errorf("after reload: CreateExperiment count %v, want %v (continued, not restarted)", got, created1+1)
	}
	if got := s2.value("caddy_mlflow_auth_failures_total", "reason", "missing_credentials"); got < missing1 {
		t.Errorf("after reload: missing_credentials %v went down from %v", got, missing1)
	}
	if _, ok := s2.get("caddy_mlflow_bbolt_file_size_bytes", "db", e.srv.BoltPath); !ok {
		t.Errorf("after reload: no bbolt_file_size_bytes for %s", e.srv.BoltPath)
	}

	// The site's metrics handler serves the same registry.
	site := scrapeURL(t, e.srv.Client(), e.srv.URL+"/site-metrics")
	if got := site.value("caddy_mlflow_requests_total", "route", "CreateExperiment", "code", "200"); got != created1+1 {
		t.Errorf("site /metrics: CreateExperiment count %v, want %v", got, created1+1)
	}
}

// TestMetricsCountUISignIn checks the tracking UI's sign-in form: a wrong
// password counts as an auth failure, and the Login route is labelled.
func TestMetricsCountUISignIn(t *testing.T) {
	e := startSessions(t) // auth_session_test.go
	opts := e.opts
	opts.Admin = true
	e.srv.Reload(t, opts)
	admin := e.srv.AdminURL + "/metrics"
	before := scrapeURL(t, e.srv.Client(), admin)

	tok, lc := e.loginForm(t)
	if _, sc, _ := e.postLogin(t, url.Values{"username": {"root"}, "password": {"wrong-password-123"}, "csrf_token": {tok}}, nil, lc); sc != nil {
		t.Fatal("a wrong password got a session")
	}
	e.login(t, "root", adminPassword)

	after := scrapeURL(t, e.srv.Client(), admin)
	delta := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	if d := delta("caddy_mlflow_auth_failures_total", "reason", "bad_password"); d != 1 {
		t.Errorf("auth_failures_total{bad_password} moved by %v, want 1", d)
	}
	if d := delta("caddy_mlflow_requests_total", "route", "Login", "code", "303"); d != 2 {
		t.Errorf("requests_total{Login,303} moved by %v, want 2", d)
	}
	if d := delta("caddy_mlflow_requests_total", "route", "UI"); d < 2 {
		t.Errorf("requests_total{UI} moved by %v, want >= 2 (whoami)", d)
	}
}
