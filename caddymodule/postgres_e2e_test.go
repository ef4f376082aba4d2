package caddymodule_test

// Tests of the PostgreSQL backend through a real in-process Caddy: the
// pool shared across reloads, provisioning failures that name the server
// and never show the password, and a database that goes away and comes
// back while Caddy keeps running.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// pgCluster is a throw-away PostgreSQL cluster of one test, started with
// .ci/postgres.sh, which the test may stop and start again.
type pgCluster struct {
	t   *testing.T
	dir string // data in dir/data, socket in dir
	bin string // the server's bin directory
	URI string // superuser URI of database postgres
}

// startCluster starts a cluster for t and removes it when t ends. Without
// PostgreSQL's server binaries t is skipped, except under CI=true.
func startCluster(t *testing.T) *pgCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are missing under CI=true: install Debian's postgresql package")
		}
		t.Skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are missing; install Debian's postgresql package")
	}
	sort.Strings(bins)
	// Not under t.TempDir(): the server runs as the postgres user, which
	// cannot enter the test's private temporary directory; and a short
	// path keeps the socket name within its length limit.
	dir, err := os.MkdirTemp("", "mlflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, dir: dir, bin: filepath.Dir(bins[len(bins)-1])}
	script := filepath.Join("..", ".ci", "postgres.sh")
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("stopping PostgreSQL in %s: %v\n%s", dir, err, out)
		}
		os.RemoveAll(dir)
	})
	cmd := exec.Command("bash", script, "start", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash .ci/postgres.sh start %s: %v", dir, err)
	}
	line := strings.TrimSpace(string(out))
	_, uri, ok := strings.Cut(line, "MLFLOW_TEST_POSTGRES_URI=")
	if !ok {
		t.Fatalf("bash .ci/postgres.sh start printed %q, want an export line", line)
	}
	c.URI = strings.Trim(uri, "'")
	return c
}

