package pgstore

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
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
		if page > 100 {
			t.Fatal("paging does not end")
		}
		token = next
	}
}

// checkWalk asserts that a walk that had rows inserted and deleted
// between its pages shows no row twice, every row that existed
// throughout, no row deleted before its page, and the rows in the order a
// fresh search over the final state gives them (minus deleted ones,
// plus nothing inserted before the cursor).
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

func TestKeysetRunsStableUnderInsertsAndDeletes(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	scoreDesc, err := search.ParseRunOrderBy([]string{"metrics.score DESC"})
	ok(t, err)
	nameAsc, err := search.ParseRunOrderBy([]string{"attributes.run_name ASC"})
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
				return add(exp, fmt.Sprintf("new-early-%d", n), 1, f(100+float64(n)))
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openCore(t)
			exp := mkExp(t, s, "e")
			other := mkExp(t, s, "other")
			nameOf := map[string]string{}
			add := func(exp, name string, start int64, score *float64) string {
				id := mkRun(t, s, exp, name, start)
				if score != nil {
					ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: "score", Value: *score, Timestamp: 1}}}))
				}
				nameOf[id] = name
				return id
			}
			// Ties on start time and on score, NaN and missing scores:
			// the tie-breakers and MLflow's NULL ordering decide the
			// later pages.
			var before []string
			for i := 0; i < 24; i++ {
				var score *float64
				switch i % 6 {
				case 0:
					score = f(math.NaN())
				case 1:
				default:
					score = f(float64(i % 4))
				}
				e := exp
				if i%3 == 0 {
					e = other
				}
				before = append(before, add(e, fmt.Sprintf("r%02d", i), int64(100+i/3), score))
			}
			var deletedSeen, deletedUnseen, insertedBefore, insertedAfter []string
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
				last := seen[len(seen)-1]
				ok(t, s.DeleteRun(bg, last))
				deletedSeen = append(deletedSeen, last)
				for _, id := range before {
					if !slices.Contains(seen, id) && !slices.Contains(deletedUnseen, id) {
						ok(t, s.DeleteRun(bg, id))
						deletedUnseen = append(deletedUnseen, id)
						break
					}
				}
			})
			var stable []string
			for _, id := range before {
				if !slices.Contains(deletedUnseen, id) {
					stable = append(stable, id)
				}
			}
			checkWalk(t, tc.name, got, append(stable, insertedAfter...), deletedUnseen, insertedBefore)
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

func TestKeysetExperiments(t *testing.T) {
	s := openCore(t)
	clock := int64(1000)
	s.now = func() int64 { clock++; return clock }

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
		var stable []string
		for _, id := range before {
			if !slices.Contains(delUnseen, id) {
				stable = append(stable, id)
			}
		}
		checkWalk(t, "experiments", got, append(stable, late...), delUnseen, early)
	})

}

func TestKeysetTokensRefusedForOtherQueries(t *testing.T) {
	s := openCore(t)
	exp := mkExp(t, s, "e")
	for i := 0; i < 6; i++ {
		mkRun(t, s, exp, fmt.Sprintf("r%d", i), int64(i))
	}
	q := tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 2}
	p, err := s.SearchRuns(bg, q)
	ok(t, err)
	tok := p.NextPageToken
	q.PageToken = tok
	_, err = s.SearchRuns(bg, q)
	ok(t, err)
	// Another page size is the same query.
	q.MaxResults = 3
	_, err = s.SearchRuns(bg, q)
	ok(t, err)

	raw, err := base64.URLEncoding.DecodeString(tok)
	ok(t, err)
	wantBad := func(what string, q tracking.RunQuery) {
		t.Helper()
		_, err := s.SearchRuns(bg, q)
		e, isErr := tracking.AsError(err)
		if !isErr || e.Code != tracking.InvalidParameterValue || !strings.HasPrefix(e.Message, "Invalid page token") {
			t.Fatalf("%s: got %v, want INVALID_PARAMETER_VALUE Invalid page token", what, err)
		}
	}
	f, err := search.ParseRunFilter("attributes.run_name != 'x'")
	ok(t, err)
	wantBad("other filter", tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, PageToken: tok})
	ob, err := search.ParseRunOrderBy([]string{"attributes.run_name"})
	ok(t, err)
	wantBad("other order", tracking.RunQuery{ExperimentIDs: []string{exp}, OrderBy: ob, PageToken: tok})
	wantBad("other experiments", tracking.RunQuery{ExperimentIDs: []string{exp, "0"}, PageToken: tok})
	wantBad("other view type", tracking.RunQuery{ExperimentIDs: []string{exp}, ViewType: tracking.AllViews, PageToken: tok})
	// Altered position: a different start time with the old check.
	altered := strings.Replace(string(raw), `"start_time":{"n":`, `"start_time":{"n":9`, 1)
	if altered == string(raw) {
		t.Fatalf("token layout changed: %s", raw)
	}
	wantBad("altered", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: base64.StdEncoding.EncodeToString([]byte(altered))})
	wantBad("no check", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: base64.StdEncoding.EncodeToString([]byte(`{"after":{}}`))})
	// A token of another search.
	ep, err := s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 1})
	ok(t, err)
	wantBad("experiments token", tracking.RunQuery{ExperimentIDs: []string{exp}, PageToken: ep.NextPageToken})
	// MLflow's offset tokens still work (never issued).
	q = tracking.RunQuery{ExperimentIDs: []string{exp}, MaxResults: 2, PageToken: search.EncodePageToken(4)}
	ids, _ := searchIDs(t, s, q)
	if strings.Join(ids, ",") != "r1,r0" {
		t.Fatalf("offset token page %v", ids)
	}
}
