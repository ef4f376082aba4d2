package search

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseRunFilterValid(t *testing.T) {
	tests := []struct {
		filter string
		want   []Clause
	}{
		{"", nil},
		{"AND", nil},
		{"metrics.acc > 0.5", []Clause{{Entity: EntityMetric, Key: "acc", Op: ">", Str: "0.5", Num: 0.5}}},
		{"metric.acc>=-1", []Clause{{Entity: EntityMetric, Key: "acc", Op: ">=", Str: "-1", Num: -1}}},
		{"metrics.acc < 1.5E-3", []Clause{{Entity: EntityMetric, Key: "acc", Op: "<", Str: "1.5E-3", Num: 1.5e-3}}},
		{"metrics.acc <= .5", []Clause{{Entity: EntityMetric, Key: "acc", Op: "<=", Str: ".5", Num: .5}}},
		{"metrics.acc != 5.", []Clause{{Entity: EntityMetric, Key: "acc", Op: "!=", Str: "5.", Num: 5}}},
		{"metrics.`f1-score` = 1e3", []Clause{{Entity: EntityMetric, Key: "f1-score", Op: "=", Str: "1e3", Num: 1000}}},
		{"`metrics`.`a b` > 1", []Clause{{Entity: EntityMetric, Key: "a b", Op: ">", Str: "1", Num: 1}}},
		{`metrics."a b" > 1`, []Clause{{Entity: EntityMetric, Key: "a b", Op: ">", Str: "1", Num: 1}}},
		{"params.lr = '0.1'", []Clause{{Entity: EntityParam, Key: "lr", Op: "=", Str: "0.1"}}},
		{`param.lr = "0.1"`, []Clause{{Entity: EntityParam, Key: "lr", Op: "=", Str: "0.1"}}},
		{"parameters.x like 'a%'", []Clause{{Entity: EntityParam, Key: "x", Op: "LIKE", Str: "a%"}}},
		{"parameter.x Ilike '%A_'", []Clause{{Entity: EntityParam, Key: "x", Op: "ILIKE", Str: "%A_"}}},
		{"params.x = ''", []Clause{{Entity: EntityParam, Key: "x", Op: "=", Str: ""}}},
		{"params.x = 'it''s'", []Clause{{Entity: EntityParam, Key: "x", Op: "=", Str: "it''s"}}},
		{"params.x IS NULL", []Clause{{Entity: EntityParam, Key: "x", Op: "IS NULL"}}},
		{"tags.x is not null", []Clause{{Entity: EntityTag, Key: "x", Op: "IS NOT NULL"}}},
		{"tags.mlflow.runName = 'r'", []Clause{{Entity: EntityTag, Key: "mlflow.runName", Op: "=", Str: "r"}}},
		{"tag.`a b` != 'x'", []Clause{{Entity: EntityTag, Key: "a b", Op: "!=", Str: "x"}}},
		{"attributes.status = 'FINISHED'", []Clause{{Entity: EntityAttribute, Key: "status", Op: "=", Str: "FINISHED"}}},
		{"attribute.user_id = 'u'", []Clause{{Entity: EntityAttribute, Key: "user_id", Op: "=", Str: "u"}}},
		{"attr.artifact_uri LIKE 's3:%'", []Clause{{Entity: EntityAttribute, Key: "artifact_uri", Op: "LIKE", Str: "s3:%"}}},
		{"run.run_name ILIKE 'a%'", []Clause{{Entity: EntityAttribute, Key: "run_name", Op: "ILIKE", Str: "a%"}}},
		{"`Run name` = 'x'", []Clause{{Entity: EntityAttribute, Key: "run_name", Op: "=", Str: "x"}}},
		{"attributes.`run name` = 'x'", []Clause{{Entity: EntityAttribute, Key: "run_name", Op: "=", Str: "x"}}},
		{"created >= 5", []Clause{{Entity: EntityAttribute, Key: "start_time", Op: ">=", Str: "5", Num: 5}}},
		{"Created < 5", []Clause{{Entity: EntityAttribute, Key: "start_time", Op: "<", Str: "5", Num: 5}}},
		{"end_time != 1700000000000", []Clause{{Entity: EntityAttribute, Key: "end_time", Op: "!=", Str: "1700000000000", Num: 1700000000000}}},
		{"run_id IN ('a1', 'b2')", []Clause{{Entity: EntityAttribute, Key: "run_id", Op: "IN", List: []string{"a1", "b2"}}}},
		{"run_id in ('a')", []Clause{{Entity: EntityAttribute, Key: "run_id", Op: "IN", List: []string{"a"}}}},
		{"attributes.run_id NOT IN ('a', 'B', '12')", []Clause{{Entity: EntityAttribute, Key: "run_id", Op: "NOT IN", List: []string{"a", "12"}}}},
		{"run_id IN ('A')", []Clause{{Entity: EntityAttribute, Key: "run_id", Op: "IN", List: []string{}}}},
		{"datasets.name IN ('eval', 'Frame')", []Clause{{Entity: EntityDataset, Key: "name", Op: "IN", List: []string{"eval", "Frame"}}}},
		{"dataset.digest = 'abc'", []Clause{{Entity: EntityDataset, Key: "digest", Op: "=", Str: "abc"}}},
		{"datasets.context LIKE 'tr%'", []Clause{{Entity: EntityDataset, Key: "context", Op: "LIKE", Str: "tr%"}}},
		{"params.a = 'x' and tags.b = 'y' AND metrics.c > 1", []Clause{
			{Entity: EntityParam, Key: "a", Op: "=", Str: "x"},
			{Entity: EntityTag, Key: "b", Op: "=", Str: "y"},
			{Entity: EntityMetric, Key: "c", Op: ">", Str: "1", Num: 1}}},
		// MLflow quirks: stray ANDs and juxtaposed clauses are accepted.
		{"AND params.a = 'x' AND AND", []Clause{{Entity: EntityParam, Key: "a", Op: "=", Str: "x"}}},
		{"metrics.a > 1 metrics.b > 2", []Clause{
			{Entity: EntityMetric, Key: "a", Op: ">", Str: "1", Num: 1},
			{Entity: EntityMetric, Key: "b", Op: ">", Str: "2", Num: 2}}},
		{"status = 'x'and status = 'y'", []Clause{
			{Entity: EntityAttribute, Key: "status", Op: "=", Str: "x"},
			{Entity: EntityAttribute, Key: "status", Op: "=", Str: "y"}}},
		{"metrics.1st > 0", []Clause{{Entity: EntityMetric, Key: "1st", Op: ">", Str: "0", Num: 0}}},
		{"params.é = 'ü'", []Clause{{Entity: EntityParam, Key: "é", Op: "=", Str: "ü"}}},
		{"metrics. > 1", []Clause{{Entity: EntityMetric, Key: "", Op: ">", Str: "1", Num: 1}}},
		{"params.x = 'a' OR 'b'", nil}, // placeholder replaced below (invalid)
	}
	for _, tc := range tests[:len(tests)-1] {
		got, err := ParseRunFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseRunFilter(%q): %v", tc.filter, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseRunFilter(%q) = %d clauses, want %d", tc.filter, len(got), len(tc.want))
			continue
		}
		for i := range got {
			g, w := got[i], tc.want[i]
			if g.Entity != w.Entity || g.Key != w.Key || g.Op != w.Op || g.Str != w.Str || g.Num != w.Num ||
				!slices.Equal(g.List, w.List) || (g.List == nil) != (w.List == nil) {
				t.Errorf("ParseRunFilter(%q)[%d] = %+v, want %+v", tc.filter, i, g, w)
			}
		}
	}
}

