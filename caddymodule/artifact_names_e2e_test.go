package caddymodule_test

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestArtifactNamesThroughCaddy: every name MLflow's clients write (the
// log_image "%step%"/"+step+" names, '#' for '/', histograms) and every
// nasty-but-legal name goes up through a real Caddy, escaped as the Python
// client and as a strict client escape it, is stored and listed under
// MLflow's canonical form of it, and comes back under both forms on every
// route that takes a path; and every attack is
// refused on every such route, with nothing written anywhere.
func TestArtifactNamesThroughCaddy(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	stored := func(rel string) ([]byte, error) {
		return os.ReadFile(filepath.Join(srv.ArtifactsDir, filepath.FromSlash(rel)))
	}
	writtenBy := func(data []byte) []string {
		var found []string
		_ = filepath.WalkDir(filepath.Dir(srv.Dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Equal(b, data) {
					found = append(found, p)
				}
			}
			return nil
		})
		return found
	}
	artifactNames(t, srv, stored, writtenBy)
}

// TestArtifactNamesThroughCaddyGCS is TestArtifactNamesThroughCaddy with
// the artifacts in a GCS bucket (fake-gcs-server): the objects hold
// exactly the names.
func TestArtifactNamesThroughCaddyGCS(t *testing.T) {
	emu := gcstest.Start(t, "names-bkt")
	srv := caddytest.Start(t, caddytest.Options{Directives: []string{
		"artifacts_destination gs://names-bkt/team/artifacts",
		"gcs_endpoint " + emu.URL,
	}})
	stored := func(rel string) ([]byte, error) {
		o, err := emu.Server.GetObject("names-bkt", "team/artifacts/"+rel)
		return o.Content, err
	}
	writtenBy := func(data []byte) []string {
		var found []string
		objs, _, _ := emu.Server.ListObjectsWithOptions("names-bkt", fakestorage.ListOptions{})
		for _, a := range objs {
			if o, err := emu.Server.GetObject("names-bkt", a.Name); err == nil && bytes.Equal(o.Content, data) {
				found = append(found, a.Name)
			}
		}
		return found
	}
	artifactNames(t, srv, stored, writtenBy)
}

