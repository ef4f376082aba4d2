package boltstore

import (
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

// lmOrdEntries returns the logged model index keys.
func lmOrdEntries(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bLMOrd).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	}))
	return out
}

// checkLMIndex fails unless the maintained index equals one rebuilt from
// the model records.
func checkLMIndex(t testing.TB, s *Store) {
	t.Helper()
	got := lmOrdEntries(t, s)
	var want []string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bLoggedModel).ForEach(func(k, _ []byte) error {
			m, err := getLoggedModelRecord(tx, string(k))
			if err != nil {
				return err
			}
			exp, _ := parseExpID(m.Info.ExperimentID)
			want = append(want, string(lmOrdKey(exp, m.Info.CreationTimestampMs, m.Info.ModelID)))
			return nil
		})
	}))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("logged model index out of date: %d entries, rebuilt %d", len(got), len(want))
	}
}

// lmOrder parses "field [ASC|DESC][@dataset]" into an order entry.
func lmOrder(spec string) search.LoggedModelOrder {
	spec, ds, _ := strings.Cut(spec, "@")
	f := strings.Fields(spec)
	o := search.LoggedModelOrder{FieldName: f[0], Ascending: len(f) < 2 || f[1] == "ASC", DatasetName: ds}
	return o
}

// searchAllLM pages through a logged model search (starting at offset)
// and returns every page's ids and tokens.
func searchAllLM(t *testing.T, s *Store, exps []string, filter string, datasets []search.DatasetRef, order []string, size, offset int) []string {
	t.Helper()
	clauses, err := search.ParseLoggedModelFilter(filter)
	ok(t, err)
	var raw []search.LoggedModelOrder
	for _, o := range order {
		raw = append(raw, lmOrder(o))
	}
	keys, err := search.ParseLoggedModelOrderBy(raw)
	ok(t, err)
	var out []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("too many pages")
		}
		page, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: exps, Filter: clauses, Datasets: datasets,
			OrderBy: keys, MaxResults: size, Offset: offset, After: after})
		ok(t, err)
		line := "page:"
		for _, m := range page.Models {
			line += fmt.Sprintf(" %s/%d/%d", m.Info.ModelID, m.Info.CreationTimestampMs, len(m.Data.Metrics))
		}
		out = append(out, line, fmt.Sprintf("more:%v token:%s", page.More, page.Next))
		if !page.More || page.Next == "" {
			return out
		}
		after = page.Next
	}
}

var lmFilters = []string{
	"",
	"creation_timestamp > 8",
	"creation_time >= 5 AND creation_timestamp < 12",
	"creation_timestamp = 7",
	"creation_timestamp <= 3.5",
	"creation_timestamp > 10 AND creation_timestamp < 5",
	"creation_timestamp > 1e19",
	"model_id LIKE 'm-a%'",
	"model_id IN ('m-a01', 'm-b02', 'm-c03')",
	"name = 'n1'",
	"name ILIKE 'N%' AND creation_timestamp > 4",
	"status = 'LOGGED_MODEL_READY'",
	"status != 'LOGGED_MODEL_READY' AND creation_time > 2",
	"model_type = 'agent'",
	"source_run_id LIKE 'r%'",
	"last_updated_timestamp > 10",
	"tags.color = 'red'",
	"tag.color != 'red'",
	"params.p LIKE 'v%'",
	"metrics.acc > 0.5",
	"metrics.acc <= 0.3 AND creation_timestamp < 15",
}

var lmOrders = [][]string{nil, {"creation_timestamp DESC"}, {"creation_time DESC"}, {"creation_timestamp ASC"},
	{"creation_time ASC"}, {"creation_timestamp_ms"}, {"name ASC"}, {"last_updated_timestamp DESC"}, {"metrics.acc DESC"},
	{"metrics.acc ASC@d1"}, {"creation_timestamp DESC", "model_id ASC"}, {"creation_timestamp ASC", "model_id DESC"}}

