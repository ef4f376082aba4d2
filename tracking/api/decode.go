package api

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// MaxJSONBodySize is the largest JSON request body the API reads (16 MiB).
// MLflow documents a 1 MB limit for log-batch but does not enforce it;
// legitimate batches of 1000 metrics with long keys stay far below this.
const MaxJSONBodySize = 16 << 20

const apiDocsHint = " See the API docs for more information about request parameters."

// missingValue is MLflow's error for an absent or empty required field.
func missingValue(path string) *tracking.Error {
	return &tracking.Error{
		Code:    tracking.InvalidParameterValue,
		Message: "Missing value for required parameter '" + path + "'." + apiDocsHint,
	}
}

// invalidType is MLflow's error for a field of the wrong JSON type.
func invalidType(path string, v value) *tracking.Error {
	text, typ := v.pyText()
	return &tracking.Error{
		Code: tracking.InvalidParameterValue,
		Message: "Invalid value " + text + " for parameter '" + path + "' supplied:  Hint: Value was of type '" +
			typ + "'." + apiDocsHint,
	}
}

func invalidParam(format string, args ...any) *tracking.Error {
	return tracking.Errorf(tracking.InvalidParameterValue, format, args...)
}

// value is one request field: a raw JSON value from a body, or the values of
// a query-string key.
type value struct {
	raw   []byte   // JSON body value (nil for query values)
	q     []string // query values (nil for JSON values)
	query bool
}

func (v value) pyText() (text, typ string) {
	if v.query {
		return string(pyjson.AppendString(nil, v.q[0])), "str"
	}
	return pyValueText(v.raw), pyTypeName(v.raw)
}

// fields is where a request message's fields are read from: a JSON object
// (a body or a nested message) or a query string.
type fields struct {
	obj   object
	query url.Values
}

// lookup returns the field name. A JSON null counts as absent, as it does
// for protobuf's JSON parser.
func (f *fields) lookup(name string) (value, bool) {
	if f.query != nil {
		vs := f.query[name]
		if len(vs) == 0 {
			return value{}, false
		}
		return value{q: vs, query: true}, true
	}
	raw, ok := f.obj.get(name)
	if !ok || kindOf(raw) == kindNull {
		return value{}, false
	}
	return value{raw: raw}, true
}

// str reads a string field. Numbers are accepted (converted to their text)
// only when numbersOK is set, as MLflow does for experiment ids.
func (f *fields) str(name string) (string, bool, error) {
	return f.strAt(name, name, false)
}

func (f *fields) strAt(name, path string, numbersOK bool) (string, bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return "", false, nil
	}
	s, err := v.toString(path, numbersOK)
	if err != nil {
		return "", true, err
	}
	return s, true, nil
}

// runID reads run_id, falling back to the legacy run_uuid, as MLflow's
// handlers do (`run_id or run_uuid`). Both absent or empty is a missing
// run_id.
func (f *fields) runID() (string, error) {
	id, _, err := f.str("run_id")
	if err != nil {
		return "", err
	}
	if id == "" {
		if id, _, err = f.strAt("run_uuid", "run_uuid", false); err != nil {
			return "", err
		}
	}
	if id == "" {
		return "", missingValue("run_id")
	}
	return id, nil
}

func (f *fields) int64(name string) (int64, bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return 0, false, nil
	}
	n, err := v.toInt64(name)
	return n, true, err
}

func (f *fields) float(name, path string) (float64, bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return 0, false, nil
	}
	x, err := v.toFloat(path)
	return x, true, err
}

// enum reads an enum field given by name or number. An unknown name counts
// as absent (protobuf's JSON parser ignores it); an unknown number is an
// error.
func (f *fields) enum(name string, names map[string]int) (int, bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return 0, false, nil
	}
	var s string
	switch {
	case v.query:
		s = v.q[0]
	case kindOf(v.raw) == kindString:
		s, _ = decodeString(v.raw)
	case kindOf(v.raw) == kindNumber:
		s = string(v.raw)
	default:
		return 0, true, invalidType(name, v)
	}
	if n, ok := names[s]; ok {
		return n, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false, nil // unknown name: ignored
	}
	for _, known := range names {
		if known == n {
			return n, true, nil
		}
	}
	return 0, true, invalidType(name, v)
}

