package search

import (
	"cmp"
	"math"
	"strconv"
	"strings"
)

// OrderKey is one parsed order_by entry.
type OrderKey struct {
	Entity Entity
	// Key is canonical, as for Clause ("created" becomes start_time).
	Key string
	Asc bool
}

// parseOrderClause splits "<ident> [ASC|DESC]" into the raw identifier and
// the direction (default ascending).
func parseOrderClause(s string) (string, bool, *Error) {
	toks := lex(s)
	// sqlparse makes surrounding whitespace a token of its own, which
	// MLflow then refuses.
	if len(toks) == 0 || strings.TrimSpace(s) != s || !isPartKind(toks[0].kind) || isReservedWord(toks[0]) {
		return "", false, errorf("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	if w := strings.ToUpper(toks[0].text); toks[0].kind == tkWord && (w == "ASC" || w == "DESC") {
		return "", false, errorf("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	ident, j := parseIdent(toks, 0)
	switch len(toks) - j {
	case 0:
		return ident, true, nil
	case 1:
		t := toks[j]
		if t.kind != tkWord || !t.ws {
			return "", false, errorf("Invalid order_by clause '%s'. Could not be parsed.", s)
		}
		switch strings.ToLower(t.text) {
		case "asc":
			return ident, true, nil
		case "desc":
			return ident, false, nil
		}
		return "", false, errorf("Invalid ordering key in order_by clause '%s'.", s)
	}
	return "", false, errorf("Invalid order_by clause '%s'. Could not be parsed.", s)
}

func pyListRepr(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = "'" + s + "'"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// ParseRunOrderBy parses and validates search_runs order_by entries:
// "<ident> [ASC|DESC]" with a case-insensitive direction (default ASC).
// Keys are metrics, params, tags and the run attributes (created included;
// the bare keyword timestamp is not a run key). A key given twice is an
// error (MLflow answers 500 there; we report it as a 400 *Error).
func ParseRunOrderBy(orderBy []string) ([]OrderKey, error) {
	keys := make([]OrderKey, 0, len(orderBy))
	for _, s := range orderBy {
		raw, asc, err := parseOrderClause(s)
		if err != nil {
			return nil, err
		}
		ent, key, hasEnt := splitIdent(raw)
		k := OrderKey{Entity: EntityAttribute, Asc: asc}
		if hasEnt {
			e, ok := entityAliases[trimBackticks(ent)]
			if !ok {
				return nil, errorf("Invalid entity type '%s'. Valid values are %s", trimBackticks(ent), validEntitiesText)
			}
			k.Entity = e
		}
		key = trimBackticks(stripQuotes(key))
		switch k.Entity {
		case EntityAttribute:
			canon, ok := runOrderAttrs[key]
			if !ok {
				return nil, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, runOrderAttrsText)
			}
			key = canon
		case EntityDataset:
			if _, ok := datasetCodes[key]; !ok {
				return nil, errorf("Invalid dataset key '%s' specified. Valid keys are '{'name', 'digest', 'context'}'", key)
			}
			return nil, errorf("Invalid identifier type '%s'", EntityDataset)
		}
		k.Key = key
		for _, prev := range keys {
			if prev.Entity == k.Entity && prev.Key == k.Key {
				return nil, errorf("`order_by` contains duplicate fields: %s", pyListRepr(orderBy))
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

var expOrderAttrs = map[string]bool{
	"name": true, "experiment_id": true, "creation_time": true, "last_update_time": true,
}

const expOrderAttrsText = "{'name', 'experiment_id', 'creation_time', 'last_update_time'}"

// ParseExperimentOrderBy parses and validates search_experiments order_by
// entries. Keys are name, experiment_id, creation_time and
// last_update_time, optionally prefixed with "attribute.".
func ParseExperimentOrderBy(orderBy []string) ([]OrderKey, error) {
	keys := make([]OrderKey, 0, len(orderBy))
	for _, s := range orderBy {
		raw, asc, err := parseOrderClause(s)
		if err != nil {
			return nil, err
		}
		ent, key, hasEnt := splitIdent(raw)
		if hasEnt {
			switch ent {
			case "attribute":
			case "tag", "tags":
				return nil, errorf("Invalid order_by entity: %s", EntityTag)
			default:
				return nil, errorf("Invalid entity type '%s'. Valid entity types are %s", ent, expEntitiesText)
			}
		}
		key = trimBackticks(stripQuotes(key))
		if !expOrderAttrs[key] {
			return nil, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, expOrderAttrsText)
		}
		keys = append(keys, OrderKey{Entity: EntityAttribute, Key: key, Asc: asc})
	}
	return keys, nil
}

// CompareRuns orders two runs by keys followed by MLflow's tie-breakers:
// start_time DESC (unless start_time was ordered explicitly), then run_id
// ASC; with no keys that is the default order start_time DESC, run_id ASC.
// It returns a negative number when a sorts first, positive when b does.
//
// Runs missing a key's value sort last whatever the direction. For metrics
// a NaN latest value sorts after every real number and before missing
// values; NaNs tie with each other.
func CompareRuns(keys []OrderKey, a, b RunView) int {
	startExplicit := false
	for i := range keys {
		k := &keys[i]
		if k.Entity == EntityAttribute && canonRunAttr(k.Key) == "start_time" {
			startExplicit = true
		}
		if c := compareRunKey(k, a, b); c != 0 {
			return c
		}
	}
	if !startExplicit {
		if c := cmp.Compare(b.StartTime(), a.StartTime()); c != 0 {
			return c
		}
	}
	return strings.Compare(a.RunID(), b.RunID())
}

func canonRunAttr(key string) string {
	if key == "created" || key == "Created" {
		return "start_time"
	}
	return key
}

// rank: 0 value present, 1 NaN (metrics only), 2 missing.
func compareRunKey(k *OrderKey, a, b RunView) int {
	var c int
	switch k.Entity {
	case EntityMetric:
		va, oka := a.LatestMetric(k.Key)
		vb, okb := b.LatestMetric(k.Key)
		ra, rb := metricRank(va, oka), metricRank(vb, okb)
		if ra != rb {
			return cmp.Compare(ra, rb)
		}
		if ra != 0 {
			return 0
		}
		c = cmp.Compare(va, vb)
	case EntityParam:
		va, oka := a.Param(k.Key)
		vb, okb := b.Param(k.Key)
		if r := presence(oka, okb); r != 0 || !oka {
			return r
		}
		c = strings.Compare(va, vb)
	case EntityTag:
		va, oka := a.Tag(k.Key)
		vb, okb := b.Tag(k.Key)
		if r := presence(oka, okb); r != 0 || !oka {
			return r
		}
		c = strings.Compare(va, vb)
	case EntityAttribute:
		switch canonRunAttr(k.Key) {
		case "start_time":
			c = cmp.Compare(a.StartTime(), b.StartTime())
		case "end_time":
			va, oka := a.EndTime()
			vb, okb := b.EndTime()
			if r := presence(oka, okb); r != 0 || !oka {
				return r
			}
			c = cmp.Compare(va, vb)
		case "run_id":
			c = strings.Compare(a.RunID(), b.RunID())
		case "run_name":
			c = strings.Compare(a.RunName(), b.RunName())
		case "user_id":
			c = strings.Compare(a.UserID(), b.UserID())
		case "status":
			c = strings.Compare(a.Status(), b.Status())
		case "artifact_uri":
			c = strings.Compare(a.ArtifactURI(), b.ArtifactURI())
		}
	}
	if !k.Asc {
		c = -c
	}
	return c
}

func metricRank(v float64, ok bool) int {
	switch {
	case !ok:
		return 2
	case math.IsNaN(v):
		return 1
	}
	return 0
}

// presence orders present values before missing ones.
func presence(oka, okb bool) int {
	switch {
	case oka == okb:
		return 0
	case oka:
		return -1
	}
	return 1
}

var defaultExperimentOrder = []OrderKey{
	{Entity: EntityAttribute, Key: "creation_time", Asc: false},
	{Entity: EntityAttribute, Key: "experiment_id", Asc: true},
}

// CompareExperiments orders two experiments by keys; with no keys the
// default is creation_time DESC, experiment_id ASC. When keys do not
// include experiment_id, MLflow's tie-breaker experiment_id DESC is applied.
// Experiment ids compare as integers (they are an integer column in MLflow).
func CompareExperiments(keys []OrderKey, a, b ExperimentView) int {
	if len(keys) == 0 {
		keys = defaultExperimentOrder
	}
	hasID := false
	for i := range keys {
		k := &keys[i]
		var c int
		switch k.Key {
		case "name":
			c = strings.Compare(a.Name(), b.Name())
		case "experiment_id":
			hasID = true
			c = compareExperimentIDs(a.ExperimentID(), b.ExperimentID())
		case "creation_time":
			c = cmp.Compare(a.CreationTime(), b.CreationTime())
		case "last_update_time":
			c = cmp.Compare(a.LastUpdateTime(), b.LastUpdateTime())
		}
		if !k.Asc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	if !hasID {
		return -compareExperimentIDs(a.ExperimentID(), b.ExperimentID())
	}
	return 0
}

// compareExperimentIDs compares ids numerically; non-numeric ids (which
// MLflow never issues) sort after numeric ones, by string.
func compareExperimentIDs(a, b string) int {
	ia, erra := strconv.ParseInt(a, 10, 64)
	ib, errb := strconv.ParseInt(b, 10, 64)
	switch {
	case erra == nil && errb == nil:
		return cmp.Compare(ia, ib)
	case erra == nil:
		return -1
	case errb == nil:
		return 1
	}
	return strings.Compare(a, b)
}
