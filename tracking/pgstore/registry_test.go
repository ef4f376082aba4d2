package pgstore

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func regVersionsOf(mvs []*tracking.ModelVersion) []string {
	out := make([]string, len(mvs))
	for i, mv := range mvs {
		out[i] = mv.Name + "/" + mv.Version + ":" + mv.CurrentStage
	}
	return out
}

func TestRegistryModelsPG(t *testing.T) {
	s := openTest(t)
	m, err := s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "m", Description: "d",
		Tags: []tracking.Tag{{Key: "k2", Value: "v"}, {Key: "k1", Value: "v"}}})
	regOK(t, err)
	if m.Name != "m" || m.Description != "d" || len(m.Tags) != 2 || m.Tags[0].Key != "k1" || m.CreationTimestamp == 0 {
		t.Fatalf("created %+v", m)
	}
	_, err = s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "m"})
	regWantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=m) already exists.")

	_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m", Source: "s3://b/1"})
	regOK(t, err)
	regOK(t, s.SetRegisteredModelAlias(regCtx, "m", "champ", 1))
	regOK(t, s.SetModelVersionTag(regCtx, "m", 1, tracking.Tag{Key: "vk", Value: "vv"}))

	// Rename moves versions, tags and aliases.
	_, err = s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "other"})
	regOK(t, err)
	_, err = s.RenameRegisteredModel(regCtx, "m", "other")
	regWantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=other) already exists.")
	_, err = s.RenameRegisteredModel(regCtx, "nope", "x")
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=nope not found")
	m, err = s.RenameRegisteredModel(regCtx, "m", "m2")
	regOK(t, err)
	if m.Name != "m2" || len(m.Tags) != 2 || len(m.Aliases) != 1 || len(m.LatestVersions) != 1 || m.LatestVersions[0].Name != "m2" {
		t.Fatalf("renamed %+v", m)
	}
	mv, err := s.GetModelVersionByAlias(regCtx, "m2", "champ")
	regOK(t, err)
	if mv.Name != "m2" || mv.Version != "1" || len(mv.Tags) != 1 || !slices.Equal(mv.Aliases, []string{"champ"}) {
		t.Fatalf("by alias %+v", mv)
	}
	_, err = s.GetRegisteredModel(regCtx, "m")
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")
	_, err = s.GetModelVersion(regCtx, "m", 1)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m, version=1) not found")

	m, err = s.UpdateRegisteredModel(regCtx, "m2", "")
	regOK(t, err)
	if m.Description != "" {
		t.Fatalf("description %q", m.Description)
	}
	_, err = s.UpdateRegisteredModel(regCtx, "nope", "")
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=nope not found")
	regOK(t, s.DeleteRegisteredModelTag(regCtx, "m2", "k1"))
	regOK(t, s.DeleteRegisteredModelTag(regCtx, "m2", "absent"))
	regWantErr(t, s.DeleteRegisteredModelTag(regCtx, "nope", "k"), tracking.ResourceDoesNotExist, "")
	regWantErr(t, s.SetRegisteredModelTag(regCtx, "nope", tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "")

	// Delete cascades; a new model of the same name starts at version 1.
	regOK(t, s.DeleteRegisteredModel(regCtx, "m2"))
	regWantErr(t, s.DeleteRegisteredModel(regCtx, "m2"), tracking.ResourceDoesNotExist, "Registered Model with name=m2 not found")
	_, err = s.GetModelVersion(regCtx, "m2", 1)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m2, version=1) not found")
	var left int
	regOK(t, s.Pool().QueryRow(regCtx, `SELECT (SELECT count(*) FROM model_versions) + (SELECT count(*) FROM model_version_tags)
		+ (SELECT count(*) FROM registered_model_aliases) + (SELECT count(*) FROM registered_model_tags WHERE name = 'm2')`).Scan(&left))
	if left != 0 {
		t.Fatalf("%d rows left after delete", left)
	}
	_, err = s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "m2"})
	regOK(t, err)
	mv, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m2", Source: "s3://b/2", StorageLocation: "s3://elsewhere"})
	regOK(t, err)
	if mv.Version != "1" || len(mv.Tags) != 0 || len(mv.Aliases) != 0 || mv.StorageLocation != "s3://elsewhere" || mv.Status != "READY" {
		t.Fatalf("fresh version %+v", mv)
	}
}

