package storetest

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// pager fetches one page given a token and returns its row ids and the
// next token.
type pager func(token string) ([]string, string)

// walkPages pages through a search, calling between(page number, ids
// seen so far) before every fetch after the first, and returns every id in
// the order the pages gave them.
func walkPages(t *testing.T, fetch pager, between func(page int, seen []string)) []string {
	t.Helper()
	var seen []string
	token := ""
	for page := 0; ; page++ {
		if page > 0 {
			between(page, seen)
		}
		ids, next := fetch(token)
		seen = append(seen, ids...)
		if next == "" {
			return seen
		}
		if page > 1000 {
			t.Fatal("paging does not end")
		}
		token = next
	}
}

// checkWalk asserts that a walk that had rows inserted and deleted
// between its pages shows no row twice, every row of stable, and none of
// deletedUnseen (deleted before their page) or insertedBefore (inserted
// before the cursor).
func checkWalk(t *testing.T, what string, got, stable, deletedUnseen, insertedBefore []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s: %s shown twice: %v", what, id, got)
		}
		seen[id] = true
	}
	for _, id := range stable {
		if !seen[id] {
			t.Fatalf("%s: %s skipped: %v", what, id, got)
		}
	}
	for _, id := range append(slices.Clone(deletedUnseen), insertedBefore...) {
		if seen[id] {
			t.Fatalf("%s: %s shown, want not: %v", what, id, got)
		}
	}
}

