package api

import (
	"context"
	"net/http"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// This file holds the two hooks an authorization layer in front of the
// Server needs, and nothing else:
//
//   - Params reads a request's fields exactly as the handlers do (same
//     source, query or JSON body; same duplicate-key rule; same run_id /
//     run_uuid fallback), so that the resource a gateway checks is the
//     resource the handler acts on;
//   - AuthorizedStore wraps a tracking.Store so that searches only return
//     what the caller may read and creations are reported, consulting an
//     Authorizer carried by the request context (WithAuthorizer). Without
//     one in the context the wrapper is a pass-through.

// Params are a request's fields as the handlers read them.
type Params struct {
	f *fields
}

// ParseParams reads the fields of r the way the handlers do: the query
// string for a GET with one, otherwise the JSON object in body (which the
// caller has read from r.Body and must put back). Malformed input yields
// empty Params; the handler reports the error itself.
func ParseParams(r *http.Request, body []byte) *Params {
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		return QueryParams(r)
	}
	return &Params{f: &fields{obj: bodyObject(body)}}
}

// QueryParams reads fields from the query string only, for routes whose
// handlers always read the query (GetArtifact, the UI's upload-artifact,
// get-history-bulk, the mlflow-artifacts list).
func QueryParams(r *http.Request) *Params { return &Params{f: queryFields(r)} }

// String returns the field name as a string (numbers accepted, as for
// experiment ids); "" when absent or of another type.
func (p *Params) String(name string) string {
	s, _, err := p.f.strAt(name, name, true)
	if err != nil {
		return ""
	}
	return s
}

// Strings returns a list field (a JSON array of strings, or every value of
// a repeated query key); nil when absent or malformed.
func (p *Params) Strings(name string) []string {
	l, _, err := p.f.strList(name, true)
	if err != nil {
		return nil
	}
	return l
}

// RunID returns run_id, or run_uuid when run_id is absent or empty, as the
// handlers resolve it; "" when neither is set.
func (p *Params) RunID() string {
	if id := p.String("run_id"); id != "" {
		return id
	}
	return p.String("run_uuid")
}

// Authorizer is consulted by AuthorizedStore for the request whose context
// carries it.
type Authorizer interface {
	// CanReadExperiment reports whether the caller may read the experiment.
	CanReadExperiment(ctx context.Context, id string) (bool, error)
	// CanReadRegisteredModel reports whether the caller may read the model.
	CanReadRegisteredModel(ctx context.Context, name string) (bool, error)
	// ExperimentCreated is called after the caller created an experiment.
	ExperimentCreated(ctx context.Context, id string) error
	// RegisteredModelCreated is called after the caller created a
	// registered model.
	RegisteredModelCreated(ctx context.Context, name string) error
	// RegisteredModelRenamed is called after a registered model was
	// renamed, so that grants follow the model.
	RegisteredModelRenamed(ctx context.Context, oldName, newName string) error
}

type authorizerKey struct{}

// WithAuthorizer returns a context carrying a.
func WithAuthorizer(ctx context.Context, a Authorizer) context.Context {
	return context.WithValue(ctx, authorizerKey{}, a)
}

// authorizerFrom returns the context's Authorizer, or nil.
func authorizerFrom(ctx context.Context) Authorizer {
	a, _ := ctx.Value(authorizerKey{}).(Authorizer)
	return a
}

// AuthorizedStore wraps s so that, for requests whose context carries an
// Authorizer, searches return only readable experiments, runs, registered
// models and model versions (pages are topped up to the requested size, as
// MLflow's basic-auth app does), and creations and renames are reported.
func AuthorizedStore(s tracking.Store) tracking.Store {
	return &authorizedStore{Store: s}
}

type authorizedStore struct {
	tracking.Store
}

// maxFilterRounds bounds the store queries one filtered search may make.
const maxFilterRounds = 1000

// filterPages reads store pages through search (which reads *max and
// *token) and keeps the items keep allows, topping the page up to the
// requested *max (0: every page) in at most maxFilterRounds store queries.
// It returns the kept items and the last store page's next token.
func filterPages[T any](max *int, token *string, search func() ([]T, string, error), keep func(T) (bool, error)) ([]T, string, error) {
	want := *max
	var out []T
	next := ""
	for round := 0; round < maxFilterRounds; round++ {
		if want > 0 {
			*max = want - len(out)
		}
		items, pageNext, err := search()
		if err != nil {
			return nil, "", err
		}
		for _, it := range items {
			ok, err := keep(it)
			if err != nil {
				return nil, "", err
			}
			if ok {
				out = append(out, it)
			}
		}
		next = pageNext
		if next == "" || len(items) == 0 || (want > 0 && len(out) >= want) {
			break
		}
		*token = next
	}
	return out, next, nil
}

func (s *authorizedStore) SearchExperiments(ctx context.Context, q tracking.ExperimentQuery) (out tracking.ExperimentPage, err error) {
	a := authorizerFrom(ctx)
	if a == nil {
		return s.Store.SearchExperiments(ctx, q)
	}
	out.Experiments, out.NextPageToken, err = filterPages(&q.MaxResults, &q.PageToken, func() ([]*tracking.Experiment, string, error) {
		p, err := s.Store.SearchExperiments(ctx, q)
		return p.Experiments, p.NextPageToken, err
	}, func(e *tracking.Experiment) (bool, error) { return a.CanReadExperiment(ctx, e.ExperimentID) })
	return out, err
}

