package validate

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Limits MLflow 2.22.1 applies (validation.py). Lengths are code points.
const (
	MaxEntityKeyLength          = 250 // metric, param and run tag keys
	MaxParamValueLength         = 6000
	MaxTagValueLength           = 8000 // run tags (and trace tags)
	MaxExperimentNameLength     = 500
	MaxExperimentTagKeyLength   = 250
	MaxExperimentTagValueLength = 5000
	MaxArtifactLocationLength   = 2048 // MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH default

	MaxMetricsPerBatch    = 1000
	MaxParamsTagsPerBatch = 100
	MaxEntitiesPerBatch   = 1000

	MaxDatasetNameLength    = 500
	MaxDatasetDigestLength  = 36
	MaxDatasetSourceLength  = 65535
	MaxDatasetSchemaLength  = 1048575
	MaxDatasetProfileLength = 16777215
	MaxInputTagKeyLength    = 255
	MaxInputTagValueLength  = 500

	maxRunIDTail = 255 // run id: one alphanumeric then up to 255 word chars or '-'
)

const (
	apiDocsHint       = " See the API docs for more information about request parameters."
	badCharacterMsg   = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
	badPathMsgPrefix  = "Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to "
	metricNameEntity  = "Metric name"
	paramKeyEntity    = "Param key"
	invalidParamValue = tracking.InvalidParameterValue
)

// MissingValue is the error MLflow's handlers give for a required field that
// is absent or empty: "Missing value for required parameter '<path>'. See the
// API docs for more information about request parameters."
func MissingValue(path string) *tracking.Error {
	return &tracking.Error{
		Code:    invalidParamValue,
		Message: "Missing value for required parameter '" + path + "'." + apiDocsHint,
	}
}

// invalidValue is MLflow's invalid_value(path, value, message) for a string
// value: `Invalid value "<json>" for parameter '<path>' supplied: <message>`,
// or ending in "supplied." when message is empty.
func invalidValue(path, value, message string) *tracking.Error {
	return invalidValueJSON(path, pyJSONString(value), message)
}

func invalidValueJSON(path, jsonValue, message string) *tracking.Error {
	msg := "Invalid value " + jsonValue + " for parameter '" + path + "' supplied"
	if message == "" {
		msg += "."
	} else {
		msg += ": " + message
	}
	return &tracking.Error{Code: invalidParamValue, Message: msg}
}

// exceedsMaxLength is MLflow's exceeds_maximum_length:
// "'<what>' exceeds the maximum length of <limit> characters".
func exceedsMaxLength(what string, limit int) *tracking.Error {
	return &tracking.Error{
		Code:    invalidParamValue,
		Message: "'" + what + "' exceeds the maximum length of " + strconv.Itoa(limit) + " characters",
	}
}

// joinPath is MLflow's append_to_json_path(elem, field).
func joinPath(elem, field string) string {
	if elem == "" {
		return field
	}
	return elem + "." + field
}

// elemPath names an element of a log-batch list without building the string
// until a message needs it.
type elemPath struct {
	list  string // "metrics", "params", "tags"; "" for a caller-given prefix
	idx   int
	pre   string // the prefix when list is ""
	exact bool   // pre is the whole path: field names are not appended
}

func (e elemPath) field(f string) string {
	switch {
	case e.exact:
		return e.pre
	case e.list == "":
		return joinPath(e.pre, f)
	}
	return e.list + "[" + strconv.Itoa(e.idx) + "]." + f
}

func prefix(elem string) elemPath { return elemPath{pre: elem} }

// nameASCII marks the ASCII bytes Python's [/\w.\- :] accepts.
var nameASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "_/.- :" {
		t[c] = true
	}
	return t
}()

// isWordRune reports whether r matches Python's Unicode-aware \w: '_' and
// the characters for which str.isalnum is true, which are exactly the
// letters (L*) and numbers (N*). Combining marks (M*) do not match.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// stripFinalNewline drops one trailing "\n": Python's `$` also matches just
// before a newline that ends the string, so MLflow's full-match regexes
// accept a single trailing newline.
func stripFinalNewline(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}

// validNameChars reports whether name matches MLflow's (non-Windows)
// ^[/\w.\- :]*$ with Python semantics.
func validNameChars(name string) bool {
	s := stripFinalNewline(name)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !nameASCII[c] {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) { // utf8.RuneError (U+FFFD) is not a letter
			return false
		}
		i += size
	}
	return true
}

