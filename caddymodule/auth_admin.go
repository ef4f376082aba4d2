package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// runningStores maps the absolute bbolt path of each provisioned, secured
// handler to its user store, so that the admin API (and through it the
// `caddy mlflow` CLI) can manage users while the server holds the file
// lock. The latest provision wins; a store whose database was closed
// answers errors, never stale data.
var (
	runningMu     sync.Mutex
	runningStores = map[string]authstore.Store{}
)

func registerRunningStore(path string, s authstore.Store) {
	runningMu.Lock()
	defer runningMu.Unlock()
	runningStores[path] = s
}

func runningStore(path string) authstore.Store {
	runningMu.Lock()
	defer runningMu.Unlock()
	return runningStores[path]
}

// adminAPI is the admin.api.mlflow module: user and token management
// routes on Caddy's admin endpoint, used by `caddy mlflow ...` while a
// server runs. It never receives a password, only bcrypt hashes.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mlflow",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// adminRequest is the body of every admin route.
type adminRequest struct {
	// Store is the absolute path of the bbolt file.
	Store string `json:"store"`
	// Username names the user.
	Username string `json:"username,omitempty"`
	// PasswordHash is a bcrypt hash (users/add).
	PasswordHash string `json:"password_hash,omitempty"`
	// Admin makes the new user an admin (users/add).
	Admin bool `json:"admin,omitempty"`
	// Name labels a token (tokens/create).
	Name string `json:"name,omitempty"`
	// Expires is a token lifetime such as 720h (tokens/create).
	Expires string `json:"expires,omitempty"`
	// ID is a token id (tokens/revoke).
	ID string `json:"id,omitempty"`
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	route := func(path string, fn func(authstore.Store, *http.Request, adminRequest) (any, error)) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: path, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method != http.MethodPost {
				return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
			}
			var req adminRequest
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
				return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %w", err)}
			}
			s := runningStore(req.Store)
			if s == nil {
				return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no running mlflow handler with auth uses the store %s", req.Store)}
			}
			out, err := fn(s, r, req)
			if err != nil {
				status := http.StatusInternalServerError
				switch {
				case errors.Is(err, authstore.ErrNotFound):
					status = http.StatusNotFound
				case errors.Is(err, authstore.ErrExists):
					status = http.StatusConflict
				}
				return caddy.APIError{HTTPStatus: status, Err: err}
			}
			w.Header().Set("Content-Type", "application/json")
			return json.NewEncoder(w).Encode(out)
		})}
	}
	return []caddy.AdminRoute{
		route("/mlflow/users/add", func(s authstore.Store, r *http.Request, req adminRequest) (any, error) {
			_, err := s.CreateUser(r.Context(), req.Username, []byte(req.PasswordHash), req.Admin)
			return struct{}{}, err
		}),
		route("/mlflow/tokens/create", func(s authstore.Store, r *http.Request, req adminRequest) (any, error) {
			var ttl time.Duration
			if req.Expires != "" {
				d, err := caddy.ParseDuration(req.Expires)
				if err != nil {
					return nil, fmt.Errorf("expires: %w", err)
				}
				ttl = d
			}
			tok, t, err := s.CreateToken(r.Context(), req.Username, req.Name, ttl)
			if err != nil {
				return nil, err
			}
			return map[string]any{"token": tok, "token_info": tokenInfo(t)}, nil
		}),
		route("/mlflow/tokens/list", func(s authstore.Store, r *http.Request, req adminRequest) (any, error) {
			ts, err := s.ListTokens(r.Context(), req.Username)
			if err != nil {
				return nil, err
			}
			list := make([]tokenJSON, 0, len(ts))
			for _, t := range ts {
				list = append(list, tokenInfo(t))
			}
			return map[string]any{"tokens": list}, nil
		}),
		route("/mlflow/tokens/revoke", func(s authstore.Store, r *http.Request, req adminRequest) (any, error) {
			return struct{}{}, s.RevokeToken(r.Context(), req.Username, req.ID)
		}),
	}
}

var _ caddy.AdminRouter = (*adminAPI)(nil)
