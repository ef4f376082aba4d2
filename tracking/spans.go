package tracking

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
)

// Trace tag and metadata keys of spans stored by the tracking store (MLflow's
// TraceTagKey.SPANS_LOCATION and TraceMetadataKey).
const (
	// TraceTagSpansLocation says where a trace's spans live; the value
	// SpansLocationTrackingStore means in the store (SpanStore), any other
	// value or none means in the traces.json artifact.
	TraceTagSpansLocation = "mlflow.trace.spansLocation"
	// SpansLocationTrackingStore is TraceTagSpansLocation's value for spans
	// kept by the tracking store.
	SpansLocationTrackingStore = "TRACKING_STORE"
	// TraceMetadataTokenUsage is the trace's aggregated token usage (JSON).
	TraceMetadataTokenUsage = "mlflow.trace.tokenUsage"
	// TraceMetadataInfoFinalized marks trace info written by the client's
	// StartTraceV3: span logging then leaves times and token usage alone.
	TraceMetadataInfoFinalized = "mlflow.trace.infoFinalized"
	// TraceMetadataSession is the application session of the trace.
	TraceMetadataSession = "mlflow.trace.session"
	// TraceMetadataUser is the application user of the trace.
	TraceMetadataUser = "mlflow.trace.user"
)

// TokenUsageKeys are the token counts MLflow aggregates over a trace's
// spans (TokenUsageKey.all_keys), in its order.
var TokenUsageKeys = []string{"input_tokens", "output_tokens", "total_tokens",
	"cache_read_input_tokens", "cache_creation_input_tokens"}

// Span is one stored span. Content is the span in MLflow's stored form
// (Span.to_dict: ids in base64, attributes as JSON-encoded values); the
// other fields are the columns MLflow's spans table indexes.
type Span struct {
	TraceID      string          `json:"trace_id"`
	SpanID       string          `json:"span_id"`                  // 16 hex digits
	ParentSpanID string          `json:"parent_span_id,omitempty"` // "" for a root span
	Name         string          `json:"name"`
	Type         string          `json:"type,omitempty"` // mlflow.spanType
	Status       string          `json:"status"`         // UNSET, OK or ERROR
	StartTimeNs  int64           `json:"start_time_unix_nano"`
	EndTimeNs    int64           `json:"end_time_unix_nano,omitempty"`
	Content      json.RawMessage `json:"content"`
}

// SpanBatch is the spans of one trace received in one export, with what
// MLflow derives from them for the trace's info (log_spans).
type SpanBatch struct {
	TraceID string
	Spans   []Span
	// StartMs is the earliest span start; EndMs the latest span end (0
	// when no span has ended).
	StartMs, EndMs int64
	// RootStatus is the trace state the root span gives (OK or ERROR), ""
	// when the batch has no root span.
	RootStatus string
	// RequestPreview and ResponsePreview come from the root span's inputs
	// and outputs ("" when absent).
	RequestPreview, ResponsePreview string
	// TokenUsage is the sum of the spans' mlflow.chat.tokenUsage.
	TokenUsage map[string]int64
	// SessionID and UserID are the first session.id and user.id span
	// attributes.
	SessionID, UserID string
}

// SpanStore is a backend that keeps spans (MLflow 3's log_spans and the
// span side of get_trace).
type SpanStore interface {
	// LogSpans stores the batches' spans (a span already stored under the
	// same trace and span id is replaced) and creates or updates their
	// traces in the existing experiment experimentID, as ApplySpanBatch
	// says, all in one durable write. A batch whose trace exists in another
	// experiment is not stored: its trace id is returned in rejected.
	LogSpans(ctx context.Context, experimentID string, batches []SpanBatch) (rejected []string, err error)
	// TraceSpans calls fn with the stored spans of a trace in chunks of at
	// most chunkSize, root spans first, then by start time. Each chunk is
	// read in its own short transaction. A trace without stored spans
	// yields no chunks and no error.
	TraceSpans(ctx context.Context, traceID string, chunkSize int, fn func([]Span) error) error
}

// SpansInStore reports whether the trace's spans are kept by the store
// rather than in its traces.json artifact.
func (t *TraceInfo) SpansInStore() bool {
	v, _ := t.Tag(TraceTagSpansLocation)
	return v == SpansLocationTrackingStore
}

