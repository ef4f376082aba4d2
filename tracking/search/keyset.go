package search

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math"
	"slices"
	"strings"
)

// Keyset page tokens.
//
// MLflow's page tokens are offsets ({"offset": N}), so a row inserted or
// deleted before the offset between two page fetches shifts every later
// row: one is shown twice or never. The tokens issued here instead carry
// the sort values of the last row of the page, and the next page starts
// at the first row that sorts after them under the same comparator that
// ordered the page (CompareRuns, CompareExperiments, ...). Every
// comparator ends with a unique tie-breaker (run id, experiment id, model
// name, ...), so "after" is exact: no row is skipped or repeated however
// rows come and go, and a row whose sort values change between pages moves
// like it would in a fresh search.
//
// A token is URL-safe base64 of {"after": {...}, "check": "<hex>"} (no
// '+' or '/', so an unescaped token in a query string survives). The
// check is a hash of the query's Fingerprint (everything that decides the
// rows and their order, not the page size) and of the after values, so a
// token of another query, or an altered one, is refused with MLflow's
// "Invalid page token" INVALID_PARAMETER_VALUE error. MLflow's own offset
// tokens are still accepted (never issued), so a client paging across an
// upgrade, or one that builds offset tokens itself, keeps working.
//
// The after values are recorded by running the comparator on the last row
// against itself through a recording view: that calls every accessor the
// comparator may ever need for the cursor, with the cursor's own values.
// Decoding gives back a view that answers from those values.

// Fingerprint identifies a query for its page tokens. Build one with
// NewFingerprint and the Add methods, in a fixed order per search.
type Fingerprint struct {
	h   hash.Hash
	buf []byte
}

// NewFingerprint starts the fingerprint of a query of the given kind
// ("runs", "experiments", ...).
func NewFingerprint(kind string) *Fingerprint {
	f := &Fingerprint{h: sha256.New()}
	return f.AddString(kind)
}

// AddString adds a string.
func (f *Fingerprint) AddString(s string) *Fingerprint {
	f.buf = binary.AppendUvarint(f.buf[:0], uint64(len(s)))
	f.h.Write(f.buf)
	f.h.Write([]byte(s))
	return f
}

// AddStrings adds a list of strings.
func (f *Fingerprint) AddStrings(ss []string) *Fingerprint {
	f.AddInt(int64(len(ss)))
	for _, s := range ss {
		f.AddString(s)
	}
	return f
}

// AddInt adds an integer.
func (f *Fingerprint) AddInt(v int64) *Fingerprint {
	f.buf = binary.AppendVarint(f.buf[:0], v)
	f.h.Write(f.buf)
	return f
}

// AddClauses adds parsed filter clauses.
func (f *Fingerprint) AddClauses(cs []Clause) *Fingerprint {
	f.AddInt(int64(len(cs)))
	for i := range cs {
		c := &cs[i]
		f.AddInt(int64(c.Entity)).AddString(c.Key).AddString(c.Op).AddString(c.Str)
		f.AddInt(int64(math.Float64bits(c.Num))).AddStrings(c.List)
	}
	return f
}

// AddOrderKeys adds parsed order_by keys.
func (f *Fingerprint) AddOrderKeys(ks []OrderKey) *Fingerprint {
	f.AddInt(int64(len(ks)))
	for _, k := range ks {
		asc := int64(0)
		if k.Asc {
			asc = 1
		}
		f.AddInt(int64(k.Entity)).AddString(k.Key).AddInt(asc)
	}
	return f
}

// AddLoggedModelOrders adds search_logged_models order_by entries.
func (f *Fingerprint) AddLoggedModelOrders(os []LoggedModelOrder) *Fingerprint {
	f.AddInt(int64(len(os)))
	for _, o := range os {
		asc := int64(0)
		if o.Ascending {
			asc = 1
		}
		f.AddString(o.FieldName).AddInt(asc).AddString(o.DatasetName).AddString(o.DatasetDigest)
	}
	return f
}

// AddDatasetRefs adds search_logged_models datasets.
func (f *Fingerprint) AddDatasetRefs(ds []DatasetRef) *Fingerprint {
	f.AddInt(int64(len(ds)))
	for _, d := range ds {
		f.AddString(d.Name).AddString(d.Digest)
	}
	return f
}

func (f *Fingerprint) sum() []byte { return f.h.Sum(nil) }

// cval is one recorded accessor result.
type cval struct {
	S  string `json:"s,omitempty"`
	N  int64  `json:"n,omitempty"`
	F  uint64 `json:"f,omitempty"` // float64 bits
	OK bool   `json:"ok,omitempty"`
}