// TestLMIndexDifferential checks that the indexed logged model search
// answers page by page exactly as the full scan does (same models, same
// tokens, same offsets), after random writes on every logged model write
// path, and that the index stays equal to one rebuilt from the records.
func TestLMIndexDifferential(t *testing.T) {
	s, _ := openTest(t)
	rng := rand.New(rand.NewPCG(14, 2026))
	clock := int64(0)
	s.now = func() int64 { return clock }
	exps := []string{mkExp(t, s, "a"), mkExp(t, s, "b"), mkExp(t, s, "c")}
	run := mkRun(t, s, exps[0], "r", 1)
	var ids []string
	for i := 0; i < 90; i++ {
		clock = rng.Int64N(20)
		exp := exps[rng.IntN(len(exps))]
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: fmt.Sprintf("n%d", rng.IntN(3)),
			ModelType: []string{"", "agent"}[rng.IntN(2)], SourceRunID: []string{"", "r1"}[rng.IntN(2)],
			Params: []tracking.Param{{Key: "p", Value: fmt.Sprintf("v%d", rng.IntN(3))}}})
		ok(t, err)
		ids = append(ids, m.Info.ModelID)
		clock = rng.Int64N(20)
		switch rng.IntN(4) {
		case 0:
			_, err = s.FinalizeLoggedModel(bg, m.Info.ModelID, tracking.LoggedModelStatusReady)
			ok(t, err)
		case 1:
			ok(t, s.SetLoggedModelTags(bg, m.Info.ModelID, []tracking.Tag{{Key: "color", Value: []string{"red", "blue"}[rng.IntN(2)]}}))
		case 2:
			ok(t, s.LogBatch(bg, run, tracking.Batch{ModelMetrics: []tracking.ModelMetric{
				{Key: "acc", Value: rng.Float64(), Timestamp: rng.Int64N(3), ModelID: m.Info.ModelID, DatasetName: []string{"d1", "d2"}[rng.IntN(2)]},
				{Key: "acc", Value: rng.Float64(), Timestamp: rng.Int64N(3), ModelID: m.Info.ModelID},
			}}))
		}
	}
	// Deletes, and imports that move models between experiments and
	// change their creation time, or bring new ids.
	for _, i := range rng.Perm(len(ids))[:15] {
		ok(t, s.DeleteLoggedModel(bg, ids[i]))
	}
	for i := 0; i < 15; i++ {
		id := fmt.Sprintf("m-%c%02d", 'a'+rune(rng.IntN(3)), i)
		if i%3 == 0 {
			id = ids[rng.IntN(len(ids))]
		}
		m := &tracking.LoggedModel{Info: tracking.LoggedModelInfo{ModelID: id, ExperimentID: exps[rng.IntN(len(exps))],
			Name: "n1", CreationTimestampMs: rng.Int64N(20), LastUpdatedTimestampMs: 30, Status: tracking.LoggedModelStatusReady}}
		ok(t, s.ImportLoggedModel(bg, m))
	}
	checkLMIndex(t, s)

	expSets := [][]string{{exps[0]}, exps, {exps[2], exps[0]}, {"999"}}
	datasetSets := [][]search.DatasetRef{nil, {{Name: "d1"}}}
	compared := 0
	for _, es := range expSets {
		for _, f := range lmFilters {
			for oi, o := range lmOrders {
				for _, size := range []int{6, 50} {
					for _, offset := range []int{0, 3} {
						if offset > 0 && size > 6 {
							continue
						}
						ds := datasetSets[(oi+size+offset)%2]
						useLMIndex = true
						got := searchAllLM(t, s, es, f, ds, o, size, offset)
						useLMIndex = false
						want := searchAllLM(t, s, es, f, ds, o, size, offset)
						useLMIndex = true
						if !slices.Equal(got, want) {
							t.Fatalf("exps %v filter %q datasets %v order %v size %d offset %d:\nindexed %v\nscan    %v",
								es, f, ds, o, size, offset, got, want)
						}
						compared++
					}
				}
			}
		}
	}
	// Pages of one and two models cut the groups of equal creation times
	// (the page token lands inside a group) in both directions.
	for _, es := range expSets {
		for _, f := range lmFilters {
			for _, o := range [][]string{{"creation_timestamp ASC"}, {"creation_timestamp DESC"}} {
				for _, size := range []int{1, 2} {
					useLMIndex = true
					got := searchAllLM(t, s, es, f, nil, o, size, 0)
					useLMIndex = false
					want := searchAllLM(t, s, es, f, nil, o, size, 0)
					useLMIndex = true
					if !slices.Equal(got, want) {
						t.Fatalf("exps %v filter %q order %v size %d:\nindexed %v\nscan    %v", es, f, o, size, got, want)
					}
					compared++
				}
			}
		}
	}
	t.Logf("%d searches compared", compared)

	// The default order and its reverse are answered from the index: with its entries gone
	// (and the ready mark kept) the search finds nothing, while an order
	// the index cannot serve still scans.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bLMOrd); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bLMOrd)
		return err
	}))
	if got := searchAllLM(t, s, exps, "", nil, nil, 10, 0); got[0] != "page:" {
		t.Fatalf("default order did not use the index: %v", got[0])
	}
	if got := searchAllLM(t, s, exps, "", nil, []string{"creation_timestamp ASC"}, 10, 0); got[0] != "page:" {
		t.Fatalf("creation_timestamp ASC did not use the index: %v", got[0])
	}
	if got := searchAllLM(t, s, exps, "", nil, []string{"name ASC"}, 10, 0); got[0] == "page:" {
		t.Fatal("name order found nothing")
	}
}