// pgCtl runs pg_ctl on the cluster as the postgres user when we are root.
func (c *pgCluster) pgCtl(args ...string) {
	c.t.Helper()
	argv := append([]string{filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data")}, args...)
	if os.Getuid() == 0 {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// stop shuts the server down in mode (fast: sessions are cut and the
// server shuts down cleanly; immediate: as a crash, recovered at the next
// start), keeping the data.
func (c *pgCluster) stop(mode string) { c.pgCtl("-m", mode, "-w", "stop") }

// start starts the stopped server again, listening where it did before.
func (c *pgCluster) start() {
	c.pgCtl("-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c fsync=off", c.dir))
}

// exec runs SQL statements as the superuser.
func (c *pgCluster) exec(sqls ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URI)
	if err != nil {
		c.t.Fatalf("connecting to %s: %v", c.URI, err)
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			c.t.Fatalf("%s: %v", q, err)
		}
	}
}

// addPasswordRole creates a role that must log in with password and a
// database it owns, and returns the role's URI without a password.
func (c *pgCluster) addPasswordRole(role, password string) string {
	c.t.Helper()
	c.exec(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", role, role))
	hba := filepath.Join(c.dir, "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		c.t.Fatal(err)
	}
	// The first matching line decides: this role authenticates by password.
	rule := fmt.Sprintf("local all %s scram-sha-256\n", role)
	if err := os.WriteFile(hba, append([]byte(rule), old...), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.pgCtl("reload")
	uri := fmt.Sprintf("postgresql://%s@/%s?host=%s&sslmode=disable", role, role, c.dir)
	// Wait until the server enforces the new rule.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, uri+"&password=not-"+password)
		cancel()
		if err != nil {
			break
		}
		conn.Close(context.Background())
		if time.Now().After(deadline) {
			c.t.Fatal("pg_hba.conf's password rule not in effect after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return uri
}

// withPassword puts password into a postgresql:// URI's user info.
func withPassword(uri, role, password string) string {
	return strings.Replace(uri, "://"+role+"@", "://"+role+":"+password+"@", 1)
}

// logText reads a caddytest LogFile ("" when it does not exist yet).
func logText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// pgDirectives are the mlflow directives of a PostgreSQL backend.
func pgDirectives(uri string, pg ...string) []string {
	d := []string{"backend_store_uri " + strconv.Quote(uri)}
	if len(pg) > 0 {
		d = append(d, "postgres {\n\t\t\t"+strings.Join(pg, "\n\t\t\t")+"\n\t\t}")
	}
	return d
}

// TestPostgresProvisionUnreachable: a PostgreSQL backend nobody listens
// on fails provisioning with a message naming the host and port, within
// connect_timeout, and neither the error nor the log shows the password.
func TestPostgresProvisionUnreachable(t *testing.T) {
	const password = "Unreach-Pw-93kq"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	uri := fmt.Sprintf("postgresql+psycopg2://mlflow:%s@127.0.0.1:%d/mlflow?sslmode=disable", password, port)
	start := time.Now()
	srv, err := caddytest.TryStart(t, caddytest.Options{
		Directives: pgDirectives(uri, "connect_timeout 3s"),
		LogLevel:   "INFO", // at DEBUG, Caddy itself logs the whole config (README)
		LogFile:    logFile,
	})
	if err == nil {
		t.Fatalf("Caddy started with an unreachable database; Caddyfile:\n%s", srv.Caddyfile)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("provisioning took %s to fail", d)
	}
	msg := err.Error()
	if want := fmt.Sprintf("connecting to PostgreSQL mlflow@127.0.0.1:%d/mlflow", port); !strings.Contains(msg, want) {
		t.Errorf("error %q does not contain %q", msg, want)
	}
	if strings.Contains(msg, password) {
		t.Errorf("error shows the password: %s", msg)
	}
	if logs := logText(t, logFile); strings.Contains(logs, password) {
		t.Errorf("log shows the password:\n%s", logs)
	}
}

// TestPostgresBackendThroughCaddy runs a cluster of its own: a wrong
// password fails provisioning without showing either password; the right
// one serves, logging the URI redacted; config reloads keep one pool; and
// when the database stops, requests get MLflow's retryable 503
// TEMPORARILY_UNAVAILABLE, never a 500 or a wrong answer, and the same
// Caddy recovers once the database is back.
func TestPostgresBackendThroughCaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := startCluster(t)
	const role, password, wrong = "mlflow_pw", "Right-Pw-55xz", "Wrong-Pw-71qa"
	base := c.addPasswordRole(role, password)
	uri := withPassword(base, role, password)

	t.Run("wrong password", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "caddy.log")
		srv, err := caddytest.TryStart(t, caddytest.Options{
			Directives: pgDirectives(withPassword(base, role, wrong)),
			LogLevel:   "INFO", // at DEBUG, Caddy itself logs the whole config (README)
			LogFile:    logFile,
		})
		if err == nil {
			t.Fatalf("Caddy started with a wrong password; Caddyfile:\n%s", srv.Caddyfile)
		}
		msg := err.Error()
		for _, want := range []string{"mlflow: ", "connecting to PostgreSQL " + role + "@unix:" + c.dir, "password authentication failed"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		logs := logText(t, logFile)
		for _, pw := range []string{password, wrong} {
			if strings.Contains(msg, pw) || strings.Contains(logs, pw) {
				t.Errorf("password %q shown: error %q, log:\n%s", pw, msg, logs)
			}
		}
	})

	t.Run("password from PGPASSWORD", func(t *testing.T) {
		t.Setenv("PGPASSWORD", password)
		srv := caddytest.Start(t, caddytest.Options{Directives: pgDirectives(base)})
		call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "via-pgpassword"}, 200)
	})

	t.Run("password from an env placeholder", func(t *testing.T) {
		t.Setenv("MLFLOW_TEST_DB_PASSWORD", password)
		srv := caddytest.Start(t, caddytest.Options{Directives: pgDirectives(withPassword(base, role, "{env.MLFLOW_TEST_DB_PASSWORD}"))})
		if strings.Contains(string(srv.Config), password) {
			t.Errorf("the JSON config holds the password: %s", srv.Config)
		}
		got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=via-pgpassword", nil, 200)
		if name := str(t, got, "experiment", "name"); name != "via-pgpassword" {
			t.Fatalf("experiment: %q", name)
		}
	})

	logFile := filepath.Join(t.TempDir(), "caddy.log")
	pg := []string{"connect_timeout 2s", "statement_timeout 10s", "max_conns 4"}
	pgConf := &caddymodule.PostgresConfig{MaxConns: 4, ConnectTimeout: caddy.Duration(2 * time.Second), StatementTimeout: caddy.Duration(10 * time.Second)}
	opts := caddytest.Options{Directives: pgDirectives(uri, pg...), LogLevel: "INFO", LogFile: logFile}
	srv := caddytest.Start(t, opts)

	// The provisioned line names the database with the password masked.
	logs := logText(t, logFile)
	if strings.Contains(logs, password) {
		t.Fatalf("log shows the password:\n%s", logs)
	}
	provisioned := ""
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "mlflow tracking server provisioned") {
			provisioned = sc.Text()
		}
	}
	if want := `"backend_store":"postgresql://` + role + `:xxxxx@/` + role; !strings.Contains(provisioned, want) {
		t.Fatalf("provisioned log line %q does not contain %q", provisioned, want)
	}

	// Reloads reuse the pool (and a changed pool setting gets a new one).
	pool := caddymodule.PGPool(uri, pgConf)
	if pool == nil || caddymodule.PGReferences(uri, pgConf) != 1 {
		t.Fatalf("pool %v with %d references, want one reference", pool, caddymodule.PGReferences(uri, pgConf))
	}
	opts.Directives = append(opts.Directives, "mlflow_version 3.7.0")
	srv.Reload(t, opts)
	if caddymodule.PGPool(uri, pgConf) != pool || caddymodule.PGReferences(uri, pgConf) != 1 {
		t.Fatalf("reload did not reuse the pool (references %d)", caddymodule.PGReferences(uri, pgConf))
	}
	srv.Reload(t, caddytest.Options{Directives: pgDirectives(uri, "max_conns 5"), LogLevel: "INFO", LogFile: logFile})
	if n := caddymodule.PGReferences(uri, pgConf); n != 0 {
		t.Fatalf("the old pool has %d references after a reload with other settings", n)
	}
	if n := caddymodule.PGReferences(uri, &caddymodule.PostgresConfig{MaxConns: 5}); n != 1 {
		t.Fatalf("the new pool has %d references, want 1", n)
	}
	srv.Reload(t, opts)

	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "outage"}, 200)
	expID := str(t, exp, "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": 1}, 200)
	runID := str(t, run, "run", "info", "run_id")
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/log-metric", obj{"run_id": runID, "key": "loss", "value": 1.5, "timestamp": 10, "step": 1}, 200)

	// The database goes away under a running Caddy, shut down cleanly
	// (sessions cut) and then crashed, while a writer keeps logging.
	for i, mode := range []string{"fast", "immediate"} {
		outage(t, srv, c, mode, expID, runID, i)
	}
	found := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/search", obj{"experiment_ids": []string{expID}}, 200)
	if rs, _ := found["runs"].([]any); len(rs) != 1 {
		t.Fatalf("runs after the outages = %v, want the one run", found)
	}
	// Nothing answered 503 was written: one loss point, the run still
	// running, no experiment named while-down.
	hist := call(t, srv, http.MethodGet, "/api/2.0/mlflow/metrics/get-history?run_id="+runID+"&metric_key=loss", nil, 200)
	if ms, _ := hist["metrics"].([]any); len(ms) != 1 {
		t.Fatalf("loss history after the outages = %v, want the one point logged before", hist)
	}
	got := call(t, srv, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, 200)
	if st := str(t, got, "run", "info", "status"); st != "RUNNING" {
		t.Fatalf("run status after the outages = %q, want RUNNING", st)
	}
	call(t, srv, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=while-down", nil, 404)
	if strings.Contains(logText(t, logFile), password) {
		t.Fatal("log shows the password")
	}
	srv.Stop()
	if n := caddymodule.PGReferences(uri, pgConf); n != 0 {
		t.Fatalf("references after stop = %d, want 0", n)
	}
}

