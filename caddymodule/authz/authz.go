// Package authz is the gateway's authorization: MLflow's permission levels,
// the one table that says which permission every route needs on which
// resource, a matcher from requests to routes, and the decision.
//
// Routes are identified by their Name (api.Route.Name; MLflow's RPC names).
// A route whose name has no Table entry is denied to everyone, admins
// included, and a test fails until it gets one.
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

// Level is a permission level of MLflow's basic-auth app.
type Level int

// The permission levels, weakest first.
const (
	NoPermissions Level = iota
	Read
	Use
	Edit
	Manage
)

// levelNames are the wire names of the levels.
var levelNames = [...]string{"NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE"}

// String returns the wire name (READ, ..., NO_PERMISSIONS).
func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return "NO_PERMISSIONS"
	}
	return levelNames[l]
}

// ParseLevel parses a wire name, case-sensitively as MLflow does, with
// MLflow's error text.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return NoPermissions, fmt.Errorf("Invalid permission '%s'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')", s)
}

// Action is what a request does to a resource.
type Action int

// Actions, each allowed from some level up.
const (
	ActRead Action = iota
	ActUse
	ActUpdate
	ActDelete
	ActManage
)

var actionNames = [...]string{"read", "use", "update", "delete", "manage"}

// String names the action.
func (a Action) String() string { return actionNames[a] }

// Allows reports whether level l permits action a (MLflow's can_read,
// can_use, can_update, can_delete, can_manage).
func (l Level) Allows(a Action) bool {
	switch a {
	case ActRead:
		return l >= Read
	case ActUse:
		return l >= Use
	case ActUpdate:
		return l >= Edit
	case ActDelete, ActManage:
		return l >= Manage
	}
	return false
}

// Scope says which resource a rule checks and where its id comes from.
type Scope int

// Scopes.
const (
	// Open routes need no credentials (/health).
	Open Scope = iota
	// Authenticated routes need a verified caller and nothing more.
	Authenticated
	// Filtered routes need a verified caller; their results are filtered
	// to what the caller may read (api.AuthorizedStore).
	Filtered
	// Admin routes are for admins only.
	Admin
	// SelfOrAdmin routes act on the user named by the username parameter
	// (the caller when absent); others need admin.
	SelfOrAdmin
	// Experiment checks the experiment in experiment_id.
	Experiment
	// ExperimentByName checks the experiment named by experiment_name.
	ExperimentByName
	// Run checks the experiment of the run in run_id (or run_uuid).
	Run
	// RunQuery is Run with the id from the query string (run_id or
	// run_uuid), for routes whose handlers only read the query.
	RunQuery
	// Runs checks the experiment of every run in run_ids (a list) or
	// repeated run_id query values.
	Runs
	// RegisteredModel checks the registered model in name.
	RegisteredModel
	// ArtifactPath checks the experiment in the leading "<digits>/" of
	// an mlflow-artifacts path (the route's {path...}, or ?path= for the
	// listing); without one, the default permission applies.
	ArtifactPath
	// Upload is ArtifactPath on mlflow-artifacts routes and RunQuery
	// (run_uuid) on the UI's /ajax-api/2.0/mlflow/upload-artifact: two
	// routes share the name UploadArtifact.
	Upload
	// RegisteredModelQuery is RegisteredModel with name from the query
	// string.
	RegisteredModelQuery
	// LoggedModel checks the experiment of the logged model in the
	// {model_id} path segment.
	LoggedModel
	// Trace checks the experiment of the trace in the {request_id} or
	// {trace_id} path segment, or the request_id or trace_id query value on
	// routes without one.
	Trace
	// TraceLocation checks the experiment of a StartTraceV3 body's
	// trace.trace_info.trace_location.mlflow_experiment.experiment_id.
	TraceLocation
	// ExperimentHeader checks the experiment named by the request's
	// x-mlflow-experiment-id header (OTLP span export; api.OTLPExperimentID
	// reads the same value for the handler).
	ExperimentHeader
)

// Rule is a Table entry.
type Rule struct {
	// Scope says what is checked.
	Scope Scope
	// Action is required on the resource (resource scopes only).
	Action Action
}

func rule(s Scope, a Action) Rule { return Rule{Scope: s, Action: a} }

