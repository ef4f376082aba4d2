package caddymodule

import (
	"context"
	"errors"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
)

// openAuthStore returns the gateway's state store on the backend store's
// database: boltauth in the bbolt file (the buckets beside the tracking
// data). The PostgreSQL backend uses pgauth.New(ctx, pool) on the
// tracking store's pool (the same database, tables of its own).
func (h *Handler) openAuthStore(ctx context.Context) (authstore.Store, error) {
	if h.store == nil {
		return nil, errors.New("no backend store")
	}
	_ = ctx
	return boltauth.New(h.store.DB())
}
