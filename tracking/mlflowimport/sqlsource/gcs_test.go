package sqlsource_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/artifactsrc"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/sqlsource"
)

// uploadDir puts every file below dir into the emulator's bucket under
// prefix.
func uploadDir(t *testing.T, emu *gcstest.Emulator, bucket, prefix, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		emu.Server.CreateObject(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: prefix + "/" + filepath.ToSlash(rel)},
			Content:     b,
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// client talks to the emulator over HTTP with the JSON API, as
// tracking/artifact/gcs does with an endpoint.
func client(t *testing.T, emu *gcstest.Emulator) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(emu.URL+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func importGCS(t *testing.T, dbPath string, res *artifactsrc.Resolver, dst mlflowimport.Destination, arts string) *mlflowimport.Report {
	t.Helper()
	ctx := context.Background()
	src, err := sqlsource.OpenWith(ctx, "sqlite:///"+dbPath, res)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := mlflowimport.Import(ctx, src, dst, mlflowimport.Options{ArtifactsTo: arts})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestImportGCSArtifactsFrom: --artifacts-from gs://bucket/prefix serves
// the database's mlflow-artifacts:/ locations from a bucket (a real
// HTTP fake-gcs-server); a rerun recognises the copies by their MD5, and
// a destination file of the same size but other content is copied again.
func TestImportGCSArtifactsFrom(t *testing.T) {
	emu := gcstest.Start(t, "src")
	uploadDir(t, emu, "src", "mlartifacts", filepath.Join(importtest.Dir(t), "artifacts"))
	man := importtest.Load(t, "manifest-sqlite.json")
	db := copyDB(t)
	dst := openBolt(t)
	arts := t.TempDir()
	res := func() *artifactsrc.Resolver {
		return &artifactsrc.Resolver{From: "gs://src/mlartifacts", Client: client(t, emu)}
	}
	rep := importGCS(t, db, res(), dst, arts)
	if len(rep.Problems) != 0 || rep.ArtifactFiles != 4 {
		t.Fatalf("import: %+v", rep)
	}
	importtest.Check(t, dst, man, arts)

	var target string
	var size int64
	for _, r := range man.Runs {
		for rel, a := range r.Artifacts {
			target, size = filepath.Join(arts, r.ExperimentID, r.ID, "artifacts", filepath.FromSlash(rel)), a.Size
		}
	}
	junk := make([]byte, size)
	if err := os.WriteFile(target, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	rep = importGCS(t, db, res(), dst, arts)
	if len(rep.Problems) != 0 || rep.ArtifactFiles != 1 || rep.ArtifactsSkipped != 3 || rep.Imported.Runs != 0 {
		t.Fatalf("second import: %+v", rep)
	}
	importtest.Check(t, dst, man, arts)
}

// TestImportGCSLocations: runs whose artifact_uri is a gs:// URI are read
// where it points.
func TestImportGCSLocations(t *testing.T) {
	emu := gcstest.Start(t, "runs-bucket")
	uploadDir(t, emu, "runs-bucket", "deep/prefix", filepath.Join(importtest.Dir(t), "artifacts"))
	dbPath := copyDB(t)
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE runs SET artifact_uri = 'gs://runs-bucket/deep/prefix/' || substr(artifact_uri, length('mlflow-artifacts:/') + 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	man := importtest.Load(t, "manifest-sqlite.json")
	dst := openBolt(t)
	arts := t.TempDir()
	rep := importGCS(t, dbPath, &artifactsrc.Resolver{Client: client(t, emu)}, dst, arts)
	if len(rep.Problems) != 0 || rep.ArtifactFiles != 4 {
		t.Fatalf("import: %+v", rep)
	}
	importtest.Check(t, dst, man, arts)
}