func without(all, drop []string) []string {
	var out []string
	for _, id := range all {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

func testKeyset(t *testing.T, f Factory) {
	t.Run("RunsInsertsDeletesBetweenPages", func(t *testing.T) { keysetRuns(t, f) })
	t.Run("OthersInsertsDeletesBetweenPages", func(t *testing.T) { keysetOthers(t, f) })
	t.Run("ConcurrentInserts", func(t *testing.T) { keysetConcurrent(t, f) })
	t.Run("TokensRefusedForOtherQueries", func(t *testing.T) { keysetRefused(t, f) })
}

func keysetRuns(t *testing.T, f Factory) {
	fl := func(v float64) *float64 { return &v }
	scoreDesc, err := search.ParseRunOrderBy([]string{"metrics.score DESC"})
	ok(t, err)
	nameAsc, err := search.ParseRunOrderBy([]string{"attributes.run_name ASC"})
	ok(t, err)
	paramAsc, err := search.ParseRunOrderBy([]string{"params.p ASC"})
	ok(t, err)
	type adder func(exp, name string, start int64, score *float64) string
	for _, tc := range []struct {
		name  string
		order []search.OrderKey
		// early sorts before every cursor, late after every one so far.
		early, late func(add adder, exp, other string, n int) string
	}{
		{"default order", nil,
			func(add adder, exp, other string, n int) string {
				return add(exp, fmt.Sprintf("new-early-%d", n), 1000+int64(n), nil)
			},
			func(add adder, exp, other string, n int) string {
				return add(other, fmt.Sprintf("new-late-%d", n), -int64(n), nil)
			}},
		{"metric order", scoreDesc,
			func(add adder, exp, other string, n int) string {
				return add(exp, fmt.Sprintf("new-early-%d", n), 1, fl(100+float64(n)))
			},
			func(add adder, exp, other string, n int) string {
				// missing sorts last; then start_time DESC
				return add(other, fmt.Sprintf("new-late-%d", n), -int64(n), nil)
			}},
		{"name order", nameAsc,
			func(add adder, exp, other string, n int) string {
				return add(exp, fmt.Sprintf("a-early-%d", n), 1, nil)
			},
			func(add adder, exp, other string, n int) string { return add(exp, fmt.Sprintf("z-late-%d", n), 1, nil) }},
		{"param order", paramAsc,
			func(add adder, exp, other string, n int) string {
				return add(exp, fmt.Sprintf("p-early-%d", n), 1, fl(-1)) // param "!"
			},
			func(add adder, exp, other string, n int) string {
				return add(exp, fmt.Sprintf("p-late-%d", n), -int64(n), nil) // no param: last
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, f)
			exp := mkExp(t, s, "e")
			other := mkExp(t, s, "other")
			nameOf := map[string]string{}
			add := func(exp, name string, start int64, score *float64) string {
				id := mkRun(t, s, exp, name, start)
				if score != nil {
					b := tracking.Batch{Metrics: []tracking.Metric{{Key: "score", Value: *score, Timestamp: 1}}}
					switch {
					case *score < 0:
						b.Params = []tracking.Param{{Key: "p", Value: "!"}}
					case !math.IsNaN(*score):
						b.Params = []tracking.Param{{Key: "p", Value: fmt.Sprintf("v%d", int(*score)%3)}}
					}
					ok(t, s.LogBatch(bg, id, b))
				}
				nameOf[id] = name
				return id
			}
			// Ties on start time, score and param, NaN and missing
			// scores: the tie-breakers and MLflow's NULL ordering decide
			// the later pages.
			var before []string
			for i := 0; i < 24; i++ {
				var score *float64
				switch i % 6 {
				case 0:
					score = fl(math.NaN())
				case 1:
				default:
					score = fl(float64(i % 4))
				}
				e := exp
				if i%3 == 0 {
					e = other
				}
				before = append(before, add(e, fmt.Sprintf("r%02d", i), int64(100+i/3), score))
			}
			var deletedUnseen, insertedBefore, insertedAfter []string
			fetch := func(token string) ([]string, string) {
				p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp, other}, OrderBy: tc.order, MaxResults: 5, PageToken: token})
				ok(t, err)
				var ids []string
				for _, r := range p.Runs {
					ids = append(ids, r.Info.RunID)
				}
				return ids, p.NextPageToken
			}
			got := walkPages(t, fetch, func(page int, seen []string) {
				insertedBefore = append(insertedBefore, tc.early(add, exp, other, page))
				insertedAfter = append(insertedAfter, tc.late(add, exp, other, page))
				// Delete the cursor's own row, and one not shown yet.
				ok(t, s.DeleteRun(bg, seen[len(seen)-1]))
				for _, id := range before {
					if !slices.Contains(seen, id) && !slices.Contains(deletedUnseen, id) {
						ok(t, s.DeleteRun(bg, id))
						deletedUnseen = append(deletedUnseen, id)
						break
					}
				}
			})
			checkWalk(t, tc.name, got, append(without(before, deletedUnseen), insertedAfter...), deletedUnseen, insertedBefore)
			// The walk is in the comparator's order.
			full, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp, other}, OrderBy: tc.order,
				ViewType: tracking.AllViews, MaxResults: 1000})
			ok(t, err)
			var order []string
			for _, r := range full.Runs {
				if slices.Contains(got, r.Info.RunID) {
					order = append(order, r.Info.RunID)
				}
			}
			if !slices.Equal(order, got) {
				t.Fatalf("walk order %v, search order %v", names(nameOf, got), names(nameOf, order))
			}
		})
	}
}

func names(nameOf map[string]string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = nameOf[id]
	}
	return out
}

