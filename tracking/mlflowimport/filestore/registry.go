package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

type modelMeta struct {
	Name                 string            `yaml:"name"`
	CreationTimestamp    int64             `yaml:"creation_timestamp"`
	LastUpdatedTimestamp int64             `yaml:"last_updated_timestamp"`
	Description          *string           `yaml:"description"`
	Aliases              map[string]string `yaml:"aliases"`
}

type versionMeta struct {
	Name                 string  `yaml:"name"`
	Version              any     `yaml:"version"`
	CreationTimestamp    int64   `yaml:"creation_timestamp"`
	LastUpdatedTimestamp int64   `yaml:"last_updated_timestamp"`
	CurrentStage         string  `yaml:"current_stage"`
	Description          *string `yaml:"description"`
	Source               string  `yaml:"source"`
	RunID                *string `yaml:"run_id"`
	RunLink              *string `yaml:"run_link"`
	Status               string  `yaml:"status"`
	UserID               *string `yaml:"user_id"`
	StorageLocation      *string `yaml:"storage_location"`
	ModelID              *string `yaml:"model_id"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Models implements mlflowimport.Source: models/<name>/meta.yaml with
// tags/ and aliases/ folders, and version-<n>/ folders (a version in
// stage Deleted_Internal is deleted: not imported, but its number is
// not reused).
func (s *Source) Models(ctx context.Context, report func(mlflowimport.Problem), fn func(*mlflowimport.Model) error) error {
	dir := filepath.Join(s.root, modelsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing registered models: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := readModel(filepath.Join(dir, e.Name()), report)
		if err != nil {
			report(mlflowimport.Problem{Kind: "registered model", ID: e.Name(), Err: err})
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

func readModel(dir string, report func(mlflowimport.Problem)) (*mlflowimport.Model, error) {
	var mm modelMeta
	if err := readYAML(filepath.Join(dir, metaFile), &mm); err != nil {
		return nil, err
	}
	if mm.Name == "" {
		return nil, errors.New("meta.yaml has no name")
	}
	tags, err := readKV(filepath.Join(dir, tagsDir))
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	aliases, err := readKV(filepath.Join(dir, aliasesDir))
	if err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	for k, v := range mm.Aliases {
		if _, ok := aliases[k]; !ok {
			aliases[k] = v
		}
	}
	model := &tracking.RegisteredModel{
		Name: mm.Name, CreationTimestamp: mm.CreationTimestamp, LastUpdatedTimestamp: mm.LastUpdatedTimestamp,
		Description: str(mm.Description), Tags: tagList(tags),
	}
	for a, v := range aliases {
		model.Aliases = append(model.Aliases, tracking.RegisteredModelAlias{Alias: a, Version: strings.TrimSpace(v)})
	}
	sort.Slice(model.Aliases, func(i, j int) bool { return model.Aliases[i].Alias < model.Aliases[j].Alias })
	out := &mlflowimport.Model{Model: model}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "version-")
		if !ok || !e.IsDir() {
			continue
		}
		v, err := readVersion(filepath.Join(dir, e.Name()), mm.Name, n)
		if err != nil {
			report(mlflowimport.Problem{Kind: "model version", ID: mm.Name + "/" + n, Err: err})
			continue
		}
		if v.CurrentStage == deletedStage {
			deleted = append(deleted, v.Version)
			continue
		}
		out.Versions = append(out.Versions, v)
	}
	sort.Slice(out.Versions, func(i, j int) bool {
		a, _ := strconv.Atoi(out.Versions[i].Version)
		b, _ := strconv.Atoi(out.Versions[j].Version)
		return a < b
	})
	out.DeletedVersions = deleted
	return out, nil
}

func readVersion(dir, model, n string) (*tracking.ModelVersion, error) {
	var vm versionMeta
	if err := readYAML(filepath.Join(dir, metaFile), &vm); err != nil {
		return nil, err
	}
	version := fmt.Sprint(vm.Version)
	if version != n || vm.Name != model {
		return nil, fmt.Errorf("meta.yaml names %s version %s", vm.Name, version)
	}
	tags, err := readKV(filepath.Join(dir, tagsDir))
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	v := &tracking.ModelVersion{
		Name: model, Version: version, CreationTimestamp: vm.CreationTimestamp, LastUpdatedTimestamp: vm.LastUpdatedTimestamp,
		UserID: str(vm.UserID), CurrentStage: vm.CurrentStage, Description: str(vm.Description), Source: vm.Source,
		RunID: str(vm.RunID), Status: vm.Status, RunLink: str(vm.RunLink), Tags: tagList(tags),
		ModelID: str(vm.ModelID), StorageLocation: str(vm.StorageLocation),
	}
	if v.Status == "" {
		v.Status = "READY"
	}
	if v.CurrentStage == "" {
		v.CurrentStage = "None"
	}
	return v, nil
}
