package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
)

// OTLP/HTTP span ingestion (POST /v1/traces), as MLflow 3.4+ serves it
// (mlflow/server/otel_api.py, export_traces): an ExportTraceServiceRequest in
// protobuf or JSON, optionally gzip- or deflate-compressed, whose spans are
// stored as MLflow traces in the experiment named by the
// x-mlflow-experiment-id header.
//
// Answers follow MLflow's FastAPI endpoint wherever it is defined, then
// OTLP/HTTP for what is ours alone:
//
//   - success: 200 with an ExportTraceServiceResponse in the request's
//     encoding (MLflow always answers protobuf; OTLP/HTTP wants the
//     request's encoding, and for protobuf requests the two agree);
//   - no x-mlflow-experiment-id header: 422 with FastAPI's validation
//     body ({"detail": [{"type": "missing", "loc": ["header", ...], ...}]}),
//     checked first as FastAPI resolves headers before the handler runs;
//     an empty one is INVALID_PARAMETER_VALUE, as the gateway answers it;
//   - a body refused before it reaches the store (otlpspans.Error): an
//     unsupported content type, content encoding, an undecodable or empty
//     body, a span MLflow could not convert, our nesting bound: OTLP/HTTP's
//     answer, 415 for the content type and 400 for the rest, with a
//     google.rpc.Status body (INVALID_ARGUMENT) in the request's encoding
//     (JSON when the content type is unknown). The messages are
//     export_traces' and decompress_otlp_body's; MLflow answers these
//     with FastAPI's {"detail"} (and 400/422), which no OTLP exporter reads;
//   - a store refusal (MlflowException in export_traces: experiment
//     missing or deleted, invalid value, database unavailable): MLflow's
//     {"error_code", "message"} with the code's status, as writeError
//     answers every MLflow API;
//   - any other store failure: logged, 422 {"detail": "Failed to log
//     OpenTelemetry spans"};
//   - our bounds on body size, span count and attribute values (MLflow has
//     none): 413 with a google.rpc.Status in the request's encoding, as
//     OTLP/HTTP specifies;
//   - spans of a trace stored in another experiment: 200 with
//     partial_success (OTLP's answer for refused items; MLflow's
//     export_traces has no per-trace refusal).
//
// OTLP exporters retry 429, 502, 503 and 504 and drop the batch on any
// other status. The only retryable answer here is 503 (no store error
// maps to 429 today): TEMPORARILY_UNAVAILABLE from the store (the database
// is unreachable or timed out) and a request canceled mid-write. Every
// refusal of the request itself is a 4xx that resending cannot change; an
// INTERNAL_ERROR (500) or a full disk (507) is final for the exporter too.
// Authorization failures (401, 403, and the gateway's refusal of a request
// naming no experiment) are answered by the gateway before this handler.

// OTLPExperimentHeader is the header naming the experiment spans go to
// (MLflow's MLFLOW_EXPERIMENT_ID_HEADER). The gateway authorizes the same
// value the handler uses: the header's first value.
const OTLPExperimentHeader = "X-Mlflow-Experiment-Id"

// OTLPExperimentID returns the experiment an OTLP export names.
func OTLPExperimentID(h http.Header) string { return h.Get(OTLPExperimentHeader) }

// google.rpc.Code values of the google.rpc.Status bodies: INVALID_ARGUMENT
// for a refused body, RESOURCE_EXHAUSTED for our 413 bounds.
const (
	rpcInvalidArgument   = 3
	rpcResourceExhausted = 8
)

// otlpMissingHeader is FastAPI's 422 body for a required header that is
// absent (pydantic 2's "missing" error), as MLflow's export_traces declares
// x-mlflow-experiment-id with Header(...).
var otlpMissingHeader = []byte(`{"detail":[{"type":"missing","loc":["header","x-mlflow-experiment-id"],"msg":"Field required","input":null}]}`)

// otlpLogFailed is export_traces' detail for a store failure that is not
// an MlflowException.
const otlpLogFailed = "Failed to log OpenTelemetry spans"

// otlpTraces answers an OTLP/HTTP trace export.
func (s *Server) otlpTraces(w http.ResponseWriter, r *http.Request) error {
	if len(r.Header.Values(OTLPExperimentHeader)) == 0 {
		writeRawJSON(w, http.StatusUnprocessableEntity, otlpMissingHeader)
		return nil
	}
	exp := OTLPExperimentID(r.Header)
	mediaType, err := otlpspans.MediaType(r.Header.Get("Content-Type"))
	if err != nil {
		s.otlpError(w, otlpspans.ContentTypeJSON, err)
		return nil
	}
	if exp == "" {
		// FastAPI lets an empty header through; our store would read ""
		// as the Default experiment. Refused as the gateway refuses it
		// with authentication on.
		s.writeError(w, r, tracking.Errorf(tracking.InvalidParameterValue,
			"Missing value for required parameter '%s'. See the API docs for more information about request parameters.",
			strings.ToLower(OTLPExperimentHeader)))
		return nil
	}
	lim := s.opts.OTLPLimits
	if lim.MaxBodyBytes <= 0 {
		lim.MaxBodyBytes = otlpspans.DefaultLimits.MaxBodyBytes
	}
	if r.ContentLength > lim.MaxBodyBytes {
		s.otlpError(w, mediaType, &otlpspans.Error{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("The request body is larger than %d bytes.", lim.MaxBodyBytes)})
		return nil
	}
	body, err := otlpspans.ReadBody(r.Body, r.Header.Get("Content-Encoding"), lim)
	if err != nil {
		s.otlpError(w, mediaType, err)
		return nil
	}
	req, err := otlpspans.Unmarshal(body, mediaType, lim)
	body = nil
	if err != nil {
		s.otlpError(w, mediaType, err)
		return nil
	}
	batches, err := otlpspans.Convert(req)
	req = nil
	if err != nil {
		s.otlpError(w, mediaType, err)
		return nil
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if len(batches) > 0 {
		rejected, err := s.store.LogSpans(r.Context(), exp, batches)
		if err != nil {
			s.otlpStoreError(w, r, err)
			return nil
		}
		if len(rejected) > 0 {
			n := 0
			refused := make(map[string]bool, len(rejected))
			for _, id := range rejected {
				refused[id] = true
			}
			for _, b := range batches {
				if refused[b.TraceID] {
					n += len(b.Spans)
				}
			}
			resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
				RejectedSpans: int64(n),
				ErrorMessage: fmt.Sprintf("%d trace(s) already exist in another experiment than %s; their spans were not stored: %s",
					len(rejected), exp, joinIDs(rejected, 10)),
			}
		}
	}
	writeOTLP(w, mediaType, http.StatusOK, resp)
	return nil
}