// strList reads a repeated string field: repeated keys in a query string,
// a JSON array of strings in a body. numbersOK accepts numbers as elements.
func (f *fields) strList(name string, numbersOK bool) ([]string, bool, error) {
	v, ok := f.lookup(name)
	if !ok {
		return nil, false, nil
	}
	if v.query {
		return v.q, true, nil
	}
	if kindOf(v.raw) != kindArray {
		return nil, true, invalidType(name, v)
	}
	elems, err := parseArray(v.raw)
	if err != nil {
		return nil, true, invalidType(name, v)
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, err := value{raw: e}.toString(name, numbersOK)
		if err != nil {
			return nil, true, invalidType(name, v)
		}
		out = append(out, s)
	}
	return out, true, nil
}

// array reads a repeated message field of a JSON body: its raw elements.
// In a query string it cannot be given (nested messages are not
// expressible there) and counts as absent.
func (f *fields) array(name string) ([][]byte, bool, error) {
	if f.query != nil {
		return nil, false, nil
	}
	v, ok := f.lookup(name)
	if !ok {
		return nil, false, nil
	}
	if kindOf(v.raw) != kindArray {
		return nil, true, invalidType(name, v)
	}
	elems, err := parseArray(v.raw)
	if err != nil {
		return nil, true, invalidType(name, v)
	}
	return elems, true, nil
}

// message parses a nested message (a JSON object). A non-object is an
// invalid value for path.
func message(raw []byte, path string) (*fields, error) {
	obj, err := parseObject(raw)
	if err != nil {
		return nil, invalidType(path, value{raw: raw})
	}
	return &fields{obj: obj}, nil
}

func (v value) toString(path string, numbersOK bool) (string, error) {
	if v.query {
		return v.q[0], nil
	}
	switch kindOf(v.raw) {
	case kindString:
		s, err := decodeString(v.raw)
		if err != nil {
			return "", invalidType(path, v)
		}
		return s, nil
	case kindNumber:
		if numbersOK {
			return string(v.raw), nil
		}
	}
	return "", invalidType(path, v)
}

func (v value) toInt64(path string) (int64, error) {
	if v.query {
		return parseIntString(v.q[0], path, v)
	}
	switch kindOf(v.raw) {
	case kindString:
		s, err := decodeString(v.raw)
		if err != nil {
			return 0, invalidType(path, v)
		}
		return parseIntString(s, path, v)
	case kindNumber:
		text := string(v.raw)
		if !strings.ContainsAny(text, ".eE") {
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return 0, outOfRange(path, text)
			}
			return n, nil
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, outOfRange(path, text)
		}
		if f != math.Trunc(f) {
			// MLflow's protobuf parse fails on a non-integral number and
			// leaves the field unset, while its schema check (int(x))
			// passes: the request succeeds with the field's default.
			return 0, nil
		}
		if f < -9.223372036854775808e18 || f >= 9.223372036854775808e18 {
			return 0, outOfRange(path, text)
		}
		return int64(f), nil
	case kindNonFinite:
		return 0, nonFinite(path, v.raw)
	}
	return 0, invalidType(path, v)
}

func parseIntString(s, path string, v value) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, outOfRange(path, s)
	}
	return 0, invalidType(path, v)
}

func outOfRange(path, text string) *tracking.Error {
	return invalidParam("Invalid value %s for parameter '%s' supplied: it must be an integer in the 64-bit signed range."+apiDocsHint, text, path)
}

func nonFinite(path string, raw []byte) *tracking.Error {
	return invalidParam("Invalid value %s for parameter '%s' supplied: a bare %s is not valid JSON; send it as the string \"%s\"."+apiDocsHint,
		raw, path, raw, raw)
}

