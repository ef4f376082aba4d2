package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/zap"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
)

// OTLP/HTTP span ingestion (POST /v1/traces), as MLflow 3.4+ serves it
// (mlflow/server/otel_api.py): an ExportTraceServiceRequest in protobuf or
// JSON, optionally gzip- or deflate-compressed, whose spans are stored as
// MLflow traces in the experiment named by the x-mlflow-experiment-id
// header. Answers are OTLP's: an ExportTraceServiceResponse (with
// partial_success when some traces were refused) or a google.rpc.Status,
// in the request's encoding.

// OTLPExperimentHeader is the header naming the experiment spans go to
// (MLflow's MLFLOW_EXPERIMENT_ID_HEADER). The gateway authorizes the same
// value the handler uses: the header's first value.
const OTLPExperimentHeader = "X-Mlflow-Experiment-Id"

// OTLPExperimentID returns the experiment an OTLP export names.
func OTLPExperimentID(h http.Header) string { return h.Get(OTLPExperimentHeader) }

// gRPC status codes used in OTLP error bodies (google.rpc.Code).
const (
	rpcInvalidArgument   = 3
	rpcNotFound          = 5
	rpcPermissionDenied  = 7
	rpcResourceExhausted = 8
	rpcInternal          = 13
	rpcUnavailable       = 14
)

// otlpTraces answers an OTLP/HTTP trace export.
func (s *Server) otlpTraces(w http.ResponseWriter, r *http.Request) error {
	mediaType, err := otlpspans.MediaType(r.Header.Get("Content-Type"))
	if err != nil {
		// The answer's encoding cannot follow an unknown request type.
		s.otlpError(w, r, otlpspans.ContentTypeJSON, err)
		return nil
	}
	exp := OTLPExperimentID(r.Header)
	if exp == "" {
		s.otlpError(w, r, mediaType, &otlpspans.Error{Status: http.StatusBadRequest,
			Message: "Missing required header: " + "x-mlflow-experiment-id"})
		return nil
	}
	lim := s.opts.OTLPLimits
	if lim.MaxBodyBytes <= 0 {
		lim.MaxBodyBytes = otlpspans.DefaultLimits.MaxBodyBytes
	}
	if r.ContentLength > lim.MaxBodyBytes {
		s.otlpError(w, r, mediaType, &otlpspans.Error{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("The request body is larger than %d bytes.", lim.MaxBodyBytes)})
		return nil
	}
	body, err := otlpspans.ReadBody(r.Body, r.Header.Get("Content-Encoding"), lim)
	if err != nil {
		s.otlpError(w, r, mediaType, err)
		return nil
	}
	req, err := otlpspans.Unmarshal(body, mediaType, lim)
	body = nil
	if err != nil {
		s.otlpError(w, r, mediaType, err)
		return nil
	}
	batches, err := otlpspans.Convert(req)
	req = nil
	if err != nil {
		s.otlpError(w, r, mediaType, err)
		return nil
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if len(batches) > 0 {
		rejected, err := s.store.LogSpans(r.Context(), exp, batches)
		if err != nil {
			s.otlpError(w, r, mediaType, err)
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

// otlpError answers err as a google.rpc.Status: a decoding Error with its
// status, a store error with its MLflow code's status, anything else as a
// logged, detail-free 500.
func (s *Server) otlpError(w http.ResponseWriter, r *http.Request, mediaType string, err error) {
	status, code, msg := http.StatusInternalServerError, rpcInternal, "Internal server error; see the server log."
	var oe *otlpspans.Error
	if errors.As(err, &oe) {
		status, msg = oe.Status, oe.Message
		code = rpcInvalidArgument
		if status == http.StatusRequestEntityTooLarge {
			code = rpcResourceExhausted
		}
	} else if te, ok := tracking.AsError(err); ok {
		status, msg = te.Code.HTTPStatus(), te.Message
		switch {
		case te.Code == tracking.ResourceDoesNotExist:
			code = rpcNotFound
		case te.Code == tracking.PermissionDenied:
			code = rpcPermissionDenied
		case te.Code == tracking.TemporarilyUnavailable:
			code = rpcUnavailable
		case status < 500:
			code = rpcInvalidArgument
		}
		if te.Code == tracking.InternalError {
			s.log.Error("internal error in OTLP span export", zap.Error(err))
		}
	} else if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		status, code, msg = http.StatusServiceUnavailable, rpcUnavailable, "Request canceled."
	} else {
		s.log.Error("internal error in OTLP span export", zap.Error(err))
	}
	writeOTLP(w, mediaType, status, &spb.Status{Code: int32(code), Message: msg})
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
