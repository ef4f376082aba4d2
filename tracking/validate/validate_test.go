package validate

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

const (
	badChars = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
	badPath  = "Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to "
	docsHint = " See the API docs for more information about request parameters."
)

// wantErr checks that err is an INVALID_PARAMETER_VALUE *tracking.Error with
// message want, or that err is nil when want is "".
func wantErr(t *testing.T, name string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		return
	}
	e, ok := tracking.AsError(err)
	if !ok {
		t.Errorf("%s: got %v, want *tracking.Error %q", name, err, want)
		return
	}
	if e.Code != tracking.InvalidParameterValue {
		t.Errorf("%s: code %s, want INVALID_PARAMETER_VALUE", name, e.Code)
	}
	if e.Message != want {
		t.Errorf("%s:\n got %q\nwant %q", name, e.Message, want)
	}
}

// Cases taken from the MLflow 2.22.1 transcripts (file and seq in the name).
func TestTranscriptParams(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, want, wantValue string
	}{
		{"params_metrics#3", "alpha", "0.5", "", "0.5"},
		{"params_metrics#8 empty value", "empty", "", "", ""},
		{"params_metrics#9 6000", "long", strings.Repeat("v", 6000), "", strings.Repeat("v", 6000)},
		{"params_metrics#10 6001 truncated", "toolong", strings.Repeat("v", 6001), "", strings.Repeat("v", 6000)},
		{"params_metrics#11 key 250", strings.Repeat("k", 250), "x", "", "x"},
		{"params_metrics#12 key 251", strings.Repeat("k", 251), "x", "'Param key' exceeds the maximum length of 250 characters", ""},
		{"params_metrics#13 unicode value", "unicode", "ñ€😀", "", "ñ€😀"},
		{"params_metrics#14 bad chars", "bad key!", "x", `Invalid value "bad key!" for parameter 'key' supplied: ` + badChars, ""},
		{"params_metrics#15 ../up", "../up", "x", `Invalid value "../up" for parameter 'key' supplied: ` + badPath + "'../up'", ""},
		{"params_metrics#16 missing key", "", "x", "Missing value for required parameter 'key'." + docsHint, ""},
	} {
		p := tracking.Param{Key: tc.key, Value: tc.value}
		err := Param(&p, "")
		wantErr(t, tc.name, err, tc.want)
		if err == nil && p.Value != tc.wantValue {
			t.Errorf("%s: value has %d code points, want %d", tc.name, runeLen(p.Value), runeLen(tc.wantValue))
		}
	}
}

func TestTranscriptMetrics(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    tracking.Metric
		want string
	}{
		{"params_metrics#21", tracking.Metric{Key: "loss", Value: 1.5, Timestamp: 1700000000001}, ""},
		{"params_metrics#24 NaN", tracking.Metric{Key: "nan", Value: math.NaN(), Timestamp: 1700000000000}, ""},
		{"params_metrics#25 Inf", tracking.Metric{Key: "inf", Value: math.Inf(1), Timestamp: 1700000000000}, ""},
		{"params_metrics#32 negative step", tracking.Metric{Key: "negstep", Value: 1, Timestamp: 1700000000000, Step: -3}, ""},
		{"params_metrics#40 missing key", tracking.Metric{Value: 1, Timestamp: 1700000000000}, "Missing value for required parameter 'key'." + docsHint},
		{"params_metrics#43 bad chars", tracking.Metric{Key: "bad key!", Value: 1, Timestamp: 1700000000000},
			`Invalid value "bad key!" for parameter 'name' supplied: ` + badChars},
		{"params_metrics#44 key 251", tracking.Metric{Key: strings.Repeat("k", 251), Value: 1, Timestamp: 1700000000000},
			"'Metric name' exceeds the maximum length of 250 characters"},
	} {
		wantErr(t, tc.name, Metric(tc.m, ""), tc.want)
	}
}

