package boltstore

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

func versionsOf(mvs []*tracking.ModelVersion) []string {
	out := make([]string, len(mvs))
	for i, mv := range mvs {
		out[i] = mv.Name + "/" + mv.Version + ":" + mv.CurrentStage
	}
	return out
}

func TestRegisteredModels(t *testing.T) {
	s, _ := openTest(t)
	m, err := s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m", Description: "d",
		Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
	ok(t, err)
	if m.Name != "m" || m.Description != "d" || len(m.Tags) != 1 || m.CreationTimestamp == 0 {
		t.Fatalf("created %+v", m)
	}
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m"})
	wantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=m) already exists.")

	_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/1"})
	ok(t, err)
	ok(t, s.SetRegisteredModelAlias(bg, "m", "champ", 1))
	ok(t, s.SetModelVersionTag(bg, "m", 1, tracking.Tag{Key: "vk", Value: "vv"}))

	// Rename moves versions, tags and aliases.
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "other"})
	ok(t, err)
	_, err = s.RenameRegisteredModel(bg, "m", "other")
	wantErr(t, err, tracking.ResourceAlreadyExists, "Registered Model (name=other) already exists.")
	m, err = s.RenameRegisteredModel(bg, "m", "m2")
	ok(t, err)
	if m.Name != "m2" || len(m.Tags) != 1 || len(m.Aliases) != 1 || len(m.LatestVersions) != 1 {
		t.Fatalf("renamed %+v", m)
	}
	mv, err := s.GetModelVersionByAlias(bg, "m2", "champ")
	ok(t, err)
	if mv.Name != "m2" || mv.Version != "1" || len(mv.Tags) != 1 || !slices.Equal(mv.Aliases, []string{"champ"}) {
		t.Fatalf("by alias %+v", mv)
	}
	_, err = s.GetRegisteredModel(bg, "m")
	wantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")

	m, err = s.UpdateRegisteredModel(bg, "m2", "")
	ok(t, err)
	if m.Description != "" {
		t.Fatalf("description %q", m.Description)
	}
	ok(t, s.DeleteRegisteredModelTag(bg, "m2", "k"))
	ok(t, s.DeleteRegisteredModelTag(bg, "m2", "absent"))
	wantErr(t, s.DeleteRegisteredModelTag(bg, "nope", "k"), tracking.ResourceDoesNotExist, "")

	// Delete cascades; a new model of the same name starts at version 1.
	ok(t, s.DeleteRegisteredModel(bg, "m2"))
	_, err = s.GetModelVersion(bg, "m2", 1)
	wantErr(t, err, tracking.ResourceDoesNotExist, "Model Version (name=m2, version=1) not found")
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m2"})
	ok(t, err)
	mv, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m2", Source: "s3://b/2"})
	ok(t, err)
	if mv.Version != "1" || len(mv.Tags) != 0 || len(mv.Aliases) != 0 {
		t.Fatalf("fresh version %+v", mv)
	}
}

func TestModelVersionsLifecycle(t *testing.T) {
	s, _ := openTest(t)
	_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
	wantErr(t, err, tracking.ResourceDoesNotExist, "Registered Model with name=m not found")
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m"})
	ok(t, err)
	for i := 0; i < 4; i++ {
		_, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
		ok(t, err)
	}
	_, err = s.TransitionModelVersionStage(bg, "m", 1, tracking.StageProduction, false)
	ok(t, err)
	_, err = s.TransitionModelVersionStage(bg, "m", 2, tracking.StageProduction, false)
	ok(t, err)
	_, err = s.TransitionModelVersionStage(bg, "m", 3, tracking.StageProduction, true)
	ok(t, err)
	_, err = s.TransitionModelVersionStage(bg, "m", 4, tracking.StageArchived, true)
	wantErr(t, err, tracking.InvalidParameterValue, "")
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

	// Numbers are never reused, even after deleting the highest.
	ok(t, s.DeleteModelVersion(bg, "m", 4))
	wantErr(t, s.DeleteModelVersion(bg, "m", 4), tracking.ResourceDoesNotExist, "")
	mv, err := s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b/x"})
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
	ok(t, s.DeleteModelVersion(bg, "m", 5))
	_, err = s.GetModelVersionByAlias(bg, "m", "a")
	wantErr(t, err, tracking.InvalidParameterValue, "Registered model alias a not found.")
	ok(t, s.DeleteRegisteredModelAlias(bg, "m", "a"))
	ok(t, s.DeleteRegisteredModelAlias(bg, "m", "a"))

	mv, err = s.UpdateModelVersion(bg, "m", 1, "desc")
	ok(t, err)
	if mv.Description != "desc" || mv.CurrentStage != tracking.StageArchived {
		t.Fatalf("updated %+v", mv)
	}
	ok(t, s.DeleteModelVersionTag(bg, "m", 1, "absent"))
}

func TestRegistrySearch(t *testing.T) {
	s, _ := openTest(t)
	clock := int64(1000)
	s.now = func() int64 { clock++; return clock }
	for _, n := range []string{"b", "a", "C", "prompt"} {
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
	o, err := search.ParseRegisteredModelOrderBy([]string{"timestamp DESC"})
	ok(t, err)
	if got, _ := names(tracking.RegisteredModelQuery{OrderBy: o, MaxResults: 10}); !slices.Equal(got, []string{"C", "a", "b"}) {
		t.Fatalf("by timestamp %v", got)
	}

	mf, err := search.ParseModelVersionFilter("run_id IN ('ra', 'rb')")
	ok(t, err)
	p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: mf, MaxResults: 10})
	ok(t, err)
	if got := versionsOf(p.Versions); !slices.Equal(got, []string{"a/1:None", "b/1:None"}) {
		t.Fatalf("versions %v", got)
	}
	_, err = s.SearchModelVersions(bg, tracking.ModelVersionQuery{PageToken: "bad!", MaxResults: 10})
	var se *search.Error
	if !errors.As(err, &se) {
		t.Fatalf("bad page token: %v", err)
	}
}

func TestRegistryDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := Open(path, Options{})
	ok(t, err)
	_, err = s.CreateRegisteredModel(bg, tracking.CreateRegisteredModel{Name: "m"})
	ok(t, err)
	_, err = s.CreateModelVersion(bg, tracking.CreateModelVersion{Name: "m", Source: "s3://b", StorageLocation: "s3://elsewhere"})
	ok(t, err)
	ok(t, s.Close())
	s, err = Open(path, Options{})
	ok(t, err)
	defer s.Close()
	mv, err := s.GetModelVersion(bg, "m", 1)
	ok(t, err)
	if mv.StorageLocation != "s3://elsewhere" || mv.Source != "s3://b" {
		t.Fatalf("reopened %+v", mv)
	}
}
