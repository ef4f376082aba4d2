package boltstore

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// bucketEntries returns a bucket's keys and values.
func bucketEntries(t testing.TB, s *Store, name []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	}))
	return out
}

// wantAsmtIndex checks that the assessment, value and session indexes hold
// exactly what the trace records give.
func wantAsmtIndex(t testing.TB, s *Store) {
	t.Helper()
	wantA, wantV, wantS := map[string]string{}, map[string]string{}, map[string]string{}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTrace).ForEach(func(k, _ []byte) error {
			tr, err := getTrace(tx, string(k))
			if err != nil {
				return err
			}
			byTrace, byValue := asmtEntries(tr)
			for k, v := range byTrace {
				wantA[k] = string(v)
			}
			for k, v := range byValue {
				wantV[k] = string(v)
			}
			if sess := traceSession(tr); sess != "" {
				wantS[string(append(appendStr(nil, sess), tr.RequestID...))] = ""
			}
			return nil
		})
	}))
	if got := bucketEntries(t, s, bTraceAsmt); !maps.Equal(got, wantA) {
		t.Errorf("assessment index %q, want %q", got, wantA)
	}
	if got := bucketEntries(t, s, bTraceAsmtVal); !maps.Equal(got, wantV) {
		t.Errorf("assessment value index %q, want %q", got, wantV)
	}
	wantSS := map[string]string{}
	for k, v := range wantA {
		if v[0]&asmtSessionScoped != 0 {
			wantSS[k] = v
		}
	}
	if got := bucketEntries(t, s, bTraceAsmtSess); !maps.Equal(got, wantSS) {
		t.Errorf("session-scoped assessment index %q, want %q", got, wantSS)
	}
	if got := bucketEntries(t, s, bTraceSession); !maps.Equal(got, wantS) {
		t.Errorf("session index %q, want %q", got, wantS)
	}
}

func findTraces(t testing.TB, s *Store, exp, filter string) []string {
	t.Helper()
	clauses, err := search.ParseTraceFilter(filter)
	ok(t, err)
	page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: clauses})
	ok(t, err)
	var ids []string
	for _, tr := range page.Traces {
		ids = append(ids, tr.RequestID)
	}
	return ids
}

// TestTraceAssessmentIndex checks the assessment and session indexes
// through every writer (create, override, update, delete, span logging,
// trace deletion, experiment GC), and that a database written before them
// gets them built on open while searches read the records meanwhile.
func TestTraceAssessmentIndex(t *testing.T) {
	autoIndex = false
	t.Cleanup(func() { autoIndex = true })
	s, path := openTest(t)
	exp := mkExp(t, s, "a")
	fb := func(trace, name, value string, meta map[string]string) *tracking.Assessment {
		a, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: trace, AssessmentName: name, Valid: true,
			Feedback: json.RawMessage(`{"value": ` + value + `}`), Metadata: meta})
		ok(t, err)
		return a
	}
	for _, id := range []string{"tr-1", "tr-2", "tr-3"} {
		_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: 100, Status: tracking.TraceStatusOK,
			RequestMetadata: []tracking.Tag{{Key: search.TraceMetadataSession, Value: "sess"}}})
		ok(t, err)
	}
	a := fb("tr-1", "q", `"good"`, nil)
	fb("tr-1", "q", `"bad"`, nil)
	fb("tr-2", "s", `1`, map[string]string{search.TraceMetadataSession: "sess"})
	_, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: "tr-1", AssessmentName: "q", Valid: true,
		Feedback: json.RawMessage(`{"value": "fixed"}`), Overrides: a.AssessmentID})
	ok(t, err)
	_, err = s.UpdateAssessment(bg, "tr-2", bucketAsmtID(t, s, "tr-2"), func(a *tracking.Assessment) error {
		a.Feedback = json.RawMessage(`{"value": 2}`)
		return nil
	})
	ok(t, err)
	// Spans with an earlier start move the trace's order entry too.
	_, err = s.LogSpans(bg, exp, []tracking.SpanBatch{{TraceID: "tr-3", StartMs: 50, EndMs: 60,
		Spans: []tracking.Span{{TraceID: "tr-3", SpanID: "0000000000000001", Name: "r", Status: "OK", StartTimeNs: 50e6, EndTimeNs: 60e6, Content: json.RawMessage(`{}`)}}}})
	ok(t, err)
	checkTraceIndex(t, s)
	wantAsmtIndex(t, s)
	if got := findTraces(t, s, exp, "feedback.s = '2.0'"); !slices.Equal(got, []string{"tr-1", "tr-2", "tr-3"}) {
		t.Fatalf("session-scoped feedback: %v", got)
	}
	if got := findTraces(t, s, exp, "feedback.q = 'fixed'"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("overriding feedback: %v", got)
	}

	// A database from before the indexes: they are built on open.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bTraceAsmt); err != nil {
			return err
		}
		return tx.DeleteBucket(bTraceSession) // the session-scoped entries stay: a partial set
	}))
	ok(t, s.Close())
	s2, err := Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	if len(bucketEntries(t, s2, bTraceAsmt)) != 0 {
		t.Fatal("assessment index present before the build")
	}
	if got := findTraces(t, s2, exp, "feedback.q = 'bad' AND feedback.s IS NOT NULL"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("search before the build: %v", got)
	}
	ok(t, s2.buildTraceIndex(bg, -1))
	wantAsmtIndex(t, s2)
	if got := findTraces(t, s2, exp, "feedback.q = 'bad' AND feedback.s IS NOT NULL"); !slices.Equal(got, []string{"tr-1"}) {
		t.Fatalf("search after the build: %v", got)
	}
	_, err = s2.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{"tr-2"}})
	ok(t, err)
	wantAsmtIndex(t, s2)
	if got := findTraces(t, s2, exp, "feedback.s IS NOT NULL"); got != nil {
		t.Fatalf("deleted trace's session feedback still found: %v", got)
	}
	ok(t, s2.DeleteExperiment(bg, exp))
	ok(t, s2.HardDeleteExperiment(bg, exp))
	if n := len(bucketEntries(t, s2, bTraceAsmt)) + len(bucketEntries(t, s2, bTraceAsmtSess)) + len(bucketEntries(t, s2, bTraceAsmtVal)) + len(bucketEntries(t, s2, bTraceSession)); n != 0 {
		t.Fatalf("gc left %d assessment or session entries", n)
	}
}

