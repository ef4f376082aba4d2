package search

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/internal/fuzzguard"
)

// Fuzz targets for every search grammar (runs, experiments, registered
// models, model versions, logged models, traces; run filters cover the
// datasets.* clauses). They are seeded with every filter and order_by the
// conformance corpus holds, plus hostile strings. Properties checked beyond
// "no panic":
//
//   - a parse error is a *Error with a message (the API reports it as 400
//     INVALID_PARAMETER_VALUE), never another type;
//   - a parsed clause has a canonical comparator;
//   - matching a parsed filter against a few views never panics;
//   - a parsed order_by gives comparators that are antisymmetric and
//     reflexive (sort.Slice relies on that);
//   - the LIKE fast paths agree with a plain reference matcher;
//   - no single input runs longer than fuzzguard.Limit (a hang, not a
//     performance bound: inputs are at most about a megabyte and take
//     milliseconds; the limit is wide enough for -race on a loaded machine).

// grammar selects the parser a fuzz input goes to.
type grammar uint8

const (
	gRuns grammar = iota
	gExperiments
	gRegisteredModels
	gModelVersions
	gLoggedModels
	gTraces
	numGrammars
)

func (g grammar) String() string {
	return [...]string{"runs", "experiments", "registered_models", "model_versions", "logged_models", "traces"}[g%numGrammars]
}

// grammarOfPath maps a recorded request path to its search grammar.
func grammarOfPath(path string) (grammar, bool) {
	switch {
	case strings.HasSuffix(path, "/mlflow/runs/search"):
		return gRuns, true
	case strings.HasSuffix(path, "/mlflow/experiments/search"):
		return gExperiments, true
	case strings.HasSuffix(path, "/mlflow/registered-models/search"):
		return gRegisteredModels, true
	case strings.HasSuffix(path, "/mlflow/model-versions/search"):
		return gModelVersions, true
	case strings.HasSuffix(path, "/mlflow/logged-models/search"):
		return gLoggedModels, true
	case strings.HasSuffix(path, "/mlflow/traces"), strings.HasSuffix(path, "/mlflow/traces/search"):
		return gTraces, true
	}
	return 0, false
}

// corpusSearch is one search request from the conformance corpus.
type corpusSearch struct {
	g       grammar
	filters []string
	orderBy []string
}

// conformanceSearches extracts the filter and order_by values of every
// search request in testdata/conformance.
func conformanceSearches(f *testing.F) []corpusSearch {
	f.Helper()
	dir := conformanceDir()
	if dir == "" {
		f.Fatal("conformance corpus not found in testdata/conformance")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no conformance files in %s: %v", dir, err)
	}
	var out []corpusSearch
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var e struct {
				Path    string         `json:"path"`
				Query   string         `json:"query"`
				ReqBody map[string]any `json:"req_body"`
			}
			// Lines whose body is not an object (binary uploads) are
			// not searches.
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			g, ok := grammarOfPath(e.Path)
			if !ok {
				continue
			}
			cs := corpusSearch{g: g}
			if q, err := url.ParseQuery(e.Query); err == nil {
				cs.filters = append(cs.filters, q["filter"]...)
				cs.filters = append(cs.filters, q["filter_string"]...)
				cs.orderBy = append(cs.orderBy, q["order_by"]...)
				cs.orderBy = append(cs.orderBy, q["order_by[]"]...)
			}
			for _, k := range []string{"filter", "filter_string"} {
				if s, ok := e.ReqBody[k].(string); ok {
					cs.filters = append(cs.filters, s)
				}
			}
			if list, ok := e.ReqBody["order_by"].([]any); ok {
				for _, v := range list {
					switch v := v.(type) {
					case string:
						cs.orderBy = append(cs.orderBy, v)
					case map[string]any: // logged models: {field_name, ascending, ...}
						if s, ok := v["field_name"].(string); ok {
							cs.orderBy = append(cs.orderBy, s)
						}
					}
				}
			}
			if len(cs.filters)+len(cs.orderBy) > 0 {
				out = append(out, cs)
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
	}
	if len(out) == 0 {
		f.Fatal("the conformance corpus holds no search request")
	}
	return out
}