func TestRegistryVersionsLifecyclePG(t *testing.T) {
	s := openTest(t)
	_, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")
	_, err = s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "m"})
	regOK(t, err)
	for i := 0; i < 4; i++ {
		mv, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x",
			Tags: []tracking.Tag{{Key: "t", Value: "1"}}})
		regOK(t, err)
		if mv.Source != "s3://b/x" || mv.StorageLocation != "s3://b/x" || len(mv.Tags) != 1 {
			t.Fatalf("created %+v", mv)
		}
	}
	_, err = s.TransitionModelVersionStage(regCtx, "m", 1, tracking.StageProduction, false)
	regOK(t, err)
	_, err = s.TransitionModelVersionStage(regCtx, "m", 2, tracking.StageProduction, false)
	regOK(t, err)
	_, err = s.TransitionModelVersionStage(regCtx, "m", 3, tracking.StageProduction, true)
	regOK(t, err)
	_, err = s.TransitionModelVersionStage(regCtx, "m", 4, tracking.StageArchived, true)
	regWantErr(t, err, tracking.InvalidParameterValue, "Model version transition cannot archive existing model versions "+
		"because 'Archived' is not an Active stage. Valid stages are Staging, Production")
	_, err = s.TransitionModelVersionStage(regCtx, "m", 9, tracking.StageArchived, false)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m, version=9) not found")
	latest, err := s.GetLatestVersions(regCtx, "m", nil)
	regOK(t, err)
	if got, want := regVersionsOf(latest), []string{"m/2:Archived", "m/3:Production", "m/4:None"}; !slices.Equal(got, want) {
		t.Fatalf("latest %v, want %v", got, want)
	}
	if len(latest[0].Tags) != 1 || len(latest[0].Aliases) != 0 {
		t.Fatalf("latest version entity %+v", latest[0])
	}
	latest, err = s.GetLatestVersions(regCtx, "m", []string{tracking.StageProduction})
	regOK(t, err)
	if got := regVersionsOf(latest); !slices.Equal(got, []string{"m/3:Production"}) {
		t.Fatalf("latest production %v", got)
	}
	_, err = s.GetLatestVersions(regCtx, "nope", nil)
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=nope not found")

	// Numbers are never reused, even after deleting the highest.
	regOK(t, s.DeleteModelVersion(regCtx, "m", 4))
	regWantErr(t, s.DeleteModelVersion(regCtx, "m", 4), tracking.ResourceDoesNotExist, "Model Version (name=m, version=4) not found")
	mv, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
	regOK(t, err)
	if mv.Version != "5" {
		t.Fatalf("version after delete %s", mv.Version)
	}

	// Aliases: "latest" resolves without being stored; a dangling alias is
	// not found.
	mv, err = s.GetModelVersionByAlias(regCtx, "m", "LATEST")
	regOK(t, err)
	if mv.Version != "5" {
		t.Fatalf("latest alias %s", mv.Version)
	}
	regWantErr(t, s.SetRegisteredModelAlias(regCtx, "m", "a", 4), tracking.ResourceDoesNotExist, "Model Version (name=m, version=4) not found")
	regOK(t, s.SetRegisteredModelAlias(regCtx, "m", "a", 5))
	regOK(t, s.SetRegisteredModelAlias(regCtx, "m", "b", 5))
	mv, err = s.GetModelVersion(regCtx, "m", 5)
	regOK(t, err)
	if !slices.Equal(mv.Aliases, []string{"a", "b"}) {
		t.Fatalf("aliases %v", mv.Aliases)
	}
	regOK(t, s.DeleteModelVersion(regCtx, "m", 5))
	_, err = s.GetModelVersionByAlias(regCtx, "m", "a")
	regWantErr(t, err, tracking.InvalidParameterValue, "Registered model alias a not found.")
	_, err = s.GetModelVersionByAlias(regCtx, "m", "zzz")
	regWantErr(t, err, tracking.InvalidParameterValue, "Registered model alias zzz not found.")
	m, err := s.GetRegisteredModel(regCtx, "m")
	regOK(t, err)
	if len(m.Aliases) != 2 {
		t.Fatalf("aliases of a deleted version are kept (as MLflow 2.22.1): %+v", m.Aliases)
	}
	regOK(t, s.DeleteRegisteredModelAlias(regCtx, "m", "a"))
	regOK(t, s.DeleteRegisteredModelAlias(regCtx, "m", "a"))

	mv, err = s.UpdateModelVersion(regCtx, "m", 1, "desc")
	regOK(t, err)
	if mv.Description != "desc" || mv.CurrentStage != tracking.StageArchived {
		t.Fatalf("updated %+v", mv)
	}
	_, err = s.UpdateModelVersion(regCtx, "m", 99, "desc")
	regWantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m, version=99) not found")
	regOK(t, s.DeleteModelVersionTag(regCtx, "m", 1, "absent"))
	regOK(t, s.DeleteModelVersionTag(regCtx, "m", 1, "t"))
	regWantErr(t, s.SetModelVersionTag(regCtx, "m", 99, tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "")
	mv, err = s.GetModelVersion(regCtx, "m", 1)
	regOK(t, err)
	if len(mv.Tags) != 0 {
		t.Fatalf("tags %+v", mv.Tags)
	}
}

