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

// longVal is longer than an index entry holds (ixStrMax): entries of
// such values are cut and grouped.
var longVal = strings.Repeat("v", ixStrMax) + "x"

// seedEntities fills s with experiments, registered models and versions
// through the write paths: tags set, changed and deleted, renames,
// deletes and restores, stage transitions, on a clock with many ties.
func seedEntities(t *testing.T, s *Store, rng *rand.Rand, nExp, nModels int) {
	t.Helper()
	clock := int64(1000)
	s.now = func() int64 {
		if rng.IntN(3) == 0 {
			clock += int64(rng.IntN(3))
		}
		return clock
	}
	vals := []string{"a", "ab", "b", "", "a%b", "x\x00y", longVal, longVal + "y"}
	pick := func() string { return vals[rng.IntN(len(vals))] }
	tagKeys := []string{"k1", "k2", "k3", tracking.TagIsPrompt}
	var expIDs []string
	for i := range nExp {
		var tags []tracking.Tag
		for _, k := range tagKeys[:3] {
			if rng.IntN(2) == 0 {
				tags = append(tags, tracking.Tag{Key: k, Value: pick()})
			}
		}
		id, err := s.CreateExperiment(bg, tracking.CreateExperiment{
			Name: fmt.Sprintf("exp-%c%d", 'a'+rng.IntN(4), i), DefaultArtifactRoot: root, Tags: tags})
		ok(t, err)
		expIDs = append(expIDs, id)
	}
	for range nExp * 2 {
		id := expIDs[rng.IntN(len(expIDs))]
		switch rng.IntN(6) {
		case 0:
			_ = s.SetExperimentTag(bg, id, tracking.Tag{Key: tagKeys[rng.IntN(3)], Value: pick()})
		case 1:
			_ = s.DeleteExperimentTag(bg, id, tagKeys[rng.IntN(3)])
		case 2:
			_ = s.RenameExperiment(bg, id, fmt.Sprintf("exp-%c-r%d", 'a'+rng.IntN(4), rng.IntN(1000000)))
		case 3:
			_ = s.DeleteExperiment(bg, id)
		case 4:
			_ = s.RestoreExperiment(bg, id)
		}
	}
	var models []string
	runIDs := []string{"r1", "r2", "0123456789abcdef0123456789abcdef", ""}
	for i := range nModels {
		name := fmt.Sprintf("m-%c%d", 'a'+rng.IntN(3), i)
		var tags []tracking.Tag
		for _, k := range tagKeys {
			if rng.IntN(3) == 0 {
				v := pick()
				if k == tracking.TagIsPrompt {
					v = "true"
				}
				tags = append(tags, tracking.Tag{Key: k, Value: v})
			}
		}
		_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: name, Tags: tags})
		ok(t, err)
		models = append(models, name)
		for range rng.IntN(6) {
			var vt []tracking.Tag
			if rng.IntN(2) == 0 {
				vt = append(vt, tracking.Tag{Key: tagKeys[rng.IntN(len(tagKeys))], Value: pick()})
			}
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: name, Source: "s3://b/" + name,
				RunID: runIDs[rng.IntN(len(runIDs))], Tags: vt})
			ok(t, err)
		}
	}
	for range nModels * 3 {
		i := rng.IntN(len(models))
		name := models[i]
		v := int64(1 + rng.IntN(5))
		switch rng.IntN(10) {
		case 0:
			_ = s.SetRegisteredModelTag(bg, name, tracking.Tag{Key: tagKeys[rng.IntN(3)], Value: pick()})
		case 1:
			_ = s.DeleteRegisteredModelTag(bg, name, tagKeys[rng.IntN(3)])
		case 2:
			nn := fmt.Sprintf("m-%c-r%d", 'a'+rng.IntN(3), rng.IntN(1000000))
			if _, err := s.RenameRegisteredModel(bg, name, nn); err == nil {
				models[i] = nn
			}
		case 3:
			_, _ = s.UpdateRegisteredModel(bg, name, "d")
		case 4:
			_ = s.SetModelVersionTag(bg, name, v, tracking.Tag{Key: tagKeys[rng.IntN(3)], Value: pick()})
		case 5:
			_ = s.DeleteModelVersionTag(bg, name, v, tagKeys[rng.IntN(3)])
		case 6:
			_, _ = s.UpdateModelVersion(bg, name, v, "d")
		case 7:
			_, _ = s.TransitionModelVersionStage(bg, name, v, tracking.StageStaging, rng.IntN(2) == 0)
		case 8:
			_ = s.DeleteModelVersion(bg, name, v)
		case 9:
			if rng.IntN(4) == 0 {
				_ = s.DeleteRegisteredModel(bg, name)
			}
		}
	}
}