// cpoint is one recorded logged-model metric point.
type cpoint struct {
	F  uint64 `json:"f"`
	T  int64  `json:"t,omitempty"`
	St int64  `json:"st,omitempty"`
	DN string `json:"dn,omitempty"`
	DD string `json:"dd,omitempty"`
}

// snapshot is the sort position of one row: accessor name (plus key) to
// the value the row answered.
type snapshot struct {
	Vals   map[string]cval     `json:"v,omitempty"`
	Points map[string][]cpoint `json:"p,omitempty"`
}

func newSnapshot() *snapshot { return &snapshot{Vals: map[string]cval{}} }

func (s *snapshot) put(k string, v cval) { s.Vals[k] = v }

// str records a string sort value under k and returns it.
func (s *snapshot) str(k, x string) string { s.put(k, cval{S: x}); return x }

// int records an integer sort value under k and returns it.
func (s *snapshot) int(k string, x int64) int64 { s.put(k, cval{N: x}); return x }

func (s *snapshot) get(k string) cval { return s.Vals[k] }

type keysetToken struct {
	After *snapshot `json:"after"`
	Check string    `json:"check"`
}

func checkOf(fp *Fingerprint, after []byte) string {
	h := sha256.New()
	h.Write(fp.sum())
	h.Write(after)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func encodeKeyset(fp *Fingerprint, s *snapshot) string {
	after, err := json.Marshal(s)
	if err != nil {
		panic("search: encoding a page cursor: " + err.Error()) // plain strings and numbers only
	}
	tok, _ := json.Marshal(keysetToken{After: s, Check: checkOf(fp, after)})
	return base64.URLEncoding.EncodeToString(tok)
}

// urlSafe maps the URL-safe base64 alphabet of keyset tokens to the
// standard one. MLflow's tokens are standard base64 and never contain '-'
// or '_'.
var urlSafe = strings.NewReplacer("-", "+", "_", "/")

// Cursor is a decoded page token: the position after which the page
// starts, or (for MLflow's offset tokens) the number of rows to skip. The
// zero Cursor (an empty token) starts at the first row.
type Cursor struct {
	offset int
	after  *snapshot
}

// Offset is the number of leading rows to skip (after the keyset
// restriction, which an offset token does not have).
func (c *Cursor) Offset() int { return c.offset }

// Keyset reports whether the cursor is a keyset position.
func (c *Cursor) Keyset() bool { return c.after != nil }

// DecodeCursor parses a page token issued for the query fp. The empty
// token is the first page. Malformed tokens get MLflow's messages; a
// keyset token issued for another query, or altered, is "Invalid page
// token, parsed value=...", as MLflow answers a token it cannot use.
func DecodeCursor(token string, fp *Fingerprint) (*Cursor, error) {
	if token == "" {
		return &Cursor{}, nil
	}
	if strings.ContainsAny(token, "-_") {
		token = urlSafe.Replace(token)
	}
	raw, obj, err := decodeTokenObject(token)
	if err != nil {
		return nil, err
	}
	if _, ok := obj["after"]; !ok {
		off, err := offsetOf(raw, obj)
		if err != nil {
			return nil, err
		}
		return &Cursor{offset: off}, nil
	}
	bad := errorf("Invalid page token, parsed value=%s", string(raw))
	var kt struct {
		After json.RawMessage `json:"after"`
		Check string          `json:"check"`
	}
	if err := json.Unmarshal(raw, &kt); err != nil {
		return nil, bad
	}
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(kt.After))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, bad
	}
	canon, err := json.Marshal(&s)
	if err != nil || kt.Check != checkOf(fp, canon) {
		return nil, bad
	}
	if s.Vals == nil {
		s.Vals = map[string]cval{}
	}
	return &Cursor{after: &s}, nil
}

// ---------------------------------------------------------------------------
// Runs.

type runRecorder struct {
	v RunView
	s *snapshot
}

func (r runRecorder) RunID() string { return r.s.str("run_id", r.v.RunID()) }

func (r runRecorder) RunName() string { return r.s.str("run_name", r.v.RunName()) }

func (r runRecorder) UserID() string { return r.s.str("user_id", r.v.UserID()) }

func (r runRecorder) Status() string { return r.s.str("status", r.v.Status()) }

func (r runRecorder) ArtifactURI() string { return r.s.str("artifact_uri", r.v.ArtifactURI()) }

