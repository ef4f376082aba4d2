package boltstore

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// seedRandom writes random runs into two experiments through the public
// write paths (create, update, log batch, log param, set and delete tag,
// delete and restore, import, hard delete), concurrently so that group
// commit keeps it quick. It returns the experiment ids and the run ids.
func seedRandom(t *testing.T, s *Store, rng *rand.Rand, n int) ([]string, []string) {
	t.Helper()
	exps := []string{mkExp(t, s, "diff-a"), mkExp(t, s, "diff-b")}
	vals := []float64{-2, -1, -0.0, 0, 0.5, 1, 1, 2, 3, math.NaN(), math.Inf(1), math.Inf(-1)}
	strs := []string{"", "a", "ab", "abc", "b", "b\x00c", "B", strings.Repeat("x", ixStrMax+3) + "1", strings.Repeat("x", ixStrMax+3) + "0"}
	statuses := []string{tracking.StatusRunning, tracking.StatusFinished, tracking.StatusFailed, tracking.StatusKilled}
	type plan struct {
		exp, name, user string
		start           int64
		ops             []func(id string) error
	}
	plans := make([]plan, n)
	for i := range plans {
		p := &plans[i]
		p.exp = exps[rng.IntN(len(exps))]
		p.name = strs[rng.IntN(len(strs))]
		p.user = []string{"u", "v", "w"}[rng.IntN(3)]
		p.start = int64(rng.IntN(20)) // many ties
		for range rng.IntN(6) {
			switch rng.IntN(8) {
			case 0, 1:
				var b tracking.Batch
				for range 1 + rng.IntN(3) {
					b.Metrics = append(b.Metrics, tracking.Metric{Key: "m" + strconv.Itoa(rng.IntN(3)),
						Value: vals[rng.IntN(len(vals))], Timestamp: int64(rng.IntN(3)), Step: int64(rng.IntN(3))})
				}
				if rng.IntN(2) == 0 {
					b.Tags = append(b.Tags, tracking.Tag{Key: "t" + strconv.Itoa(rng.IntN(2)), Value: strs[rng.IntN(len(strs))]})
				}
				if rng.IntN(3) == 0 {
					b.Tags = append(b.Tags, tracking.Tag{Key: tracking.TagRunName, Value: strs[rng.IntN(len(strs))]})
				}
				if rng.IntN(3) == 0 {
					b.Tags = append(b.Tags, tracking.Tag{Key: "mlflow.user", Value: strs[rng.IntN(len(strs))]})
				}
				p.ops = append(p.ops, func(id string) error { return s.LogBatch(bg, id, b) })
			case 2:
				prm := tracking.Param{Key: "p" + strconv.Itoa(rng.IntN(2)), Value: strs[rng.IntN(len(strs))]}
				p.ops = append(p.ops, func(id string) error {
					err := s.LogParam(bg, id, prm)
					if _, ok := tracking.AsError(err); ok {
						return nil // a changed param value, or a deleted run
					}
					return err
				})
			case 3:
				st := statuses[rng.IntN(len(statuses))]
				end := int64(rng.IntN(5))
				name := strs[rng.IntN(len(strs))]
				req := tracking.UpdateRun{Status: &st}
				if rng.IntN(2) == 0 {
					req.EndTime = &end
				}
				if rng.IntN(2) == 0 {
					req.RunName = &name
				}
				p.ops = append(p.ops, func(id string) error { _, err := s.UpdateRun(bg, id, req); return err })
			case 4:
				key := "t" + strconv.Itoa(rng.IntN(2))
				p.ops = append(p.ops, func(id string) error {
					err := s.DeleteTag(bg, id, key)
					if _, ok := tracking.AsError(err); ok {
						return nil
					}
					return err
				})
			case 5:
				p.ops = append(p.ops, func(id string) error { return s.DeleteRun(bg, id) })
			case 6:
				p.ops = append(p.ops, func(id string) error { return s.RestoreRun(bg, id) })
			case 7:
				p.ops = append(p.ops, func(id string) error {
					return s.AppendModelHistory(bg, id, []byte(`{"run_id": "`+id+`"}`))
				})
			}
		}
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := &plans[i]
				r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: p.exp, UserID: p.user, RunName: p.name,
					StartTime: p.start, Tags: []tracking.Tag{{Key: "t0", Value: p.name}}})
				if err == nil {
					ids[i] = r.Info.RunID
					for _, op := range p.ops {
						if err = op(ids[i]); err != nil {
							if _, ok := tracking.AsError(err); ok {
								err = nil // e.g. logging to a deleted run
								continue
							}
							break
						}
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range plans {
		next <- i
	}
	close(next)
	wg.Wait()
	ok(t, firstErr)
	// Import (over an existing run and a new one) and hard deletion.
	for i := 0; i < 3 && i < n; i++ {
		r, err := s.GetRun(bg, ids[i])
		ok(t, err)
		r.Data.Params = append(r.Data.Params, tracking.Param{Key: "p9", Value: "imported"})
		r.Data.Metrics = append(r.Data.Metrics, tracking.Metric{Key: "m0", Value: 7, Timestamp: 9, Step: 9})
		ok(t, s.ImportRun(bg, r))
	}
	imp := &tracking.Run{Info: tracking.RunInfo{RunID: "imported-run", ExperimentID: exps[0], Status: "FINISHED",
		StartTime: 5, LifecycleStage: tracking.LifecycleActive, UserID: "u"},
		Data: tracking.RunData{Metrics: []tracking.Metric{{Key: "m1", Value: 1}}, Tags: []tracking.Tag{{Key: "t1", Value: "ab"}}}}
	ok(t, s.ImportRun(bg, imp))
	ids = append(ids, "imported-run")
	if n > 4 {
		ok(t, s.DeleteRun(bg, ids[3]))
		ok(t, s.HardDeleteRun(bg, ids[3]))
		ids = slices.Delete(ids, 3, 4)
	}
	return exps, ids
}

// randomFilter builds a random search_runs filter string.
func randomFilter(rng *rand.Rand, ids []string) string {
	nums := []string{"-1", "0", "0.5", "1", "2", "-0.0", "1e308"}
	strs := []string{"''", "'a'", "'ab'", "'b'", "'B'", "'x%'", "'a%'", "'%b%'", "'" + strings.Repeat("x", ixStrMax+3) + "1'"}
	var cs []string
	for range rng.IntN(4) {
		switch rng.IntN(9) {
		case 0, 1:
			ops := []string{"=", "!=", ">", ">=", "<", "<="}
			cs = append(cs, fmt.Sprintf("metrics.m%d %s %s", rng.IntN(3), ops[rng.IntN(len(ops))], nums[rng.IntN(len(nums))]))
		case 2, 3:
			ent := []string{"params.p0", "params.p1", "tags.t0", "tags.t1", "tags.`mlflow.runName`", "attributes.run_name",
				"tags.`mlflow.user`"}[rng.IntN(7)]
			ops := []string{"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}
			op := ops[rng.IntN(len(ops))]
			if ent == "attributes.run_name" && (op == "IS NULL" || op == "IS NOT NULL") {
				op = "="
			}
			if strings.HasPrefix(op, "IS") {
				cs = append(cs, ent+" "+op)
			} else {
				cs = append(cs, ent+" "+op+" "+strs[rng.IntN(len(strs))])
			}
		case 4:
			ops := []string{"=", "!=", "LIKE"}
			v := []string{"'RUNNING'", "'FINISHED'", "'F%'", "'u'", "'v'"}[rng.IntN(5)]
			cs = append(cs, []string{"attributes.status", "attributes.user_id"}[rng.IntN(2)]+" "+ops[rng.IntN(3)]+" "+v)
		case 5:
			ops := []string{"=", "!=", ">", ">=", "<", "<="}
			cs = append(cs, fmt.Sprintf("attributes.%s %s %d", []string{"start_time", "end_time"}[rng.IntN(2)],
				ops[rng.IntN(len(ops))], rng.IntN(20)))
		case 6:
			pick := []string{}
			for range 1 + rng.IntN(4) {
				pick = append(pick, "'"+ids[rng.IntN(len(ids))]+"'")
			}
			cs = append(cs, "attributes.run_id IN ("+strings.Join(pick, ", ")+")")
		case 7:
			cs = append(cs, "attributes.run_id = '"+ids[rng.IntN(len(ids))]+"'")
		case 8:
			cs = append(cs, fmt.Sprintf("metrics.m%d > %s", rng.IntN(3), nums[rng.IntN(len(nums))]))
		}
	}
	return strings.Join(cs, " AND ")
}

func randomOrder(rng *rand.Rand) []string {
	keys := []string{"metrics.m0", "metrics.m1", "metrics.m2", "params.p0", "tags.t0", "tags.t1", "tags.`mlflow.user`", "attributes.start_time",
		"attributes.end_time", "attributes.status", "attributes.run_name", "attributes.user_id", "attributes.run_id"}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	out := keys[:rng.IntN(3)]
	for i := range out {
		out[i] += []string{"", " ASC", " DESC"}[rng.IntN(3)]
	}
	return out
}

// pages walks every page of q and returns the run ids page by page and
// the tokens.
func pages(t *testing.T, s *Store, q tracking.RunQuery) ([][]string, []string) {
	t.Helper()
	var out [][]string
	var toks []string
	for range 1000 {
		p, err := s.SearchRuns(bg, q)
		ok(t, err)
		ids := make([]string, len(p.Runs))
		for i, r := range p.Runs {
			ids[i] = r.Info.RunID
		}
		out = append(out, ids)
		toks = append(toks, p.NextPageToken)
		if p.NextPageToken == "" {
			return out, toks
		}
		q.PageToken = p.NextPageToken
	}
	t.Fatal("paging does not end")
	return nil, nil
}

// TestIndexedSearchDifferential: random data written through every write
// path, random filter and order_by pairs, random page sizes and view
// types: the indexed plan answers every page exactly like the full scan.
func TestIndexedSearchDifferential(t *testing.T) {
	seedN := uint64(2)
	if testing.Short() {
		seedN = 1
	}
	for seed := uint64(1); seed <= seedN; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		s, _ := openTest(t)
		exps, ids := seedRandom(t, s, rng, 160)
		checkIndexExact(t, s)
		for i := 0; i < 400; i++ {
			filter, order := randomFilter(rng, ids), randomOrder(rng)
			f, err := search.ParseRunFilter(filter)
			ok(t, err)
			ob, err := search.ParseRunOrderBy(order)
			ok(t, err)
			q := tracking.RunQuery{Filter: f, OrderBy: ob, MaxResults: 1 + rng.IntN(12),
				ViewType: []tracking.ViewType{tracking.ActiveOnly, tracking.DeletedOnly, tracking.AllViews}[rng.IntN(3)]}
			switch rng.IntN(3) {
			case 0:
				q.ExperimentIDs = exps[:1]
			case 1:
				q.ExperimentIDs = exps
			case 2:
				q.ExperimentIDs = []string{exps[1], "0"}
			}
			if rng.IntN(5) == 0 {
				q.PageToken = search.EncodePageToken(1 + rng.IntN(10)) // MLflow's offset tokens
			}
			s.scanSearch = true
			wantPages, wantToks := pages(t, s, q)
			s.scanSearch = false
			// Default tuning (ordered walks succeed on this little data),
			// then tight budgets that force counting, aborted walks and
			// clause-driven plans.
			for _, tune := range [][3]int{{10000, 8, 1024}, {4, 0, 1}, {1000, 0, 0}} {
				countCap, probePerRow, probeMin = tune[0], tune[1], tune[2]
				gotPages, gotToks := pages(t, s, q)
				countCap, probePerRow, probeMin = 10000, 8, 1024
				if fmt.Sprint(gotPages) != fmt.Sprint(wantPages) || !slices.Equal(gotToks, wantToks) {
					t.Fatalf("seed %d, tuning %v, filter %q, order %q, view %v, exps %v, page size %d:\nindexed %v\nscan    %v",
						seed, tune, filter, order, q.ViewType, q.ExperimentIDs, q.MaxResults, gotPages, wantPages)
				}
			}
		}
	}
}

// ridxKeys returns the keys of the ridx bucket.
func ridxKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		entries, err := ixEntries(tx.Bucket(bRunIdx))
		for _, e := range entries {
			keys = append(keys, string(e))
		}
		return err
	}))
	return keys
}