// pathUnique is the negation of MLflow's path_not_unique: name equals
// posixpath.normpath(name), is not ".", and does not start with ".." or "/".
// It decides without normalizing: every '/'-separated component must be
// non-empty and neither "." nor "..".
func pathUnique(name string) bool {
	if name == "" || name[0] == '/' || (len(name) >= 2 && name[0] == '.' && name[1] == '.') {
		return false
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		switch name[start:i] {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// checkName applies MLflow's name rules (_validate_param_name,
// _validate_tag_name, _validate_metric_name): a missing key, the character
// class, then path uniqueness. A missing key is reported for the element's
// "key" field, a malformed one for its nameField ("key", or "name" for
// metrics).
func checkName(name string, e elemPath, nameField string) *tracking.Error {
	if name == "" {
		return MissingValue(e.field("key"))
	}
	if !validNameChars(name) {
		return invalidValue(e.field(nameField), name, badCharacterMsg)
	}
	if !pathUnique(name) {
		return invalidValue(e.field(nameField), name, badPathMsgPrefix+PyRepr(normpath(name)))
	}
	return nil
}

// Name checks a metric, param or tag key against MLflow's name rules alone,
// without a length limit: non-empty (else MissingValue(path)), only
// alphanumerics (any script), '_', '-', '.', ' ', ':' and '/', and equal to
// its POSIX-normalized form (not ".", not starting with ".." or "/", no
// empty, "." or ".." components). path names the field in messages. Use it
// for tags whose length limit differs from the run-tag one (registry and
// trace tags check their lengths themselves).
func Name(key, path string) error {
	return errOrNil(checkName(key, elemPath{pre: path, exact: true}, ""))
}

// MetricName checks a metric key: the name rules (bad characters and bad
// paths are reported for parameter elem+"name", as MLflow does; an empty
// key is MissingValue(elem+"key")), then at most 250 code points ("'Metric
// name' exceeds the maximum length of 250 characters").
func MetricName(key, elem string) error {
	return errOrNil(metricName(key, prefix(elem)))
}

func metricName(key string, e elemPath) *tracking.Error {
	if err := checkName(key, e, "name"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxEntityKeyLength) {
		return exceedsMaxLength(metricNameEntity, MaxEntityKeyLength)
	}
	return nil
}

// Metric validates one metric point in MLflow's order (_validate_metric):
// the key's name rules, a timestamp ≥ 0 ("Invalid value -1 for parameter
// 'timestamp' supplied: metric 'm' (value=1.0). Timestamp must be a
// nonnegative long (64-bit integer) "), then the key length. Value and step
// need no check once decoded (NaN and ±Inf are valid values); their presence
// and types are the decoder's business. elem is "" for log-metric.
func Metric(m tracking.Metric, elem string) error {
	return errOrNil(metric(&m, prefix(elem)))
}

func metric(m *tracking.Metric, e elemPath) *tracking.Error {
	if err := checkName(m.Key, e, "name"); err != nil {
		return err
	}
	if m.Timestamp < 0 {
		return invalidValueJSON(e.field("timestamp"), strconv.FormatInt(m.Timestamp, 10),
			"metric '"+m.Key+"' (value="+pyFloat(m.Value)+"). Timestamp must be a nonnegative long (64-bit integer) ")
	}
	if exceedsRunes(m.Key, MaxEntityKeyLength) {
		return exceedsMaxLength(metricNameEntity, MaxEntityKeyLength)
	}
	return nil
}

// ParamName checks a param key: the name rules (reported for parameter
// elem+"key"), then at most 250 code points ("'Param key' exceeds the
// maximum length of 250 characters").
func ParamName(key, elem string) error {
	return errOrNil(paramName(key, prefix(elem)))
}

func paramName(key string, e elemPath) *tracking.Error {
	if err := checkName(key, e, "key"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxEntityKeyLength) {
		return exceedsMaxLength(paramKeyEntity, MaxEntityKeyLength)
	}
	return nil
}

// Param validates a param as MLflow's _validate_param does (ParamName) and
// truncates p.Value in place to 6000 code points, MLflow's default
// (MLFLOW_TRUNCATE_LONG_VALUES=true). elem is "" for log-parameter.
func Param(p *tracking.Param, elem string) error {
	if err := paramName(p.Key, prefix(elem)); err != nil {
		return err
	}
	p.Value = TruncateParamValue(p.Value)
	return nil
}

// TruncateParamValue returns the first 6000 code points of v.
func TruncateParamValue(v string) string { return truncateRunes(v, MaxParamValueLength) }

// TagName checks a run tag key: the name rules (reported for parameter
// elem+"key"), then at most 250 code points ("'key' exceeds the maximum
// length of 250 characters", or "'tags[2].key' ..." in a batch).
func TagName(key, elem string) error {
	return errOrNil(tagName(key, prefix(elem)))
}

func tagName(key string, e elemPath) *tracking.Error {
	if err := checkName(key, e, "key"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxEntityKeyLength) {
		return exceedsMaxLength(e.field("key"), MaxEntityKeyLength)
	}
	return nil
}

// Tag validates a run tag as MLflow's _validate_tag does (TagName) and
// truncates t.Value in place to 8000 code points. elem is "" for set-tag.
// Trace tags follow the same rules with elem "".
func Tag(t *tracking.Tag, elem string) error {
	if err := tagName(t.Key, prefix(elem)); err != nil {
		return err
	}
	t.Value = TruncateTagValue(t.Value)
	return nil
}

// TruncateTagValue returns the first 8000 code points of v.
func TruncateTagValue(v string) string { return truncateRunes(v, MaxTagValueLength) }

// RunID checks a run id against MLflow's ^[a-zA-Z0-9][\w\-]{0,255}$ (Python
// semantics: Unicode \w, one trailing newline tolerated). On failure:
// `Invalid value "<id>" for parameter '<path>' supplied.` MLflow applies it
// only in log-batch and log-inputs; elsewhere a malformed id is simply not
// found (404).
func RunID(id, path string) error {
	s := stripFinalNewline(id)
	ok := s != "" && s[0] < utf8.RuneSelf && isWordRune(rune(s[0])) && s[0] != '_'
	if ok {
		n := 0
		for _, r := range s[1:] {
			n++
			if n > maxRunIDTail || !(r == '-' || isWordRune(r)) {
				ok = false
				break
			}
		}
	}
	if !ok {
		return invalidValue(path, id, "")
	}
	return nil
}

// errOrNil keeps a nil *tracking.Error from becoming a non-nil error.
func errOrNil(e *tracking.Error) error {
	if e == nil {
		return nil
	}
	return e
}
