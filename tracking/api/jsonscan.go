package api

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/internal/jsonscan"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
)

// This file splits JSON without reflection (on internal/jsonscan). Request bodies are
// split into their top-level fields without decoding the values; the typed
// getters in decode.go decode a value only when a handler asks for it. The
// scanner accepts what Python's json.loads accepts, which is strict JSON
// plus the bare tokens NaN, Infinity and -Infinity (they are kept as raw
// values so that the number getters can refuse them with a 400).

var errSyntax = jsonscan.ErrSyntax

// pyJSON is the grammar of request bodies: Python's json.loads.
var pyJSON = jsonscan.Grammar{MaxDepth: 1001, NonFinite: true}

// field is one member of a JSON object: its decoded name and raw value.
// The name aliases the body when it has no escapes, so that splitting an
// object allocates nothing per field.
type field struct {
	name []byte
	raw  []byte
}

func (f field) key() string { return string(f.name) }

// object is the fields of a JSON object in document order. Lookups take the
// last occurrence of a name, as Python's json.loads does.
type object []field

func (o object) get(name string) ([]byte, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].name) == name {
			return o[i].raw, true
		}
	}
	return nil, false
}

// trimSpace removes surrounding JSON whitespace.
func trimSpace(b []byte) []byte {
	i := jsonscan.SkipSpace(b, 0)
	j := len(b)
	for j > i && jsonscan.IsSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parseJSONValue checks that b holds exactly one JSON value (surrounded by
// optional whitespace) and returns it trimmed.
func parseJSONValue(b []byte) ([]byte, error) {
	end, err := pyJSON.Value(b, 0)
	if err != nil {
		return nil, err
	}
	if jsonscan.SkipSpace(b, end) != len(b) {
		return nil, errSyntax
	}
	return trimSpace(b), nil
}

// parseObject splits a raw JSON object into its fields. raw must be a
// well-formed value (as returned by parseJSONValue or a field of a parsed
// object); anything but an object is an error.
func parseObject(raw []byte) (object, error) {
	obj, end, err := scanObject(trimSpace(raw))
	if err != nil {
		return nil, err
	}
	if end != len(trimSpace(raw)) {
		return nil, errSyntax
	}
	return obj, nil
}

// scanObject splits the object at the start of raw into its fields,
// validating every value, and returns the index just past it.
func scanObject(raw []byte) (object, int, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, 0, errSyntax
	}
	i := jsonscan.SkipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return object{}, i + 1, nil
	}
	obj := make(object, 0, 8)
	for {
		i = jsonscan.SkipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return nil, 0, errSyntax
		}
		j, err := jsonscan.String(raw, i)
		if err != nil {
			return nil, 0, err
		}
		var key []byte
		if bytes.IndexByte(raw[i+1:j-1], '\\') < 0 {
			key = raw[i+1 : j-1]
		} else {
			k, err := decodeString(raw[i:j])
			if err != nil {
				return nil, 0, err
			}
			key = []byte(k)
		}
		i = jsonscan.SkipSpace(raw, j)
		if i >= len(raw) || raw[i] != ':' {
			return nil, 0, errSyntax
		}
		vs := jsonscan.SkipSpace(raw, i+1)
		ve, err := pyJSON.Value(raw, vs)
		if err != nil {
			return nil, 0, err
		}
		obj = append(obj, field{name: key, raw: raw[vs:ve]})
		i = jsonscan.SkipSpace(raw, ve)
		if i >= len(raw) {
			return nil, 0, errSyntax
		}
		if raw[i] == '}' {
			return obj, i + 1, nil
		}
		if raw[i] != ',' {
			return nil, 0, errSyntax
		}
		i++
	}
}

// parseArray splits a raw JSON array into its raw elements.
func parseArray(raw []byte) ([][]byte, error) {
	raw = trimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, errSyntax
	}
	i := jsonscan.SkipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return [][]byte{}, nil
	}
	var out [][]byte
	for {
		vs := jsonscan.SkipSpace(raw, i)
		ve, err := pyJSON.Value(raw, vs)
		if err != nil {
			return nil, err
		}
		out = append(out, raw[vs:ve])
		i = jsonscan.SkipSpace(raw, ve)
		if i >= len(raw) {
			return nil, errSyntax
		}
		if raw[i] == ']' {
			return out, nil
		}
		if raw[i] != ',' {
			return nil, errSyntax
		}
		i++
	}
}

// decodeString decodes a raw JSON string literal (quotes included).
// Unpaired surrogates become U+FFFD.
func decodeString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errSyntax
	}
	s := raw[1 : len(raw)-1]
	// Fast path: no escapes and valid UTF-8.
	simple := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r) // invalid bytes become U+FFFD
			i += size
			continue
		}
		if i+1 >= len(s) {
			return "", errSyntax
		}
		if k := strings.IndexByte(`"\/bfnrt`, s[i+1]); k >= 0 {
			out = append(out, "\"\\/\b\f\n\r\t"[k])
			i += 2
			continue
		}
		switch s[i+1] {
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", errSyntax
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r < 0xdc00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s, i+2); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
						out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errSyntax
		}
	}
	return string(out), nil
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		h := unhex(c)
		if h < 0 {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// jsonKind classifies a raw JSON value by its first byte.
type jsonKind int

const (
	kindInvalid jsonKind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
	kindNonFinite // bare NaN, Infinity or -Infinity (Python-only tokens)
)

func kindOf(raw []byte) jsonKind {
	if len(raw) == 0 {
		return kindInvalid
	}
	switch c := raw[0]; {
	case c == 'n':
		return kindNull
	case c == 't' || c == 'f':
		return kindBool
	case c == '"':
		return kindString
	case c == '[':
		return kindArray
	case c == '{':
		return kindObject
	case c == 'N' || c == 'I' || (c == '-' && len(raw) > 1 && raw[1] == 'I'):
		return kindNonFinite
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	}
	return kindInvalid
}

// pyTypeName is the Python type name json.loads would give the value, for
// MLflow's "Hint: Value was of type '<t>'" messages.
func pyTypeName(raw []byte) string {
	switch kindOf(raw) {
	case kindNull:
		return "NoneType"
	case kindBool:
		return "bool"
	case kindString:
		return "str"
	case kindArray:
		return "list"
	case kindObject:
		return "dict"
	case kindNonFinite:
		return "float"
	case kindNumber:
		for _, c := range raw {
			if c == '.' || c == 'e' || c == 'E' {
				return "float"
			}
		}
		return "int"
	}
	return "str"
}

// pyValueText renders a raw JSON value roughly as Python's json.dumps
// would print it after json.loads, for error messages.
func pyValueText(raw []byte) string {
	if kindOf(raw) == kindString {
		if s, err := decodeString(raw); err == nil {
			return string(pyjson.AppendString(nil, s))
		}
	}
	if len(raw) > 200 {
		return string(raw[:200]) + "..."
	}
	return string(raw)
}
