//go:build linux

package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and
// unmounts it when the test ends; it skips the test, saying why, where
// mounting is not possible (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a real full disk needs a tmpfs mount, which needs root; TestStorageFaults (tracking/api) covers the mapping with an injected ENOSPC")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+itoa(size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestStorageFaults (tracking/api) covers the mapping with an injected ENOSPC", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// fill writes a file that takes all the free space of the file system at
// dir, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for { // the last few bytes
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	return p
}

// TestDiskFullThroughCaddy: with the bbolt file and the artifacts on a real
// (tmpfs) file system that runs full, tracking writes and artifact uploads
// answer 507 RESOURCE_EXHAUSTED with MLflow's error JSON, a failed upload
// leaves no temporary file, and everything works again once there is
// space.
func TestDiskFullThroughCaddy(t *testing.T) {
	disk := mountTmpfs(t, 8<<20)
	arts := filepath.Join(disk, "artifacts")
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{
		"backend_store_uri " + "bbolt://" + filepath.Join(disk, "mlflow.bolt"),
		"artifacts_destination " + arts,
	}})
	expID := str(t, call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "full"}, 200), "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200)
	runID := str(t, run, "run", "info", "run_id")
	root := strings.TrimPrefix(str(t, run, "run", "info", "artifact_uri"), "mlflow-artifacts:/")
	filler := fill(t, disk)

	full := func(what string, resp *http.Response, body []byte) {
		t.Helper()
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"message"`
		}
		if resp.StatusCode != http.StatusInsufficientStorage || json.Unmarshal(body, &e) != nil ||
			e.Code != "RESOURCE_EXHAUSTED" || !strings.Contains(e.Message, "storage is full") {
			t.Fatalf("%s on a full disk = %d %s, want 507 RESOURCE_EXHAUSTED", what, resp.StatusCode, body)
		}
	}
	// An upload bigger than what is left.
	resp, body := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+root+"/big.bin", bytes.Repeat([]byte("x"), 1<<20))
	full("artifact upload", resp, body)
	// Tracking writes until bbolt needs a page it cannot write.
	var last *http.Response
	var lastBody []byte
	for i := 0; i < 200; i++ {
		params := make([]obj, 100)
		for j := range params {
			params[j] = obj{"key": "p" + itoa(i) + "_" + itoa(j), "value": strings.Repeat("v", 6000)}
		}
		last, lastBody = srv.Do(t, http.MethodPost, "/api/2.0/mlflow/runs/log-batch", obj{"run_id": runID, "params": params})
		if last.StatusCode != 200 {
			break
		}
	}
	full("log-batch", last, lastBody)
	// No temporary file of the failed upload is left behind.
	out, _ := exec.Command("find", arts, "-name", ".mlflow-upload-*").Output()
	if len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("temporary files left after failed uploads: %s", out)
	}
	// Space again: both work.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if resp, body := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+root+"/big.bin", bytes.Repeat([]byte("x"), 1<<20)); resp.StatusCode != 200 {
		t.Fatalf("upload after freeing space = %d %s", resp.StatusCode, body)
	}
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/log-parameter", obj{"run_id": runID, "key": "after", "value": "ok"}, 200)
}
