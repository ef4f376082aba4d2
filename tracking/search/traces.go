package search

import (
	"cmp"
	"regexp"
)

// Trace search grammar (MLflow 3's SearchTraceUtils with the SQL store):
//
//   - entities: none/"attribute"/"attributes"/"trace" (attributes),
//     "tag"/"tags", "request_metadata"/"metadata";
//   - string attributes request_id, status and client_request_id (= != IN
//     NOT IN LIKE ILIKE RLIKE); numeric timestamp_ms, execution_time_ms and
//     end_time_ms, aliased timestamp, execution_time and end_time; "name"
//     means the tag mlflow.traceName and "run_id" the request metadata
//     mlflow.sourceRun (or a link made with link-to-run);
//   - tags and request metadata compare with = != LIKE ILIKE RLIKE, IS
//     NULL and IS NOT NULL;
//   - status values may be written as 2.x statuses or 3.x states
//     (STATE_UNSPECIFIED for TRACE_STATUS_UNSPECIFIED);
//   - "prompt" = 'name/version' matches traces linked to that prompt
//     version (the mlflow.linkedPrompts tag); "text" is span.content;
//   - order_by: attributes experiment_id, timestamp_ms, execution_time_ms,
//     end_time_ms, status, request_id (plus the aliases and name/run_id),
//     tie-breakers timestamp_ms DESC then request_id ASC.
//
// Span clauses are in tracespans.go; feedback, expectation and issue
// clauses in traceassess.go.

// EntityRequestMetadata is a trace's request metadata entry.
const EntityRequestMetadata Entity = 16

const (
	traceTagName      = "mlflow.traceName"
	traceMetaRun      = "mlflow.sourceRun"
	traceTagPrompts   = "mlflow.linkedPrompts"
	traceAttrsText    = "{'request_id', 'timestamp', 'timestamp_ms', 'execution_time', 'execution_time_ms', 'end_time', 'end_time_ms', 'status', 'client_request_id', 'name', 'run_id', 'prompt', 'text'}"
	traceOrderText    = "{'experiment_id', 'timestamp', 'timestamp_ms', 'execution_time', 'execution_time_ms', 'end_time', 'end_time_ms', 'status', 'request_id', 'name', 'run_id'}"
	traceEntitiesText = "{'tag', 'request_metadata', 'attribute', 'span', 'feedback', 'expectation', 'issue', 'tags', 'attributes', 'trace', 'metadata'}"
	traceKeyedOpsText = "{'=', '!=', 'LIKE', 'ILIKE', 'RLIKE', 'IS NULL', 'IS NOT NULL'}"
	traceStrOpsText   = "{'=', '!=', 'IN', 'NOT IN', 'LIKE', 'ILIKE', 'RLIKE'}"
)

// TraceView gives a matcher or comparator access to one trace.
type TraceView interface {
	// TraceAttr returns a string attribute (request_id, experiment_id,
	// status, client_request_id) or a numeric one (timestamp_ms,
	// execution_time_ms, end_time_ms).
	TraceAttr(key string) (string, int64)
	Tag(key string) (string, bool)
	Metadata(key string) (string, bool)
	// LinkedToRun reports whether the trace was linked to the run.
	LinkedToRun(runID string) bool
}

func isTraceNumeric(key string) bool {
	return key == "timestamp_ms" || key == "execution_time_ms" || key == "end_time_ms"
}

