package caddymodule

// The gateway's state store is chosen by the backend: boltauth in the
// bbolt file, pgauth in the PostgreSQL database (tables of its own, its
// own migrations). Everything else of the gateway only sees the
// authstore.Store interface.

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/pgauth"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// openAuthStore returns the gateway's state store on the backend store's
// database: boltauth in the bbolt file, beside the tracking data, or
// pgauth in the PostgreSQL database, on the tracking store's pool.
func (h *Handler) openAuthStore(ctx context.Context) (authstore.Store, error) {
	if h.pg != nil {
		return pgAuthStore(ctx, h.pg.pool)
	}
	if h.store == nil {
		return nil, errors.New("no backend store")
	}
	return boltauth.New(h.store.DB())
}

// pgAuthStore is the gateway's state store in the PostgreSQL database of
// pool, migrated to the binary's gateway schema.
func pgAuthStore(ctx context.Context, pool *pgxpool.Pool) (authstore.Store, error) {
	return pgauth.New(ctx, pool)
}

// multipartSigningKey is the key that signs multipart upload ids and part
// URLs: the uploads { multipart_key_file } when one is configured; else,
// with a shared (PostgreSQL) backend, the key stored in the database, so
// that a part URL signed by one replica is accepted by every other; else
// nil, a random key per process (a bbolt file has one process).
func (h *Handler) multipartSigningKey(ctx context.Context) ([]byte, error) {
	if h.pg != nil && (h.Uploads == nil || h.Uploads.MultipartKeyFile == "") {
		return pgMultipartKey(ctx, h.pg.pool)
	}
	return h.Uploads.signingKey() // uploads.go
}

// pgMultipartKey returns the multipart signing key shared through the
// PostgreSQL database of pool, generating it on first use (every replica
// reads back the one stored key).
func pgMultipartKey(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
	s, err := pgauth.New(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	key, err := s.MultipartSigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("uploads: shared multipart signing key: %w", err)
	}
	return key, nil
}

// unavailableMessage answers a request the gateway could not decide
// because its database is unreachable.
const unavailableMessage = "The gateway's database is unavailable; retry later."

// writeLookupFailure answers a request whose authentication, authorization
// or management lookup failed: 503 TEMPORARILY_UNAVAILABLE (which MLflow's
// clients retry) when the database cannot be reached, else 500
// INTERNAL_ERROR with msg.
func writeLookupFailure(w http.ResponseWriter, err error, msg string) {
	if lookupUnavailable(err) {
		writeMLflowError(w, http.StatusServiceUnavailable, string(tracking.TemporarilyUnavailable), unavailableMessage)
		return
	}
	writeMLflowError(w, http.StatusInternalServerError, "INTERNAL_ERROR", msg)
}

// lookupUnavailable reports whether err means the gateway's or the
// tracking store's database is unreachable right now.
func lookupUnavailable(err error) bool {
	if errors.Is(err, authstore.ErrUnavailable) {
		return true
	}
	te, ok := tracking.AsError(err)
	return ok && te.Code == tracking.TemporarilyUnavailable
}
