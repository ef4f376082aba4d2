package restsource

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// Models implements mlflowimport.Source: registered-models/search for the
// names, registered-models/get for each model (tags, aliases,
// description), model-versions/search for its versions. Deleted
// versions are not visible through the API (see the package comment):
// Model.DeletedVersions stays empty.
func (s *Source) Models(ctx context.Context, report func(mlflowimport.Problem), fn func(*mlflowimport.Model) error) error {
	var names []string
	err := s.c.EachRegisteredModel(ctx, "", func(m mlflowclient.RegisteredModel) error {
		names = append(names, m.Name)
		return nil
	})
	if mlflowclient.IsEndpointMissing(err) {
		return nil // a server without the registry
	}
	if err != nil {
		return fmt.Errorf("registered-models/search: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := s.model(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			report(mlflowimport.Problem{Kind: "registered model", ID: name, Err: err})
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// quote writes a search-filter string literal for name; ok is false when
// no quote character of MLflow's filter grammar can hold it.
func quote(name string) (string, bool) {
	switch {
	case !strings.Contains(name, "'"):
		return "'" + name + "'", true
	case !strings.Contains(name, `"`):
		return `"` + name + `"`, true
	}
	return "", false
}

func (s *Source) model(ctx context.Context, name string) (*mlflowimport.Model, error) {
	rm, err := s.c.GetRegisteredModel(ctx, name)
	if err != nil {
		return nil, err
	}
	m := &tracking.RegisteredModel{Name: rm.Name, CreationTimestamp: int64(rm.CreationTimestamp),
		LastUpdatedTimestamp: int64(rm.LastUpdatedTimestamp), Description: rm.Description, Tags: tags(rm.Tags)}
	for _, a := range rm.Aliases {
		m.Aliases = append(m.Aliases, tracking.RegisteredModelAlias{Alias: a.Alias, Version: a.Version})
	}
	sort.Slice(m.Aliases, func(i, j int) bool { return m.Aliases[i].Alias < m.Aliases[j].Alias })
	out := &mlflowimport.Model{Model: m}
	filter, ok := quote(name)
	if ok {
		filter = "name=" + filter
	} else {
		filter = "" // every version, kept by name below
	}
	err = s.c.EachModelVersion(ctx, filter, func(v mlflowclient.ModelVersion) error {
		if v.Name != name {
			return nil
		}
		mv := &tracking.ModelVersion{Name: v.Name, Version: v.Version, CreationTimestamp: int64(v.CreationTimestamp),
			LastUpdatedTimestamp: int64(v.LastUpdatedTimestamp), UserID: v.UserID, CurrentStage: v.CurrentStage,
			Description: v.Description, Source: v.Source, RunID: v.RunID, Status: v.Status, Tags: tags(v.Tags),
			RunLink: v.RunLink, ModelID: v.ModelID}
		if mv.CurrentStage == "" {
			mv.CurrentStage = "None"
		}
		if mv.Status == "" {
			mv.Status = "READY"
		}
		out.Versions = append(out.Versions, mv)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	sort.Slice(out.Versions, func(i, j int) bool {
		a, _ := strconv.ParseInt(out.Versions[i].Version, 10, 64)
		b, _ := strconv.ParseInt(out.Versions[j].Version, 10, 64)
		return a < b
	})
	return out, nil
}
