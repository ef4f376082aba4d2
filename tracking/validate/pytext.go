package validate

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
)

// This file reproduces the few pieces of Python text formatting that end up
// in MLflow's messages: json.dumps of a string (ensure_ascii), repr of a
// string, str of a float, len of a str and posixpath.normpath.

const hexDigits = "0123456789abcdef"

// pyJSONString returns s as Python's json.dumps(s) writes it with the
// default ensure_ascii=True: printable ASCII as is, '"' and '\\' escaped,
// \b \f \n \r \t in short form, every other code point as \uXXXX (lower-case
// hex) and code points beyond the BMP as a UTF-16 surrogate pair. Bytes that
// are not valid UTF-8 are written as U+FFFD.
func pyJSONString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteByte(byte(r))
		case r > 0xffff:
			r -= 0x10000
			writeU4(&b, 0xd800+(r>>10))
			writeU4(&b, 0xdc00+(r&0x3ff))
		default:
			writeU4(&b, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeU4(b *strings.Builder, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[r>>12&0xf])
	b.WriteByte(hexDigits[r>>8&0xf])
	b.WriteByte(hexDigits[r>>4&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// PyRepr returns repr(s) for a Python str: single quotes unless s holds a
// single quote and no double quote, backslash escapes for the quote, '\\',
// \n \r \t, and \xNN, \uNNNN or \UNNNNNNNN for code points that are not
// printable (str.isprintable, which unicode.IsPrint matches).
func PyRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r < utf8.RuneSelf || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r <= 0xffff:
			b.WriteString(`\u`)
			for sh := 12; sh >= 0; sh -= 4 {
				b.WriteByte(hexDigits[r>>uint(sh)&0xf])
			}
		default:
			b.WriteString(`\U`)
			for sh := 28; sh >= 0; sh -= 4 {
				b.WriteByte(hexDigits[r>>uint(sh)&0xf])
			}
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// pyStrList returns str(list) for a Python list of str: "['a', 'b']".
func pyStrList(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(PyRepr(s))
	}
	b.WriteByte(']')
	return b.String()
}

// pyFloat returns str(v) for a Python float: repr's text ("1.0",
// "0.0001", "1e+16", "1e-05"), with str's "nan", "inf" and "-inf" for the
// values json.dumps spells NaN, Infinity and -Infinity.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return string(pyjson.AppendFloat(nil, v))
}

// runeLen returns len(s) as Python counts it: code points (an invalid UTF-8
// byte counts as one).
func runeLen(s string) int {
	return utf8.RuneCountInString(s)
}

// exceedsRunes reports whether s has more than limit code points, without
// counting when the byte length already settles it.
func exceedsRunes(s string, limit int) bool {
	if len(s) <= limit {
		return false
	}
	return utf8.RuneCountInString(s) > limit
}

// truncateRunes returns the first limit code points of s (s[:limit] in
// Python). It never cuts inside a UTF-8 sequence and does not allocate.
func truncateRunes(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i]
		}
		n++
	}
	return s
}

// normpath is Python's posixpath.normpath.
func normpath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if p[0] == '/' {
		initial = 1
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if c != ".." || (initial == 0 && len(comps) == 0) || (len(comps) > 0 && comps[len(comps)-1] == "..") {
			comps = append(comps, c)
		} else if len(comps) > 0 {
			comps = comps[:len(comps)-1]
		}
	}
	out := strings.Repeat("/", initial) + strings.Join(comps, "/")
	if out == "" {
		return "."
	}
	return out
}
