package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

var corpus = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `-12E+4`, `true`, `false`, `null`,
	` {"a" : [1, 2, {"b": null}], "c": "x\"y\\u00e9\n"} `,
	`{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{1: 2}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`,
	`"unterminated`, "\"raw\ncontrol\"", `"\x"`, `"\u12"`, `"\u12G4"`, `tru`, `nul`,
	`NaN`, `Infinity`, `-Infinity`, `[NaN]`, `{"a": -Infinity}`, `-Inf`, `nan`,
	"\"\xff\xfe\"", `[[[[]]]]`, `{"a":{"b":{"c":[]}}}`, ``, ` `, `[`, `{`, `]`,
}

// Without NonFinite, Value accepts exactly what encoding/json accepts.
func TestValueMatchesEncodingJSON(t *testing.T) {
	g := Grammar{MaxDepth: 10000}
	for _, doc := range corpus {
		b := []byte(doc)
		end, err := g.Value(b, 0)
		got := err == nil && SkipSpace(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Errorf("Value(%q) valid = %v, encoding/json says %v", doc, got, want)
		}
	}
}

// NonFinite adds Python's NaN, Infinity and -Infinity and nothing else.
func TestNonFinite(t *testing.T) {
	py := Grammar{MaxDepth: 10000, NonFinite: true}
	for _, doc := range corpus {
		b := []byte(doc)
		end, err := py.Value(b, 0)
		got := err == nil && SkipSpace(b, end) == len(b)
		want := json.Valid(b) || strings.Contains(doc, "NaN") || strings.Contains(doc, "Infinity")
		if doc == `-Inf` || doc == `nan` {
			want = false
		}
		if got != want {
			t.Errorf("python Value(%q) valid = %v, want %v", doc, got, want)
		}
	}
}

func TestMaxDepth(t *testing.T) {
	g := Grammar{MaxDepth: 3}
	for depth, want := range map[int]bool{1: true, 3: true, 4: false, 50: false} {
		doc := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		if _, err := g.Value([]byte(doc), 0); (err == nil) != want {
			t.Errorf("depth %d: err %v, want valid=%v", depth, err, want)
		}
	}
}

func FuzzValue(f *testing.F) {
	for _, doc := range corpus {
		f.Add([]byte(doc))
	}
	g := Grammar{MaxDepth: 10000}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := g.Value(b, 0)
		got := err == nil && SkipSpace(b, end) == len(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("Value(%q) valid = %v, encoding/json says %v", b, got, want)
		}
	})
}