// Resource kinds a scope checks (Resource.Kind, Authorizer.Level).
const (
	KindExperiment      = "experiment"
	KindRegisteredModel = "registered_model"
)

// ResourceKind is the kind of resource whose permission decides a rule of
// scope s: KindExperiment for experiments and what lives in them (runs,
// artifacts, logged models, traces), KindRegisteredModel for the registry,
// "" for scopes that check no resource's permission.
func (s Scope) ResourceKind() string {
	switch s {
	case Experiment, ExperimentByName, Run, RunQuery, Runs, ArtifactPath, Upload, LoggedModel, Trace, TraceLocation, ExperimentHeader:
		return KindExperiment
	case RegisteredModel, RegisteredModelQuery:
		return KindRegisteredModel
	}
	return ""
}

// Table maps every route name to its rule. It follows MLflow's basic-auth
// app (spec §8.3) and closes its gaps: LogInputs and the bulk metric
// routes need access to their runs, and the mlflow-artifacts listing
// checks the experiment of ?path=.
var Table = map[string]Rule{
	// Server.
	"Health":        {Scope: Open},
	"Version":       {Scope: Authenticated},
	"GetServerInfo": {Scope: Authenticated},

	// Experiments.
	"CreateExperiment":    {Scope: Authenticated}, // creators get MANAGE
	"GetExperiment":       rule(Experiment, ActRead),
	"GetExperimentByName": rule(ExperimentByName, ActRead),
	"SearchExperiments":   {Scope: Filtered},
	"UpdateExperiment":    rule(Experiment, ActUpdate),
	"DeleteExperiment":    rule(Experiment, ActDelete),
	"RestoreExperiment":   rule(Experiment, ActDelete),
	"SetExperimentTag":    rule(Experiment, ActUpdate),
	"DeleteExperimentTag": rule(Experiment, ActUpdate),
	"SearchDatasets":      {Scope: Filtered},

	// Runs.
	"CreateRun":                    rule(Experiment, ActUpdate),
	"GetRun":                       rule(Run, ActRead),
	"UpdateRun":                    rule(Run, ActUpdate),
	"DeleteRun":                    rule(Run, ActDelete),
	"RestoreRun":                   rule(Run, ActDelete),
	"SearchRuns":                   {Scope: Filtered},
	"LogMetric":                    rule(Run, ActUpdate),
	"LogParam":                     rule(Run, ActUpdate),
	"LogBatch":                     rule(Run, ActUpdate),
	"SetTag":                       rule(Run, ActUpdate),
	"DeleteTag":                    rule(Run, ActUpdate),
	"LogInputs":                    rule(Run, ActUpdate),
	"LogModel":                     rule(Run, ActUpdate),
	"GetMetricHistory":             rule(Run, ActRead),
	"GetMetricHistoryBulkInterval": rule(Runs, ActRead),
	"GetMetricHistoryBulk":         rule(Runs, ActRead),
	"ListArtifacts":                rule(Run, ActRead),
	"GetArtifact":                  rule(RunQuery, ActRead),
	"UploadArtifact":               rule(Upload, ActUpdate),

	// mlflow-artifacts.
	"ListArtifactsMlflowArtifacts": rule(ArtifactPath, ActRead),
	"DownloadArtifact":             rule(ArtifactPath, ActRead),
	"DeleteArtifact":               rule(ArtifactPath, ActDelete),
	"CreateMultipartUpload":        rule(ArtifactPath, ActUpdate),
	"CompleteMultipartUpload":      rule(ArtifactPath, ActUpdate),
	"AbortMultipartUpload":         rule(ArtifactPath, ActUpdate),
	// A part URL is a capability: MLflow's client PUTs to it without
	// credentials (as to a presigned cloud URL), and the artifact handler
	// accepts only a valid, unexpired HMAC signature of this upload id and
	// part number, which mpu/create hands out only after the UPDATE check
	// above.
	"UploadMultipartPart": {Scope: Open},

	// Model registry.
	"CreateRegisteredModel":       {Scope: Authenticated}, // creators get MANAGE
	"RenameRegisteredModel":       rule(RegisteredModel, ActUpdate),
	"UpdateRegisteredModel":       rule(RegisteredModel, ActUpdate),
	"DeleteRegisteredModel":       rule(RegisteredModel, ActDelete),
	"GetRegisteredModel":          rule(RegisteredModel, ActRead),
	"SearchRegisteredModels":      {Scope: Filtered},
	"GetLatestVersions":           rule(RegisteredModel, ActRead),
	"SetRegisteredModelTag":       rule(RegisteredModel, ActUpdate),
	"DeleteRegisteredModelTag":    rule(RegisteredModel, ActUpdate),
	"SetRegisteredModelAlias":     rule(RegisteredModel, ActUpdate),
	"DeleteRegisteredModelAlias":  rule(RegisteredModel, ActDelete),
	"GetModelVersionByAlias":      rule(RegisteredModel, ActRead),
	"CreateModelVersion":          rule(RegisteredModel, ActUpdate),
	"UpdateModelVersion":          rule(RegisteredModel, ActUpdate),
	"DeleteModelVersion":          rule(RegisteredModel, ActDelete),
	"GetModelVersion":             rule(RegisteredModel, ActRead),
	"SearchModelVersions":         {Scope: Filtered},
	"GetModelVersionDownloadUri":  rule(RegisteredModel, ActRead),
	"TransitionModelVersionStage": rule(RegisteredModel, ActUpdate),
	"SetModelVersionTag":          rule(RegisteredModel, ActUpdate),
	"DeleteModelVersionTag":       rule(RegisteredModel, ActDelete),

	// Logged models (MLflow 3).
	"CreateLoggedModel":        rule(Experiment, ActUpdate),
	"SearchLoggedModels":       {Scope: Filtered},
	"GetLoggedModel":           rule(LoggedModel, ActRead),
	"FinalizeLoggedModel":      rule(LoggedModel, ActUpdate),
	"DeleteLoggedModel":        rule(LoggedModel, ActDelete),
	"SetLoggedModelTags":       rule(LoggedModel, ActUpdate),
	"DeleteLoggedModelTag":     rule(LoggedModel, ActDelete),
	"LogLoggedModelParams":     rule(LoggedModel, ActUpdate),
	"ListLoggedModelArtifacts": rule(LoggedModel, ActRead),
	"GetLoggedModelArtifact":   rule(LoggedModel, ActRead),
	"LogOutputs":               rule(Run, ActUpdate),
	"GetModelVersionArtifact":  rule(RegisteredModelQuery, ActRead),

	// Traces (MLflow 2.x API).
	"StartTrace":       rule(Experiment, ActUpdate),
	"SearchTraces":     {Scope: Filtered},
	"DeleteTraces":     rule(Experiment, ActDelete),
	"EndTrace":         rule(Trace, ActUpdate),
	"GetTraceInfo":     rule(Trace, ActRead),
	"SetTraceTag":      rule(Trace, ActUpdate),
	"DeleteTraceTag":   rule(Trace, ActUpdate),
	"GetTraceArtifact": rule(Trace, ActRead),

	// Traces (MLflow 3 API). Batch gets answer only readable traces.
	"StartTraceV3":       rule(TraceLocation, ActUpdate),
	"GetTraceInfoV3":     rule(Trace, ActRead),
	"GetTrace":           rule(Trace, ActRead),
	"BatchGetTraces":     {Scope: Filtered},
	"BatchGetTraceInfos": {Scope: Filtered},
	"SearchTracesV3":     {Scope: Filtered},
	"DeleteTracesV3":     rule(Experiment, ActDelete),
	"SetTraceTagV3":      rule(Trace, ActUpdate),
	"DeleteTraceTagV3":   rule(Trace, ActUpdate),
	"LinkTracesToRun":    rule(Run, ActUpdate),
	// Links a trace to prompt versions: a tag on the trace (tracking/api/prompts.go).
	"LinkPromptsToTrace": rule(Trace, ActUpdate),
	"CreateAssessment":   rule(Trace, ActUpdate),
	"GetAssessment":      rule(Trace, ActRead),
	"UpdateAssessment":   rule(Trace, ActUpdate),
	"DeleteAssessment":   rule(Trace, ActUpdate),
	// OTLP span export: EDIT on the experiment of x-mlflow-experiment-id;
	// spans of traces in other experiments are refused by the store.
	"ExportTraceSpans": rule(ExperimentHeader, ActUpdate),

	// GraphQL: any verified caller; each resolver checks READ on the
	// experiment or run it touches (tracking/graphql), as MLflow's
	// GraphQL authorization middleware does.
	"GraphQL": {Scope: Authenticated},

	// The gateway's own management API (ManagementRoutes).
	"CreateUser":                      {Scope: Admin},
	"GetUser":                         {Scope: SelfOrAdmin},
	"GetCurrentUser":                  {Scope: Authenticated},
	"ListUsers":                       {Scope: Admin},
	"UpdateUserPassword":              {Scope: SelfOrAdmin},
	"UpdateUserAdmin":                 {Scope: Admin},
	"DeleteUser":                      {Scope: Admin},
	"CreateExperimentPermission":      rule(Experiment, ActManage),
	"GetExperimentPermission":         rule(Experiment, ActManage),
	"UpdateExperimentPermission":      rule(Experiment, ActManage),
	"DeleteExperimentPermission":      rule(Experiment, ActManage),
	"CreateRegisteredModelPermission": rule(RegisteredModel, ActManage),
	"GetRegisteredModelPermission":    rule(RegisteredModel, ActManage),
	"UpdateRegisteredModelPermission": rule(RegisteredModel, ActManage),
	"DeleteRegisteredModelPermission": rule(RegisteredModel, ActManage),
	"CreateAccessToken":               {Scope: SelfOrAdmin},
	"ListAccessTokens":                {Scope: SelfOrAdmin},
	"RevokeAccessToken":               {Scope: SelfOrAdmin},
}

