package caddymodule

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

// unauthenticatedText is MLflow's basic-auth 401 body.
const unauthenticatedText = "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate."

// maxAuthBody bounds the request body the gateway buffers to find resource
// ids; it is the API's own JSON limit.
const maxAuthBody = api.MaxJSONBodySize

// auditRecord collects one request's audit fields.
type auditRecord struct {
	start     time.Time
	principal *authn.Principal
	route     string
	resources []authz.Resource
	allowed   bool
	reason    string
	authErr   error // the authentication failure, for metrics (metrics.go)
}

// serve runs the auth pipeline in front of next: strip identity headers,
// match the route, authenticate, authorize, then serve (the management API
// or the MLflow API) and write one audit record.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	authn.StripIdentityHeaders(r.Header)
	if g.sessionRoute(w, r) { // POST /login, /logout (auth_session.go)
		return
	}
	rec := &auditRecord{start: time.Now()}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { g.writeAudit(r, rec, sw.status) }()

	m, matched, pathKnown := g.matcher.Match(r.Method, r.URL.Path)
	m.Header = r.Header
	route := m.Route
	rec.route = route.Name
	if matched && authz.Table[route.Name].Scope == authz.Open {
		rec.allowed, rec.reason = true, "open route"
		next.ServeHTTP(sw, r)
		return
	}

	// Defence in depth for client certificates: the verified chain must
	// also verify against the configured trust pool.
	if g.trustPool != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if err := g.verifyPool(r); err != nil {
			rec.reason = "client certificate not trusted by trust_pool: " + err.Error()
			g.unauthorized(sw, r)
			return
		}
	}

	p, err := g.authn.Authenticate(r.Context(), r)
	if err != nil {
		rec.reason, rec.authErr = err.Error(), err
		if !errors.Is(err, authn.ErrNoCredentials) && !errors.Is(err, authn.ErrInvalidCredentials) {
			g.log.Error("authentication lookup failed", zap.Error(err))
			writeLookupFailure(sw, err, "Internal server error; see the server log.") // authstore_open.go
			return
		}
		g.unauthorized(sw, r)
		return
	}
	rec.principal = p
	// What a credential unlocked is for that caller only: no shared cache
	// (a CDN or proxy in front) may keep it for the next caller of the
	// URL. Handlers that need stricter (no-store) set their own.
	sw.Header().Set("Cache-Control", "private")
	if !g.checkCSRF(sw, r, p, rec) { // session cookie: CSRF token, same origin
		return
	}

	if !matched {
		// Not a route: the API answers 404 (unknown path) or 405/OPTIONS
		// (known path, other method) without running any endpoint.
		rec.allowed = true
		if pathKnown {
			rec.reason = "method not routed"
		} else {
			rec.reason = "no such route"
		}
		next.ServeHTTP(sw, r)
		return
	}

	// Buffer the body only for routes whose resource ids are in it, never
	// for artifact uploads (streamed, unbounded here).
	var body []byte
	if needsBody(route.Name) && (r.Method != http.MethodGet || r.URL.RawQuery == "") {
		if body, err = bufferBody(r); err != nil {
			rec.reason = "request body too large"
			writeMLflowError(sw, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", err.Error())
			return
		}
	}
	params := api.ParseParams(r, body)
	d := g.authz.Decide(r.Context(), p.Username, m, params, api.QueryParams(r))
	rec.resources, rec.allowed, rec.reason = d.Resources, d.Allowed, d.Reason
	if !d.Allowed {
		switch d.Status {
		case http.StatusForbidden:
			writeMLflowError(sw, http.StatusForbidden, "PERMISSION_DENIED", d.Message)
		case http.StatusBadRequest:
			writeMLflowError(sw, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", d.Message)
		case http.StatusNotFound:
			writeMLflowError(sw, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", d.Message)
		default:
			g.log.Error("authorization lookup failed", zap.String("route", route.Name), zap.Error(d.Err))
			writeLookupFailure(sw, d.Err, d.Message) // authstore_open.go
		}
		return
	}

	admin := d.Admin
	ctx := api.WithAuthorizer(r.Context(), &requestAuthorizer{g: g, user: p.Username, admin: admin})
	r = r.WithContext(ctx)
	if isManagementRoute(route.Name) {
		g.manage(g.keepSession(sw, r, route.Name, p, params), r, route.Name, p, admin, params)
		return
	}
	next.ServeHTTP(sw, r)
}

// needsBody reports whether deciding the route reads request fields that
// may be in the body.
func needsBody(name string) bool {
	if isManagementRoute(name) {
		return true
	}
	switch authz.Table[name].Scope {
	case authz.Experiment, authz.ExperimentByName, authz.Run, authz.Runs, authz.RegisteredModel, authz.SelfOrAdmin,
		authz.TraceLocation:
		return true
	}
	return false
}

// verifyPool checks the connection's client certificate against the
// trust_pool CAs.
func (g *gateway) verifyPool(r *http.Request) error {
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         g.trustPool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

// bufferBody reads the request body (bounded) and puts it back for the
// handler.
func bufferBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > maxAuthBody {
		return nil, errors.New("Request body too large.")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxAuthBody+1))
	if err != nil {
		return nil, errors.New("Could not read the request body.")
	}
	if int64(len(data)) > maxAuthBody {
		return nil, errors.New("Request body too large.")
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	return data, nil
}

// unauthorized answers 401 with a challenge per enabled scheme and
// MLflow's plain-text body. The UI's own fetches get no challenge (the
// browser would show its Basic prompt; the UI shows its login page), and
// a session cookie that did not verify is cleared.
func (g *gateway) unauthorized(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(uiRequestHeader) != uiRequestValue {
		for _, c := range g.authn.Challenges() {
			w.Header().Add("WWW-Authenticate", c)
		}
	}
	if authn.SessionToken(r) != "" && len(r.Header.Values("Authorization")) == 0 {
		http.SetCookie(w, sessionCookie(r, "", -1))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, unauthenticatedText)
}

// writeMLflowError writes MLflow's {"error_code","message"} JSON.
func writeMLflowError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(struct {
		ErrorCode string `json:"error_code"`
		Message   string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeAudit logs the request's audit record: who, from where, what, the
// decision and the status. No header, query string or body is logged.
func (g *gateway) writeAudit(r *http.Request, rec *auditRecord, status int) {
	observeAuth(rec, status) // metrics.go
	if status == 0 {
		status = http.StatusOK
	}
	decision := "denied"
	if rec.allowed {
		decision = "allowed"
	}
	fields := make([]zap.Field, 0, 14)
	if rec.principal != nil {
		fields = append(fields,
			zap.String("user", rec.principal.Username),
			zap.String("auth_method", string(rec.principal.Method)))
		if rec.principal.TokenID != "" {
			fields = append(fields, zap.String("token_id", rec.principal.TokenID))
		}
		if rec.principal.ClientCert != "" {
			fields = append(fields, zap.String("client_cert", rec.principal.ClientCert))
		}
	} else {
		fields = append(fields, zap.String("user", ""))
	}
	clientIP, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if clientIP == "" {
		clientIP = r.RemoteAddr
	}
	fields = append(fields,
		zap.String("client_ip", clientIP),
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.String("route", rec.route),
		zap.Array("resources", resourceList(rec.resources)),
		zap.String("decision", decision),
		zap.String("reason", rec.reason),
		zap.Int("status", status),
		zap.Duration("duration", time.Since(rec.start)))
	g.audit.Info("request", fields...)
}

type resourceList []authz.Resource

// MarshalLogArray implements zapcore.ArrayMarshaler.
func (l resourceList) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, r := range l {
		enc.AppendString(r.Kind + ":" + r.ID)
	}
	return nil
}

// statusWriter records the response status for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy's fast path (sendfile) for artifact downloads.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush flushes the underlying writer.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush() //nolint:errcheck // best effort, as http.Flusher
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