// hostileFilters are attack and edge-case strings tried with every grammar.
var hostileFilters = []string{
	"", " ", "\x00", "'", "\"", "`", "(", ")", "((((", "))))", ".", "-", "--", "/*", "*/", ";",
	"name = 'x' OR 1=1", "name = 'x'; DROP TABLE runs; --", "name = '' OR ''=''",
	"attributes.name = 'a' UNION SELECT * FROM users", "tags.x = 'a' /* c */ AND tags.y = 'b'",
	"name LIKE '%' ESCAPE '\\'", "name = 'a\\' AND tags.x = 'b'", "name = \"a\"\"b\"",
	"name = 'a\x00b'", "tags.`a\x00b` = 'x'", "tags.\"\x00\" = 'x'", "params.x = '\xff\xfe'",
	"tags.`ünïcödé` = 'ß'", "name ILIKE '%İ%'", "name ILIKE 'K'", "tags.x = '\u202e\u200b\ufeff'",
	"metrics.m > 1e308", "metrics.m > 1e309", "metrics.m > -1e400", "metrics.m < 99999999999999999999999999999",
	"metrics.m = NaN", "metrics.m = nan", "metrics.m = inf", "metrics.m = -Infinity", "metrics.m > 0x10",
	"metrics.m > 1_000", "metrics.m > .5", "metrics.m > 5.", "metrics.m > --1", "metrics.m > 1e", "metrics.m > 1e+",
	"attributes.start_time > 9223372036854775808", "attributes.start_time < -9223372036854775809",
	"timestamp_ms > 18446744073709551616", "creation_timestamp >= 1e19", "version_number > 1e30",
	"run_id IN ()", "run_id IN ('a',)", "run_id IN ('a' 'b')", "run_id IN (('a'))", "run_id IN ('a', ('b'))",
	"run_id NOT IN ('a'", "name IN ('a','b')", "name NOT  IN ('a')", "tags.x IS NULL", "tags.x IS NOT NULL",
	"tags.x IS", "tags.x IS NOT", "tags.x NOT NULL", "tags.x = NULL", "params.x IS NULL AND",
	"AND", "AND AND", "name = 'a' AND", "AND name = 'a'", "name = 'a' and NAME = 'b'", "name = 'a' name = 'b'",
	"request_metadata.`mlflow.sourceRun` = 'x'", "trace.status RLIKE '(a+)+$'", "tags.x RLIKE '['",
	"tags.x RLIKE 'a{1000}{1000}'", "tags.x RLIKE '\\p{'", "run = 'x'", "span.name = 'x'",
	"datasets.name = 'x'", "datasets.digest IN ('a')", "datasets.context = 'training'", "dataset.name LIKE '%'",
	"metrics.`a.b` > 1", "tags.\"a b\" = 'x'", "`tags`.`x` = 'y'", "tags.`x = 'y'", "tags.x = 'y",
	"name = 'y''", "name == 'x'", "name <> 'x'", "name => 'x'", "name = = 'x'", "name != != 'x'",
	"model_type = 'x' AND source_run_id IN ('a') AND metrics.acc >= 0.5 AND params.lr = '0.1'",
	"tags.x LIKE '" + strings.Repeat("%_", 200) + "'", "name ILIKE '" + strings.Repeat("%a", 300) + "b'",
}

// pathologicalFilters are large or deeply nested inputs: each must be
// answered (parsed or refused) promptly.
func pathologicalFilters() []string {
	return []string{
		strings.Repeat("(", 10000) + "name = 'x'" + strings.Repeat(")", 10000),
		strings.Repeat("name = 'x' AND ", 2000) + "name = 'x'",
		strings.Repeat("AND ", 10000),
		"run_id IN (" + strings.Repeat("'abc',", 10000) + "'abc')",
		"run_id IN " + strings.Repeat("(", 10000),
		"tags.x = '" + strings.Repeat("a", 128<<10) + "'",
		"tags.`" + strings.Repeat("k", 128<<10) + "` = 'v'",
		"tags.x LIKE '" + strings.Repeat("%a", 10000) + "b'",
		"tags.x ILIKE '" + strings.Repeat("_%", 10000) + "'",
		"metrics.m > " + strings.Repeat("9", 20000),
		"metrics.m > 1e" + strings.Repeat("9", 20000),
		strings.Repeat("'", 20001),
		strings.Repeat("`", 20001),
		strings.Repeat("\"", 20001),
		strings.Repeat("\x00", 20000),
		strings.Repeat("é", 20000),
		"trace.status RLIKE '" + strings.Repeat("(a*)*", 2000) + "'",
	}
}