// bucketAsmtID returns the id of a trace's only assessment.
func bucketAsmtID(t testing.TB, s *Store, trace string) string {
	t.Helper()
	tr, err := s.GetTraceInfo(bg, trace)
	ok(t, err)
	if len(tr.Assessments) != 1 {
		t.Fatalf("trace %s has %d assessments", trace, len(tr.Assessments))
	}
	return tr.Assessments[0].AssessmentID
}

// TestCompareEntries checks the entry comparator against
// search.CompareTraces for every key entryOrder accepts.
func TestCompareEntries(t *testing.T) {
	var ents []*tracking.TraceInfo
	for i := 0; i < 12; i++ {
		ents = append(ents, &tracking.TraceInfo{RequestID: []string{"tr-a", "tr-b", "tr-c"}[i%3], ExperimentID: []string{"1", "10", "2"}[i%3],
			TimestampMs: int64(i % 4), ExecutionTimeMs: int64(i % 5), Status: []string{"OK", "ERROR"}[i%2]})
	}
	keys := []string{"timestamp_ms", "execution_time_ms", "end_time_ms", "status", "request_id", "experiment_id"}
	for _, k1 := range keys {
		for _, k2 := range keys {
			for _, asc := range []bool{false, true} {
				order := []search.OrderKey{{Entity: search.EntityAttribute, Key: k1, Asc: asc}, {Entity: search.EntityAttribute, Key: k2, Asc: !asc}}
				if !entryOrder(order) {
					t.Fatalf("entryOrder(%v) false", order)
				}
				for _, a := range ents {
					for _, b := range ents {
						if got, want := compareEntries(order, a, b), search.CompareTraces(order, a, b); (got < 0) != (want < 0) || (got > 0) != (want > 0) {
							t.Fatalf("%v: compare(%+v, %+v) = %d, CompareTraces %d", order, a, b, got, want)
						}
					}
				}
			}
		}
	}
}

// countAsmtReads counts the assessment index entries searches read, per
// bucket, until the test ends.
func countAsmtReads(t *testing.T) map[string]int {
	t.Helper()
	reads := map[string]int{}
	asmtReadHook = func(b []byte) { reads[string(b)]++ }
	t.Cleanup(func() { asmtReadHook = nil })
	return reads
}

