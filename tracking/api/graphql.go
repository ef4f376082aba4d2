package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/graphql"
)

// registerGraphQL adds MLflow's GraphQL endpoint (GET and POST /graphql,
// as MLflow registers it, and the same under /ajax-api for the UI). Its
// resolvers call this server in process, so REST's validation, store and
// search filtering apply, and check the caller's READ permission through
// the request's Authorizer.
func (s *Server) registerGraphQL() error {
	var h http.Handler = http.NotFoundHandler()
	if s.store != nil {
		g, err := graphql.New(graphql.Options{
			API:   s,
			Store: s.store,
			Authorizer: func(ctx context.Context) graphql.Authorizer {
				if a := authorizerFrom(ctx); a != nil {
					return a
				}
				return nil
			},
			Logger: s.log,
		})
		if err != nil {
			return fmt.Errorf("api: building the GraphQL schema: %w", err)
		}
		h = g
	}
	serve := func(_ *Server, w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
	for _, p := range []string{"/graphql", "/ajax-api/graphql"} {
		s.add("GET", p, "GraphQL", true, serve)
		s.add("POST", p, "GraphQL", true, serve)
	}
	return nil
}
