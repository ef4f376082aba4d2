package api

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small, reflection-free JSON scanner. Request bodies are
// split into their top-level fields without decoding the values; the typed
// getters in decode.go decode a value only when a handler asks for it. The
// scanner accepts what Python's json.loads accepts, which is strict JSON
// plus the bare tokens NaN, Infinity and -Infinity (they are kept as raw
// values so that the number getters can refuse them with a 400).

var errSyntax = errors.New("invalid JSON")

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

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimSpace removes surrounding JSON whitespace.
func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// afterElement reads what follows an object member or array element at
// b[i] (after whitespace): the container's close byte or a comma. It
// returns the index just past it; b[result-1] tells which it was.
func afterElement(b []byte, i int, close byte) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || (b[i] != close && b[i] != ',') {
		return 0, errSyntax
	}
	return i + 1, nil
}

// scanValue returns the index just past the JSON value starting at b[i]
// (after whitespace), or an error.
func scanValue(b []byte, i int, depth int) (int, error) {
	if depth > 1000 {
		return 0, errSyntax
	}
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return 0, errSyntax
			}
			j, err := scanString(b, i)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, j)
			if i >= len(b) || b[i] != ':' {
				return 0, errSyntax
			}
			if i, err = scanValue(b, i+1, depth+1); err != nil {
				return 0, err
			}
			if i, err = afterElement(b, i, '}'); err != nil || b[i-1] == '}' {
				return i, err
			}
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = scanValue(b, i, depth+1); err != nil {
				return 0, err
			}
			if i, err = afterElement(b, i, ']'); err != nil || b[i-1] == ']' {
				return i, err
			}
		}
	case c == '"':
		return scanString(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == 'N':
		return scanLiteral(b, i, "NaN")
	case c == 'I':
		return scanLiteral(b, i, "Infinity")
	case c == '-' && i+1 < len(b) && b[i+1] == 'I':
		return scanLiteral(b, i, "-Infinity")
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	}
	return 0, errSyntax
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, errSyntax
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, errSyntax
		}
	}
	if i == start {
		return 0, errSyntax
	}
	return i, nil
}

// scanString returns the index past the string literal starting at b[i].
func scanString(b []byte, i int) (int, error) {
	i++ // opening quote
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return 0, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, errSyntax
				}
				for _, h := range b[i+2 : i+6] {
					if unhex(h) < 0 {
						return 0, errSyntax
					}
				}
				i += 6
			default:
				return 0, errSyntax
			}
		case c < 0x20:
			return 0, errSyntax // Python's json.loads (strict) refuses raw control characters
		default:
			i++
		}
	}
	return 0, errSyntax
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
	end, err := scanValue(b, 0, 0)
	if err != nil {
		return nil, err
	}
	if skipSpace(b, end) != len(b) {
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
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return object{}, i + 1, nil
	}
	obj := make(object, 0, 8)
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return nil, 0, errSyntax
		}
		j, err := scanString(raw, i)
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
		i = skipSpace(raw, j)
		if i >= len(raw) || raw[i] != ':' {
			return nil, 0, errSyntax
		}
		vs := skipSpace(raw, i+1)
		ve, err := scanValue(raw, vs, 1)
		if err != nil {
			return nil, 0, err
		}
		obj = append(obj, field{name: key, raw: raw[vs:ve]})
		i = skipSpace(raw, ve)
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
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return [][]byte{}, nil
	}
	var out [][]byte
	for {
		vs := skipSpace(raw, i)
		ve, err := scanValue(raw, vs, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, raw[vs:ve])
		i = skipSpace(raw, ve)
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

// appendPyJSONString appends s as Python's json.dumps writes it
// (ensure_ascii=True).
func appendPyJSONString(b []byte, s string) []byte {
	const hexdigits = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			b = append(b, '\\', 'u', hexdigits[r>>12&0xf], hexdigits[r>>8&0xf], hexdigits[r>>4&0xf], hexdigits[r&0xf])
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			for _, x := range []rune{r1, r2} {
				b = append(b, '\\', 'u', hexdigits[x>>12&0xf], hexdigits[x>>8&0xf], hexdigits[x>>4&0xf], hexdigits[x&0xf])
			}
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

// pyValueText renders a raw JSON value roughly as Python's json.dumps
// would print it after json.loads, for error messages.
func pyValueText(raw []byte) string {
	if kindOf(raw) == kindString {
		if s, err := decodeString(raw); err == nil {
			return string(appendPyJSONString(nil, s))
		}
	}
	if len(raw) > 200 {
		return string(raw[:200]) + "..."
	}
	return string(raw)
}

// appendPyFloat appends v as Python's repr(float) writes it.
func appendPyFloat(b []byte, v float64) []byte {
	s := strconv.FormatFloat(v, 'e', -1, 64) // d.ddddde±XX, shortest digits
	if s == "NaN" {
		return append(b, "NaN"...)
	}
	if s == "+Inf" {
		return append(b, "Infinity"...)
	}
	if s == "-Inf" {
		return append(b, "-Infinity"...)
	}
	neg := false
	if s[0] == '-' {
		neg = true
		s = s[1:]
	}
	epos := 0
	for epos < len(s) && s[epos] != 'e' {
		epos++
	}
	mant := s[:epos]
	exp, _ := strconv.Atoi(s[epos+1:])
	digits := make([]byte, 0, len(mant))
	for i := 0; i < len(mant); i++ {
		if mant[i] != '.' {
			digits = append(digits, mant[i])
		}
	}
	if neg {
		b = append(b, '-')
	}
	if exp >= -4 && exp < 16 {
		// Fixed notation.
		if exp >= 0 {
			intLen := exp + 1
			if len(digits) <= intLen {
				b = append(b, digits...)
				for i := len(digits); i < intLen; i++ {
					b = append(b, '0')
				}
				return append(b, '.', '0')
			}
			b = append(b, digits[:intLen]...)
			b = append(b, '.')
			return append(b, digits[intLen:]...)
		}
		b = append(b, '0', '.')
		for i := 0; i < -exp-1; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	b = append(b, digits[0])
	if len(digits) > 1 {
		b = append(b, '.')
		b = append(b, digits[1:]...)
	}
	b = append(b, 'e')
	if exp < 0 {
		b = append(b, '-')
		exp = -exp
	} else {
		b = append(b, '+')
	}
	if exp < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}