func TestParseRunFilterInvalid(t *testing.T) {
	tests := []struct{ filter, msg string }{
		{" ", "Could not be parsed"},
		{"params.lr = 0.1", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 0.1"},
		{"tags.t = 1", "Expected a quoted string value for tag"},
		{"params.x = cnn", "Parameter value is either not quoted"},
		{"params.x = `cnn`", "Parameter value is either not quoted"},
		{"metrics.acc > '1'", "Expected numeric value type for metric. Found '1'"},
		{"metrics.acc > x", "Expected numeric value type for metric. Found x"},
		{"metrics.acc > 1AND metrics.b > 1", "Expected numeric value type for metric. Found 1AND"},
		{"start_time > '5'", "Expected numeric value type for numeric attribute: start_time. Found '5'"},
		{"created > '5'", "numeric attribute: created"},
		{"status = 5", "Expected a quoted string value for attributes. Got value 5"},
		{"foo = 'x'", "Invalid attribute key 'foo' specified"},
		{"attributes.foo = 'x'", "Invalid attribute key 'foo'"},
		{"timestamp > 5", "Invalid attribute key 'timestamp'"},
		{"experiment_id = '1'", "Invalid attribute key 'experiment_id'"},
		{"lifecycle_stage = 'active'", "Invalid attribute key"},
		{"Metrics.acc > 1", "Invalid entity type 'Metrics'"},
		{`"metrics".a > 1`, `Invalid entity type '"metrics"'`},
		{"`metrics.a` > 1", "Invalid entity type '`metrics'"},
		{"datasets.foo = 'x'", "Invalid dataset key 'foo'"},
		{"params.x = 'a' OR params.y = 'b'", "Invalid clause(s) in filter string: 'OR'"},
		{"(params.x = 'a')", "Invalid clause(s)"},
		{"NOT params.x = 'a'", "Invalid clause(s)"},
		{"params.x = 'a';", "Invalid clause(s) in filter string: ';'"},
		{"params.x = 'a'; params.y = 'b'", "Search filter contained multiple expression"},
		{"metrics.f1-score > 1", "Invalid clause(s)"},
		{"metrics.a > +1", "Invalid clause(s)"},
		{"metrics.a > 0x10", "0x10"},
		{"params.x = 'a' -- c", "Invalid clause(s)"},
		{"params.x", "Invalid clause(s) in filter string: 'params.x'"},
		{"params.x =", "Invalid clause(s)"},
		{"params.x = 'unterminated", "Invalid clause(s)"},
		{"params.x IS 'a'", "Invalid clause(s)"},
		{"run_id IN 'a'", "Invalid clause(s)"},
		{"run_id IN ('a'", "Invalid clause(s)"},
		{"params.x == 'a'", "Invalid comparator '=='"},
		{"params.x <> 'a'", "Invalid comparator '<>'"},
		{"params.x > 'a'", "Invalid comparator '>'"},
		{"params.x NOT LIKE 'a'", "Invalid comparator 'NOT LIKE'"},
		{"params.x RLIKE 'a'", "Invalid comparator 'RLIKE'"},
		{"tags.x IN ('a')", "Expected a quoted string value for tag"},
		{"metrics.x LIKE 1", "Invalid comparator 'LIKE'"},
		{"metrics.x IS NULL", "Invalid comparator 'IS NULL'"},
		{"start_time LIKE 5", "Invalid comparator 'LIKE'"},
		{"status > 'a'", "Invalid comparator '>'"},
		{"status IS NULL", "Invalid comparator 'IS NULL'"},
		{"datasets.name IS NULL", "Invalid comparator 'IS NULL'"},
		{"datasets.name > 'a'", "Invalid comparator '>'"},
		{"status IN ('a')", "Only the 'run_id' attribute supports comparison with a list"},
		{"status = ('a')", "Only the 'run_id' attribute"},
		{"run_id = ('a')", "cannot be used with a list"},
		{"run_id IN ()", "but got empty list"},
		{"run_id IN ('a',)", "ill-formed list"},
		{"run_id IN ('a' 'b')", "ill-formed list"},
		{"run_id IN (,'a')", "ill-formed list"},
		{"run_id IN ('a', 1)", "different type in list"},
		{`run_id IN ("a")`, "different type in list"},
		{"run_id IN (('a'))", "different type in list"},
		{"datasets.name IN ()", "empty list"},
		{"metrics.a > (1)", "Expected numeric value type for metric. Found (1)"},
	}
	for _, tc := range tests {
		got, err := ParseRunFilter(tc.filter)
		if err == nil {
			t.Errorf("ParseRunFilter(%q) = %+v, want error containing %q", tc.filter, got, tc.msg)
			continue
		}
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("ParseRunFilter(%q): error %T is not *Error", tc.filter, err)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseRunFilter(%q) error %q, want it to contain %q", tc.filter, err, tc.msg)
		}
	}
}