// parseFilter runs the grammar's filter parser and, when it accepts, matches
// the result against the views of that grammar.
func parseFilter(t *testing.T, g grammar, filter string) error {
	t.Helper()
	var clauses []Clause
	var err error
	switch g % numGrammars {
	case gRuns:
		var rf RunFilter
		rf, err = ParseRunFilter(filter)
		clauses = rf
		if err == nil {
			for _, r := range fuzzRuns {
				MatchRun(rf, r)
			}
		}
	case gExperiments:
		clauses, err = ParseExperimentFilter(filter)
		if err == nil {
			for _, e := range fuzzExperiments {
				MatchExperiment(clauses, e)
			}
		}
	case gRegisteredModels:
		clauses, err = ParseRegisteredModelFilter(filter)
		if err == nil {
			for _, m := range fuzzModelVersions {
				MatchRegisteredModel(clauses, m)
			}
		}
	case gModelVersions:
		clauses, err = ParseModelVersionFilter(filter)
		if err == nil {
			for _, m := range fuzzModelVersions {
				MatchModelVersion(clauses, m)
			}
		}
	case gLoggedModels:
		clauses, err = ParseLoggedModelFilter(filter)
		if err == nil {
			for _, m := range fuzzLoggedModels {
				MatchLoggedModel(clauses, nil, m)
				MatchLoggedModel(clauses, []DatasetRef{{Name: "ds"}, {Name: "ds2", Digest: "d2"}}, m)
			}
		}
	case gTraces:
		clauses, err = ParseTraceFilter(filter)
		if err == nil {
			for _, tr := range fuzzTraces {
				MatchTrace(clauses, tr)
			}
		}
	}
	if err != nil {
		checkSearchError(t, err)
		return err
	}
	for _, c := range clauses {
		if !canonicalOps[c.Op] {
			t.Fatalf("%s filter %q: clause %+v has a non-canonical comparator", g, filter, c)
		}
	}
	return nil
}

var canonicalOps = map[string]bool{
	OpEq: true, OpNe: true, OpGt: true, OpGe: true, OpLt: true, OpLe: true, OpLike: true, OpILike: true,
	OpRLike: true, OpIn: true, OpNotIn: true, OpIsNull: true, OpIsNotNull: true,
}

// checkSearchError asserts that err is what the API turns into a 400
// INVALID_PARAMETER_VALUE: a *Error with a message.
func checkSearchError(t *testing.T, err error) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v is a %T, want *search.Error (reported as INVALID_PARAMETER_VALUE)", err, err)
	}
	if se.Message == "" {
		t.Fatal("*search.Error with an empty message")
	}
}

// FuzzSearchFilter parses a filter with one of the six grammars and matches
// what parses.
func FuzzSearchFilter(f *testing.F) {
	for _, cs := range conformanceSearches(f) {
		for _, s := range cs.filters {
			f.Add(uint8(cs.g), s)
		}
	}
	for _, s := range hostileFilters {
		for g := range numGrammars {
			f.Add(uint8(g), s)
		}
	}
	f.Fuzz(func(t *testing.T, g uint8, filter string) {
		defer fuzzguard.Start("filter", grammar(g).String(), filter)()
		_ = parseFilter(t, grammar(g), filter)
	})
}

// orderSep separates order_by entries in FuzzSearchOrderBy inputs; in a
// logged-model entry, datasetSep separates field, dataset name and digest.
const (
	orderSep   = "\x1f"
	datasetSep = "\x1e"
)

