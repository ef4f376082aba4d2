package caddymodule

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/spf13/pflag"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
)

// runMLflowCLI runs `caddy mlflow args... --config cfg` in this process and
// returns its standard output and error.
func runMLflowCLI(t *testing.T, cfg string, args ...string) (string, error) {
	t.Helper()
	fs := flag.NewFlagSet("mlflow", flag.ContinueOnError)
	for _, name := range []string{"config", "adapter", "address", "backend_store_uri", "from", "to"} {
		fs.String(name, "", "")
	}
	addMaintFlags(fs)
	pf := pflag.NewFlagSet("mlflow", pflag.ContinueOnError)
	pf.AddGoFlagSet(fs)
	if err := pf.Parse(append([]string{"--config", cfg}, args...)); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	_, err = cmdMLflow(caddycmd.Flags{FlagSet: pf})
	os.Stdout = old
	w.Close()
	return <-done, err
}

// TestGCCLIOnPostgres: `caddy mlflow gc` on a PostgreSQL backend works on
// the database directly (no admin API, servers may run): --older-than,
// --run-ids and --experiment-ids with MLflow's refusals, artifacts of the
// deleted runs removed where they are (the local artifacts_destination, a
// gs:// destination, a gs:// experiment location), active runs untouched,
// abandoned multipart uploads removed.
func TestGCCLIOnPostgres(t *testing.T) {
	ctx := context.Background()
	emu := gcstest.Start(t, "arts", "other")
	// gs:// run locations outside the artifacts_destination are reached
	// with the process's GCS settings, as MLflow's gc does.
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(emu.URL, "http://"))

	for _, dest := range []string{"local", "gs"} {
		t.Run(dest, func(t *testing.T) {
			uri := pgtest.NewDatabase(t)
			t.Setenv("MLFLOW_GC_TEST_DB", uri)
			s, err := pgstore.Open(ctx, uri, pgdb.Options{MaxConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.EnsureDefaultExperiment(ctx, "mlflow-artifacts:/"); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			handler := map[string]any{"handler": "mlflow", "backend_store_uri": "{env.MLFLOW_GC_TEST_DB}"}
			var arts artifact.Store
			if dest == "local" {
				handler["artifacts_destination"] = filepath.Join(dir, "artifacts")
				l, err := artifact.NewLocal(filepath.Join(dir, "artifacts"))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				arts = l
			} else {
				handler["artifacts_destination"] = "gs://arts/mlflow"
				handler["gcs_endpoint"] = emu.URL
				g, err := gcs.New(ctx, gcs.Options{Bucket: "arts", Prefix: "mlflow", Endpoint: emu.URL})
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				arts = g
			}
			cfg := map[string]any{
				"admin": map[string]any{"disabled": true},
				"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s": map[string]any{
					"listen": []string{"127.0.0.1:0"},
					"routes": []any{map[string]any{"handle": []any{handler}}},
				}}}},
			}
			data, _ := json.Marshal(cfg)
			file := filepath.Join(dir, "caddy.json")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			direct, err := gcs.New(ctx, gcs.Options{Bucket: "other", Endpoint: emu.URL})
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close()

			mkExp := func(name, location string) string {
				id, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: dest + "-" + name, ArtifactLocation: location, DefaultArtifactRoot: "mlflow-artifacts:/"})
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			mkRun := func(exp string) string {
				r, err := s.CreateRun(ctx, tracking.CreateRun{ExperimentID: exp, StartTime: 1})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.LogParam(ctx, r.Info.RunID, tracking.Param{Key: "p", Value: "v"}); err != nil {
					t.Fatal(err)
				}
				if p, ok := artifact.URIPath(r.Info.ArtifactURI); ok {
					err = arts.Put(ctx, p+"/model/w.bin", strings.NewReader("w"))
				} else {
					_, p, _ := gcs.ParseURI(r.Info.ArtifactURI)
					err = direct.Put(ctx, p+"/w.bin", strings.NewReader("w"))
				}
				if err != nil {
					t.Fatal(err)
				}
				return r.Info.RunID
			}
			hasArts := func(runID string) bool {
				var names []string
				for _, b := range []string{"arts", "other"} {
					objs, _, _ := emu.Server.ListObjects(b, "", "", false)
					for _, o := range objs {
						names = append(names, o.Name)
					}
				}
				_ = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
					names = append(names, p)
					return nil
				})
				return strings.Contains(strings.Join(names, "\n"), "/"+runID+"/")
			}
			exp := mkExp("e", "")
			onGCS := mkExp("g", "gs://other/exps/"+dest)
			doomed := mkExp("d", "")
			alive, dead, deadGCS, inDoomed := mkRun(exp), mkRun(exp), mkRun(onGCS), mkRun(doomed)
			for _, id := range []string{dead, deadGCS} {
				if err := s.DeleteRun(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteExperiment(ctx, doomed); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{alive, dead, deadGCS, inDoomed} {
				if !hasArts(id) {
					t.Fatalf("run %s has no artifacts to begin with", id)
				}
			}

			// MLflow's refusals, which delete nothing.
			if _, err := runMLflowCLI(t, file, "gc", "--run-ids", alive); err == nil || !strings.Contains(err.Error(), "Run "+alive+" is not in `deleted` lifecycle stage") {
				t.Fatalf("gc of an active run: %v", err)
			}
			if _, err := runMLflowCLI(t, file, "gc", "--older-than", "1d", "--run-ids", dead); err == nil || !strings.Contains(err.Error(), "is not older than the required age") {
				t.Fatalf("gc of a young run: %v", err)
			}
			if _, err := runMLflowCLI(t, file, "gc", "--experiment-ids", exp); err == nil || !strings.Contains(err.Error(), "are not in the deleted lifecycle stage") {
				t.Fatalf("gc of an active experiment: %v", err)
			}
			// --older-than 1d: everything is younger, nothing goes.
			out, err := runMLflowCLI(t, file, "gc", "--older-than", "1d")
			if err != nil || !strings.Contains(out, "Permanently deleted 0 run(s) and 0 experiment(s).") {
				t.Fatalf("gc --older-than 1d: %v\n%s", err, out)
			}

			// --run-ids: that run; deleted experiments are still
			// collected, as MLflow's gc does.
			out, err = runMLflowCLI(t, file, "gc", "--run-ids", dead)
			if err != nil || !strings.Contains(out, "Run with ID "+dead+" has been permanently deleted.") ||
				!strings.Contains(out, "Experiment with ID "+doomed+" has been permanently deleted.") ||
				!strings.Contains(out, "Permanently deleted 2 run(s) and 1 experiment(s).") {
				t.Fatalf("gc --run-ids: %v\n%s", err, out)
			}
			if _, err := s.GetRun(ctx, deadGCS); err != nil {
				t.Fatalf("gc --run-ids deleted another run: %v", err)
			}
			// --experiment-ids: that experiment, and every deleted run.
			doomed2 := mkExp("d2", "")
			inDoomed2 := mkRun(doomed2)
			if err := s.DeleteExperiment(ctx, doomed2); err != nil {
				t.Fatal(err)
			}
			out, err = runMLflowCLI(t, file, "gc", "--experiment-ids", doomed2)
			if err != nil || !strings.Contains(out, "Experiment with ID "+doomed2+" has been permanently deleted.") ||
				!strings.Contains(out, "Run with ID "+inDoomed2+" has been permanently deleted.") ||
				!strings.Contains(out, "Run with ID "+deadGCS+" has been permanently deleted.") {
				t.Fatalf("gc --experiment-ids: %v\n%s", err, out)
			}

			// An abandoned multipart upload, idle for two days.
			mp, ok := arts.(artifact.Multipart)
			if !ok {
				t.Fatalf("%T is not a multipart store", arts)
			}
			upload := strings.Repeat("d", 32)
			if err := mp.CreateUpload(ctx, upload); err != nil {
				t.Fatal(err)
			}
			if _, err := mp.PutPart(ctx, upload, 1, strings.NewReader("part")); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-48 * time.Hour)
			if dest == "local" {
				_ = filepath.Walk(filepath.Join(dir, "artifacts"), func(p string, _ os.FileInfo, err error) error {
					if err == nil {
						_ = os.Chtimes(p, old, old)
					}
					return nil
				})
			} else {
				ageObjects(t, emu.Server, "arts", "mlflow/.mlflow-upload-mpu/", old)
			}
			out, err = runMLflowCLI(t, file, "gc")
			t.Logf("gc:\n%s", out)
			if err != nil || !strings.Contains(out, "Permanently deleted 0 run(s)") ||
				!strings.Contains(out, "Removed 1 abandoned multipart upload(s)") {
				t.Fatalf("gc: %v\n%s", err, out)
			}
			for id, want := range map[string]bool{alive: true, dead: false, deadGCS: false, inDoomed: false, inDoomed2: false} {
				_, err := s.GetRun(ctx, id)
				if (err == nil) != want || hasArts(id) != want {
					t.Errorf("run %s: exists %v (%v), artifacts %v; want %v", id, err == nil, err, hasArts(id), want)
				}
			}
			for _, id := range []string{doomed, doomed2} {
				if _, err := s.GetExperiment(ctx, id); err == nil {
					t.Errorf("the gc'd experiment %s is still there", id)
				}
			}
			if _, err := s.GetExperiment(ctx, exp); err != nil {
				t.Errorf("the active experiment: %v", err)
			}
		})
	}
}

// ageObjects rewrites the objects under prefix with old timestamps.
func ageObjects(t *testing.T, srv *fakestorage.Server, bucket, prefix string, old time.Time) {
	t.Helper()
	objs, _, err := srv.ListObjects(bucket, prefix, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("no object under %s", prefix)
	}
	for _, o := range objs {
		full, err := srv.GetObject(bucket, o.Name)
		if err != nil {
			t.Fatal(err)
		}
		full.Created, full.Updated = old, old
		srv.CreateObject(full)
	}
}
