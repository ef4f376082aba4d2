package search

import (
	"math"
	"strings"
)

// Accessors for stores that seek in SQL: a keyset cursor's recorded sort
// values, and the parts of a logged model order entry, so that a store
// can compile "rows after the cursor" into a WHERE clause that agrees with
// the comparator that ordered the previous page.

// KeysetValue is one sort value recorded in a keyset cursor. Str and Int
// hold the value (both for trace and logged model attributes, which
// record a string and a number), Float a metric value, Present whether
// the row had the tag, param or metric.
type KeysetValue struct {
	Str     string
	Int     int64
	Float   float64
	Present bool
}

// Value returns the sort value recorded under name: an accessor name
// ("name", "version", "last_updated_timestamp", "creation_timestamp", ...)
// or a prefixed key ("t.<tag>", "p.<param>", "m.<metric>",
// "a.<attribute>", "md.<metadata key>"). ok is false when the cursor is
// not a keyset position.
func (c *Cursor) Value(name string) (v KeysetValue, ok bool) {
	if c == nil || c.after == nil {
		return v, false
	}
	cv := c.after.get(name)
	return KeysetValue{Str: cv.S, Int: cv.N, Float: math.Float64frombits(cv.F), Present: cv.OK}, true
}

// LatestLoggedModelMetric returns the value a logged model order entry on
// a metric sorts the cursor's model by (see CompareLoggedModels), and
// whether the model had one. ok is false when the cursor is not a keyset
// position.
func (c *Cursor) LatestLoggedModelMetric(o *LoggedModelOrder) (value float64, present, ok bool) {
	if c == nil || c.after == nil {
		return 0, false, false
	}
	value, present = latestMetric(lmCursor{c.after}, o)
	return value, present, true
}

// Metric returns the metric key of an order entry on "metrics.<key>"
// ("" for an attribute).
func (o *LoggedModelOrder) Metric() string {
	if o.metric != "" {
		return o.metric
	}
	if k, ok := strings.CutPrefix(o.FieldName, "metrics."); ok {
		return k
	}
	return ""
}

// Attr returns the canonical attribute (a LoggedModelAttr key) of an
// order entry on an attribute ("" for a metric or an unknown field).
func (o *LoggedModelOrder) Attr() string {
	if o.attr != "" {
		return o.attr
	}
	return loggedModelOrderAttrs[o.FieldName]
}
