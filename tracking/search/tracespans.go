package search

import (
	"regexp"
	"strings"
)

// Span clauses of the trace grammar (MLflow 3's SearchTraceUtils.is_span
// with SqlAlchemyStore's span filters): span.name, span.type and
// span.status compare a span's column with = != IN NOT IN LIKE ILIKE
// RLIKE; span.content matches the span's stored content with LIKE or
// ILIKE. A trace matches when one of its spans satisfies every span
// clause of the filter (MLflow combines them into one subquery over the
// same span). span.attributes.<key> matches the span's content as MLflow
// does (spanAttrPattern); "text" is span.content.

// EntitySpan is a clause on a trace's spans.
const EntitySpan Entity = 17

const (
	spanOpsText        = "{'!=', '=', 'IN', 'NOT IN', 'LIKE', 'ILIKE', 'RLIKE'}"
	spanContentOpsText = "{'LIKE', 'ILIKE'}"
)

// spanKey validates a span clause's key and operator.
func spanKey(key, op string) *Error {
	switch {
	case strings.HasPrefix(key, "attributes."):
		if key == "attributes." {
			return errorf("Span attribute name cannot be empty after 'attributes.'")
		}
		switch op {
		case OpEq, OpNe, OpIn, OpNotIn, OpLike, OpILike, OpRLike:
			return nil
		}
		return errorf("span.%s comparator '%s' not one of '%s'", key, op, spanOpsText)
	case key == "name" || key == "type" || key == "status":
		switch op {
		case OpEq, OpNe, OpIn, OpNotIn, OpLike, OpILike, OpRLike:
			return nil
		}
		return errorf("span.%s comparator '%s' not one of '%s'", key, op, spanOpsText)
	case key == "content":
		if op == OpLike || op == OpILike {
			return nil
		}
		return errorf("span.%s comparator '%s' not one of '%s'", key, op, spanContentOpsText)
	}
	return errorf("Invalid span attribute '%s'. Supported attributes: name, status, type, attributes.<attribute_name>.", key)
}

// parseSpanClause fills c (entity, key and op set) from the raw value;
// ident is the clause's identifier as written ("text" is checked as the
// attribute it is written as, then as span.content).
func parseSpanClause(c *Clause, v rawValue, ident string) *Error {
	if trimBackticks(ident) == "text" || trimBackticks(ident) == "attribute.text" ||
		trimBackticks(ident) == "attributes.text" || trimBackticks(ident) == "trace.text" {
		switch v.kind {
		case vString, vIdent:
		case vList:
			return errorf("Only attributes in %s supports comparison with a list of quoted string values.", traceInKeysText)
		case vNumber:
			return errorf("Only the '%s' attributes support comparison with numeric values.", traceNumericText)
		default:
			return errorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", v.text)
		}
	}
	if err := spanKey(c.Key, c.Op); err != nil {
		return err
	}
	switch v.kind {
	case vString, vIdent:
		if c.Op == OpIn || c.Op == OpNotIn {
			return errorf("Expected a list of quoted string values for attributes. Got value %s", v.text)
		}
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		c.Str = s
	case vList:
		if c.Op != OpIn && c.Op != OpNotIn {
			return errorf("Expected a quoted string value for span (e.g. 'my-value'). Got value %s", v.text)
		}
		list, err := parseList(v)
		if err != nil {
			return err
		}
		c.List = list
	default:
		return errorf("Expected a quoted string value for span (e.g. 'my-value'). Got value %s", v.text)
	}
	if strings.HasPrefix(c.Key, "attributes.") {
		attr := trimBackticks(strings.TrimPrefix(c.Key, "attributes."))
		c.Str = spanAttrPattern(attr, c.Op, c.Str)
		for i, s := range c.List {
			c.List[i] = spanAttrPattern(attr, c.Op, s)
		}
	}
	if c.Op == OpRLike {
		re, err := regexp.Compile(c.Str)
		if err != nil {
			return errorf("Invalid regular expression '%s': %v", c.Str, err)
		}
		c.re = re
	}
	compile(c)
	return nil
}

// spanAttrPattern is what MLflow's SqlAlchemyStore compares a span's
// content with for span.attributes.<attr>: LIKE and ILIKE match
// %"<attr>"<value>%; RLIKE matches "<attr>": "\"<value> (an anchored
// ^ and $ of value placed around the JSON-encoded string the attribute's
// value is stored as); = != IN NOT IN compare the content with the LIKE
// text literally, as MLflow does. The regular expression also accepts
// the compact separator this server's stored content has.
func spanAttrPattern(attr, op, value string) string {
	if op != OpRLike {
		return `%"` + attr + `"` + value + `%`
	}
	prefix := `"\\".*`
	if strings.HasPrefix(value, "^") {
		value, prefix = value[1:], `"\\"`
	}
	suffix := ""
	if strings.HasSuffix(value, "$") {
		value, suffix = value[:len(value)-1], `\\"`
	}
	return `"` + attr + `": ?` + prefix + value + suffix
}

// SpanClauses returns the span clauses of a trace filter.
func SpanClauses(clauses []Clause) []Clause {
	var out []Clause
	for _, c := range clauses {
		if c.Entity == EntitySpan {
			out = append(out, c)
		}
	}
	return out
}

// SpanFields is what a span clause reads of one span. Content is read
// only when a span.content clause asks for it.
type SpanFields struct {
	Name, Type, Status string
	Content            func() string
}

// MatchSpan reports whether one span satisfies every span clause.
func MatchSpan(clauses []Clause, sp SpanFields) bool {
	for i := range clauses {
		c := &clauses[i]
		var v string
		switch c.Key {
		case "name":
			v = sp.Name
		case "type":
			v = sp.Type
		case "status":
			v = sp.Status
		case "content":
			v = sp.Content()
		default:
			if !strings.HasPrefix(c.Key, "attributes.") {
				return false
			}
			v = sp.Content()
		}
		if !matchString(c, v) {
			return false
		}
	}
	return true
}