// checkIndexExact compares the maintained indexes with indexes rebuilt
// from the data: no entry missing, none stale.
func checkIndexExact(t *testing.T, s *Store) {
	t.Helper()
	maintained := ridxKeys(t, s)
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bRunIdx); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bRunIdx); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete(metaIndexReady)
	}))
	ok(t, s.buildIndex(bg, -1))
	rebuilt := ridxKeys(t, s)
	if !slices.Equal(maintained, rebuilt) {
		for _, k := range maintained {
			if !slices.Contains(rebuilt, k) {
				t.Errorf("stale entry %q", k)
			}
		}
		for _, k := range rebuilt {
			if !slices.Contains(maintained, k) {
				t.Errorf("missing entry %q", k)
			}
		}
		t.Fatalf("maintained index (%d entries) differs from rebuilt (%d)", len(maintained), len(rebuilt))
	}
}

func TestIndexEncodingsOrder(t *testing.T) {
	strs := []string{"", "\x00", "\x00\x00", "\x00a", "a", "a\x00", "a\x00b", "ab", "b", "\xff",
		strings.Repeat("y", ixStrMax), strings.Repeat("y", ixStrMax) + "\x00", strings.Repeat("y", ixStrMax) + "z"}
	for _, a := range strs {
		for _, b := range strs {
			ea, eb := appendIxStr(nil, a), appendIxStr(nil, b)
			want := strings.Compare(a, b)
			if len(a) > ixStrMax && len(b) > ixStrMax && a[:ixStrMax] == b[:ixStrMax] {
				want = 0 // one group
			}
			if got := bytes.Compare(ea, eb); got != want {
				t.Errorf("compare(%q, %q): encoded %d, strings %d", a, b, got, want)
			}
			if got, ok := unescapeIxStr(ea); ok != (len(a) <= ixStrMax) || ok && got != a {
				t.Errorf("unescape(%q) = %q, %v", a, got, ok)
			}
			if n := ixStrLen(append(ea, 'h', 1)); n != len(ea) {
				t.Errorf("ixStrLen(%q) = %d, want %d", a, n, len(ea))
			}
		}
	}
	nums := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1), math.NaN()}
	for i := range nums {
		for j := range nums {
			got := bytes.Compare(appendIxNum(nil, nums[i]), appendIxNum(nil, nums[j]))
			if want := cmpInt(i, j); got != want {
				t.Errorf("compare(%v, %v) = %d", nums[i], nums[j], got)
			}
		}
	}
	if !bytes.Equal(appendIxNum(nil, math.Copysign(0, -1)), appendIxNum(nil, 0)) {
		t.Error("-0 and 0 encode differently")
	}
	for _, id := range []string{"0123456789abcdef0123456789abcdef", "imported-run", "0123456789ABCDEF0123456789ABCDEF", ""} {
		if got, ok := readIxRun(appendIxRun(nil, id)); !ok || got != id {
			t.Errorf("run ref %q round-trips to %q", id, got)
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestIndexBuildOnOpen: a database without the indexes (a version-2 file:
// no ridx bucket) answers searches by scanning, is indexed by a build
// that resumes where an interrupted one stopped, and ends with exactly
// the indexes the write paths maintain; writes during the build are
// indexed too.
func TestIndexBuildOnOpen(t *testing.T) {
	s, path := openTest(t)
	rng := rand.New(rand.NewPCG(7, 7))
	exps, _ := seedRandom(t, s, rng, 50)
	want := ridxKeys(t, s)
	f, err := search.ParseRunFilter("metrics.m0 >= 0")
	ok(t, err)
	ob, err := search.ParseRunOrderBy([]string{"metrics.m0 DESC"})
	ok(t, err)
	q := tracking.RunQuery{ExperimentIDs: exps, Filter: f, OrderBy: ob, MaxResults: 7, ViewType: tracking.AllViews}
	wantPages, _ := pages(t, s, q)
	ok(t, s.Close())

	// Make it a version-2 database.
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bRunIdx); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("version"), u64(2))
	}))
	ok(t, db.Close())

	// Interrupted build: one chunk of 10 runs, then close.
	autoIndex, indexChunk = false, 10
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	s, err = Open(path, Options{})
	ok(t, err)
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if indexReady(tx) {
			t.Error("indexes ready before any build")
		}
		if v := tx.Bucket(bMeta).Get([]byte("version")); u64be(v) != schemaVersion {
			t.Errorf("version %x", v)
		}
		return nil
	}))
	if got, _ := pages(t, s, q); fmt.Sprint(got) != fmt.Sprint(wantPages) {
		t.Errorf("unindexed search: %v, want %v", got, wantPages)
	}
	ok(t, s.buildIndex(bg, 1))
	var pos []byte
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		pos = bytes.Clone(tx.Bucket(bMeta).Get(metaIndexPos))
		if indexReady(tx) {
			t.Error("indexes ready after one chunk")
		}
		return nil
	}))
	if pos == nil {
		t.Fatal("no build position recorded")
	}
	if got, _ := pages(t, s, q); fmt.Sprint(got) != fmt.Sprint(wantPages) {
		t.Errorf("half-indexed search: %v, want %v", got, wantPages)
	}
	ok(t, s.Close())

	// Reopen: the build resumes after pos (in the background) and logs.
	autoIndex = true
	s, err = Open(path, Options{})
	ok(t, err)
	<-s.buildDone
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if !indexReady(tx) {
			t.Error("indexes not ready after the build")
		}
		if tx.Bucket(bMeta).Get(metaIndexPos) != nil {
			t.Error("build position left behind")
		}
		return nil
	}))
	if got := ridxKeys(t, s); !slices.Equal(got, want) {
		t.Errorf("built index has %d entries, maintained had %d", len(got), len(want))
	}
	if got, _ := pages(t, s, q); fmt.Sprint(got) != fmt.Sprint(wantPages) {
		t.Errorf("indexed search: %v, want %v", got, wantPages)
	}
}

