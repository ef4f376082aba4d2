package pyjson

import (
	"math"
	"testing"
)

// TestAppendFloat checks repr(float) texts taken from CPython.
func TestAppendFloat(t *testing.T) {
	tenth, fifth := 0.1, 0.2
	for _, c := range []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {0.5, "0.5"}, {5, "5.0"},
		{0.0001, "0.0001"}, {1e-05, "1e-05"}, {-2.5e-7, "-2.5e-07"},
		{1234567890123456, "1234567890123456.0"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"},
		{12345678901234567, "1.2345678901234568e+16"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
		{5e-324, "5e-324"}, {123.456, "123.456"}, {tenth + fifth, "0.30000000000000004"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
	} {
		if got := string(AppendFloat([]byte("x"), c.f)); got != "x"+c.want {
			t.Errorf("AppendFloat(%v) = %q, want %q", c.f, got[1:], c.want)
		}
	}
}

// TestAppendString checks json.dumps(s) texts (ensure_ascii) taken from
// CPython.
func TestAppendString(t *testing.T) {
	for s, want := range map[string]string{
		"":                     `""`,
		"plain ~":              `"plain ~"`,
		"tab\tquote\"slash/\\": `"tab\tquote\"slash/\\"`,
		"\n\r\b\f":             `"\n\r\b\f"`,
		"\x00\x1f\x7f":         `"\u0000\u001f\u007f"`,
		"é€":                   `"\u00e9\u20ac"`,
		"😀":                    `"\ud83d\ude00"`,
		"\xff":                 `"\ufffd"`,
	} {
		if got := string(AppendString(nil, s)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}
