// Package pyjson writes scalars as Python writes them where MLflow's
// server text depends on it: a float as repr (and json.dumps) writes it,
// and a string as json.dumps writes it with ensure_ascii. The tracking
// API, the search grammar and the validation messages share it.
package pyjson

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf16"
)

// AppendFloat appends f as Python's repr(float) writes it, which is also
// json.dumps' text: the shortest digits that read back as f, in exponent
// form ("1e-05", "1e+16") when the decimal exponent is below -4 or at
// least 16, otherwise in fixed form with at least one decimal ("1.0",
// "0.0001"). The non-finite values are json.dumps' NaN, Infinity and
// -Infinity.
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	var scratch [32]byte
	e := strconv.AppendFloat(scratch[:0], f, 'e', -1, 64) // [-]d[.ddd]e±XX
	exp, _ := strconv.Atoi(string(e[bytes.IndexByte(e, 'e')+1:]))
	if exp < -4 || exp >= 16 {
		return append(b, e...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, '.', '0')
	}
	return b
}

// AppendString appends s as Python's json.dumps writes a str with
// ensure_ascii: in double quotes, with \" \\ \n \r \t \b \f, every other
// character outside ' '..'~' as \uXXXX, and characters beyond the BMP as
// a UTF-16 surrogate pair.
func AppendString(b []byte, s string) []byte {
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
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			b = appendU(appendU(b, r1), r2)
		case r < 0x20 || r >= 0x7f:
			b = appendU(b, r)
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

// appendU appends the \uXXXX escape of a UTF-16 code unit.
func appendU(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}