// traceKey resolves a trace identifier to its entity and canonical key.
func traceKey(ident string, order bool) (Entity, string, *Error) {
	ent, key, hasEnt := splitIdent(ident)
	e := EntityAttribute
	if hasEnt {
		switch trimBackticks(ent) {
		case "attribute", "attributes", "trace":
		case "tag", "tags":
			e = EntityTag
		case "request_metadata", "metadata":
			e = EntityRequestMetadata
		case "span", "feedback", "expectation", "issue":
			te := map[string]Entity{"span": EntitySpan, "feedback": EntityFeedback,
				"expectation": EntityExpectation, "issue": EntityIssue}[trimBackticks(ent)]
			if order {
				// Valid entities, but SqlAlchemyStore orders by none of them.
				return te, "", errorf("Invalid identifier type '%s'", te)
			}
			return te, trimBackticks(stripQuotes(key)), nil
		default:
			return e, "", errorf("Invalid entity type '%s'. Valid values are %s", trimBackticks(ent), traceEntitiesText)
		}
	}
	key = trimBackticks(stripQuotes(key))
	if e == EntityAttribute {
		valid := map[string]bool{"request_id": true, "timestamp": true, "timestamp_ms": true,
			"execution_time": true, "execution_time_ms": true, "end_time": true, "end_time_ms": true,
			"status": true, "name": true, "run_id": true}
		if order {
			valid["experiment_id"] = true
		} else {
			valid["client_request_id"] = true
			valid["prompt"] = true
			valid["text"] = true
		}
		if !valid[key] {
			text := traceAttrsText
			if order {
				text = traceOrderText
			}
			return e, "", errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, text)
		}
		switch key {
		case "name":
			return EntityTag, traceTagName, nil
		case "prompt":
			return EntityPrompt, traceTagPrompts, nil
		case "text":
			return EntitySpan, "content", nil
		case "run_id":
			return EntityRequestMetadata, traceMetaRun, nil
		case "timestamp":
			return e, "timestamp_ms", nil
		case "execution_time":
			return e, "execution_time_ms", nil
		case "end_time":
			return e, "end_time_ms", nil
		}
	}
	return e, key, nil
}

// traceStatusAliases maps MLflow 3 state names to the stored 2.x status.
var traceStatusAliases = map[string]string{"STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED"}

// ParseTraceFilter parses a search_traces filter string.
func ParseTraceFilter(filter string) ([]Clause, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make([]Clause, 0, len(raws))
	for _, rc := range raws {
		var c Clause
		var kerr *Error
		c.Entity, c.Key, kerr = traceKey(rc.ident, false)
		if kerr != nil {
			return nil, kerr
		}
		c.Op = normalizeOp(rc.op)
		v := rc.val
		switch {
		case c.Entity == EntitySpan:
			if rc.null {
				if serr := spanKey(c.Key, c.Op); serr != nil {
					return nil, serr
				}
				return nil, errorf("span.%s comparator '%s' not one of '%s'", c.Key, c.Op, spanOpsText)
			}
			if serr := parseSpanClause(&c, v, rc.ident); serr != nil {
				return nil, serr
			}
			out = append(out, c)
			continue
		case c.Entity == EntityFeedback || c.Entity == EntityExpectation || c.Entity == EntityIssue:
			if aerr := parseAssessmentClause(&c, v, rc.null); aerr != nil {
				return nil, aerr
			}
			out = append(out, c)
			continue
		case c.Entity == EntityPrompt:
			if perr := parsePromptClause(&c, v, rc.null); perr != nil {
				return nil, perr
			}
			out = append(out, c)
			continue
		case c.Entity != EntityAttribute:
			switch c.Op {
			case OpIsNull, OpIsNotNull:
				out = append(out, c)
				continue
			case OpEq, OpNe, OpLike, OpILike, OpRLike:
			default:
				return nil, invalidComparator(c.Op, traceKeyedOpsText)
			}
			if v.kind != vString && v.kind != vIdent {
				return nil, errorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", c.Entity, v.text)
			}
			s, serr := stringValue(v)
			if serr != nil {
				return nil, serr
			}
			c.Str = s
		case rc.null:
			return nil, errorf("Invalid comparator '%s' for trace search", c.Op)
		case isTraceNumeric(c.Key):
			if !isNumericOp(c.Op) {
				return nil, invalidComparator(c.Op, opsNumericText)
			}
			f, ok := parseNumber(v)
			if !ok {
				return nil, errorf("Expected numeric value type for numeric attribute: %s. Found %s", c.Key, v.text)
			}
			c.Num, c.Str = f, v.text
		default:
			switch c.Op {
			case OpEq, OpNe, OpLike, OpILike, OpRLike:
				if v.kind != vString && v.kind != vIdent {
					return nil, errorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", v.text)
				}
				s, serr := stringValue(v)
				if serr != nil {
					return nil, serr
				}
				c.Str = s
				if c.Key == "status" {
					if alias, ok := traceStatusAliases[s]; ok {
						c.Str = alias
					}
				}
			case OpIn, OpNotIn:
				if v.kind != vList {
					return nil, errorf("Expected a list of quoted string values for attributes. Got value %s", v.text)
				}
				list, lerr := parseList(v)
				if lerr != nil {
					return nil, lerr
				}
				if c.Key == "status" {
					for i, s := range list {
						if alias, ok := traceStatusAliases[s]; ok {
							list[i] = alias
						}
					}
				}
				c.List = list
			default:
				return nil, invalidComparator(c.Op, traceStrOpsText)
			}
		}
		if c.Op == OpRLike {
			re, rerr := regexp.Compile(c.Str)
			if rerr != nil {
				return nil, errorf("Invalid regular expression '%s': %v", c.Str, rerr)
			}
			c.re = re
		}
		compile(&c)
		out = append(out, c)
	}
	return out, nil
}

