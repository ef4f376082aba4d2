package search

import (
	"cmp"
	"strings"
)

// Logged model search grammar (MLflow 3's SearchLoggedModelsUtils):
// attributes name, model_id, model_type, status, source_run_id (= != LIKE
// ILIKE IN NOT IN) and creation_timestamp / last_updated_timestamp (also
// spelled creation_time / last_updated_time; numeric comparators); tags and
// params (= != LIKE ILIKE); metrics (numeric comparators).

const loggedModelAttrsText = "{'name', 'model_id', 'model_type', 'status', 'source_run_id', 'creation_timestamp', 'creation_time', 'last_updated_timestamp', 'last_updated_time'}"

// LoggedModelView gives a matcher or comparator access to one logged
// model.
type LoggedModelView interface {
	// LoggedModelAttr returns a string attribute (name, model_id,
	// model_type, status, source_run_id, experiment_id,
	// artifact_location, status_message) or a numeric one
	// (creation_timestamp, last_updated_timestamp, status_number).
	LoggedModelAttr(key string) (string, int64)
	Tag(key string) (string, bool)
	Param(key string) (string, bool)
	// MetricPoints returns every logged value of a metric.
	MetricPoints(key string) []MetricPoint
	// HasDatasetMetric reports whether any metric was computed on one of
	// the datasets.
	HasDatasetMetric(datasets []DatasetRef) bool
}

// MetricPoint is one logged value of a logged model's metric.
type MetricPoint struct {
	Value         float64
	Timestamp     int64
	Step          int64
	DatasetName   string
	DatasetDigest string
}

// DatasetRef names a dataset in a search_logged_models datasets clause
// or order_by entry. An empty Digest matches any digest.
type DatasetRef struct {
	Name   string `json:"dataset_name"`
	Digest string `json:"dataset_digest,omitempty"`
}

// Matches reports whether a metric's dataset is this one.
func (d DatasetRef) Matches(name, digest string) bool {
	return name == d.Name && (d.Digest == "" || digest == d.Digest)
}

// LoggedModelOrder is one search_logged_models order_by entry: an
// attribute, or "metrics.<key>" with an optional dataset restriction.
type LoggedModelOrder struct {
	FieldName     string
	Ascending     bool
	DatasetName   string
	DatasetDigest string

	metric string // the metric key, for metrics.<key>
	attr   string // the canonical attribute, otherwise
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
// produced by ParseLoggedModelFilter), as MLflow's SQL store decides: a
// metric clause holds when any logged value of the metric (on one of the
// datasets, when datasets are given) satisfies it; with datasets and no
// metric clause, the model needs some metric on one of the datasets.
func MatchLoggedModel(clauses []Clause, datasets []DatasetRef, m LoggedModelView) bool {
	hasMetricClause := false
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
			hasMetricClause = true
			for _, p := range m.MetricPoints(c.Key) {
				if len(datasets) > 0 && !inDatasets(datasets, p) {
					continue
				}
				if compareNum(p.Value, c.Op, c.Num) {
					ok = true
					break
				}
			}
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
	if len(datasets) > 0 && !hasMetricClause {
		return m.HasDatasetMetric(datasets)
	}
	return true
}

func inDatasets(datasets []DatasetRef, p MetricPoint) bool {
	for _, d := range datasets {
		if d.Matches(p.DatasetName, p.DatasetDigest) {
			return true
		}
	}
	return false
}

// loggedModelOrderAttrs maps the attribute names order_by accepts (MLflow's
// SqlLoggedModel columns and aliases) to LoggedModelAttr keys.
var loggedModelOrderAttrs = map[string]string{
	"model_id": "model_id", "experiment_id": "experiment_id", "name": "name",
	"artifact_location": "artifact_location", "model_type": "model_type", "source_run_id": "source_run_id",
	"status_message": "status_message", "status": "status_number",
	"creation_timestamp_ms": "creation_timestamp", "creation_timestamp": "creation_timestamp", "creation_time": "creation_timestamp",
	"last_updated_timestamp_ms": "last_updated_timestamp", "last_updated_timestamp": "last_updated_timestamp",
}

// ParseLoggedModelOrderBy checks search_logged_models order_by entries
// with MLflow's messages.
func ParseLoggedModelOrderBy(orderBy []LoggedModelOrder) ([]LoggedModelOrder, error) {
	out := make([]LoggedModelOrder, len(orderBy))
	for i, o := range orderBy {
		if o.FieldName == "" {
			return nil, errorf("Invalid order by field name: %s", o.FieldName)
		}
		ent, key, dotted := strings.Cut(o.FieldName, ".")
		switch {
		case !dotted:
			attr, ok := loggedModelOrderAttrs[o.FieldName]
			if !ok {
				return nil, errorf("Invalid order by field name: %s", o.FieldName)
			}
			o.attr = attr
		case ent != "metrics":
			return nil, errorf("Invalid order by field name: %s. Only metrics are supported.", o.FieldName)
		default:
			o.metric = key
		}
		out[i] = o
	}
	return out, nil
}

// latestMetric is the value MLflow orders by: the metric's value with the
// greatest (timestamp, step) among those on the order's dataset.
func latestMetric(m LoggedModelView, o *LoggedModelOrder) (float64, bool) {
	points := m.MetricPoints(o.metric)
	if i := latestIndex(points, o); i >= 0 {
		return points[i].Value, true
	}
	return 0, false
}

// latestIndex is the index of the point latestMetric picks (the first of
// the greatest (timestamp, step) on the order's dataset), or -1.
func latestIndex(points []MetricPoint, o *LoggedModelOrder) int {
	best := -1
	for i, p := range points {
		if o.DatasetName != "" && p.DatasetName != o.DatasetName {
			continue
		}
		if o.DatasetDigest != "" && p.DatasetDigest != o.DatasetDigest {
			continue
		}
		if b := best; b < 0 || p.Timestamp > points[b].Timestamp || (p.Timestamp == points[b].Timestamp && p.Step > points[b].Step) {
			best = i
		}
	}
	return best
}

// CompareLoggedModels orders two models by keys (missing values last),
// then creation time newest first unless a key orders by it, then model
// id.
func CompareLoggedModels(keys []LoggedModelOrder, a, b LoggedModelView) int {
	hasCreation := false
	for i := range keys {
		k := &keys[i]
		var c int
		if k.metric != "" {
			va, oka := latestMetric(a, k)
			vb, okb := latestMetric(b, k)
			if oka != okb {
				if oka {
					return -1
				}
				return 1
			}
			c = cmp.Compare(va, vb)
		} else {
			hasCreation = hasCreation || k.attr == "creation_timestamp"
			sa, na := a.LoggedModelAttr(k.attr)
			sb, nb := b.LoggedModelAttr(k.attr)
			if sa == "" && sb == "" {
				c = cmp.Compare(na, nb)
			} else {
				// Empty (NULL) strings sort last either way.
				if (sa == "") != (sb == "") {
					if sa != "" {
						return -1
					}
					return 1
				}
				c = cmp.Compare(sa, sb)
			}
		}
		if !k.Ascending {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	if !hasCreation {
		_, na := a.LoggedModelAttr("creation_timestamp")
		_, nb := b.LoggedModelAttr("creation_timestamp")
		if c := cmp.Compare(nb, na); c != 0 {
			return c
		}
	}
	ia, _ := a.LoggedModelAttr("model_id")
	ib, _ := b.LoggedModelAttr("model_id")
	return cmp.Compare(ia, ib)
}
