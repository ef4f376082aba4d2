package tracespans

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/internal/jsonscan"
)

// JSON walking over a byte slice (on internal/jsonscan): it validates a value as
// encoding/json does (same grammar, same nesting limit) and walks values
// already validated without decoding them into maps, so that a span is
// converted by copying its bytes rather than by building Go values.

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

var errSyntax = jsonscan.ErrSyntax

// spanJSON is encoding/json's grammar.
var spanJSON = jsonscan.Grammar{MaxDepth: maxNesting}

// valid reports whether b is exactly one JSON value with optional space
// around it, and returns the value without the space.
func valid(b []byte) ([]byte, bool) {
	i := jsonscan.SkipSpace(b, 0)
	e, err := spanJSON.Value(b, i)
	if err != nil || jsonscan.SkipSpace(b, e) != len(b) {
		return nil, false
	}
	return b[i:e], true
}

// The walkers below take values validated by scanValue.

// eachMember calls fn with the raw key literal and the value of each
// member of the object obj, in document order.
func eachMember(obj []byte, fn func(key, value []byte)) {
	i := jsonscan.SkipSpace(obj, 1)
	if obj[i] == '}' {
		return
	}
	for {
		ke, _ := jsonscan.String(obj, i)
		key := obj[i:ke]
		i = jsonscan.SkipSpace(obj, jsonscan.SkipSpace(obj, ke)+1)
		ve, _ := spanJSON.Value(obj, i)
		fn(key, obj[i:ve])
		i = jsonscan.SkipSpace(obj, ve)
		if obj[i] == '}' {
			return
		}
		i = jsonscan.SkipSpace(obj, i+1)
	}
}

// eachElement calls fn with each element of the array arr.
func eachElement(arr []byte, fn func(value []byte)) {
	i := jsonscan.SkipSpace(arr, 1)
	if arr[i] == ']' {
		return
	}
	for {
		ve, _ := spanJSON.Value(arr, i)
		fn(arr[i:ve])
		i = jsonscan.SkipSpace(arr, ve)
		if arr[i] == ']' {
			return
		}
		i = jsonscan.SkipSpace(arr, i+1)
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