// seedAsmtValues writes n traces with a feedback "q" each: "rare" on
// the traces whose index is 3 mod 40, "common" on the others. Traces 0
// to 2 share session "s1", trace 0's feedback covers it, and traces 5 and
// 6 have feedback "long" values longer than maxKeyedValue that differ in
// their last byte only. Trace 9 has a "rare" feedback overridden by a
// "common" one (no longer valid).
func seedAsmtValues(t *testing.T, s *Store, exp string, n int) {
	t.Helper()
	fb := func(trace, name, value string, meta map[string]string) *tracking.Assessment {
		a, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: trace, AssessmentName: name, Valid: true,
			Feedback: json.RawMessage(`{"value": ` + value + `}`), Metadata: meta})
		ok(t, err)
		return a
	}
	for i := 0; i < n; i++ {
		tr := &tracking.TraceInfo{RequestID: fmt.Sprintf("tr-%02d", i), ExperimentID: exp, TimestampMs: int64(i % 7), Status: tracking.TraceStatusOK}
		if i < 3 {
			tr.RequestMetadata = []tracking.Tag{{Key: search.TraceMetadataSession, Value: "s1"}}
		}
		_, err := s.StartTraceV3(bg, tr)
		ok(t, err)
		var meta map[string]string
		if i == 0 {
			meta = map[string]string{search.TraceMetadataSession: "s1"}
		}
		value := `"common"`
		if i%40 == 3 || i == 0 || i == 9 {
			value = `"rare"`
		}
		a := fb(tr.RequestID, "q", value, meta)
		if i == 9 {
			_, err := s.CreateAssessment(bg, tracking.Assessment{TraceID: tr.RequestID, AssessmentName: "q", Valid: true,
				Feedback: json.RawMessage(`{"value": "common"}`), Overrides: a.AssessmentID})
			ok(t, err)
		}
		if i == 5 || i == 6 {
			fb(tr.RequestID, "long", `"`+strings.Repeat("x", maxKeyedValue+10)+string(rune('a'+i))+`"`, nil)
		}
	}
}

// asmtValCases are equality searches over seedAsmtValues(s, exp, 100)
// and their answers.
var asmtValCases = []struct {
	filter string
	want   []string
}{
	{"feedback.q = 'rare'", []string{"tr-00", "tr-01", "tr-02", "tr-03", "tr-43", "tr-83"}},
	{`feedback.q = '"rare"'`, []string{"tr-00", "tr-01", "tr-02", "tr-03", "tr-43", "tr-83"}},
	{"feedback.q = 'rare' AND timestamp_ms > 0", []string{"tr-01", "tr-02", "tr-03", "tr-43", "tr-83"}},
	{"feedback.q = 'none'", nil},
	{"expectation.q = 'rare'", nil},
	{"feedback.long = '" + strings.Repeat("x", maxKeyedValue+10) + "f'", []string{"tr-05"}},
	{"feedback.long = '" + strings.Repeat("x", maxKeyedValue+10) + "g'", []string{"tr-06"}},
	{"feedback.long = '" + strings.Repeat("x", maxKeyedValue+10) + "h'", nil},
}

func sortedTraces(t *testing.T, s *Store, exp, filter string) []string {
	t.Helper()
	got := findTraces(t, s, exp, filter)
	slices.Sort(got)
	return got
}

// TestTraceAssessmentValueSeek checks that an equality on a feedback
// value reads only the value index entries holding the value (not every
// assessment of the name), and answers as the name scan and the full
// scan do: session-scoped matches cover their session, overridden
// assessments do not match, and values too long to key whole are told
// apart by the entries' full values.
func TestTraceAssessmentValueSeek(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "a")
	seedAsmtValues(t, s, exp, 100)
	wantAsmtIndex(t, s)
	reads := countAsmtReads(t)
	for _, tc := range asmtValCases {
		clear(reads)
		if got := sortedTraces(t, s, exp, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("%.60s: %v, want %v", tc.filter, got, tc.want)
		}
		// Only the value's entries: the 4 "rare" ones, the 2 long ones.
		if reads["traceasmt"]+reads["traceasmtsess"] != 0 || reads["traceasmtval"] > 4 {
			t.Errorf("%.60s read %v, want only traceasmtval entries of the value", tc.filter, reads)
		}
		clear(reads)
		useAsmtValIndex = false
		byName := sortedTraces(t, s, exp, tc.filter)
		useAsmtValIndex = true
		if reads["traceasmtval"] != 0 || (strings.HasPrefix(tc.filter, "feedback.q =") && reads["traceasmt"] < 100) {
			t.Errorf("%.60s without the value index read %v", tc.filter, reads)
		}
		useTraceIndex = false
		scan := sortedTraces(t, s, exp, tc.filter)
		useTraceIndex = true
		if !slices.Equal(byName, tc.want) || !slices.Equal(scan, tc.want) {
			t.Errorf("%.60s: name scan %v, full scan %v, want %v", tc.filter, byName, scan, tc.want)
		}
	}
	// More matches than asmtSetMax: looked up per trace, sessions still
	// covered.
	defer func(old int) { asmtSetMax = old }(asmtSetMax)
	asmtSetMax = 2
	for _, tc := range asmtValCases[:3] {
		if got := sortedTraces(t, s, exp, tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("lazy %s: %v, want %v", tc.filter, got, tc.want)
		}
	}
}