func TestParseExperimentFilter(t *testing.T) {
	valid := []struct {
		filter string
		want   []Clause
	}{
		{"name = 'Alpha'", []Clause{{Entity: EntityAttribute, Key: "name", Op: "=", Str: "Alpha"}}},
		{"attribute.name LIKE 'b%'", []Clause{{Entity: EntityAttribute, Key: "name", Op: "LIKE", Str: "b%"}}},
		{"name ILIKE 'a%' and tags.team != 'red'", []Clause{
			{Entity: EntityAttribute, Key: "name", Op: "ILIKE", Str: "a%"},
			{Entity: EntityTag, Key: "team", Op: "!=", Str: "red"}}},
		{"tag.`owner name` = 'zoe'", []Clause{{Entity: EntityTag, Key: "owner name", Op: "=", Str: "zoe"}}},
		{"creation_time >= 1700000000000", []Clause{{Entity: EntityAttribute, Key: "creation_time", Op: ">=", Str: "1700000000000", Num: 1700000000000}}},
		{"last_update_time < 5", []Clause{{Entity: EntityAttribute, Key: "last_update_time", Op: "<", Str: "5", Num: 5}}},
		{"tags.x IS NULL", []Clause{{Entity: EntityTag, Key: "x", Op: "IS NULL"}}},
		{"tags.x is not null", []Clause{{Entity: EntityTag, Key: "x", Op: "IS NOT NULL"}}},
	}
	for _, tc := range valid {
		got, err := ParseExperimentFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseExperimentFilter(%q): %v", tc.filter, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseExperimentFilter(%q) = %+v", tc.filter, got)
			continue
		}
		for i := range got {
			g, w := got[i], tc.want[i]
			if g.Entity != w.Entity || g.Key != w.Key || g.Op != w.Op || g.Str != w.Str || g.Num != w.Num {
				t.Errorf("ParseExperimentFilter(%q)[%d] = %+v, want %+v", tc.filter, i, g, w)
			}
		}
	}
	invalid := []struct{ filter, msg string }{
		{"name like 'a%'", "Invalid comparator 'like'"},
		{"tags.x ilike 'a%'", "Invalid comparator for tag: ilike"},
		{"attributes.name = 'a'", "Invalid entity type 'attributes'"},
		{"attr.name = 'a'", "Invalid entity type 'attr'"},
		{"`tags`.x = 'a'", "Invalid entity type '`tags`'"},
		{"params.x = 'a'", "Invalid entity type 'params'"},
		{"experiment_id = '1'", "Invalid attribute key 'experiment_id'"},
		{"name = 1", "Expected a quoted string value for attributes"},
		{"creation_time = '1'", "Expected numeric value type for numeric attribute: creation_time"},
		{"creation_time LIKE 1", "Invalid comparator 'LIKE'"},
		{"name > 'a'", "Invalid comparator '>'"},
		{"name IN ('a')", "Only the 'run_id' attribute"},
		{"name IS NULL", "Invalid comparator 'IS NULL'"},
		{"tags.x > 'a'", "Invalid comparator for tag: >"},
		{"tags.x = 1", "Expected a quoted string value for tag"},
		{"name = 'a' OR name = 'b'", "Invalid clause(s)"},
	}
	for _, tc := range invalid {
		_, err := ParseExperimentFilter(tc.filter)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseExperimentFilter(%q) error %v, want %q", tc.filter, err, tc.msg)
		}
	}
}