// joinIDs lists at most n ids.
func joinIDs(ids []string, n int) string {
	out := ""
	for i, id := range ids {
		if i == n {
			return out + ", ..."
		}
		if i > 0 {
			out += ", "
		}
		out += id
	}
	return out
}

// otlpError answers a refused request (an otlpspans.Error) as OTLP/HTTP
// says: its status and a google.rpc.Status in the request's encoding,
// RESOURCE_EXHAUSTED for our 413 bounds and INVALID_ARGUMENT otherwise.
func (s *Server) otlpError(w http.ResponseWriter, mediaType string, err error) {
	var oe *otlpspans.Error
	if !errors.As(err, &oe) {
		s.log.Error("internal error in OTLP span export", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, internalError())
		return
	}
	code := int32(rpcInvalidArgument)
	if oe.Status == http.StatusRequestEntityTooLarge {
		code = rpcResourceExhausted
	}
	writeOTLP(w, mediaType, oe.Status, &spb.Status{Code: code, Message: oe.Message})
}

// otlpDetail is the body of FastAPI's HTTPException, which export_traces
// answers for a store failure that is not an MLflow error.
type otlpDetail struct {
	Detail string `json:"detail"`
}

// otlpStoreError answers a failed LogSpans as export_traces does: an MLflow
// error (and our disk-full and canceled-request answers) as MLflow's
// {"error_code", "message"} JSON through writeError, anything else logged
// and answered 422 {"detail": "Failed to log OpenTelemetry spans"}.
func (s *Server) otlpStoreError(w http.ResponseWriter, r *http.Request, err error) {
	if _, ok := tracking.AsError(err); ok || tracking.IsNoSpace(err) || (errors.Is(err, context.Canceled) && r.Context().Err() != nil) {
		s.writeError(w, r, err)
		return
	}
	s.log.Error("failed to log OpenTelemetry spans", zap.Error(err))
	writeJSON(w, http.StatusUnprocessableEntity, otlpDetail{otlpLogFailed})
}

// writeOTLP writes m in the request's encoding.
func writeOTLP(w http.ResponseWriter, mediaType string, status int, m proto.Message) {
	var b []byte
	var err error
	if mediaType == otlpspans.ContentTypeJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		status, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// storedSpanChunk is how many spans one read of the span store returns.
const storedSpanChunk = 500

// traceMetadataSizeStats is the metadata MLflow's client records the
// trace's size and span count in.
const traceMetadataSizeStats = "mlflow.trace.sizeStats"

// expectedSpans is the span count the client recorded in the trace's size
// stats (0 when unknown): with fewer spans stored, the trace is not fully
// exported yet, as MLflow's SQL store judges it.
func expectedSpans(t *tracking.TraceInfo) int {
	v, ok := t.Metadata(traceMetadataSizeStats)
	if !ok {
		return 0
	}
	var stats struct {
		NumSpans int `json:"num_spans"`
	}
	if json.Unmarshal([]byte(v), &stats) != nil {
		return 0
	}
	return stats.NumSpans
}

// serveStoredTraceData streams a trace's stored spans as its traces.json
// ({"spans": [Span.to_dict, ...]}), as MLflow's get-trace-artifact builds
// it from the tracking store.
func (s *Server) serveStoredTraceData(w http.ResponseWriter, r *http.Request, t *tracking.TraceInfo) error {
	started := false
	err := s.store.TraceSpans(r.Context(), t.RequestID, storedSpanChunk, func(spans []tracking.Span) error {
		for _, sp := range spans {
			if !started {
				h := w.Header()
				h.Set("Content-Type", "application/octet-stream")
				h.Set("Content-Disposition", `attachment; filename="`+tracking.TraceDataFile+`"`)
				h.Set("X-Content-Type-Options", "nosniff")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte(`{"spans": [`))
				started = true
			} else {
				_, _ = w.Write([]byte(", "))
			}
			if _, err := w.Write(sp.Content); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if started {
			// The status is sent: cut the body short so that the client
			// sees invalid JSON rather than a truncated valid document.
			s.log.Error("reading stored spans failed mid-response", zap.String("trace", t.RequestID), zap.Error(err))
			panic(http.ErrAbortHandler)
		}
		return err
	}
	if !started {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="`+tracking.TraceDataFile+`"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"spans": [`))
	}
	_, _ = w.Write([]byte("]}"))
	return nil
}
