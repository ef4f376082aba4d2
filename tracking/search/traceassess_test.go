package search

import (
	"strings"
	"testing"
)

func TestPyJSON(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		float bool
		want  string
	}{
		{`true`, true, `true`},
		{`5`, true, `5.0`},
		{`5`, false, `5`},
		{`0.1`, true, `0.1`},
		{`1e16`, false, `1e+16`},
		{`1e15`, true, `1000000000000000.0`},
		{`0.0001`, true, `0.0001`},
		{`0.00001`, true, `1e-05`},
		{`-0`, false, `0`},
		{`"h\u00e9\"llo\n"`, true, `"h\u00e9\"llo\n"`},
		{`"😀"`, true, `"\ud83d\ude00"`},
		{`{"b":1,"a":[1,2.5,null]}`, false, `{"b": 1, "a": [1, 2.5, null]}`},
		{`{"b":1,"a":[]}`, true, `{"b": 1.0, "a": []}`},
		{`{}`, true, `{}`},
	} {
		got, err := PyJSON([]byte(tc.raw), tc.float)
		if err != nil || got != tc.want {
			t.Errorf("PyJSON(%s, %v) = %q, %v; want %q", tc.raw, tc.float, got, err, tc.want)
		}
	}
	if _, err := PyJSON([]byte(`{"a":`), true); err == nil {
		t.Error("truncated JSON accepted")
	}
}

func TestAssessmentClauses(t *testing.T) {
	yes := AssessmentFields{Type: "feedback", Name: "ok", Value: `"yes"`, Valid: true}
	five := AssessmentFields{Type: "feedback", Name: "score", Value: `5.0`, Valid: true}
	stale := AssessmentFields{Type: "feedback", Name: "ok", Value: `"no"`, Valid: false}
	exp := AssessmentFields{Type: "expectation", Name: "ok", Value: `"yes"`, Valid: true}
	issue := AssessmentFields{Type: "issue", Name: "iss-1", Value: `{"issue_name": "x"}`, Valid: true}
	for _, tc := range []struct {
		filter string
		a      AssessmentFields
		want   bool
	}{
		{"feedback.ok = 'yes'", yes, true},
		{`feedback.ok = '"yes"'`, yes, true},
		{"feedback.ok = 'no'", stale, false},
		{"feedback.ok != 'no'", yes, true},
		{"feedback.ok != 'yes'", yes, false},
		{"feedback.score = '5.0'", five, true},
		{"feedback.score = '5'", five, false},
		{"feedback.ok LIKE '%ye%'", yes, true},
		{"feedback.ok ILIKE '%YE%'", yes, true},
		{"feedback.ok RLIKE '^\"y'", yes, true},
		{"feedback.ok IS NOT NULL", yes, true},
		{"feedback.ok IS NOT NULL", stale, false},
		{"expectation.ok = 'yes'", yes, false},
		{"expectation.ok = 'yes'", exp, true},
		{"feedback.`ok` = 'yes'", yes, true},
		{"issue.id = 'iss-1'", issue, true},
		{"issue.id = 'iss-2'", issue, false},
	} {
		c, err := ParseTraceFilter(tc.filter)
		if err != nil {
			t.Errorf("%q: %v", tc.filter, err)
			continue
		}
		if len(AssessmentClauses(c)) != 1 {
			t.Fatalf("%q: no assessment clause", tc.filter)
		}
		if got := MatchAssessment(&c[0], &tc.a); got != tc.want {
			t.Errorf("%q on %+v: %v, want %v", tc.filter, tc.a, got, tc.want)
		}
		if !MatchTrace(c, &fakeTrace{}) {
			t.Errorf("%q: MatchTrace decided an assessment clause", tc.filter)
		}
	}
	for filter, msg := range map[string]string{
		"feedback.x > 'a'":         "assessment.x comparator '>' not one of '{'=', '!=', 'LIKE', 'ILIKE', 'RLIKE', 'IS NULL', 'IS NOT NULL'}'",
		"feedback.x > 0.8":         "Expected a quoted string value for feedback (e.g. 'my-value'). Got value 0.8",
		"expectation.x IN ('a')":   "Expected a quoted string value for expectation (e.g. 'my-value'). Got value ('a')",
		"feedback.x RLIKE '('":     "Invalid regular expression",
		"issue.name = 'a'":         "Invalid issue attribute 'name'. Supported attributes: id",
		"issue.id != 'a'":          "issue.id comparator '!=' not one of '{'='}'",
		"issue.id IS NULL":         "issue.id comparator 'IS NULL' not one of '{'='}'",
		"prompt = 'qa'":            `Invalid prompts filter value 'qa'. Expected format: prompt = "name/version"`,
		"prompt LIKE 'qa/1'":       `Invalid comparator 'LIKE' for prompts filter. Only '=' is supported with format: prompt = "name/version"`,
		"prompt IS NULL":           `Invalid comparator 'IS NULL' for prompts filter.`,
		"prompt IN ('qa/1')":       "Only attributes in {'name', 'status', 'request_id', 'run_id', 'client_request_id'} supports comparison with a list of quoted string values.",
		"prompt > 'qa/1'":          "Invalid comparator '>' not one of '{'=', '!='",
		"text = 'hello'":           "span.content comparator '=' not one of '{'LIKE', 'ILIKE'}'",
		"text IN ('a')":            "Only attributes in",
		"text IS NULL":             "span.content comparator 'IS NULL' not one of",
		"bogus.x = 'a'":            "Invalid entity type 'bogus'. Valid values are {'tag', 'request_metadata', 'attribute', 'span', 'feedback', 'expectation', 'issue', 'tags', 'attributes', 'trace', 'metadata'}",
		"foo = 'a'":                "'prompt', 'text'}",
		"span.attributes.k >= 'v'": "span.attributes.k comparator '>=' not one of",
	} {
		_, err := ParseTraceFilter(filter)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", filter, err, msg)
		}
	}
	for _, key := range []string{"feedback.x", "span.name", "issue.id", "prompt", "text"} {
		if _, err := ParseTraceOrderBy([]string{key}); err == nil {
			t.Errorf("order_by %s accepted", key)
		}
	}
}

