package api

import (
	"net/http"
	"net/url"
	"path/filepath"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// MaxSearchResults is the largest max_results of search-runs and
// search-experiments.
const MaxSearchResults = 50000

var viewTypes = map[string]int{"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}

// createExperimentRequest is CreateExperiment.
type createExperimentRequest struct {
	Name, ArtifactLocation string
	Tags                   []tracking.Tag
}

func (q *createExperimentRequest) decl() []spec {
	return []spec{
		str("name", &q.Name).req(),
		str("artifact_location", &q.ArtifactLocation),
		tagList("tags", &q.Tags),
	}
}

// validate makes the checks of MLflow's create_experiment (the artifact
// location, the name, the resolved location's length, then each tag).
func (q *createExperimentRequest) validate() error {
	if err := validate.ArtifactLocation(q.ArtifactLocation); err != nil {
		return err
	}
	if err := validate.ExperimentName(q.Name); err != nil {
		return err
	}
	if q.ArtifactLocation != "" {
		q.ArtifactLocation = absLocalLocation(q.ArtifactLocation)
		if err := validate.ArtifactLocationLength(q.ArtifactLocation); err != nil {
			return err
		}
	}
	for _, t := range q.Tags {
		if err := validate.ExperimentTag(t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *createExperimentRequest) error {
		id, err := s.store.CreateExperiment(r.Context(), tracking.CreateExperiment{
			Name:                q.Name,
			ArtifactLocation:    q.ArtifactLocation,
			DefaultArtifactRoot: s.opts.DefaultArtifactRoot,
			Tags:                q.Tags,
		})
		return answer(w, struct {
			ExperimentID string `json:"experiment_id"`
		}{id}, err)
	})
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

// experimentRequest is every request naming one experiment and nothing
// else: GetExperiment, DeleteExperiment, RestoreExperiment.
type experimentRequest struct{ ID string }

func (q *experimentRequest) decl() []spec { return []spec{idStr("experiment_id", &q.ID).req()} }

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *experimentRequest) error {
		id := q.ID
		exp, err := s.store.GetExperiment(r.Context(), id)
		if err != nil {
			return err
		}
		if exp == nil {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No Experiment with id=%s exists", id)
		}
		return answer(w, experimentResponse{exp}, nil)
	})
}

// experimentByNameRequest is GetExperimentByName.
type experimentByNameRequest struct{ Name string }

func (q *experimentByNameRequest) decl() []spec {
	return []spec{str("experiment_name", &q.Name).req()}
}

func (s *Server) getExperimentByName(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *experimentByNameRequest) error {
		name := q.Name
		exp, err := s.store.GetExperimentByName(r.Context(), name)
		if err != nil && !tracking.IsCode(err, tracking.ResourceDoesNotExist) {
			return err
		}
		if exp == nil {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "Could not find experiment with name '%s'", name)
		}
		return answer(w, experimentResponse{exp}, nil)
	})
}

// searchExperimentsRequest is SearchExperiments.
type searchExperimentsRequest struct {
	ViewType          int
	MaxResults        int64
	OrderBy           []string
	Filter, PageToken string
}

func (q *searchExperimentsRequest) decl() []spec {
	return []spec{
		enumField("view_type", &q.ViewType, viewTypes, int(tracking.ActiveOnly)),
		int64Field("max_results", &q.MaxResults, 0),
		strList("order_by", &q.OrderBy),
		str("filter", &q.Filter),
		str("page_token", &q.PageToken),
	}
}

// validate is the store's max_results range: MLflow's SQL store needs
// 1..50000 (no default: clients always send it).
func (q *searchExperimentsRequest) validate() error {
	if q.MaxResults < 1 {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be a positive integer", q.MaxResults)
	}
	if q.MaxResults > MaxSearchResults {
		return invalidParam("Invalid value %d for parameter 'max_results' supplied. It must be at most %d", q.MaxResults, MaxSearchResults)
	}
	return nil
}