// regSearchNames runs a registered model search and returns the names and
// the next page token.
func regSearchNames(t *testing.T, s *Store, q tracking.RegisteredModelQuery) ([]string, string) {
	t.Helper()
	p, err := s.SearchRegisteredModels(regCtx, q)
	regOK(t, err)
	var out []string
	for _, m := range p.Models {
		out = append(out, m.Name)
	}
	return out, p.NextPageToken
}

func TestRegistrySearchPG(t *testing.T) {
	s := openTest(t)
	regClock(s, 1000)
	for _, n := range []string{"b", "a", "C", "prompt", "Ärger"} {
		var tags []tracking.Tag
		if n == "prompt" {
			tags = []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "TRUE"}}
		}
		_, err := s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: n, Tags: append(tags, tracking.Tag{Key: "first", Value: string([]rune(n)[:1])})})
		regOK(t, err)
		_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: n, Source: "s3://b/" + n, RunID: "r" + n, Tags: tags})
		regOK(t, err)
	}
	_, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "a", Source: "s3://b/a2", RunID: "ra"})
	regOK(t, err)

	got, tok := regSearchNames(t, s, tracking.RegisteredModelQuery{MaxResults: 2})
	if !slices.Equal(got, []string{"C", "a"}) || tok == "" {
		t.Fatalf("page 1 %v %q", got, tok)
	}
	got, tok = regSearchNames(t, s, tracking.RegisteredModelQuery{MaxResults: 2, PageToken: tok})
	if !slices.Equal(got, []string{"b", "Ärger"}) || tok != "" {
		t.Fatalf("page 2 %v %q", got, tok)
	}
	for filter, want := range map[string][]string{
		"tags.`mlflow.prompt.is_prompt` = 'TRUE'":  {"prompt"},
		"tags.`mlflow.prompt.is_prompt` != 'true'": {"C", "a", "b", "prompt", "Ärger"},
		"name LIKE 'a%'":                  {"a"},
		"name ILIKE 'ä%'":                 {"Ärger"},
		"name ILIKE 'c'":                  {"C"},
		"name LIKE '_'":                   {"C", "a", "b"},
		"name != 'a'":                     {"C", "b", "Ärger"},
		"tags.first = 'b'":                {"b"},
		"tags.first LIKE '%'":             {"C", "a", "b", "Ärger"},
		"tags.nope = 'x'":                 nil,
		"name = 'a' AND tags.first = 'a'": {"a"},
	} {
		f, err := search.ParseRegisteredModelFilter(filter)
		regOK(t, err)
		if got, _ := regSearchNames(t, s, tracking.RegisteredModelQuery{Filter: f, MaxResults: 10}); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
	}
	o, err := search.ParseRegisteredModelOrderBy([]string{"timestamp DESC"})
	regOK(t, err)
	if got, _ := regSearchNames(t, s, tracking.RegisteredModelQuery{OrderBy: o, MaxResults: 10}); !slices.Equal(got, []string{"a", "Ärger", "C", "b"}) {
		t.Fatalf("by timestamp %v", got)
	}

	versions := func(filter string, order ...string) []string {
		t.Helper()
		mf, err := search.ParseModelVersionFilter(filter)
		regOK(t, err)
		mo, err := search.ParseModelVersionOrderBy(order)
		regOK(t, err)
		p, err := s.SearchModelVersions(regCtx, tracking.ModelVersionQuery{Filter: mf, OrderBy: mo, MaxResults: 10})
		regOK(t, err)
		return regVersionsOf(p.Versions)
	}
	if got := versions("run_id IN ('ra', 'rb')", "name", "version_number"); !slices.Equal(got, []string{"a/1:None", "a/2:None", "b/1:None"}) {
		t.Fatalf("versions %v", got)
	}
	if got := versions(""); !slices.Equal(got, []string{"a/2:None", "Ärger/1:None", "C/1:None", "a/1:None", "b/1:None"}) {
		t.Fatalf("default order %v", got)
	}
	if got := versions("version_number >= 2"); !slices.Equal(got, []string{"a/2:None"}) {
		t.Fatalf("version_number %v", got)
	}
	if got := versions("source_path LIKE '%/a%' AND name = 'a'", "version_number ASC"); !slices.Equal(got, []string{"a/1:None", "a/2:None"}) {
		t.Fatalf("source_path %v", got)
	}
	if got := versions("tags.`mlflow.prompt.is_prompt` = 'TRUE'"); !slices.Equal(got, []string{"prompt/1:None"}) {
		t.Fatalf("prompt versions %v", got)
	}
	_, err = s.SearchModelVersions(regCtx, tracking.ModelVersionQuery{PageToken: "bad!", MaxResults: 10})
	var se *search.Error
	if !errors.As(err, &se) {
		t.Fatalf("bad page token: %v", err)
	}
	// A token of another query is refused.
	_, tok = regSearchNames(t, s, tracking.RegisteredModelQuery{MaxResults: 1})
	_, err = s.SearchRegisteredModels(regCtx, tracking.RegisteredModelQuery{MaxResults: 1, PageToken: tok, OrderBy: o})
	if !errors.As(err, &se) {
		t.Fatalf("token of another query: %v", err)
	}
}