func keysetOthers(t *testing.T, f Factory) {
	s := open(t, f)

	t.Run("experiments", func(t *testing.T) {
		var before []string
		for i := 0; i < 12; i++ {
			before = append(before, mkExp(t, s, fmt.Sprintf("x%02d", i)))
		}
		before = append(before, "0") // Default
		ob, err := search.ParseExperimentOrderBy([]string{"name DESC"})
		ok(t, err)
		var delSeen, delUnseen, early, late []string
		got := walkPages(t, func(token string) ([]string, string) {
			p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{OrderBy: ob, MaxResults: 4, PageToken: token})
			ok(t, err)
			var ids []string
			for _, e := range p.Experiments {
				ids = append(ids, e.ExperimentID)
			}
			return ids, p.NextPageToken
		}, func(page int, seen []string) {
			early = append(early, mkExp(t, s, fmt.Sprintf("z-early-%d", page)))
			late = append(late, mkExp(t, s, fmt.Sprintf("A-late-%d", 9-page)))
			ok(t, s.DeleteExperiment(bg, seen[len(delSeen)]))
			delSeen = append(delSeen, seen[len(delSeen)])
			for _, id := range before {
				if id != "0" && !slices.Contains(seen, id) && !slices.Contains(delUnseen, id) {
					ok(t, s.DeleteExperiment(bg, id))
					delUnseen = append(delUnseen, id)
					break
				}
			}
		})
		checkWalk(t, "experiments", got, append(without(before, delUnseen), late...), delUnseen, early)
	})

	t.Run("registered models and versions", func(t *testing.T) {
		var before []string
		for i := 0; i < 10; i++ {
			n := fmt.Sprintf("m%02d", i)
			mkModel(t, s, n)
			before = append(before, n)
		}
		var delSeen, delUnseen, early, late []string
		got := walkPages(t, func(token string) ([]string, string) {
			p, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{MaxResults: 3, PageToken: token})
			ok(t, err)
			var ids []string
			for _, m := range p.Models {
				ids = append(ids, m.Name)
			}
			return ids, p.NextPageToken
		}, func(page int, seen []string) {
			for _, n := range []string{fmt.Sprintf("a-early-%d", page), fmt.Sprintf("z-late-%d", page)} {
				mkModel(t, s, n)
			}
			early, late = append(early, fmt.Sprintf("a-early-%d", page)), append(late, fmt.Sprintf("z-late-%d", page))
			ok(t, s.DeleteRegisteredModel(bg, seen[len(delSeen)]))
			delSeen = append(delSeen, seen[len(delSeen)])
			for _, n := range before {
				if !slices.Contains(seen, n) && !slices.Contains(delUnseen, n) {
					ok(t, s.DeleteRegisteredModel(bg, n))
					delUnseen = append(delUnseen, n)
					break
				}
			}
		})
		checkWalk(t, "registered models", got, append(without(before, delUnseen), late...), delUnseen, early)

		// Versions in the default order (last update newest first): a new
		// version sorts before the cursor and must not appear.
		mkModel(t, s, "v")
		for i := 0; i < 9; i++ {
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "v", Source: "s"})
			ok(t, err)
		}
		var beforeV, deleted []string
		for i := 1; i <= 9; i++ {
			beforeV = append(beforeV, fmt.Sprintf("v/%d", i))
		}
		delVersion := func(id string) {
			var n int64
			_, err := fmt.Sscanf(id, "v/%d", &n)
			ok(t, err)
			ok(t, s.DeleteModelVersion(bg, "v", n))
		}
		early = nil
		got = walkPages(t, func(token string) ([]string, string) {
			p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{MaxResults: 2, PageToken: token})
			ok(t, err)
			var ids []string
			for _, mv := range p.Versions {
				ids = append(ids, mv.Name+"/"+mv.Version)
			}
			return ids, p.NextPageToken
		}, func(page int, seen []string) {
			Tick()
			mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "v", Source: "s"})
			ok(t, err)
			early = append(early, "v/"+mv.Version)
			// Delete the cursor's own row, and one not shown yet.
			if last := seen[len(seen)-1]; !slices.Contains(deleted, last) {
				delVersion(last)
			}
			for _, id := range beforeV {
				if !slices.Contains(seen, id) && !slices.Contains(deleted, id) {
					delVersion(id)
					deleted = append(deleted, id)
					break
				}
			}
		})
		checkWalk(t, "model versions", got, without(beforeV, deleted), deleted, early)
	})

	t.Run("traces", func(t *testing.T) {
		exp := mkExp(t, s, "traces")
		var before []string
		for i := 0; i < 10; i++ {
			id := fmt.Sprintf("tr-%02d", i)
			_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: int64(100 + i/2),
				Status: tracking.TraceStatusOK})
			ok(t, err)
			before = append(before, id)
		}
		var delUnseen, early, late []string
		got := walkPages(t, func(token string) ([]string, string) {
			p, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 3, PageToken: token})
			ok(t, err)
			var ids []string
			for _, tr := range p.Traces {
				ids = append(ids, tr.RequestID)
			}
			return ids, p.NextPageToken
		}, func(page int, seen []string) {
			for _, tr := range []struct {
				id string
				ts int64
			}{{fmt.Sprintf("tr-early-%d", page), 1000}, {fmt.Sprintf("tr-late-%d", page), 1}} {
				_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: tr.id, ExperimentID: exp, TimestampMs: tr.ts, Status: tracking.TraceStatusOK})
				ok(t, err)
			}
			early, late = append(early, fmt.Sprintf("tr-early-%d", page)), append(late, fmt.Sprintf("tr-late-%d", page))
			victims := []string{seen[0]}
			for _, id := range before {
				if !slices.Contains(seen, id) && !slices.Contains(delUnseen, id) {
					victims = append(victims, id)
					delUnseen = append(delUnseen, id)
					break
				}
			}
			_, err := s.DeleteTraces(bg, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: victims})
			ok(t, err)
		})
		checkWalk(t, "traces", got, append(without(before, delUnseen), late...), delUnseen, early)
	})

	t.Run("logged models", func(t *testing.T) {
		exp := mkExp(t, s, "models")
		var before []string
		for i := 0; i < 10; i++ {
			m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: fmt.Sprintf("lm%02d", i)})
			ok(t, err)
			before = append(before, m.Info.ModelID)
		}
		var delUnseen, early []string
		got := walkPages(t, func(token string) ([]string, string) {
			p, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, MaxResults: 3, After: token})
			ok(t, err)
			var ids []string
			for _, m := range p.Models {
				ids = append(ids, m.Info.ModelID)
			}
			if p.More != (p.Next != "") {
				t.Fatalf("More %v with Next %q", p.More, p.Next)
			}
			return ids, p.Next
		}, func(page int, seen []string) {
			Tick()
			m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "newest"})
			ok(t, err)
			early = append(early, m.Info.ModelID)
			ok(t, s.DeleteLoggedModel(bg, seen[len(seen)-1])) // the cursor's own row
			for _, id := range before {
				if !slices.Contains(seen, id) && !slices.Contains(delUnseen, id) {
					ok(t, s.DeleteLoggedModel(bg, id))
					delUnseen = append(delUnseen, id)
					break
				}
			}
		})
		checkWalk(t, "logged models", got, without(before, delUnseen), delUnseen, early)
	})
}