// ManagementRoutes are the gateway's own routes (MLflow's basic-auth user
// and permission API, plus API tokens), each under /api/2.0/mlflow and
// /ajax-api/2.0/mlflow.
func ManagementRoutes() []api.Route {
	defs := []struct{ method, path, name string }{
		{"POST", "/users/create", "CreateUser"},
		{"GET", "/users/get", "GetUser"},
		{"GET", "/users/current", "GetCurrentUser"},
		{"GET", "/users/list", "ListUsers"},
		{"PATCH", "/users/update-password", "UpdateUserPassword"},
		{"PATCH", "/users/update-admin", "UpdateUserAdmin"},
		{"DELETE", "/users/delete", "DeleteUser"},
		{"POST", "/experiments/permissions/create", "CreateExperimentPermission"},
		{"GET", "/experiments/permissions/get", "GetExperimentPermission"},
		{"PATCH", "/experiments/permissions/update", "UpdateExperimentPermission"},
		{"DELETE", "/experiments/permissions/delete", "DeleteExperimentPermission"},
		{"POST", "/registered-models/permissions/create", "CreateRegisteredModelPermission"},
		{"GET", "/registered-models/permissions/get", "GetRegisteredModelPermission"},
		{"PATCH", "/registered-models/permissions/update", "UpdateRegisteredModelPermission"},
		{"DELETE", "/registered-models/permissions/delete", "DeleteRegisteredModelPermission"},
		{"POST", "/users/tokens/create", "CreateAccessToken"},
		{"GET", "/users/tokens/list", "ListAccessTokens"},
		{"POST", "/users/tokens/revoke", "RevokeAccessToken"},
	}
	var out []api.Route
	for _, prefix := range []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow"} {
		for _, d := range defs {
			out = append(out, api.Route{Method: d.method, Pattern: prefix + d.path, Name: d.name})
		}
	}
	return out
}

