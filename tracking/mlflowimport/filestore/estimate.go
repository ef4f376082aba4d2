package filestore

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

var _ mlflowimport.Estimator = (*Source)(nil)

// Estimate implements mlflowimport.Estimator: it counts the runs and
// lists the artifact trees of runs, logged models and traces (metric
// points are not counted: that would read every metric file).
func (s *Source) Estimate(ctx context.Context, experiments []string) (mlflowimport.Estimate, error) {
	var est mlflowimport.Estimate
	dirs, err := s.expDirs()
	if err != nil {
		return est, err
	}
	add := func(t mlflowimport.ArtifactTree) error {
		if t == nil {
			return nil
		}
		return t.Walk(ctx, func(f mlflowimport.ArtifactFile) error {
			est.ArtifactFiles++
			est.ArtifactBytes += f.Size
			return nil
		})
	}
	ignore := func(mlflowimport.Problem) {}
	for id, dir := range dirs {
		if len(experiments) > 0 {
			e, err := readExperiment(dir)
			if err != nil || !slices.ContainsFunc(experiments, func(w string) bool { return w == id || w == e.Name }) {
				continue
			}
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return est, err
			}
			switch e.Name() {
			case tagsDir, datasetsDir:
				continue
			case tracesDir, modelsDir:
				sub, _ := os.ReadDir(filepath.Join(dir, e.Name()))
				for _, x := range sub {
					_ = add(s.resolve(ctx, "", "", "", filepath.Join(dir, e.Name(), x.Name(), artifactDir), ignore))
				}
				continue
			}
			if !e.IsDir() {
				continue
			}
			var m runMeta
			if err := readYAML(filepath.Join(dir, e.Name(), metaFile), &m); err != nil {
				continue
			}
			est.Runs++
			if err := add(s.resolve(ctx, "", "", m.ArtifactURI, filepath.Join(dir, e.Name(), artifactDir), ignore)); err != nil {
				return est, err
			}
		}
	}
	return est, nil
}