// TestTraceAssessmentValueIndexMigrate: a file at schema 3, 4 or 5 (no
// traceasmtval) is migrated to schema 6 on Open; equality searches scan
// their name (and answer the same) until the background build, in
// chunks that resume after a restart and with writes during it kept,
// has indexed every trace; then they seek.
func TestTraceAssessmentValueIndexMigrate(t *testing.T) {
	for _, v := range []uint64{3, 4, 5} {
		t.Run(fmt.Sprint("version", v), func(t *testing.T) { testAsmtValIndexMigrate(t, v) })
	}
}

func testAsmtValIndexMigrate(t *testing.T, version uint64) {
	autoIndex, indexChunk = false, 4
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	s, path := openTest(t)
	exp := mkExp(t, s, "a")
	seedAsmtValues(t, s, exp, 100)
	ok(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bTraceAsmtVal); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		if err := meta.Delete(metaAsmtValIdx); err != nil {
			return err
		}
		return meta.Put([]byte("version"), u64(version))
	}))
	ok(t, db.Close())

	reads := countAsmtReads(t)
	check := func(s *Store, when string, seek bool) {
		t.Helper()
		for _, tc := range asmtValCases {
			clear(reads)
			if got := sortedTraces(t, s, exp, tc.filter); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %.60s: %v, want %v", when, tc.filter, got, tc.want)
			}
			byName := reads["traceasmt"] + reads["traceasmtsess"]
			if seek && byName != 0 || !seek && (reads["traceasmtval"] != 0 || strings.HasPrefix(tc.filter, "feedback.") && byName == 0) {
				t.Errorf("%s: %.60s read %v", when, tc.filter, reads)
			}
		}
	}
	s, err = Open(path, Options{})
	ok(t, err)
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get([]byte("version")); u64be(v) != schemaVersion || schemaVersion != 6 {
			t.Errorf("version %x after open", v)
		}
		if asmtValReady(tx) || tx.Bucket(bTraceAsmtVal).Stats().KeyN != 0 {
			t.Error("value index ready or filled before its build")
		}
		return nil
	}))
	check(s, "before the build", false)
	ok(t, s.buildAsmtValIndex(bg, 2)) // 8 of 100 traces (10 entries), then a restart
	if n := len(bucketEntries(t, s, bTraceAsmtVal)); n != 10 {
		t.Fatalf("after two chunks: %d entries", n)
	}
	check(s, "during the build", false)
	ok(t, s.Close())

	s, err = Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if pos := tx.Bucket(bMeta).Get(metaAsmtValIdxPos); string(pos) != "tr-07" {
			t.Errorf("build position %q after reopening, want tr-07", pos)
		}
		return nil
	}))
	// A write the build has not reached yet, and one it has passed.
	for _, id := range []string{"tr-04", "tr-93"} {
		_, err = s.CreateAssessment(bg, tracking.Assessment{TraceID: id, AssessmentName: "q", Valid: true,
			Feedback: json.RawMessage(`{"value": "rare"}`)})
		ok(t, err)
	}
	for i := range asmtValCases[:3] {
		asmtValCases[i].want = append(slices.Clone(asmtValCases[i].want), "tr-04", "tr-93")
		slices.Sort(asmtValCases[i].want)
	}
	t.Cleanup(func() {
		for i := range asmtValCases[:3] {
			asmtValCases[i].want = slices.DeleteFunc(asmtValCases[i].want, func(id string) bool { return id == "tr-04" || id == "tr-93" })
		}
	})
	ok(t, s.buildAsmtValIndex(bg, 1))
	check(s, "during the resumed build", false)
	ok(t, s.buildAsmtValIndex(bg, -1))
	wantAsmtIndex(t, s)
	check(s, "after the build", true)
}

