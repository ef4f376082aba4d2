package api

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// MaxSearchResults is the largest max_results of search-runs and
// search-experiments.
const MaxSearchResults = 50000

var viewTypes = map[string]int{"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}

// readTags reads a list of {key, value} messages (experiment or run tags).
func readTags(f *fields, name string) ([]tracking.Tag, error) {
	elems, _, err := f.array(name)
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, nil
	}
	tags := make([]tracking.Tag, 0, len(elems))
	for i, raw := range elems {
		path := name + "[" + strconv.Itoa(i) + "]"
		m, err := message(raw, path)
		if err != nil {
			return nil, err
		}
		k, _, err := m.strAt("key", path+".key", false)
		if err != nil {
			return nil, err
		}
		v, _, err := m.strAt("value", path+".value", false)
		if err != nil {
			return nil, err
		}
		tags = append(tags, tracking.Tag{Key: k, Value: v})
	}
	return tags, nil
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("name")
	if err != nil {
		return err
	}
	loc, _, err := f.str("artifact_location")
	if err != nil {
		return err
	}
	tags, err := readTags(f, "tags")
	if err != nil {
		return err
	}
	if err := validate.ArtifactLocation(loc); err != nil {
		return err
	}
	if err := validate.ExperimentName(name); err != nil {
		return err
	}
	if loc != "" {
		loc = absLocalLocation(loc)
		if err := validate.ArtifactLocationLength(loc); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if err := validate.ExperimentTag(t.Key, t.Value); err != nil {
			return err
		}
	}
	id, err := s.store.CreateExperiment(r.Context(), tracking.CreateExperiment{
		Name:                name,
		ArtifactLocation:    loc,
		DefaultArtifactRoot: s.opts.DefaultArtifactRoot,
		Tags:                tags,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ExperimentID string `json:"experiment_id"`
	}{id})
	return nil
}

// absLocalLocation makes a relative local artifact location absolute, as
// MLflow does; URIs and absolute paths are kept.
func absLocalLocation(loc string) string {
	if filepath.IsAbs(loc) || hasScheme(loc) {
		return loc
	}
	if abs, err := filepath.Abs(loc); err == nil {
		return abs
	}
	return loc
}

func hasScheme(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && len(u.Scheme) > 1
}

type experimentResponse struct {
	Experiment *tracking.Experiment `json:"experiment"`
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	exp, err := s.store.GetExperiment(r.Context(), id)
	if err != nil {
		return err
	}
	if exp == nil {
		return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", id)
	}
	writeJSON(w, http.StatusOK, experimentResponse{exp})
	return nil
}

func (s *Server) getExperimentByName(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	name, err := f.requiredStr("experiment_name")
	if err != nil {
		return err
	}
	exp, err := s.store.GetExperimentByName(r.Context(), name)
	if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
		return err
	}
	if exp == nil {
		return tracking.Errorf(tracking.ResourceDoesNotExist, "Could not find experiment with name '%s'", name)
	}
	writeJSON(w, http.StatusOK, experimentResponse{exp})
	return nil
}

// maxResults reads max_results for the searches.
func (f *fields) maxResults(def int64) (int64, bool, error) {
	n, ok, err := f.int64("max_results")
	if err != nil || !ok {
		return def, ok, err
	}
	return n, true, nil
}