func (r runRecorder) StartTime() int64 { return r.s.int("start_time", r.v.StartTime()) }

func (r runRecorder) EndTime() (int64, bool) {
	x, ok := r.v.EndTime()
	r.s.put("end_time", cval{N: x, OK: ok})
	return x, ok
}

func (r runRecorder) LatestMetric(key string) (float64, bool) {
	x, ok := r.v.LatestMetric(key)
	r.s.put("m."+key, cval{F: math.Float64bits(x), OK: ok})
	return x, ok
}

func (r runRecorder) Param(key string) (string, bool) {
	x, ok := r.v.Param(key)
	r.s.put("p."+key, cval{S: x, OK: ok})
	return x, ok
}

func (r runRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

func (r runRecorder) Datasets() []Dataset { return r.v.Datasets() }

// runCursor answers the comparator from a snapshot.
type runCursor struct{ s *snapshot }

func (c runCursor) RunID() string       { return c.s.get("run_id").S }
func (c runCursor) RunName() string     { return c.s.get("run_name").S }
func (c runCursor) UserID() string      { return c.s.get("user_id").S }
func (c runCursor) Status() string      { return c.s.get("status").S }
func (c runCursor) ArtifactURI() string { return c.s.get("artifact_uri").S }
func (c runCursor) StartTime() int64    { return c.s.get("start_time").N }
func (c runCursor) EndTime() (int64, bool) {
	v := c.s.get("end_time")
	return v.N, v.OK
}

func (c runCursor) LatestMetric(key string) (float64, bool) {
	v := c.s.get("m." + key)
	return math.Float64frombits(v.F), v.OK
}

func (c runCursor) Param(key string) (string, bool) {
	v := c.s.get("p." + key)
	return v.S, v.OK
}

func (c runCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

func (c runCursor) Datasets() []Dataset { return nil }

// RunPageToken returns the token of the page that follows last under
// CompareRuns(keys).
func RunPageToken(fp *Fingerprint, keys []OrderKey, last RunView) string {
	s := newSnapshot()
	CompareRuns(keys, runRecorder{last, s}, last)
	return encodeKeyset(fp, s)
}

// AfterRun reports whether v sorts after the cursor under
// CompareRuns(keys) (always true without a keyset position).
func (c *Cursor) AfterRun(keys []OrderKey, v RunView) bool {
	return c.after == nil || CompareRuns(keys, runCursor{c.after}, v) < 0
}

// AfterRunView returns the cursor's keyset position as a RunView that
// answers with the values recorded from the last row of the previous page
// (for stores that compile "sorts after the cursor" into a query); ok is
// false when the cursor has no keyset position.
func (c *Cursor) AfterRunView() (v RunView, ok bool) {
	if c.after == nil {
		return nil, false
	}
	return runCursor{c.after}, true
}

// RunPosition returns the start time and run id of a keyset cursor of a
// search in the default order (no order keys), for seeking in an index.
func (c *Cursor) RunPosition() (start int64, runID string, ok bool) {
	if c.after == nil {
		return 0, "", false
	}
	return c.after.get("start_time").N, c.after.get("run_id").S, true
}

// ---------------------------------------------------------------------------
// Experiments.

type expRecorder struct {
	v ExperimentView
	s *snapshot
}

func (r expRecorder) ExperimentID() string { return r.s.str("experiment_id", r.v.ExperimentID()) }

func (r expRecorder) Name() string { return r.s.str("name", r.v.Name()) }

func (r expRecorder) CreationTime() int64 { return r.s.int("creation_time", r.v.CreationTime()) }

func (r expRecorder) LastUpdateTime() int64 { return r.s.int("last_update_time", r.v.LastUpdateTime()) }

func (r expRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

type expCursor struct{ s *snapshot }

func (c expCursor) ExperimentID() string  { return c.s.get("experiment_id").S }
func (c expCursor) Name() string          { return c.s.get("name").S }
func (c expCursor) CreationTime() int64   { return c.s.get("creation_time").N }
func (c expCursor) LastUpdateTime() int64 { return c.s.get("last_update_time").N }
func (c expCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

// AfterExperimentView is AfterRunView for experiments.
func (c *Cursor) AfterExperimentView() (v ExperimentView, ok bool) {
	if c.after == nil {
		return nil, false
	}
	return expCursor{c.after}, true
}

// ExperimentPageToken returns the token of the page that follows last
// under CompareExperiments(keys).
func ExperimentPageToken(fp *Fingerprint, keys []OrderKey, last ExperimentView) string {
	s := newSnapshot()
	CompareExperiments(keys, expRecorder{last, s}, last)
	return encodeKeyset(fp, s)
}

// AfterExperiment reports whether v sorts after the cursor under
// CompareExperiments(keys).
func (c *Cursor) AfterExperiment(keys []OrderKey, v ExperimentView) bool {
	return c.after == nil || CompareExperiments(keys, expCursor{c.after}, v) < 0
}

// ---------------------------------------------------------------------------
// Registered models and model versions.

type rmRecorder struct {
	v RegisteredModelView
	s *snapshot
}

func (r rmRecorder) Name() string { return r.s.str("name", r.v.Name()) }

func (r rmRecorder) LastUpdatedTimestamp() int64 {
	return r.s.int("last_updated_timestamp", r.v.LastUpdatedTimestamp())
}

func (r rmRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

type rmCursor struct{ s *snapshot }

func (c rmCursor) Name() string                { return c.s.get("name").S }
func (c rmCursor) LastUpdatedTimestamp() int64 { return c.s.get("last_updated_timestamp").N }
func (c rmCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

// RegisteredModelPageToken returns the token of the page that follows
// last under CompareRegisteredModels(keys).
func RegisteredModelPageToken(fp *Fingerprint, keys []OrderKey, last RegisteredModelView) string {
	s := newSnapshot()
	CompareRegisteredModels(keys, rmRecorder{last, s}, last)
	return encodeKeyset(fp, s)
}

// AfterRegisteredModel reports whether v sorts after the cursor under
// CompareRegisteredModels(keys).
func (c *Cursor) AfterRegisteredModel(keys []OrderKey, v RegisteredModelView) bool {
	return c.after == nil || CompareRegisteredModels(keys, rmCursor{c.after}, v) < 0
}

type mvRecorder struct {
	v ModelVersionView
	s *snapshot
}

func (r mvRecorder) Name() string { return r.s.str("name", r.v.Name()) }

func (r mvRecorder) Version() int64 { return r.s.int("version", r.v.Version()) }

func (r mvRecorder) RunID() string { return r.s.str("run_id", r.v.RunID()) }

func (r mvRecorder) Source() string { return r.s.str("source", r.v.Source()) }

func (r mvRecorder) CreationTimestamp() int64 {
	return r.s.int("creation_timestamp", r.v.CreationTimestamp())
}

func (r mvRecorder) LastUpdatedTimestamp() int64 {
	return r.s.int("last_updated_timestamp", r.v.LastUpdatedTimestamp())
}

func (r mvRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

type mvCursor struct{ s *snapshot }

func (c mvCursor) Name() string                { return c.s.get("name").S }
func (c mvCursor) Version() int64              { return c.s.get("version").N }
func (c mvCursor) RunID() string               { return c.s.get("run_id").S }
func (c mvCursor) Source() string              { return c.s.get("source").S }
func (c mvCursor) CreationTimestamp() int64    { return c.s.get("creation_timestamp").N }
func (c mvCursor) LastUpdatedTimestamp() int64 { return c.s.get("last_updated_timestamp").N }
func (c mvCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

// ModelVersionPageToken returns the token of the page that follows last
// under CompareModelVersions(keys).
func ModelVersionPageToken(fp *Fingerprint, keys []OrderKey, last ModelVersionView) string {
	s := newSnapshot()
	CompareModelVersions(keys, mvRecorder{last, s}, last)
	return encodeKeyset(fp, s)
}

// AfterModelVersion reports whether v sorts after the cursor under
// CompareModelVersions(keys).
func (c *Cursor) AfterModelVersion(keys []OrderKey, v ModelVersionView) bool {
	return c.after == nil || CompareModelVersions(keys, mvCursor{c.after}, v) < 0
}

// ---------------------------------------------------------------------------
// Traces.

type traceRecorder struct {
	v TraceView
	s *snapshot
}

func (r traceRecorder) TraceAttr(key string) (string, int64) {
	x, n := r.v.TraceAttr(key)
	r.s.put("a."+key, cval{S: x, N: n})
	return x, n
}

func (r traceRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

func (r traceRecorder) Metadata(key string) (string, bool) {
	x, ok := r.v.Metadata(key)
	r.s.put("md."+key, cval{S: x, OK: ok})
	return x, ok
}

func (r traceRecorder) LinkedToRun(runID string) bool { return r.v.LinkedToRun(runID) }

type traceCursor struct{ s *snapshot }

func (c traceCursor) TraceAttr(key string) (string, int64) {
	v := c.s.get("a." + key)
	return v.S, v.N
}

func (c traceCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

func (c traceCursor) Metadata(key string) (string, bool) {
	v := c.s.get("md." + key)
	return v.S, v.OK
}

func (c traceCursor) LinkedToRun(string) bool { return false }

// TracePageToken returns the token of the page that follows last under
// CompareTraces(keys).
func TracePageToken(fp *Fingerprint, keys []OrderKey, last TraceView) string {
	s := newSnapshot()
	CompareTraces(keys, traceRecorder{last, s}, last)
	return encodeKeyset(fp, s)
}

// AfterTrace reports whether v sorts after the cursor under
// CompareTraces(keys).
func (c *Cursor) AfterTrace(keys []OrderKey, v TraceView) bool {
	return c.after == nil || CompareTraces(keys, traceCursor{c.after}, v) < 0
}

// ---------------------------------------------------------------------------
// Logged models.

type lmRecorder struct {
	v LoggedModelView
	s *snapshot
}

func (r lmRecorder) LoggedModelAttr(key string) (string, int64) {
	x, n := r.v.LoggedModelAttr(key)
	r.s.put("a."+key, cval{S: x, N: n})
	return x, n
}

func (r lmRecorder) Tag(key string) (string, bool) {
	x, ok := r.v.Tag(key)
	r.s.put("t."+key, cval{S: x, OK: ok})
	return x, ok
}

func (r lmRecorder) Param(key string) (string, bool) {
	x, ok := r.v.Param(key)
	r.s.put("p."+key, cval{S: x, OK: ok})
	return x, ok
}

// MetricPoints is answered by the model itself; LoggedModelPageToken
// records only the points the order keys pick (see there).
func (r lmRecorder) MetricPoints(key string) []MetricPoint { return r.v.MetricPoints(key) }

func (r lmRecorder) HasDatasetMetric(ds []DatasetRef) bool { return r.v.HasDatasetMetric(ds) }

type lmCursor struct{ s *snapshot }

func (c lmCursor) LoggedModelAttr(key string) (string, int64) {
	v := c.s.get("a." + key)
	return v.S, v.N
}

func (c lmCursor) Tag(key string) (string, bool) {
	v := c.s.get("t." + key)
	return v.S, v.OK
}

func (c lmCursor) Param(key string) (string, bool) {
	v := c.s.get("p." + key)
	return v.S, v.OK
}

func (c lmCursor) MetricPoints(key string) []MetricPoint {
	ps := c.s.Points[key]
	out := make([]MetricPoint, len(ps))
	for i, p := range ps {
		out[i] = MetricPoint{Value: math.Float64frombits(p.F), Timestamp: p.T, Step: p.St, DatasetName: p.DN, DatasetDigest: p.DD}
	}
	return out
}

func (c lmCursor) HasDatasetMetric([]DatasetRef) bool { return false }

// LoggedModelPageToken returns the token of the page that follows last
// under CompareLoggedModels(keys). Of a metric's points it keeps only
// those some order key picks, in their original order, which makes every
// order key pick the same point from the cursor as from the model.
func LoggedModelPageToken(fp *Fingerprint, keys []LoggedModelOrder, last LoggedModelView) string {
	s := newSnapshot()
	CompareLoggedModels(keys, lmRecorder{last, s}, last)
	picked := map[string][]int{}
	for i := range keys {
		k := &keys[i]
		if k.metric == "" {
			continue
		}
		if j := latestIndex(last.MetricPoints(k.metric), k); j >= 0 && !slices.Contains(picked[k.metric], j) {
			picked[k.metric] = append(picked[k.metric], j)
		}
	}
	for key, idx := range picked {
		slices.Sort(idx)
		points := last.MetricPoints(key)
		if s.Points == nil {
			s.Points = map[string][]cpoint{}
		}
		for _, j := range idx {
			p := points[j]
			s.Points[key] = append(s.Points[key], cpoint{F: math.Float64bits(p.Value), T: p.Timestamp, St: p.Step,
				DN: p.DatasetName, DD: p.DatasetDigest})
		}
	}
	return encodeKeyset(fp, s)
}

// AfterLoggedModel reports whether v sorts after the cursor under
// CompareLoggedModels(keys).
func (c *Cursor) AfterLoggedModel(keys []LoggedModelOrder, v LoggedModelView) bool {
	return c.after == nil || CompareLoggedModels(keys, lmCursor{c.after}, v) < 0
}
