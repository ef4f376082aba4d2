package search

import (
	"strings"
	"testing"
)

type rmFake struct {
	name string
	tags map[string]string
	upd  int64
}

func (m rmFake) Name() string                { return m.name }
func (m rmFake) LastUpdatedTimestamp() int64 { return m.upd }
func (m rmFake) Tag(k string) (string, bool) {
	v, ok := m.tags[k]
	return v, ok
}

type mvFake struct {
	rmFake
	version    int64
	runID, src string
	created    int64
}

func (v mvFake) Version() int64           { return v.version }
func (v mvFake) RunID() string            { return v.runID }
func (v mvFake) Source() string           { return v.src }
func (v mvFake) CreationTimestamp() int64 { return v.created }

func TestRegisteredModelFilter(t *testing.T) {
	plain := rmFake{name: "m-alpha", tags: map[string]string{"team": "red"}}
	prompt := rmFake{name: "p", tags: map[string]string{promptTagKey: "true"}}
	cases := []struct {
		filter       string
		plain, promp bool
		err          string
	}{
		{"", true, false, ""},
		{"name = 'm-alpha'", true, false, ""},
		{"name like 'm-%'", true, false, ""},
		{"name LIKE 'M-%'", false, false, ""},
		{"name ILIKE 'M-%'", true, false, ""},
		{"attribute.name != 'x'", true, false, ""},
		{"tags.team = 'red'", true, false, ""},
		{"tag.team != 'red'", false, false, ""},
		{"tags.missing != 'x'", false, false, ""},
		{"tag.`mlflow.prompt.is_prompt` != 'true'", true, false, ""},
		{"tags.`mlflow.prompt.is_prompt` = 'true'", false, true, ""},
		{"name = 'm-alpha' AND tags.team = 'red'", true, false, ""},
		{"run_id = 'x'", false, false, "Invalid attribute key 'run_id'"},
		{"metrics.a = 1", false, false, "Invalid entity type 'metrics'"},
		{"name > 'a'", false, false, "Invalid comparator '>'"},
		{"name = 1", false, false, "Expected a quoted string value"},
		{"name IN ('a')", false, false, "Invalid comparator"},
	}
	for _, c := range cases {
		f, err := ParseRegisteredModelFilter(c.filter)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.filter, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if got := MatchRegisteredModel(f, plain); got != c.plain {
			t.Errorf("%q on plain model: %v", c.filter, got)
		}
		if got := MatchRegisteredModel(f, prompt); got != c.promp {
			t.Errorf("%q on prompt: %v", c.filter, got)
		}
	}
}

func TestModelVersionFilter(t *testing.T) {
	v := mvFake{rmFake: rmFake{name: "clf", tags: map[string]string{"a": "1"}}, version: 3, runID: "abc", src: "s3://bucket/model"}
	cases := []struct {
		filter string
		match  bool
		err    string
	}{
		{"", true, ""},
		{"name = 'clf'", true, ""},
		{"run_id = 'abc'", true, ""},
		{"run_id IN ('x', 'abc')", true, ""},
		{"run_id IN ('x')", false, ""},
		{"source_path = 's3://bucket/model'", true, ""},
		{"source_path LIKE 's3://%'", true, ""},
		{"version_number > 2", true, ""},
		{"version_number <= 2", false, ""},
		{"tags.a = '1'", true, ""},
		{"name = 'clf' AND version_number = 3", true, ""},
		{"version_number = '3'", false, "Expected numeric value type"},
		{"version_number LIKE 3", false, "Invalid comparator"},
		{"name IN ('clf')", false, "Only the 'run_id' attribute supports"},
		{"stage = 'None'", false, "Invalid attribute key 'stage'"},
		{"run_id IN ()", false, "empty list"},
	}
	for _, c := range cases {
		f, err := ParseModelVersionFilter(c.filter)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.filter, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.filter, err)
			continue
		}
		if got := MatchModelVersion(f, v); got != c.match {
			t.Errorf("%q: match %v, want %v", c.filter, got, c.match)
		}
	}
}

func TestRegistryOrderBy(t *testing.T) {
	for _, c := range []struct {
		rm     bool
		in     []string
		want   string
		errSub string
	}{
		{true, []string{"name DESC"}, "name:false", ""},
		{true, []string{"timestamp"}, "last_updated_timestamp:true", ""},
		{true, []string{"last_updated_timestamp desc", "name"}, "last_updated_timestamp:false,name:true", ""},
		{true, []string{"creation_timestamp"}, "", "Invalid order by key 'creation_timestamp'"},
		{true, []string{"name", "name DESC"}, "", "duplicate"},
		{false, []string{"version_number ASC"}, "version_number:true", ""},
		{false, []string{"creation_timestamp DESC"}, "creation_timestamp:false", ""},
		{false, []string{"run_id"}, "", "Invalid order by key 'run_id'"},
		{false, []string{"name sideways"}, "", "Invalid ordering key"},
	} {
		var keys []OrderKey
		var err error
		if c.rm {
			keys, err = ParseRegisteredModelOrderBy(c.in)
		} else {
			keys, err = ParseModelVersionOrderBy(c.in)
		}
		if c.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("%v: error %v, want %q", c.in, err, c.errSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		var parts []string
		for _, k := range keys {
			d := "false"
			if k.Asc {
				d = "true"
			}
			parts = append(parts, k.Key+":"+d)
		}
		if got := strings.Join(parts, ","); got != c.want {
			t.Errorf("%v: %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCompareModelVersionsDefault(t *testing.T) {
	mk := func(name string, v, upd int64) mvFake {
		return mvFake{rmFake: rmFake{name: name, upd: upd}, version: v}
	}
	a, b, c := mk("x", 3, 10), mk("x", 2, 10), mk("a", 1, 5)
	if CompareModelVersions(nil, a, b) >= 0 { // same time, same name: version DESC
		t.Error("v3 should sort before v2")
	}
	if CompareModelVersions(nil, b, c) >= 0 { // newer first
		t.Error("newer should sort first")
	}
	if CompareRegisteredModels(nil, rmFake{name: "B"}, rmFake{name: "a"}) >= 0 { // bytewise name ASC
		t.Error("'B' should sort before 'a'")
	}
}