// TestRegistryKeysetPagesPG pages through models and versions while other
// rows are inserted (before and after the cursor) and updated between
// pages: every row present from start to end is seen exactly once.
func TestRegistryKeysetPagesPG(t *testing.T) {
	s := openTest(t)
	regClock(s, 1000)
	var want []string
	for i := 0; i < 20; i++ {
		n := fmt.Sprintf("m%02d", i*2)
		want = append(want, n)
		_, err := s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: n})
		regOK(t, err)
		for v := 0; v < 2; v++ {
			_, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: n, Source: "s"})
			regOK(t, err)
		}
	}
	for _, order := range [][]string{nil, {"name DESC"}, {"timestamp ASC"}} {
		o, err := search.ParseRegisteredModelOrderBy(order)
		regOK(t, err)
		seen := map[string]int{}
		tok, page := "", 0
		for {
			var got []string
			got, tok = regSearchNames(t, s, tracking.RegisteredModelQuery{MaxResults: 3, PageToken: tok, OrderBy: o})
			for _, n := range got {
				seen[n]++
			}
			page++
			// Insert rows that sort before and after the cursor (on
			// the first pages only, so that the walk ends).
			for _, n := range []string{fmt.Sprintf("a%v-%d", order, page), fmt.Sprintf("z%v-%d", order, page), fmt.Sprintf("m%02d-%v", page, order)}[:min(3, max(0, 5-page)*3)] {
				_, err := s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: n})
				regOK(t, err)
			}
			if tok == "" {
				break
			}
		}
		for _, n := range want {
			if seen[n] != 1 {
				t.Fatalf("order %v: %s seen %d times", order, n, seen[n])
			}
		}
		for n, c := range seen {
			if c != 1 {
				t.Fatalf("order %v: %s seen %d times", order, n, c)
			}
		}
	}

	// Model versions in the default order (last update, newest first).
	mvSeen := map[string]int{}
	tok := ""
	for i := 0; ; i++ {
		p, err := s.SearchModelVersions(regCtx, tracking.ModelVersionQuery{MaxResults: 7, PageToken: tok})
		regOK(t, err)
		for _, mv := range p.Versions {
			mvSeen[mv.Name+"/"+mv.Version]++
		}
		// A new version sorts first (newest), before the cursor.
		_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m00", Source: "late"})
		regOK(t, err)
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	for _, n := range want {
		for v := 1; v <= 2; v++ {
			if k := n + "/" + strconv.Itoa(v); mvSeen[k] != 1 {
				t.Fatalf("version %s seen %d times", k, mvSeen[k])
			}
		}
	}
}