// parseOrderBy runs the grammar's order_by parser over entries joined by
// orderSep and checks the comparators it yields.
func parseOrderBy(t *testing.T, g grammar, joined string) error {
	t.Helper()
	entries := strings.Split(joined, orderSep)
	var err error
	switch g % numGrammars {
	case gRuns:
		var keys []OrderKey
		if keys, err = ParseRunOrderBy(entries); err == nil {
			checkOrder(t, "runs", joined, fuzzRuns, func(a, b RunView) int { return CompareRuns(keys, a, b) })
		}
	case gExperiments:
		var keys []OrderKey
		if keys, err = ParseExperimentOrderBy(entries); err == nil {
			checkOrder(t, "experiments", joined, fuzzExperiments, func(a, b ExperimentView) int { return CompareExperiments(keys, a, b) })
		}
	case gRegisteredModels:
		var keys []OrderKey
		if keys, err = ParseRegisteredModelOrderBy(entries); err == nil {
			checkOrder(t, "registered models", joined, fuzzModelVersions, func(a, b ModelVersionView) int { return CompareRegisteredModels(keys, a, b) })
		}
	case gModelVersions:
		var keys []OrderKey
		if keys, err = ParseModelVersionOrderBy(entries); err == nil {
			checkOrder(t, "model versions", joined, fuzzModelVersions, func(a, b ModelVersionView) int { return CompareModelVersions(keys, a, b) })
		}
	case gLoggedModels:
		orders := make([]LoggedModelOrder, len(entries))
		for i, e := range entries {
			field, ds, _ := strings.Cut(e, datasetSep)
			name, digest, _ := strings.Cut(ds, datasetSep)
			asc := true
			if rest, ok := strings.CutPrefix(field, "-"); ok {
				field, asc = rest, false
			}
			orders[i] = LoggedModelOrder{FieldName: field, Ascending: asc, DatasetName: name, DatasetDigest: digest}
		}
		var keys []LoggedModelOrder
		if keys, err = ParseLoggedModelOrderBy(orders); err == nil {
			checkOrder(t, "logged models", joined, fuzzLoggedModels, func(a, b LoggedModelView) int { return CompareLoggedModels(keys, a, b) })
		}
	case gTraces:
		var keys []OrderKey
		if keys, err = ParseTraceOrderBy(entries); err == nil {
			checkOrder(t, "traces", joined, fuzzTraces, func(a, b TraceView) int { return CompareTraces(keys, a, b) })
		}
	}
	if err != nil {
		checkSearchError(t, err)
	}
	return err
}

// checkOrder asserts that cmp is reflexive and antisymmetric over views.
func checkOrder[V any](t *testing.T, what, orderBy string, views []V, cmp func(a, b V) int) {
	t.Helper()
	sign := func(n int) int {
		switch {
		case n < 0:
			return -1
		case n > 0:
			return 1
		}
		return 0
	}
	for i, a := range views {
		if c := cmp(a, a); c != 0 {
			t.Fatalf("%s order_by %q: view %d compares %d with itself", what, orderBy, i, c)
		}
		for j, b := range views[i+1:] {
			if ab, ba := sign(cmp(a, b)), sign(cmp(b, a)); ab != -ba {
				t.Fatalf("%s order_by %q: not antisymmetric for views %d and %d: cmp(a,b)=%d cmp(b,a)=%d", what, orderBy, i, i+1+j, ab, ba)
			}
		}
	}
}

// hostileOrderBy are attack and edge-case order_by entries; an entry list is
// joined by orderSep.
var hostileOrderBy = []string{
	"", " ", "\x00", "'", "`", "\"", "name", "name ASC", "name DESC", "name desc", "name asc asc",
	"name DESC; DROP TABLE runs", "name, start_time", "metrics.m DESC" + orderSep + "metrics.m ASC",
	"ASC", "DESC", " name", "name ", "name\tDESC", "name\nDESC", "metrics.`a b` DESC", "tags.\"x\"",
	"params.`` ASC", "metrics.", "tags.", ".", "attribute.", "attributes.start_time", "created DESC",
	"timestamp", "timestamp_ms DESC", "execution_time_ms", "version_number DESC", "last_updated_timestamp",
	"creation_timestamp" + datasetSep + "ds" + datasetSep + "d1", "-metrics.m" + datasetSep + "ds",
	"metrics.m" + datasetSep + datasetSep + "d2", "-model_id", "status", "datasets.name", "dataset.digest",
	"request_metadata.x", "trace.timestamp_ms ASC", "tags.`ünï` DESC", "metrics.\xff\xfe",
	strings.Repeat("a", 10000), strings.Repeat("metrics.m"+orderSep, 200) + "x",
	strings.Repeat("(", 1000), "name " + strings.Repeat("DESC ", 100),
}

// FuzzSearchOrderBy parses order_by entries with one of the six grammars and
// checks the comparator of what parses.
func FuzzSearchOrderBy(f *testing.F) {
	for _, cs := range conformanceSearches(f) {
		if len(cs.orderBy) > 0 {
			f.Add(uint8(cs.g), strings.Join(cs.orderBy, orderSep))
			for _, s := range cs.orderBy {
				f.Add(uint8(cs.g), s)
			}
		}
	}
	for _, s := range hostileOrderBy {
		for g := range numGrammars {
			f.Add(uint8(g), s)
		}
	}
	f.Fuzz(func(t *testing.T, g uint8, orderBy string) {
		defer fuzzguard.Start("order_by", grammar(g).String(), orderBy)()
		_ = parseOrderBy(t, grammar(g), orderBy)
	})
}

