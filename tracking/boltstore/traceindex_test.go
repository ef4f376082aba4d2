package boltstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// traceOrdEntries returns the trace index as key/value pairs.
func traceOrdEntries(t testing.TB, s *Store) [][2]string {
	t.Helper()
	var out [][2]string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTraceOrd).ForEach(func(k, v []byte) error {
			out = append(out, [2]string{string(k), string(v)})
			return nil
		})
	}))
	return out
}

// checkTraceIndex fails unless the maintained index equals one rebuilt
// from the trace records.
func checkTraceIndex(t testing.TB, s *Store) {
	t.Helper()
	got := traceOrdEntries(t, s)
	var want [][2]string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTrace).ForEach(func(k, _ []byte) error {
			tr, err := getTrace(tx, string(k))
			if err != nil {
				return err
			}
			exp, _ := parseExpID(tr.ExperimentID)
			want = append(want, [2]string{string(traceOrdKey(exp, tr.TimestampMs, tr.RequestID)), string(traceOrdVal(tr))})
			return nil
		})
	}))
	slices.SortFunc(want, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if !slices.Equal(got, want) {
		t.Fatalf("trace index out of date: %d entries, rebuilt %d", len(got), len(want))
	}
}

var traceFilters = []string{
	"",
	"timestamp_ms > 20",
	"timestamp_ms >= 20 AND timestamp_ms < 35",
	"timestamp = 25",
	"timestamp_ms <= 10.5",
	"timestamp_ms > -5",
	"status = 'OK'",
	"status IN ('ERROR', 'IN_PROGRESS')",
	"status != 'OK' AND timestamp_ms > 5",
	"execution_time_ms > 50",
	"execution_time < 30 AND status = 'OK'",
	"end_time_ms > 80",
	"tag.color = 'red'",
	"tags.color != 'red'",
	"tag.color IS NULL",
	"metadata.m LIKE 'v%'",
	"request_metadata.m = 'v1' AND timestamp_ms > 30",
	"name = 'n1'",
	"request_id LIKE 'tr-a%'",
	"tag.color ILIKE 'R%' AND execution_time_ms <= 60",
	"trace.status = 'ERROR' AND tag.color = 'blue'",
}

var traceOrders = [][]string{nil, {"timestamp_ms DESC"}, {"timestamp DESC", "request_id ASC"}, {"timestamp_ms ASC"}, {"timestamp ASC", "request_id ASC"}, {"execution_time_ms DESC"}, {"timestamp_ms ASC", "request_id DESC"}}

// searchAll pages through a search and returns every page's ids and
// tokens.
func searchAll(t *testing.T, s *Store, exps []string, filter string, order []string, size int) []string {
	t.Helper()
	clauses, err := search.ParseTraceFilter(filter)
	ok(t, err)
	keys, err := search.ParseTraceOrderBy(order)
	ok(t, err)
	var out []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("too many pages")
		}
		page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: exps, Filter: clauses, OrderBy: keys, MaxResults: size, PageToken: token})
		ok(t, err)
		line := "page:"
		for _, tr := range page.Traces {
			line += " " + tr.RequestID + "/" + strconv.FormatInt(tr.TimestampMs, 10)
		}
		out = append(out, line, "token:"+page.NextPageToken)
		if page.NextPageToken == "" {
			return out
		}
		token = page.NextPageToken
	}
}

