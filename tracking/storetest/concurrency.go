package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// goroutines is how many concurrent callers the races below use.
const goroutines = 16

// race runs fn(i, handle) for i in [0, n) at once, spreading the calls over
// the handles, and returns their errors.
func race(hs []tracking.Store, n int, fn func(i int, s tracking.Store) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs[i] = fn(i, hs[i%len(hs)])
		}(i)
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner asserts exactly one nil error and that every other is code.
func oneWinner(t *testing.T, what string, errs []error, code tracking.ErrorCode, msg string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("%s: calls %d and %d both succeeded", what, winner, i)
			}
			winner = i
			continue
		}
		e, isErr := tracking.AsError(err)
		if !isErr || e.Code != code || (msg != "" && !strings.HasPrefix(e.Message, msg)) {
			t.Fatalf("%s: call %d: %v, want %s %q", what, i, err, code, msg)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no call succeeded", what)
	}
	return winner
}

func testConcurrency(t *testing.T, f Factory) {
	// A write that returned nil is visible to the next read on every
	// handle: no replica answers from a stale copy.
	t.Run("ReplicaVisibility", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		a, b := hs[0], hs[len(hs)-1]
		exp := mkExp(t, a, "vis")
		if e, err := b.GetExperimentByName(bg, "vis"); err != nil || e.ExperimentID != exp {
			t.Fatalf("experiment created on one handle: %+v %v", e, err)
		}
		ok(t, b.RenameExperiment(bg, exp, "vis2"))
		if e, err := a.GetExperiment(bg, exp); err != nil || e.Name != "vis2" {
			t.Fatalf("rename on the other handle: %+v %v", e, err)
		}
		run := mkRun(t, a, exp, "r", 1)
		ok(t, a.LogBatch(bg, run, tracking.Batch{Params: []tracking.Param{{Key: "p", Value: "1"}},
			Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: 1}}}))
		wantErr(t, b.LogParam(bg, run, tracking.Param{Key: "p", Value: "2"}), tracking.InvalidParameterValue, "")
		ok(t, b.LogBatch(bg, run, tracking.Batch{Metrics: []tracking.Metric{{Key: "m", Value: 2, Timestamp: 1, Step: 2}}}))
		if l := latest(t, a, run, "m"); l.Value != 2 {
			t.Fatalf("latest metric logged on the other handle: %+v", l)
		}
		ok(t, b.DeleteExperiment(bg, exp))
		if lifecycle(t, a, run) != tracking.LifecycleDeleted {
			t.Fatal("cascade not visible on the other handle")
		}
		_, err := a.CreateRun(bg, tracking.CreateRun{ExperimentID: exp})
		wantErr(t, err, tracking.InvalidParameterValue, "")
		mkModel(t, a, "m")
		mv, err := b.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s"})
		ok(t, err)
		ok(t, a.SetRegisteredModelAlias(bg, "m", "champ", 1))
		if got, err := b.GetModelVersionByAlias(bg, "m", "champ"); err != nil || got.Version != mv.Version {
			t.Fatalf("alias set on the other handle: %+v %v", got, err)
		}
		ok(t, b.DeleteRegisteredModel(bg, "m"))
		if _, err := a.GetRegisteredModel(bg, "m"); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatalf("model deleted on the other handle: %v", err)
		}
	})

	t.Run("ExperimentName", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		ids := make([]string, goroutines)
		errs := race(hs, goroutines, func(i int, s tracking.Store) error {
			id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "same", DefaultArtifactRoot: root,
				Tags: []tracking.Tag{{Key: "i", Value: strconv.Itoa(i)}}})
			ids[i] = id
			return err
		})
		w := oneWinner(t, "create experiment", errs, tracking.ResourceAlreadyExists, "Experiment(name=same) already exists.")
		for _, h := range hs {
			e, err := h.GetExperimentByName(bg, "same")
			ok(t, err)
			if e.ExperimentID != ids[w] || tagMap(e.Tags)["i"] != strconv.Itoa(w) {
				t.Fatalf("stored %+v, winner %d id %s", e, w, ids[w])
			}
		}
		p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{ViewType: tracking.AllViews, MaxResults: 1000})
		ok(t, err)
		if len(p.Experiments) != 2 {
			t.Fatalf("%d experiments, want Default and one", len(p.Experiments))
		}
		// The losers left no trace: the next experiment is usable.
		mkExp(t, s, "next")
		// Renames racing onto one name: one wins.
		var srcs []string
		for i := 0; i < goroutines; i++ {
			srcs = append(srcs, mkExp(t, s, fmt.Sprintf("src%02d", i)))
		}
		errs = race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.RenameExperiment(bg, srcs[i], "target")
		})
		w = oneWinner(t, "rename experiment", errs, tracking.BadRequest, "")
		if e, err := s.GetExperimentByName(bg, "target"); err != nil || e.ExperimentID != srcs[w] {
			t.Fatalf("target is %+v %v, winner %s", e, err, srcs[w])
		}
	})

	t.Run("ModelName", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		errs := race(hs, goroutines, func(i int, s tracking.Store) error {
			_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "same", Description: strconv.Itoa(i)})
			return err
		})
		w := oneWinner(t, "create registered model", errs, tracking.ResourceAlreadyExists, "Registered Model (name=same) already exists.")
		for _, h := range hs {
			m, err := h.GetRegisteredModel(bg, "same")
			ok(t, err)
			if m.Description != strconv.Itoa(w) {
				t.Fatalf("stored %+v, winner %d", m, w)
			}
		}
		// Renames racing onto one name: one wins.
		for i := 0; i < goroutines; i++ {
			mkModel(t, s, fmt.Sprintf("src%02d", i))
		}
		errs = race(hs, goroutines, func(i int, s tracking.Store) error {
			_, err := s.RenameRegisteredModel(bg, fmt.Sprintf("src%02d", i), "target")
			return err
		})
		w = oneWinner(t, "rename registered model", errs, tracking.ResourceAlreadyExists, "Registered Model (name=target) already exists.")
		if _, err := s.GetRegisteredModel(bg, fmt.Sprintf("src%02d", w)); !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			t.Fatalf("renamed model still under its old name: %v", err)
		}
	})

	t.Run("LogParam", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		run := mkRun(t, s, mkExp(t, s, "p"), "r", 0)
		errs := race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.LogParam(bg, run, tracking.Param{Key: "k", Value: strconv.Itoa(i)})
		})
		w := oneWinner(t, "log param", errs, tracking.InvalidParameterValue, "Changing param values is not allowed.")
		for _, h := range hs {
			r, err := h.GetRun(bg, run)
			ok(t, err)
			if len(r.Data.Params) != 1 || r.Data.Params[0] != (tracking.Param{Key: "k", Value: strconv.Itoa(w)}) {
				t.Fatalf("params %+v, winner %d", r.Data.Params, w)
			}
		}
		// The same value from everyone: all succeed, stored once.
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.LogParam(bg, run, tracking.Param{Key: "same", Value: "v"})
		}) {
			ok(t, err)
		}
		// Batches with conflicting values of one new key: one wins whole,
		// the others write nothing.
		errs = race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.LogBatch(bg, run, tracking.Batch{
				Params:  []tracking.Param{{Key: "b", Value: strconv.Itoa(i)}},
				Metrics: []tracking.Metric{{Key: "m", Value: float64(i), Timestamp: 1, Step: int64(i)}},
				Tags:    []tracking.Tag{{Key: "t" + strconv.Itoa(i), Value: "x"}},
			})
		})
		w = oneWinner(t, "log batch", errs, tracking.InvalidParameterValue, "Changing param values is not allowed.")
		r, err := s.GetRun(bg, run)
		ok(t, err)
		tm := tagMap(r.Data.Tags)
		for i := 0; i < goroutines; i++ {
			if _, has := tm["t"+strconv.Itoa(i)]; has != (i == w) {
				t.Fatalf("batch %d tag written=%v, winner %d", i, has, w)
			}
		}
		if h := history(t, s, run, "m"); len(h) != 1 || h[0].Step != int64(w) {
			t.Fatalf("history %+v, winner %d", h, w)
		}
		if tagMap(paramTags(r.Data.Params))["b"] != strconv.Itoa(w) || len(r.Data.Params) != 3 {
			t.Fatalf("params %+v", r.Data.Params)
		}
	})

	// Concurrent batches (which a backend may commit together) where
	// some conflict: each conflicting one fails alone with its own error,
	// and every other is written whole.
	t.Run("BatchConflictsIsolated", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		exp := mkExp(t, s, "g")
		id := mkRun(t, s, exp, "r", 0)
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "fixed", Value: "1"}))
		const n = 64
		errs := race(hs, n, func(i int, s tracking.Store) error {
			b := tracking.Batch{
				Metrics: []tracking.Metric{{Key: "m", Value: float64(i), Timestamp: int64(i), Step: int64(i)}},
				Params:  []tracking.Param{{Key: "p" + itoa(i), Value: "v"}},
			}
			if i%4 == 0 {
				b.Params = append(b.Params, tracking.Param{Key: "fixed", Value: "2"})
			}
			return s.LogBatch(bg, id, b)
		})
		r, _ := s.GetRun(bg, id)
		params := map[string]bool{}
		for _, p := range r.Data.Params {
			params[p.Key] = true
		}
		var hist []tracking.Metric
		ok(t, s.MetricHistory(bg, id, "m", 7, func(ms []tracking.Metric) error { hist = append(hist, ms...); return nil }))
		steps := map[int64]bool{}
		for _, m := range hist {
			steps[m.Step] = true
		}
		for i := 0; i < n; i++ {
			if i%4 == 0 {
				wantErr(t, errs[i], tracking.InvalidParameterValue, "")
				if !strings.Contains(errs[i].Error(), "'key': 'fixed'") {
					t.Fatal(errs[i])
				}
				if params["p"+itoa(i)] || steps[int64(i)] {
					t.Fatalf("batch %d partially written", i)
				}
			} else {
				ok(t, errs[i])
				if !params["p"+itoa(i)] || !steps[int64(i)] {
					t.Fatalf("batch %d lost", i)
				}
			}
		}
		if len(r.Data.Metrics) != 1 || r.Data.Metrics[0].Step != n-1 {
			t.Fatal(r.Data.Metrics)
		}
	})

	t.Run("ModelVersionNumbers", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		mkModel(t, s, "m")
		const n = 2 * goroutines
		versions := make([]string, n)
		for _, err := range race(hs, n, func(i int, s tracking.Store) error {
			mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/" + strconv.Itoa(i)})
			if err == nil {
				versions[i] = mv.Version
			}
			return err
		}) {
			ok(t, err)
		}
		got := make([]int, n)
		for i, v := range versions {
			x, err := strconv.Atoi(v)
			ok(t, err)
			got[i] = x
			// Each version carries its own request's source.
			mv, err := s.GetModelVersion(bg, "m", int64(x))
			ok(t, err)
			if mv.Source != "s3://b/"+strconv.Itoa(i) {
				t.Fatalf("version %d has source %q, want that of call %d", x, mv.Source, i)
			}
		}
		slices.Sort(got)
		for i, v := range got {
			if v != i+1 {
				t.Fatalf("version numbers %v, want 1..%d", got, n)
			}
		}
		mv, err := hs[len(hs)-1].CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s"})
		ok(t, err)
		if mv.Version != strconv.Itoa(n+1) {
			t.Fatalf("next version %s", mv.Version)
		}
		// Creating versions while deleting the highest: numbers are
		// never reused.
		seen := map[string]bool{}
		var mu sync.Mutex
		errs := race(hs, n, func(i int, s tracking.Store) error {
			if i%4 == 3 {
				err := s.DeleteModelVersion(bg, "m", int64(n+1))
				if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
					return nil
				}
				return err
			}
			mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s"})
			if err == nil {
				mu.Lock()
				seen[mv.Version] = true
				mu.Unlock()
			}
			return err
		})
		for _, err := range errs {
			ok(t, err)
		}
		if seen[strconv.Itoa(n+1)] || len(seen) != n-n/4 {
			t.Fatalf("versions %v", seen)
		}
		for v := n + 2; v < n+2+len(seen); v++ {
			if !seen[strconv.Itoa(v)] {
				t.Fatalf("version %d skipped: %v", v, seen)
			}
		}
	})

	// Deleting an experiment soft-deletes its runs in the same
	// transaction: a reader sees all runs active or all deleted, never a
	// mix, and a run created while the experiment is being deleted is
	// either refused or deleted with it.
	t.Run("DeleteRestoreCascadeAtomic", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		exp := mkExp(t, s, "c")
		const runs = 30
		for i := 0; i < runs; i++ {
			mkRun(t, s, exp, "r"+itoa(i), int64(i))
		}
		reader := hs[len(hs)-1]
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var reads atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := reader.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, ViewType: tracking.ActiveOnly, MaxResults: 1000})
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(p.Runs); n != 0 && n != runs {
					t.Errorf("a reader saw %d of %d runs active", n, runs)
					return
				}
				reads.Add(1)
			}
		}()
		for round := 0; round < 8; round++ {
			ok(t, s.DeleteExperiment(bg, exp))
			ok(t, s.RestoreExperiment(bg, exp))
		}
		for reads.Load() < 4 && !t.Failed() {
			Tick()
		}
		close(stop)
		wg.Wait()

		// Creates racing a delete.
		for round := 0; round < 4; round++ {
			var created []string
			var mu sync.Mutex
			errs := race(hs, goroutines+1, func(i int, h tracking.Store) error {
				if i == goroutines {
					return h.DeleteExperiment(bg, exp)
				}
				r, err := h.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, RunName: "late"})
				if tracking.IsCode(err, tracking.InvalidParameterValue) {
					return nil // the experiment was already deleted
				}
				if err == nil {
					mu.Lock()
					created = append(created, r.Info.RunID)
					mu.Unlock()
				}
				return err
			})
			for _, err := range errs {
				ok(t, err)
			}
			for _, id := range created {
				if lc := lifecycle(t, s, id); lc != tracking.LifecycleDeleted {
					t.Fatalf("round %d: run %s created during the delete is %s in a deleted experiment", round, id, lc)
				}
			}
			p, err := s.SearchRuns(bg, tracking.RunQuery{ExperimentIDs: []string{exp}, ViewType: tracking.ActiveOnly, MaxResults: 1000})
			ok(t, err)
			if len(p.Runs) != 0 {
				t.Fatalf("round %d: %d active runs in a deleted experiment", round, len(p.Runs))
			}
			ok(t, s.RestoreExperiment(bg, exp))
		}
	})

	t.Run("MetricDuplicates", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		run := mkRun(t, s, mkExp(t, s, "m"), "r", 0)
		// Every caller logs the same 50 points plus one of its own.
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			ms := make([]tracking.Metric, 0, 51)
			for j := 0; j < 50; j++ {
				ms = append(ms, tracking.Metric{Key: "loss", Value: float64(j % 7), Timestamp: int64(j / 3), Step: int64(j)})
			}
			ms = append(ms, tracking.Metric{Key: "loss", Value: float64(i), Timestamp: 1000, Step: 1000})
			return s.LogBatch(bg, run, tracking.Batch{Metrics: ms})
		}) {
			ok(t, err)
		}
		h := history(t, s, run, "loss")
		if len(h) != 50+goroutines {
			t.Fatalf("%d points, want %d", len(h), 50+goroutines)
		}
		for i := 1; i < len(h); i++ {
			a, b := h[i-1], h[i]
			if a.Timestamp > b.Timestamp || (a.Timestamp == b.Timestamp && (a.Step > b.Step || (a.Step == b.Step && a.Value >= b.Value))) {
				t.Fatalf("history out of order or duplicated at %d: %+v %+v", i, a, b)
			}
		}
		for _, h := range hs {
			if l := latest(t, h, run, "loss"); l.Step != 1000 || l.Value != goroutines-1 {
				t.Fatalf("latest %+v", l)
			}
		}
	})

	// Read-modify-write updates of one record from many callers lose
	// nothing: the run's model history tag, a logged model's
	// mlflow.modelVersions tag.
	t.Run("NoLostUpdates", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		exp := mkExp(t, s, "u")
		run := mkRun(t, s, exp, "r", 0)
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.AppendModelHistory(bg, run, []byte(fmt.Sprintf(`{"i": %d}`, i)))
		}) {
			ok(t, err)
		}
		r, err := s.GetRun(bg, run)
		ok(t, err)
		hist := tagMap(r.Data.Tags)[tracking.TagLogModelHistory]
		for i := 0; i < goroutines; i++ {
			if !strings.Contains(hist, fmt.Sprintf(`{"i": %d}`, i)) {
				t.Fatalf("model history lost entry %d: %s", i, hist)
			}
		}
		m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "lm"})
		ok(t, err)
		mkModel(t, s, "reg")
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "reg", Source: "models:/" + m.Info.ModelID, ModelID: m.Info.ModelID})
			return err
		}) {
			ok(t, err)
		}
		lm, err := s.GetLoggedModel(bg, m.Info.ModelID)
		ok(t, err)
		tag, _ := lm.Tag(tracking.TagModelVersions)
		for v := 1; v <= goroutines; v++ {
			if !strings.Contains(tag, fmt.Sprintf(`{"name": "reg", "version": %d}`, v)) {
				t.Fatalf("mlflow.modelVersions lost version %d: %s", v, tag)
			}
		}
		// One dataset logged by many runs at once is one dataset, and
		// every run has it as an input.
		var runs []string
		for i := 0; i < goroutines; i++ {
			runs = append(runs, mkRun(t, s, exp, "in"+itoa(i), int64(i)))
		}
		ds := tracking.Dataset{Name: "train", Digest: "d1", SourceType: "code", Source: "{}"}
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			return s.LogInputs(bg, runs[i], []tracking.DatasetInput{{Dataset: ds}}, nil)
		}) {
			ok(t, err)
		}
		for _, id := range runs {
			r, err := s.GetRun(bg, id)
			ok(t, err)
			if len(r.Inputs.DatasetInputs) != 1 || r.Inputs.DatasetInputs[0].Dataset != ds {
				t.Fatalf("inputs %+v", r.Inputs)
			}
		}
	})

	// Transitions to one stage with archive_existing_versions from many
	// callers leave exactly one version in that stage.
	t.Run("StageArchiveExisting", func(t *testing.T) {
		s := open(t, f)
		hs := handles(t, f, s)
		mkModel(t, s, "m")
		for i := 0; i < goroutines; i++ {
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s"})
			ok(t, err)
		}
		for _, err := range race(hs, goroutines, func(i int, s tracking.Store) error {
			_, err := s.TransitionModelVersionStage(bg, "m", int64(i+1), tracking.StageProduction, true)
			return err
		}) {
			ok(t, err)
		}
		p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{MaxResults: 1000})
		ok(t, err)
		prod := 0
		for _, mv := range p.Versions {
			switch mv.CurrentStage {
			case tracking.StageProduction:
				prod++
			case tracking.StageArchived:
			default:
				t.Fatalf("version %s in %s", mv.Version, mv.CurrentStage)
			}
		}
		if prod != 1 {
			t.Fatalf("%d versions in Production: %v", prod, versionsOf(p.Versions))
		}
	})
}
