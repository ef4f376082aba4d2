package mlflowimport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// model writes a registered model and its versions, unless the
// destination already holds it with every version.
func (im *importer) model(ctx context.Context, m *Model) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	versions := m.Versions
	if len(im.opts.Experiments) > 0 {
		versions = nil
		for _, v := range m.Versions {
			if im.runs[v.RunID] {
				versions = append(versions, v)
			}
		}
		if len(versions) == 0 {
			return nil
		}
	}
	var maxVersion int64
	for _, v := range m.Versions {
		n, _ := strconv.ParseInt(v.Version, 10, 64)
		maxVersion = max(maxVersion, n)
	}
	for _, v := range m.DeletedVersions {
		n, _ := strconv.ParseInt(v, 10, 64)
		maxVersion = max(maxVersion, n)
	}
	if have, err := im.dst.GetRegisteredModel(ctx, m.Model.Name); err == nil && have != nil {
		all := true
		for _, v := range versions {
			n, _ := strconv.ParseInt(v.Version, 10, 64)
			if _, err := im.dst.GetModelVersion(ctx, m.Model.Name, n); err != nil {
				all = false
				break
			}
		}
		if all {
			im.mu.Lock()
			im.rep.SkippedModels++
			im.mu.Unlock()
			im.progress("registry")
			return nil
		}
	} else if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return fmt.Errorf("looking up registered model %q: %w", m.Model.Name, err)
	}
	_ = im.counter.ImportRegisteredModel(ctx, m.Model, maxVersion)
	for _, v := range versions {
		_ = im.counter.ImportModelVersion(ctx, v)
	}
	if im.opts.DryRun {
		im.progress("registry")
		return nil
	}
	// Versions first would fail (the model must exist); the model's
	// aliases name versions, so the model is written again after them.
	model := *m.Model
	aliases := model.Aliases
	model.Aliases = nil
	if err := im.dst.ImportRegisteredModel(ctx, &model, maxVersion); err != nil {
		return im.registryErr(m.Model.Name, err)
	}
	for _, v := range versions {
		v = im.rewriteSources(v)
		if err := im.dst.ImportModelVersion(ctx, v); err != nil {
			var te *tracking.Error
			if errors.As(err, &te) {
				im.report(Problem{Kind: "model version", ID: v.Name + "/" + v.Version, Err: err})
				continue
			}
			return fmt.Errorf("importing model version %s/%s: %w", v.Name, v.Version, err)
		}
	}
	if len(aliases) > 0 {
		model.Aliases = aliases
		if err := im.dst.ImportRegisteredModel(ctx, &model, maxVersion); err != nil {
			return im.registryErr(m.Model.Name, err)
		}
	}
	im.progress("registry")
	return nil
}

func (im *importer) registryErr(name string, err error) error {
	var te *tracking.Error
	if errors.As(err, &te) {
		im.report(Problem{Kind: "registered model", ID: name, Err: err})
		return nil
	}
	return fmt.Errorf("importing registered model %q: %w", name, err)
}

// lessID orders experiment ids numerically when both are numbers.
func lessID(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return strings.Compare(a, b) < 0
}