// TestTraceIndexDifferential checks that the indexed search answers
// page by page exactly as the full scan does, after random writes on
// every trace write path, and that the index stays equal to one rebuilt
// from the records.
func TestTraceIndexDifferential(t *testing.T) {
	s, _ := openTest(t)
	rng := rand.New(rand.NewPCG(7, 13))
	exps := []string{mkExp(t, s, "a"), mkExp(t, s, "b")}
	statuses := []string{tracking.TraceStatusOK, tracking.TraceStatusError, tracking.TraceStatusInProgress}
	colors := []string{"red", "blue", "Red"}
	var ids []string
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("tr-%c%03d", 'a'+rune(rng.IntN(3)), i)
		tr := &tracking.TraceInfo{RequestID: id, ExperimentID: exps[rng.IntN(2)],
			TimestampMs: int64(rng.IntN(40)), ExecutionTimeMs: int64(rng.IntN(100)), Status: statuses[rng.IntN(3)]}
		if rng.IntN(3) > 0 {
			tr.Tags = append(tr.Tags, tracking.Tag{Key: "color", Value: colors[rng.IntN(3)]})
		}
		if rng.IntN(2) == 0 {
			tr.RequestMetadata = append(tr.RequestMetadata, tracking.Tag{Key: "m", Value: "v" + strconv.Itoa(rng.IntN(3))})
		}
		if rng.IntN(4) == 0 {
			tr.Tags = append(tr.Tags, tracking.Tag{Key: tracking.TraceTagName, Value: "n" + strconv.Itoa(rng.IntN(2))})
		}
		switch rng.IntN(3) {
		case 0:
			_, err := s.StartTraceV3(bg, tr)
			ok(t, err)
		case 1:
			ok(t, s.ImportTrace(bg, tr))
		default:
			st, err := s.StartTrace(bg, tracking.StartTrace{ExperimentID: tr.ExperimentID, TimestampMs: tr.TimestampMs, Tags: tr.Tags, RequestMetadata: tr.RequestMetadata})
			ok(t, err)
			id = st.RequestID
		}
		ids = append(ids, id)
	}
	for i := 0; i < 200; i++ {
		id := ids[rng.IntN(len(ids))]
		var err error
		switch rng.IntN(6) {
		case 0:
			_, err = s.EndTrace(bg, tracking.EndTrace{RequestID: id, TimestampMs: int64(40 + rng.IntN(60)), Status: statuses[rng.IntN(2)]})
		case 1:
			err = s.SetTraceTag(bg, id, tracking.Tag{Key: "color", Value: colors[rng.IntN(3)]})
		case 2:
			err = s.DeleteTraceTag(bg, id, "color")
		case 3:
			// Re-start (upsert) with a new timestamp moves the entry.
			var old *tracking.TraceInfo
			if old, err = s.GetTraceInfo(bg, id); err == nil {
				up := *old
				up.TimestampMs = int64(rng.IntN(40))
				up.Status = statuses[rng.IntN(3)]
				_, err = s.StartTraceV3(bg, &up)
			}
		case 4:
			_, err = s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exps[rng.IntN(2)], RequestIDs: []string{id}})
		case 5:
			_, err = s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exps[rng.IntN(2)], MaxTimestampMillis: int64(rng.IntN(3)), MaxTraces: 2})
		}
		if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatal(err)
		}
	}
	checkTraceIndex(t, s)
	for _, filter := range traceFilters {
		for _, order := range traceOrders {
			for _, expSet := range [][]string{exps[:1], exps, {exps[1], exps[0], "999"}} {
				size := 1 + rng.IntN(40)
				useTraceIndex = true
				got := searchAll(t, s, expSet, filter, order, size)
				useTraceIndex = false
				want := searchAll(t, s, expSet, filter, order, size)
				useTraceIndex = true
				if !slices.Equal(got, want) {
					t.Fatalf("filter %q order %v exps %v size %d:\nindexed %v\nscan    %v", filter, order, expSet, size, got, want)
				}
			}
		}
	}
}

// TestTraceIndexBuiltOnOpen checks that a database without the trace
// index (written before it) gets it built in the background after open,
// in chunks that resume where an interrupted build stopped, with
// searches scanning (and answering the same) until it is ready and
// writes during the build kept in the index.
func TestTraceIndexBuiltOnOpen(t *testing.T) {
	autoIndex, indexChunk = false, 4
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	s, path := openTest(t)
	exp := mkExp(t, s, "a")
	for i := 0; i < 20; i++ {
		_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: fmt.Sprintf("tr-%02d", i), ExperimentID: exp, TimestampMs: int64(i % 7), Status: tracking.TraceStatusOK})
		ok(t, err)
	}
	want := traceOrdEntries(t, s)
	if len(want) != 20 {
		t.Fatalf("index has %d entries, want 20", len(want))
	}
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bTraceOrd); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete(metaTraceIdx)
	}))
	ok(t, s.Close())
	first := func(s *Store) []string {
		page, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 3})
		ok(t, err)
		var ids []string
		for _, tr := range page.Traces {
			ids = append(ids, tr.RequestID)
		}
		return ids
	}
	wantFirst := []string{"tr-06", "tr-13", "tr-05"}
	s2, err := Open(path, Options{})
	ok(t, err)
	ok(t, s2.buildTraceIndex(bg, 2)) // 8 of 20, then "crash"
	if got := len(traceOrdEntries(t, s2)); got != 8 {
		t.Fatalf("after two chunks: %d entries", got)
	}
	if got := first(s2); !slices.Equal(got, wantFirst) {
		t.Fatalf("search while building: %v", got)
	}
	ok(t, s2.Close())
	s3, err := Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s3.Close() })
	// A write during the build (a trace the build has not reached).
	_, err = s3.EndTrace(bg, tracking.EndTrace{RequestID: "tr-19", TimestampMs: 50, Status: tracking.TraceStatusError})
	ok(t, err)
	ok(t, s3.buildTraceIndex(bg, -1))
	checkTraceIndex(t, s3)
	if got := len(traceOrdEntries(t, s3)); got != 20 {
		t.Fatalf("rebuilt index has %d entries", got)
	}
	if got := first(s3); !slices.Equal(got, wantFirst) {
		t.Fatalf("first page %v", got)
	}
}

// TestTraceIndexGC checks that garbage-collecting an experiment drops
// its trace index entries.
func TestTraceIndexGC(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "a")
	_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: "tr-1", ExperimentID: exp, TimestampMs: 5, Status: tracking.TraceStatusOK})
	ok(t, err)
	ok(t, s.DeleteExperiment(bg, exp))
	ok(t, s.HardDeleteExperiment(bg, exp))
	id, _ := parseExpID(exp)
	for _, e := range traceOrdEntries(t, s) {
		if bytes.HasPrefix([]byte(e[0]), u64(id)) {
			t.Fatal("gc left a trace index entry")
		}
	}
}