func TestTranscriptTags(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, want string
		wantLen                int
	}{
		{"runs_errors#27/29 missing key", "", "v", "Missing value for required parameter 'key'." + docsHint, 0},
		{"runs_errors#30 key 251", strings.Repeat("a", 251), "v", "'key' exceeds the maximum length of 250 characters", 0},
		{"runs_errors#31 key 250", strings.Repeat("a", 250), "v", "", 1},
		{"runs_errors#32 value 8001 truncated", "big", strings.Repeat("v", 8001), "", 8000},
		{"runs_errors#33 /abs", "/abs", "v", `Invalid value "/abs" for parameter 'key' supplied: ` + badPath + "'/abs'", 0},
		{"runs_errors#34 a/../b", "a/../b", "v", `Invalid value "a/../b" for parameter 'key' supplied: ` + badPath + "'b'", 0},
		{"traces#40 trace tag key 251", strings.Repeat("k", 251), "v", "'key' exceeds the maximum length of 250 characters", 0},
	} {
		tag := tracking.Tag{Key: tc.key, Value: tc.value}
		err := Tag(&tag, "")
		wantErr(t, tc.name, err, tc.want)
		if err == nil && runeLen(tag.Value) != tc.wantLen {
			t.Errorf("%s: value has %d code points, want %d", tc.name, runeLen(tag.Value), tc.wantLen)
		}
	}
}

func TestTranscriptBatch(t *testing.T) {
	// log_batch_basic#8: only run_uuid given, so run_id is "".
	b := &tracking.Batch{Tags: []tracking.Tag{{Key: "t3", Value: "z"}}}
	wantErr(t, "log_batch_basic#8", Batch("", b), `Invalid value "" for parameter 'run_id' supplied.`)

	// log_batch_basic#3/#7: valid batches.
	b = &tracking.Batch{
		Metrics: []tracking.Metric{
			{Key: "m", Value: 0, Timestamp: 1700000000000},
			{Key: "sp", Value: math.NaN(), Timestamp: 1700000000000, Step: 1},
			{Key: "sp", Value: math.Inf(-1), Timestamp: 1700000000000, Step: 2},
		},
		Params: []tracking.Param{{Key: "p1", Value: "a"}, {Key: "p2", Value: "b"}},
		Tags:   []tracking.Tag{{Key: "t1", Value: "x"}, {Key: "t1", Value: "y"}},
	}
	wantErr(t, "log_batch_basic#3", Batch("b2460d67558a4478b6d859a30931bbd8", b), "")
}

func TestTranscriptDatasets(t *testing.T) {
	ds := func(name, digest string, tags ...tracking.Tag) []tracking.DatasetInput {
		return []tracking.DatasetInput{{Tags: tags, Dataset: tracking.Dataset{Name: name, Digest: digest, SourceType: "code", Source: "{}"}}}
	}
	wantErr(t, "log_inputs#15 minimal", DatasetInputs(ds("min", "d0")), "")
	wantErr(t, "log_inputs#16 empty list", DatasetInputs(nil), "")
	wantErr(t, "log_inputs#20 no digest", DatasetInputs(ds("noDigest", "")), "")
	wantErr(t, "log_inputs#21 no name", DatasetInputs(ds("", "nn")), "")
	wantErr(t, "log_inputs#22 name 501", DatasetInputs(ds(strings.Repeat("n", 501), "d")), "'name' exceeds the maximum length of 500 characters")
	wantErr(t, "log_inputs#23 tag without value", DatasetInputs(ds("tagless", "t", tracking.Tag{Key: "k"})), "")
	wantErr(t, "log_inputs#4 context tag", DatasetInputs(ds("train", "abc123", tracking.Tag{Key: tracking.InputTagContext, Value: "training"})), "")
}

func TestNameCharacters(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a-b_c.d e:f/g", true},
		{"Ünïcödé", true},
		{"日本語キー", true},
		{"ключ", true},
		{"٣٤", true},       // Arabic-Indic digits (Nd)
		{"Ⅻ", true},        // Roman numeral (Nl)
		{"½", true},        // vulgar fraction (No)
		{"ʰ", true},        // modifier letter (Lm)
		{"e\u0301", false}, // combining mark: Python's \w does not match M*
		{"emoji😀", false},
		{"tab\tkey", false},
		{"a\n", true}, // Python's $ matches before a final newline
		{"a\n\n", false},
		{"\n", false}, // resolves to itself but... see TestPathUniqueness; chars are fine
		{"a\r", false},
		{"a+b", false},
		{"a@b", false},
		{"a\\b", false},
		{"\u00a0", false}, // no-break space is not ' '
		{"\xff", false},   // invalid UTF-8
	} {
		if got := validNameChars(tc.key); got != tc.ok && tc.key != "\n" {
			t.Errorf("validNameChars(%q) = %v, want %v", tc.key, got, tc.ok)
		}
	}
	if !validNameChars("\n") {
		t.Errorf(`validNameChars("\n") = false; Python's ^[...]*$ matches "\n"`)
	}
}

