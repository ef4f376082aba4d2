package search

// Logged model search grammar (MLflow 3's SearchLoggedModelsUtils):
// attributes name, model_id, model_type, status, source_run_id (= != LIKE
// ILIKE IN NOT IN) and creation_timestamp / last_updated_timestamp (also
// spelled creation_time / last_updated_time; numeric comparators); tags and
// params (= != LIKE ILIKE); metrics (numeric comparators).

const loggedModelAttrsText = "{'name', 'model_id', 'model_type', 'status', 'source_run_id', 'creation_timestamp', 'creation_time', 'last_updated_timestamp', 'last_updated_time'}"

// LoggedModelView gives a matcher access to one logged model.
type LoggedModelView interface {
	// LoggedModelAttr returns a string attribute or a numeric one
	// (creation_timestamp, last_updated_timestamp).
	LoggedModelAttr(key string) (string, int64)
	Tag(key string) (string, bool)
	Param(key string) (string, bool)
	Metric(key string) (float64, bool)
}

func isLoggedModelNumeric(key string) bool {
	return key == "creation_timestamp" || key == "last_updated_timestamp"
}

// ParseLoggedModelFilter parses a search_logged_models filter string.
func ParseLoggedModelFilter(filter string) ([]Clause, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make([]Clause, 0, len(raws))
	for _, rc := range raws {
		var c Clause
		ent, key, hasEnt := splitIdent(rc.ident)
		c.Entity = EntityAttribute
		if hasEnt {
			switch trimBackticks(ent) {
			case "attribute", "attributes", "attr":
			case "tag", "tags":
				c.Entity = EntityTag
			case "param", "params":
				c.Entity = EntityParam
			case "metric", "metrics":
				c.Entity = EntityMetric
			default:
				return nil, errorf("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute']", trimBackticks(ent))
			}
		}
		c.Key = trimBackticks(stripQuotes(key))
		if c.Entity == EntityAttribute {
			switch c.Key {
			case "creation_time":
				c.Key = "creation_timestamp"
			case "last_updated_time":
				c.Key = "last_updated_timestamp"
			case "name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp", "last_updated_timestamp":
			default:
				return nil, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", c.Key, loggedModelAttrsText)
			}
		}
		c.Op = normalizeOp(rc.op)
		if rc.null {
			return nil, errorf("Invalid comparator '%s' for logged model search", c.Op)
		}
		v := rc.val
		numeric := c.Entity == EntityMetric || (c.Entity == EntityAttribute && isLoggedModelNumeric(c.Key))
		switch {
		case numeric:
			if !isNumericOp(c.Op) {
				return nil, invalidComparator(c.Op, opsNumericText)
			}
			f, ok := parseNumber(v)
			if !ok {
				return nil, errorf("Expected numeric value type for numeric attribute: %s. Found %s", c.Key, v.text)
			}
			c.Num, c.Str = f, v.text
		case c.Op == OpIn || c.Op == OpNotIn:
			if c.Entity != EntityAttribute || v.kind != vList {
				return nil, errorf("Invalid comparator for %s: %s", c.Entity, c.Op)
			}
			list, lerr := parseList(v)
			if lerr != nil {
				return nil, lerr
			}
			c.List = list
		default:
			if !isStringOp(c.Op) {
				return nil, invalidComparator(c.Op, opsStringText)
			}
			s, serr := stringValue(v)
			if serr != nil {
				return nil, serr
			}
			c.Str = s
		}
		compile(&c)
		out = append(out, c)
	}
	return out, nil
}

// MatchLoggedModel reports whether a model satisfies every clause (as
// produced by ParseLoggedModelFilter).
func MatchLoggedModel(clauses []Clause, m LoggedModelView) bool {
	for i := range clauses {
		c := &clauses[i]
		var ok bool
		switch c.Entity {
		case EntityTag:
			v, has := m.Tag(c.Key)
			ok = has && matchString(c, v)
		case EntityParam:
			v, has := m.Param(c.Key)
			ok = has && matchString(c, v)
		case EntityMetric:
			v, has := m.Metric(c.Key)
			ok = has && compareNum(v, c.Op, c.Num)
		default:
			s, n := m.LoggedModelAttr(c.Key)
			if isLoggedModelNumeric(c.Key) {
				ok = compareNum(float64(n), c.Op, c.Num)
			} else {
				ok = matchString(c, s)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
