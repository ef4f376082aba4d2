package search

import (
	"strings"
	"testing"
)

func TestSpanClauses(t *testing.T) {
	sp := SpanFields{Name: "retrieve_docs", Type: "RETRIEVER", Status: "OK",
		Content: func() string { return `{"attributes": {"q": "\"paris\""}}` }}
	for filter, want := range map[string]bool{
		"span.name = 'retrieve_docs'":                       true,
		"span.name != 'retrieve_docs'":                      false,
		"span.name IN ('a', 'retrieve_docs')":               true,
		"span.name NOT IN ('a', 'retrieve_docs')":           false,
		"span.name LIKE 'retrieve%'":                        true,
		"span.name ILIKE 'RETRIEVE%'":                       true,
		"span.name RLIKE '^ret.*docs$'":                     true,
		"span.type = 'LLM'":                                 false,
		"span.`type` = 'RETRIEVER' AND span.status = 'OK'":  true,
		"span.type = 'RETRIEVER' AND span.status = 'ERROR'": false,
		"span.content LIKE '%paris%'":                       true,
		"span.content ILIKE '%PARIS%'":                      true,
		"span.content LIKE '%london%'":                      false,
		"span.name = 'retrieve_docs' AND timestamp_ms > 0":  true,
		"span.status = \"OK\"":                              true,
	} {
		c, err := ParseTraceFilter(filter)
		if err != nil {
			t.Errorf("%q: %v", filter, err)
			continue
		}
		if got := MatchSpan(SpanClauses(c), sp); got != want {
			t.Errorf("%q matched %v, want %v", filter, got, want)
		}
	}
	for filter, msg := range map[string]string{
		"span.name > 'a'":         "span.name comparator '>' not one of",
		"span.name IS NULL":       "span.name comparator 'IS NULL' not one of",
		"span.content = 'a'":      "span.content comparator '=' not one of '{'LIKE', 'ILIKE'}'",
		"span.foo = 'a'":          "Invalid span attribute 'foo'. Supported attributes: name, status, type, attributes.<attribute_name>.",
		"span.name = 5":           "Expected a quoted string value for span",
		"span.attributes.k > 'v'": "span.attributes.k comparator '>' not one of",
		"span.attributes. = 'v'":  "Span attribute name cannot be empty after 'attributes.'",
		"span.name RLIKE '('":     "Invalid regular expression",
	} {
		_, err := ParseTraceFilter(filter)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", filter, err, msg)
		}
	}
	if _, err := ParseTraceOrderBy([]string{"span.name"}); err == nil {
		t.Error("span keys do not order traces")
	}
	// MatchTrace leaves span clauses to the caller.
	c, err := ParseTraceFilter("span.name = 'nothing'")
	if err != nil {
		t.Fatal(err)
	}
	if !MatchTrace(c, &fakeTrace{}) {
		t.Error("MatchTrace decided a span clause")
	}
}