// ApplySpanBatch creates (t == nil) or updates the info of b's trace as
// MLflow's log_spans does: the request time is the earliest span start and
// the execution time runs to the latest span end (unless the client
// finalized the info), an in-progress or unspecified state takes the root
// span's, empty previews take the root span's, token usage is added up,
// the session and user are set once, and the trace is tagged as having its
// spans in the store. New traces get the artifact location tag.
func ApplySpanBatch(t *TraceInfo, experimentID, artifactLocation string, b *SpanBatch) *TraceInfo {
	if t == nil {
		t = &TraceInfo{RequestID: b.TraceID, ExperimentID: experimentID, TimestampMs: b.StartMs,
			Status: TraceStatusInProgress}
		if b.EndMs != 0 {
			t.ExecutionTimeMs = b.EndMs - b.StartMs
		}
		t.Tags = []Tag{{Key: TraceTagArtifactLocation, Value: artifactLocation}}
	} else {
		_, final := t.Metadata(TraceMetadataInfoFinalized)
		if !final {
			end := t.TimestampMs + t.ExecutionTimeMs
			if b.StartMs < t.TimestampMs {
				t.TimestampMs = b.StartMs
			}
			if b.EndMs != 0 {
				t.ExecutionTimeMs = max(end, b.EndMs) - t.TimestampMs
			}
		}
	}
	if b.RootStatus != "" && (t.Status == TraceStatusInProgress || t.Status == TraceStatusUnspecified) {
		t.Status = b.RootStatus
	}
	if t.RequestPreview == "" {
		t.RequestPreview = b.RequestPreview
	}
	if t.ResponsePreview == "" {
		t.ResponsePreview = b.ResponsePreview
	}
	_, final := t.Metadata(TraceMetadataInfoFinalized)
	old, hasUsage := t.Metadata(TraceMetadataTokenUsage)
	if len(b.TokenUsage) > 0 && (!final || !hasUsage) {
		t.RequestMetadata = setTag(t.RequestMetadata, TraceMetadataTokenUsage, AddTokenUsage(old, b.TokenUsage))
	}
	if _, ok := t.Metadata(TraceMetadataSession); b.SessionID != "" && !ok && !final {
		t.RequestMetadata = setTag(t.RequestMetadata, TraceMetadataSession, b.SessionID)
	}
	if _, ok := t.Metadata(TraceMetadataUser); b.UserID != "" && !ok {
		t.RequestMetadata = setTag(t.RequestMetadata, TraceMetadataUser, b.UserID)
	}
	t.Tags = setTag(t.Tags, TraceTagSpansLocation, SpansLocationTrackingStore)
	return t
}

// AddTokenUsage adds usage to the token usage JSON old (as MLflow's
// update_token_usage: a key present on either side is summed) and returns
// the JSON; an unreadable old value counts as none.
func AddTokenUsage(old string, usage map[string]int64) string {
	cur := map[string]json.Number{}
	if old != "" {
		_ = json.Unmarshal([]byte(old), &cur)
	}
	out := map[string]int64{}
	for _, k := range TokenUsageKeys {
		n, inOld := cur[k]
		add, inNew := usage[k]
		if !inOld && !inNew {
			continue
		}
		v, _ := strconv.ParseInt(string(n), 10, 64)
		out[k] = v + add
	}
	// json.Marshal sorts map keys: the stored text is deterministic.
	b, _ := json.Marshal(out)
	return string(b)
}

func setTag(tags []Tag, key, value string) []Tag {
	for i := range tags {
		if tags[i].Key == key {
			tags[i].Value = value
			return tags
		}
	}
	return append(tags, Tag{Key: key, Value: value})
}

// SortSpans orders spans as MLflow returns them: root spans first, then by
// start time (span id breaking ties).
func SortSpans(spans []Span) {
	sort.SliceStable(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		if (a.ParentSpanID == "") != (b.ParentSpanID == "") {
			return a.ParentSpanID == ""
		}
		if a.StartTimeNs != b.StartTimeNs {
			return a.StartTimeNs < b.StartTimeNs
		}
		return a.SpanID < b.SpanID
	})
}
