package mlflowimport

import (
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// movedLocation is where a run's or logged model's artifacts were in the
// source and where the import put them.
type movedLocation struct {
	from, to string
}

// noteMoved records that the artifacts of the run or logged model id now
// live at to instead of from.
func (im *importer) noteMoved(id, from, to string) {
	if from == "" || to == "" || from == to {
		return
	}
	im.mu.Lock()
	im.moved[id] = movedLocation{from: strings.TrimSuffix(from, "/"), to: strings.TrimSuffix(to, "/")}
	im.mu.Unlock()
}

// rewriteSources returns v with its source and storage location pointed
// at the destination when they lie inside the artifacts of its run or of
// its logged model and those were copied: a version registered from
// file:///old/mlruns/1/<run>/artifacts/model is served from
// mlflow-artifacts:/1/<run>/artifacts/model afterwards. URIs that do not
// depend on where artifacts are (runs:/<id>/model, models:/m-<id>) and
// locations the import did not copy are kept as they are.
func (im *importer) rewriteSources(v *tracking.ModelVersion) *tracking.ModelVersion {
	im.mu.Lock()
	var locs []movedLocation
	for _, id := range []string{v.RunID, v.ModelID} {
		if l, ok := im.moved[id]; ok && id != "" {
			locs = append(locs, l)
		}
	}
	im.mu.Unlock()
	if len(locs) == 0 {
		return v
	}
	out := *v
	for _, l := range locs {
		if s, ok := rebase(out.Source, l); ok {
			out.Source = s
		}
		if s, ok := rebase(out.StorageLocation, l); ok {
			out.StorageLocation = s
		}
	}
	return &out
}

// rebase moves uri from under l.from to under l.to. The file store writes
// local locations both as file:///path and as a bare /path, so the two
// forms of a local location are the same place.
func rebase(uri string, l movedLocation) (string, bool) {
	if uri == "" {
		return "", false
	}
	for _, from := range localForms(l.from) {
		if uri == from {
			return l.to, true
		}
		if rest, ok := strings.CutPrefix(uri, from+"/"); ok {
			return l.to + "/" + rest, true
		}
	}
	return "", false
}

// localForms is a location with its equivalent spellings: file:///p,
// file:/p and /p for a local path; the location alone otherwise.
func localForms(loc string) []string {
	p, ok := strings.CutPrefix(loc, "file://")
	if !ok {
		p, ok = strings.CutPrefix(loc, "file:")
	}
	if !ok {
		if strings.HasPrefix(loc, "/") {
			return []string{loc, "file://" + loc, "file:" + loc}
		}
		return []string{loc}
	}
	if !strings.HasPrefix(p, "/") {
		return []string{loc}
	}
	return []string{loc, p, "file://" + p, "file:" + p}
}
