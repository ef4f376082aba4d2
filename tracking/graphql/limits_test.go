package graphql

import (
	"fmt"
	"strings"
	"testing"
)

var testLimits = Limits{MaxDepth: 10, MaxSelections: 1000, MaxRootFields: 10, MaxAliases: 10, MaxComplexity: 100000, MaxQueryLength: 1 << 20}

// TestScanCounts checks the measurements against the cases of MLflow's
// tests/server/test_graphql_no_batching.py: root fields and aliases count
// through inline fragments and fragment spreads, unused fragments do not
// count, circular fragments end.
func TestScanCounts(t *testing.T) {
	tight := testLimits
	tight.MaxRootFields, tight.MaxAliases = 2, 1
	cases := []struct {
		query string
		err   string // substring; "" means accepted
	}{
		{"{ experiment { id } run { id } }", ""},
		{"{ experiment { id } run { id } metric { id } }", "got 3 root fields"},
		{"{ experiment { id } ... on Query { run { id } metric { id } } }", "got 3 root fields"},
		{"{ ... on Query { experiment { id } run { id } metric { id } } }", "got 3 root fields"},
		{"{ ... on Query { run { id } } ... on Query { metric { id } } }", ""},
		{"fragment Q on Query { experiment { id } run { id } metric { id } } { ...Q }", "got 3 root fields"},
		{"fragment U on Query { experiment { id } run { id } metric { id } } { run { id } }", ""},
		{"{ exp1: experiment { id } exp2: experiment { id } }", "got 2 aliases"},
		{"{ ... on Query { exp1: experiment { id } exp2: experiment { id } } }", "got 2 aliases"},
		{"fragment Q on Query { exp1: experiment { id } exp2: experiment { id } } { ...Q }", "got 2 aliases"},
		// Aliases split over sibling fragments add up.
		{"fragment A on Query { a1: x } fragment B on Query { a2: x } { ...A ...B }", "got 2 aliases"},
		// One alias per level, on two levels, is within a limit of 1.
		{"{ a: experiment { b: id } }", ""},
		{"fragment Inner on Experiment { id name } fragment Outer on Query { experiment { ...Inner } } { ...Outer }", ""},
		{"fragment A on Query { ...B } fragment B on Query { ...A } { ...A }", ""},
		{"query Q($v: [[Int!]]! = [[1]]) @component(name: \"x\") { experiment(input: {a: [1, 2.5e3, \"s\", \"\"\"block \\\"\"\" x\"\"\", true, null, ENUM, $v]}) { id } }", ""},
		{"# a comment\n{ experiment { id } }", ""},
		{"", "Syntax Error"},
		{"{ }", "Syntax Error"},
		{"{ experiment { id }", "Syntax Error"},
		{"{ experiment(input: {a: \"unterminated }) { id } }", "Syntax Error"},
		{"type T { a: Int }", "Syntax Error"},
		{"{ a(x: 1.) }", "Syntax Error"},
	}
	for _, c := range cases {
		err := tight.check(c.query, nil)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.query, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want %q", c.query, err, c.err)
		}
	}
}

func TestScanDepthAndSelections(t *testing.T) {
	q := "{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }"
	if err := testLimits.check(q, nil); err == nil || err.Error() != "Query exceeds maximum depth of 10" {
		t.Errorf("depth: %v", err)
	}
	// Fragments merge into the level they are spread at.
	q = "fragment F on X { c { d { e { f { g { h { i { j { k } } } } } } } } } { a { b { ...F } } }"
	if err := testLimits.check(q, nil); err == nil || !strings.Contains(err.Error(), "maximum depth") {
		t.Errorf("depth via a fragment: %v", err)
	}
	var b strings.Builder
	b.WriteString("{ ")
	for i := 0; i < 1001; i++ {
		fmt.Fprintf(&b, "field%d { id } ", i)
	}
	b.WriteString("}")
	if err := testLimits.check(b.String(), nil); err == nil || err.Error() != "Query exceeds maximum total selections of 1000" {
		t.Errorf("selections: %v", err)
	}
	// Spreads that double at every level are expanded and counted.
	q = "fragment F0 on X { a b } "
	for i := 1; i < 9; i++ {
		q += fmt.Sprintf("fragment F%d on X { x { ...F%d } y { ...F%d } } ", i, i-1, i-1)
	}
	q += "{ r { ...F8 } }"
	if err := testLimits.check(q, nil); err == nil || !strings.Contains(err.Error(), "total selections") {
		t.Errorf("doubling fragments: %v", err)
	}
	long := "{ a(s: \"" + strings.Repeat("x", 1<<20) + "\") }"
	if err := testLimits.check(long, nil); err == nil || !strings.Contains(err.Error(), "maximum length") {
		t.Errorf("length: %v", err)
	}
	for _, deep := range []string{
		"{ a(x: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + ") }",
		"{ a(x: " + strings.Repeat("{k: ", 10000) + "1" + strings.Repeat("}", 10000) + ") }",
		"query ($v: " + strings.Repeat("[", 10000) + "Int" + strings.Repeat("]", 10000) + ") { a }",
		strings.Repeat("{ a ", 10000) + strings.Repeat("}", 10000),
	} {
		if err := testLimits.check(deep, nil); err == nil {
			t.Errorf("deep nesting accepted")
		}
	}
}

func TestScanComplexity(t *testing.T) {
	runs := func(input string) string {
		return `{ mlflowSearchRuns(input: ` + input + `) { runs { info { runId status } experiment { name } modelVersions { name } } } }`
	}
	// Default page (1000 runs) × (info 1 + 2 leaves + 10 + 1 + 10 + 1) ≈ 25k: allowed.
	if err := testLimits.check(runs(`{experimentIds: ["1"]}`), nil); err != nil {
		t.Errorf("default page: %v", err)
	}
	if err := testLimits.check(runs(`{maxResults: 50000}`), nil); err == nil || !strings.Contains(err.Error(), "complexity") {
		t.Errorf("large page: %v", err)
	}
	if err := testLimits.check(runs(`$in`), map[string]any{"in": map[string]any{"maxResults": float64(50000)}}); err == nil {
		t.Errorf("large page through an input variable accepted")
	}
	if err := testLimits.check(runs(`{maxResults: $n}`), map[string]any{"n": float64(50000)}); err == nil {
		t.Errorf("large page through a field variable accepted")
	}
	bulk := `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: $ids, maxResults: 2500}) { metrics { key value step timestamp runId } } }`
	ids := make([]any, 100)
	if err := testLimits.check(bulk, map[string]any{"ids": ids}); err == nil {
		t.Errorf("100 runs × 2500 points × 5 fields accepted")
	}
	if err := testLimits.check(bulk, map[string]any{"ids": ids[:2]}); err != nil {
		t.Errorf("2 runs × 2500 points: %v", err)
	}
}

// FuzzScan: the scanner never panics and always ends.
func FuzzScan(f *testing.F) {
	for _, s := range []string{"{ a { b } }", "query q($v: [Int!]) { a(x: $v) @d(y: \"s\") { ...F ... on T { b } } } fragment F on T { c }", "\"\"\"", "{ a(x: -1.5e+3) }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_ = testLimits.check(q, map[string]any{"v": []any{1.0}})
	})
}