func TestBadCharacterMessageEscaping(t *testing.T) {
	for _, tc := range []struct{ key, json string }{
		{`q"uote`, `"q\"uote"`},
		{`back\slash`, `"back\\slash"`},
		{"ñ!", `"\u00f1!"`},
		{"😀", `"\ud83d\ude00"`},
		{"ctl\x01\x7f", `"ctl\u0001\u007f"`},
		{"nl\nx\t\r\b\f", `"nl\nx\t\r\b\f"`},
	} {
		want := "Invalid value " + tc.json + " for parameter 'key' supplied: " + badChars
		wantErr(t, tc.key, ParamName(tc.key, ""), want)
	}
}

func TestPathUniqueness(t *testing.T) {
	for _, tc := range []struct{ key, norm string }{
		{".", "."},
		{"..", ".."},
		{"..a", "..a"},
		{"...", "..."}, // starts with "..": MLflow refuses it too
		{"../up", "../up"},
		{"/abs", "/abs"},
		{"//x", "//x"},
		{"///x", "/x"},
		{"a//b", "a/b"},
		{"a/./b", "a/b"},
		{"a/../b", "b"},
		{"a/..", "."},
		{"a/b/", "a/b"},
		{"a/.", "a"},
		{"./a", "a"},
		{"a/b/../../..", ".."},
		{"../\n", "../\n"},
	} {
		want := `Invalid value ` + pyJSONString(tc.key) + ` for parameter 'metrics[2].name' supplied: ` + badPath + PyRepr(tc.norm)
		b := &tracking.Batch{Metrics: []tracking.Metric{{Key: "ok"}, {Key: "ok2"}, {Key: tc.key}}}
		wantErr(t, tc.key, Batch("abc", b), want)
		if got := normpath(tc.key); got != tc.norm {
			t.Errorf("normpath(%q) = %q, want %q", tc.key, got, tc.norm)
		}
	}
	wantErr(t, "repr of newline", TagName("../\n", ""), `Invalid value "../\n" for parameter 'key' supplied: `+badPath+`'../\n'`)
	for _, ok := range []string{"a", "a/b", "a/b/c", "a.b", "a..b", "a/..b", "a/b..", "a/...", ".a", "a/.b", "a\n", "x/\n"} {
		wantErr(t, ok, TagName(ok, ""), "")
	}
}

func TestLengthsInCodePoints(t *testing.T) {
	multi := "é" // 2 bytes
	k250 := strings.Repeat(multi, 250)
	k251 := strings.Repeat(multi, 251)
	wantErr(t, "param key 250 x 2-byte", ParamName(k250, ""), "")
	wantErr(t, "param key 251 x 2-byte", ParamName(k251, ""), "'Param key' exceeds the maximum length of 250 characters")
	wantErr(t, "metric key 250 CJK", MetricName(strings.Repeat("日", 250), ""), "")
	wantErr(t, "metric key 251 CJK", MetricName(strings.Repeat("日", 251), ""), "'Metric name' exceeds the maximum length of 250 characters")
	wantErr(t, "batch tag key 251", Batch("r1", &tracking.Batch{Tags: []tracking.Tag{{Key: "x"}, {Key: k251}}}),
		"'tags[1].key' exceeds the maximum length of 250 characters")
	wantErr(t, "batch param key 251", Batch("r1", &tracking.Batch{Params: []tracking.Param{{Key: k251}}}),
		"'Param key' exceeds the maximum length of 250 characters")

	// Truncation counts code points and never splits a sequence.
	v := strings.Repeat("😀", 6001)
	p := tracking.Param{Key: "k", Value: v}
	if err := Param(&p, ""); err != nil {
		t.Fatal(err)
	}
	if runeLen(p.Value) != 6000 || len(p.Value) != 6000*4 || !strings.HasPrefix(v, p.Value) {
		t.Errorf("param truncation: %d code points, %d bytes", runeLen(p.Value), len(p.Value))
	}
	short := strings.Repeat("😀", 6000) // 24000 bytes but 6000 code points: untouched
	if got := TruncateParamValue(short); got != short {
		t.Errorf("6000 code points were truncated")
	}
	tv := strings.Repeat("ж", 8000) + "tail"
	if got := TruncateTagValue(tv); got != strings.Repeat("ж", 8000) {
		t.Errorf("tag truncation: %d code points", runeLen(got))
	}
	mixed := strings.Repeat("a", 7999) + "€€"
	if got := TruncateTagValue(mixed); got != strings.Repeat("a", 7999)+"€" {
		t.Errorf("tag truncation of mixed widths: %q", got[len(got)-5:])
	}
}