// eidxKeys returns the eidx entries.
func eidxKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bEntIdx).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	}))
	return keys
}

// rebuildEntIndex drops eidx and builds it again from the data.
func rebuildEntIndex(t *testing.T, s *Store) {
	t.Helper()
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bEntIdx); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bEntIdx); err != nil {
			return err
		}
		if err := tx.Bucket(bMeta).Delete(metaEntIdxPos); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete(metaEntIdxReady)
	}))
	ok(t, s.buildEntIndex(bg, -1))
}

// TestEntIndexMaintained: after every kind of write, the entries the
// write paths kept are exactly those a build from the data writes.
func TestEntIndexMaintained(t *testing.T) {
	s, _ := openTest(t)
	seedEntities(t, s, rand.New(rand.NewPCG(1, 2)), 80, 40)
	got := eidxKeys(t, s)
	if len(got) == 0 {
		t.Fatal("no eidx entries")
	}
	rebuildEntIndex(t, s)
	want := eidxKeys(t, s)
	if !slices.Equal(got, want) {
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("stale entry %q", k)
			}
		}
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("missing entry %q", k)
			}
		}
	}
}

// entQueries are the filters and orders of the differential test.
var (
	expFilters = []string{"", "tags.k1 = 'a'", "tags.k1 = 'ab'", "tags.k2 LIKE 'a%'", "tags.k1 LIKE '%b'",
		"tags.k3 IS NOT NULL", "tags.k3 IS NULL", "tags.k2 != 'a'", "tags.k1 ILIKE 'A%'", "tags.k1 = ''",
		"tags.k2 = '" + longVal + "'", "tags.k2 LIKE '" + longVal + "%'", "tags.k1 = 'x\x00y'",
		"name = 'exp-a3'", "name LIKE 'exp-b%'", "name LIKE 'exp-%-r%'", "creation_time > 1003",
		"creation_time <= 1002", "creation_time = 1001", "last_update_time >= 1010", "last_update_time != 1000",
		"attribute.last_update_time < 1005.5"}
	expOrders = [][]string{nil, {"name"}, {"name DESC"}, {"experiment_id DESC"}, {"experiment_id"},
		{"creation_time"}, {"creation_time DESC"}, {"last_update_time DESC", "name"}, {"last_update_time", "experiment_id DESC"},
		{"creation_time ASC", "experiment_id ASC"}}
	regFilters = []string{"", "tags.k1 = 'a'", "tags.k2 LIKE 'a%'", "tags.k3 != 'b'", "tags.k1 ILIKE 'a%'",
		"tags.`mlflow.prompt.is_prompt` = 'true'", "tags.`mlflow.prompt.is_prompt` != 'true'",
		"name = 'm-a3'", "name LIKE 'm-b%'", "tags.k1 = '" + longVal + "'", "tags.k2 = ''"}
	rmOrders  = [][]string{nil, {"name"}, {"name DESC"}, {"timestamp DESC"}, {"last_updated_timestamp"}, {"last_updated_timestamp DESC", "name DESC"}}
	mvFilters = []string{"run_id = 'r1'", "run_id IN ('r2', 'r1', 'r2')", "run_id = ''", "run_id != 'r1'",
		"run_id LIKE 'r%'", "version_number > 2", "version_number <= 2", "version_number = 3",
		"name = 'm-a3' AND version_number >= 2", "name = 'm-b5' AND version_number < 3", "source_path LIKE 's3://b/m-a%'"}
	mvOrders = [][]string{nil, {"last_updated_timestamp"}, {"creation_timestamp DESC"}, {"creation_timestamp", "version_number"},
		{"name", "version_number DESC"}, {"version_number"}, {"last_updated_timestamp DESC", "name DESC"}}
)

