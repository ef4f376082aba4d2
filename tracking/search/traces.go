package search

import (
	"cmp"
	"strings"
)

// Trace search grammar (MLflow 2.x SearchTraceUtils with the SQL store):
//
//   - entities: none/"attribute"/"attributes"/"trace" (attributes),
//     "tag"/"tags", "request_metadata"/"metadata";
//   - attributes request_id and status (= != IN NOT IN), timestamp_ms and
//     execution_time_ms, aliased timestamp and execution_time (numeric
//     comparators); "name" means the tag mlflow.traceName and "run_id" the
//     request metadata mlflow.sourceRun;
//   - tags and request metadata compare with = and != only;
//   - order_by: attributes experiment_id, timestamp_ms, execution_time_ms,
//     status, request_id (plus the aliases and name/run_id), tie-breakers
//     timestamp_ms DESC then request_id ASC.

// EntityRequestMetadata is a trace's request metadata entry.
const EntityRequestMetadata Entity = 16

const (
	traceTagName      = "mlflow.traceName"
	traceMetaRun      = "mlflow.sourceRun"
	traceAttrsText    = "{'status', 'timestamp', 'execution_time', 'name', 'request_id', 'timestamp_ms', 'run_id', 'execution_time_ms'}"
	traceOrderText    = "{'experiment_id', 'status', 'timestamp', 'execution_time', 'name', 'request_id', 'timestamp_ms', 'run_id', 'execution_time_ms'}"
	traceEntitiesText = "{'tag', 'request_metadata', 'attribute', 'tags', 'attributes', 'trace', 'metadata'}"
)

// TraceView gives a matcher or comparator access to one trace.
type TraceView interface {
	// TraceAttr returns a string attribute (request_id, experiment_id,
	// status) or a numeric one (timestamp_ms, execution_time_ms).
	TraceAttr(key string) (string, int64)
	Tag(key string) (string, bool)
	Metadata(key string) (string, bool)
}

func isTraceNumeric(key string) bool { return key == "timestamp_ms" || key == "execution_time_ms" }

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
		default:
			return e, "", errorf("Invalid entity type '%s'. Valid values are %s", trimBackticks(ent), traceEntitiesText)
		}
	}
	key = trimBackticks(stripQuotes(key))
	if e == EntityAttribute {
		valid := map[string]bool{"request_id": true, "timestamp": true, "timestamp_ms": true,
			"execution_time": true, "execution_time_ms": true, "status": true, "name": true, "run_id": true}
		if order {
			valid["experiment_id"] = true
		}
		if !valid[key] {
			text := traceAttrsText
			if order {
				text = traceOrderText
			}
			return e, "", errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, text)
		}
	}
	switch strings.ToLower(key) {
	case "name":
		return EntityTag, traceTagName, nil
	case "run_id":
		return EntityRequestMetadata, traceMetaRun, nil
	case "timestamp":
		return e, "timestamp_ms", nil
	case "execution_time":
		return e, "execution_time_ms", nil
	}
	return e, key, nil
}

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
		if rc.null {
			return nil, errorf("Invalid comparator '%s' for trace search", c.Op)
		}
		v := rc.val
		switch {
		case c.Entity != EntityAttribute:
			if c.Op != OpEq && c.Op != OpNe {
				return nil, errorf("Invalid comparator '%s' not one of '{'=', '!='}'", c.Op)
			}
			if v.kind != vString && v.kind != vIdent {
				return nil, errorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", c.Entity, v.text)
			}
			s, serr := stringValue(v)
			if serr != nil {
				return nil, serr
			}
			c.Str = s
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
			case OpEq, OpNe:
				if v.kind != vString && v.kind != vIdent {
					return nil, errorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", v.text)
				}
				s, serr := stringValue(v)
				if serr != nil {
					return nil, serr
				}
				c.Str = s
			case OpIn, OpNotIn:
				if v.kind != vList {
					return nil, errorf("Expected a list of quoted string values for attributes. Got value %s", v.text)
				}
				list, lerr := parseList(v)
				if lerr != nil {
					return nil, lerr
				}
				c.List = list
			default:
				return nil, invalidComparator(c.Op, "{'=', '!=', 'IN', 'NOT IN'}")
			}
		}
		compile(&c)
		out = append(out, c)
	}
	return out, nil
}

// MatchTrace reports whether a trace satisfies every clause (as produced
// by ParseTraceFilter).
func MatchTrace(clauses []Clause, t TraceView) bool {
	for i := range clauses {
		c := &clauses[i]
		switch {
		case c.Entity == EntityTag:
			v, ok := t.Tag(c.Key)
			if !ok || !matchString(c, v) {
				return false
			}
		case c.Entity == EntityRequestMetadata:
			v, ok := t.Metadata(c.Key)
			if !ok || !matchString(c, v) {
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
