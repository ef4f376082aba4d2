package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

// MinPasswordLength is the shortest password the user API accepts, as in
// MLflow's basic-auth app.
const MinPasswordLength = 12

// managementNames are the routes the gateway answers itself.
var managementNames = func() map[string]bool {
	m := make(map[string]bool)
	for _, r := range authz.ManagementRoutes() {
		m[r.Name] = true
	}
	return m
}()

func isManagementRoute(name string) bool { return managementNames[name] }

// manageError is a client-facing error of the management API.
type manageError struct {
	status int
	code   string
	msg    string
}

func (e *manageError) Error() string { return e.msg }

func badParam(msg string) error {
	return &manageError{http.StatusBadRequest, "INVALID_PARAMETER_VALUE", msg}
}

func missingParam(name string) error {
	return badParam("Missing value for required parameter '" + name + "'. See the API docs for more information about request parameters.")
}

// manage answers the user, permission and token API. The caller has been
// authorized by the table already (admin, self, or MANAGE on the
// resource).
func (g *gateway) manage(w http.ResponseWriter, r *http.Request, name string, p *authn.Principal, admin bool, params *api.Params) {
	ctx := r.Context()
	var (
		out any
		err error
	)
	if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && !isJSON(r) {
		err = badParam("Bad Request. Content-Type must be one of ['application/json'].")
	} else if err = g.checkCurrentPassword(r, name, p, params); err == nil {
		out, err = g.manageOp(ctx, name, p, admin, params)
	}
	if err != nil {
		var me *manageError
		switch {
		case errors.As(err, &me):
			writeMLflowError(w, me.status, me.code, me.msg)
		case errors.Is(err, authstore.ErrExists):
			writeMLflowError(w, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", err.Error())
		case errors.Is(err, authstore.ErrNotFound):
			writeMLflowError(w, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", err.Error())
		default:
			g.log.Error("auth management API", zap.String("route", name), zap.Error(err))
			writeLookupFailure(w, err, "Internal server error; see the server log.") // authstore_open.go
		}
		return
	}
	if out == nil {
		out = struct{}{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeMLflowError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "Internal server error; see the server log.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// checkCurrentPassword makes a session prove the user's password again
// (field current_password), checked and throttled as a sign-in, before it
// changes its own user's password or mints an API token (for anyone: an
// admin minting one for another user too). Else a stolen cookie or an
// unattended browser could set a new password, which ends every other
// session of the user and keeps this one, or walk away with a long-lived
// credential that outlives the session and its sign-out. Basic callers
// proved the password already; token, JWT and certificate callers are
// unchanged (MLflow's API).
func (g *gateway) checkCurrentPassword(r *http.Request, name string, p *authn.Principal, params *api.Params) error {
	if p.Method != authn.MethodSession || g.sess == nil {
		return nil
	}
	switch name {
	case "CreateAccessToken":
	case "UpdateUserPassword":
		if u := params.String("username"); u != "" && u != p.Username {
			return nil // an admin resetting someone else's password
		}
	default:
		return nil
	}
	cur := params.String("current_password")
	if cur == "" {
		return missingParam("current_password")
	}
	userKey, ipKey := loginKeys(clientIP(r), p.Username)
	ok, err := g.sess.limiter.allow(r.Context(), userKey, ipKey)
	if err != nil {
		return fmt.Errorf("sign-in throttle: %w", err)
	}
	if !ok {
		return &manageError{http.StatusTooManyRequests, "REQUEST_LIMIT_EXCEEDED", "Too many wrong passwords; try again later."}
	}
	if _, err := g.sess.basic.Authenticate(r.Context(), p.Username, cur); err != nil {
		if errors.Is(err, authn.ErrInvalidCredentials) || errors.Is(err, authn.ErrNoCredentials) {
			return &manageError{http.StatusForbidden, "PERMISSION_DENIED", "The current password is not right."}
		}
		if rerr := g.sess.limiter.refund(r.Context(), userKey, ipKey); rerr != nil {
			g.log.Warn("giving back a throttle token", zap.Error(rerr))
		}
		return err
	}
	if err := g.sess.limiter.succeeded(r.Context(), userKey, ipKey); err != nil {
		g.log.Warn("resetting the sign-in throttle", zap.Error(err))
	}
	return nil
}

func isJSON(r *http.Request) bool {
	m, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && m == "application/json"
}

type userJSON struct {
	ID                         uint64     `json:"id"`
	Username                   string     `json:"username"`
	IsAdmin                    bool       `json:"is_admin"`
	ExperimentPermissions      []expPerm  `json:"experiment_permissions"`
	RegisteredModelPermissions []rmPerm   `json:"registered_model_permissions"`
	ScorerPermissions          []struct{} `json:"scorer_permissions"`
}

type expPerm struct {
	ExperimentID string `json:"experiment_id"`
	UserID       uint64 `json:"user_id"`
	Permission   string `json:"permission"`
}

type rmPerm struct {
	Name       string `json:"name"`
	UserID     uint64 `json:"user_id"`
	Permission string `json:"permission"`
}

type tokenJSON struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Name      string `json:"name,omitempty"`
	Created   string `json:"created"`
	ExpiresAt string `json:"expires_at,omitempty"`
	Revoked   bool   `json:"revoked,omitempty"`
}

func tokenInfo(t *authstore.Token) tokenJSON {
	j := tokenJSON{ID: t.ID, Username: t.Username, Name: t.Name, Created: t.Created.Format(time.RFC3339), Revoked: t.Revoked}
	if !t.ExpiresAt.IsZero() {
		j.ExpiresAt = t.ExpiresAt.Format(time.RFC3339)
	}
	return j
}

func (g *gateway) userJSON(ctx context.Context, u *authstore.User) (*userJSON, error) {
	out := &userJSON{ID: u.ID, Username: u.Username, IsAdmin: u.IsAdmin,
		ExperimentPermissions: []expPerm{}, RegisteredModelPermissions: []rmPerm{}, ScorerPermissions: []struct{}{}}
	eg, err := g.users.UserGrants(ctx, authstore.Experiment, u.Username)
	if err != nil {
		return nil, err
	}
	for _, gr := range eg {
		out.ExperimentPermissions = append(out.ExperimentPermissions, expPerm{gr.Resource, u.ID, gr.Permission})
	}
	rg, err := g.users.UserGrants(ctx, authstore.RegisteredModel, u.Username)
	if err != nil {
		return nil, err
	}
	for _, gr := range rg {
		out.RegisteredModelPermissions = append(out.RegisteredModelPermissions, rmPerm{gr.Resource, u.ID, gr.Permission})
	}
	return out, nil
}

func required(params *api.Params, name string) (string, error) {
	v := params.String(name)
	if v == "" {
		return "", missingParam(name)
	}
	return v, nil
}

func (g *gateway) manageOp(ctx context.Context, name string, p *authn.Principal, admin bool, params *api.Params) (any, error) {
	// target is the user a self-or-admin operation acts on.
	target := params.String("username")
	if target == "" {
		target = p.Username
	}
	switch name {
	case "CreateUser":
		user, err := required(params, "username")
		if err != nil {
			return nil, err
		}
		if err := authstore.CheckUsername(user); err != nil {
			return nil, badParam(err.Error())
		}
		// A user without a password can still authenticate by JWT or
		// client certificate and receive grants.
		var hash []byte
		if pw := params.String("password"); pw != "" {
			if hash, err = hashNewPassword(pw); err != nil {
				return nil, err
			}
		}
		u, err := g.users.CreateUser(ctx, user, hash, false)
		if err != nil {
			return nil, err
		}
		uj, err := g.userJSON(ctx, u)
		return map[string]any{"user": uj}, err
	case "GetUser":
		u, err := g.users.GetUser(ctx, target)
		if err != nil {
			return nil, err
		}
		uj, err := g.userJSON(ctx, u)
		return map[string]any{"user": uj}, err
	case "GetCurrentUser":
		u, err := g.users.GetUser(ctx, p.Username)
		if errors.Is(err, authstore.ErrNotFound) {
			return map[string]any{"user": map[string]any{"username": p.Username, "is_admin": false}}, nil
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"user": map[string]any{"id": u.ID, "username": u.Username, "is_admin": u.IsAdmin}}, nil
	case "ListUsers":
		us, err := g.users.ListUsers(ctx)
		if err != nil {
			return nil, err
		}
		list := make([]map[string]any, 0, len(us))
		for _, u := range us {
			list = append(list, map[string]any{"id": u.ID, "username": u.Username, "is_admin": u.IsAdmin})
		}
		return map[string]any{"users": list}, nil
	case "UpdateUserPassword":
		pw, err := required(params, "password")
		if err != nil {
			return nil, err
		}
		hash, err := hashNewPassword(pw)
		if err != nil {
			return nil, err
		}
		return nil, g.users.UpdatePassword(ctx, target, hash)
	case "UpdateUserAdmin":
		user, err := required(params, "username")
		if err != nil {
			return nil, err
		}
		v, ok := params.Bool("is_admin")
		if !ok {
			return nil, missingParam("is_admin")
		}
		return nil, g.users.SetAdmin(ctx, user, v)
	case "DeleteUser":
		user, err := required(params, "username")
		if err != nil {
			return nil, err
		}
		return nil, g.users.DeleteUser(ctx, user)
	case "CreateExperimentPermission", "GetExperimentPermission", "UpdateExperimentPermission", "DeleteExperimentPermission":
		return g.permissionOp(ctx, authstore.Experiment, strings.TrimSuffix(name, "ExperimentPermission"), "experiment_id", params)
	case "CreateRegisteredModelPermission", "GetRegisteredModelPermission", "UpdateRegisteredModelPermission", "DeleteRegisteredModelPermission":
		return g.permissionOp(ctx, authstore.RegisteredModel, strings.TrimSuffix(name, "RegisteredModelPermission"), "name", params)
	case "CreateAccessToken":
		ttl, err := parseTTL(params)
		if err != nil {
			return nil, err
		}
		if _, err := g.users.GetUser(ctx, target); errors.Is(err, authstore.ErrNotFound) && target == p.Username {
			// A JWT or certificate user without a record gets one.
			if _, err := g.users.CreateUser(ctx, target, nil, false); err != nil && !errors.Is(err, authstore.ErrExists) {
				return nil, err
			}
		}
		tok, t, err := g.users.CreateToken(ctx, target, params.String("name"), ttl)
		if err != nil {
			return nil, err
		}
		return map[string]any{"token": tok, "token_info": tokenInfo(t)}, nil
	case "ListAccessTokens":
		ts, err := g.users.ListTokens(ctx, target)
		if err != nil {
			return nil, err
		}
		list := make([]tokenJSON, 0, len(ts))
		for _, t := range ts {
			list = append(list, tokenInfo(t))
		}
		return map[string]any{"tokens": list}, nil
	case "RevokeAccessToken":
		id, err := required(params, "id")
		if err != nil {
			return nil, err
		}
		owner := target
		if admin && params.String("username") == "" {
			owner = "" // admins may revoke any token by id
		}
		return nil, g.users.RevokeToken(ctx, owner, id)
	}
	return nil, &manageError{http.StatusNotFound, "ENDPOINT_NOT_FOUND", "unknown management route"}
}

func (g *gateway) permissionOp(ctx context.Context, kind authstore.Kind, op, resParam string, params *api.Params) (any, error) {
	res, err := required(params, resParam)
	if err != nil {
		return nil, err
	}
	user, err := required(params, "username")
	if err != nil {
		return nil, err
	}
	var level string
	if op == "Create" || op == "Update" {
		level, err = required(params, "permission")
		if err != nil {
			return nil, err
		}
		if _, err := authz.ParseLevel(level); err != nil {
			return nil, badParam(err.Error())
		}
	}
	switch op {
	case "Create":
		err = g.users.CreateGrant(ctx, kind, res, user, level)
	case "Update":
		return nil, g.users.UpdateGrant(ctx, kind, res, user, level)
	case "Delete":
		return nil, g.users.DeleteGrant(ctx, kind, res, user)
	case "Get":
		var ok bool
		level, ok, err = g.users.Permission(ctx, kind, res, user)
		if err == nil && !ok {
			err = authstore.ErrNotFound
		}
	}
	if err != nil {
		return nil, err
	}
	u, err := g.users.GetUser(ctx, user)
	if err != nil {
		return nil, err
	}
	if kind == authstore.RegisteredModel {
		return map[string]any{"registered_model_permission": rmPerm{res, u.ID, level}}, nil
	}
	return map[string]any{"experiment_permission": expPerm{res, u.ID, level}}, nil
}

func hashNewPassword(pw string) ([]byte, error) {
	if len([]rune(pw)) < MinPasswordLength {
		return nil, badParam("Password must be at least " + strconv.Itoa(MinPasswordLength) + " characters long.")
	}
	if len(pw) > authn.MaxPasswordBytes {
		return nil, badParam("Password must be at most " + strconv.Itoa(authn.MaxPasswordBytes) + " bytes long.")
	}
	h, err := hashPassword(pw)
	if err != nil {
		return nil, badParam("Invalid password.")
	}
	return h, nil
}

// parseTTL reads expires_in: a duration ("720h", "30d") or a number of
// seconds; absent means no expiry.
func parseTTL(params *api.Params) (time.Duration, error) {
	s := params.String("expires_in")
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, badParam("expires_in must not be negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := caddy.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badParam("expires_in must be a duration such as 720h or a number of seconds")
	}
	return d, nil
}