// TestTraceAssessmentValueDifferential checks, after random assessment
// writes on every path (create, override, update, delete, session-scoped
// or not, trace deletion), that equality searches seeking the value index
// answer page by page as the name scan and the full scan do, and that
// the indexes equal ones rebuilt from the records.
func TestTraceAssessmentValueDifferential(t *testing.T) {
	s, _ := openTest(t)
	rng := rand.New(rand.NewPCG(3, 5))
	exps := []string{mkExp(t, s, "a"), mkExp(t, s, "b")}
	long := strings.Repeat("y", maxKeyedValue)
	values := []string{`"good"`, `"bad"`, `5`, `5.5`, `true`, `false`, `"` + long + `1"`, `"` + long + `2"`, `{"k": [1, "x"]}`}
	var ids []string
	for i := 0; i < 60; i++ {
		tr := &tracking.TraceInfo{RequestID: fmt.Sprintf("tr-%02d", i), ExperimentID: exps[rng.IntN(2)],
			TimestampMs: int64(rng.IntN(20)), Status: tracking.TraceStatusOK}
		if rng.IntN(2) == 0 {
			tr.RequestMetadata = []tracking.Tag{{Key: search.TraceMetadataSession, Value: fmt.Sprint("s", rng.IntN(6))}}
		}
		_, err := s.StartTraceV3(bg, tr)
		ok(t, err)
		ids = append(ids, tr.RequestID)
	}
	type ref struct{ trace, id string }
	var made []ref
	newAsmt := func(trace, overrides string) {
		a := tracking.Assessment{TraceID: trace, AssessmentName: []string{"q", "r"}[rng.IntN(2)], Valid: true, Overrides: overrides}
		body := json.RawMessage(`{"value": ` + values[rng.IntN(len(values))] + `}`)
		if rng.IntN(3) == 0 {
			a.Expectation = body
		} else {
			a.Feedback = body
		}
		if rng.IntN(4) == 0 {
			a.Metadata = map[string]string{search.TraceMetadataSession: "x"}
		}
		got, err := s.CreateAssessment(bg, a)
		if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatal(err)
		}
		if err == nil {
			made = append(made, ref{trace, got.AssessmentID})
		}
	}
	for i := 0; i < 150; i++ {
		switch r := rng.IntN(10); {
		case r < 5 || len(made) == 0:
			newAsmt(ids[rng.IntN(len(ids))], "")
		case r < 6:
			m := made[rng.IntN(len(made))]
			newAsmt(m.trace, m.id)
		case r < 8:
			m := made[rng.IntN(len(made))]
			_, err := s.UpdateAssessment(bg, m.trace, m.id, func(a *tracking.Assessment) error {
				body := json.RawMessage(`{"value": ` + values[rng.IntN(len(values))] + `}`)
				if len(a.Feedback) > 0 {
					a.Feedback = body
				} else {
					a.Expectation = body
				}
				return nil
			})
			if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatal(err)
			}
		case r < 9:
			m := made[rng.IntN(len(made))]
			if err := s.DeleteAssessment(bg, m.trace, m.id); err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatal(err)
			}
		default:
			_, err := s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exps[rng.IntN(2)], RequestIDs: []string{ids[rng.IntN(len(ids))]}})
			if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Fatal(err)
			}
		}
	}
	wantAsmtIndex(t, s)
	var filters []string
	for _, kind := range []string{"feedback", "expectation"} {
		for _, name := range []string{"q", "r"} {
			for _, v := range []string{"good", `"bad"`, "5.0", "5.5", "true", "false", long + "1", long + "2", `{"k": [1, "x"]}`, "none"} {
				filters = append(filters, fmt.Sprintf("%s.%s = '%s'", kind, name, v))
			}
		}
	}
	filters = append(filters, "feedback.q = 'good' AND expectation.r = 'true'", "feedback.q = '5.0' AND timestamp_ms > 5")
	for _, filter := range filters {
		for _, order := range [][]string{nil, {"timestamp_ms ASC"}, {"execution_time_ms DESC"}} {
			size := 1 + rng.IntN(10)
			seek := searchAll(t, s, exps, filter, order, size)
			useAsmtValIndex = false
			byName := searchAll(t, s, exps, filter, order, size)
			useAsmtValIndex, useTraceIndex = true, false
			scan := searchAll(t, s, exps, filter, order, size)
			useTraceIndex = true
			if !slices.Equal(seek, byName) || !slices.Equal(seek, scan) {
				t.Fatalf("%.80s order %v size %d:\nseek %v\nname %v\nscan %v", filter, order, size, seek, byName, scan)
			}
		}
	}
}
