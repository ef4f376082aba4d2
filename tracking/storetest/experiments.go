package storetest

import (
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func testExperiments(t *testing.T, f Factory) {
	t.Run("Default", func(t *testing.T) {
		s := open(t, f)
		ok(t, s.EnsureDefaultExperiment(bg, "other:/")) // a no-op now
		d, err := s.GetExperiment(bg, tracking.DefaultExperimentID)
		ok(t, err)
		if d.ArtifactLocation != "mlflow-artifacts:/0" || d.Name != "Default" || d.LifecycleStage != tracking.LifecycleActive {
			t.Fatalf("default: %+v", d)
		}
		byName, err := s.GetExperimentByName(bg, "Default")
		ok(t, err)
		if byName.ExperimentID != "0" {
			t.Fatalf("by name: %+v", byName)
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		s := open(t, f)
		within := nowWindow(t)
		id, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "alpha", DefaultArtifactRoot: root,
			Tags: []tracking.Tag{{Key: "team", Value: "ml"}, {Key: "p", Value: "1"}}})
		ok(t, err)
		if id != "1" {
			t.Fatalf("first id %s", id)
		}
		id2, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "gamma", ArtifactLocation: "s3://b/p", DefaultArtifactRoot: root})
		ok(t, err)
		if id2 == id || id2 == "0" {
			t.Fatalf("second id %s", id2)
		}
		e, err := s.GetExperiment(bg, id)
		ok(t, err)
		if e.ArtifactLocation != "mlflow-artifacts:/1" || e.LifecycleStage != "active" || len(e.Tags) != 2 || e.CreationTime != e.LastUpdateTime {
			t.Fatalf("%+v", e)
		}
		within("creation_time", e.CreationTime)
		e2, _ := s.GetExperiment(bg, id2)
		if e2.ArtifactLocation != "s3://b/p" {
			t.Fatalf("%+v", e2)
		}
		_, err = s.CreateExperiment(bg, tracking.CreateExperiment{Name: "alpha"})
		wantErr(t, err, tracking.ResourceAlreadyExists, "Experiment(name=alpha) already exists.")
		_, err = s.CreateExperiment(bg, tracking.CreateExperiment{Name: "ALPHA", DefaultArtifactRoot: root})
		ok(t, err) // names are case-sensitive
		_, err = s.GetExperiment(bg, "999")
		wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=999 exists")
		_, err = s.GetExperiment(bg, "abc")
		wantErr(t, err, tracking.ResourceDoesNotExist, "No Experiment with id=abc exists")
		_, err = s.GetExperimentByName(bg, "nope")
		wantErr(t, err, tracking.ResourceDoesNotExist, "Could not find experiment with name 'nope'")
		byName, err := s.GetExperimentByName(bg, "gamma")
		ok(t, err)
		if byName.ExperimentID != id2 {
			t.Fatal(byName)
		}

		// Tags: upsert, no last_update change; delete.
		Tick()
		ok(t, s.SetExperimentTag(bg, id, tracking.Tag{Key: "team", Value: "platform"}))
		e, _ = s.GetExperiment(bg, id)
		if tagMap(e.Tags)["team"] != "platform" || e.LastUpdateTime != e.CreationTime {
			t.Fatalf("%+v", e)
		}
		ok(t, s.DeleteExperimentTag(bg, id, "p"))
		wantErr(t, s.DeleteExperimentTag(bg, id, "p"), tracking.ResourceDoesNotExist, "No tag with name: p in experiment with id "+id)
		wantErr(t, s.SetExperimentTag(bg, "77", tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "No Experiment with id=77 exists")

		// Rename.
		Tick()
		ok(t, s.RenameExperiment(bg, id, "alpha2"))
		e, _ = s.GetExperiment(bg, id)
		if e.Name != "alpha2" || e.LastUpdateTime <= e.CreationTime {
			t.Fatalf("%+v", e)
		}
		_, err = s.GetExperimentByName(bg, "alpha")
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		ok(t, s.RenameExperiment(bg, id, "alpha2")) // same name is fine
		wantErr(t, s.RenameExperiment(bg, id, "gamma"), tracking.BadRequest, "")
		wantErr(t, s.RenameExperiment(bg, "999", "x"), tracking.ResourceDoesNotExist, "")
		mkExp(t, s, "alpha") // old name is free again

		// Delete / restore.
		before := e.LastUpdateTime
		Tick()
		ok(t, s.DeleteExperiment(bg, id2))
		e2, _ = s.GetExperiment(bg, id2)
		if e2.LifecycleStage != "deleted" || e2.LastUpdateTime <= before {
			t.Fatalf("%+v", e2)
		}
		byName, err = s.GetExperimentByName(bg, "gamma")
		ok(t, err)
		if byName.LifecycleStage != "deleted" {
			t.Fatal(byName)
		}
		_, err = s.CreateExperiment(bg, tracking.CreateExperiment{Name: "gamma"})
		wantErr(t, err, tracking.ResourceAlreadyExists, "")
		wantErr(t, s.DeleteExperiment(bg, id2), tracking.ResourceDoesNotExist, "No Experiment with id="+id2+" exists")
		wantErr(t, s.RenameExperiment(bg, id2, "zzz"), tracking.InvalidState, "Cannot rename a non-active experiment.")
		wantErr(t, s.SetExperimentTag(bg, id2, tracking.Tag{Key: "k"}), tracking.InvalidParameterValue,
			"The experiment "+id2+" must be in the 'active' state. Current state is deleted.")
		wantErr(t, s.DeleteExperimentTag(bg, id2, "k"), tracking.InvalidParameterValue, "")
		wantErr(t, s.RestoreExperiment(bg, id), tracking.ResourceDoesNotExist, "No Experiment with id="+id+" exists")
		ok(t, s.RestoreExperiment(bg, id2))
		e2, _ = s.GetExperiment(bg, id2)
		if e2.LifecycleStage != "active" {
			t.Fatal(e2)
		}
		wantErr(t, s.DeleteExperiment(bg, "x"), tracking.ResourceDoesNotExist, "No Experiment with id=x exists")
		wantErr(t, s.RestoreExperiment(bg, "999"), tracking.ResourceDoesNotExist, "")
	})

	t.Run("DeleteRestoreCascade", func(t *testing.T) {
		s := open(t, f)
		e1, e2 := mkExp(t, s, "cascade"), mkExp(t, s, "other")
		c0, c1, c2 := mkRun(t, s, e1, "c0", 0), mkRun(t, s, e1, "c1", 1), mkRun(t, s, e1, "c2", 2)
		mkRun(t, s, e2, "o", 9)
		ok(t, s.DeleteRun(bg, c0))
		ok(t, s.DeleteExperiment(bg, e1))
		for _, id := range []string{c0, c1, c2} {
			if lifecycle(t, s, id) != "deleted" {
				t.Fatal("not cascaded")
			}
		}
		if lifecycle(t, s, mkRunIn(t, s, e2)) != "active" {
			t.Fatal("other experiment's runs touched")
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.ActiveOnly}); len(ids) != 0 {
			t.Fatal(ids)
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.DeletedOnly}); strings.Join(ids, ",") != "c2,c1,c0" {
			t.Fatal(ids)
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1, e2}, ViewType: tracking.AllViews}); strings.Join(ids, ",") != "o,x,c2,c1,c0" {
			t.Fatal(ids)
		}
		wantErr(t, s.LogParam(bg, c1, tracking.Param{Key: "p", Value: "v"}), tracking.InvalidParameterValue,
			"The run "+c1+" must be in the 'active' state. Current state is deleted.")
		ok(t, s.RestoreRun(bg, c1)) // allowed while the experiment is deleted
		if lifecycle(t, s, c1) != "active" {
			t.Fatal("run not restored")
		}
		ok(t, s.RestoreExperiment(bg, e1))
		for _, id := range []string{c0, c1, c2} {
			if lifecycle(t, s, id) != "active" {
				t.Fatal("individually deleted run not restored")
			}
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e1}, ViewType: tracking.DeletedOnly}); len(ids) != 0 {
			t.Fatal(ids)
		}
		// Unknown and empty experiment lists.
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{"999"}, ViewType: tracking.AllViews}); len(ids) != 0 {
			t.Fatal(ids)
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{ExperimentIDs: []string{e2, "999", "abc", e2}, ViewType: tracking.AllViews}); strings.Join(ids, ",") != "o,x" {
			t.Fatal(ids)
		}
		if ids, _ := searchIDs(t, s, tracking.RunQuery{}); len(ids) != 0 {
			t.Fatal(ids)
		}
	})

	t.Run("Search", func(t *testing.T) {
		s := open(t, f)
		for _, n := range []string{"Alpha", "alpha-2", "beta", "gamma"} {
			Tick()
			_, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: n, DefaultArtifactRoot: root, Tags: []tracking.Tag{{Key: "team", Value: n[:1]}}})
			ok(t, err)
		}
		gamma, err := s.GetExperimentByName(bg, "gamma")
		ok(t, err)
		ok(t, s.DeleteExperiment(bg, gamma.ExperimentID))
		names := func(q tracking.ExperimentQuery) ([]string, string) {
			t.Helper()
			p, err := s.SearchExperiments(bg, q)
			ok(t, err)
			var out []string
			for _, e := range p.Experiments {
				out = append(out, e.Name)
			}
			return out, p.NextPageToken
		}
		// Default: creation_time DESC; Default (created first) last.
		if got, _ := names(tracking.ExperimentQuery{MaxResults: 100}); strings.Join(got, ",") != "beta,alpha-2,Alpha,Default" {
			t.Fatal(got)
		}
		if got, _ := names(tracking.ExperimentQuery{MaxResults: 100, ViewType: tracking.DeletedOnly}); strings.Join(got, ",") != "gamma" {
			t.Fatal(got)
		}
		if got, _ := names(tracking.ExperimentQuery{MaxResults: 100, ViewType: tracking.AllViews}); len(got) != 5 {
			t.Fatal(got)
		}
		f, err := search.ParseExperimentFilter("name ILIKE 'alpha%'")
		ok(t, err)
		ob, err := search.ParseExperimentOrderBy([]string{"name ASC"})
		ok(t, err)
		got, next := names(tracking.ExperimentQuery{Filter: f, OrderBy: ob, MaxResults: 1})
		if strings.Join(got, ",") != "Alpha" || next == "" {
			t.Fatal(got)
		}
		got, next = names(tracking.ExperimentQuery{Filter: f, OrderBy: ob, MaxResults: 1, PageToken: next})
		if strings.Join(got, ",") != "alpha-2" || next != "" {
			t.Fatal(got, next)
		}
		f, _ = search.ParseExperimentFilter("name LIKE 'alpha%'")
		if got, _ = names(tracking.ExperimentQuery{Filter: f, MaxResults: 10}); strings.Join(got, ",") != "alpha-2" {
			t.Fatal("LIKE is case-sensitive:", got)
		}
		f, _ = search.ParseExperimentFilter("tags.team = 'b'")
		if got, _ = names(tracking.ExperimentQuery{Filter: f, MaxResults: 10}); strings.Join(got, ",") != "beta" {
			t.Fatal(got)
		}
		f, _ = search.ParseExperimentFilter("tags.team != 'b'")
		if got, _ = names(tracking.ExperimentQuery{Filter: f, MaxResults: 10}); strings.Join(got, ",") != "alpha-2,Alpha" {
			t.Fatal("!= on a tag needs the tag:", got)
		}
		ob, _ = search.ParseExperimentOrderBy([]string{"creation_time ASC"})
		if got, _ = names(tracking.ExperimentQuery{OrderBy: ob, MaxResults: 10}); strings.Join(got, ",") != "Default,Alpha,alpha-2,beta" {
			t.Fatal(got)
		}
		_, err = s.SearchExperiments(bg, tracking.ExperimentQuery{MaxResults: 10, PageToken: "bad"})
		wantBadToken(t, "experiments", err)
	})
}

// mkRunIn creates an unnamed-by-the-caller run "x" in exp.
func mkRunIn(t *testing.T, s tracking.Store, exp string) string {
	t.Helper()
	return mkRun(t, s, exp, "x", 8)
}