func (v value) toFloat(path string) (float64, error) {
	var s string
	switch {
	case v.query:
		s = v.q[0]
	case kindOf(v.raw) == kindNumber:
		f, err := strconv.ParseFloat(string(v.raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, invalidType(path, v)
		}
		return f, nil
	case kindOf(v.raw) == kindString:
		var err error
		if s, err = decodeString(v.raw); err != nil {
			return 0, invalidType(path, v)
		}
	case kindOf(v.raw) == kindNonFinite:
		return 0, nonFinite(path, v.raw)
	default:
		return 0, invalidType(path, v)
	}
	// Python's float() also accepts surrounding whitespace, "inf", "nan"
	// in any case; protobuf's JSON parser accepts "NaN", "Infinity" and
	// "-Infinity".
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, invalidType(path, v)
	}
	return f, nil
}

// requestFields reads a request message the way MLflow's
// _get_request_message does: a GET with a query string reads the query;
// anything else reads the body as JSON. POST and PUT must declare
// Content-Type application/json. A body that is empty, malformed or not
// an object counts as {}; a JSON string holding JSON is decoded again.
func requestFields(r *http.Request) (*fields, error) {
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		return queryFields(r), nil
	}
	if err := checkJSONContentType(r); err != nil {
		return nil, err
	}
	body, err := readBody(r, MaxJSONBodySize)
	if err != nil {
		return nil, err
	}
	return &fields{obj: bodyObject(body)}, nil
}

// queryFields reads r's query string as werkzeug's request.args: what
// parses, with invalid UTF-8 replaced (validQuery).
func queryFields(r *http.Request) *fields {
	q, _ := url.ParseQuery(r.URL.RawQuery)
	return &fields{query: validQuery(q)}
}

// validQuery decodes a parsed query string's keys and values as UTF-8 with
// each invalid byte replaced by U+FFFD, as werkzeug decodes request.args
// (errors="replace"), so no handler sees invalid UTF-8.
func validQuery(q url.Values) url.Values {
	out := make(url.Values, len(q))
	keys := slices.Sorted(maps.Keys(q)) // keys that meet once valid merge in a fixed order
	for _, k := range keys {
		vs := q[k]
		for i, v := range vs {
			vs[i] = validUTF8(v)
		}
		k = validUTF8(k)
		out[k] = append(out[k], vs...)
	}
	return out
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, r) // an invalid byte decodes as RuneError, width 1
		i += n
	}
	return string(b)
}

// checkJSONContentType is MLflow's _validate_content_type for POST and PUT.
func checkJSONContentType(r *http.Request) error {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return nil
	}
	ct := r.Header.Values("Content-Type")
	if len(ct) == 0 {
		return invalidParam("Bad Request. Content-Type header is missing.")
	}
	media, _, _ := strings.Cut(ct[0], ";")
	if !strings.EqualFold(strings.TrimSpace(media), "application/json") {
		if m, _, err := mime.ParseMediaType(ct[0]); err != nil || m != "application/json" {
			return invalidParam("Bad Request. Content-Type must be one of ['application/json'].")
		}
	}
	return nil
}

// readBody reads at most limit bytes of the request body; a longer body is
// a 400 (never a 5xx: MLflow's client retries those).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, tracking.Errorf(tracking.BadRequest, "Could not read the request body: %v", err)
	}
	if n > limit {
		return nil, bodyTooLarge(limit)
	}
	return buf.Bytes(), nil
}

func bodyTooLarge(limit int64) *tracking.Error {
	return invalidParam("Request body too large: the limit is %d bytes.", limit)
}

// bodyObject turns a request body into its top-level fields, leniently.
func bodyObject(body []byte) object {
	if t := trimSpace(body); len(t) > 0 && t[0] == '{' {
		// The common case: one pass that validates while splitting.
		if obj, err := parseObject(t); err == nil {
			return obj
		}
		return object{}
	}
	raw, err := parseJSONValue(body)
	if err != nil {
		return object{}
	}
	if kindOf(raw) == kindString {
		// Older clients double-encode: a JSON string holding the JSON.
		s, err := decodeString(raw)
		if err != nil {
			return object{}
		}
		if raw, err = parseJSONValue([]byte(s)); err != nil {
			return object{}
		}
	}
	if kindOf(raw) != kindObject {
		return object{}
	}
	obj, err := parseObject(raw)
	if err != nil {
		return object{}
	}
	return obj
}