// keysetKind is one search whose pages are walked while another goroutine
// (on another replica where there is one) inserts rows that sort before
// every cursor (early) and after (late).
type keysetKind struct {
	name string
	// setup creates the rows present before the walk and returns their ids.
	setup func(t *testing.T, s tracking.Store) []string
	// insert creates the n-th row on s, sorting before every row of
	// setup when early, after them otherwise, and returns its id.
	insert func(s tracking.Store, n int, early bool) (string, error)
	// fetch returns a page of ids and the next token; order the ids of
	// a fresh search over everything.
	fetch func(t *testing.T, s tracking.Store, token string) ([]string, string)
	order func(t *testing.T, s tracking.Store) []string
}

func keysetConcurrent(t *testing.T, f Factory) {
	var exp string
	kinds := []keysetKind{
		{name: "runs",
			setup: func(t *testing.T, s tracking.Store) []string {
				exp = mkExp(t, s, "e")
				var ids []string
				for i := 0; i < 20; i++ {
					ids = append(ids, mkRun(t, s, exp, fmt.Sprintf("r%02d", i), int64(1000+i/2)))
				}
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				start := int64(-n)
				if early {
					start = 1_000_000 + int64(n)
				}
				r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, RunName: fmt.Sprintf("new-%d", n), StartTime: start})
				if err != nil {
					return "", err
				}
				return r.Info.RunID, nil
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 3, PageToken: token})
				ok(t, err)
				var ids []string
				for _, r := range p.Runs {
					ids = append(ids, r.Info.RunID)
				}
				return ids, p.NextPageToken
			},
			order: func(t *testing.T, s tracking.Store) []string {
				p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 10000})
				ok(t, err)
				var ids []string
				for _, r := range p.Runs {
					ids = append(ids, r.Info.RunID)
				}
				return ids
			}},
		{name: "experiments",
			setup: func(t *testing.T, s tracking.Store) []string {
				var ids []string
				for i := 0; i < 20; i++ {
					ids = append(ids, mkExp(t, s, fmt.Sprintf("m%02d", i)))
				}
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				name := fmt.Sprintf("z-late-%04d", n)
				if early {
					name = fmt.Sprintf("A-early-%04d", n)
				}
				return s.CreateExperiment(bg, tracking.CreateExperiment{Name: name, DefaultArtifactRoot: root})
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				return experimentPage(t, s, token, 3)
			},
			order: func(t *testing.T, s tracking.Store) []string {
				ids, _ := experimentPage(t, s, "", 100000)
				return ids
			}},
		{name: "registered models",
			setup: func(t *testing.T, s tracking.Store) []string {
				var ids []string
				for i := 0; i < 20; i++ {
					n := fmt.Sprintf("m%02d", i)
					mkModel(t, s, n)
					ids = append(ids, n)
				}
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				name := fmt.Sprintf("z-late-%04d", n)
				if early {
					name = fmt.Sprintf("A-early-%04d", n)
				}
				_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: name})
				return name, err
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				p, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{MaxResults: 3, PageToken: token})
				ok(t, err)
				var ids []string
				for _, m := range p.Models {
					ids = append(ids, m.Name)
				}
				return ids, p.NextPageToken
			},
			order: func(t *testing.T, s tracking.Store) []string {
				p, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{MaxResults: 100000})
				ok(t, err)
				var ids []string
				for _, m := range p.Models {
					ids = append(ids, m.Name)
				}
				return ids
			}},
		{name: "model versions",
			setup: func(t *testing.T, s tracking.Store) []string {
				mkModel(t, s, "v")
				var ids []string
				for i := 0; i < 20; i++ {
					mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "v", Source: "s"})
					ok(t, err)
					ids = append(ids, "v/"+mv.Version)
				}
				Tick()
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				// Default order: last_updated_timestamp DESC, so a new
				// version is always early.
				mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "v", Source: "s"})
				if err != nil {
					return "", err
				}
				return "v/" + mv.Version, nil
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				return versionPage(t, s, token, 3)
			},
			order: func(t *testing.T, s tracking.Store) []string {
				ids, _ := versionPage(t, s, "", 100000)
				return ids
			}},
		{name: "logged models",
			setup: func(t *testing.T, s tracking.Store) []string {
				exp = mkExp(t, s, "lm")
				var ids []string
				for i := 0; i < 20; i++ {
					m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: fmt.Sprintf("lm%02d", i)})
					ok(t, err)
					ids = append(ids, m.Info.ModelID)
				}
				Tick()
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				// Newest first: a new model is always early.
				m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: fmt.Sprintf("new-%d", n)})
				if err != nil {
					return "", err
				}
				return m.Info.ModelID, nil
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				p, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, MaxResults: 3, After: token})
				ok(t, err)
				var ids []string
				for _, m := range p.Models {
					ids = append(ids, m.Info.ModelID)
				}
				return ids, p.Next
			},
			order: func(t *testing.T, s tracking.Store) []string {
				p, err := s.SearchLoggedModels(bg, tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, MaxResults: 100000})
				ok(t, err)
				var ids []string
				for _, m := range p.Models {
					ids = append(ids, m.Info.ModelID)
				}
				return ids
			}},
		{name: "traces",
			setup: func(t *testing.T, s tracking.Store) []string {
				exp = mkExp(t, s, "tr")
				var ids []string
				for i := 0; i < 20; i++ {
					id := fmt.Sprintf("tr-%02d", i)
					_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: int64(1000 + i/2),
						Status: tracking.TraceStatusOK})
					ok(t, err)
					ids = append(ids, id)
				}
				return ids
			},
			insert: func(s tracking.Store, n int, early bool) (string, error) {
				id, ts := fmt.Sprintf("tr-late-%04d", n), int64(1)
				if early {
					id, ts = fmt.Sprintf("tr-early-%04d", n), 1_000_000
				}
				_, err := s.StartTraceV3(bg, &tracking.TraceInfo{RequestID: id, ExperimentID: exp, TimestampMs: ts, Status: tracking.TraceStatusOK})
				return id, err
			},
			fetch: func(t *testing.T, s tracking.Store, token string) ([]string, string) {
				p, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 3, PageToken: token})
				ok(t, err)
				var ids []string
				for _, tr := range p.Traces {
					ids = append(ids, tr.RequestID)
				}
				return ids, p.NextPageToken
			},
			order: func(t *testing.T, s tracking.Store) []string {
				p, err := s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, MaxResults: 100000})
				ok(t, err)
				var ids []string
				for _, tr := range p.Traces {
					ids = append(ids, tr.RequestID)
				}
				return ids
			}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := open(t, f)
			hs := handles(t, f, s)
			writer, reader := hs[0], hs[len(hs)-1]
			before := k.setup(t, s)
			// The first page, then a writer inserting without pause
			// while the rest is paged (on the other replica if any). The
			// writer stops after concurrentInserts rows: unbounded, a
			// writer faster than the reader would add pages behind the
			// cursor forever on a busy machine, which says nothing about
			// the tokens.
			ids, token := k.fetch(t, reader, "")
			got := slices.Clone(ids)
			var (
				mu          sync.Mutex
				early, late []string
				wg          sync.WaitGroup
				insertErr   error
				stop        = make(chan struct{})
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < concurrentInserts; n++ {
					select {
					case <-stop:
						return
					default:
					}
					id, err := k.insert(writer, n, n%2 == 0)
					if err != nil {
						insertErr = err
						return
					}
					mu.Lock()
					if n%2 == 0 {
						early = append(early, id)
					} else {
						late = append(late, id)
					}
					mu.Unlock()
				}
			}()
			for pages := 0; token != ""; pages++ {
				if pages > 1000 {
					close(stop)
					wg.Wait()
					t.Fatal("paging does not end")
				}
				ids, token = k.fetch(t, reader, token)
				got = append(got, ids...)
				if pages == 2 {
					// Let inserts land between pages for certain.
					mu.Lock()
					n := len(early) + len(late)
					mu.Unlock()
					for i := 0; n < 4 && i < 2000; i++ {
						Tick()
						mu.Lock()
						n = len(early) + len(late)
						mu.Unlock()
					}
				}
			}
			close(stop)
			wg.Wait()
			ok(t, insertErr)
			if len(early)+len(late) == 0 {
				t.Fatal("no rows were inserted during the walk")
			}
			checkWalk(t, k.name, got, before, nil, early)
			// The walk is in the order of a fresh search.
			var order []string
			for _, id := range k.order(t, s) {
				if slices.Contains(got, id) {
					order = append(order, id)
				}
			}
			if !slices.Equal(order, got) {
				t.Fatalf("walk order %v, search order %v", got, order)
			}
		})
	}
}

