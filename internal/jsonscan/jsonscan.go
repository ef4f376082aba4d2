// Package jsonscan checks JSON text without decoding it: it finds where a
// value, string or number ends, so that callers can split a document into
// raw members, or copy values as bytes, without building Go values. The
// request decoder of the REST API (which must accept what Python's
// json.loads accepts) and the span converter (which follows
// encoding/json) share it through two Grammars.
package jsonscan

import "errors"

// ErrSyntax is the error of every scan of text that is not JSON.
var ErrSyntax = errors.New("invalid JSON")

// Grammar is what Value accepts: strict JSON, nested at most MaxDepth
// arrays and objects deep, plus NaN, Infinity and -Infinity when
// NonFinite is set.
type Grammar struct {
	// MaxDepth is the nesting limit of arrays and objects; a container
	// at this depth (the outermost value is at depth 0) is refused.
	MaxDepth int
	// NonFinite accepts the bare tokens NaN, Infinity and -Infinity, as
	// Python's json.loads does.
	NonFinite bool
}

// IsSpace reports whether c is JSON whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace (len(b) if none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

// Value returns the index just past the JSON value that starts at b[i],
// after optional whitespace.
func (g Grammar) Value(b []byte, i int) (int, error) { return g.value(b, i, 0) }

func (g Grammar) value(b []byte, i, depth int) (int, error) {
	i = SkipSpace(b, i)
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= g.MaxDepth {
			return 0, ErrSyntax
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				i = SkipSpace(b, i)
				if i >= len(b) || b[i] != '"' {
					return 0, ErrSyntax
				}
				if i, err = String(b, i); err != nil {
					return 0, err
				}
				i = SkipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, ErrSyntax
				}
				i++
			}
			if i, err = g.value(b, i, depth+1); err != nil {
				return 0, err
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				return 0, ErrSyntax
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, ErrSyntax
			}
			i++
		}
	case c == '"':
		return String(b, i)
	case c == 't':
		return Literal(b, i, "true")
	case c == 'f':
		return Literal(b, i, "false")
	case c == 'n':
		return Literal(b, i, "null")
	case g.NonFinite && c == 'N':
		return Literal(b, i, "NaN")
	case g.NonFinite && c == 'I':
		return Literal(b, i, "Infinity")
	case g.NonFinite && c == '-' && i+1 < len(b) && b[i+1] == 'I':
		return Literal(b, i, "-Infinity")
	case c == '-' || isDigit(c):
		return Number(b, i)
	}
	return 0, ErrSyntax
}

// Literal returns the index just past lit if b holds it at i.
func Literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, ErrSyntax
	}
	return i + len(lit), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// Number returns the index just past the JSON number that starts at b[i]
// (a '-' or a digit).
func Number(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
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
		return 0, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, ErrSyntax
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
			return 0, ErrSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

// String returns the index just past the string literal that starts at
// b[i] ('"'). Raw control characters are refused (as by Python's strict
// json.loads and by encoding/json); bytes that are not UTF-8 are let
// through, as both do.
func String(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, ErrSyntax
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, ErrSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return 0, ErrSyntax
				}
				i += 4
			default:
				return 0, ErrSyntax
			}
		}
	}
	return 0, ErrSyntax
}
