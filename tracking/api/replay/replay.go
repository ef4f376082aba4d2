// Package replay replays the MLflow conformance transcripts (recorded
// exchanges between MLflow 2.22.1's client and server, one JSON object per
// line) against a server under test and compares the answers, applying the
// corpus README's rules: generated ids are bound from responses and
// substituted into later requests and expectations, volatile fields are
// compared by presence and JSON type, some lists compare as multisets,
// error messages compare loosely, and non-JSON error pages by status only.
//
// It is the Go counterpart of the corpus' replay.py, usable from any test:
// against an httptest server of package api, or against a real Caddy.
//
// Exchanges marked "quirk" (odd answers of the real server, such as a 5xx
// for a client mistake) are by default not compared exactly: the project's
// policy is to answer them with a fitting 4xx, so the replay asserts a 4xx
// status and moves on (QuirksExact compares them like the others).
package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Exchange is one recorded HTTP exchange.
type Exchange struct {
	Seq          int               `json:"seq"`
	Step         string            `json:"step"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Query        string            `json:"query"`
	ReqHeaders   map[string]string `json:"req_headers"`
	ReqBodyKind  string            `json:"req_body_kind"`
	ReqBody      json.RawMessage   `json:"req_body"`
	Status       int               `json:"status"`
	RespHeaders  map[string]string `json:"resp_headers"`
	RespBodyKind string            `json:"resp_body_kind"`
	RespBody     json.RawMessage   `json:"resp_body"`
	Check        string            `json:"check"`
	Unordered    []string          `json:"unordered"`
	Quirk        string            `json:"quirk"`
}

// QuirkPolicy says how exchanges marked "quirk" are checked.
type QuirkPolicy int

const (
	// QuirksAs4xx sends quirk exchanges and asserts only that the status
	// is a 4xx (the project's policy for real-server 5xx and SQL-error
	// answers). Nothing is learned from their responses.
	QuirksAs4xx QuirkPolicy = iota
	// QuirksExact compares quirk exchanges like any other.
	QuirksExact
	// QuirksSkip does not send quirk exchanges.
	QuirksSkip
)

// Options tune a replay.
type Options struct {
	// Gap is the pause before each request (default 3ms) so that server
	// timestamps of consecutive writes differ, as when recording.
	Gap time.Duration
	// Quirks is the policy for exchanges marked "quirk".
	Quirks QuirkPolicy
	// Skip lists exchanges (by seq) not to send at all, with the reason:
	// deliberate deviations whose effects would make the rest of the
	// transcript meaningless.
	Skip map[int]string
	// StatusOnly lists exchanges (by seq) compared by status only, with
	// the reason: answers that differ by design, or depend on one that does.
	StatusOnly map[int]string
	// StrictMessages compares error messages exactly (after substitution).
	StrictMessages bool
	// Client sends the requests (default: a client with a 2-minute timeout).
	Client *http.Client
	// MaxDiffs caps the differences reported per exchange (default 6).
	MaxDiffs int
}

// Failure is one exchange that did not match.
type Failure struct {
	Seq    int
	Step   string
	Method string
	Path   string
	Quirk  bool
	Diffs  []string
}

func (f Failure) String() string {
	q := ""
	if f.Quirk {
		q = " [quirk]"
	}
	return fmt.Sprintf("#%d%s [%s] %s %s: %s", f.Seq, q, f.Step, f.Method, f.Path, strings.Join(f.Diffs, "; "))
}

// Result is the outcome of replaying one transcript.
type Result struct {
	File     string
	Passed   int
	Failed   int
	Skipped  int
	Failures []Failure
	// Notes lists exchanges checked leniently (quirks, status-only
	// deviations) with their reasons.
	Notes []string
}

func (r *Result) String() string {
	s := fmt.Sprintf("%s: %d passed, %d failed", filepath.Base(r.File), r.Passed, r.Failed)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", r.Skipped)
	}
	return s
}

// Load reads a transcript file, sorted by seq.
func Load(path string) ([]Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ex Exchange
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&ex); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, len(out)+1, err)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Run replays the transcript at path against baseURL and reports every
// failing exchange with t.Errorf. It returns the result for summaries.
func Run(t testing.TB, baseURL, path string, opts Options) *Result {
	t.Helper()
	res, err := Replay(context.Background(), baseURL, path, opts)
	if err != nil {
		t.Fatalf("replay %s: %v", path, err)
	}
	for _, f := range res.Failures {
		t.Errorf("%s %s", filepath.Base(path), f)
	}
	return res
}

// RunDir replays every *.jsonl in dir as a subtest, each against a fresh
// server from start. skip maps a file's base name to the reason it is not
// replayed (reported with t.Skip); opts gives the options for a file.
func RunDir(t *testing.T, dir string, start func(t testing.TB) string, skip map[string]string,
	opts func(file string) Options) []*Result {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no transcripts in %s", dir)
	}
	var results []*Result
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".jsonl"), func(t *testing.T) {
			if reason, ok := skip[name]; ok {
				t.Skip(reason)
			}
			var o Options
			if opts != nil {
				o = opts(name)
			}
			res := Run(t, start(t), file, o)
			for _, n := range res.Notes {
				t.Log(n)
			}
			t.Log(res.String())
			results = append(results, res)
		})
	}
	return results
}

// Keys the bindings and comparisons treat specially (README, "Replay rules").
var (
	tokenKeys      = map[string]bool{"run_id": true, "run_uuid": true, "request_id": true}
	rebindKeys     = map[string]bool{"next_page_token": true}
	experimentKeys = map[string]bool{"experiment_id": true}
	volatileKeys   = map[string]bool{
		"creation_time": true, "last_update_time": true,
		"creation_timestamp": true, "last_updated_timestamp": true,
		"user_id": true,
	}
	unorderedKeys = map[string]bool{"tags": true, "params": true, "aliases": true,
		"request_metadata": true, "dataset_inputs": true}
)

const artifactContentPrefix = "/api/2.0/mlflow-artifacts/artifacts/"

var (
	expURIRe   = regexp.MustCompile(`(mlflow-artifacts:/)(\d+)(/|$)`)
	expPathRe  = regexp.MustCompile(`^(/api/2\.0/mlflow-artifacts/artifacts/)(\d+)(/|$)`)
	expQPathRe = regexp.MustCompile(`^(\d+)(/|$)`)
)

type versionKey struct{ name, version string }

// bindings hold the generated values learned so far.
type bindings struct {
	tokens   map[string]string // recorded -> actual, substituted anywhere
	exps     map[string]string // recorded experiment id -> actual
	versions map[versionKey]string
	sorted   []string // token keys, longest first
}

func newBindings() *bindings {
	return &bindings{tokens: map[string]string{}, exps: map[string]string{}, versions: map[versionKey]string{}}
}

func (b *bindings) setToken(rec, act string) {
	if _, ok := b.tokens[rec]; !ok {
		b.sorted = append(b.sorted, rec)
		sort.SliceStable(b.sorted, func(i, j int) bool { return len(b.sorted[i]) > len(b.sorted[j]) })
	}
	b.tokens[rec] = act
}

func (b *bindings) learn(rec, act *Value, bindRunName bool, parent string) {
	if rec == nil || act == nil {
		return
	}
	switch {
	case rec.Kind == KindObject && act.Kind == KindObject:
		name := parent
		if n, ok := rec.Get("name"); ok && n.Kind == KindString {
			name = n.Str
		}
		for _, m := range rec.Obj {
			av, ok := act.Get(m.Key)
			if !ok {
				continue
			}
			rv := m.Value
			if rv.Kind == KindString && av.Kind == KindString {
				k := m.Key
				switch {
				case tokenKeys[k]:
					if _, seen := b.tokens[rv.Str]; !seen {
						b.setToken(rv.Str, av.Str)
					}
				case rebindKeys[k]:
					b.setToken(rv.Str, av.Str)
				case experimentKeys[k]:
					if _, seen := b.exps[rv.Str]; !seen {
						b.exps[rv.Str] = av.Str
					}
				case k == "run_name" && bindRunName:
					if _, seen := b.tokens[rv.Str]; !seen {
						b.setToken(rv.Str, av.Str)
					}
				case k == "version" && name != "":
					vk := versionKey{name, rv.Str}
					if _, seen := b.versions[vk]; !seen {
						b.versions[vk] = av.Str
					}
				}
				continue
			}
			b.learn(rv, av, bindRunName, name)
		}
	case rec.Kind == KindArray && act.Kind == KindArray:
		for i := 0; i < len(rec.Arr) && i < len(act.Arr); i++ {
			b.learn(rec.Arr[i], act.Arr[i], bindRunName, parent)
		}
	}
}

func (b *bindings) subStr(s string) string {
	for _, old := range b.sorted {
		if old != "" && strings.Contains(s, old) {
			s = strings.ReplaceAll(s, old, b.tokens[old])
		}
	}
	if len(b.exps) > 0 && strings.Contains(s, "mlflow-artifacts:/") {
		s = expURIRe.ReplaceAllStringFunc(s, func(m string) string {
			g := expURIRe.FindStringSubmatch(m)
			id := g[2]
			if a, ok := b.exps[id]; ok {
				id = a
			}
			return g[1] + id + g[3]
		})
	}
	return s
}

// sub substitutes bindings into a JSON value (in place on a clone).
func (b *bindings) sub(v *Value, key, parent string) *Value {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case KindString:
		c := *v
		switch {
		case experimentKeys[key] || key == "experiment_ids":
			if a, ok := b.exps[v.Str]; ok {
				c.Str = a
			}
		case key == "version" && parent != "":
			if a, ok := b.versions[versionKey{parent, v.Str}]; ok {
				c.Str = a
			}
		default:
			c.Str = b.subStr(v.Str)
		}
		return &c
	case KindArray:
		c := &Value{Kind: KindArray, Arr: make([]*Value, len(v.Arr))}
		for i, e := range v.Arr {
			c.Arr[i] = b.sub(e, key, parent)
		}
		return c
	case KindObject:
		name := parent
		if n, ok := v.Get("name"); ok && n.Kind == KindString {
			name = n.Str
		}
		c := &Value{Kind: KindObject, Obj: make([]Member, len(v.Obj))}
		for i, m := range v.Obj {
			c.Obj[i] = Member{m.Key, b.sub(m.Value, m.Key, name)}
		}
		return c
	}
	return v
}

func (b *bindings) subPath(p string) string {
	p = b.subStr(p)
	if len(b.exps) > 0 {
		p = expPathRe.ReplaceAllStringFunc(p, func(m string) string {
			g := expPathRe.FindStringSubmatch(m)
			id := g[2]
			if a, ok := b.exps[id]; ok {
				id = a
			}
			return g[1] + id + g[3]
		})
	}
	return p
}

func unquotePlus(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return strings.ReplaceAll(s, "+", " ")
	}
	return u
}

// quoteAll is Python's urllib.parse.quote(s, safe="").
func quoteAll(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '~' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

func (b *bindings) subQuery(q string) string {
	if q == "" {
		return q
	}
	pairs := strings.Split(q, "&")
	names := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		names[unquotePlus(k)] = unquotePlus(v)
	}
	model, hasModel := names["name"]
	out := make([]string, 0, len(pairs))
	for _, p := range pairs {
		k, v, eq := strings.Cut(p, "=")
		key, val := unquotePlus(k), unquotePlus(v)
		nv := val
		switch {
		case experimentKeys[key] || key == "experiment_ids":
			if a, ok := b.exps[val]; ok {
				nv = a
			}
		case key == "version" && hasModel:
			if a, ok := b.versions[versionKey{model, val}]; ok {
				nv = a
			}
		default:
			nv = b.subStr(val)
			if key == "path" && len(b.exps) > 0 {
				nv = expQPathRe.ReplaceAllStringFunc(nv, func(m string) string {
					g := expQPathRe.FindStringSubmatch(m)
					id := g[1]
					if a, ok := b.exps[id]; ok {
						id = a
					}
					return id + g[2]
				})
			}
		}
		if nv == val {
			out = append(out, p)
		} else {
			sep := ""
			if eq {
				sep = "="
			}
			out = append(out, k+sep+quoteAll(nv))
		}
	}
	return strings.Join(out, "&")
}

func isGeneratedRunName(ex *Exchange, body *Value) bool {
	if !strings.HasSuffix(ex.Path, "/mlflow/runs/create") || ex.ReqBodyKind != "json" || body == nil || body.Kind != KindObject {
		return false
	}
	if rn, ok := body.Get("run_name"); ok && !(rn.Kind == KindString && rn.Str == "") && rn.Kind != KindNull {
		return false
	}
	if tags, ok := body.Get("tags"); ok && tags.Kind == KindArray {
		for _, t := range tags.Arr {
			if k, ok := t.Get("key"); ok && k.Kind == KindString && k.Str == "mlflow.runName" {
				return false
			}
		}
	}
	return true
}

type comparer struct {
	strictMessages bool
	extraUnordered map[string]bool
	diffs          []string
	max            int
}

func (c *comparer) add(format string, args ...any) {
	if len(c.diffs) < 50 {
		c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
	}
}

func (c *comparer) compare(exp, act *Value, path, parentKey, key string) {
	if volatileKeys[key] {
		if exp.Kind != act.Kind {
			c.add("%s: volatile field type %s != %s", path, act.Kind, exp.Kind)
		}
		return
	}
	switch exp.Kind {
	case KindObject:
		if act.Kind != KindObject {
			c.add("%s: expected object, got %s %s", path, act.Kind, short(act, 160))
			return
		}
		_, isError := exp.Get("error_code")
		for _, m := range exp.Obj {
			if _, ok := act.Get(m.Key); !ok {
				c.add("%s.%s: missing (expected %s)", path, m.Key, short(m.Value, 160))
			}
		}
		for _, m := range act.Obj {
			if _, ok := exp.Get(m.Key); !ok {
				c.add("%s.%s: unexpected key (value %s)", path, m.Key, short(m.Value, 160))
			}
		}
		for _, m := range exp.Obj {
			av, ok := act.Get(m.Key)
			if !ok {
				continue
			}
			if isError && m.Key == "message" && !c.strictMessages {
				if av.Kind != KindString || (m.Value.Kind == KindString && m.Value.Str != "" && av.Str == "") {
					c.add("%s.message: expected a non-empty string, got %s", path, short(av, 160))
				}
				continue
			}
			c.compare(m.Value, av, path+"."+m.Key, key, m.Key)
		}
	case KindArray:
		if act.Kind != KindArray {
			c.add("%s: expected array, got %s %s", path, act.Kind, short(act, 160))
			return
		}
		if len(exp.Arr) != len(act.Arr) {
			c.add("%s: array length %d != %d", path, len(act.Arr), len(exp.Arr))
		}
		if unorderedKeys[key] || (parentKey == "data" && key == "metrics") || c.extraUnordered[key] {
			ec := make([]string, len(exp.Arr))
			ac := make([]string, len(act.Arr))
			for i, e := range exp.Arr {
				ec[i] = canon(e)
			}
			for i, a := range act.Arr {
				ac[i] = canon(a)
			}
			missing, extra := multisetDiff(ec, ac)
			if len(missing) > 0 || len(extra) > 0 {
				c.add("%s: unordered elements differ; missing %s; unexpected %s", path, cut(strings.Join(missing, ", "), 300), cut(strings.Join(extra, ", "), 300))
			}
			return
		}
		for i := 0; i < len(exp.Arr) && i < len(act.Arr); i++ {
			c.compare(exp.Arr[i], act.Arr[i], fmt.Sprintf("%s[%d]", path, i), key, key)
		}
	default:
		if exp.Kind != act.Kind {
			c.add("%s: expected %s %s, got %s %s", path, exp.Kind, short(exp, 160), act.Kind, short(act, 160))
			return
		}
		equal := false
		switch exp.Kind {
		case KindNull:
			equal = true
		case KindBool:
			equal = exp.Bool == act.Bool
		case KindNumber:
			equal = numEqual(exp.Num, act.Num)
		case KindString:
			equal = exp.Str == act.Str
		}
		if !equal {
			c.add("%s: expected %s, got %s", path, short(exp, 160), short(act, 160))
		}
	}
}

func multisetDiff(exp, act []string) (missing, extra []string) {
	count := map[string]int{}
	for _, a := range act {
		count[a]++
	}
	for _, e := range exp {
		if count[e] > 0 {
			count[e]--
		} else {
			missing = append(missing, e)
		}
	}
	for _, a := range act {
		if count[a] > 0 {
			count[a]--
			extra = append(extra, a)
		}
	}
	return missing, extra
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	m, _, err := mime.ParseMediaType(ct)
	if err != nil {
		m, _, _ = strings.Cut(ct, ";")
	}
	return strings.ToLower(strings.TrimSpace(m))
}

// Replay replays the transcript at path against baseURL and returns the
// result; it fails only if the transcript cannot be read.
func Replay(ctx context.Context, baseURL, path string, opts Options) (*Result, error) {
	exchanges, err := Load(path)
	if err != nil {
		return nil, err
	}
	if opts.Gap == 0 {
		opts.Gap = 3 * time.Millisecond
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 2 * time.Minute}
	}
	if opts.MaxDiffs == 0 {
		opts.MaxDiffs = 6
	}
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	res := &Result{File: path}
	b := newBindings()
	for i := range exchanges {
		ex := &exchanges[i]
		if reason, ok := opts.Skip[ex.Seq]; ok {
			res.Skipped++
			res.Notes = append(res.Notes, fmt.Sprintf("#%d %s %s: skipped: %s", ex.Seq, ex.Method, ex.Path, reason))
			continue
		}
		quirk := ex.Quirk != ""
		if quirk && opts.Quirks == QuirksSkip {
			res.Skipped++
			continue
		}
		diffs, err := replayOne(ctx, base, b, ex, opts)
		if err != nil {
			diffs = []string{"request failed: " + err.Error()}
		}
		if len(diffs) > opts.MaxDiffs {
			more := len(diffs) - opts.MaxDiffs
			diffs = append(diffs[:opts.MaxDiffs:opts.MaxDiffs], fmt.Sprintf("(+%d more)", more))
		}
		if len(diffs) > 0 {
			res.Failed++
			res.Failures = append(res.Failures, Failure{ex.Seq, ex.Step, ex.Method, ex.Path, quirk, diffs})
			continue
		}
		res.Passed++
		if quirk && opts.Quirks == QuirksAs4xx {
			res.Notes = append(res.Notes, fmt.Sprintf("#%d [quirk] %s %s: answered 4xx (real server: %d; %s)",
				ex.Seq, ex.Method, ex.Path, ex.Status, ex.Quirk))
		}
		if reason, ok := opts.StatusOnly[ex.Seq]; ok {
			res.Notes = append(res.Notes, fmt.Sprintf("#%d %s %s: status only: %s", ex.Seq, ex.Method, ex.Path, reason))
		}
	}
	return res, nil
}

func replayOne(ctx context.Context, base *url.URL, b *bindings, ex *Exchange, opts Options) ([]string, error) {
	art := strings.HasPrefix(ex.Path, artifactContentPrefix)
	opaqueReq := art && ex.Method == http.MethodPut
	opaqueResp := art && ex.Method == http.MethodGet && ex.Status >= 200 && ex.Status < 300

	target := b.subPath(ex.Path)
	query := b.subQuery(ex.Query)

	var data []byte
	hasBody := false
	var reqJSON *Value
	switch ex.ReqBodyKind {
	case "", "none":
	case "json":
		v, err := ParseJSON(ex.ReqBody)
		if err != nil {
			return nil, fmt.Errorf("recorded request body: %w", err)
		}
		reqJSON = v
		data, hasBody = b.sub(v, "", "").Dumps(), true
	case "text":
		var t struct{ Text string }
		if err := json.Unmarshal(ex.ReqBody, &t); err != nil {
			return nil, err
		}
		if !opaqueReq {
			t.Text = b.subStr(t.Text)
		}
		data, hasBody = []byte(t.Text), true
	case "base64":
		var t struct{ Base64 string }
		if err := json.Unmarshal(ex.ReqBody, &t); err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(t.Base64)
		if err != nil {
			return nil, err
		}
		data, hasBody = raw, true
	default:
		return nil, fmt.Errorf("cannot replay a request body of kind %q", ex.ReqBodyKind)
	}

	if opts.Gap > 0 {
		time.Sleep(opts.Gap)
	}
	var body io.Reader
	if hasBody {
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, ex.Method, base.String(), body)
	if err != nil {
		return nil, err
	}
	// Send the path exactly as recorded (no normalisation of "..", "%2e",
	// "//"): the request line carries the opaque form verbatim.
	req.URL = &url.URL{Scheme: base.Scheme, Host: base.Host, Opaque: base.EscapedPath() + target, RawQuery: query}
	if hasBody {
		req.ContentLength = int64(len(data))
	}
	if ct := ex.ReqHeaders["content-type"]; ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	// An OTLP export names its experiment in a header (MLflow 3
	// transcripts): a key-scoped experiment binding.
	if exp := ex.ReqHeaders["x-mlflow-experiment-id"]; exp != "" {
		if a, ok := b.exps[exp]; ok {
			exp = a
		}
		req.Header.Set("X-Mlflow-Experiment-Id", exp)
	}
	resp, err := opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	rbody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	rct := resp.Header.Get("Content-Type")

	quirk := ex.Quirk != "" && opts.Quirks == QuirksAs4xx
	if quirk {
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			return []string{fmt.Sprintf("quirk exchange (real server %d: %s) must be answered with a 4xx, got %d %s",
				ex.Status, ex.Quirk, resp.StatusCode, cut(string(rbody), 200))}, nil
		}
		return nil, nil
	}
	var diffs []string
	if resp.StatusCode != ex.Status {
		diffs = append(diffs, fmt.Sprintf("status %d != %d (body %s)", resp.StatusCode, ex.Status, cut(string(rbody), 300)))
		return diffs, nil
	}
	if ex.Check == "status" {
		return nil, nil
	}
	_, statusOnly := opts.StatusOnly[ex.Seq]
	wantCT := mediaType(ex.RespHeaders["content-type"])
	switch ex.RespBodyKind {
	case "json":
		act, err := ParseJSON(rbody)
		if err != nil {
			return []string{fmt.Sprintf("body is not JSON: %s", cut(string(rbody), 200))}, nil
		}
		rec, err := ParseJSON(ex.RespBody)
		if err != nil {
			return nil, fmt.Errorf("recorded response body: %w", err)
		}
		b.learn(rec, act, isGeneratedRunName(ex, reqJSON), "")
		if statusOnly {
			return nil, nil
		}
		expected := rec
		if !opaqueResp {
			expected = b.sub(rec, "", "")
		}
		c := &comparer{strictMessages: opts.StrictMessages, extraUnordered: map[string]bool{}}
		for _, k := range ex.Unordered {
			c.extraUnordered[k] = true
		}
		c.compare(expected, act, "$", "", "")
		diffs = append(diffs, c.diffs...)
		if wantCT != "" && mediaType(rct) != wantCT {
			diffs = append(diffs, fmt.Sprintf("content-type %q != %q", mediaType(rct), wantCT))
		}
	case "text", "base64":
		if ex.Status < 200 || ex.Status >= 300 || statusOnly {
			return nil, nil
		}
		var want []byte
		if ex.RespBodyKind == "text" {
			var t struct{ Text string }
			if err := json.Unmarshal(ex.RespBody, &t); err != nil {
				return nil, err
			}
			want = []byte(t.Text)
		} else {
			var t struct{ Base64 string }
			if err := json.Unmarshal(ex.RespBody, &t); err != nil {
				return nil, err
			}
			if want, err = base64.StdEncoding.DecodeString(t.Base64); err != nil {
				return nil, err
			}
		}
		if !bytes.Equal(rbody, want) {
			diffs = append(diffs, fmt.Sprintf("body bytes differ: got %q expected %q", cut(string(rbody), 120), cut(string(want), 120)))
		}
		if wantCT != "" && mediaType(rct) != wantCT {
			diffs = append(diffs, fmt.Sprintf("content-type %q != %q", mediaType(rct), wantCT))
		}
	case "none", "":
		if ex.Status >= 200 && ex.Status < 300 && len(rbody) > 0 {
			diffs = append(diffs, fmt.Sprintf("expected an empty body, got %q", cut(string(rbody), 120)))
		}
	case "digest":
		// Over-size bodies are recorded by digest only; not in the public files.
	}
	return diffs, nil
}