// TestIndexBuildResumesAndLogs: the build logs its start and its end to
// the store's logger, and a chunk written by an earlier, interrupted
// build is not redone from scratch (the position is honoured).
func TestIndexBuildResumesAndLogs(t *testing.T) {
	s, path := openTest(t)
	rng := rand.New(rand.NewPCG(8, 8))
	seedRandom(t, s, rng, 30)
	ok(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bRunIdx) }))
	ok(t, db.Close())

	autoIndex, indexChunk = false, 4
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	core, logs := observer.New(zap.InfoLevel)
	s, err = Open(path, Options{Logger: zap.New(core)})
	ok(t, err)
	defer s.Close()
	ok(t, s.buildIndex(bg, 2))
	// Forget the entries of the chunks done so far: a resumed build that
	// restarted from the first run would bring them back.
	var first []string
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		entries, err := ixEntries(tx.Bucket(bRunIdx))
		for _, e := range entries {
			first = append(first, string(e))
			if err := ixRemove(tx.Bucket(bRunIdx), e); err != nil {
				return err
			}
		}
		return err
	}))
	if len(first) == 0 {
		t.Fatal("the first chunks indexed nothing")
	}
	ok(t, s.buildIndex(bg, -1))
	for _, k := range ridxKeys(t, s) {
		if slices.Contains(first, k) {
			t.Fatalf("resumed build re-indexed %q from the start", k)
		}
	}
	if logs.FilterMessageSnippet("indexing runs").Len() < 2 || logs.FilterMessageSnippet("run indexes ready").Len() != 1 {
		t.Errorf("log lines: %v", logs.All())
	}
}

// TestUnindexedSystemTags: the system tags every client sets get no index
// entries (one index page less per create-run commit), and searches on
// them still answer.
func TestUnindexedSystemTags(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "sys")
	r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "u", RunName: "r", StartTime: 1,
		Tags: []tracking.Tag{{Key: "mlflow.user", Value: "alice"}, {Key: "mlflow.source.name", Value: "train.py"}}})
	ok(t, err)
	for _, k := range ridxKeys(t, s) {
		if strings.Contains(k, "mlflow.user") || strings.Contains(k, "mlflow.source.name") {
			t.Errorf("system tag indexed: %q", k)
		}
	}
	f, err := search.ParseRunFilter("tags.`mlflow.user` = 'alice'")
	ok(t, err)
	ob, err := search.ParseRunOrderBy([]string{"tags.`mlflow.source.name` DESC"})
	ok(t, err)
	p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, MaxResults: 10})
	ok(t, err)
	if len(p.Runs) != 1 || p.Runs[0].Info.RunID != r.Info.RunID {
		t.Fatalf("search on a system tag: %+v", p.Runs)
	}
}
