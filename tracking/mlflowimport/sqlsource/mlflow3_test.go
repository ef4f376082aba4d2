package sqlsource_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/importtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport/sqlsource"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// The fixture database is MLflow 2.12.2's schema, which has no logged
// models, traces, assessments or entity associations. addMLflow3 adds
// those tables BY HAND, with the columns of MLflow 3's
// mlflow/store/tracking/dbmodels/models.py (SqlLoggedModel,
// SqlLoggedModelMetric/Param/Tag, SqlTraceInfo, SqlTraceTag,
// SqlTraceMetadata, SqlAssessments, SqlEntityAssociation; inputs.step),
// and a hand-written logged model, a deleted one, and a trace with its
// data file below the artifacts directory: a stand-in for a database
// MLflow 3 wrote.
const (
	sqlModel   = "m-11111111111111111111111111111111"
	sqlDeleted = "m-22222222222222222222222222222222"
	sqlTrace   = "tr-33333333333333333333333333333333"
	sqlRun     = "c6bf60941b7d421f890ddaa7338dd149"
	sqlExpDir  = "666978747572"
)

func addMLflow3(t *testing.T, dbPath, arts string) {
	t.Helper()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loc := "mlflow-artifacts:/" + sqlExpDir
	for _, q := range []string{
		`ALTER TABLE inputs ADD COLUMN step BIGINT NOT NULL DEFAULT 0`,
		`CREATE TABLE logged_models (model_id VARCHAR(36) NOT NULL PRIMARY KEY, experiment_id INTEGER NOT NULL,
			name VARCHAR(500) NOT NULL, artifact_location VARCHAR(1000) NOT NULL, creation_timestamp_ms BIGINT NOT NULL,
			last_updated_timestamp_ms BIGINT NOT NULL, status INTEGER NOT NULL, lifecycle_stage VARCHAR(32),
			model_type VARCHAR(500), source_run_id VARCHAR(32), status_message VARCHAR(1000))`,
		`CREATE TABLE logged_model_metrics (model_id VARCHAR(36) NOT NULL, metric_name VARCHAR(500) NOT NULL,
			metric_timestamp_ms BIGINT NOT NULL, metric_step BIGINT NOT NULL, metric_value FLOAT, experiment_id INTEGER NOT NULL,
			run_id VARCHAR(32) NOT NULL, dataset_uuid VARCHAR(36), dataset_name VARCHAR(500), dataset_digest VARCHAR(36),
			PRIMARY KEY (model_id, metric_name, metric_timestamp_ms, metric_step, run_id))`,
		`CREATE TABLE logged_model_params (model_id VARCHAR(36) NOT NULL, experiment_id INTEGER NOT NULL,
			param_key VARCHAR(255) NOT NULL, param_value TEXT NOT NULL, PRIMARY KEY (model_id, param_key))`,
		`CREATE TABLE logged_model_tags (model_id VARCHAR(36) NOT NULL, experiment_id INTEGER NOT NULL,
			tag_key VARCHAR(255) NOT NULL, tag_value TEXT NOT NULL, PRIMARY KEY (model_id, tag_key))`,
		`CREATE TABLE trace_info (request_id VARCHAR(50) NOT NULL PRIMARY KEY, experiment_id INTEGER NOT NULL,
			timestamp_ms BIGINT NOT NULL, execution_time_ms BIGINT, status VARCHAR(50) NOT NULL, client_request_id VARCHAR(50),
			request_preview VARCHAR(1000), response_preview VARCHAR(1000))`,
		`CREATE TABLE trace_tags (key VARCHAR(250) NOT NULL, value VARCHAR(8000), request_id VARCHAR(50) NOT NULL,
			PRIMARY KEY (key, request_id))`,
		`CREATE TABLE trace_request_metadata (key VARCHAR(250) NOT NULL, value VARCHAR(8000), request_id VARCHAR(50) NOT NULL,
			PRIMARY KEY (key, request_id))`,
		`CREATE TABLE assessments (assessment_id VARCHAR(50) NOT NULL PRIMARY KEY, trace_id VARCHAR(50) NOT NULL,
			name VARCHAR(250) NOT NULL, assessment_type VARCHAR(50) NOT NULL, value TEXT NOT NULL, error TEXT,
			created_timestamp BIGINT NOT NULL, last_updated_timestamp BIGINT NOT NULL, source_type VARCHAR(50) NOT NULL,
			source_id VARCHAR(250), run_id VARCHAR(32), span_id VARCHAR(50), rationale TEXT, overrides VARCHAR(50),
			valid BOOLEAN NOT NULL, assessment_metadata TEXT)`,
		`CREATE TABLE entity_associations (association_id VARCHAR(36) NOT NULL, source_type VARCHAR(36) NOT NULL,
			source_id VARCHAR(36) NOT NULL, destination_type VARCHAR(36) NOT NULL, destination_id VARCHAR(36) NOT NULL,
			created_time BIGINT, PRIMARY KEY (source_type, source_id, destination_type, destination_id))`,
		`INSERT INTO logged_models VALUES ('` + sqlModel + `', 1, 'sql-model', '` + loc + `/models/` + sqlModel + `/artifacts',
			1700000000000, 1700000001000, 2, 'active', 'agent', '` + sqlRun + `', NULL)`,
		`INSERT INTO logged_models VALUES ('` + sqlDeleted + `', 1, 'gone-model', '` + loc + `/models/` + sqlDeleted + `/artifacts',
			1700000000000, 1700000001000, 3, 'deleted', NULL, NULL, 'upload failed')`,
		`INSERT INTO logged_model_params VALUES ('` + sqlModel + `', 1, 'temperature', '0.2')`,
		`INSERT INTO logged_model_tags VALUES ('` + sqlModel + `', 1, 'team', 'ml')`,
		`INSERT INTO logged_model_metrics VALUES ('` + sqlModel + `', 'score', 1700000000500, 1, 0.5, 1, '` + sqlRun + `', NULL, 'ds', 'd1')`,
		`INSERT INTO logged_model_metrics VALUES ('` + sqlModel + `', 'score', 1700000000600, 2, NULL, 1, '` + sqlRun + `', NULL, NULL, NULL)`,
		`INSERT INTO inputs VALUES ('in-1', 'RUN_INPUT', '` + sqlRun + `', 'MODEL_INPUT', '` + sqlModel + `', 0)`,
		`INSERT INTO inputs VALUES ('out-1', 'RUN_OUTPUT', '` + sqlRun + `', 'MODEL_OUTPUT', '` + sqlModel + `', 4)`,
		`INSERT INTO trace_info VALUES ('` + sqlTrace + `', 1, 1700000002000, 75, 'OK', 'cli-1', 'in', 'out')`,
		`INSERT INTO trace_tags VALUES ('mlflow.artifactLocation', '` + loc + `/traces/` + sqlTrace + `/artifacts', '` + sqlTrace + `')`,
		`INSERT INTO trace_tags VALUES ('mlflow.traceName', 'predict', '` + sqlTrace + `')`,
		`INSERT INTO trace_request_metadata VALUES ('mlflow.sourceRun', '` + sqlRun + `', '` + sqlTrace + `')`,
		`INSERT INTO assessments VALUES ('a-1', '` + sqlTrace + `', 'quality', 'feedback', '0.75', NULL, 1700000003000,
			1700000004000, 'LLM_JUDGE', 'judge-1', NULL, NULL, 'fine', NULL, 1, '{"k": "v"}')`,
		`INSERT INTO assessments VALUES ('a-2', '` + sqlTrace + `', 'expected', 'expectation', '{"answer": 42}', NULL, 1700000005000,
			1700000005000, 'HUMAN', 'bob', NULL, 'span-9', NULL, NULL, 0, NULL)`,
		`INSERT INTO entity_associations VALUES ('a-x', 'trace', '` + sqlTrace + `', 'run', '` + sqlRun + `', 1700000002000)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for p, body := range map[string]string{
		sqlExpDir + "/models/" + sqlModel + "/artifacts/MLmodel":     "model_id: " + sqlModel + "\n",
		sqlExpDir + "/traces/" + sqlTrace + "/artifacts/traces.json": `{"spans": []}`,
	} {
		f := filepath.Join(arts, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// copyArtifacts copies the fixture's artifacts directory.
func copyArtifacts(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "artifacts")
	if out, err := exec.Command("cp", "-a", filepath.Join(importtest.Dir(t), "artifacts"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func testSQLiteMLflow3(t *testing.T, dst mlflowimport.Destination) {
	ctx := context.Background()
	man := importtest.Load(t, "manifest-sqlite.json")
	srcArts := copyArtifacts(t)
	dbPath := copyDB(t)
	addMLflow3(t, dbPath, srcArts)
	arts := t.TempDir()
	run := func() *mlflowimport.Report {
		src, err := sqlsource.Open(ctx, "sqlite:///"+dbPath, srcArts)
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
	rep := run()
	if len(rep.Problems) != 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Imported.LoggedModels != 1 || rep.Imported.Traces != 1 || rep.Imported.Assessments != 2 || rep.ArtifactFiles != 6 {
		t.Fatalf("imported %+v, %d artifact files", rep.Imported, rep.ArtifactFiles)
	}
	importtest.Check(t, dst, man, arts)

	m, err := dst.GetLoggedModel(ctx, sqlModel)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info.Name != "sql-model" || m.Info.Status != tracking.LoggedModelStatusReady || m.Info.ModelType != "agent" ||
		m.Info.SourceRunID != sqlRun || m.Info.ArtifactURI != "mlflow-artifacts:/1/models/"+sqlModel+"/artifacts" ||
		len(m.Info.Tags) != 1 || len(m.Data.Params) != 1 || len(m.Data.Metrics) != 2 {
		t.Fatalf("logged model: %+v", m)
	}
	nan := false
	for _, x := range m.Data.Metrics {
		nan = nan || (math.IsNaN(x.Value) && x.Step == 2)
	}
	if !nan {
		t.Fatalf("logged model metrics: %+v", m.Data.Metrics)
	}
	if _, err := dst.GetLoggedModel(ctx, sqlDeleted); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		t.Fatalf("deleted logged model: %v", err)
	}
	r, err := dst.GetRun(ctx, sqlRun)
	if err != nil || len(r.Inputs.ModelInputs) != 1 || r.Outputs == nil || len(r.Outputs.ModelOutputs) != 1 || r.Outputs.ModelOutputs[0].Step != 4 {
		t.Fatalf("run model io: %+v %v", r, err)
	}
	tr, err := dst.GetTraceInfo(ctx, sqlTrace)
	if err != nil {
		t.Fatal(err)
	}
	var fb, ex, src map[string]any
	if len(tr.Assessments) == 2 {
		_ = json.Unmarshal(tr.Assessments[0].Feedback, &fb)
		_ = json.Unmarshal(tr.Assessments[0].Source, &src)
		_ = json.Unmarshal(tr.Assessments[1].Expectation, &ex)
	}
	if tr.ExecutionTimeMs != 75 || tr.ClientRequestID != "cli-1" || len(tr.LinkedRunIDs) != 1 || tr.LinkedRunIDs[0] != sqlRun ||
		len(tr.Assessments) != 2 || fb["value"] != 0.75 || src["source_type"] != "LLM_JUDGE" || tr.Assessments[0].Metadata["k"] != "v" ||
		ex["value"] == nil || tr.Assessments[1].Valid || tr.Assessments[1].SpanID != "span-9" {
		t.Fatalf("trace: %+v (feedback %v, expectation %v, source %v)", tr, fb, ex, src)
	}
	if loc, _ := tr.Tag(tracking.TraceTagArtifactLocation); loc != "mlflow-artifacts:/1/traces/"+sqlTrace+"/artifacts" {
		t.Fatalf("trace artifact location %q", loc)
	}
	for _, p := range []string{"1/models/" + sqlModel + "/artifacts/MLmodel", "1/traces/" + sqlTrace + "/artifacts/traces.json"} {
		if b, err := os.ReadFile(filepath.Join(arts, filepath.FromSlash(p))); err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}

	before, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	rep = run()
	after, _ := storecopy.Count(ctx, dst, storecopy.ReadOptions{})
	if rep.Imported.Runs != 0 || rep.Imported.LoggedModels != 0 || rep.Imported.Traces != 0 || rep.ArtifactFiles != 0 ||
		rep.SkippedLoggedModels != 1 || rep.SkippedTraces != 1 || before != after {
		t.Fatalf("second import: %+v; %+v -> %+v", rep, before, after)
	}
}

func TestImportSQLiteMLflow3(t *testing.T) { testSQLiteMLflow3(t, openBolt(t)) }

func TestImportSQLiteMLflow3Postgres(t *testing.T) {
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
	testSQLiteMLflow3(t, s)
}