// MatchTrace reports whether a trace satisfies every clause (as produced
// by ParseTraceFilter) but its span clauses, which the caller checks
// against the trace's spans (SpanClauses, MatchSpan), and its assessment
// clauses (AssessmentClauses, MatchAssessment).
func MatchTrace(clauses []Clause, t TraceView) bool {
	for i := range clauses {
		c := &clauses[i]
		switch {
		case c.Entity == EntitySpan || IsAssessmentClause(c):
			continue
		case c.Entity == EntityPrompt:
			v, _ := t.Tag(c.Key)
			if !linksPrompt(v, c.Str) {
				return false
			}
		case c.Entity == EntityTag:
			v, ok := t.Tag(c.Key)
			if !matchKeyed(c, v, ok) {
				return false
			}
		case c.Entity == EntityRequestMetadata:
			v, ok := t.Metadata(c.Key)
			if c.Key == traceMetaRun && c.Op == OpEq && t.LinkedToRun(c.Str) {
				continue
			}
			if !matchKeyed(c, v, ok) {
				return false
			}
		case isTraceNumeric(c.Key):
			_, n := t.TraceAttr(c.Key)
			if !compareNum(float64(n), c.Op, c.Num) {
				return false
			}
		default:
			s, _ := t.TraceAttr(c.Key)
			if !matchString(c, s) {
				return false
			}
		}
	}
	return true
}

// ParseTraceOrderBy parses search_traces order_by entries.
func ParseTraceOrderBy(orderBy []string) ([]OrderKey, error) {
	keys := make([]OrderKey, 0, len(orderBy))
	for _, s := range orderBy {
		raw, asc, err := parseOrderClause(s)
		if err != nil {
			return nil, err
		}
		ent, key, kerr := traceKey(raw, true)
		if kerr != nil {
			return nil, kerr
		}
		keys = append(keys, OrderKey{Entity: ent, Key: key, Asc: asc})
	}
	return keys, nil
}

// CompareTraces orders two traces by keys followed by MLflow's
// tie-breakers timestamp_ms DESC and request_id ASC. Missing tag or
// metadata values sort last.
func CompareTraces(keys []OrderKey, a, b TraceView) int {
	hasTS, hasID := false, false
	for i := range keys {
		k := &keys[i]
		if k.Entity == EntityAttribute {
			hasTS = hasTS || k.Key == "timestamp_ms"
			hasID = hasID || k.Key == "request_id"
		}
		if c := compareTraceKey(k, a, b); c != 0 {
			return c
		}
	}
	if !hasTS {
		if c := compareTraceKey(&OrderKey{Key: "timestamp_ms"}, a, b); c != 0 {
			return c
		}
	}
	if !hasID {
		return compareTraceKey(&OrderKey{Key: "request_id", Asc: true}, a, b)
	}
	return 0
}

func compareTraceKey(k *OrderKey, a, b TraceView) int {
	var c int
	switch k.Entity {
	case EntityTag, EntityRequestMetadata:
		get := func(t TraceView) (string, bool) {
			if k.Entity == EntityTag {
				return t.Tag(k.Key)
			}
			return t.Metadata(k.Key)
		}
		va, oka := get(a)
		vb, okb := get(b)
		if oka != okb {
			if oka {
				return -1
			}
			return 1
		}
		c = cmp.Compare(va, vb)
	default:
		sa, na := a.TraceAttr(k.Key)
		sb, nb := b.TraceAttr(k.Key)
		if isTraceNumeric(k.Key) {
			c = cmp.Compare(na, nb)
		} else {
			c = cmp.Compare(sa, sb)
		}
	}
	if !k.Asc {
		c = -c
	}
	return c
}
