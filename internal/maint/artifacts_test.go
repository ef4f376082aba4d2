package maint

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestCollectGarbageGCS: the proxied store is a GCS bucket; a deleted
// run's objects go, an active run's stay.
func TestCollectGarbageGCS(t *testing.T) {
	emu := gcstest.Start(t, "arts")
	st, err := gcs.New(bg, gcs.Options{Bucket: "arts", Prefix: "mlflow", Endpoint: emu.URL})
	must(t, err)
	defer st.Close()
	f := newFixture(t)
	exp := f.exp(t, "g")
	mk := func() string {
		r, err := f.s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, StartTime: 1})
		must(t, err)
		p, _ := artifact.URIPath(r.Info.ArtifactURI)
		must(t, st.Put(bg, p+"/model/w.bin", strings.NewReader("w")))
		must(t, st.Put(bg, p+"/log.txt", strings.NewReader("l")))
		return r.Info.RunID
	}
	alive, dead := mk(), mk()
	must(t, f.s.DeleteRun(bg, dead))
	res, err := CollectGarbage(bg, f.s, StoreDeleter(st, nil), GCOptions{}, io.Discard)
	must(t, err)
	if len(res.Runs) != 1 {
		t.Fatalf("%+v", res)
	}
	objs, _, err := emu.Server.ListObjects("arts", "mlflow/", "", false)
	must(t, err)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	if len(names) != 2 || !strings.Contains(strings.Join(names, " "), alive) || strings.Contains(strings.Join(names, " "), dead) {
		t.Fatalf("objects after gc: %v", names)
	}
}

// TestDirectDeleter: run locations outside the proxied store (file: and
// gs://) are deleted where they point; shallow or foreign ones are not.
func TestDirectDeleter(t *testing.T) {
	emu := gcstest.Start(t, "other")
	del := DirectDeleter(emu.URL)
	dir := t.TempDir()
	runDir := filepath.Join(dir, "exp", "run1", "artifacts")
	must(t, os.MkdirAll(filepath.Join(runDir, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(runDir, "sub", "f"), []byte("x"), 0o644))
	keep := filepath.Join(dir, "exp", "run2", "artifacts", "f")
	must(t, os.MkdirAll(filepath.Dir(keep), 0o755))
	must(t, os.WriteFile(keep, []byte("x"), 0o644))

	must(t, del(bg, "file://"+filepath.ToSlash(runDir), "run1"))
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Fatalf("file: location survived: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatal("a neighbour was deleted")
	}
	must(t, del(bg, filepath.Join(dir, "missing", "r", "artifacts"), "r")) // nothing there: fine

	st, err := gcs.New(bg, gcs.Options{Bucket: "other", Endpoint: emu.URL})
	must(t, err)
	defer st.Close()
	must(t, st.Put(bg, "root/1/r1/artifacts/a.txt", strings.NewReader("a")))
	must(t, st.Put(bg, "root/1/r2/artifacts/a.txt", strings.NewReader("a")))
	must(t, del(bg, "gs://other/root/1/r1/artifacts", "r1"))
	objs, _, err := emu.Server.ListObjects("other", "", "", false)
	must(t, err)
	if len(objs) != 1 || objs[0].Name != "root/1/r2/artifacts/a.txt" {
		t.Fatalf("objects: %+v", objs)
	}
	defer func() {
		if _, err := os.Stat(keep); err != nil {
			t.Fatal("a refused location was deleted")
		}
		if objs, _, _ := emu.Server.ListObjects("other", "", "", false); len(objs) != 1 {
			t.Fatal("a refused gs:// location was deleted")
		}
	}()

	for _, uri := range []string{"s3://b/x/r1/artifacts", "file:///", "/", "/top", "gs://other", "gs://other/x", "file://host/a/r1/artifacts",
		"hdfs://x/r1/artifacts", "file://" + filepath.ToSlash(keep) + "?/r1/artifacts", "file://" + filepath.ToSlash(keep) + "#/r1/artifacts",
		"file://" + filepath.ToSlash(filepath.Dir(keep)), "gs://other/root/1/r2/artifacts", "gs://other/root/1/r2/artifacts?/r1/artifacts",
		"file://" + filepath.ToSlash(filepath.Dir(keep)) + "/../../r1/artifacts/.."} {
		if err := del(bg, uri, "r1"); err == nil || !strings.Contains(err.Error(), ErrUnresolvable.Error()) {
			t.Errorf("%s: err = %v, want unresolvable", uri, err)
		}
	}
}

// TestStoreDeleterConfined: a run location in the proxied store that does
// not end in <run id>/artifacts (a crafted experiment location with a
// query string) is left alone.
func TestStoreDeleterConfined(t *testing.T) {
	dir := t.TempDir()
	st, err := artifact.NewLocal(dir)
	must(t, err)
	defer st.Close()
	must(t, st.Put(bg, "1/victim/artifacts/f", strings.NewReader("x")))
	del := StoreDeleter(st, nil)
	for _, uri := range []string{
		"http://h/api/2.0/mlflow-artifacts/artifacts/1/victim?/r1/artifacts",
		"mlflow-artifacts:/1/victim/artifacts",
		"mlflow-artifacts:/",
	} {
		if err := del(bg, uri, "r1"); err == nil || !strings.Contains(err.Error(), ErrUnresolvable.Error()) {
			t.Errorf("%s: err = %v", uri, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "1", "victim", "artifacts", "f")); err != nil {
		t.Fatal("victim deleted")
	}
	must(t, del(bg, "mlflow-artifacts:/1/victim/artifacts", "victim"))
	if _, err := os.Stat(filepath.Join(dir, "1", "victim", "artifacts")); !os.IsNotExist(err) {
		t.Fatal("own location not deleted")
	}
}
