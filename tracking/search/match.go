package search

import "math"

// Dataset is one dataset input of a run, as seen by dataset clauses.
type Dataset struct {
	Name   string
	Digest string
	// Context is the value of the input tag mlflow.data.context; "" means
	// the input has no context tag (datasets.context clauses skip it).
	Context string
}

// RunView gives a matcher or comparator access to one run. Stores implement
// it, typically lazily, so that only the data a filter needs is loaded.
type RunView interface {
	RunID() string
	// RunName is used for ordering by run_name; run_name filters match
	// the mlflow.runName tag instead, as MLflow does.
	RunName() string
	UserID() string
	// Status is the run status name: RUNNING, SCHEDULED, FINISHED, FAILED
	// or KILLED.
	Status() string
	ArtifactURI() string
	StartTime() int64
	// EndTime returns false when the end time is unset.
	EndTime() (int64, bool)
	// LatestMetric returns the latest value of a metric (the value with the
	// greatest (step, timestamp, value)); it may be NaN.
	LatestMetric(key string) (value float64, ok bool)
	Param(key string) (string, bool)
	Tag(key string) (string, bool)
	Datasets() []Dataset
}

// ExperimentView gives a matcher or comparator access to one experiment.
type ExperimentView interface {
	ExperimentID() string
	Name() string
	CreationTime() int64
	LastUpdateTime() int64
	Tag(key string) (string, bool)
}

// runNameTag is the tag MLflow matches run_name clauses against.
const runNameTag = "mlflow.runName"

// MatchRun reports whether the run satisfies every clause of f. It does not
// allocate for clauses produced by ParseRunFilter.
func MatchRun(f RunFilter, r RunView) bool {
	for i := range f {
		if !matchRunClause(&f[i], r) {
			return false
		}
	}
	return true
}

func matchRunClause(c *Clause, r RunView) bool {
	switch c.Entity {
	case EntityMetric:
		v, ok := r.LatestMetric(c.Key)
		if !ok {
			return false
		}
		if math.IsNaN(v) {
			v = 0 // MLflow stores NaN as 0 plus an is_nan flag.
		}
		return compareNum(v, c.Op, c.Num)
	case EntityParam:
		v, ok := r.Param(c.Key)
		return matchKeyed(c, v, ok)
	case EntityTag:
		v, ok := r.Tag(c.Key)
		return matchKeyed(c, v, ok)
	case EntityAttribute:
		attr := c.attr
		if attr == attrNone {
			attr = attrCodes[c.Key]
		}
		switch attr {
		case attrStartTime:
			return compareNum(float64(r.StartTime()), c.Op, c.Num)
		case attrEndTime:
			v, ok := r.EndTime()
			return ok && compareNum(float64(v), c.Op, c.Num)
		case attrRunID:
			return matchString(c, r.RunID())
		case attrRunName:
			v, ok := r.Tag(runNameTag)
			return ok && matchString(c, v)
		case attrUserID:
			return matchString(c, r.UserID())
		case attrStatus:
			return matchString(c, r.Status())
		case attrArtifactURI:
			return matchString(c, r.ArtifactURI())
		}
		return false
	case EntityDataset:
		attr := c.attr
		if attr == attrNone {
			attr = datasetCodes[c.Key]
		}
		for _, d := range r.Datasets() {
			var v string
			switch attr {
			case attrName:
				v = d.Name
			case attrDigest:
				v = d.Digest
			case attrContext:
				if d.Context == "" {
					continue
				}
				v = d.Context
			default:
				return false
			}
			if matchString(c, v) {
				return true
			}
		}
		return false
	}
	return false
}

func matchKeyed(c *Clause, v string, ok bool) bool {
	switch c.Op {
	case OpIsNull:
		return !ok
	case OpIsNotNull:
		return ok
	}
	return ok && matchString(c, v)
}

func matchString(c *Clause, v string) bool {
	switch c.Op {
	case OpEq:
		return v == c.Str
	case OpNe:
		return v != c.Str
	case OpLike, OpILike:
		p := c.pat
		if p == nil {
			p = compileLike(c.Str, c.Op == OpILike)
		}
		return p.match(v)
	case OpRLike:
		return c.re != nil && c.re.MatchString(v)
	case OpIn:
		return inList(c, v)
	case OpNotIn:
		return !inList(c, v)
	}
	return false
}

func inList(c *Clause, v string) bool {
	if c.set != nil {
		_, ok := c.set[v]
		return ok
	}
	for _, s := range c.List {
		if s == v {
			return true
		}
	}
	return false
}

func compareNum(a float64, op string, b float64) bool {
	switch op {
	case OpEq:
		return a == b
	case OpNe:
		return a != b
	case OpGt:
		return a > b
	case OpGe:
		return a >= b
	case OpLt:
		return a < b
	case OpLe:
		return a <= b
	}
	return false
}

// MatchExperiment reports whether the experiment satisfies every clause
// (as produced by ParseExperimentFilter).
func MatchExperiment(clauses []Clause, e ExperimentView) bool {
	for i := range clauses {
		if !matchExperimentClause(&clauses[i], e) {
			return false
		}
	}
	return true
}

func matchExperimentClause(c *Clause, e ExperimentView) bool {
	switch c.Entity {
	case EntityTag:
		v, ok := e.Tag(c.Key)
		return matchKeyed(c, v, ok)
	case EntityAttribute:
		attr := c.attr
		if attr == attrNone {
			attr = expFilterAttrs[c.Key]
		}
		switch attr {
		case attrExpName:
			return matchString(c, e.Name())
		case attrCreationTime:
			return compareNum(float64(e.CreationTime()), c.Op, c.Num)
		case attrLastUpdateTime:
			return compareNum(float64(e.LastUpdateTime()), c.Op, c.Num)
		}
	}
	return false
}