// TestRegistryReplicasConcurrentPG runs many goroutines on two stores (two
// replicas) on one database.
func TestRegistryReplicasConcurrentPG(t *testing.T) {
	s1, s2 := regTwoStores(t)
	stores := []*Store{s1, s2}
	const workers = 8

	// Concurrent creates of one name: one winner.
	var wg sync.WaitGroup
	errs := make([]error, 2*workers)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = stores[i%2].CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "race"})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		regWantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=race) already exists.")
	}
	if wins != 1 {
		t.Fatalf("%d creates of one name succeeded", wins)
	}

	// Concurrent versions: numbers 1..N, none skipped or repeated.
	const perWorker = 5
	got := make(chan int64, 2*workers*perWorker)
	for i := 0; i < 2*workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < perWorker; j++ {
				mv, err := stores[i%2].CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "race", Source: "s"})
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.ParseInt(mv.Version, 10, 64)
				got <- n
			}
		}(i)
	}
	wg.Wait()
	close(got)
	var nums []int64
	for n := range got {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for i, n := range nums {
		if n != int64(i+1) {
			t.Fatalf("version numbers %v", nums)
		}
	}
	if len(nums) != 2*workers*perWorker {
		t.Fatalf("%d versions", len(nums))
	}

	// Concurrent transitions with archive_existing_versions: exactly one
	// version ends in Production.
	for i := 0; i < 2*workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := stores[i%2].TransitionModelVersionStage(regCtx, "race", int64(i+1), tracking.StageProduction, true); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	latest, err := s2.GetLatestVersions(regCtx, "race", []string{tracking.StageProduction})
	regOK(t, err)
	var prod int
	regOK(t, s1.Pool().QueryRow(regCtx, "SELECT count(*) FROM model_versions WHERE name = 'race' AND current_stage = 'Production'").Scan(&prod))
	if prod != 1 || len(latest) != 1 {
		t.Fatalf("%d versions in Production (latest %v)", prod, regVersionsOf(latest))
	}

	// A rename racing with version creates and tag writes: afterwards every
	// version and tag is under the new name, none under the old.
	for i := 0; i < 2*workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := stores[i%2]
			if i == workers {
				if _, err := s.RenameRegisteredModel(regCtx, "race", "renamed"); err != nil {
					t.Error(err)
				}
				return
			}
			for _, name := range []string{"race", "renamed"} {
				_, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: name, Source: "s"})
				if err == nil {
					break
				}
				if !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	var orphans, under int
	regOK(t, s1.Pool().QueryRow(regCtx, "SELECT count(*) FROM model_versions WHERE name = 'race'").Scan(&orphans))
	regOK(t, s1.Pool().QueryRow(regCtx, "SELECT count(*), max(version) FROM model_versions WHERE name = 'renamed'").Scan(&under, new(int64)))
	if orphans != 0 || under != 2*workers*perWorker+2*workers-1 {
		t.Fatalf("after rename: %d versions under the old name, %d under the new", orphans, under)
	}

	// Delete racing with version creates: the model and everything of it
	// is gone or complete, never half.
	for i := 0; i < 2*workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := stores[i%2]
			if i == 3 {
				if err := s.DeleteRegisteredModel(regCtx, "renamed"); err != nil {
					t.Error(err)
				}
				return
			}
			mv, err := s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "renamed", Source: "s", Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
			if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				t.Error(err)
			}
			if err == nil {
				n, _ := strconv.ParseInt(mv.Version, 10, 64)
				if err := s.SetRegisteredModelAlias(regCtx, "renamed", "a"+mv.Version, n); err != nil &&
					!tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	var rest int
	regOK(t, s1.Pool().QueryRow(regCtx, `SELECT (SELECT count(*) FROM registered_models) + (SELECT count(*) FROM model_versions)
		+ (SELECT count(*) FROM model_version_tags) + (SELECT count(*) FROM registered_model_aliases)
		+ (SELECT count(*) FROM registered_model_tags)`).Scan(&rest))
	if rest != 0 {
		t.Fatalf("%d registry rows after deleting the only model", rest)
	}
}