// Matcher finds the route of a request, the way the API server does:
// exact paths first, then {path...} prefixes, then patterns with {name}
// segments.
type Matcher struct {
	exact  map[string]map[string]api.Route // path -> method -> route
	prefix []prefixRoute
	params []paramRoute
}

type paramRoute struct {
	segs  []string
	route api.Route
}

// Match is a matched route with the values of its path segments.
type Match struct {
	// Route is the matched route.
	Route api.Route
	// Rest is the {path...} remainder.
	Rest string
	// Values are the {name} segment values.
	Values map[string]string
	// Header is the request's header, for scopes that read one
	// (ExperimentHeader); set by the caller of Match.
	Header http.Header
}

type prefixRoute struct {
	prefix string
	route  api.Route
}

// NewMatcher builds a Matcher from routes. A pattern ending in "{path...}"
// matches any path under its prefix.
func NewMatcher(routes []api.Route) *Matcher {
	m := &Matcher{exact: make(map[string]map[string]api.Route)}
	for _, r := range routes {
		if p, ok := strings.CutSuffix(r.Pattern, "{path...}"); ok {
			m.prefix = append(m.prefix, prefixRoute{prefix: p, route: r})
			continue
		}
		if strings.Contains(r.Pattern, "{") {
			m.params = append(m.params, paramRoute{segs: strings.Split(r.Pattern, "/"), route: r})
			continue
		}
		if m.exact[r.Pattern] == nil {
			m.exact[r.Pattern] = make(map[string]api.Route)
		}
		m.exact[r.Pattern][r.Method] = r
	}
	return m
}