func TestMetricTimestamp(t *testing.T) {
	for _, tc := range []struct {
		value float64
		str   string
	}{
		{1, "1.0"}, {1.5, "1.5"}, {math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
		{1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
		{-2.5e-7, "-2.5e-07"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {math.Copysign(0, -1), "-0.0"},
		{123456789.125, "123456789.125"}, {5e-324, "5e-324"},
	} {
		m := tracking.Metric{Key: "m", Value: tc.value, Timestamp: -1}
		want := "Invalid value -1 for parameter 'timestamp' supplied: metric 'm' (value=" + tc.str + "). Timestamp must be a nonnegative long (64-bit integer) "
		wantErr(t, tc.str, Metric(m, ""), want)
	}
	b := &tracking.Batch{Metrics: []tracking.Metric{{Key: "a", Timestamp: 1}, {Key: "b", Value: 2, Timestamp: -5}}}
	wantErr(t, "batch", Batch("r", b), "Invalid value -5 for parameter 'metrics[1].timestamp' supplied: metric 'b' (value=2.0). Timestamp must be a nonnegative long (64-bit integer) ")
	// The name is checked before the timestamp, the length after it.
	wantErr(t, "order name", Metric(tracking.Metric{Key: "a!", Timestamp: -1}, ""), `Invalid value "a!" for parameter 'name' supplied: `+badChars)
	wantErr(t, "order length", Metric(tracking.Metric{Key: strings.Repeat("k", 251), Timestamp: -1}, ""),
		"Invalid value -1 for parameter 'timestamp' supplied: metric '"+strings.Repeat("k", 251)+"' (value=0.0). Timestamp must be a nonnegative long (64-bit integer) ")
	wantErr(t, "zero ok", Metric(tracking.Metric{Key: "a"}, ""), "")
}

func TestRunID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"b2460d67558a4478b6d859a30931bbd8", true},
		{"a", true},
		{"A-b_c", true},
		{"a" + strings.Repeat("x", 255), true},
		{"a" + strings.Repeat("x", 256), false},
		{"a" + strings.Repeat("é", 255), true}, // Python's \w is Unicode-aware
		{"aé!", false},
		{"", false},
		{"_a", false},
		{"-a", false},
		{"éa", false}, // the first character is ASCII only
		{"abc\n", true},
		{"abc\n\n", false},
		{"a b", false},
		{"../x", false},
	} {
		want := ""
		if !tc.ok {
			want = "Invalid value " + pyJSONString(tc.id) + " for parameter 'run_id' supplied."
		}
		wantErr(t, tc.id, RunID(tc.id, "run_id"), want)
	}
}

