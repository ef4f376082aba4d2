package sqlsource

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// LoggedModels implements mlflowimport.Source: MLflow 3's logged_models
// with logged_model_tags, logged_model_params and logged_model_metrics
// (every point). Deleted models (lifecycle_stage deleted, which MLflow
// no longer serves) are left out.
func (s *Source) LoggedModels(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.LoggedModel) error) error {
	if s.cols["logged_models"] == nil {
		return nil
	}
	c := func(name string) string { return s.col("logged_models", name) }
	q := fmt.Sprintf(`SELECT model_id, name, artifact_location, creation_timestamp_ms, last_updated_timestamp_ms, status,
		%s, %s, %s, %s FROM logged_models WHERE experiment_id = ? ORDER BY creation_timestamp_ms, model_id`,
		c("lifecycle_stage"), c("model_type"), c("source_run_id"), c("status_message"))
	rows, err := s.db.QueryContext(ctx, q, exp.ExperimentID)
	if err != nil {
		return fmt.Errorf("reading logged models: %w", err)
	}
	var models []*tracking.LoggedModel
	for rows.Next() {
		var m tracking.LoggedModel
		var name, loc, stage, mtype, srcRun, msg sql.NullString
		var ct, ut, status sql.NullInt64
		if err := rows.Scan(&m.Info.ModelID, &name, &loc, &ct, &ut, &status, &stage, &mtype, &srcRun, &msg); err != nil {
			rows.Close()
			return err
		}
		if stage.String == tracking.LifecycleDeleted {
			continue
		}
		m.Info.ExperimentID, m.Info.Name, m.Info.ArtifactURI = exp.ExperimentID, name.String, loc.String
		m.Info.CreationTimestampMs, m.Info.LastUpdatedTimestampMs = ct.Int64, ut.Int64
		m.Info.ModelType, m.Info.SourceRunID, m.Info.StatusMessage = mtype.String, srcRun.String, msg.String
		m.Info.Status = tracking.LoggedModelStatusUnspecified
		if n := status.Int64; n >= 0 && n < int64(len(tracking.LoggedModelStatuses)) {
			m.Info.Status = tracking.LoggedModelStatuses[n]
		}
		models = append(models, &m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range models {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.loggedModelData(ctx, m); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(mlflowimport.Problem{Kind: "logged model", ID: m.Info.ModelID, Err: err})
			continue
		}
		out := &mlflowimport.LoggedModel{Model: m, Artifacts: s.resolve(ctx, "artifact", m.Info.ModelID, m.Info.ArtifactURI, report)}
		if err := fn(out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) loggedModelData(ctx context.Context, m *tracking.LoggedModel) error {
	var err error
	if s.cols["logged_model_tags"] != nil {
		if m.Info.Tags, err = s.kv(ctx, "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?", m.Info.ModelID); err != nil {
			return fmt.Errorf("tags: %w", err)
		}
	}
	if s.cols["logged_model_params"] != nil {
		params, err := s.kv(ctx, "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?", m.Info.ModelID)
		if err != nil {
			return fmt.Errorf("params: %w", err)
		}
		for _, p := range params {
			m.Data.Params = append(m.Data.Params, tracking.Param(p))
		}
	}
	if s.cols["logged_model_metrics"] == nil {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT metric_name, metric_timestamp_ms, metric_step, metric_value, run_id,
		dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id = ?
		ORDER BY metric_name, metric_timestamp_ms, metric_step`, m.Info.ModelID)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		x := tracking.ModelMetric{ModelID: m.Info.ModelID}
		var v sql.NullFloat64
		var run, dname, ddigest sql.NullString
		if err := rows.Scan(&x.Key, &x.Timestamp, &x.Step, &v, &run, &dname, &ddigest); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		// SQLite keeps NaN as NULL.
		x.Value = v.Float64
		if !v.Valid {
			x.Value = math.NaN()
		}
		x.RunID, x.DatasetName, x.DatasetDigest = run.String, dname.String, ddigest.String
		m.Data.Metrics = append(m.Data.Metrics, x)
	}
	return rows.Err()
}

// Traces implements mlflowimport.Source: trace_info with trace_tags,
// trace_request_metadata, assessments and the runs linked through
// entity_associations (trace -> run).
func (s *Source) Traces(ctx context.Context, exp *tracking.Experiment, report func(mlflowimport.Problem), fn func(*mlflowimport.Trace) error) error {
	if s.cols["trace_info"] == nil {
		return nil
	}
	c := func(name string) string { return s.col("trace_info", name) }
	q := fmt.Sprintf(`SELECT request_id, timestamp_ms, execution_time_ms, status, %s, %s, %s
		FROM trace_info WHERE experiment_id = ? ORDER BY timestamp_ms, request_id`,
		c("client_request_id"), c("request_preview"), c("response_preview"))
	rows, err := s.db.QueryContext(ctx, q, exp.ExperimentID)
	if err != nil {
		return fmt.Errorf("reading traces: %w", err)
	}
	var traces []*tracking.TraceInfo
	for rows.Next() {
		t := &tracking.TraceInfo{ExperimentID: exp.ExperimentID}
		var ts, et sql.NullInt64
		var status, client, req, resp sql.NullString
		if err := rows.Scan(&t.RequestID, &ts, &et, &status, &client, &req, &resp); err != nil {
			rows.Close()
			return err
		}
		t.TimestampMs, t.ExecutionTimeMs, t.Status = ts.Int64, et.Int64, status.String
		t.ClientRequestID, t.RequestPreview, t.ResponsePreview = client.String, req.String, resp.String
		if t.Status == "" || t.Status == "STATE_UNSPECIFIED" {
			t.Status = tracking.TraceStatusUnspecified
		}
		traces = append(traces, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range traces {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.traceData(ctx, t); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(mlflowimport.Problem{Kind: "trace", ID: t.RequestID, Err: err})
			continue
		}
		out := &mlflowimport.Trace{Trace: t}
		if loc, ok := t.Tag(tracking.TraceTagArtifactLocation); ok && loc != "" {
			out.Artifacts = s.resolve(ctx, "artifact", t.RequestID, loc, report)
		}
		if err := fn(out); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) traceData(ctx context.Context, t *tracking.TraceInfo) error {
	var err error
	if s.cols["trace_tags"] != nil {
		if t.Tags, err = s.kv(ctx, "SELECT key, value FROM trace_tags WHERE request_id = ?", t.RequestID); err != nil {
			return fmt.Errorf("tags: %w", err)
		}
	}
	if s.cols["trace_request_metadata"] != nil {
		if t.RequestMetadata, err = s.kv(ctx, "SELECT key, value FROM trace_request_metadata WHERE request_id = ?", t.RequestID); err != nil {
			return fmt.Errorf("request metadata: %w", err)
		}
	}
	if s.cols["assessments"] != nil {
		if t.Assessments, err = s.assessments(ctx, t.RequestID); err != nil {
			return fmt.Errorf("assessments: %w", err)
		}
	}
	if s.cols["entity_associations"] != nil {
		links, err := s.kv(ctx, `SELECT destination_id, '' FROM entity_associations
			WHERE source_type = 'trace' AND source_id = ? AND destination_type = 'run'`, t.RequestID)
		if err != nil {
			return fmt.Errorf("linked runs: %w", err)
		}
		for _, l := range links {
			t.LinkedRunIDs = append(t.LinkedRunIDs, l.Key)
		}
	}
	return nil
}

// assessments reads a trace's assessments as SqlAssessments.
// to_mlflow_entity does: value (JSON) becomes the feedback's or the
// expectation's value (an issue's value is the issue itself), error
// the feedback's error, metadata a JSON object.
func (s *Source) assessments(ctx context.Context, traceID string) ([]tracking.Assessment, error) {
	c := func(name string) string { return s.col("assessments", name) }
	q := fmt.Sprintf(`SELECT assessment_id, name, assessment_type, value, error, created_timestamp, last_updated_timestamp,
		source_type, source_id, span_id, rationale, overrides, valid, %s
		FROM assessments WHERE trace_id = ? ORDER BY created_timestamp, assessment_id`, c("assessment_metadata"))
	rows, err := s.db.QueryContext(ctx, q, traceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tracking.Assessment
	for rows.Next() {
		a := tracking.Assessment{TraceID: traceID}
		var typ, value string
		var errJSON, srcType, srcID, span, rationale, overrides, metadata sql.NullString
		var ct, ut sql.NullInt64
		var valid sql.NullBool
		if err := rows.Scan(&a.AssessmentID, &a.AssessmentName, &typ, &value, &errJSON, &ct, &ut, &srcType, &srcID,
			&span, &rationale, &overrides, &valid, &metadata); err != nil {
			return nil, err
		}
		if !json.Valid([]byte(value)) {
			return nil, fmt.Errorf("assessment %s: value is not JSON", a.AssessmentID)
		}
		a.CreateTimeMs, a.LastUpdateTimeMs = ct.Int64, ut.Int64
		a.SpanID, a.Rationale, a.Overrides = span.String, rationale.String, overrides.String
		a.Valid = !valid.Valid || valid.Bool
		src := map[string]string{"source_type": srcType.String}
		if srcID.Valid {
			src["source_id"] = srcID.String
		}
		if a.Source, err = json.Marshal(src); err != nil {
			return nil, err
		}
		switch typ {
		case "feedback":
			fb := map[string]json.RawMessage{"value": json.RawMessage(value)}
			if errJSON.Valid && json.Valid([]byte(errJSON.String)) {
				fb["error"] = json.RawMessage(errJSON.String)
			}
			a.Feedback, _ = json.Marshal(fb)
		case "expectation":
			a.Expectation, _ = json.Marshal(map[string]json.RawMessage{"value": json.RawMessage(value)})
		case "issue":
			a.Issue = json.RawMessage(value)
		default:
			return nil, fmt.Errorf("assessment %s: unknown assessment_type %s", a.AssessmentID, strconv.Quote(typ))
		}
		if metadata.Valid && metadata.String != "" && metadata.String != "null" {
			var md map[string]any
			if err := json.Unmarshal([]byte(metadata.String), &md); err != nil {
				return nil, fmt.Errorf("assessment %s metadata: %w", a.AssessmentID, err)
			}
			a.Metadata = map[string]string{}
			for k, v := range md {
				if s, ok := v.(string); ok {
					a.Metadata[k] = s
				} else {
					b, _ := json.Marshal(v)
					a.Metadata[k] = string(b)
				}
			}
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreateTimeMs < out[j].CreateTimeMs })
	return out, rows.Err()
}
