// Package otlpspans reads OTLP/HTTP trace exports (ExportTraceServiceRequest
// in protobuf or JSON) into MLflow spans, the way MLflow's OTLP endpoint
// (mlflow/server/otel_api.py, Span.from_otel_proto, translate_span_when_storing
// and the SQL store's log_spans) turns them into traces: the trace id is "tr-"
// and the 32 hex digits of the OTLP trace id, attributes are stored
// JSON-encoded, and each trace's info is derived from its root span and
// MLflow's span attributes.
//
// Every input is bounded: the body (compressed and decompressed), the number
// of spans (counted on the wire before anything is allocated for them) and
// the nesting of attribute values.
package otlpspans

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Content types of OTLP/HTTP bodies.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
)

// Limits bound what one export request may hold.
type Limits struct {
	// MaxBodyBytes caps the request body, before and after decompression.
	MaxBodyBytes int64
	// MaxSpans caps the spans of one request.
	MaxSpans int
	// MaxDepth caps the nesting of attribute values (arrays and key-value
	// lists within each other).
	MaxDepth int
	// MaxValues caps the attribute values (of resources, scopes, spans,
	// events and links, nested ones included) of one request: what the
	// decoded request costs in memory grows with them, not with the body
	// size alone.
	MaxValues int
}

// DefaultLimits are the limits used when a field of Limits is zero: 16 MiB
// bodies, 10,000 spans (the OpenTelemetry SDKs export at most 512 per
// request by default), 32 levels of attribute nesting and 200,000
// attribute values.
var DefaultLimits = Limits{MaxBodyBytes: 16 << 20, MaxSpans: 10000, MaxDepth: 32, MaxValues: 200000}

// LimitsCeiling is the largest value Validate accepts for each limit:
// beyond it a bound no longer protects the server (a body is held whole in
// memory while it is decoded, and every span and value costs memory).
var LimitsCeiling = Limits{MaxBodyBytes: 1 << 30, MaxSpans: 1_000_000, MaxDepth: 100, MaxValues: 10_000_000}

// minBodyBytes is the smallest body limit Validate accepts: one span with
// a few attributes needs a few hundred bytes.
const minBodyBytes = 1 << 10

// Validate refuses negative limits and limits beyond LimitsCeiling (or a
// body limit under 1 KiB); zero fields take DefaultLimits.
func (l Limits) Validate() error {
	check := func(name string, v, low, high int64) error {
		if v == 0 {
			return nil
		}
		if v < low || v > high {
			return fmt.Errorf("OTLP limit %s %d is out of range: it must be between %d and %d (or 0 for the default)", name, v, low, high)
		}
		return nil
	}
	return errors.Join(
		check("max_body_size", l.MaxBodyBytes, minBodyBytes, LimitsCeiling.MaxBodyBytes),
		check("max_spans", int64(l.MaxSpans), 1, int64(LimitsCeiling.MaxSpans)),
		check("max_attribute_values", int64(l.MaxValues), 1, int64(LimitsCeiling.MaxValues)),
		check("max_nesting", int64(l.MaxDepth), 1, int64(LimitsCeiling.MaxDepth)))
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultLimits.MaxBodyBytes
	}
	if l.MaxSpans <= 0 {
		l.MaxSpans = DefaultLimits.MaxSpans
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultLimits.MaxValues
	}
	return l
}

// Error is a request the endpoint refuses and the HTTP status OTLP/HTTP
// prescribes for it: 415 for an unsupported content type, 400 for what
// cannot be decoded or converted (an encoding, an undecodable body, no
// resource spans, a span MLflow's endpoint could not convert), 413 for our
// own bounds on size, span count and attribute values, which MLflow does
// not have. The messages are those of MLflow's endpoint
// (mlflow/server/otel_api.py export_traces). None is a code OTLP
// exporters retry (429, 502, 503, 504): resending cannot succeed.
type Error struct {
	Status  int // 400, 413 or 415
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: 400, Message: fmt.Sprintf(format, args...)}
}

// unconvertible is the 400 for a span MLflow's Span.from_otel_proto could
// not read, with export_traces' message and the reason appended.
func unconvertible(format string, args ...any) *Error {
	return &Error{Status: 400, Message: "Cannot convert OpenTelemetry span to MLflow span: " + fmt.Sprintf(format, args...)}
}

// tooLarge is the 413 for a body over the limit.
func tooLarge(limit int64) *Error {
	return &Error{Status: 413, Message: fmt.Sprintf("The request body is larger than %d bytes.", limit)}
}

// MediaType returns the OTLP encoding named by a Content-Type header
// (parameters such as charset ignored), or OTLP/HTTP's 415 Error with
// MLflow's message (export_traces), where an absent header is "None".
func MediaType(contentType string) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == ContentTypeProtobuf || mt == ContentTypeJSON) {
		return mt, nil
	}
	shown := contentType
	if shown == "" {
		shown = "None"
	}
	return "", &Error{Status: 415, Message: fmt.Sprintf("Invalid Content-Type: %s. Expected: %s or %s", shown, ContentTypeProtobuf, ContentTypeJSON)}
}