func (s *Server) searchExperiments(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	view, ok, err := f.enum("view_type", viewTypes)
	if err != nil {
		return err
	}
	if !ok {
		view = int(tracking.ActiveOnly)
	}
	maxResults, _, err := f.maxResults(0)
	if err != nil {
		return err
	}
	orderBy, _, err := f.strList("order_by", false)
	if err != nil {
		return err
	}
	filter, _, err := f.str("filter")
	if err != nil {
		return err
	}
	pageToken, _, err := f.str("page_token")
	if err != nil {
		return err
	}
	// MLflow's SQL store needs 1..50000 (no default: clients always send it).
	if maxResults < 1 {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", maxResults)
	}
	if maxResults > MaxSearchResults {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be at most %d", maxResults, MaxSearchResults)
	}
	clauses, err := search.ParseExperimentFilter(filter)
	if err != nil {
		return err
	}
	keys, err := search.ParseExperimentOrderBy(orderBy)
	if err != nil {
		return err
	}
	page, err := s.store.SearchExperiments(r.Context(), tracking.ExperimentQuery{
		Filter:     clauses,
		OrderBy:    keys,
		ViewType:   tracking.ViewType(view),
		MaxResults: int(maxResults),
		PageToken:  pageToken,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Experiments   []*tracking.Experiment `json:"experiments,omitempty"`
		NextPageToken string                 `json:"next_page_token,omitempty"`
	}{page.Experiments, page.NextPageToken})
	return nil
}

func (s *Server) updateExperiment(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	name, err := f.requiredStr("new_name")
	if err != nil {
		return err
	}
	if err := validate.ExperimentName(name); err != nil {
		return err
	}
	if err := s.store.RenameExperiment(r.Context(), id, name); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	if err := s.store.DeleteExperiment(r.Context(), id); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) restoreExperiment(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	if err := s.store.RestoreExperiment(r.Context(), id); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) setExperimentTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	value, _, err := f.str("value")
	if err != nil {
		return err
	}
	if err := validate.ExperimentTag(key, value); err != nil {
		return err
	}
	if err := s.store.SetExperimentTag(r.Context(), id, tracking.Tag{Key: key, Value: value}); err != nil {
		return err
	}
	return writeEmpty(w)
}

func (s *Server) deleteExperimentTag(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	id, err := f.experimentID("experiment_id")
	if err != nil {
		return err
	}
	key, err := f.requiredStr("key")
	if err != nil {
		return err
	}
	if err := s.store.DeleteExperimentTag(r.Context(), id, key); err != nil {
		return err
	}
	return writeEmpty(w)
}

// searchDatasets is the UI's ajax-only search-datasets: the distinct
// (experiment, dataset name, digest, context) of the datasets logged to
// runs of the given experiments (deleted runs included), at most 1000.
func (s *Server) searchDatasets(w http.ResponseWriter, r *http.Request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	ids, _, err := f.strList("experiment_ids", true)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return invalidParam("SearchDatasets request must specify at least one experiment_id.")
	}
	if len(ids) > 20 {
		return invalidParam("SearchDatasets request cannot specify more than 20 experiment_ids. Received %d experiment_ids.", len(ids))
	}
	type summary struct {
		ExperimentID string `json:"experiment_id"`
		Name         string `json:"name"`
		Digest       string `json:"digest"`
		Context      string `json:"context,omitempty"`
	}
	type seenKey struct{ exp, name, digest, ctx string }
	seen := make(map[seenKey]bool)
	var out []summary
	token := ""
	for len(out) < 1000 {
		page, err := s.store.SearchRuns(r.Context(), tracking.RunQuery{
			ExperimentIDs: ids,
			ViewType:      tracking.AllViews,
			MaxResults:    MaxSearchResults,
			PageToken:     token,
		})
		if err != nil {
			return err
		}
		for _, run := range page.Runs {
			for _, in := range run.Inputs.DatasetInputs {
				ctx := ""
				for _, t := range in.Tags {
					if t.Key == tracking.InputTagContext {
						ctx = t.Value
						break
					}
				}
				k := seenKey{run.Info.ExperimentID, in.Dataset.Name, in.Dataset.Digest, ctx}
				if seen[k] || len(out) >= 1000 {
					continue
				}
				seen[k] = true
				out = append(out, summary{k.exp, k.name, k.digest, k.ctx})
			}
		}
		if page.NextPageToken == "" || page.NextPageToken == token {
			break
		}
		token = page.NextPageToken
	}
	writeJSON(w, http.StatusOK, struct {
		DatasetSummaries []summary `json:"dataset_summaries,omitempty"`
	}{out})
	return nil
}