// concurrentInserts bounds the rows the writer of ConcurrentInserts adds
// while the reader pages.
const concurrentInserts = 60

func experimentPage(t *testing.T, s tracking.Store, token string, max int) ([]string, string) {
	t.Helper()
	ob, err := search.ParseExperimentOrderBy([]string{"name ASC"})
	ok(t, err)
	p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{OrderBy: ob, MaxResults: max, PageToken: token})
	ok(t, err)
	var ids []string
	for _, e := range p.Experiments {
		ids = append(ids, e.ExperimentID)
	}
	return ids, p.NextPageToken
}

func versionPage(t *testing.T, s tracking.Store, token string, max int) ([]string, string) {
	t.Helper()
	p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{MaxResults: max, PageToken: token})
	ok(t, err)
	var ids []string
	for _, mv := range p.Versions {
		ids = append(ids, mv.Name+"/"+mv.Version)
	}
	return ids, p.NextPageToken
}

func keysetRefused(t *testing.T, f Factory) {
	s := open(t, f)
	exp := mkExp(t, s, "e")
	for i := 0; i < 6; i++ {
		mkRun(t, s, exp, fmt.Sprintf("r%d", i), int64(i))
	}
	q := tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 2}
	p, err := s.SearchRuns(bg, q)
	ok(t, err)
	tok := p.NextPageToken
	if strings.ContainsAny(tok, "+/") {
		t.Fatalf("token %q needs escaping in a query string", tok)
	}
	q.PageToken = tok
	_, err = s.SearchRuns(bg, q)
	ok(t, err)
	// Another page size is the same query.
	q.MaxResults = 3
	_, err = s.SearchRuns(bg, q)
	ok(t, err)

	wantBad := func(what string, q tracking.RunQuery) {
		t.Helper()
		_, err := s.SearchRuns(bg, q)
		wantBadToken(t, what, err)
	}
	f2, err := search.ParseRunFilter("attributes.run_name != 'x'")
	ok(t, err)
	wantBad("other filter", tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f2, PageToken: tok})
	ob, err := search.ParseRunOrderBy([]string{"attributes.run_name"})
	ok(t, err)
	wantBad("other order", tracking.RunQuery{ExperimentIDs: []string{exp}, OrderBy: ob, PageToken: tok})
	wantBad("other experiments", tracking.RunQuery{ExperimentIDs: []string{exp, "0"}, PageToken: tok})
	wantBad("other view type", tracking.RunQuery{ExperimentIDs: []string{exp}, ViewType: tracking.AllViews, PageToken: tok})
	// Altered position: a different start time with the old check (the
	// token layout of tracking/search's keyset tokens).
	raw, err := base64.URLEncoding.DecodeString(tok)
	ok(t, err)
	altered := strings.Replace(string(raw), `"start_time":{"n":`, `"start_time":{"n":9`, 1)
	if altered == string(raw) {
		t.Fatalf("token is not a tracking/search keyset token: %s", raw)
	}
	wantBad("altered", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: base64.StdEncoding.EncodeToString([]byte(altered))})
	wantBad("no check", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: base64.StdEncoding.EncodeToString([]byte(`{"after":{}}`))})
	// A token of another search.
	ep, err := s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 1})
	ok(t, err)
	wantBad("experiments token", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: ep.NextPageToken})
	_, err = s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{PageToken: tok})
	wantBadToken(t, "runs token in a registry search", err)
	_, err = s.SearchModelVersions(bg, tracking.ModelVersionQuery{PageToken: tok})
	wantBadToken(t, "runs token in a model version search", err)
	_, err = s.SearchTraces(bg, tracking.TraceQuery{ExperimentIDs: []string{exp}, PageToken: tok})
	wantBadToken(t, "runs token in a trace search", err)
	_, err = s.SearchExperiments(bg, tracking.ExperimentQuery{PageToken: tok})
	wantBadToken(t, "runs token in an experiment search", err)
	// MLflow's offset tokens still work (never issued).
	q = tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 2, PageToken: search.EncodePageToken(4)}
	ids, _ := searchIDs(t, s, q)
	if strings.Join(ids, ",") != "r1,r0" {
		t.Fatalf("offset token page %v", ids)
	}
}