func randFilter(rng *rand.Rand, pool ...[]string) string {
	var parts []string
	for range 1 + rng.IntN(2) {
		p := pool[rng.IntN(len(pool))]
		if f := p[rng.IntN(len(p))]; f != "" {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, " AND ")
}

// planTunings force every plan on small data: the defaults, every walk
// aborted in favour of the clause, and clauses always preferred.
var planTunings = []struct{ countCap, perRow, min int }{{10000, 8, 1024}, {10000, 0, 0}, {3, 0, 1}, {10000, 1000, 100000}}

// TestEntSearchDifferential: experiment, registered-model and
// model-version searches page exactly like the scan of every entity, for
// many filters, orders, view types and page sizes, under every plan, and
// before the index build completes.
func TestEntSearchDifferential(t *testing.T) {
	s, _ := openTest(t)
	rng := rand.New(rand.NewPCG(5, 9))
	seedEntities(t, s, rng, 120, 50)
	defer func(a, b, c int) { countCap, probePerRow, probeMin = a, b, c }(countCap, probePerRow, probeMin)
	both := func(what string, fn func() string) {
		t.Helper()
		s.scanSearch = true
		want := fn()
		s.scanSearch = false
		for _, tu := range planTunings {
			countCap, probePerRow, probeMin = tu.countCap, tu.perRow, tu.min
			if got := fn(); got != want {
				t.Fatalf("%s, tuning %v:\nindexed %s\nscan    %s", what, tu, got, want)
			}
		}
	}
	nonEmpty := 0
	for i := range 300 {
		if i == 230 {
			// The rest as a database whose build has not completed:
			// only the buckets keyed by name and id may be used.
			ok(t, s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(metaEntIdxReady) }))
		}
		size := 1 + rng.IntN(5)
		if i%10 == 0 {
			size = 0 // registry: everything in one page
		}
		ef, err := search.ParseExperimentFilter(randFilter(rng, expFilters))
		ok(t, err)
		eo, err := search.ParseExperimentOrderBy(expOrders[rng.IntN(len(expOrders))])
		ok(t, err)
		view := []tracking.ViewType{tracking.ActiveOnly, tracking.DeletedOnly, tracking.AllViews}[rng.IntN(3)]
		both(fmt.Sprintf("experiments %v %v %v size %d", ef, eo, view, size), func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: ef, OrderBy: eo, ViewType: view,
					MaxResults: max(size, 1), PageToken: tok})
				ok(t, err)
				for _, e := range p.Experiments {
					out += e.ExperimentID + ","
				}
				if tok = p.NextPageToken; tok == "" {
					return out
				}
				out += "|"
			}
		})
		rfs := randFilter(rng, regFilters)
		rf, err := search.ParseRegisteredModelFilter(rfs)
		ok(t, err)
		ro, err := search.ParseRegisteredModelOrderBy(rmOrders[rng.IntN(len(rmOrders))])
		ok(t, err)
		both(fmt.Sprintf("registered models %q %v size %d", rfs, ro, size), func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{Filter: rf, OrderBy: ro,
					MaxResults: size, PageToken: tok})
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
		mfs := randFilter(rng, mvFilters, regFilters)
		mf, err := search.ParseModelVersionFilter(mfs)
		ok(t, err)
		mo, err := search.ParseModelVersionOrderBy(mvOrders[rng.IntN(len(mvOrders))])
		ok(t, err)
		both(fmt.Sprintf("model versions %q %v size %d", mfs, mo, size), func() string {
			out, tok := "", ""
			for {
				p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, OrderBy: mo,
					MaxResults: size, PageToken: tok})
				ok(t, err)
				for _, v := range p.Versions {
					out += v.Name + "/" + v.Version + ","
				}
				if out != "" {
					nonEmpty++
				}
				if tok = p.NextPageToken; tok == "" {
					return out
				}
				out += "|"
			}
		})
	}
	if nonEmpty < 75 {
		t.Errorf("only %d non-empty model version searches: the data does not exercise the indexes", nonEmpty)
	}
}