// Match returns the route for method and path. HEAD matches GET routes.
// pathKnown reports whether any route has the path (so the handler will
// answer 405 or OPTIONS rather than 404).
func (m *Matcher) Match(method, path string) (match Match, ok, pathKnown bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if byMethod, found := m.exact[path]; found {
		r, ok := byMethod[method]
		return Match{Route: r}, ok, true
	}
	for _, p := range m.prefix {
		if rest, found := strings.CutPrefix(path, p.prefix); found {
			pathKnown = true
			if p.route.Method == method {
				return Match{Route: p.route, Rest: rest}, true, true
			}
		}
	}
	if pathKnown {
		return Match{}, false, true
	}
	segs := strings.Split(path, "/")
	for _, p := range m.params {
		vals, found := matchSegs(p.segs, segs)
		if !found {
			continue
		}
		pathKnown = true
		if p.route.Method == method {
			return Match{Route: p.route, Values: vals}, true, true
		}
	}
	return Match{}, false, pathKnown
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var vals map[string]string
	for i, ps := range pattern {
		if strings.HasPrefix(ps, "{") && strings.HasSuffix(ps, "}") {
			if segs[i] == "" {
				return nil, false
			}
			if vals == nil {
				vals = make(map[string]string, 2)
			}
			vals[ps[1:len(ps)-1]] = segs[i]
			continue
		}
		if ps != segs[i] {
			return nil, false
		}
	}
	return vals, true
}

// Resource names what a decision was about, for audit.
type Resource struct {
	// Kind is "experiment", "run" or "registered_model".
	Kind string `json:"kind"`
	// ID is the experiment id, run id or model name.
	ID string `json:"id"`
}

// Permissions answers permission questions for the decision.
type Permissions interface {
	// IsAdmin reports whether user is an admin. Unknown users are not.
	IsAdmin(ctx context.Context, user string) (bool, error)
	// ExperimentLevel returns the user's direct grant on the experiment.
	ExperimentLevel(ctx context.Context, user, expID string) (Level, bool, error)
	// RegisteredModelLevel returns the user's direct grant on the model.
	RegisteredModelLevel(ctx context.Context, user, name string) (Level, bool, error)
}

// Resolver maps runs and experiment names to experiment ids.
type Resolver interface {
	// RunExperiment returns the experiment of a run, or an error wrapping
	// ErrUnknownResource.
	RunExperiment(ctx context.Context, runID string) (string, error)
	// ExperimentID returns the id of the named experiment, or an error
	// wrapping ErrUnknownResource.
	ExperimentID(ctx context.Context, name string) (string, error)
	// LoggedModelExperiment returns the experiment of a logged model, or
	// an error wrapping ErrUnknownResource.
	LoggedModelExperiment(ctx context.Context, modelID string) (string, error)
	// TraceExperiment returns the experiment of a trace, or an error
	// wrapping ErrUnknownResource.
	TraceExperiment(ctx context.Context, requestID string) (string, error)
}

// ErrUnknownResource is wrapped by Resolver errors for runs and experiments
// that do not exist.
var ErrUnknownResource = errors.New("authz: resource does not exist")

// Decision is the outcome of Authorizer.Decide.
type Decision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Admin is set when the caller is an admin (and so was allowed).
	Admin bool
	// Status is the answer when not allowed: 403, 400 (a missing resource
	// id), 404 (an unknown run or experiment name) or 500.
	Status int
	// Reason explains the decision for the audit log.
	Reason string
	// Message is the client-facing error message when not allowed.
	Message string
	// Resources are the resources checked.
	Resources []Resource
	// Err is an internal error (Status 500).
	Err error
}

