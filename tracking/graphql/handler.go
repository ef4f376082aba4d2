// Package graphql serves MLflow's GraphQL endpoint (POST and GET
// /graphql, and /ajax-api/graphql) over the tracking REST API: the schema,
// type and field names are MLflow's (mlflow/server/graphql), every
// resolver answers through the same REST handler, store and authorization
// as the REST route it mirrors, and each checks the caller's READ
// permission on the experiment or run it touches, as MLflow's basic-auth
// GraphQL middleware does (a field the caller may not read is null).
//
// Answers are MLflow's: HTTP 200 with {"data": ..., "errors": [messages]
// or null}. Documents are measured before they run, with MLflow's limits
// (depth 10, 1000 selections, 10 root fields, 10 aliases per selection
// set) and a complexity bound of ours that weighs list page sizes.
package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	graphqlgo "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// MaxBodySize is the largest request body read (the API's JSON limit).
const MaxBodySize = 16 << 20

// Environment variables MLflow reads for two of its limits; honoured here
// when Options leave them unset, and named in the refusal messages.
const (
	envMaxRootFields = "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS"
	envMaxAliases    = "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES"
)

// Authorizer answers the permission question the resolvers ask. It is
// satisfied by the tracking API's per-request Authorizer.
type Authorizer interface {
	// CanReadExperiment reports whether the caller may read the experiment.
	CanReadExperiment(ctx context.Context, id string) (bool, error)
}

// Options configure a Handler.
type Options struct {
	// API is the tracking REST API the resolvers call (in process).
	API http.Handler
	// Store resolves runs to their experiments for permission checks.
	Store tracking.Store
	// Authorizer returns the caller's Authorizer from a request context,
	// or nil when requests are not authorized (no gateway).
	Authorizer func(ctx context.Context) Authorizer
	// Limits bound documents; zero fields take the defaults (root fields
	// and aliases from MLflow's environment variables when set).
	Limits Limits
	// Logger receives internal errors; nil means none.
	Logger *zap.Logger
}

// Handler answers GraphQL requests.
type Handler struct {
	opts   Options
	schema *graphqlgo.Schema
	log    *zap.Logger
	limits Limits
}

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.API == nil || opts.Store == nil {
		return nil, errors.New("graphql: API and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	l := opts.Limits
	def := func(v *int, d int, env string) {
		if *v > 0 {
			return
		}
		*v = d
		if env != "" {
			if n, err := strconv.Atoi(os.Getenv(env)); err == nil && n >= 0 {
				*v = n
			}
		}
	}
	def(&l.MaxDepth, DefaultMaxDepth, "")
	def(&l.MaxSelections, DefaultMaxSelections, "")
	def(&l.MaxRootFields, DefaultMaxRootFields, envMaxRootFields)
	def(&l.MaxAliases, DefaultMaxAliases, envMaxAliases)
	def(&l.MaxComplexity, DefaultMaxComplexity, "")
	def(&l.MaxQueryLength, DefaultMaxQueryLength, "")
	schema, err := graphqlgo.ParseSchema(schemaSDL, &root{},
		graphqlgo.UseFieldResolvers(),
		// The library's own bounds back ours up.
		graphqlgo.MaxDepth(l.MaxDepth),
		graphqlgo.MaxSelections(l.MaxSelections),
		graphqlgo.MaxQueryLength(l.MaxQueryLength),
		graphqlgo.PanicHandler(panicHandler{opts.Logger}),
	)
	if err != nil {
		return nil, err
	}
	return &Handler{opts: opts, schema: schema, log: opts.Logger, limits: l}, nil
}

func (h *Handler) authorizer(ctx context.Context) Authorizer {
	if h.opts.Authorizer == nil {
		return nil
	}
	return h.opts.Authorizer(ctx)
}

// result is MLflow's answer: data, and the messages of the errors (null
// when there are none).
type result struct {
	Data   json.RawMessage `json:"data"`
	Errors []string        `json:"errors"`
}

// ServeHTTP answers one GraphQL request: a JSON body {"query",
// "variables", "operationName"}, for GET as for POST as MLflow reads it
// (POST must say Content-Type application/json).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if msg := contentTypeProblem(r); msg != "" {
			writeError(w, http.StatusBadRequest, tracking.InvalidParameterValue, msg)
			return
		}
	}
	var src io.Reader = http.NoBody
	if r.Body != nil {
		src = r.Body
	}
	body, err := io.ReadAll(io.LimitReader(src, MaxBodySize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, tracking.InvalidParameterValue, "Could not read the request body.")
		return
	}
	if len(body) > MaxBodySize {
		writeError(w, http.StatusBadRequest, tracking.InvalidParameterValue, "Request body too large.")
		return
	}
	var req struct {
		Query         *string         `json:"query"`
		Variables     json.RawMessage `json:"variables"`
		OperationName *string         `json:"operationName"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil || len(bytes.TrimSpace(body)) == 0 || body[firstNonSpace(body)] != '{' {
		writeError(w, http.StatusBadRequest, tracking.BadRequest, "The GraphQL request body must be a JSON object with a 'query' string.")
		return
	}
	if req.Query == nil {
		writeError(w, http.StatusBadRequest, tracking.BadRequest, "The GraphQL request body must be a JSON object with a 'query' string.")
		return
	}
	var vars map[string]any
	if v := bytes.TrimSpace(req.Variables); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		if err := json.Unmarshal(v, &vars); err != nil {
			writeError(w, http.StatusBadRequest, tracking.BadRequest, "The GraphQL 'variables' must be a JSON object.")
			return
		}
	}
	opName := ""
	if req.OperationName != nil {
		opName = *req.OperationName
	}
	if err := h.limits.check(*req.Query, vars); err != nil {
		writeResult(w, result{Data: json.RawMessage("null"), Errors: []string{err.Error()}})
		return
	}
	ctx := context.WithValue(r.Context(), requestKey{}, &request{h: h, exps: make(map[string]*experimentObj)})
	resp := h.schema.Exec(ctx, *req.Query, opName, vars)
	out := result{Data: resp.Data}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("null")
	}
	for _, e := range resp.Errors {
		out.Errors = append(out.Errors, e.Message)
	}
	writeResult(w, out)
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return 0
}

// contentTypeProblem is MLflow's _validate_content_type message, or "".
func contentTypeProblem(r *http.Request) string {
	ct := r.Header.Values("Content-Type")
	if len(ct) == 0 {
		return "Bad Request. Content-Type header is missing."
	}
	media, _, _ := strings.Cut(ct[0], ";")
	if strings.EqualFold(strings.TrimSpace(media), "application/json") {
		return ""
	}
	if m, _, err := mime.ParseMediaType(ct[0]); err == nil && m == "application/json" {
		return ""
	}
	return "Bad Request. Content-Type must be one of ['application/json']."
}

func writeResult(w http.ResponseWriter, res result) {
	b, err := json.Marshal(res)
	if err != nil {
		writeError(w, http.StatusInternalServerError, tracking.InternalError, internalMessage)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code tracking.ErrorCode, msg string) {
	b, _ := json.Marshal(&tracking.Error{Code: code, Message: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// panicHandler logs a resolver panic and reports a detail-free error.
type panicHandler struct{ log *zap.Logger }

// MakePanicError implements errors.PanicHandler.
func (p panicHandler) MakePanicError(_ context.Context, value any) *gqlerrors.QueryError {
	p.log.Error("panic in GraphQL resolver", zap.Any("panic", value), zap.Stack("stack"))
	return gqlerrors.Errorf("%s", internalMessage)
}