// TestEntIndexBuildOnOpen: a database without eidx (a version-3 file) is
// migrated to the current version on open, answers the searches by scanning, is indexed by a build that resumes
// where an interrupted one stopped, and ends with exactly the entries the
// write paths maintain; writes during the build are indexed too.
func TestEntIndexBuildOnOpen(t *testing.T) {
	s, path := openTest(t)
	seedEntities(t, s, rand.New(rand.NewPCG(4, 4)), 30, 30)
	want := eidxKeys(t, s)
	ef, err := search.ParseExperimentFilter("tags.k1 = 'a'")
	ok(t, err)
	mf, err := search.ParseModelVersionFilter("run_id = 'r1'")
	ok(t, err)
	answers := func() string {
		e, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: ef, ViewType: tracking.AllViews, MaxResults: 1000})
		ok(t, err)
		m, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 1000})
		ok(t, err)
		out := ","
		for _, x := range e.Experiments {
			out += x.ExperimentID + ","
		}
		for _, v := range m.Versions {
			out += v.Name + "/" + v.Version + ","
		}
		return out
	}
	wantAnswers := answers()
	if !strings.Contains(wantAnswers, "/") || strings.HasPrefix(wantAnswers, ",m") {
		t.Fatalf("seeded data answers %q: need experiments and versions", wantAnswers)
	}
	ok(t, s.Close())

	// Make it a database from before eidx.
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bEntIdx); err != nil {
			return err
		}
		if err := tx.Bucket(bMeta).Put([]byte("version"), u64(3)); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete(metaEntIdxReady)
	}))
	ok(t, db.Close())
	if _, err := VerifyFile(bg, path); err != nil {
		t.Fatalf("a file without eidx: %v", err)
	}

	autoIndex, indexChunk = false, 7
	t.Cleanup(func() { autoIndex, indexChunk = true, 1000 })
	s, err = Open(path, Options{})
	ok(t, err)
	ready := func() (r bool, pos []byte) {
		ok(t, s.db.View(func(tx *bolt.Tx) error {
			r, pos = entIndexReady(tx), bytes.Clone(tx.Bucket(bMeta).Get(metaEntIdxPos))
			return nil
		}))
		return r, pos
	}
	if r, _ := ready(); r {
		t.Fatal("eidx ready before any build")
	}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get([]byte("version")); u64be(v) != schemaVersion {
			t.Errorf("version %x after opening a version-3 file", v)
		}
		return nil
	}))
	if got := answers(); got != wantAnswers {
		t.Errorf("unindexed: %q, want %q", got, wantAnswers)
	}
	// One chunk of experiments, then a write, then the registry half way.
	ok(t, s.buildEntIndex(bg, 1))
	if r, pos := ready(); r || len(pos) != 9 || pos[0] != 'x' {
		t.Fatalf("after one chunk: ready %v, position %q", r, pos)
	}
	active, err := s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 1})
	ok(t, err)
	tagged := active.Experiments[0].ExperimentID
	ok(t, s.SetExperimentTag(bg, tagged, tracking.Tag{Key: "k1", Value: "a"}))
	ok(t, s.buildEntIndex(bg, 6))
	if r, pos := ready(); r || len(pos) < 2 || pos[0] != 'r' {
		t.Fatalf("in the registry: ready %v, position %q", r, pos)
	}
	wantAnswers = answers()
	if !strings.Contains(wantAnswers, ","+tagged+",") {
		t.Errorf("experiment %s tagged during the build not found: %q", tagged, wantAnswers)
	}
	ok(t, s.Close())

	autoIndex = true
	s, err = Open(path, Options{})
	ok(t, err)
	t.Cleanup(func() { _ = s.Close() })
	<-s.entBuildDone
	if r, pos := ready(); !r || pos != nil {
		t.Fatalf("after the build: ready %v, position %q", r, pos)
	}
	if got := answers(); got != wantAnswers {
		t.Errorf("indexed: %q, want %q", got, wantAnswers)
	}
	got := eidxKeys(t, s)
	rebuildEntIndex(t, s)
	if want = eidxKeys(t, s); !slices.Equal(got, want) {
		t.Errorf("resumed build has %d entries, a fresh build %d", len(got), len(want))
	}
}