func TestPromptAndTextClauses(t *testing.T) {
	tr := &fakeTrace{tags: map[string]string{"mlflow.linkedPrompts": `[{"name": "qa", "version": "1"}, {"name": "greet", "version": "3"}]`}}
	for filter, want := range map[string]bool{
		"prompt = 'qa/1'":    true,
		"prompt = 'greet/3'": true,
		"prompt = 'qa/3'":    false,
	} {
		c, err := ParseTraceFilter(filter)
		if err != nil {
			t.Fatalf("%q: %v", filter, err)
		}
		if got := MatchTrace(c, tr); got != want {
			t.Errorf("%q: %v, want %v", filter, got, want)
		}
	}
	c, err := ParseTraceFilter("text ILIKE '%HELLO%'")
	if err != nil {
		t.Fatal(err)
	}
	sc := SpanClauses(c)
	if len(sc) != 1 || sc[0].Key != "content" {
		t.Fatalf("text clause %+v", sc)
	}
	if !MatchSpan(sc, SpanFields{Content: func() string { return "say hello" }}) {
		t.Error("text ILIKE did not match the content")
	}
}

func TestSpanAttributeClauses(t *testing.T) {
	// This server's stored content is compact; MLflow's has ": " separators.
	for _, content := range []string{
		`{"name":"llm","attributes":{"model":"\"gpt-4o\"","temperature":"0.7"}}`,
		`{"name": "llm", "attributes": {"model": "\"gpt-4o\"", "temperature": "0.7"}}`,
	} {
		sp := SpanFields{Content: func() string { return content }}
		for filter, want := range map[string]bool{
			"span.attributes.model LIKE '%gpt-4%'":                     true,
			"span.attributes.model LIKE '%claude%'":                    false,
			"span.attributes.model ILIKE '%GPT%'":                      true,
			"span.attributes.temperature LIKE '%0.7%'":                 true,
			"span.attributes.missing LIKE '%gpt%'":                     false,
			"span.attributes.model RLIKE '^gpt'":                       true,
			"span.attributes.model RLIKE '^4o'":                        false,
			"span.attributes.model RLIKE '4o$'":                        true,
			"span.attributes.model RLIKE 'pt-4'":                       true,
			"span.attributes.model = 'gpt-4o'":                         false, // MLflow compares the content with the LIKE text
			"span.attributes.model != 'gpt-4o'":                        true,
			"span.attributes.model IN ('gpt-4o')":                      false,
			"span.attributes.`model` LIKE '%gpt%'":                     true,
			"span.attributes.model LIKE '%gpt%' AND span.name = 'llm'": true,
		} {
			c, err := ParseTraceFilter(filter)
			if err != nil {
				t.Fatalf("%q: %v", filter, err)
			}
			if got := MatchSpan(SpanClauses(c), SpanFields{Name: "llm", Content: sp.Content}); got != want {
				t.Errorf("%q on %s: %v, want %v", filter, content, got, want)
			}
		}
	}
}
