package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgCluster is a throw-away PostgreSQL cluster of the test's own, started
// with .ci/postgres.sh, so that the test may stop and start it.
type pgCluster struct {
	t      *testing.T
	dir    string
	bin    string
	uri    string // admin URI (database postgres)
	script string
}

// startPGCluster starts a cluster in a fresh directory, or skips the test
// when the PostgreSQL server binaries are missing (fails under CI=true).
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL server binaries missing under CI=true (.ci/postgres.sh installs them)")
		}
		t.Skip("PostgreSQL server binaries (Debian's postgresql package) not installed")
	}
	sort.Strings(bins)
	// Directly under /tmp: the postgres user must reach it, and the
	// socket path must stay short.
	dir, err := os.MkdirTemp("/tmp", "caddy-mlflow-pgr-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &pgCluster{t: t, dir: dir, bin: filepath.Dir(bins[len(bins)-1]), script: filepath.Join(repoRoot(t), ".ci", "postgres.sh")}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", pg.script, "start", dir).Output()
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("bash .ci/postgres.sh start %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "bash", pg.script, "stop", dir).CombinedOutput(); err != nil {
			t.Logf("postgres.sh stop: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	m := regexp.MustCompile(`MLFLOW_TEST_POSTGRES_URI='([^']+)'`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("postgres.sh start printed no URI: %s", out)
	}
	pg.uri = string(m[1])
	return pg
}

// newDatabase creates a database on the cluster and returns its URI.
func (pg *pgCluster) newDatabase(name string) string {
	t := pg.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	// .ci/postgres.sh starts the server with synchronous_commit=off (its
	// tests kill Caddy, not PostgreSQL): a commit is then acknowledged
	// before its WAL leaves PostgreSQL's memory, and stop -m immediate
	// loses the last ones. This test kills PostgreSQL, so it needs
	// PostgreSQL's default back; a database setting overrides the
	// server's command line for every session.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(pg.uri)
	u.Path = "/" + name
	return u.String()
}

// pgCtl runs pg_ctl on the cluster, as the postgres user when root (the
// server refuses to run as root), as .ci/postgres.sh does.
func (pg *pgCluster) pgCtl(args ...string) {
	t := pg.t
	t.Helper()
	name, full := filepath.Join(pg.bin, "pg_ctl"), append([]string{"-D", filepath.Join(pg.dir, "data")}, args...)
	if os.Getuid() == 0 {
		full = append([]string{"-u", "postgres", "--", name}, full...)
		name = "runuser"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, full...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// stop stops the server with the given shutdown mode (fast: disconnect the
// sessions and shut down cleanly; immediate: like a crash, recovery on the
// next start).
func (pg *pgCluster) stop(mode string) { pg.pgCtl("-m", mode, "-w", "stop") }

// start starts the stopped server again with .ci/postgres.sh's options.
func (pg *pgCluster) start() {
	pg.pgCtl("-l", filepath.Join(pg.dir, "server.log"), "-w", "-t", "60", "start", "-o",
		fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_preload_libraries=pg_stat_statements", pg.dir))
}

// TestPostgresRestartUnderLoad restarts PostgreSQL (stop -m immediate, then
// stop -m fast) under a client load through the balancer of two replicas.
// While the database is down every failed request is a 503 the MLflow
// client retries (TEMPORARILY_UNAVAILABLE), never a 500 and never a 200
// with a wrong answer; after the restart the same Caddy processes answer
// again, and every write acknowledged before, during or after is there.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own PostgreSQL cluster and three Caddy processes; skipped with -short")
	}
	pg := startPGCluster(t)
	backend := pg.newDatabase("mlflow")
	cl := startCluster(t, backend, 2)
	const (
		workers      = 6
		batchMetrics = 5
	)
	front := cl.client(cl.front, cl.token)
	defer front.close()
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	if code, body := front.post("experiments/create", map[string]any{"name": "pg-restart"}, &exp); code != 200 {
		t.Fatalf("create experiment: %d %s", code, body)
	}
	l := &ledger{runs: map[string]*runRecord{}}
	ls := &loadStats{}
	win := &window{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	for _, mode := range []string{"immediate", "fast"} {
		time.Sleep(time.Second)
		before := ls.acked.Load()
		down := time.Now()
		win.set(down, time.Time{})
		pg.stop(mode)
		time.Sleep(2 * time.Second)
		pg.start()
		up := time.Now()
		// The first write acknowledged after the restart.
		var recovered time.Duration
		for time.Since(up) < 30*time.Second {
			if ls.acked.Load() > before && func() bool {
				code, _ := front.get("experiments/get", url.Values{"experiment_id": {exp.ExperimentID}}, nil)
				return code == 200
			}() {
				recovered = time.Since(up)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		win.set(down, time.Now().Add(500*time.Millisecond))
		if recovered == 0 {
			t.Fatalf("stop -m %s: no request succeeded within 30s of PostgreSQL's restart", mode)
		}
		t.Logf("FIGURES PostgreSQL stop -m %s: down %v, Caddy answered again %v after the restart; failed so far: %d (by status: %s)",
			mode, up.Sub(down).Round(time.Millisecond), recovered.Round(time.Millisecond), ls.failed.Load(), ls.summary())
	}
	time.Sleep(time.Second)
	cancel()
	wg.Wait()

	acked, inflight := l.counts()
	t.Logf("FIGURES PostgreSQL restarts: %d writes acknowledged (%d runs, %d log-batch, %d log-metric), %d reads ok, %d failed (%d in the outage windows; by status: %s), %d wrong answers, %d log-batch unacknowledged",
		ls.acked.Load(), acked.runs, acked.batches, loggedCount(l), ls.reads.Load(), ls.failed.Load(), ls.inWindow.Load(), ls.summary(), ls.wrong.Load(), inflight)
	for _, s := range ls.samples {
		t.Logf("failed: %s", s)
	}
	if ls.wrong.Load() > 0 {
		t.Errorf("%d answers with a 200 carried the wrong run", ls.wrong.Load())
	}
	if ls.inWindow.Load() == 0 {
		t.Errorf("no request failed while PostgreSQL was down: the outage was not exercised")
	}
	if n := ls.failed.Load() - ls.inWindow.Load(); n > 0 {
		t.Errorf("%d requests failed outside the outage windows", n)
	}
	ls.mu.Lock()
	for code, n := range ls.statuses {
		if code != 503 {
			t.Errorf("%d requests answered %d while PostgreSQL was down; want only 503", n, code)
		}
	}
	for k, n := range ls.codes {
		// The replicas' answer, or the balancer's own (no JSON) if it
		// found no healthy replica.
		if k != "503 TEMPORARILY_UNAVAILABLE" && k != "503 -" {
			t.Errorf("%d requests answered %s while PostgreSQL was down; want 503 TEMPORARILY_UNAVAILABLE", n, k)
		}
	}
	ls.mu.Unlock()

	verifyLedger(t, cl.client(cl.front, cl.token), l, batchMetrics)
	lost := verifyLedgerInDB(t, backend, l, batchMetrics)
	t.Logf("FIGURES PostgreSQL restarts: lost acknowledged writes: %d", lost)
}