// ReadBody reads an export body of at most the limit from r, decompressing
// it per Content-Encoding (gzip, deflate or none).
func ReadBody(r io.Reader, contentEncoding string, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	raw, err := readLimited(r, lim.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	var zr io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(contentEncoding)); enc {
	case "", "identity":
		return raw, nil
	case "gzip":
		g, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, badRequest("Failed to decompress gzip payload")
		}
		zr = g
	case "deflate":
		z, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, badRequest("Failed to decompress deflate payload")
		}
		zr = z
	default:
		return nil, badRequest("Unsupported Content-Encoding: %s", contentEncoding)
	}
	out, err := readLimited(zr, lim.MaxBodyBytes)
	var e *Error
	if errors.As(err, &e) {
		return nil, err
	}
	if err != nil {
		return nil, badRequest("Failed to decompress %s payload", strings.ToLower(contentEncoding))
	}
	return out, nil
}

// readLimited reads r whole, or fails with 413 past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

// Unmarshal decodes an ExportTraceServiceRequest in the given encoding
// (ContentTypeProtobuf or ContentTypeJSON), refusing more spans or deeper
// attribute nesting than the limits allow.
func Unmarshal(body []byte, mediaType string, lim Limits) (*coltracepb.ExportTraceServiceRequest, error) {
	lim = lim.withDefaults()
	// Request > ResourceSpans > ScopeSpans > Span > Event > KeyValue >
	// AnyValue, then up to three messages (KeyValueList, KeyValue,
	// AnyValue) per level of nesting, and one more so that checkValues
	// names the attribute.
	recursion := 8 + 3*lim.MaxDepth
	req := &coltracepb.ExportTraceServiceRequest{}
	if mediaType == ContentTypeJSON {
		// Objects bound what decoding costs: every span, key-value and
		// value is one.
		if n := countJSONObjects(body); n > 2*lim.MaxValues+3*lim.MaxSpans+64 {
			return nil, &Error{Status: 413, Message: fmt.Sprintf(
				"The request holds %d JSON objects, more than the %d attribute values and %d spans one request may hold.",
				n, lim.MaxValues, lim.MaxSpans)}
		}
		fixed, err := hexIDsToBase64(body)
		if err != nil {
			return nil, badRequest("Invalid OpenTelemetry format: %v", err)
		}
		opts := protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: recursion}
		if err := opts.Unmarshal(fixed, req); err != nil {
			return nil, decodeError(err, lim)
		}
		if n := countSpans(req); n > lim.MaxSpans {
			return nil, tooManySpans(n, lim.MaxSpans)
		}
	} else {
		c := wireCounter{maxDepth: lim.MaxDepth, maxValues: lim.MaxValues}
		if err := c.request(body); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, badRequest("Invalid OpenTelemetry format: %v", err)
		}
		if c.spans > lim.MaxSpans {
			return nil, tooManySpans(c.spans, lim.MaxSpans)
		}
		opts := proto.UnmarshalOptions{RecursionLimit: recursion}
		if err := opts.Unmarshal(body, req); err != nil {
			return nil, decodeError(err, lim)
		}
	}
	if len(req.GetResourceSpans()) == 0 {
		return nil, badRequest("Invalid OpenTelemetry format - no spans found")
	}
	if mediaType == ContentTypeJSON {
		// (Protobuf bodies were checked on the wire.)
		if err := checkValues(req, lim.MaxDepth, lim.MaxValues); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// decodeError is the 400 for a body protobuf could not decode.
func decodeError(err error, lim Limits) *Error {
	if strings.Contains(err.Error(), "recursion depth") {
		return badRequest("Invalid OpenTelemetry format: an attribute value is nested more than %d levels deep", lim.MaxDepth)
	}
	return badRequest("Invalid OpenTelemetry format: %v", err)
}

func tooManySpans(n, limit int) *Error {
	return &Error{Status: 413, Message: fmt.Sprintf(
		"The request holds %d spans, more than the %d one request may hold.", n, limit)}
}

func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// wireCounter walks a protobuf ExportTraceServiceRequest without decoding
// it, counting spans and attribute values and checking the nesting of
// values, so that a request over the limits is refused before anything is
// allocated for it.
type wireCounter struct {
	maxDepth, maxValues int
	spans, values       int
}

// OTLP field numbers the counter follows.
const (
	fRequestResourceSpans                            = 1
	fResourceSpansResource, fResourceSpansScopeSpans = 1, 2
	fResourceAttributes                              = 1
	fScopeSpansScope, fScopeSpansSpans               = 1, 2
	fScopeAttributes                                 = 3
	fSpanAttributes, fSpanEvents, fSpanLinks         = 9, 11, 13
	fEventAttributes, fLinkAttributes                = 3, 5
	fKeyValueValue                                   = 2
	fAnyValueArray, fAnyValueKVList                  = 5, 6
	fListValues                                      = 1
)

func (c *wireCounter) request(b []byte) error {
	return walkField(b, fRequestResourceSpans, func(rs []byte) error {
		if err := walkField(rs, fResourceSpansResource, func(r []byte) error {
			return walkField(r, fResourceAttributes, c.keyValue(0))
		}); err != nil {
			return err
		}
		return walkField(rs, fResourceSpansScopeSpans, func(ss []byte) error {
			if err := walkField(ss, fScopeSpansScope, func(sc []byte) error {
				return walkField(sc, fScopeAttributes, c.keyValue(0))
			}); err != nil {
				return err
			}
			return walkField(ss, fScopeSpansSpans, c.span)
		})
	})
}

func (c *wireCounter) span(b []byte) error {
	c.spans++
	if err := walkField(b, fSpanAttributes, c.keyValue(0)); err != nil {
		return err
	}
	if err := walkField(b, fSpanEvents, func(e []byte) error { return walkField(e, fEventAttributes, c.keyValue(0)) }); err != nil {
		return err
	}
	return walkField(b, fSpanLinks, func(l []byte) error { return walkField(l, fLinkAttributes, c.keyValue(0)) })
}

// keyValue counts a KeyValue whose value sits inside level containers.
func (c *wireCounter) keyValue(level int) func([]byte) error {
	return func(b []byte) error {
		c.values++
		if c.values > c.maxValues {
			return &Error{Status: 413, Message: fmt.Sprintf(
				"The request holds more than the %d attribute values one request may hold.", c.maxValues)}
		}
		return walkField(b, fKeyValueValue, c.anyValue(level))
	}
}

// anyValue checks an AnyValue inside level containers: a container at
// level maxDepth would nest values maxDepth+1 deep.
func (c *wireCounter) anyValue(level int) func([]byte) error {
	return func(b []byte) error {
		deeper := func(walk func([]byte) error) func([]byte) error {
			return func(list []byte) error {
				if level >= c.maxDepth {
					return badRequest("Invalid OpenTelemetry format: an attribute value is nested more than %d levels deep", c.maxDepth)
				}
				return walkField(list, fListValues, walk)
			}
		}
		if err := walkField(b, fAnyValueArray, deeper(func(v []byte) error {
			c.values++
			if c.values > c.maxValues {
				return &Error{Status: 413, Message: fmt.Sprintf(
					"The request holds more than the %d attribute values one request may hold.", c.maxValues)}
			}
			return c.anyValue(level + 1)(v)
		})); err != nil {
			return err
		}
		return walkField(b, fAnyValueKVList, deeper(c.keyValue(level+1)))
	}
}

// countJSONObjects counts the objects of a JSON text ('{' outside
// strings), without decoding it.
func countJSONObjects(b []byte) int {
	n := 0
	inString, escaped := false, false
	for _, ch := range b {
		switch {
		case escaped:
			escaped = false
		case inString && ch == '\\':
			escaped = true
		case ch == '"':
			inString = !inString
		case !inString && ch == '{':
			n++
		}
	}
	return n
}

// countWireSpans counts the spans of a protobuf ExportTraceServiceRequest
// by walking its wire format (resource_spans = 1, scope_spans = 2,
// spans = 2) without decoding them.
func countWireSpans(b []byte) (int, error) {
	n := 0
	err := walkField(b, 1, func(rs []byte) error {
		return walkField(rs, 2, func(ss []byte) error {
			return walkField(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// walkField calls fn with the payload of each length-delimited field num of
// the message b, skipping other fields.
func walkField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		fnum, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if fnum == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(fnum, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// hexIDsToBase64 rewrites the hex trace and span ids of an OTLP JSON body
// (OTLP's JSON encoding) as the base64 protobuf's JSON mapping reads, as
// MLflow's endpoint does before parsing.
func hexIDsToBase64(body []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	fix := func(m map[string]any, keys ...string) {
		for _, k := range keys {
			s, ok := m[k].(string)
			if !ok || (len(s) != 32 && len(s) != 16) {
				continue
			}
			if b, err := hex.DecodeString(s); err == nil {
				m[k] = base64.StdEncoding.EncodeToString(b)
			}
		}
	}
	for _, rs := range list(doc, "resourceSpans", "resource_spans") {
		for _, ss := range list(rs, "scopeSpans", "scope_spans") {
			for _, sp := range list(ss, "spans") {
				fix(sp, "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
				for _, l := range list(sp, "links") {
					fix(l, "traceId", "trace_id", "spanId", "span_id")
				}
			}
		}
	}
	return json.Marshal(doc)
}

// list returns the objects of the first of keys holding an array in m.
func list(m map[string]any, keys ...string) []map[string]any {
	for _, k := range keys {
		arr, ok := m[k].([]any)
		if !ok {
			continue
		}
		out := make([]map[string]any, 0, len(arr))
		for _, e := range arr {
			if o, ok := e.(map[string]any); ok {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}
