package caddymodule_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestGCSArtifactsOverHTTP runs Caddy with artifacts_destination gs://...
// pointed at fake-gcs-server, and logs, lists, downloads (with Range),
// uploads in parts and deletes artifacts the way MLflow's client does.
func TestGCSArtifactsOverHTTP(t *testing.T) {
	emu := gcstest.Start(t, "mlflow-bkt")
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{
		"artifacts_destination gs://mlflow-bkt/team/artifacts",
		"gcs_endpoint " + emu.URL,
	}})

	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "gcs"}, 200)
	expID := str(t, exp, "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200)
	runID := str(t, run, "run", "info", "run_id")
	dir := fmt.Sprintf("%s/%s/artifacts", expID, runID)
	base := "/api/2.0/mlflow-artifacts/artifacts/" + dir

	data := make([]byte, 2<<20+17)
	_, _ = rand.Read(data)
	if resp, body := srv.Do(t, http.MethodPut, base+"/model/weights.bin", data); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	if resp, body := srv.Do(t, http.MethodPut, base+"/notes.txt", "hello gcs"); resp.StatusCode != 200 {
		t.Fatalf("PUT = %d %s", resp.StatusCode, body)
	}
	// The object is where the destination says.
	o, err := emu.Server.GetObject("mlflow-bkt", "team/artifacts/"+dir+"/notes.txt")
	if err != nil || string(o.Content) != "hello gcs" {
		t.Fatalf("emulator object: %v %q", err, o.Content)
	}

	// Tracking-service list and proxy list.
	list := call(t, srv, http.MethodGet, "/api/2.0/mlflow/artifacts/list?run_id="+runID, nil, 200)
	files, _ := list["files"].([]any)
	if len(files) != 2 || fmt.Sprint(files[0]) != "map[is_dir:true path:model]" || fmt.Sprint(files[1]) != "map[file_size:9 is_dir:false path:notes.txt]" {
		t.Fatalf("artifacts/list = %v", list)
	}
	plist := call(t, srv, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts?path="+dir+"/model", nil, 200)
	if fmt.Sprint(plist["files"]) != fmt.Sprintf("[map[file_size:%v is_dir:false path:weights.bin]]", float64(len(data))) {
		t.Fatalf("proxy list = %v", plist)
	}

	// Download whole and by range.
	resp, body := srv.Do(t, http.MethodGet, base+"/model/weights.bin", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET = %d (%d bytes) etag %q", resp.StatusCode, len(body), resp.Header.Get("ETag"))
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+base+"/model/weights.bin", nil)
	req.Header.Set("Range", "bytes=1000000-1000099")
	rr, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rr.Body)
	rr.Body.Close()
	if rr.StatusCode != 206 || rr.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000000-1000099/%d", len(data)) || !bytes.Equal(got, data[1000000:1000100]) {
		t.Fatalf("Range GET = %d %q", rr.StatusCode, rr.Header.Get("Content-Range"))
	}

	// Multipart, as MLflow's client does it, parts PUT with no credentials.
	big := make([]byte, 3<<20+5)
	_, _ = rand.Read(big)
	if err := artifacttest.Upload(srv.Client(), srv.URL, dir, "/tmp/big.ckpt", big, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp, body = srv.Do(t, http.MethodGet, base+"/big.ckpt", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, big) {
		t.Fatalf("multipart result GET = %d (%d bytes)", resp.StatusCode, len(body))
	}
	// Recursive delete.
	if resp, body := srv.Do(t, http.MethodDelete, base+"/model", nil); resp.StatusCode != 200 {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, body)
	}
	plist = call(t, srv, http.MethodGet, "/api/2.0/mlflow-artifacts/artifacts?path="+dir, nil, 200)
	if s := fmt.Sprint(plist["files"]); strings.Contains(s, "model") || !strings.Contains(s, "big.ckpt") || strings.Contains(s, "mlflow-upload") {
		t.Fatalf("after delete: %v", plist)
	}
	objs, _, err := emu.Server.ListObjectsWithOptions("mlflow-bkt", fakestorage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.Name, "/model/") || strings.Contains(o.Name, ".mlflow-upload") {
			t.Errorf("left behind: %s", o.Name)
		}
	}
}