// Authorizer decides requests. Safe for concurrent use.
type Authorizer struct {
	// Perms holds grants and admin flags.
	Perms Permissions
	// Resolver maps runs and experiment names.
	Resolver Resolver
	// Default is the level users have on resources without a grant.
	Default Level
}

// Level returns user's effective level on a resource: the direct grant, or
// the default.
func (a *Authorizer) Level(ctx context.Context, kind, id, user string) (Level, error) {
	var (
		l   Level
		ok  bool
		err error
	)
	if kind == "registered_model" {
		l, ok, err = a.Perms.RegisteredModelLevel(ctx, user, id)
	} else {
		l, ok, err = a.Perms.ExperimentLevel(ctx, user, id)
	}
	if err != nil {
		return NoPermissions, err
	}
	if !ok {
		return a.Default, nil
	}
	return l, nil
}

func allow(reason string, res ...Resource) Decision {
	return Decision{Allowed: true, Reason: reason, Resources: res}
}

func deny(reason string, res ...Resource) Decision {
	return Decision{Status: http.StatusForbidden, Reason: reason, Message: "Permission denied", Resources: res}
}

func missing(param string) Decision {
	return Decision{Status: http.StatusBadRequest, Reason: "missing " + param,
		Message: "Missing value for required parameter '" + param + "'. See the API docs for more information about request parameters."}
}

func internal(err error, res ...Resource) Decision {
	return Decision{Status: http.StatusInternalServerError, Reason: "authorization lookup failed", Message: "Internal server error; see the server log.", Err: err, Resources: res}
}

// Decide authorizes user (already authenticated; "" for anonymous, which
// only Open routes admit) for the matched route. params are the request's
// fields (api.ParseParams over the buffered body) and query its
// query-string fields.
func (a *Authorizer) Decide(ctx context.Context, user string, m Match, params, query *api.Params) Decision {
	route, rest := m.Route, m.Rest
	rl, ok := Table[route.Name]
	if !ok {
		return deny("route " + route.Name + " has no authorization rule")
	}
	if rl.Scope == Open {
		return allow("open route")
	}
	if user == "" {
		return deny("not authenticated")
	}
	admin, err := a.Perms.IsAdmin(ctx, user)
	if err != nil {
		return internal(err)
	}
	if admin {
		d := allow("admin")
		d.Admin = true
		return d
	}
	switch rl.Scope {
	case Authenticated, Filtered:
		return allow("authenticated")
	case Admin:
		return deny("admin only")
	case SelfOrAdmin:
		if u := params.String("username"); u != "" && u != user {
			return deny("acts on another user")
		}
		return allow("self")
	case Experiment:
		id := params.String("experiment_id")
		if id == "" {
			return missing("experiment_id")
		}
		return a.check(ctx, user, rl.Action, Resource{"experiment", id}, Resource{"experiment", id})
	case ExperimentByName:
		name := params.String("experiment_name")
		if name == "" {
			return missing("experiment_name")
		}
		id, err := a.Resolver.ExperimentID(ctx, name)
		if errors.Is(err, ErrUnknownResource) {
			// The handler answers the 404 with MLflow's message.
			return allow("unknown experiment name")
		}
		if err != nil {
			return internal(err)
		}
		return a.check(ctx, user, rl.Action, Resource{"experiment", id}, Resource{"experiment", id})
	case Run, RunQuery:
		p := params
		if rl.Scope == RunQuery {
			p = query
		}
		return a.checkRuns(ctx, user, rl.Action, []string{p.RunID()}, "run_id")
	case Runs:
		ids := params.Strings("run_ids")
		if len(ids) == 0 {
			ids = query.Strings("run_id")
		}
		if len(ids) == 0 {
			return missing("run_ids")
		}
		return a.checkRuns(ctx, user, rl.Action, ids, "run_ids")
	case RegisteredModel:
		name := params.String("name")
		if name == "" {
			return missing("name")
		}
		return a.check(ctx, user, rl.Action, Resource{"registered_model", name}, Resource{"registered_model", name})
	case RegisteredModelQuery:
		name := query.String("name")
		if name == "" {
			return missing("name")
		}
		return a.check(ctx, user, rl.Action, Resource{"registered_model", name}, Resource{"registered_model", name})
	case LoggedModel:
		id := m.Values["model_id"]
		if id == "" {
			return missing("model_id")
		}
		return a.checkVia(ctx, user, rl.Action, Resource{"logged_model", id}, a.Resolver.LoggedModelExperiment)
	case Trace:
		id := m.Values["request_id"]
		if id == "" {
			id = m.Values["trace_id"]
		}
		if id == "" {
			id = query.String("request_id")
		}
		if id == "" {
			id = query.String("trace_id")
		}
		if id == "" {
			return missing("request_id")
		}
		return a.checkVia(ctx, user, rl.Action, Resource{"trace", id}, a.Resolver.TraceExperiment)
	case TraceLocation:
		id := params.TraceLocationExperiment()
		if id == "" {
			return missing("trace.trace_info.trace_location.mlflow_experiment.experiment_id")
		}
		return a.check(ctx, user, rl.Action, Resource{"experiment", id}, Resource{"experiment", id})
	case ExperimentHeader:
		id := api.OTLPExperimentID(m.Header)
		if id == "" {
			return missing("x-mlflow-experiment-id")
		}
		return a.check(ctx, user, rl.Action, Resource{"experiment", id}, Resource{"experiment", id})
	case Upload:
		if !strings.Contains(route.Pattern, "/mlflow-artifacts/") {
			return a.checkRuns(ctx, user, rl.Action, []string{query.String("run_uuid")}, "run_uuid")
		}
		fallthrough
	case ArtifactPath:
		p := rest
		if !strings.HasSuffix(route.Pattern, "{path...}") {
			p = query.String("path")
		}
		exp := leadingExperiment(p)
		if exp == "" {
			if a.Default.Allows(rl.Action) {
				return allow("default permission (no experiment in the artifact path)")
			}
			return deny("default permission (no experiment in the artifact path)")
		}
		return a.check(ctx, user, rl.Action, Resource{"experiment", exp}, Resource{"experiment", exp})
	}
	return deny("unknown scope")
}

