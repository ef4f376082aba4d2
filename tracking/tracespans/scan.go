package tracespans

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// A small JSON scanner over a byte slice: it validates a value as
// encoding/json does (same grammar, same nesting limit) and walks values
// already validated without decoding them into maps, so that a span is
// converted by copying its bytes rather than by building Go values.

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

var errSyntax = errors.New("invalid JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanValue validates the JSON value at b[i] (no leading space) and returns
// the index just past it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return 0, errSyntax
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errSyntax
				}
				if i, err = scanString(b, i); err != nil {
					return 0, err
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, errSyntax
				}
				i = skipSpace(b, i+1)
			}
			if i, err = scanValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errSyntax
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errSyntax
			}
			i = skipSpace(b, i+1)
		}
	case c == '"':
		return scanString(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
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

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func scanNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// scanString validates the string literal at b[i] ('"') and returns the
// index just past its closing quote. Bytes that are not UTF-8 are let
// through, as encoding/json does (they decode as U+FFFD).
func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, errSyntax
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return 0, errSyntax
				}
				i += 4
			default:
				return 0, errSyntax
			}
		}
	}
	return 0, errSyntax
}

// valid reports whether b is exactly one JSON value with optional space
// around it, and returns the value without the space.
func valid(b []byte) ([]byte, bool) {
	i := skipSpace(b, 0)
	e, err := scanValue(b, i, 0)
	if err != nil || skipSpace(b, e) != len(b) {
		return nil, false
	}
	return b[i:e], true
}

// The walkers below take values validated by scanValue.

// eachMember calls fn with the raw key literal and the value of each
// member of the object obj, in document order.
func eachMember(obj []byte, fn func(key, value []byte)) {
	i := skipSpace(obj, 1)
	if obj[i] == '}' {
		return
	}
	for {
		ke, _ := scanString(obj, i)
		key := obj[i:ke]
		i = skipSpace(obj, skipSpace(obj, ke)+1)
		ve, _ := scanValue(obj, i, 0)
		fn(key, obj[i:ve])
		i = skipSpace(obj, ve)
		if obj[i] == '}' {
			return
		}
		i = skipSpace(obj, i+1)
	}
}

// eachElement calls fn with each element of the array arr.
func eachElement(arr []byte, fn func(value []byte)) {
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return
	}
	for {
		ve, _ := scanValue(arr, i, 0)
		fn(arr[i:ve])
		i = skipSpace(arr, ve)
		if arr[i] == ']' {
			return
		}
		i = skipSpace(arr, i+1)
	}
}

// unquote decodes a valid string literal as encoding/json does.
func unquote(lit []byte) string { return string(unquoteBytes(lit)) }

// unquoteBytes is unquote's bytes: the literal's body itself when there is
// nothing to decode.
func unquoteBytes(lit []byte) []byte {
	body := lit[1 : len(lit)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return body
	}
	if out, ok := unescapeASCII(body); ok {
		return out
	}
	var s string
	_ = json.Unmarshal(lit, &s)
	return []byte(s)
}

// unescapeASCII decodes a string literal's body made of ASCII and the
// short escapes; ok is false for \u escapes and other bytes, left to
// encoding/json.
func unescapeASCII(body []byte) ([]byte, bool) {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch body[i] {
		case '"', '\\', '/':
			out = append(out, body[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default:
			return nil, false
		}
	}
	return out, true
}

// stringValue is the decoded value of a string literal v; "" when v is not
// a string (as unmarshaling into a string leaves it).
func stringValue(v []byte) string {
	if len(v) == 0 || v[0] != '"' {
		return ""
	}
	return unquote(v)
}

// htmlSafe reports the ASCII bytes encoding/json writes unescaped.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as encoding/json's Marshal writes it (HTML
// characters, U+2028 and U+2029 escaped; bytes that are not UTF-8 as
// U+FFFD).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendLiteral appends the string literal lit re-encoded as
// encoding/json's Marshal would write its value: as it is when it holds
// only characters Marshal leaves alone.
func appendLiteral(dst, lit []byte) []byte {
	for _, c := range lit[1 : len(lit)-1] {
		if c >= utf8.RuneSelf || !htmlSafe[c] {
			return appendString(dst, unquote(lit))
		}
	}
	return append(dst, lit...)
}

// appendFloat appends f as encoding/json writes a float64.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
