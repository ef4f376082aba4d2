package boltstore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// TestNameSearchDifferential: experiments, registered models and model
// versions found through the name-keyed buckets (name = / LIKE 'prefix%')
// page exactly like the scan of every entity.
func TestNameSearchDifferential(t *testing.T) {
	s, _ := openTest(t)
	rng := rand.New(rand.NewPCG(3, 3))
	names := []string{"a", "ab", "abc", "a%b", "b", "B", "ba", "é", "éa", "a_b", "zz"}
	for i, n := range names {
		id := mkExp(t, s, n)
		if i%3 == 0 {
			ok(t, s.DeleteExperiment(bg, id))
		}
		_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: n})
		ok(t, err)
		for range 1 + rng.IntN(3) {
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: n, Source: "s3://b/" + n})
			ok(t, err)
		}
	}
	lits := []string{"'a'", "'ab'", "'a%'", "'ab%'", "'a_%'", "'%b'", "'é%'", "'B'", "'zz'", "'nope'", "''"}
	ops := []string{"=", "LIKE", "ILIKE", "!="}
	for i := 0; i < 300; i++ {
		filter := fmt.Sprintf("name %s %s", ops[rng.IntN(len(ops))], lits[rng.IntN(len(lits))])
		if rng.IntN(3) == 0 {
			filter += fmt.Sprintf(" AND name %s %s", ops[rng.IntN(len(ops))], lits[rng.IntN(len(lits))])
		}
		size := 1 + rng.IntN(4)
		both := func(fn func() string) {
			s.scanSearch = false
			got := fn()
			s.scanSearch = true
			want := fn()
			s.scanSearch = false
			if got != want {
				t.Fatalf("filter %q, page size %d:\nnamed %s\nscan  %s", filter, size, got, want)
			}
		}
		ef, err := search.ParseExperimentFilter(filter)
		ok(t, err)
		view := []tracking.ViewType{tracking.ActiveOnly, tracking.DeletedOnly, tracking.AllViews}[rng.IntN(3)]
		both(func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: ef, ViewType: view, MaxResults: size, PageToken: tok})
				ok(t, err)
				for _, e := range p.Experiments {
					out += e.Name + ","
				}
				if tok = p.NextPageToken; tok == "" {
					return out
				}
				out += "|"
			}
		})
		rf, err := search.ParseRegisteredModelFilter(filter)
		ok(t, err)
		both(func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{Filter: rf, MaxResults: size, PageToken: tok})
				ok(t, err)
				for _, m := range p.Models {
					out += m.Name + ","
				}
				if tok = p.NextPageToken; tok == "" {
					return out
				}
				out += "|"
			}
		})
		mf, err := search.ParseModelVersionFilter(filter)
		ok(t, err)
		both(func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: size, PageToken: tok})
				ok(t, err)
				for _, v := range p.Versions {
					out += v.Name + "/" + v.Version + ","
				}
				if tok = p.NextPageToken; tok == "" {
					return out
				}
				out += "|"
			}
		})
	}
}