// TestLMIndexBuiltOnOpen checks that a database without the logged model
// index (written before it) gets it built in the background after open,
// in chunks that resume where an interrupted build stopped, with searches
// scanning (and answering the same) until it is ready, and writes during
// the build kept in the index.
func TestLMIndexBuiltOnOpen(t *testing.T) {
	autoIndex, indexChunk = false, 4
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	s, path := openTest(t)
	exp := mkExp(t, s, "a")
	clock := int64(0)
	s.now = func() int64 { return clock }
	var ids []string
	for i := 0; i < 20; i++ {
		clock = int64(i % 7)
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m" + strconv.Itoa(i)})
		ok(t, err)
		ids = append(ids, m.Info.ModelID)
	}
	if n := len(lmOrdEntries(t, s)); n != 20 {
		t.Fatalf("index has %d entries, want 20", n)
	}
	first := func(s *Store) []string {
		page, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, MaxResults: 3})
		ok(t, err)
		var out []string
		for _, m := range page.Models {
			out = append(out, m.Info.Name)
		}
		return out
	}
	wantFirst := first(s)
	if len(wantFirst) != 3 || wantFirst[0] != "m6" && wantFirst[0] != "m13" {
		t.Fatalf("first page %v", wantFirst)
	}
	// Back to the layout before the index.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bLMOrd); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete(metaLMIdx)
	}))
	ok(t, s.Close())

	s2, err := Open(path, Options{})
	ok(t, err)
	ok(t, s2.buildLMIndex(bg, 2)) // 8 of 20, then "crash"
	if got := len(lmOrdEntries(t, s2)); got != 8 {
		t.Fatalf("after two chunks: %d entries", got)
	}
	if got := first(s2); !slices.Equal(got, wantFirst) {
		t.Fatalf("search while building: %v, want %v", got, wantFirst)
	}
	ok(t, s2.Close())

	s3, err := Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s3.Close() })
	// The interrupted build resumes at its recorded position.
	var pos string
	ok(t, s3.db.View(func(tx *bolt.Tx) error {
		pos = string(tx.Bucket(bMeta).Get(metaLMIdxPos))
		if pos == "" || lmIndexReady(tx) {
			t.Error("build position lost or index marked ready early")
		}
		return nil
	}))
	// Writes during the build: a delete and a create.
	ok(t, s3.DeleteLoggedModel(bg, ids[19]))
	s3.now = func() int64 { return 100 }
	m, err := s3.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "late"})
	ok(t, err)
	var stored []string
	ok(t, s3.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bLoggedModel).ForEach(func(k, _ []byte) error {
			stored = append(stored, string(k))
			return nil
		})
	}))
	at := slices.Index(stored, pos)
	if at < 0 {
		at, _ = slices.BinarySearch(stored, pos) // the position's model was deleted
		at--
	}
	ok(t, s3.buildLMIndex(bg, 1))
	ok(t, s3.db.View(func(tx *bolt.Tx) error {
		if got, want := string(tx.Bucket(bMeta).Get(metaLMIdxPos)), stored[at+4]; got != want {
			t.Errorf("resumed chunk ended at %q, want %q (4 models after %q)", got, want, pos)
		}
		return nil
	}))
	ok(t, s3.buildLMIndex(bg, -1))
	checkLMIndex(t, s3)
	ok(t, s3.db.View(func(tx *bolt.Tx) error {
		if !lmIndexReady(tx) || tx.Bucket(bMeta).Get(metaLMIdxPos) != nil {
			t.Error("index not marked ready")
		}
		return nil
	}))
	want := append([]string{"late"}, wantFirst[:2]...)
	if got := first(s3); !slices.Equal(got, want) || m.Info.Name != "late" {
		t.Fatalf("first page %v, want %v", got, want)
	}
}

// TestLMIndexGC checks that garbage-collecting an experiment drops its
// logged model index entries.
func TestLMIndexGC(t *testing.T) {
	s, _ := openTest(t)
	a, b := mkExp(t, s, "a"), mkExp(t, s, "b")
	for _, exp := range []string{a, b} {
		_, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m"})
		ok(t, err)
	}
	ok(t, s.DeleteExperiment(bg, a))
	ok(t, s.HardDeleteExperiment(bg, a))
	checkLMIndex(t, s)
	if n := len(lmOrdEntries(t, s)); n != 1 {
		t.Fatalf("%d index entries left, want 1", n)
	}
}