func TestBatchOrderAndLimits(t *testing.T) {
	metrics := func(n int) []tracking.Metric {
		m := make([]tracking.Metric, n)
		for i := range m {
			m[i] = tracking.Metric{Key: "m", Timestamp: int64(i)}
		}
		return m
	}
	params := func(n int) []tracking.Param {
		p := make([]tracking.Param, n)
		for i := range p {
			p[i] = tracking.Param{Key: "p" + strings.Repeat("x", i)}
		}
		return p
	}
	tags := func(n int) []tracking.Tag {
		t := make([]tracking.Tag, n)
		for i := range t {
			t[i] = tracking.Tag{Key: "t"}
		}
		return t
	}
	limit := func(n int, what string, got int) string {
		return "A batch logging request can contain at most " + itoa(n) + " " + what + ". Got " + itoa(got) + " " + what +
			". Please split up " + what + " across multiple requests and try again."
	}
	for _, tc := range []struct {
		name string
		b    tracking.Batch
		want string
	}{
		{"1000 metrics", tracking.Batch{Metrics: metrics(1000)}, ""},
		{"1001 metrics", tracking.Batch{Metrics: metrics(1001)}, limit(1000, "metrics", 1001)},
		{"100 params", tracking.Batch{Params: params(100)}, ""},
		{"101 params", tracking.Batch{Params: params(101)}, limit(100, "params", 101)},
		{"101 tags", tracking.Batch{Tags: tags(101)}, limit(100, "tags", 101)},
		{"1001 total", tracking.Batch{Metrics: metrics(900), Params: params(100), Tags: tags(1)},
			limit(1000, "metrics, params, and tags", 1001)},
		{"metrics limit before params limit", tracking.Batch{Metrics: metrics(1001), Params: params(101)}, limit(1000, "metrics", 1001)},
		{"elements before limits", tracking.Batch{Metrics: metrics(1001), Tags: []tracking.Tag{{Key: "bad!"}}},
			`Invalid value "bad!" for parameter 'tags[0].key' supplied: ` + badChars},
		{"metrics before params", tracking.Batch{Params: []tracking.Param{{Key: "bad!"}}, Metrics: []tracking.Metric{{Key: "/m"}}},
			`Invalid value "/m" for parameter 'metrics[0].name' supplied: ` + badPath + "'/m'"},
		{"params before tags", tracking.Batch{Tags: []tracking.Tag{{Key: "x!"}}, Params: []tracking.Param{{Key: "ok"}, {Key: "p!"}}},
			`Invalid value "p!" for parameter 'params[1].key' supplied: ` + badChars},
		{"missing key before element checks", tracking.Batch{Metrics: []tracking.Metric{{Key: "bad!"}}, Tags: []tracking.Tag{{Key: "a"}, {}}},
			"Missing value for required parameter 'tags[1].key'." + docsHint},
		{"missing metric key", tracking.Batch{Metrics: []tracking.Metric{{Key: "a"}, {}}},
			"Missing value for required parameter 'metrics[1].key'." + docsHint},
		{"missing param key", tracking.Batch{Params: []tracking.Param{{Value: "v"}}},
			"Missing value for required parameter 'params[0].key'." + docsHint},
		{"duplicate params", tracking.Batch{Params: []tracking.Param{{Key: "a", Value: "1"}, {Key: "b"}, {Key: "a", Value: "1"}, {Key: "b"}, {Key: "a"}}},
			"Duplicate parameter keys have been submitted: ['a', 'b', 'a']. Please ensure the request contains only one param value per param key."},
		{"limits before duplicates", tracking.Batch{Params: append(params(101), tracking.Param{Key: "p"})}, limit(100, "params", 102)},
		{"duplicate tags are fine", tracking.Batch{Tags: []tracking.Tag{{Key: "t", Value: "1"}, {Key: "t", Value: "2"}}}, ""},
		{"empty batch", tracking.Batch{}, ""},
	} {
		b := tc.b
		wantErr(t, tc.name, Batch("r1", &b), tc.want)
	}

	// The run id is checked before the elements, after the presence checks.
	wantErr(t, "run id before elements", Batch("bad id", &tracking.Batch{Tags: []tracking.Tag{{Key: "bad!"}}}),
		`Invalid value "bad id" for parameter 'run_id' supplied.`)
	wantErr(t, "presence before run id", Batch("", &tracking.Batch{Tags: []tracking.Tag{{}}}),
		"Missing value for required parameter 'tags[0].key'."+docsHint)

	// Params and tags are truncated in place.
	b := &tracking.Batch{
		Params: []tracking.Param{{Key: "p", Value: strings.Repeat("v", 7000)}},
		Tags:   []tracking.Tag{{Key: "t", Value: strings.Repeat("w", 9000)}},
	}
	if err := Batch("r1", b); err != nil {
		t.Fatal(err)
	}
	if len(b.Params[0].Value) != 6000 || len(b.Tags[0].Value) != 8000 {
		t.Errorf("truncation in place: param %d, tag %d", len(b.Params[0].Value), len(b.Tags[0].Value))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestExperiment(t *testing.T) {
	wantErr(t, "name ok", ExperimentName("runs"), "")
	wantErr(t, "name empty", ExperimentName(""), "Invalid experiment name: ''")
	wantErr(t, "name 500", ExperimentName(strings.Repeat("ü", 500)), "")
	wantErr(t, "name 501", ExperimentName(strings.Repeat("ü", 501)), "'name' exceeds the maximum length of 500 characters")
	wantErr(t, "name free-form", ExperimentName("any / name! ../ ok"), "")

	wantErr(t, "tag ok", ExperimentTag("team", "core"), "")
	wantErr(t, "tag missing key", ExperimentTag("", "v"), "Missing value for required parameter 'key'."+docsHint)
	wantErr(t, "tag bad key", ExperimentTag("a b!", "v"), `Invalid value "a b!" for parameter 'key' supplied: `+badChars)
	wantErr(t, "tag bad path", ExperimentTag("a/", "v"), `Invalid value "a/" for parameter 'key' supplied: `+badPath+"'a'")
	wantErr(t, "tag key 250", ExperimentTag(strings.Repeat("k", 250), "v"), "")
	wantErr(t, "tag key 251", ExperimentTag(strings.Repeat("k", 251), "v"), "'key' exceeds the maximum length of 250 characters")
	wantErr(t, "tag value 5000", ExperimentTag("k", strings.Repeat("ж", 5000)), "")
	wantErr(t, "tag value 5001", ExperimentTag("k", strings.Repeat("ж", 5001)), "'value' exceeds the maximum length of 5000 characters")
}

func TestArtifactLocation(t *testing.T) {
	const frag = "'artifact_location' URL can't include fragments or params."
	const query = "Invalid query string"
	for _, tc := range []struct{ loc, want string }{
		{"", ""},
		{"s3://bucket/path", ""},
		{"mlflow-artifacts:/1", ""},
		{"/tmp/mlruns", ""},
		{"file:///tmp/x", ""},
		{"s3://bucket/path#frag", frag},
		{"s3://bucket/path#", ""},
		{"/tmp/a;b", frag},
		{"/tmp/a;", ""},
		{"/tmp/a;b/c", ""}, // params only in the last segment
		{"http://h/a;b", frag},
		{"http://h;x/a", ""},    // ';' in netloc
		{"s3://bucket/a;b", ""}, // s3 is not in uses_params
		{"gs://b/p?x=1", ""},
		{"s3://bucket/path?p=../x", query},
		{"s3://bucket/path?p=%2e%2e/x", query},
		{"s3://bucket/path?p=%252e%252e/x", query},
		{"s3://bucket/path?p=.%2E", query},
		{"s3://bucket/path?p=.x.", ""},
		{"/a/../b", ""}, // only the query is checked
		{"s3://b/p#?..", frag},
		{"runs:/abc/artifacts", "Artifact location cannot be a runs:/ URI. Given: 'runs:/abc/artifacts'"},
	} {
		wantErr(t, tc.loc, ArtifactLocation(tc.loc), tc.want)
	}
	wantErr(t, "length 2048", ArtifactLocationLength("/"+strings.Repeat("é", 2047)), "")
	wantErr(t, "length 2049", ArtifactLocationLength("/"+strings.Repeat("é", 2048)),
		"Invalid artifact path length. The length of the artifact path cannot be greater than 2048 characters. To configure this limit, please set the MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable.")
}

func TestDatasetLimits(t *testing.T) {
	base := func() tracking.DatasetInput {
		return tracking.DatasetInput{Dataset: tracking.Dataset{Name: "n", Digest: "d", SourceType: "s3", Source: "{}"}}
	}
	for _, tc := range []struct {
		name string
		edit func(*tracking.DatasetInput, int)
		max  int
		want string
	}{
		{"name", func(d *tracking.DatasetInput, n int) { d.Dataset.Name = strings.Repeat("é", n) }, 500, "name"},
		{"digest", func(d *tracking.DatasetInput, n int) { d.Dataset.Digest = strings.Repeat("a", n) }, 36, "digest"},
		{"source", func(d *tracking.DatasetInput, n int) { d.Dataset.Source = strings.Repeat("s", n) }, 65535, "source"},
		{"schema", func(d *tracking.DatasetInput, n int) { d.Dataset.Schema = strings.Repeat("s", n) }, 1048575, "schema"},
		{"profile", func(d *tracking.DatasetInput, n int) { d.Dataset.Profile = strings.Repeat("p", n) }, 16777215, "profile"},
		{"tag key", func(d *tracking.DatasetInput, n int) { d.Tags = []tracking.Tag{{Key: strings.Repeat("k", n)}} }, 255, "key"},
		{"tag value", func(d *tracking.DatasetInput, n int) {
			d.Tags = []tracking.Tag{{Key: "k", Value: strings.Repeat("ж", n)}}
		}, 500, "value"},
	} {
		ok, bad := base(), base()
		tc.edit(&ok, tc.max)
		tc.edit(&bad, tc.max+1)
		wantErr(t, tc.name+" at limit", DatasetInputs([]tracking.DatasetInput{base(), ok}), "")
		wantErr(t, tc.name+" over limit", DatasetInputs([]tracking.DatasetInput{base(), bad}),
			"'"+tc.want+"' exceeds the maximum length of "+itoa(tc.max)+" characters")
	}
	// Dataset fields of an input are checked before its tags.
	d := base()
	d.Dataset.Digest = strings.Repeat("x", 37)
	d.Tags = []tracking.Tag{{Key: strings.Repeat("k", 256)}}
	wantErr(t, "dataset before tags", DatasetInputs([]tracking.DatasetInput{d}), "'digest' exceeds the maximum length of 36 characters")
}

func TestName(t *testing.T) {
	wantErr(t, "ok", Name("mlflow.note.content", "key"), "")
	wantErr(t, "missing", Name("", "tag.key"), "Missing value for required parameter 'tag.key'."+docsHint)
	wantErr(t, "bad", Name("a*", "tag.key"), `Invalid value "a*" for parameter 'tag.key' supplied: `+badChars)
	wantErr(t, "path", Name("a//b", "tag.key"), `Invalid value "a//b" for parameter 'tag.key' supplied: `+badPath+"'a/b'")
	wantErr(t, "long ok", Name(strings.Repeat("k", 1000), "key"), "")
}

func TestElemPaths(t *testing.T) {
	wantErr(t, "metric elem", MetricName("x!", "metrics[7]"), `Invalid value "x!" for parameter 'metrics[7].name' supplied: `+badChars)
	wantErr(t, "metric elem missing", MetricName("", "metrics[7]"), "Missing value for required parameter 'metrics[7].key'."+docsHint)
	wantErr(t, "param elem", ParamName("x!", "params[1]"), `Invalid value "x!" for parameter 'params[1].key' supplied: `+badChars)
	wantErr(t, "tag elem length", TagName(strings.Repeat("k", 251), "tags[3]"), "'tags[3].key' exceeds the maximum length of 250 characters")
	tag := tracking.Tag{Key: "k", Value: strings.Repeat("v", 8001)}
	wantErr(t, "tag elem truncation", Tag(&tag, "tags[0]"), "")
	if len(tag.Value) != 8000 {
		t.Errorf("Tag did not truncate: %d", len(tag.Value))
	}
	var nilErr error = MetricName("ok", "")
	if nilErr != nil {
		t.Errorf("MetricName returned a non-nil error interface for a valid key")
	}
}

func TestNoAllocationsOnValidKeys(t *testing.T) {
	b := benchBatch()
	allocs := testing.AllocsPerRun(100, func() {
		if err := Batch("b2460d67558a4478b6d859a30931bbd8", &b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Batch allocates %v times per call on a valid batch", allocs)
	}
	uni := []string{"ключ/подключ", "日本語:キー", "a\n"}
	allocs = testing.AllocsPerRun(100, func() {
		for _, k := range uni {
			if TagName(k, "") != nil || ParamName(k, "") != nil || MetricName(k, "") != nil {
				t.Fatal("unexpected error")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("unicode keys allocate %v times", allocs)
	}
}

func benchBatch() tracking.Batch {
	var b tracking.Batch
	for i, k := range []string{"loss", "val_loss", "accuracy", "val/accuracy", "lr", "epoch time", "train:f1", "precision", "recall", "auc.roc"} {
		b.Metrics = append(b.Metrics, tracking.Metric{Key: k, Value: float64(i) / 3, Timestamp: 1700000000000 + int64(i), Step: int64(i)})
	}
	return b
}

func BenchmarkBatch10Metrics(b *testing.B) {
	batch := benchBatch()
	b.ReportAllocs()
	for b.Loop() {
		if err := Batch("b2460d67558a4478b6d859a30931bbd8", &batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatchMixed(b *testing.B) {
	batch := benchBatch()
	for i := range 20 {
		batch.Params = append(batch.Params, tracking.Param{Key: "param_" + string(rune('a'+i)), Value: "0.001"})
		batch.Tags = append(batch.Tags, tracking.Tag{Key: "tag_" + string(rune('a'+i)), Value: "value"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Batch("b2460d67558a4478b6d859a30931bbd8", &batch); err != nil {
			b.Fatal(err)
		}
	}
}
