package storetest

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func testSearch(t *testing.T, f Factory) {
	t.Run("RunsPagingAndOrder", func(t *testing.T) {
		s := open(t, f)
		ea, eb := mkExp(t, s, "a"), mkExp(t, s, "b")
		// 12 runs alternating experiments; start times interleave.
		for i := 0; i < 12; i++ {
			exp := ea
			if i%2 == 1 {
				exp = eb
			}
			id := mkRun(t, s, exp, "r"+itoa(i), int64(1000+i))
			ms := []tracking.Metric{{Key: "score", Value: float64((i * 7) % 12), Timestamp: 1}}
			if i == 3 {
				ms[0].Value = math.NaN()
			}
			if i == 5 {
				ms = nil // no score at all
			}
			ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: ms, Params: []tracking.Param{{Key: "idx", Value: itoa(i)}}}))
		}
		both := []string{ea, eb}

		// Default order: start_time DESC across experiments, paged by 5.
		var all []string
		token := ""
		for pages := 0; ; pages++ {
			ids, next := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, MaxResults: 5, PageToken: token})
			all = append(all, ids...)
			if next == "" {
				if pages != 2 || len(ids) != 2 {
					t.Fatalf("pages %d last %v", pages, ids)
				}
				break
			}
			token = next
		}
		if strings.Join(all, ",") != "r11,r10,r09,r08,r07,r06,r05,r04,r03,r02,r01,r00" {
			t.Fatal(all)
		}
		// Exactly one full page: a token (as MLflow's search_runs issues for
		// every full page), and the page after it is empty, without one.
		ids, next := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 6})
		if len(ids) != 6 || next == "" {
			t.Fatal(ids, next)
		}
		if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 6, PageToken: next}); len(ids) != 0 || next != "" {
			t.Fatal(ids, next)
		}
		// Filter + order_by metric DESC: NaN after numbers, missing excluded by the filter's inner join.
		f, err := search.ParseRunFilter("metrics.score >= 0")
		ok(t, err)
		ob, err := search.ParseRunOrderBy([]string{"metrics.score DESC"})
		ok(t, err)
		ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, OrderBy: ob, MaxResults: 4})
		if strings.Join(ids, ",") != "r10,r08,r01,r06" || next == "" {
			t.Fatal(ids, next)
		}
		ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, OrderBy: ob, MaxResults: 100, PageToken: next})
		if strings.Join(ids, ",") != "r11,r04,r09,r02,r07,r00,r03" || next != "" {
			t.Fatal(ids)
		}
		// Order by metric with missing values: missing last.
		ob, _ = search.ParseRunOrderBy([]string{"metrics.score ASC"})
		ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, OrderBy: ob, MaxResults: 100})
		if len(ids) != 12 || ids[11] != "r05" || ids[10] != "r03" {
			t.Fatal(ids)
		}
		// Param filter without order_by in default order.
		f, _ = search.ParseRunFilter("params.idx LIKE '1%'")
		ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1})
		if strings.Join(ids, ",") != "r11" || next == "" {
			t.Fatal(ids, next)
		}
		ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1, PageToken: next})
		if strings.Join(ids, ",") != "r10" || next == "" {
			t.Fatal(ids, next)
		}
		if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f, MaxResults: 1, PageToken: next}); len(ids) != 0 || next != "" {
			t.Fatal(ids, next)
		}
		// Attribute filter and order by run_name.
		f, _ = search.ParseRunFilter("attributes.run_name = 'r04'")
		if ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, Filter: f}); strings.Join(ids, ",") != "r04" {
			t.Fatal(ids)
		}
		ob, _ = search.ParseRunOrderBy([]string{"attributes.run_name ASC"})
		if ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{eb}, OrderBy: ob}); strings.Join(ids, ",") != "r01,r03,r05,r07,r09,r11" {
			t.Fatal(ids)
		}
		// MLflow offset tokens (never issued, still accepted), a page
		// beyond the end, bad tokens.
		if ids, _ = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, MaxResults: 3, PageToken: search.EncodePageToken(2)}); strings.Join(ids, ",") != "r09,r08,r07" {
			t.Fatal(ids)
		}
		if ids, next = searchIDs(t, s, tracking.RunQuery{ExperimentIDs: both, PageToken: search.EncodePageToken(50)}); len(ids) != 0 || next != "" {
			t.Fatal(ids)
		}
		_, err = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: both, PageToken: "!!!"})
		wantBadToken(t, "garbage", err)
		_, err = s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: both, PageToken: search.EncodePageToken(0)})
		wantBadToken(t, "offset 0", err)
		// Search results carry data.
		p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{ea}, MaxResults: 1})
		ok(t, err)
		if len(p.Runs) != 1 || len(p.Runs[0].Data.Params) != 1 || len(p.Runs[0].Data.Metrics) != 1 || p.Runs[0].Info.ExperimentID != ea ||
			tagMap(p.Runs[0].Data.Tags)[tracking.TagRunName] != "r10" {
			t.Fatalf("%+v", p.Runs)
		}
	})

	t.Run("RunAttributes", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "attrs")
		a, b, c := mkRun(t, s, exp, "a", 10), mkRun(t, s, exp, "b", 20), mkRun(t, s, exp, "c", 30)
		fin, end := "FINISHED", int64(100)
		_, err := s.UpdateRun(bg, a, tracking.UpdateRun{Status: &fin, EndTime: &end})
		ok(t, err)
		end2 := int64(50)
		_, err = s.UpdateRun(bg, b, tracking.UpdateRun{EndTime: &end2})
		ok(t, err)
		q := func(filter string, order ...string) string {
			t.Helper()
			f, err := search.ParseRunFilter(filter)
			ok(t, err)
			ob, err := search.ParseRunOrderBy(order)
			ok(t, err)
			ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, ViewType: tracking.AllViews})
			return strings.Join(ids, ",")
		}
		for _, tc := range []struct{ got, want string }{
			{q("attributes.status = 'FINISHED'"), "a"},
			{q("attributes.status != 'FINISHED'"), "c,b"},
			{q("attributes.end_time > 60"), "a"},
			{q("attributes.user_id = 'u' AND attributes.start_time >= 20"), "c,b"},
			{q("attributes.artifact_uri LIKE '%" + c + "%'"), "c"},
			{q("", "attributes.end_time DESC"), "a,b,c"},
			{q("", "attributes.start_time ASC"), "a,b,c"},
			{q("", "attributes.run_id ASC"), strings.Join(sortedNames(map[string]string{a: "a", b: "b", c: "c"}), ",")},
			{q("", "attributes.status DESC", "attributes.user_id ASC", "attributes.start_time DESC"), "c,b,a"},
			{q("run_id IN ('" + b + "')"), "b"},
			{q("run_id NOT IN ('" + b + "')"), "c,a"},
			{q("attributes.run_name ILIKE 'B'"), "b"},
			{q("attributes.run_name LIKE 'B'"), ""},
		} {
			if tc.got != tc.want {
				t.Errorf("got %q want %q", tc.got, tc.want)
			}
		}
	})

	// MLflow's SQL store semantics (sqlalchemy_store._get_orderby_clauses
	// and _get_sqlalchemy_filter_clauses): a missing metric, param or tag
	// sorts last in both directions, a NaN metric after every number but
	// before missing ones; ties fall back to start_time DESC (unless
	// start_time is ordered on) and then run_uuid ASC. NaN is stored as 0
	// for comparisons. Strings compare by code point (a "C" collation).
	t.Run("RunSemantics", func(t *testing.T) {
		s := open(t, f)
		exp := mkExp(t, s, "sem")
		type spec struct {
			name  string
			start int64
			m     *float64
			p, tg string
		}
		num := func(v float64) *float64 { return &v }
		id := map[string]string{}
		for _, r := range []spec{
			{"r1", 10, num(1), "a", "x"},
			{"r2", 20, num(math.NaN()), "b", ""},
			{"r3", 30, nil, "", "y"},
			{"r4", 40, num(1), "a", ""},
			{"r5", 40, num(-3), "C", ""},
			{"r6", 5, num(0), "_%", "X"},
		} {
			rid := mkRun(t, s, exp, r.name, r.start)
			id[r.name] = rid
			var b tracking.Batch
			if r.m != nil {
				b.Metrics = []tracking.Metric{{Key: "m", Value: *r.m, Timestamp: 1}}
			}
			if r.p != "" {
				b.Params = []tracking.Param{{Key: "p", Value: r.p}}
			}
			if r.tg != "" {
				b.Tags = []tracking.Tag{{Key: "t", Value: r.tg}}
			}
			ok(t, s.LogBatch(bg, rid, b))
		}
		// r4 and r5 tie on start_time: run id decides.
		r45 := "r4,r5"
		if id["r5"] < id["r4"] {
			r45 = "r5,r4"
		}
		q := func(filter string, order ...string) string {
			t.Helper()
			f, err := search.ParseRunFilter(filter)
			ok(t, err)
			ob, err := search.ParseRunOrderBy(order)
			ok(t, err)
			all := allRuns(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, MaxResults: 2})
			one, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: f, OrderBy: ob, MaxResults: 100})
			if !slices.Equal(all, one) {
				t.Fatalf("%q %q: paged %v, one page %v", filter, order, all, one)
			}
			return strings.Join(all, ",")
		}
		for _, tc := range []struct{ filter, order, want string }{
			{"", "", r45 + ",r3,r2,r1,r6"},
			{"", "metrics.m ASC", "r5,r6,r4,r1,r2,r3"},
			{"", "metrics.m DESC", "r4,r1,r6,r5,r2,r3"},
			{"", "params.p ASC", "r5,r6,r4,r1,r2,r3"},
			{"", "params.p DESC", "r2,r4,r1,r6,r5,r3"},
			{"", "tags.t ASC", "r6,r1,r3," + r45 + ",r2"},
			{"", "tags.t DESC", "r3,r1,r6," + r45 + ",r2"},
			{"", "attributes.start_time ASC", "r6,r1,r2,r3," + r45},
			{"", "attributes.start_time DESC", r45 + ",r3,r2,r1,r6"},
			{"metrics.m > 0", "", "r4,r1"},
			{"metrics.m = 1", "", "r4,r1"},
			{"metrics.m = 0", "", "r2,r6"},
			{"metrics.m != 1", "", "r5,r2,r6"},
			{"metrics.m <= -3", "", "r5"},
			{"metrics.m < 5 AND metrics.m >= 0", "metrics.m DESC", "r4,r1,r6,r2"},
			{"params.p = 'a'", "", "r4,r1"},
			{"params.p != 'a'", "", "r5,r2,r6"},
			{"params.p LIKE 'a'", "", "r4,r1"},
			{"params.p LIKE 'c'", "", ""},
			{"params.p ILIKE 'c'", "", "r5"},
			{"params.p LIKE '_'", "", r45 + ",r2,r1"},
			{"params.p LIKE '%\\%'", "", ""},
			{"params.p LIKE '\\_%'", "", ""},
			{"params.p IS NULL", "", "r3"},
			{"params.p IS NOT NULL", "params.p ASC", "r5,r6,r4,r1,r2"},
			{"tags.t = 'x'", "", "r1"},
			{"tags.t ILIKE 'x'", "", "r1,r6"},
			{"tags.t != 'x'", "", "r3,r6"},
			{"tags.t IS NULL", "", r45 + ",r2"},
			{"params.p = 'a' AND tags.t = 'x'", "", "r1"},
			{"metrics.m < 0 AND params.p = 'C'", "", "r5"},
			{"metrics.missing > 0", "", ""},
		} {
			var order []string
			if tc.order != "" {
				order = []string{tc.order}
			}
			if got := q(tc.filter, order...); got != tc.want {
				t.Errorf("filter %q order %q: got %s, want %s", tc.filter, tc.order, got, tc.want)
			}
		}
		// Two order keys: the second decides ties of the first.
		if got := q("", "params.p ASC", "attributes.start_time ASC"); got != "r5,r6,r1,r4,r2,r3" {
			t.Errorf("two keys: %s", got)
		}
	})
}