// artifactNames is the body of the TestArtifactNamesThroughCaddy tests:
// stored reads the bytes the store holds at a store path, writtenBy finds
// every stored file or object with the given content.
func artifactNames(t *testing.T, srv *caddytest.Server, storedAt func(rel string) ([]byte, error), writtenBy func([]byte) []string) {
	expID := str(t, call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "names"}, 200), "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200)
	runID := str(t, run, "run", "info", "run_id")
	runRoot := strings.TrimPrefix(str(t, run, "run", "info", "artifact_uri"), "mlflow-artifacts:/")
	lm := call(t, srv, http.MethodPost, "/api/2.0/mlflow/logged-models", obj{"experiment_id": expID, "name": "m", "source_run_id": runID}, 200)
	modelID := str(t, lm, "model", "info", "model_id")
	modelRoot := strings.TrimPrefix(str(t, lm, "model", "info", "artifact_uri"), "mlflow-artifacts:/")
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/create", obj{"name": "clf"}, 200)
	mv := call(t, srv, http.MethodPost, "/api/2.0/mlflow/model-versions/create", obj{"name": "clf", "source": "runs:/" + runID + "/model", "run_id": runID}, 200)
	version := str(t, mv, "model_version", "version")

	get := func(target string) (int, []byte) { return artifacttest.RawDo(t, srv.URL, http.MethodGet, target, nil) }
	want := func(what string, st int, b []byte, data string) {
		t.Helper()
		if st != 200 || string(b) != data {
			t.Fatalf("%s = %d %q, want 200 %q", what, st, b, data)
		}
	}
	for i, n := range artifacttest.LegalNames() {
		name, stored := n.Upload, n.Stored
		for enc, esc := range map[string]string{"strict": artifacttest.EscapeStrict(name), "requests": artifacttest.EscapeLikeRequests(name)} {
			prefix := []string{"/api", "/ajax-api"}[i%2]
			data := enc + " " + name
			// mlflow-artifacts upload and download, both prefixes.
			up := prefix + "/2.0/mlflow-artifacts/artifacts/" + runRoot + "/model/" + esc
			if st, b := artifacttest.RawDo(t, srv.URL, http.MethodPut, up, []byte(data)); st != 200 {
				t.Fatalf("PUT %s = %d %s", up, st, b)
			}
			for _, p := range []string{"/api", "/ajax-api"} {
				st, b := get(p + "/2.0/mlflow-artifacts/artifacts/" + runRoot + "/model/" + esc)
				want("download "+p+" "+name, st, b, data)
				// Under the stored name too, as the Python client asks for
				// a listed name.
				st, b = get(p + "/2.0/mlflow-artifacts/artifacts/" + runRoot + "/model/" + artifacttest.EscapeLikeRequests(stored))
				want("download "+p+" stored "+stored, st, b, data)
			}
			q := url.Values{"run_id": {runID}, "path": {"model/" + name}}
			st, b := get("/get-artifact?" + q.Encode())
			want("/get-artifact "+name, st, b, data)
			// Where the name is the whole path, its leading spaces are
			// dropped (as MLflow does): " x" there is "x".
			whole := !strings.HasPrefix(name, " ")
			q = url.Values{"name": {"clf"}, "version": {version}, "path": {name}}
			if whole {
				st, b = get("/model-versions/get-artifact?" + q.Encode())
				want("/model-versions/get-artifact "+name, st, b, data)
			}
			dir, file := path.Split("model/" + stored)
			q = url.Values{"run_id": {runID}, "path": {strings.TrimSuffix(dir, "/")}}
			var list struct {
				Files []struct {
					Path string `json:"path"`
				} `json:"files"`
			}
			if code := srv.JSON(t, http.MethodGet, "/api/2.0/mlflow/artifacts/list?"+q.Encode(), nil, &list); code != 200 {
				t.Fatalf("artifacts/list %s = %d", dir, code)
			}
			found := false
			for _, f := range list.Files {
				found = found || f.Path == dir+file
			}
			if !found {
				t.Fatalf("artifacts/list %s = %v, want %q", dir, list.Files, dir+file)
			}
			// Logged model files.
			up = "/api/2.0/mlflow-artifacts/artifacts/" + modelRoot + "/" + esc
			if st, b := artifacttest.RawDo(t, srv.URL, http.MethodPut, up, []byte(data)); st != 200 {
				t.Fatalf("PUT %s = %d %s", up, st, b)
			}
			q = url.Values{"artifact_file_path": {name}}
			if whole {
				st, b = get("/ajax-api/2.0/mlflow/logged-models/" + modelID + "/artifacts/files?" + q.Encode())
				want("logged model file "+name, st, b, data)
			}
			// The UI's upload-artifact, read back through get-artifact.
			q = url.Values{"run_uuid": {runID}, "path": {"ui/" + name}}
			if st, b := artifacttest.RawDo(t, srv.URL, http.MethodPost, "/ajax-api/2.0/mlflow/upload-artifact?"+q.Encode(), []byte(data)); st != 200 {
				t.Fatalf("upload-artifact %s = %d %s", name, st, b)
			}
			q = url.Values{"run_id": {runID}, "path": {"ui/" + name}}
			st, b = get("/get-artifact?" + q.Encode())
			want("/get-artifact of upload-artifact "+name, st, b, data)
			// Stored under exactly that name.
			if got, err := storedAt(runRoot + "/model/" + stored); err != nil || string(got) != data {
				t.Fatalf("stored file for %q: %q, %v", name, got, err)
			}
		}
	}
	// The detector used at the end finds what was written.
	probe := "probe " + runRoot
	if resp, b := srv.Do(t, http.MethodPut, "/api/2.0/mlflow-artifacts/artifacts/"+runRoot+"/probe.txt", probe); resp.StatusCode != 200 {
		t.Fatalf("probe upload = %d %s", resp.StatusCode, b)
	}
	if w := writtenBy([]byte(probe)); len(w) != 1 {
		t.Fatal("writtenBy finds nothing: the no-write check below would prove nothing")
	}
	// Multipart with MLflow's image names, as the Python client does it.
	for _, n := range artifacttest.MLflowNames {
		name := n.Upload
		dir, file := path.Split(runRoot + "/mpu/" + name)
		data := bytes.Repeat([]byte(name), 3)
		if err := artifacttest.Upload(srv.Client(), srv.URL, strings.TrimSuffix(dir, "/"), "/tmp/x/"+file, data, 16); err != nil {
			t.Fatalf("multipart %s: %v", name, err)
		}
		st, b := get("/api/2.0/mlflow-artifacts/artifacts/" + artifacttest.EscapeStrict(dir+file))
		want("multipart "+name, st, b, string(data))
		if got, err := storedAt(runRoot + "/mpu/" + n.Stored); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("multipart %q: stored under %q: %v", name, n.Stored, err)
		}
	}

	// Attacks, on every route that takes a path.
	refused := func(method, target string, body []byte) {
		t.Helper()
		st, b := artifacttest.RawDo(t, srv.URL, method, target, body)
		if method == http.MethodHead && st == 400 {
			return
		}
		if st == http.StatusPermanentRedirect && (strings.Contains(target, "//") || strings.Contains(strings.ToLower(target), "/%2f")) {
			return // an inner "//" once decoded: Werkzeug's 308 (slashes.go), before any handler
		}
		if !artifacttest.IsInvalidPath(st, b) {
			t.Errorf("%s %s = %d %s, want 400 Invalid path", method, target, st, b)
		}
	}
	mpuBody := []byte(`{"path":"/tmp/f.bin","num_parts":1,"upload_id":"x","parts":[{"part_number":1,"etag":"x"}]}`)
	pwned := []byte("pwned")
	byPath := func(esc string, raw bool) {
		target := artifacttest.RawTarget(esc)
		for _, p := range []string{"/api", "/ajax-api"} {
			for _, base := range []string{"", runRoot + "/"} {
				if raw && base != "" {
					continue
				}
				for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
					refused(m, p+"/2.0/mlflow-artifacts/artifacts/"+base+target, pwned)
				}
				for _, op := range []string{"create", "complete", "abort"} {
					refused(http.MethodPost, p+"/2.0/mlflow-artifacts/mpu/"+op+"/"+base+target, mpuBody)
				}
			}
		}
		dec, err := url.PathUnescape(esc)
		if err != nil {
			return
		}
		queries := map[string]url.Values{
			"/api/2.0/mlflow-artifacts/artifacts":                                 {"path": {dec}},
			"/get-artifact":                                                       {"run_id": {runID}, "path": {dec}},
			"/api/2.0/mlflow/artifacts/list":                                      {"run_id": {runID}, "path": {dec}},
			"/ajax-api/2.0/mlflow/artifacts/list":                                 {"run_id": {runID}, "path": {dec}},
			"/model-versions/get-artifact":                                        {"name": {"clf"}, "version": {version}, "path": {dec}},
			"/ajax-api/2.0/mlflow/logged-models/" + modelID + "/artifacts/files":  {"artifact_file_path": {dec}},
			"/api/2.0/mlflow/logged-models/" + modelID + "/artifacts/directories": {"artifact_directory_path": {dec}},
		}
		for route, q := range queries {
			if strings.HasSuffix(dec, "a/") && !strings.Contains(route, "files") && route != "/get-artifact" && route != "/model-versions/get-artifact" {
				continue // a listing takes a directory with a trailing slash
			}
			refused(http.MethodGet, route+"?"+q.Encode(), nil)
		}
		q := url.Values{"run_uuid": {runID}, "path": {dec}}
		refused(http.MethodPost, "/ajax-api/2.0/mlflow/upload-artifact?"+q.Encode(), pwned)
	}
	for _, esc := range artifacttest.Attacks {
		byPath(esc, false)
	}
	for _, esc := range artifacttest.LeadingAttacks {
		byPath(esc, true)
	}
	// Part URLs: a forged or tampered one writes nothing.
	for _, esc := range append([]string{"..%2f..%2fx/1", "%2e%2e/1", "a/../../1"}, artifacttest.Attacks[:10]...) {
		st, b := artifacttest.RawDo(t, srv.URL, http.MethodPut, "/api/2.0/mlflow-artifacts/mpu/part/"+artifacttest.RawTarget(esc)+"?expires=9999999999&signature=00", pwned)
		if st != 400 && st != 403 && st != 404 {
			t.Errorf("PUT part %s = %d %s, want a refusal", esc, st, b)
		}
	}
	// Nothing an attack sent was written, in the store or next to it.
	if w := writtenBy(pwned); len(w) > 0 {
		t.Errorf("attacks wrote %v", w)
	}
}