// TestEntSearchUsesIndex: with the index, a tag search reads only the
// candidates (a corrupt record outside them is never decoded), and the
// default-order page stops early.
func TestEntSearchUsesIndex(t *testing.T) {
	s, _ := openTest(t)
	clock := int64(0)
	s.now = func() int64 { clock++; return clock }
	for i := range 50 {
		var tags []tracking.Tag
		if i == 7 {
			tags = []tracking.Tag{{Key: "team", Value: "x"}}
		}
		_, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "e" + strconv.Itoa(i), DefaultArtifactRoot: root, Tags: tags})
		ok(t, err)
		_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m" + strconv.Itoa(i)})
		ok(t, err)
		_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m" + strconv.Itoa(i), Source: "s", RunID: "run" + strconv.Itoa(i)})
		ok(t, err)
	}
	// Corrupt experiment 3, model m3 and its version: only a scan reads them.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bExp).Put(u64(3), []byte("{")); err != nil {
			return err
		}
		if err := tx.Bucket(bRM).Put([]byte("m3"), []byte("{")); err != nil {
			return err
		}
		return tx.Bucket(bMV).Put(versionKey("m3", 1), []byte("{"))
	}))
	ef, _ := search.ParseExperimentFilter("tags.team = 'x'")
	p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: ef, MaxResults: 10})
	ok(t, err)
	if len(p.Experiments) != 1 || p.Experiments[0].ExperimentID != "8" {
		t.Errorf("tag search: %+v", p.Experiments)
	}
	// Default order creation_time DESC: the newest ones, never experiment 3.
	if p, err = s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 5}); err != nil || len(p.Experiments) != 5 {
		t.Errorf("default order: %v %v", p.Experiments, err)
	}
	mf, _ := search.ParseModelVersionFilter("run_id = 'run9'")
	v, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 10})
	ok(t, err)
	if len(v.Versions) != 1 || v.Versions[0].Name != "m9" {
		t.Errorf("run_id search: %+v", v.Versions)
	}
	if v, err = s.SearchModelVersions(bg, tracking.ModelVersionQuery{MaxResults: 5}); err != nil || len(v.Versions) != 5 {
		t.Errorf("default order versions: %v %v", v.Versions, err)
	}
	if m, err := s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{MaxResults: 2}); err != nil || len(m.Models) != 2 {
		t.Errorf("first models by name: %v %v", m.Models, err)
	}
	// The scan does read them.
	s.scanSearch = true
	if _, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: ef, MaxResults: 10}); err == nil {
		t.Error("the scan decoded no corrupt experiment: the test proves nothing")
	}
	if _, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 10}); err == nil {
		t.Error("the scan decoded no corrupt version: the test proves nothing")
	}
}

// TestCreateModelVersionNumber: a new version takes the number after the
// highest ever created (deleted ones are not reused) and after any stored
// version the model record does not count (lastVersion), without reading
// the other versions.
func TestCreateModelVersionNumber(t *testing.T) {
	s, _ := openTest(t)
	for _, name := range []string{"m", "m2", "n"} {
		_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: name})
		ok(t, err)
	}
	create := func(name string) string {
		v, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: name, Source: "s"})
		ok(t, err)
		return v.Version
	}
	for range 3 {
		create("m")
	}
	ok(t, s.DeleteModelVersion(bg, "m", 3))
	if v := create("m"); v != "4" {
		t.Errorf("after deleting 3: version %s, want 4", v)
	}
	// A version the model record does not count, and a corrupt one in
	// between that must not be read.
	ok(t, s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bMV), versionKey("m", 300), mvRecord{Source: "s"}); err != nil {
			return err
		}
		return tx.Bucket(bMV).Put(versionKey("m", 2), []byte("{"))
	}))
	if v := create("m"); v != "301" {
		t.Errorf("after a stored version 300: version %s, want 301", v)
	}
	if v := create("m2"); v != "1" {
		t.Errorf("m2: version %s, want 1", v)
	}
	if v := create("n"); v != "1" {
		t.Errorf("n: version %s, want 1", v)
	}
}