// FuzzLikeMatch checks the compiled LIKE / ILIKE matcher (fast paths for
// prefix, suffix, contains and '%'-segments, and the general matcher)
// against a straightforward dynamic-programming reference.
func FuzzLikeMatch(f *testing.F) {
	for _, p := range []string{
		"", "%", "%%", "_", "a", "abc", "a%", "%a", "%a%", "a%b", "%a%b%", "a_c", "%_%", "_%_", "%ab%ab",
		"ab%ab", "aa%aa", "%aa%aa%", "É%", "%ß", "_é_", "İ", "K%", "ǅ", "%\x00%", strings.Repeat("%a", 30),
	} {
		for _, s := range []string{"", "a", "abc", "abab", "aaa", "aXbYc", "éÉ", "ß", "ss", "i̇", "k", "ǆ", "\x00", "ab" + strings.Repeat("a", 40)} {
			f.Add(p, s, false)
			f.Add(p, s, true)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, s string, fold bool) {
		defer fuzzguard.Start("like", pattern, s)()
		got := compileLike(pattern, fold).match(s)
		// The reference is quadratic; compare on valid UTF-8 (what the
		// store holds: JSON decoding replaces invalid bytes) of modest
		// size.
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern)*len(s) > 1<<20 {
			return
		}
		if want := referenceLike(pattern, s, fold); got != want {
			t.Fatalf("like(%q, %q, fold=%v) = %v, reference says %v", s, pattern, fold, got, want)
		}
	})
}

// referenceLike is SQL LIKE over runes ('%' any run, '_' one rune, no
// escape), by dynamic programming; fold compares unicode.ToLower of both.
func referenceLike(pattern, s string, fold bool) bool {
	p, r := []rune(pattern), []rune(s)
	if fold {
		for i := range p {
			p[i] = unicode.ToLower(p[i])
		}
		for i := range r {
			r[i] = unicode.ToLower(r[i])
		}
	}
	// m[j]: pattern prefix p[:i] matches r[:j].
	m := make([]bool, len(r)+1)
	m[0] = true
	for i := range p {
		next := make([]bool, len(r)+1)
		for j := 0; j <= len(r); j++ {
			switch {
			case p[i] == '%':
				next[j] = m[j] || (j > 0 && next[j-1])
			case j > 0 && (p[i] == '_' || p[i] == r[j-1]):
				next[j] = m[j-1]
			}
		}
		m = next
	}
	return m[len(r)]
}

// TestPathologicalSearchInputs runs every parser on huge and deeply nested
// inputs: each must be answered (parsed or refused with a *Error) without
// hanging. The same inputs are fuzz seeds in spirit; they are kept out of
// the fuzz corpus because megabyte seeds slow every mutation.
func TestPathologicalSearchInputs(t *testing.T) {
	for _, in := range pathologicalFilters() {
		for g := range numGrammars {
			done := fuzzguard.Start("pathological filter", g.String(), in)
			_ = parseFilter(t, g, in)
			if g == gRuns || g == gLoggedModels {
				// The other order_by grammars share the runs' clause
				// lexer; logged models have their own field check.
				_ = parseOrderBy(t, g, in)
			}
			done()
		}
	}
}

// Views the fuzz targets match and order against: one with every key
// (values derived from the key, NaN for metrics whose key starts with "n"),
// one with none, and ordinary ones.

type anyKeyRun struct{ testRun }

func (anyKeyRun) LatestMetric(k string) (float64, bool) {
	if strings.HasPrefix(k, "n") {
		return math.NaN(), true
	}
	return float64(len(k)), true
}
func (anyKeyRun) Param(k string) (string, bool) { return "p-" + k, true }
func (anyKeyRun) Tag(k string) (string, bool)   { return "t-" + k, true }

var fuzzRuns = []RunView{
	&anyKeyRun{testRun{id: "a1", name: "alpha", user: "u", status: "RUNNING", uri: "s3://b/a1", start: 5, datasets: []Dataset{{Name: "ds", Digest: "d1", Context: "training"}}}},
	&testRun{id: "b2", status: "FINISHED", start: 5, end: 9, hasEnd: true},
	&testRun{id: "c3", name: "gamma", status: "FAILED", start: -1, metrics: map[string]float64{"m": nan, "acc": 0.5, "inf": math.Inf(1)},
		params: map[string]string{"x": "a", "lr": "0.1"}, tags: map[string]string{"x": "", "mlflow.runName": "gamma"},
		datasets: []Dataset{{Name: "ds"}, {Name: "DS", Digest: "d2"}}},
	&testRun{id: "d4", name: "delta", start: math.MaxInt64, metrics: map[string]float64{"m": math.Inf(-1), "acc": -0.0}},
}

