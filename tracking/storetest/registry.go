package storetest

import (
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func testRegistry(t *testing.T, f Factory) {
	t.Run("RegisteredModels", func(t *testing.T) {
		s := open(t, f)
		within := nowWindow(t)
		m, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m", Description: "d",
			Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
		ok(t, err)
		if m.Name != "m" || m.Description != "d" || len(m.Tags) != 1 || m.LastUpdatedTimestamp != m.CreationTimestamp {
			t.Fatalf("created %+v", m)
		}
		within("creation_timestamp", m.CreationTimestamp)
		_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m"})
		wantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=m) already exists.")
		_, err = s.GetRegisteredModel(bg, "M")
		wantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=M not found")

		mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/1", RunID: "run1", RunLink: "l",
			Description: "vd", UserID: "alice", Tags: []tracking.Tag{{Key: "t", Value: "1"}}})
		ok(t, err)
		if mv.Version != "1" || mv.Source != "s3://b/1" || mv.RunID != "run1" || mv.RunLink != "l" || mv.Description != "vd" ||
			mv.UserID != "alice" || mv.CurrentStage != tracking.StageNone || mv.Status != tracking.ModelVersionStatusReady ||
			mv.StorageLocation != "s3://b/1" || tagMap(mv.Tags)["t"] != "1" {
			t.Fatalf("version %+v", mv)
		}
		within("version creation_timestamp", mv.CreationTimestamp)
		ok(t, s.SetRegisteredModelAlias(bg, "m", "champ", 1))
		ok(t, s.SetModelVersionTag(bg, "m", 1, tracking.Tag{Key: "vk", Value: "vv"}))
		ok(t, s.SetRegisteredModelTag(bg, "m", tracking.Tag{Key: "k", Value: "v2"}))
		got, err := s.GetRegisteredModel(bg, "m")
		ok(t, err)
		if tagMap(got.Tags)["k"] != "v2" || len(got.Aliases) != 1 || got.Aliases[0] != (tracking.RegisteredModelAlias{Alias: "champ", Version: "1"}) ||
			len(got.LatestVersions) != 1 || got.LatestVersions[0].Version != "1" {
			t.Fatalf("get %+v", got)
		}
		wantErr(t, s.SetRegisteredModelTag(bg, "nope", tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "")

		// Rename moves versions, tags and aliases.
		_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "other"})
		ok(t, err)
		_, err = s.RenameRegisteredModel(bg, "m", "other")
		wantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=other) already exists.")
		_, err = s.RenameRegisteredModel(bg, "nope", "x")
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		m, err = s.RenameRegisteredModel(bg, "m", "m2")
		ok(t, err)
		if m.Name != "m2" || len(m.Tags) != 1 || len(m.Aliases) != 1 || len(m.LatestVersions) != 1 || m.LatestVersions[0].Name != "m2" {
			t.Fatalf("renamed %+v", m)
		}
		mv, err = s.GetModelVersionByAlias(bg, "m2", "champ")
		ok(t, err)
		if mv.Name != "m2" || mv.Version != "1" || len(mv.Tags) != 2 || !slices.Equal(mv.Aliases, []string{"champ"}) {
			t.Fatalf("by alias %+v", mv)
		}
		_, err = s.GetRegisteredModel(bg, "m")
		wantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")
		_, err = s.GetModelVersion(bg, "m", 1)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")

		Tick()
		m, err = s.UpdateRegisteredModel(bg, "m2", "")
		ok(t, err)
		if m.Description != "" || m.LastUpdatedTimestamp <= m.CreationTimestamp {
			t.Fatalf("updated %+v", m)
		}
		_, err = s.UpdateRegisteredModel(bg, "nope", "")
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		ok(t, s.DeleteRegisteredModelTag(bg, "m2", "k"))
		ok(t, s.DeleteRegisteredModelTag(bg, "m2", "absent"))
		wantErr(t, s.DeleteRegisteredModelTag(bg, "nope", "k"), tracking.ResourceDoesNotExist, "")
		m, _ = s.GetRegisteredModel(bg, "m2")
		if len(m.Tags) != 0 {
			t.Fatalf("tags %+v", m.Tags)
		}

		// Delete cascades; a new model of the same name starts at version 1.
		ok(t, s.DeleteRegisteredModel(bg, "m2"))
		wantErr(t, s.DeleteRegisteredModel(bg, "m2"), tracking.ResourceDoesNotExist, "")
		_, err = s.GetModelVersion(bg, "m2", 1)
		wantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m2, version=1) not found")
		_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m2"})
		ok(t, err)
		mv, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m2", Source: "s3://b/2"})
		ok(t, err)
		if mv.Version != "1" || len(mv.Tags) != 0 || len(mv.Aliases) != 0 {
			t.Fatalf("fresh version %+v", mv)
		}
		_, err = s.GetModelVersionByAlias(bg, "m2", "champ")
		wantErr(t, err, tracking.InvalidParameterValue, "")
	})

	t.Run("ModelVersions", func(t *testing.T) {
		s := open(t, f)
		_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
		wantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")
		mkModel(t, s, "m")
		for i := 0; i < 4; i++ {
			_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
			ok(t, err)
		}
		_, err = s.TransitionModelVersionStage(bg, "m", 1, tracking.StageProduction, false)
		ok(t, err)
		_, err = s.TransitionModelVersionStage(bg, "m", 2, tracking.StageProduction, false)
		ok(t, err)
		mv, err := s.TransitionModelVersionStage(bg, "m", 3, tracking.StageProduction, true)
		ok(t, err)
		if mv.CurrentStage != tracking.StageProduction || mv.Version != "3" {
			t.Fatalf("transitioned %+v", mv)
		}
		_, err = s.TransitionModelVersionStage(bg, "m", 4, tracking.StageArchived, true)
		wantErr(t, err, tracking.InvalidParameterValue, "")
		_, err = s.TransitionModelVersionStage(bg, "m", 9, tracking.StageStaging, false)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		latest, err := s.GetLatestVersions(bg, "m", nil)
		ok(t, err)
		if got, want := versionsOf(latest), []string{"m/2:Archived", "m/3:Production", "m/4:None"}; !slices.Equal(got, want) {
			t.Fatalf("latest %v, want %v", got, want)
		}
		latest, err = s.GetLatestVersions(bg, "m", []string{tracking.StageProduction})
		ok(t, err)
		if got := versionsOf(latest); !slices.Equal(got, []string{"m/3:Production"}) {
			t.Fatalf("latest production %v", got)
		}
		_, err = s.GetLatestVersions(bg, "nope", nil)
		wantErr(t, err, tracking.ResourceDoesNotExist, "")

		// Numbers are never reused, even after deleting the highest.
		ok(t, s.DeleteModelVersion(bg, "m", 4))
		wantErr(t, s.DeleteModelVersion(bg, "m", 4), tracking.ResourceDoesNotExist, "")
		_, err = s.GetModelVersion(bg, "m", 4)
		wantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m, version=4) not found")
		mv, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
		ok(t, err)
		if mv.Version != "5" {
			t.Fatalf("version after delete %s", mv.Version)
		}

		// Aliases: "latest" resolves without being stored; a dangling alias is
		// not found.
		mv, err = s.GetModelVersionByAlias(bg, "m", "LATEST")
		ok(t, err)
		if mv.Version != "5" {
			t.Fatalf("latest alias %s", mv.Version)
		}
		wantErr(t, s.SetRegisteredModelAlias(bg, "m", "a", 4), tracking.ResourceDoesNotExist, "")
		ok(t, s.SetRegisteredModelAlias(bg, "m", "a", 5))
		ok(t, s.SetRegisteredModelAlias(bg, "m", "a", 3)) // moves
		mv, err = s.GetModelVersionByAlias(bg, "m", "a")
		ok(t, err)
		if mv.Version != "3" || !slices.Equal(mv.Aliases, []string{"a"}) {
			t.Fatalf("moved alias %+v", mv)
		}
		if mv, _ = s.GetModelVersion(bg, "m", 5); len(mv.Aliases) != 0 {
			t.Fatalf("alias left on the old version %+v", mv)
		}
		ok(t, s.SetRegisteredModelAlias(bg, "m", "b", 5))
		ok(t, s.DeleteModelVersion(bg, "m", 5))
		_, err = s.GetModelVersionByAlias(bg, "m", "b")
		wantErr(t, err, tracking.InvalidParameterValue, "Registered model alias b not found.")
		ok(t, s.DeleteRegisteredModelAlias(bg, "m", "a"))
		ok(t, s.DeleteRegisteredModelAlias(bg, "m", "a"))
		_, err = s.GetModelVersionByAlias(bg, "m", "a")
		wantErr(t, err, tracking.InvalidParameterValue, "Registered model alias a not found.")

		Tick()
		mv, err = s.UpdateModelVersion(bg, "m", 1, "desc")
		ok(t, err)
		if mv.Description != "desc" || mv.CurrentStage != tracking.StageArchived || mv.LastUpdatedTimestamp <= mv.CreationTimestamp {
			t.Fatalf("updated %+v", mv)
		}
		_, err = s.UpdateModelVersion(bg, "m", 99, "desc")
		wantErr(t, err, tracking.ResourceDoesNotExist, "")
		ok(t, s.SetModelVersionTag(bg, "m", 1, tracking.Tag{Key: "k", Value: "v"}))
		ok(t, s.DeleteModelVersionTag(bg, "m", 1, "absent"))
		ok(t, s.DeleteModelVersionTag(bg, "m", 1, "k"))
		if mv, _ = s.GetModelVersion(bg, "m", 1); len(mv.Tags) != 0 || mv.Description != "desc" {
			t.Fatalf("tags %+v", mv)
		}
		wantErr(t, s.SetModelVersionTag(bg, "m", 99, tracking.Tag{Key: "k"}), tracking.ResourceDoesNotExist, "")
	})

	t.Run("Search", func(t *testing.T) {
		s := open(t, f)
		for _, n := range []string{"b", "a", "C", "prompt"} {
			Tick()
			var tags []tracking.Tag
			if n == "prompt" {
				tags = []tracking.Tag{{Key: tracking.TagIsPrompt, Value: "true"}}
			}
			_, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: n, Tags: tags})
			ok(t, err)
			_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: n, Source: "s3://b/" + n, RunID: "r" + n, Tags: tags})
			ok(t, err)
		}
		names := func(q tracking.RegisteredModelQuery) ([]string, string) {
			t.Helper()
			p, err := s.SearchRegisteredModels(bg, q)
			ok(t, err)
			var out []string
			for _, m := range p.Models {
				out = append(out, m.Name)
			}
			return out, p.NextPageToken
		}
		got, tok := names(tracking.RegisteredModelQuery{MaxResults: 2})
		if !slices.Equal(got, []string{"C", "a"}) || tok == "" {
			t.Fatalf("page 1 %v %q", got, tok)
		}
		got, tok = names(tracking.RegisteredModelQuery{MaxResults: 2, PageToken: tok})
		if !slices.Equal(got, []string{"b"}) || tok != "" {
			t.Fatalf("page 2 %v %q", got, tok)
		}
		f, err := search.ParseRegisteredModelFilter("tags.`mlflow.prompt.is_prompt` = 'true'")
		ok(t, err)
		if got, _ := names(tracking.RegisteredModelQuery{Filter: f, MaxResults: 10}); !slices.Equal(got, []string{"prompt"}) {
			t.Fatalf("prompts %v", got)
		}
		f, err = search.ParseRegisteredModelFilter("name ILIKE 'c%'")
		ok(t, err)
		if got, _ := names(tracking.RegisteredModelQuery{Filter: f, MaxResults: 10}); !slices.Equal(got, []string{"C"}) {
			t.Fatalf("ILIKE %v", got)
		}
		f, err = search.ParseRegisteredModelFilter("name LIKE 'c%'")
		ok(t, err)
		if got, _ := names(tracking.RegisteredModelQuery{Filter: f, MaxResults: 10}); len(got) != 0 {
			t.Fatalf("LIKE %v", got)
		}
		o, err := search.ParseRegisteredModelOrderBy([]string{"timestamp DESC"})
		ok(t, err)
		if got, _ := names(tracking.RegisteredModelQuery{OrderBy: o, MaxResults: 10}); !slices.Equal(got, []string{"C", "a", "b"}) {
			t.Fatalf("by timestamp %v", got)
		}
		o, err = search.ParseRegisteredModelOrderBy([]string{"name DESC"})
		ok(t, err)
		if got, _ := names(tracking.RegisteredModelQuery{OrderBy: o, MaxResults: 10}); !slices.Equal(got, []string{"b", "a", "C"}) {
			t.Fatalf("by name DESC %v", got)
		}

		mf, err := search.ParseModelVersionFilter("run_id IN ('ra', 'rb')")
		ok(t, err)
		p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 10})
		ok(t, err)
		if got := versionsOf(p.Versions); !slices.Equal(got, []string{"a/1:None", "b/1:None"}) {
			t.Fatalf("versions %v", got)
		}
		mf, err = search.ParseModelVersionFilter("name = 'C'")
		ok(t, err)
		p, err = s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 10})
		ok(t, err)
		if got := versionsOf(p.Versions); !slices.Equal(got, []string{"C/1:None"}) {
			t.Fatalf("versions %v", got)
		}
		_, err = s.SearchModelVersions(bg, tracking.ModelVersionQuery{PageToken: "bad!", MaxResults: 10})
		wantBadToken(t, "model versions", err)
		_, err = s.SearchRegisteredModels(bg, tracking.RegisteredModelQuery{PageToken: "bad!", MaxResults: 10})
		wantBadToken(t, "registered models", err)
	})

	t.Run("StorageLocation", func(t *testing.T) {
		s := open(t, f)
		mkModel(t, s, "m")
		_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b", StorageLocation: "s3://elsewhere"})
		ok(t, err)
		mv, err := s.GetModelVersion(bg, "m", 1)
		ok(t, err)
		if mv.StorageLocation != "s3://elsewhere" || mv.Source != "s3://b" {
			t.Fatalf("stored %+v", mv)
		}
	})
}