// outage stops the cluster in mode under a running Caddy while a writer
// logs metric points to runID: every request needing the database answers
// 503 TEMPORARILY_UNAVAILABLE, never a 500 or a wrong answer; once the
// database is back the same Caddy serves again, and every point the writer
// got a 200 for is in the history. round distinguishes the metric keys of
// successive calls.
func outage(t *testing.T, srv *caddytest.Server, c *pgCluster, mode, expID, runID string, round int) {
	t.Helper()
	key := fmt.Sprintf("load_%d", round)
	stopWriter := make(chan struct{})
	writerDone := make(chan struct{})
	var acked []int           // steps the writer got 200 for
	statuses := map[int]int{} // status → count
	var oks atomic.Int64      // len(acked), for the waits below
	// waitOK waits (at most 30s) until the writer got a 200 after the
	// first n; the checks at the end report a writer that got none.
	waitOK := func(n int64) {
		for deadline := time.Now().Add(30 * time.Second); oks.Load() <= n && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	go func() {
		defer close(writerDone)
		for step := 0; ; step++ {
			select {
			case <-stopWriter:
				return
			default:
			}
			body := fmt.Sprintf(`{"run_id":%q,"key":%q,"value":%d,"timestamp":%d,"step":%d}`, runID, key, step, 1000+step, step)
			resp, err := srv.Client().Post(srv.URL+"/api/2.0/mlflow/runs/log-metric", "application/json", strings.NewReader(body))
			if err != nil {
				t.Errorf("writer: step %d: %v", step, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 200 {
				acked = append(acked, step)
				oks.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitOK(0) // some points before the outage (a fixed pause could pass before the first, under load)

	c.stop(mode)
	type req struct {
		method, path string
		body         any
	}
	down := []req{
		{http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "while-down"}},
		{http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id=" + expID, nil},
		{http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=outage", nil},
		{http.MethodPost, "/api/2.0/mlflow/experiments/search", obj{"max_results": 10}},
		{http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID}},
		{http.MethodGet, "/api/2.0/mlflow/runs/get?run_id=" + runID, nil},
		{http.MethodPost, "/api/2.0/mlflow/runs/log-metric", obj{"run_id": runID, "key": "loss", "value": 2.5, "timestamp": 20, "step": 2}},
		{http.MethodPost, "/api/2.0/mlflow/runs/log-batch", obj{"run_id": runID, "params": []obj{{"key": "p", "value": "1"}}}},
		{http.MethodPost, "/api/2.0/mlflow/runs/set-tag", obj{"run_id": runID, "key": "t", "value": "v"}},
		{http.MethodPost, "/api/2.0/mlflow/runs/search", obj{"experiment_ids": []string{expID}}},
		{http.MethodGet, "/api/2.0/mlflow/metrics/get-history?run_id=" + runID + "&metric_key=loss", nil},
		{http.MethodPost, "/api/2.0/mlflow/runs/update", obj{"run_id": runID, "status": "FINISHED"}},
		{http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id=" + runID, nil},
		{http.MethodPost, "/api/2.0/mlflow/registered-models/create", obj{"name": "while-down"}},
		{http.MethodGet, "/api/2.0/mlflow/registered-models/search", nil},
		{http.MethodGet, "/api/2.0/mlflow/registered-models/get?name=nothing", nil},
		{http.MethodPost, "/api/2.0/mlflow/logged-models/search", obj{"experiment_ids": []string{expID}}},
		{http.MethodGet, "/api/2.0/mlflow/traces?experiment_ids=" + expID, nil},
	}
	for pass := 0; pass < 2; pass++ { // the second pass finds no dead connections left in the pool
		for _, r := range down {
			var out obj
			status := srv.JSON(t, r.method, r.path, r.body, &out)
			if status != http.StatusServiceUnavailable || out["error_code"] != "TEMPORARILY_UNAVAILABLE" {
				t.Errorf("database down (%s), pass %d: %s %s = %d %v, want 503 TEMPORARILY_UNAVAILABLE", mode, pass, r.method, r.path, status, out)
			}
		}
	}
	if resp, _ := srv.Do(t, http.MethodGet, "/health", nil); resp.StatusCode != 200 {
		t.Errorf("/health with the database down = %d, want 200 (MLflow's /health does not check the store)", resp.StatusCode)
	}

	// Back up: the same Caddy recovers.
	c.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out obj
		status := srv.JSON(t, http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, &out)
		if status == 200 {
			break
		}
		if status != http.StatusServiceUnavailable {
			t.Fatalf("database restarting (%s): runs/get = %d %v, want 200 or 503", mode, status, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 30s after the database came back (%s): %d %v", mode, status, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitOK(oks.Load()) // some points after
	close(stopWriter)
	<-writerDone
	for status, n := range statuses {
		if status != 200 && status != http.StatusServiceUnavailable {
			t.Errorf("writer (%s): %d requests answered %d, want only 200 and 503", mode, n, status)
		}
	}
	if statuses[http.StatusServiceUnavailable] == 0 || len(acked) == 0 {
		t.Errorf("writer (%s): statuses %v: the load did not span the outage", mode, statuses)
	}
	hist := call(t, srv, http.MethodGet, "/api/2.0/mlflow/metrics/get-history?run_id="+runID+"&metric_key="+key, nil, 200)
	stored := map[int]bool{}
	ms, _ := hist["metrics"].([]any)
	for _, m := range ms {
		if step, ok := m.(map[string]any)["step"]; ok {
			n, _ := strconv.Atoi(fmt.Sprint(step))
			stored[n] = true
		}
	}
	for _, step := range acked {
		if !stored[step] {
			t.Errorf("writer (%s): step %d was acknowledged but is not in the history", mode, step)
		}
	}
	t.Logf("outage (%s): writer statuses %v, %d acknowledged, %d stored", mode, statuses, len(acked), len(stored))
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "after-outage-" + mode}, 200)
}