type anyKeyExp struct{ testExp }

func (anyKeyExp) Tag(k string) (string, bool) { return "t-" + k, true }

var fuzzExperiments = []ExperimentView{
	&anyKeyExp{testExp{id: "0", name: "Default", created: 1, update: 2}},
	&testExp{id: "1", name: "", created: math.MinInt64, update: math.MaxInt64},
	&testExp{id: "10", name: "é", created: 1, update: 1, tags: map[string]string{"x": "y", "": ""}},
}

type anyKeyMV struct{ mvFake }

func (anyKeyMV) Tag(k string) (string, bool) { return "t-" + k, true }

var fuzzModelVersions = []ModelVersionView{
	&anyKeyMV{mvFake{rmFake: rmFake{name: "m", upd: 3}, version: 1, runID: "r1", src: "models:/m/1", created: 1}},
	mvFake{rmFake: rmFake{name: "m"}, version: 2},
	mvFake{rmFake: rmFake{name: "Ünï", tags: map[string]string{"mlflow.prompt.is_prompt": "true"}, upd: -1}, version: math.MaxInt64, created: math.MinInt64},
}

type fuzzLoggedModel struct {
	attrs   map[string]string
	nums    map[string]int64
	tags    map[string]string
	params  map[string]string
	metrics map[string][]MetricPoint
	anyKey  bool
}

func (m *fuzzLoggedModel) LoggedModelAttr(k string) (string, int64) { return m.attrs[k], m.nums[k] }
func (m *fuzzLoggedModel) Tag(k string) (string, bool) {
	if m.anyKey {
		return "t-" + k, true
	}
	v, ok := m.tags[k]
	return v, ok
}
func (m *fuzzLoggedModel) Param(k string) (string, bool) {
	if m.anyKey {
		return "p-" + k, true
	}
	v, ok := m.params[k]
	return v, ok
}
func (m *fuzzLoggedModel) MetricPoints(k string) []MetricPoint {
	if m.anyKey {
		return []MetricPoint{{Value: float64(len(k)), DatasetName: "ds"}, {Value: math.NaN(), Timestamp: 1, DatasetName: "ds2", DatasetDigest: "d2"}}
	}
	return m.metrics[k]
}
func (m *fuzzLoggedModel) HasDatasetMetric(ds []DatasetRef) bool {
	for _, pts := range m.metrics {
		for _, p := range pts {
			if inDatasets(ds, p) {
				return true
			}
		}
	}
	return m.anyKey
}

var fuzzLoggedModels = []LoggedModelView{
	&fuzzLoggedModel{anyKey: true, attrs: map[string]string{"model_id": "m-1", "name": "a", "status": "READY"}, nums: map[string]int64{"creation_timestamp": 1, "status_number": 2}},
	&fuzzLoggedModel{attrs: map[string]string{"model_id": "m-2"}},
	&fuzzLoggedModel{attrs: map[string]string{"model_id": "m-3", "name": "é", "model_type": "agent", "source_run_id": "r"},
		nums:    map[string]int64{"creation_timestamp": math.MaxInt64, "last_updated_timestamp": math.MinInt64},
		tags:    map[string]string{"x": "y"},
		params:  map[string]string{"lr": "0.1"},
		metrics: map[string][]MetricPoint{"acc": {{Value: math.NaN(), DatasetName: "ds"}, {Value: math.Inf(1), Timestamp: 2, Step: 1, DatasetName: "ds2", DatasetDigest: "d2"}}}},
}

type anyKeyTrace struct{ fakeTrace }

func (anyKeyTrace) Tag(k string) (string, bool)      { return "t-" + k, true }
func (anyKeyTrace) Metadata(k string) (string, bool) { return "m-" + k, true }

var fuzzTraces = []TraceView{
	anyKeyTrace{fakeTrace{attrs: map[string]string{"request_id": "tr-1", "status": "OK"}, nums: map[string]int64{"timestamp_ms": 1}, linked: "r1"}},
	fakeTrace{attrs: map[string]string{"request_id": "tr-2"}},
	fakeTrace{attrs: map[string]string{"request_id": "tr-3", "status": "ERROR", "client_request_id": "c"},
		nums: map[string]int64{"timestamp_ms": math.MaxInt64, "execution_time_ms": -1, "end_time_ms": math.MinInt64},
		tags: map[string]string{"mlflow.traceName": "predict"}, meta: map[string]string{"mlflow.sourceRun": "r1"}},
}