func TestParseRunOrderBy(t *testing.T) {
	valid := []struct {
		in   []string
		want []OrderKey
	}{
		{nil, []OrderKey{}},
		{[]string{"metrics.acc DESC"}, []OrderKey{{EntityMetric, "acc", false}}},
		{[]string{"metrics.acc"}, []OrderKey{{EntityMetric, "acc", true}}},
		{[]string{"params.`a b` desc", "tags.\"t k\" Asc"}, []OrderKey{{EntityParam, "a b", false}, {EntityTag, "t k", true}}},
		{[]string{"`metrics`.acc ASC"}, []OrderKey{{EntityMetric, "acc", true}}},
		{[]string{"created DESC"}, []OrderKey{{EntityAttribute, "start_time", false}}},
		{[]string{"attributes.run_name", "run_id DESC", "end_time", "status", "user_id", "artifact_uri"}, []OrderKey{
			{EntityAttribute, "run_name", true}, {EntityAttribute, "run_id", false}, {EntityAttribute, "end_time", true},
			{EntityAttribute, "status", true}, {EntityAttribute, "user_id", true}, {EntityAttribute, "artifact_uri", true}}},
		{[]string{"tags.mlflow.runName  DESC"}, []OrderKey{{EntityTag, "mlflow.runName", false}}},
	}
	for _, tc := range valid {
		got, err := ParseRunOrderBy(tc.in)
		if err != nil {
			t.Errorf("ParseRunOrderBy(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseRunOrderBy(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	invalid := []struct {
		in  []string
		msg string
	}{
		{[]string{""}, "Could not be parsed"},
		{[]string{" metrics.acc"}, "Could not be parsed"},
		{[]string{"metrics.acc DESC "}, "Could not be parsed"},
		{[]string{"metrics.acc DOWN"}, "Invalid ordering key in order_by clause"},
		{[]string{"metrics.acc ASC DESC"}, "Could not be parsed"},
		{[]string{"metrics.acc ASC NULLS LAST"}, "Could not be parsed"},
		{[]string{"ASC"}, "Could not be parsed"},
		{[]string{"timestamp"}, "Invalid attribute key 'timestamp'"},
		{[]string{"timestamp DESC"}, "Invalid attribute key 'timestamp'"},
		{[]string{"`Run name`"}, "Invalid attribute key 'Run name'"},
		{[]string{"foo.bar"}, "Invalid entity type 'foo'"},
		{[]string{"datasets.name"}, "Invalid identifier type 'dataset'"},
		{[]string{"datasets.foo"}, "Invalid dataset key"},
		{[]string{"metrics.a", "metric.a DESC"}, "`order_by` contains duplicate fields"},
		{[]string{"start_time", "created DESC"}, "duplicate fields"},
		{[]string{"metrics.a-b"}, "Could not be parsed"},
	}
	for _, tc := range invalid {
		_, err := ParseRunOrderBy(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseRunOrderBy(%q) error %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func TestParseExperimentOrderBy(t *testing.T) {
	got, err := ParseExperimentOrderBy([]string{"name", "experiment_id DESC", "attribute.creation_time asc", "last_update_time DESC"})
	if err != nil {
		t.Fatal(err)
	}
	want := []OrderKey{{EntityAttribute, "name", true}, {EntityAttribute, "experiment_id", false},
		{EntityAttribute, "creation_time", true}, {EntityAttribute, "last_update_time", false}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	for _, tc := range []struct{ in, msg string }{
		{"tags.x", "Invalid order_by entity: tag"},
		{"attributes.name", "Invalid entity type 'attributes'"},
		{"foo", "Invalid attribute key 'foo'"},
		{"name UP", "Invalid ordering key"},
		{"", "Could not be parsed"},
	} {
		if _, err := ParseExperimentOrderBy([]string{tc.in}); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseExperimentOrderBy(%q) error %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func sampleRuns() []*testRun {
	return []*testRun{
		{id: "aaa1", name: "alpha", user: "u1", status: "FINISHED", uri: "s3://b/1", start: 100, end: 150, hasEnd: true,
			metrics: map[string]float64{"acc": 0.9, "loss": 0.1, "f1": nan},
			params:  map[string]string{"model": "cnn", "lr": "0.1"},
			tags:    map[string]string{"mlflow.runName": "alpha", "team": "red", "a b": "x"},
			datasets: []Dataset{{Name: "train", Digest: "d1", Context: "training"},
				{Name: "eval", Digest: "d2"}}},
		{id: "bbb2", name: "Beta", user: "u2", status: "RUNNING", uri: "file:///tmp/2", start: 200,
			metrics: map[string]float64{"acc": 0.5, "f1": 0.7},
			params:  map[string]string{"model": "rnn"},
			tags:    map[string]string{"mlflow.runName": "Beta", "team": "Blue"}},
		{id: "ccc3", name: "gamma_1", user: "u1", status: "KILLED", uri: "s3://b/3", start: 200, end: 300, hasEnd: true,
			metrics:  map[string]float64{"loss": -2},
			params:   map[string]string{"lr": "0.01"},
			tags:     map[string]string{"mlflow.runName": "gamma_1"},
			datasets: []Dataset{{Name: "MNIST", Digest: "d3", Context: "testing"}}},
		{id: "ddd4", name: "", user: "", status: "FAILED", start: 50,
			metrics: map[string]float64{}, params: map[string]string{}, tags: map[string]string{}},
	}
}

func TestMatchRun(t *testing.T) {
	runs := sampleRuns()
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"aaa1", "bbb2", "ccc3", "ddd4"}},
		{"metrics.acc > 0.5", []string{"aaa1"}},
		{"metrics.acc >= 0.5", []string{"aaa1", "bbb2"}},
		{"metrics.acc != 0.5", []string{"aaa1"}}, // runs without acc never match
		{"metrics.f1 = 0", []string{"aaa1"}},     // NaN compares as 0
		{"metrics.f1 < 0.5", []string{"aaa1"}},
		{"metrics.loss < 0", []string{"ccc3"}},
		{"metrics.nope > -1e300", nil},
		{"params.model = 'cnn'", []string{"aaa1"}},
		{"params.model != 'cnn'", []string{"bbb2"}},
		{"params.lr LIKE '0.%'", []string{"aaa1", "ccc3"}},
		{"params.lr LIKE '0._'", []string{"aaa1"}},
		{"params.model LIKE 'CNN'", nil},
		{"params.model ILIKE 'CNN'", []string{"aaa1"}},
		{"params.lr IS NULL", []string{"bbb2", "ddd4"}},
		{"params.lr IS NOT NULL", []string{"aaa1", "ccc3"}},
		{"tags.team = 'red'", []string{"aaa1"}},
		{"tags.team ILIKE 'b%'", []string{"bbb2"}},
		{"tags.team LIKE 'b%'", nil},
		{"tags.`a b` = 'x'", []string{"aaa1"}},
		{"attributes.status = 'FINISHED'", []string{"aaa1"}},
		{"status != 'RUNNING'", []string{"aaa1", "ccc3", "ddd4"}},
		{"status = 'finished'", nil},
		{"run_name LIKE '%a%'", []string{"aaa1", "bbb2", "ccc3"}},
		{"run_name = 'gamma_1'", []string{"ccc3"}},
		{"run_name != 'alpha'", []string{"bbb2", "ccc3"}}, // ddd4 has no mlflow.runName tag
		{"`Run Name` ILIKE 'BETA'", []string{"bbb2"}},
		{"user_id = 'u1'", []string{"aaa1", "ccc3"}},
		{"artifact_uri LIKE 's3://%'", []string{"aaa1", "ccc3"}},
		{"run_id = 'bbb2'", []string{"bbb2"}},
		{"run_id IN ('aaa1', 'ccc3')", []string{"aaa1", "ccc3"}},
		{"run_id IN ('AAA1', 'ccc3')", []string{"ccc3"}},
		{"run_id NOT IN ('aaa1', 'ccc3')", []string{"bbb2", "ddd4"}},
		{"run_id NOT IN ('AAA1')", []string{"aaa1", "bbb2", "ccc3", "ddd4"}},
		{"run_id IN ('x1','x2','x3','x4','x5','x6','x7','x8','x9','ddd4')", []string{"ddd4"}},
		{"start_time >= 200", []string{"bbb2", "ccc3"}},
		{"created < 100", []string{"ddd4"}},
		{"end_time > 0", []string{"aaa1", "ccc3"}},
		{"end_time != 150", []string{"ccc3"}}, // unset end_time never matches
		{"datasets.name = 'train'", []string{"aaa1"}},
		{"datasets.name != 'train'", []string{"aaa1", "ccc3"}}, // any dataset
		{"datasets.name IN ('eval', 'MNIST')", []string{"aaa1", "ccc3"}},
		{"datasets.name NOT IN ('train', 'eval')", []string{"ccc3"}},
		{"datasets.digest LIKE 'd%'", []string{"aaa1", "ccc3"}},
		{"datasets.context = 'training'", []string{"aaa1"}},
		{"datasets.context != 'training'", []string{"ccc3"}}, // eval has no context
		{"datasets.context ILIKE 'TEST%'", []string{"ccc3"}},
		{"datasets.name = 'train' AND datasets.context = 'testing'", nil},
		{"metrics.acc > 0 and params.model = 'rnn'", []string{"bbb2"}},
	}
	for _, tc := range tests {
		f, err := ParseRunFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseRunFilter(%q): %v", tc.filter, err)
			continue
		}
		var got []string
		for _, r := range runs {
			if MatchRun(f, r) {
				got = append(got, r.id)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("filter %q matched %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestMatchHandBuiltClause(t *testing.T) {
	r := sampleRuns()[0]
	f := RunFilter{{Entity: EntityParam, Key: "model", Op: OpLike, Str: "c%"},
		{Entity: EntityAttribute, Key: "status", Op: OpEq, Str: "FINISHED"},
		{Entity: EntityDataset, Key: "context", Op: OpILike, Str: "TRAIN%"}}
	if !MatchRun(f, r) {
		t.Error("hand-built clauses should match")
	}
}

func TestLike(t *testing.T) {
	tests := []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"abc", "abc", false, true},
		{"abc", "abcd", false, false},
		{"a%", "a", false, true},
		{"a%", "ba", false, false},
		{"%a", "ba", false, true},
		{"%b%", "abc", false, true},
		{"%b%", "ac", false, false},
		{"%%", "", false, true},
		{"%", "", false, true},
		{"", "", false, true},
		{"", "a", false, false},
		{"a%c%e", "abcde", false, true},
		{"a%c%e", "ace", false, true},
		{"a%c%e", "acce", false, true},
		{"a%c%e", "abde", false, false},
		{"ab%ba", "aba", false, false},
		{"a_c", "abc", false, true},
		{"a_c", "ac", false, false},
		{"a_c", "aéc", false, true},
		{"_", "é", false, true},
		{"%_%_", "ab", false, true},
		{"%_%_", "a", false, false},
		{"%a_b%", "xxaab", false, true},
		{"%a_b%", "xxab", false, false},
		{"%a_b%", "xxacb", false, true},
		{"a.c", "abc", false, false},  // no regexp semantics
		{"a\\%", "a\\x", false, true}, // no escape character
		{"ABC", "abc", false, false},
		{"ABC", "abc", true, true},
		{"%É_", "xéy", true, true},
		{"gamma_%", "gamma_%", false, true},
		{"gamma_%", "gamma", false, false},
		{"%ss%", "mississippi", false, true},
		{"%s%s%s%s%", "mississippi", false, true},
		{"%s%s%s%s%s%", "mississippi", false, false},
	}
	for _, tc := range tests {
		if got := compileLike(tc.pat, tc.fold).match(tc.s); got != tc.want {
			t.Errorf("LIKE(%q, %q, fold=%v) = %v, want %v", tc.s, tc.pat, tc.fold, got, tc.want)
		}
		// The general matcher must agree with the fast paths.
		if !tc.fold {
			if got := wildcardMatch(tc.s, tc.pat, false); got != tc.want {
				t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.s, tc.pat, got, tc.want)
			}
		}
	}
}

func sortRuns(t *testing.T, orderBy []string, runs []*testRun) []string {
	t.Helper()
	keys, err := ParseRunOrderBy(orderBy)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(runs, func(a, b *testRun) int { return CompareRuns(keys, a, b) })
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.id)
	}
	return ids
}

func TestCompareRuns(t *testing.T) {
	mk := func() []*testRun {
		return []*testRun{
			{id: "r1", start: 10, metrics: map[string]float64{"m": 1}, params: map[string]string{"p": "b"}, tags: map[string]string{}},
			{id: "r2", start: 30, metrics: map[string]float64{"m": nan}, params: map[string]string{}, tags: map[string]string{"t": "x"}},
			{id: "r3", start: 20, metrics: map[string]float64{}, params: map[string]string{"p": "a"}, tags: map[string]string{"t": "y"}, end: 5, hasEnd: true},
			{id: "r4", start: 30, metrics: map[string]float64{"m": -5}, params: map[string]string{"p": "B"}, tags: map[string]string{}},
			{id: "r0", start: 30, metrics: map[string]float64{"m": nan}, params: map[string]string{}, tags: map[string]string{}, end: 1, hasEnd: true},
		}
	}
	tests := []struct {
		orderBy []string
		want    []string
	}{
		{nil, []string{"r0", "r2", "r4", "r3", "r1"}}, // start_time DESC, run_id ASC
		{[]string{"metrics.m ASC"}, []string{"r4", "r1", "r0", "r2", "r3"}},
		{[]string{"metrics.m DESC"}, []string{"r1", "r4", "r0", "r2", "r3"}},
		{[]string{"params.p"}, []string{"r4", "r3", "r1", "r0", "r2"}},
		{[]string{"params.p DESC"}, []string{"r1", "r3", "r4", "r0", "r2"}},
		{[]string{"tags.t DESC"}, []string{"r3", "r2", "r0", "r4", "r1"}},
		{[]string{"attributes.start_time ASC"}, []string{"r1", "r3", "r0", "r2", "r4"}},
		{[]string{"created"}, []string{"r1", "r3", "r0", "r2", "r4"}},
		{[]string{"end_time DESC"}, []string{"r3", "r0", "r2", "r4", "r1"}},
		{[]string{"end_time ASC"}, []string{"r0", "r3", "r2", "r4", "r1"}},
		{[]string{"run_id DESC"}, []string{"r4", "r3", "r2", "r1", "r0"}},
	}
	for _, tc := range tests {
		if got := sortRuns(t, tc.orderBy, mk()); !slices.Equal(got, tc.want) {
			t.Errorf("order_by %q = %v, want %v", tc.orderBy, got, tc.want)
		}
	}
	// String attributes use byte order; run_name uses RunName().
	rs := []*testRun{{id: "1", name: "alpha"}, {id: "2", name: "ALPHA"}, {id: "3", name: "Gamma"}}
	if got := sortRuns(t, []string{"attributes.run_name"}, rs); !slices.Equal(got, []string{"2", "3", "1"}) {
		t.Errorf("run_name order %v", got)
	}
}

func TestCompareExperiments(t *testing.T) {
	mk := func() []*testExp {
		return []*testExp{
			{id: "0", name: "Default", created: 1, update: 1},
			{id: "2", name: "b", created: 5, update: 9},
			{id: "10", name: "a", created: 5, update: 5},
			{id: "3", name: "B", created: 7, update: 7},
		}
	}
	tests := []struct {
		orderBy []string
		want    []string
	}{
		{nil, []string{"3", "2", "10", "0"}}, // creation_time DESC, experiment_id ASC (numeric)
		{[]string{"name"}, []string{"3", "0", "10", "2"}},
		{[]string{"name DESC"}, []string{"2", "10", "0", "3"}},
		{[]string{"creation_time"}, []string{"0", "10", "2", "3"}}, // tie-breaker experiment_id DESC
		{[]string{"experiment_id"}, []string{"0", "2", "3", "10"}},
		{[]string{"experiment_id DESC"}, []string{"10", "3", "2", "0"}},
		{[]string{"last_update_time DESC"}, []string{"2", "3", "10", "0"}},
	}
	for _, tc := range tests {
		keys, err := ParseExperimentOrderBy(tc.orderBy)
		if err != nil {
			t.Fatal(err)
		}
		exps := mk()
		slices.SortStableFunc(exps, func(a, b *testExp) int { return CompareExperiments(keys, a, b) })
		var got []string
		for _, e := range exps {
			got = append(got, e.id)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("order_by %q = %v, want %v", tc.orderBy, got, tc.want)
		}
	}
}

func TestMatchExperiment(t *testing.T) {
	exps := []*testExp{
		{id: "1", name: "Alpha", created: 10, update: 20, tags: map[string]string{"team": "red"}},
		{id: "2", name: "alpha-2", created: 20, update: 20, tags: map[string]string{"team": "Red", "env": "prod"}},
		{id: "3", name: "gamma_%", created: 30, update: 40, tags: map[string]string{}},
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"name = 'Alpha'", []string{"1"}},
		{"name LIKE 'alpha%'", []string{"2"}},
		{"name ILIKE 'alpha%'", []string{"1", "2"}},
		{"name != 'Alpha'", []string{"2", "3"}},
		{"name LIKE 'gamma_\\%'", nil},
		{"tags.team = 'red'", []string{"1"}},
		{"tags.team != 'red'", []string{"2"}},
		{"tags.team ILIKE 'RED'", []string{"1", "2"}},
		{"tags.team IS NULL", []string{"3"}},
		{"tags.env IS NOT NULL", []string{"2"}},
		{"creation_time > 10", []string{"2", "3"}},
		{"last_update_time = 20 AND tags.team LIKE 'r%'", []string{"1"}},
	}
	for _, tc := range tests {
		cl, err := ParseExperimentFilter(tc.filter)
		if err != nil {
			t.Errorf("%q: %v", tc.filter, err)
			continue
		}
		var got []string
		for _, e := range exps {
			if MatchExperiment(cl, e) {
				got = append(got, e.id)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("filter %q matched %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestPageTokens(t *testing.T) {
	for _, tc := range []struct {
		n   int
		tok string
	}{{7, "eyJvZmZzZXQiOiA3fQ=="}, {100, "eyJvZmZzZXQiOiAxMDB9"}, {14, "eyJvZmZzZXQiOiAxNH0="}} {
		if got := EncodePageToken(tc.n); got != tc.tok {
			t.Errorf("EncodePageToken(%d) = %q, want %q", tc.n, got, tc.tok)
		}
		if got, err := DecodePageToken(tc.tok); err != nil || got != tc.n {
			t.Errorf("DecodePageToken(%q) = %d, %v", tc.tok, got, err)
		}
	}
	if n, err := DecodePageToken(""); n != 0 || err != nil {
		t.Errorf("empty token: %d %v", n, err)
	}
	b64 := func(s string) string { return encodeStd(s) }
	ok := []struct {
		tok  string
		want int
	}{
		{b64(`{"offset":5}`), 5},
		{b64(`{"offset": "12"}`), 12},
		{b64(`{"offset": 3.9}`), 3},
		{b64(`{"offset": 2, "x": 1}`), 2},
		{"eyJvZmZzZXQiOiA3fQ==\n", 7},
		{"eyJvZmZz ZXQiOiA3fQ==", 7},
	}
	for _, tc := range ok {
		if got, err := DecodePageToken(tc.tok); err != nil || got != tc.want {
			t.Errorf("DecodePageToken(%q) = %d, %v; want %d", tc.tok, got, err, tc.want)
		}
	}
	bad := []struct{ tok, msg string }{
		{"eyJvZmZzZXQiOiA3fQ", "could not base64-decode"},
		{"a", "could not base64-decode"},
		{"é", "could not base64-decode"},
		{b64("not json"), "decoded value=b'not json'"},
		{b64(`{"offset": 1} x`), "decoded value="},
		{b64(`{"offset": 0}`), "parsed value="},
		{b64(`{}`), "parsed value="},
		{b64(`[1]`), "parsed value="},
		{b64(`{"offset": -3}`), "parsed value="},
		{b64(`{"offset": "abc"}`), "not stringable abc"},
		{b64(`{"offset": [1]}`), "not stringable"},
	}
	for _, tc := range bad {
		_, err := DecodePageToken(tc.tok)
		var se *Error
		if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "Invalid page token") {
			t.Errorf("DecodePageToken(%q) error %v, want %q", tc.tok, err, tc.msg)
		}
	}
}

func TestMatchRunNoAlloc(t *testing.T) {
	f, err := ParseRunFilter("metrics.acc > 0.1 AND params.model LIKE 'c%n' AND tags.team ILIKE 'R%' AND " +
		"status != 'X' AND run_id NOT IN ('a','b') AND run_name LIKE '%ph%' AND start_time > 0 AND datasets.context = 'training'")
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRuns()[0]
	if !MatchRun(f, r) {
		t.Fatal("expected a match")
	}
	if n := testing.AllocsPerRun(100, func() { MatchRun(f, r) }); n != 0 {
		t.Errorf("MatchRun allocates %v times per call", n)
	}
}

func TestNaNFilterValues(t *testing.T) {
	// Infinite literals are accepted like Python's float() does.
	f, err := ParseRunFilter("metrics.acc < 1e999")
	if err != nil || !math.IsInf(f[0].Num, 1) {
		t.Fatalf("got %v %v", f, err)
	}
}

func BenchmarkMatchRun(b *testing.B) {
	f, _ := ParseRunFilter("metrics.acc > 0.1 AND params.model LIKE 'c%' AND tags.team ILIKE '%e_' AND status = 'FINISHED'")
	r := sampleRuns()[0]
	b.ReportAllocs()
	for b.Loop() {
		MatchRun(f, r)
	}
}

func FuzzParseRunFilter(f *testing.F) {
	for _, s := range []string{
		"", "metrics.acc > 0.5 AND params.x = 'a'", "run_id IN ('a','b')", "datasets.name NOT IN ('x')",
		"tags.`a b` ILIKE '%x_'", "params.x IS NOT NULL", "attributes.start_time >= -1.5e3",
		"params.x = 'a'; params.y = 'b'", "`Run name` = \"x\"", "metrics.f1-score > 1", "run_id IN (('a'))",
		"'", "\"", "`", "(", "metrics.", ".", "-", "NOT", "IS", "a IS NOT",
	} {
		f.Add(s)
	}
	run := sampleRuns()[0]
	f.Fuzz(func(t *testing.T, s string) {
		rf, err := ParseRunFilter(s)
		if err == nil {
			MatchRun(rf, run)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T", err)
		}
		if cl, err := ParseExperimentFilter(s); err == nil {
			MatchExperiment(cl, &testExp{id: "1", name: "x", tags: map[string]string{}})
		}
		if keys, err := ParseRunOrderBy([]string{s}); err == nil {
			CompareRuns(keys, run, sampleRuns()[1])
		}
		_, _ = DecodePageToken(s)
	})
}
