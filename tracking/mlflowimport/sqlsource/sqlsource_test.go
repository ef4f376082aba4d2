package sqlsource_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/sqlsource"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

func openBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "mlflow.bolt"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureDefaultExperiment(context.Background(), "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	return s
}

// copyDB copies the fixture database to a temporary file.
func copyDB(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(importtest.Dir(t), "mlflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "mlflow.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func importDB(t *testing.T, path string, dst mlflowimport.Destination, opts mlflowimport.Options) *mlflowimport.Report {
	t.Helper()
	ctx := context.Background()
	src, err := sqlsource.Open(ctx, "sqlite:///"+path, filepath.Join(importtest.Dir(t), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := mlflowimport.Import(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestImportSQLite(t *testing.T) {
	man := importtest.Load(t, "manifest-sqlite.json")
	dst := openBolt(t)
	arts := t.TempDir()
	db := copyDB(t)
	rep := importDB(t, db, dst, mlflowimport.Options{ArtifactsTo: arts})
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.Runs != int64(len(man.Runs)) || rep.ArtifactFiles != 4 {
		t.Fatalf("imported %+v, %d artifact files", rep.Imported, rep.ArtifactFiles)
	}
	importtest.Check(t, dst, man, arts)

	ctx := context.Background()
	before, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	rep = importDB(t, db, dst, mlflowimport.Options{ArtifactsTo: arts})
	after, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if rep.Imported.Runs != 0 || rep.SkippedRuns != int64(len(man.Runs)) || rep.ArtifactFiles != 0 || before != after {
		t.Fatalf("second import: %+v; %+v -> %+v", rep, before, after)
	}
}

// TestImportSQLiteOlderRevision drops what later Alembic revisions added
// (experiments' creation/update times, runs' deleted_time, model
// versions' storage_location, aliases and dataset tables) and imports
// what is left: the columns are detected, not assumed.
func TestImportSQLiteOlderRevision(t *testing.T) {
	path := copyDB(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE experiments DROP COLUMN creation_time",
		"ALTER TABLE experiments DROP COLUMN last_update_time",
		"ALTER TABLE runs DROP COLUMN deleted_time",
		"ALTER TABLE model_versions DROP COLUMN storage_location",
		"DROP TABLE registered_model_aliases",
		"DROP TABLE input_tags",
		"DROP TABLE inputs",
		"DROP TABLE datasets",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	man := importtest.Load(t, "manifest-sqlite.json")
	for i := range man.Runs {
		man.Runs[i].Dataset = nil
	}
	for i := range man.Models {
		man.Models[i].Aliases = nil
	}
	dst := openBolt(t)
	rep := importDB(t, path, dst, mlflowimport.Options{})
	if len(rep.Problems) != 0 || rep.Imported.Runs != int64(len(man.Runs)) {
		t.Fatalf("report: %+v", rep)
	}
	importtest.Check(t, dst, man, "")
}

func TestImportSQLitePostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	s, err := pgstore.Open(ctx, uri, pgdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureDefaultExperiment(ctx, "mlflow-artifacts:/"); err != nil {
		t.Fatal(err)
	}
	man := importtest.Load(t, "manifest-sqlite.json")
	arts := t.TempDir()
	rep := importDB(t, copyDB(t), s, mlflowimport.Options{ArtifactsTo: arts})
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	importtest.Check(t, s, man, arts)
}

func TestSQLitePath(t *testing.T) {
	for uri, want := range map[string]string{
		"sqlite:///mlflow.db":          "mlflow.db",
		"sqlite:////srv/mlflow.db":     "/srv/mlflow.db",
		"sqlite:////srv/mlflow.db?x=1": "/srv/mlflow.db",
	} {
		got, err := sqlsource.Path(uri)
		if err != nil || got != want {
			t.Errorf("Path(%q) = %q, %v; want %q", uri, got, err, want)
		}
	}
	if _, err := sqlsource.Path("sqlite://"); err == nil {
		t.Error("Path(sqlite://) succeeded")
	}
}