// leadingExperiment returns the digits before the first "/" of an
// mlflow-artifacts path, or "".
func leadingExperiment(p string) string {
	p = strings.TrimPrefix(p, "/")
	head, _, _ := strings.Cut(p, "/")
	if head == "" {
		return ""
	}
	for _, c := range []byte(head) {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return head
}

func (a *Authorizer) checkRuns(ctx context.Context, user string, act Action, runIDs []string, param string) Decision {
	var res []Resource
	for _, id := range runIDs {
		if id == "" {
			return missing(param)
		}
		exp, err := a.Resolver.RunExperiment(ctx, id)
		if errors.Is(err, ErrUnknownResource) {
			return Decision{Status: http.StatusNotFound, Reason: "unknown run", Message: "Run with id=" + id + " not found", Resources: append(res, Resource{"run", id})}
		}
		if err != nil {
			return internal(err, res...)
		}
		res = append(res, Resource{"run", id}, Resource{"experiment", exp})
		d := a.check(ctx, user, act, Resource{"experiment", exp})
		if !d.Allowed {
			d.Resources = res
			return d
		}
	}
	return allow(act.String()+" permitted", res...)
}

// checkVia checks the experiment a logged model or trace belongs to.
func (a *Authorizer) checkVia(ctx context.Context, user string, act Action, res Resource, resolve func(context.Context, string) (string, error)) Decision {
	exp, err := resolve(ctx, res.ID)
	if errors.Is(err, ErrUnknownResource) {
		// The handler answers 404 with MLflow's message; nothing to leak.
		return allow("unknown "+res.Kind, res)
	}
	if err != nil {
		return internal(err, res)
	}
	return a.check(ctx, user, act, Resource{"experiment", exp}, res, Resource{"experiment", exp})
}

func (a *Authorizer) check(ctx context.Context, user string, act Action, on Resource, res ...Resource) Decision {
	l, err := a.Level(ctx, on.Kind, on.ID, user)
	if err != nil {
		return internal(err, res...)
	}
	if l.Allows(act) {
		return allow(fmt.Sprintf("%s permitted by %s on %s %s", act, l, on.Kind, on.ID), res...)
	}
	return deny(fmt.Sprintf("%s needs more than %s on %s %s", act, l, on.Kind, on.ID), res...)
}
