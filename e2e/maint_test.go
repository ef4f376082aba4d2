package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// mlflowAPI is a tiny REST client for the maintenance test.
type mlflowAPI struct {
	t    testing.TB
	base string
}

func (a mlflowAPI) call(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (a mlflowAPI) post(path string, body any) map[string]any {
	a.t.Helper()
	code, out := a.call("POST", "/api/2.0/mlflow/"+path, body)
	if code != 200 {
		a.t.Fatalf("POST %s: %d %v", path, code, out)
	}
	return out
}

func (a mlflowAPI) createRun(exp string) string {
	a.t.Helper()
	out := a.post("runs/create", map[string]any{"experiment_id": exp, "start_time": time.Now().UnixMilli()})
	return out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
}

func (a mlflowAPI) runStatus(id string) int {
	a.t.Helper()
	code, _ := a.call("GET", "/api/2.0/mlflow/runs/get?run_id="+id, nil)
	return code
}

func (a mlflowAPI) putArtifact(exp, run, name, content string) {
	a.t.Helper()
	req, _ := http.NewRequest("PUT", a.base+"/api/2.0/mlflow-artifacts/artifacts/"+exp+"/"+run+"/artifacts/"+name, strings.NewReader(content))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		a.t.Fatalf("upload %s: %v %v", name, err, resp)
	}
	resp.Body.Close()
}