func (s *Server) searchExperiments(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *searchExperimentsRequest) error {
		clauses, err := search.ParseExperimentFilter(q.Filter)
		if err != nil {
			return err
		}
		keys, err := search.ParseExperimentOrderBy(q.OrderBy)
		if err != nil {
			return err
		}
		page, err := s.store.SearchExperiments(r.Context(), tracking.ExperimentQuery{
			Filter:     clauses,
			OrderBy:    keys,
			ViewType:   tracking.ViewType(q.ViewType),
			MaxResults: int(q.MaxResults),
			PageToken:  q.PageToken,
		})
		return answer(w, struct {
			Experiments   []*tracking.Experiment `json:"experiments,omitempty"`
			NextPageToken string                 `json:"next_page_token,omitempty"`
		}{page.Experiments, page.NextPageToken}, err)
	})
}

// renameExperimentRequest is UpdateExperiment.
type renameExperimentRequest struct{ ID, NewName string }

func (q *renameExperimentRequest) decl() []spec {
	return []spec{idStr("experiment_id", &q.ID).req(), str("new_name", &q.NewName).req()}
}

func (q *renameExperimentRequest) validate() error { return validate.ExperimentName(q.NewName) }

func (s *Server) updateExperiment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *renameExperimentRequest) error {
		return answerEmpty(w, s.store.RenameExperiment(r.Context(), q.ID, q.NewName))
	})
}

func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *experimentRequest) error {
		return answerEmpty(w, s.store.DeleteExperiment(r.Context(), q.ID))
	})
}

func (s *Server) restoreExperiment(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *experimentRequest) error {
		return answerEmpty(w, s.store.RestoreExperiment(r.Context(), q.ID))
	})
}

// experimentTagRequest is SetExperimentTag and DeleteExperimentTag (which
// has no value).
type experimentTagRequest struct {
	ID, Key, Value string
	set            bool
}

func (q *experimentTagRequest) decl() []spec {
	d := []spec{idStr("experiment_id", &q.ID).req(), str("key", &q.Key).req()}
	if q.set {
		d = append(d, str("value", &q.Value))
	}
	return d
}

func (q *experimentTagRequest) validate() error {
	if !q.set {
		return nil
	}
	return validate.ExperimentTag(q.Key, q.Value)
}

func (s *Server) setExperimentTag(w http.ResponseWriter, r *http.Request) error {
	return decodeThen(r, &experimentTagRequest{set: true}, func(q *experimentTagRequest) error {
		return answerEmpty(w, s.store.SetExperimentTag(r.Context(), q.ID, tracking.Tag{Key: q.Key, Value: q.Value}))
	})
}

func (s *Server) deleteExperimentTag(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *experimentTagRequest) error {
		return answerEmpty(w, s.store.DeleteExperimentTag(r.Context(), q.ID, q.Key))
	})
}

// searchDatasetsRequest is SearchDatasets. MLflow declares no schema for
// it, so nothing is refused for its type: what protobuf's JSON parser drops
// (a scalar where the list belongs, the elements from the first non-string
// on) is simply not there.
type searchDatasetsRequest struct{ IDs []string }

func (q *searchDatasetsRequest) decl() []spec {
	return []spec{custom("experiment_ids", func(f *fields, name string) (bool, bool, error) {
		ids, _, err := f.strList(name, true)
		if err == nil {
			q.IDs = ids
			return true, false, nil
		}
		// The parse stopped at a bad element: keep the ones before it.
		elems, _, aerr := f.array(name)
		if aerr != nil {
			return false, false, nil // not a list: the field stays unset
		}
		for _, e := range elems {
			s, err := (value{raw: e}).toString(name, true)
			if err != nil {
				break
			}
			q.IDs = append(q.IDs, s)
		}
		return true, false, nil
	})}
}

func (q *searchDatasetsRequest) validate() error {
	if len(q.IDs) == 0 {
		return invalidParam("SearchDatasets request must specify at least one experiment_id.")
	}
	if len(q.IDs) > 20 {
		return invalidParam("SearchDatasets request cannot specify more than 20 experiment_ids. Received %d experiment_ids.", len(q.IDs))
	}
	return nil
}

// searchDatasets is the UI's ajax-only search-datasets: the distinct
// (experiment, dataset name, digest, context) of the datasets logged to
// runs of the given experiments (deleted runs included), at most 1000.
func (s *Server) searchDatasets(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *searchDatasetsRequest) error {
		ids := q.IDs
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
		return answer(w, struct {
			DatasetSummaries []summary `json:"dataset_summaries,omitempty"`
		}{out}, nil)
	})
}