func (s *authorizedStore) SearchRuns(ctx context.Context, q tracking.RunQuery) (tracking.RunPage, error) {
	return readableSearch(ctx, &q.ExperimentIDs, func() (tracking.RunPage, error) { return s.Store.SearchRuns(ctx, q) })
}

func (s *authorizedStore) SearchRegisteredModels(ctx context.Context, q tracking.RegisteredModelQuery) (out tracking.RegisteredModelPage, err error) {
	a := authorizerFrom(ctx)
	if a == nil {
		return s.Store.SearchRegisteredModels(ctx, q)
	}
	out.Models, out.NextPageToken, err = filterPages(&q.MaxResults, &q.PageToken, func() ([]*tracking.RegisteredModel, string, error) {
		p, err := s.Store.SearchRegisteredModels(ctx, q)
		return p.Models, p.NextPageToken, err
	}, func(m *tracking.RegisteredModel) (bool, error) { return a.CanReadRegisteredModel(ctx, m.Name) })
	return out, err
}

func (s *authorizedStore) SearchModelVersions(ctx context.Context, q tracking.ModelVersionQuery) (out tracking.ModelVersionPage, err error) {
	a := authorizerFrom(ctx)
	if a == nil {
		return s.Store.SearchModelVersions(ctx, q)
	}
	out.Versions, out.NextPageToken, err = filterPages(&q.MaxResults, &q.PageToken, func() ([]*tracking.ModelVersion, string, error) {
		p, err := s.Store.SearchModelVersions(ctx, q)
		return p.Versions, p.NextPageToken, err
	}, func(v *tracking.ModelVersion) (bool, error) { return a.CanReadRegisteredModel(ctx, v.Name) })
	return out, err
}

func (s *authorizedStore) CreateExperiment(ctx context.Context, req tracking.CreateExperiment) (string, error) {
	id, err := s.Store.CreateExperiment(ctx, req)
	if err != nil {
		return id, err
	}
	if a := authorizerFrom(ctx); a != nil {
		if err := a.ExperimentCreated(ctx, id); err != nil {
			return id, err
		}
	}
	return id, nil
}

func (s *authorizedStore) CreateRegisteredModel(ctx context.Context, req tracking.CreateRegisteredModel) (*tracking.RegisteredModel, error) {
	m, err := s.Store.CreateRegisteredModel(ctx, req)
	if err != nil {
		return m, err
	}
	if a := authorizerFrom(ctx); a != nil {
		if err := a.RegisteredModelCreated(ctx, m.Name); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (s *authorizedStore) RenameRegisteredModel(ctx context.Context, name, newName string) (*tracking.RegisteredModel, error) {
	m, err := s.Store.RenameRegisteredModel(ctx, name, newName)
	if err != nil {
		return m, err
	}
	if a := authorizerFrom(ctx); a != nil {
		if err := a.RegisteredModelRenamed(ctx, name, m.Name); err != nil {
			return m, err
		}
	}
	return m, nil
}

// TraceLocationExperiment returns the experiment id a StartTraceV3 body
// names (trace.trace_info.trace_location.mlflow_experiment.experiment_id);
// "" when absent or malformed.
func (p *Params) TraceLocationExperiment() string {
	if p.f.obj == nil {
		return ""
	}
	f := p.f
	for _, name := range []string{"trace", "trace_info", "trace_location", "mlflow_experiment"} {
		raw, ok := f.obj.get(name)
		if !ok || kindOf(raw) != kindObject {
			return ""
		}
		m, err := message(raw, name)
		if err != nil {
			return ""
		}
		f = m
	}
	return (&Params{f: f}).String("experiment_id")
}

// Bool returns a boolean field (JSON true/false, or "true"/"false" in any
// case as a string or query value); ok is false when absent or malformed.
func (p *Params) Bool(name string) (v, ok bool) {
	present, _, err := looseBool(name, &v, false).read(p.f, name)
	return v, present && err == nil
}

// readableSearch runs search on the readable ones of the experiments *ids
// names when the context carries an Authorizer: unreadable experiments
// are dropped silently, as MLflow does, and none readable is an empty page.
func readableSearch[P any](ctx context.Context, ids *[]string, search func() (P, error)) (P, error) {
	if a := authorizerFrom(ctx); a != nil {
		readable, err := readableExperiments(ctx, a, *ids)
		if err != nil || len(readable) == 0 {
			var none P
			return none, err
		}
		*ids = readable
	}
	return search()
}

// readableExperiments keeps the ids the caller may read, silently dropping
// the others as MLflow does for SearchRuns.
func readableExperiments(ctx context.Context, a Authorizer, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		ok, err := a.CanReadExperiment(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

func (s *authorizedStore) SearchLoggedModels(ctx context.Context, q tracking.LoggedModelQuery) (tracking.LoggedModelPage, error) {
	return readableSearch(ctx, &q.ExperimentIDs, func() (tracking.LoggedModelPage, error) { return s.Store.SearchLoggedModels(ctx, q) })
}

func (s *authorizedStore) SearchTraces(ctx context.Context, q tracking.TraceQuery) (tracking.TracePage, error) {
	return readableSearch(ctx, &q.ExperimentIDs, func() (tracking.TracePage, error) { return s.Store.SearchTraces(ctx, q) })
}