// TestMaintCLI drives `caddy mlflow backup`, `gc` and `compact` against
// the built binary and a running caddy: an online backup (file and gs://)
// while clients keep writing, online gc of a deleted run and experiment
// with their artifacts, gc's error cases, compact refusing the running
// server's file, then offline compaction and an offline backup.
func TestMaintCLI(t *testing.T) {
	bin := caddyBinary(t)
	dir := t.TempDir()
	// The CLI reads dir/Caddyfile, which the harness writes for the ports
	// the server ends up on (the site and the admin endpoint).
	cfg := filepath.Join(dir, "Caddyfile")
	emu := gcstest.Start(t, "backups")
	srv := newServer(t, dir, 0)
	srv.nPorts = 2
	// api is made again from srv.URL after the restart below.
	srv.canMove = true
	srv.prepare = func(s *server) {
		s.config = fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
}

http://127.0.0.1:%d {
	mlflow {
		backend_store_uri %s
		artifacts_destination %s
	}
}
`, s.ports[1], s.port, filepath.Join(dir, "mlflow.bolt"), filepath.Join(dir, "artifacts"))
	}
	home := filepath.Join(dir, "home")
	env := append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"), "STORAGE_EMULATOR_HOST="+strings.TrimPrefix(emu.URL, "http://"))
	cli := func(wantOK bool, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"mlflow"}, append(args, "--config", cfg)...)...)
		cmd.Dir, cmd.Env = dir, env
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if (err == nil) != wantOK {
			t.Fatalf("caddy mlflow %v: err %v (want ok=%v)\nstdout: %s\nstderr: %s", args, err, wantOK, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	srv.start()
	api := mlflowAPI{t: t, base: srv.URL}

	exp := api.post("experiments/create", map[string]any{"name": "maint"})["experiment_id"].(string)
	doomedExp := api.post("experiments/create", map[string]any{"name": "doomed"})["experiment_id"].(string)
	var acked []string
	for i := 0; i < 30; i++ {
		id := api.createRun(exp)
		api.post("runs/log-metric", map[string]any{"run_id": id, "key": "m", "value": i, "timestamp": 1, "step": i})
		acked = append(acked, id)
	}

	// Online backup while writers keep going.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	during := 0
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := api.createRun(exp)
				api.post("runs/log-metric", map[string]any{"run_id": id, "key": "m", "value": 1, "timestamp": 1})
				mu.Lock()
				during++
				mu.Unlock()
			}
		}()
	}
	// The backups start once the writers are writing (a fixed pause was
	// not enough on a loaded machine to be sure of it).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := during
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writers wrote nothing in 30s")
		}
	}
	backup := filepath.Join(dir, "backups", "mlflow-backup.db")
	if err := os.MkdirAll(filepath.Dir(backup), 0o755); err != nil {
		t.Fatal(err)
	}
	out := cli(true, "backup", "--to", backup)
	outGS := cli(true, "backup", "--to", "gs://backups/nightly/mlflow.db")
	close(stop)
	wg.Wait()
	if during == 0 {
		t.Fatal("no write happened during the backups")
	}
	t.Logf("backup output:\n%s%s", out, outGS)
	if !strings.Contains(out, "running server, admin API") || !strings.Contains(out, "bbolt check passed") {
		t.Fatalf("backup output:\n%s", out)
	}
	checkBackup := func(path string, acked []string) {
		t.Helper()
		rep, err := boltstore.VerifyFile(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, id := range acked {
			r, err := s.GetRun(context.Background(), id)
			if err != nil || len(r.Data.Metrics) != 1 {
				t.Fatalf("backup %s: acknowledged run %s: %v", path, id, err)
			}
		}
		if rep.Counts["run"] < len(acked) {
			t.Fatalf("backup counts %v", rep.Counts)
		}
	}
	checkBackup(backup, acked)
	obj, err := emu.Server.GetObject("backups", "nightly/mlflow.db")
	if err != nil {
		t.Fatal(err)
	}
	gsCopy := filepath.Join(dir, "from-gcs.db")
	if err := os.WriteFile(gsCopy, obj.Content, 0o600); err != nil {
		t.Fatal(err)
	}
	checkBackup(gsCopy, acked)

	// gc through the running server.
	alive, dead := acked[0], acked[1]
	inDoomed := api.createRun(doomedExp)
	api.putArtifact(exp, alive, "a.txt", "alive")
	api.putArtifact(exp, dead, "d.txt", "dead")
	api.putArtifact(doomedExp, inDoomed, "x.txt", "doomed")
	api.post("runs/delete", map[string]any{"run_id": dead})
	api.post("experiments/delete", map[string]any{"experiment_id": doomedExp})

	bad := cli(false, "gc", "--run-ids", alive)
	if !strings.Contains(bad, "Run "+alive+" is not in `deleted` lifecycle stage") {
		t.Fatalf("gc of an active run:\n%s", bad)
	}
	bad = cli(false, "gc", "--experiment-ids", exp)
	if !strings.Contains(bad, "Experiments ['"+exp+"'] are not in the deleted lifecycle stage") {
		t.Fatalf("gc of an active experiment:\n%s", bad)
	}
	bad = cli(false, "gc", "--older-than", "1d", "--run-ids", dead)
	if !strings.Contains(bad, "is not older than the required age") {
		t.Fatalf("gc of a young run:\n%s", bad)
	}
	if api.runStatus(dead) != 200 {
		t.Fatal("a failed gc deleted the run")
	}
	// An abandoned multipart upload, idle for two days.
	mp := artifact.Multipart(mustLocal(t, filepath.Join(dir, "artifacts")))
	upload := strings.Repeat("c", 32)
	if err := mp.CreateUpload(context.Background(), upload); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.PutPart(context.Background(), upload, 1, strings.NewReader("part")); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	_ = filepath.Walk(filepath.Join(dir, "artifacts"), func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	bad = cli(false, "gc", "--uploads-older-than", "1h")
	if !strings.Contains(bad, "must be at least 6h") {
		t.Fatalf("gc --uploads-older-than 1h:\n%s", bad)
	}

	gcOut := cli(true, "gc")
	t.Logf("gc output:\n%s", gcOut)
	for _, want := range []string{"Run with ID " + dead + " has been permanently deleted.",
		"Run with ID " + inDoomed + " has been permanently deleted.",
		"Experiment with ID " + doomedExp + " has been permanently deleted.",
		"Removed 1 abandoned multipart upload(s)",
		"Permanently deleted 2 run(s) and 1 experiment(s)."} {
		if !strings.Contains(gcOut, want) {
			t.Fatalf("gc output lacks %q:\n%s", want, gcOut)
		}
	}
	if api.runStatus(dead) != 404 || api.runStatus(inDoomed) != 404 || api.runStatus(alive) != 200 {
		t.Fatal("run states after gc are wrong")
	}
	if code, _ := api.call("GET", "/api/2.0/mlflow/experiments/get?experiment_id="+doomedExp, nil); code != 404 {
		t.Fatalf("hard-deleted experiment: %d", code)
	}
	for p, want := range map[string]bool{
		exp + "/" + alive + "/artifacts/a.txt":          true,
		exp + "/" + dead + "/artifacts/d.txt":           false,
		doomedExp + "/" + inDoomed + "/artifacts/x.txt": false,
	} {
		_, err := os.Stat(filepath.Join(dir, "artifacts", filepath.FromSlash(p)))
		if (err == nil) != want {
			t.Fatalf("artifact %s: exists=%v, want %v", p, err == nil, want)
		}
	}
	// The doomed experiment's name is free again.
	api.post("experiments/create", map[string]any{"name": "doomed"})

	// import finds the store held by the server and runs in it.
	fixtures := filepath.Join(repoRoot(t), "testdata", "mlflow-fixtures", "mlruns")
	imp := cli(true, "import", "--from", fixtures)
	t.Logf("online import output:\n%s", imp)
	if !strings.Contains(imp, "(running server, admin API") || !strings.Contains(imp, "problems: 0") {
		t.Fatalf("online import:\n%s", imp)
	}
	if api.runStatus("de1274ebd5394936ab1de5ee79770b9d") != 200 { // a fixture run
		t.Fatal("the imported run is not served")
	}

	// compact refuses the running server's file.
	bad = cli(false, "compact")
	if !strings.Contains(bad, "compact works offline only") {
		t.Fatalf("compact while running:\n%s", bad)
	}

	// Churn to leave free pages, then stop and compact.
	for i := 0; i < 20; i++ {
		id := api.createRun(exp)
		var ms []map[string]any
		for j := 0; j < 500; j++ {
			ms = append(ms, map[string]any{"key": "big", "value": j, "timestamp": j, "step": j})
		}
		for k := 0; k < len(ms); k += 1000 {
			api.post("runs/log-batch", map[string]any{"run_id": id, "metrics": ms[k:min(k+1000, len(ms))]})
		}
		api.post("runs/delete", map[string]any{"run_id": id})
	}
	cli(true, "gc")
	srv.stop()
	compactOut := cli(true, "compact")
	t.Logf("compact output:\n%s", compactOut)
	var before, after int64
	if _, err := fmt.Sscanf(compactOut[strings.Index(compactOut, ": ")+2:], "%d -> %d bytes", &before, &after); err != nil || after >= before {
		t.Fatalf("compact output %q (%v)", compactOut, err)
	}
	// Offline backup and gc open the file directly.
	offline := cli(true, "backup", "--to", filepath.Join(dir, "offline.db"))
	if !strings.Contains(offline, "(store file)") {
		t.Fatalf("offline backup:\n%s", offline)
	}
	checkBackup(filepath.Join(dir, "offline.db"), []string{alive})
	srv.start()
	api = mlflowAPI{t: t, base: srv.URL}
	if api.runStatus(alive) != 200 {
		t.Fatal("the active run is gone after compaction")
	}
}

func mustLocal(t testing.TB, dir string) *artifact.Local {
	t.Helper()
	l, err := artifact.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