// TestUnstorableTextPG: names, ids, keys and filter operands PostgreSQL's
// text cannot hold (NUL, invalid UTF-8) are answered as the bbolt store
// answers them (not found, no match), never with a database error.
func TestUnstorableTextPG(t *testing.T) {
	s := openTest(t)
	exp := regExp(t, s, "e")
	_, err := s.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: "m", Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
	regOK(t, err)
	_, err = s.CreateModelVersion(regCtx, tracking.CreateModelVersion{Name: "m", Source: "s"})
	regOK(t, err)
	_, err = s.StartTraceV3(regCtx, &tracking.TraceInfo{RequestID: "tr", ExperimentID: exp, Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
	regOK(t, err)
	for _, bad := range []string{"a\x00b", "\xff"} {
		_, err = s.GetRegisteredModel(regCtx, bad)
		regWantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name="+bad+" not found")
		_, err = s.GetModelVersion(regCtx, bad, 1)
		regWantErr(t, err, tracking.ResourceDoesNotExist, "")
		_, err = s.GetModelVersionByAlias(regCtx, "m", bad)
		regWantErr(t, err, tracking.InvalidParameterValue, "Registered model alias "+bad+" not found.")
		regOK(t, s.DeleteRegisteredModelTag(regCtx, "m", bad))
		_, err = s.GetLoggedModel(regCtx, bad)
		regWantErr(t, err, tracking.ResourceDoesNotExist, "")
		_, err = s.GetTraceInfo(regCtx, bad)
		regWantErr(t, err, tracking.ResourceDoesNotExist, "")
		regWantErr(t, s.DeleteTraceTag(regCtx, "tr", bad), tracking.ResourceDoesNotExist, "")
		_, err = s.GetAssessment(regCtx, "tr", bad)
		regWantErr(t, err, tracking.ResourceDoesNotExist, "")
		n, err := s.DeleteTraces(regCtx, tracking.DeleteTraces{ExperimentID: exp, RequestIDs: []string{bad}})
		regOK(t, err)
		if n != 0 {
			t.Fatalf("deleted %d", n)
		}
		regOK(t, s.LinkTracesToRun(regCtx, []string{bad}, regRun(t, s, exp)))

		for filter, want := range map[string]int{
			"name = '" + bad + "'": 0, "name != '" + bad + "'": 1, "name LIKE '" + bad + "'": 0,
			"tags.`" + bad + "` = 'v'": 0, "tags.k != '" + bad + "'": 1,
		} {
			f, err := search.ParseRegisteredModelFilter(filter)
			if err != nil {
				continue // the parser refuses it: nothing reaches the store
			}
			p, err := s.SearchRegisteredModels(regCtx, tracking.RegisteredModelQuery{Filter: f, MaxResults: 10})
			regOK(t, err)
			if len(p.Models) != want {
				t.Fatalf("%q: %d models", filter, len(p.Models))
			}
		}
		for filter, want := range map[string]int{
			"tags.`" + bad + "` IS NULL": 1, "tags.k = '" + bad + "'": 0, "run_id = '" + bad + "'": 0,
			"request_id IN ('tr', '" + bad + "')": 1,
		} {
			f, err := search.ParseTraceFilter(filter)
			if err != nil {
				continue
			}
			p, err := s.SearchTraces(regCtx, tracking.TraceQuery{ExperimentIDs: []string{exp}, Filter: f, MaxResults: 10})
			regOK(t, err)
			if len(p.Traces) != want {
				t.Fatalf("%q: %d traces", filter, len(p.Traces))
			}
		}
	}
}
