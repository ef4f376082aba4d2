package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// gqlAnswer is MLflow's GraphQL answer.
type gqlAnswer struct {
	Data   map[string]any `json:"data"`
	Errors []string       `json:"errors"`
}

func gql(t testing.TB, ts *httptest.Server, query string, vars map[string]any) gqlAnswer {
	t.Helper()
	body := map[string]any{"query": query}
	if vars != nil {
		body["variables"] = vars
	}
	r := call(t, ts, "POST", "/graphql", "json", body)
	wantStatus(t, r, 200)
	var a gqlAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	if !strings.Contains(string(r.body), `"errors":`) {
		t.Fatalf("answer lacks the errors key: %s", r.body)
	}
	return a
}

// at walks a decoded JSON value by keys and list indexes.
func at(t testing.TB, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", v, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no index %d", v, k)
			}
			v = l[k]
		}
	}
	return v
}

// gqlFixture creates an experiment with a tagged run that has metrics
// (one NaN), params, tags, a dataset input, an artifact and a model
// version, and returns the ids.
func gqlFixture(t *testing.T, ts *httptest.Server, name string) (expID, runID string) {
	t.Helper()
	expID = mkExperiment(t, ts, name)
	wantStatus(t, post(t, ts, "experiments/set-experiment-tag", map[string]any{"experiment_id": expID, "key": "team", "value": "a"}), 200)
	runID = mkRun(t, ts, expID)
	wantStatus(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": runID,
		"metrics": []any{
			map[string]any{"key": "loss", "value": 0.5, "timestamp": 10, "step": 0},
			map[string]any{"key": "loss", "value": 0.25, "timestamp": 11, "step": 1},
			map[string]any{"key": "nan", "value": "NaN", "timestamp": 12, "step": 3},
		},
		"params": []any{map[string]any{"key": "lr", "value": "0.1"}},
		"tags":   []any{map[string]any{"key": "k", "value": "v"}}}), 200)
	ds := map[string]any{"tags": []map[string]string{{"key": "mlflow.data.context", "value": "train"}},
		"dataset": map[string]string{"name": "d", "digest": "x1", "source_type": "code", "source": "{}"}}
	wantStatus(t, post(t, ts, "runs/log-inputs", map[string]any{"run_id": runID, "datasets": []any{ds}}), 200)
	run := getRun(t, ts, runID)
	uri := run["info"].(map[string]any)["artifact_uri"].(string)
	rel := strings.TrimPrefix(uri, "mlflow-artifacts:/")
	wantStatus(t, call(t, ts, "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+rel+"/model/MLmodel", "", "flavors: {}"), 200)
	wantStatus(t, post(t, ts, "registered-models/create", map[string]any{"name": name + "-model"}), 200)
	wantStatus(t, post(t, ts, "model-versions/create", map[string]any{"name": name + "-model", "source": uri + "/model", "run_id": runID}), 200)
	return expID, runID
}

const runFields = `info { runId runUuid runName experimentId userId status startTime endTime artifactUri lifecycleStage }
	data { metrics { key value timestamp step } params { key value } tags { key value } }
	inputs { datasetInputs { tags { key value } dataset { name digest sourceType source schema profile } } modelInputs { modelId } }
	outputs { modelOutputs { modelId step } }
	experiment { experimentId name }
	modelVersions { name version runId status currentStage aliases tags { key value } }`

func TestGraphQLQueries(t *testing.T) {
	ts, _ := newTestServer(t)
	expID, runID := gqlFixture(t, ts, "gql")

	t.Run("mlflowGetExperiment matches REST", func(t *testing.T) {
		a := gql(t, ts, `query q($id: String) { mlflowGetExperiment(input: {experimentId: $id}) {
			experiment { experimentId name artifactLocation lifecycleStage lastUpdateTime creationTime tags { key value } } apiError { code message } } }`,
			map[string]any{"id": expID})
		if a.Errors != nil {
			t.Fatalf("errors %v", a.Errors)
		}
		rest := get(t, ts, "experiments/get?experiment_id="+expID).json(t)["experiment"].(map[string]any)
		e := at(t, a.Data, "mlflowGetExperiment", "experiment").(map[string]any)
		for gqlName, restName := range map[string]string{"experimentId": "experiment_id", "name": "name",
			"artifactLocation": "artifact_location", "lifecycleStage": "lifecycle_stage"} {
			if e[gqlName] != rest[restName] {
				t.Errorf("%s = %v, REST %s = %v", gqlName, e[gqlName], restName, rest[restName])
			}
		}
		// LongString: the REST integer as a decimal string.
		if e["creationTime"] != fmt.Sprint(rest["creation_time"]) || e["lastUpdateTime"] != fmt.Sprint(rest["last_update_time"]) {
			t.Errorf("times %v %v, REST %v %v", e["creationTime"], e["lastUpdateTime"], rest["creation_time"], rest["last_update_time"])
		}
		if !reflect.DeepEqual(e["tags"], []any{map[string]any{"key": "team", "value": "a"}}) {
			t.Errorf("tags %v", e["tags"])
		}
		if at(t, a.Data, "mlflowGetExperiment", "apiError") != nil {
			t.Errorf("apiError %v", a.Data)
		}
	})

	t.Run("mlflowGetRun matches REST", func(t *testing.T) {
		a := gql(t, ts, `{ mlflowGetRun(input: {runId: "`+runID+`"}) { run { `+runFields+` } } }`, nil)
		if a.Errors != nil {
			t.Fatalf("errors %v", a.Errors)
		}
		run := at(t, a.Data, "mlflowGetRun", "run").(map[string]any)
		rest := getRun(t, ts, runID)
		info, rinfo := run["info"].(map[string]any), rest["info"].(map[string]any)
		for g, r := range map[string]string{"runId": "run_id", "runUuid": "run_uuid", "runName": "run_name", "experimentId": "experiment_id",
			"userId": "user_id", "status": "status", "artifactUri": "artifact_uri", "lifecycleStage": "lifecycle_stage"} {
			if info[g] != rinfo[r] {
				t.Errorf("info.%s = %v, REST %v", g, info[g], rinfo[r])
			}
		}
		if info["startTime"] != fmt.Sprint(rinfo["start_time"]) || info["endTime"] != "0" {
			t.Errorf("times %v %v", info["startTime"], info["endTime"])
		}
		metrics := map[string]any{}
		for _, m := range at(t, run, "data", "metrics").([]any) {
			metrics[m.(map[string]any)["key"].(string)] = m
		}
		if want := map[string]any{"key": "loss", "value": 0.25, "timestamp": "11", "step": "1"}; !reflect.DeepEqual(metrics["loss"], want) {
			t.Errorf("loss %v", metrics["loss"])
		}
		// NaN is null (MLflow's MlflowMetricExtension.resolve_value).
		if want := map[string]any{"key": "nan", "value": nil, "timestamp": "12", "step": "3"}; !reflect.DeepEqual(metrics["nan"], want) {
			t.Errorf("nan %v", metrics["nan"])
		}
		if !reflect.DeepEqual(at(t, run, "data", "params"), []any{map[string]any{"key": "lr", "value": "0.1"}}) {
			t.Errorf("params %v", at(t, run, "data", "params"))
		}
		di := at(t, run, "inputs", "datasetInputs", 0).(map[string]any)
		if want := map[string]any{"name": "d", "digest": "x1", "sourceType": "code", "source": "{}", "schema": "", "profile": ""}; !reflect.DeepEqual(di["dataset"], want) {
			t.Errorf("dataset %v", di["dataset"])
		}
		if at(t, run, "experiment", "experimentId") != expID || at(t, run, "experiment", "name") != "gql" {
			t.Errorf("experiment %v", run["experiment"])
		}
		mv := at(t, run, "modelVersions", 0).(map[string]any)
		if mv["name"] != "gql-model" || mv["version"] != "1" || mv["runId"] != runID || mv["status"] != "READY" {
			t.Errorf("modelVersions %v", run["modelVersions"])
		}
		// runUuid is accepted too.
		b := gql(t, ts, `{ mlflowGetRun(input: {runUuid: "`+runID+`"}) { run { info { runId } } } }`, nil)
		if at(t, b.Data, "mlflowGetRun", "run", "info", "runId") != runID {
			t.Errorf("by runUuid: %v %v", b.Data, b.Errors)
		}
	})

	t.Run("mlflowSearchRuns as query and mutation", func(t *testing.T) {
		other := mkRun(t, ts, expID)
		for _, op := range []string{"query", "mutation"} {
			a := gql(t, ts, op+` s($in: MlflowSearchRunsInput) { mlflowSearchRuns(input: $in) { runs { info { runId } data { params { key value } } } nextPageToken apiError { code } } }`,
				map[string]any{"in": map[string]any{"experimentIds": []string{expID}, "filter": "params.lr = '0.1'", "runViewType": "ACTIVE_ONLY", "maxResults": 10, "orderBy": []string{"start_time DESC"}}})
			if a.Errors != nil {
				t.Fatalf("%s errors %v", op, a.Errors)
			}
			runs := at(t, a.Data, "mlflowSearchRuns", "runs").([]any)
			if len(runs) != 1 || at(t, runs[0], "info", "runId") != runID {
				t.Fatalf("%s runs %v", op, runs)
			}
		}
		a := gql(t, ts, `{ mlflowSearchRuns(input: {experimentIds: ["`+expID+`"], maxResults: 1}) { runs { info { runId } } nextPageToken } }`, nil)
		rest := post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{expID}, "max_results": 1}).json(t)
		if tok := at(t, a.Data, "mlflowSearchRuns", "nextPageToken"); tok == "" || tok != rest["next_page_token"] {
			t.Errorf("nextPageToken %v, REST %v", tok, rest["next_page_token"])
		}
		_ = other
		bad := gql(t, ts, `{ mlflowSearchRuns(input: {experimentIds: ["`+expID+`"], filter: "nonsense ="}) { runs { info { runId } } } }`, nil)
		if at(t, bad.Data, "mlflowSearchRuns") != nil || len(bad.Errors) != 1 {
			t.Fatalf("bad filter: %v %v", bad.Data, bad.Errors)
		}
		restErr := post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{expID}, "filter": "nonsense ="})
		if bad.Errors[0] != restErr.message(t) {
			t.Errorf("error %q, REST %q", bad.Errors[0], restErr.message(t))
		}
	})

	t.Run("mlflowGetMetricHistoryBulkInterval", func(t *testing.T) {
		a := gql(t, ts, `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["`+runID+`"], metricKey: "loss", maxResults: 10}) { metrics { key value timestamp step runId } apiError { code } } }`, nil)
		if a.Errors != nil {
			t.Fatalf("errors %v", a.Errors)
		}
		want := []any{
			map[string]any{"key": "loss", "value": 0.5, "timestamp": "10", "step": "0", "runId": runID},
			map[string]any{"key": "loss", "value": 0.25, "timestamp": "11", "step": "1", "runId": runID},
		}
		if got := at(t, a.Data, "mlflowGetMetricHistoryBulkInterval", "metrics"); !reflect.DeepEqual(got, want) {
			t.Errorf("metrics %v", got)
		}
	})

	t.Run("mlflowListArtifacts", func(t *testing.T) {
		a := gql(t, ts, `{ mlflowListArtifacts(input: {runId: "`+runID+`", path: "model"}) { rootUri files { path isDir fileSize } nextPageToken } }`, nil)
		if a.Errors != nil {
			t.Fatalf("errors %v", a.Errors)
		}
		rest := get(t, ts, "artifacts/list?run_id="+runID+"&path=model").json(t)
		if at(t, a.Data, "mlflowListArtifacts", "rootUri") != rest["root_uri"] {
			t.Errorf("rootUri %v, REST %v", a.Data, rest)
		}
		want := []any{map[string]any{"path": "model/MLmodel", "isDir": false, "fileSize": "11"}}
		if got := at(t, a.Data, "mlflowListArtifacts", "files"); !reflect.DeepEqual(got, want) {
			t.Errorf("files %v, REST %v", got, rest["files"])
		}
	})

	t.Run("mlflowSearchDatasets (a mutation, as in MLflow)", func(t *testing.T) {
		a := gql(t, ts, `mutation { mlflowSearchDatasets(input: {experimentIds: ["`+expID+`"]}) { datasetSummaries { experimentId name digest context } } }`, nil)
		want := []any{map[string]any{"experimentId": expID, "name": "d", "digest": "x1", "context": "train"}}
		if got := at(t, a.Data, "mlflowSearchDatasets", "datasetSummaries"); !reflect.DeepEqual(got, want) || a.Errors != nil {
			t.Errorf("summaries %v %v", got, a.Errors)
		}
		q := gql(t, ts, `{ mlflowSearchDatasets(input: {experimentIds: ["`+expID+`"]}) { datasetSummaries { name } } }`, nil)
		if len(q.Errors) != 1 || !strings.Contains(q.Errors[0], "mlflowSearchDatasets") {
			t.Errorf("as a query: %v", q.Errors)
		}
	})

	t.Run("mlflowSearchModelVersions", func(t *testing.T) {
		a := gql(t, ts, `{ mlflowSearchModelVersions(input: {filter: "name='gql-model'", maxResults: 5}) { modelVersions { name version creationTimestamp } nextPageToken } }`, nil)
		mv := at(t, a.Data, "mlflowSearchModelVersions", "modelVersions", 0).(map[string]any)
		if mv["name"] != "gql-model" || mv["version"] != "1" {
			t.Errorf("versions %v %v", a.Data, a.Errors)
		}
		if _, ok := mv["creationTimestamp"].(string); !ok {
			t.Errorf("creationTimestamp %T, want a LongString", mv["creationTimestamp"])
		}
	})

	t.Run("test and testMutation echo", func(t *testing.T) {
		a := gql(t, ts, `{ test(inputString: "hi") { output } }`, nil)
		if at(t, a.Data, "test", "output") != "hi" {
			t.Errorf("test %v", a.Data)
		}
		m := gql(t, ts, `mutation { testMutation(inputString: "yo") { output } }`, nil)
		if at(t, m.Data, "testMutation", "output") != "yo" {
			t.Errorf("testMutation %v", m.Data)
		}
		// MLflow's @component directive is accepted; operationName picks
		// the operation of a document with several.
		r := call(t, ts, "POST", "/ajax-api/graphql", "json", map[string]any{
			"query":         `query A @component(name: "x") { test(inputString: "a") { output } } query B { test(inputString: "b") { output } }`,
			"operationName": "B",
		})
		wantStatus(t, r, 200)
		if string(r.body) != `{"data":{"test":{"output":"b"}},"errors":null}` {
			t.Errorf("operationName: %s", r.body)
		}
	})
}

func TestGraphQLErrors(t *testing.T) {
	ts, _ := newTestServer(t)
	_, runID := gqlFixture(t, ts, "gqlerr")

	// MLflow's answer: 200, the field null, the exception's message in errors.
	a := gql(t, ts, `{ mlflowGetRun(input: {runId: "nope"}) { run { info { runId } } } }`, nil)
	if at(t, a.Data, "mlflowGetRun") != nil || !reflect.DeepEqual(a.Errors, []string{"Run with id=nope not found"}) {
		t.Errorf("unknown run: %v %v", a.Data, a.Errors)
	}
	a = gql(t, ts, `{ mlflowGetExperiment(input: {experimentId: "999"}) { experiment { name } } }`, nil)
	if !reflect.DeepEqual(a.Errors, []string{get(t, ts, "experiments/get?experiment_id=999").message(t)}) {
		t.Errorf("unknown experiment: %v", a.Errors)
	}
	a = gql(t, ts, `{ mlflowGetRun(input: {}) { run { info { runId } } } }`, nil)
	if len(a.Errors) != 1 || !strings.Contains(a.Errors[0], "Missing value for required parameter 'run_id'") {
		t.Errorf("missing run id: %v", a.Errors)
	}
	// One failing field does not take the others down.
	a = gql(t, ts, `{ ok: mlflowGetRun(input: {runId: "`+runID+`"}) { run { info { runId } } } bad: mlflowGetRun(input: {runId: "nope"}) { run { info { runId } } } }`, nil)
	if at(t, a.Data, "ok", "run", "info", "runId") != runID || at(t, a.Data, "bad") != nil || len(a.Errors) != 1 {
		t.Errorf("partial: %v %v", a.Data, a.Errors)
	}
	// Validation errors are messages too.
	a = gql(t, ts, `{ mlflowGetRun(input: {runId: "x"}) { run { nosuch } } }`, nil)
	if a.Data != nil || len(a.Errors) != 1 || !strings.Contains(a.Errors[0], "nosuch") {
		t.Errorf("unknown field: %v %v", a.Data, a.Errors)
	}
	a = gql(t, ts, `{ mlflowGetRun(input: {runId: "x"} { run { info } }`, nil)
	if a.Data != nil || len(a.Errors) != 1 || !strings.HasPrefix(a.Errors[0], "Syntax Error") {
		t.Errorf("syntax: %v %v", a.Data, a.Errors)
	}

	// HTTP-level refusals are MLflow's error JSON.
	r := call(t, ts, "POST", "/graphql", "text/plain", `{"query":"{ test(inputString: \"x\") { output } }"}`)
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']")
	r = call(t, ts, "POST", "/graphql", "", `{"query":"{ test { output } }"}`)
	wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Content-Type header is missing")
	for _, body := range []string{``, `[]`, `{"query": 5}`, `{}`, `not json`} {
		r = call(t, ts, "POST", "/graphql", "json", body)
		wantError(t, r, 400, "BAD_REQUEST", "")
	}
	r = call(t, ts, "POST", "/graphql", "json", `{"query":"{ test(inputString: \"x\") { output } }","variables":[1]}`)
	wantError(t, r, 400, "BAD_REQUEST", "variables")
	// GET reads the JSON body, as MLflow does; both paths answer.
	for _, p := range []string{"/graphql", "/ajax-api/graphql"} {
		r = call(t, ts, "GET", p, "", `{"query":"{ test(inputString: \"g\") { output } }"}`)
		wantStatus(t, r, 200)
		if !strings.Contains(string(r.body), `"output":"g"`) {
			t.Errorf("GET %s: %s", p, r.body)
		}
	}
	r = call(t, ts, "PUT", "/graphql", "json", `{}`)
	wantStatus(t, r, 405)
}

func TestGraphQLLimits(t *testing.T) {
	ts, _ := newTestServer(t)
	nest := func(n int) string { // n levels of selection sets
		q := "__typename"
		for i := 1; i < n; i++ {
			q = fmt.Sprintf("f%d { %s }", i, q)
		}
		return "{ " + q + " }"
	}
	one := func(q string) string {
		t.Helper()
		a := gql(t, ts, q, nil)
		if a.Data != nil || len(a.Errors) != 1 {
			t.Fatalf("want one error and no data: %v %v", a.Data, a.Errors)
		}
		return a.Errors[0]
	}
	if got := one(nest(11)); got != "Query exceeds maximum depth of 10" {
		t.Errorf("depth: %q", got)
	}
	// Depth 10 passes the limit (and fails later on the unknown fields).
	if got := one(nest(10)); strings.Contains(got, "maximum depth") {
		t.Errorf("depth 10 refused: %q", got)
	}
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, fmt.Sprintf(`t%d: test(inputString: "x") { output }`, i))
	}
	if got := one("{ " + strings.Join(many, " ") + " }"); got != "GraphQL queries should have at most 10 root fields, got 11 root fields. "+
		"To increase the limit, set the MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS environment variable." {
		t.Errorf("root fields: %q", got)
	}
	// Root fields count through fragments, aliases per selection set too.
	if got := one("fragment F on Query { " + strings.Join(many, " ") + " } { ...F }"); !strings.Contains(got, "got 11 root fields") {
		t.Errorf("root fields via a fragment: %q", got)
	}
	var aliases []string
	for i := 0; i < 11; i++ {
		aliases = append(aliases, fmt.Sprintf("o%d: output", i))
	}
	if got := one(`{ test(inputString: "x") { ` + strings.Join(aliases, " ") + ` } }`); got != "GraphQL queries should have at most 10 aliases, got 11 aliases. "+
		"To increase the limit, set the MLFLOW_SERVER_GRAPHQL_MAX_ALIASES environment variable." {
		t.Errorf("aliases: %q", got)
	}
	var fields []string
	for i := 0; i < 1001; i++ {
		fields = append(fields, "output")
	}
	if got := one(`{ test(inputString: "x") { ` + strings.Join(fields, " ") + ` } }`); got != "Query exceeds maximum total selections of 1000" {
		t.Errorf("selections: %q", got)
	}
	// Fragments that multiply are expanded and counted, not trusted.
	if got := one(`fragment A on Test { output output output output output output output output output output }
		fragment B on MlflowRunInfo { runId }
		{ test(inputString: "x") { ...A } x: test(inputString: "x") { ...A } }`); !strings.Contains(got, "Fragment B") && !strings.Contains(got, "never used") {
		t.Logf("unused fragment answer: %q", got) // the library's validation
	}
	// Complexity: every field times the page size of the runs list.
	big := `{ mlflowSearchRuns(input: {experimentIds: ["0"], maxResults: 50000}) { runs { info { runId runName status startTime } experiment { name } } } }`
	if got := one(big); !strings.HasPrefix(got, "Query exceeds maximum complexity of 100000") {
		t.Errorf("complexity: %q", got)
	}
	// The same through a variable.
	a := gql(t, ts, `query q($in: MlflowSearchRunsInput) { mlflowSearchRuns(input: $in) { runs { info { runId runName status startTime } experiment { name } } } }`,
		map[string]any{"in": map[string]any{"experimentIds": []string{"0"}, "maxResults": 50000}})
	if len(a.Errors) != 1 || !strings.HasPrefix(a.Errors[0], "Query exceeds maximum complexity") {
		t.Errorf("complexity via variables: %v", a.Errors)
	}
	// A page of 100 passes.
	a = gql(t, ts, `{ mlflowSearchRuns(input: {experimentIds: ["0"], maxResults: 100}) { runs { info { runId runName status startTime } experiment { name } } } }`, nil)
	if a.Errors != nil {
		t.Errorf("small page: %v", a.Errors)
	}
	// Deep nesting in values is refused by the scanner, without recursion blowing up.
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if got := one(`{ test(inputString: ` + deep + `) { output } }`); !strings.HasPrefix(got, "Syntax Error") {
		t.Errorf("deep value: %q", got)
	}
}

// allowOnly is an Authorizer that lets the caller read the listed
// experiments and registered models only.
type allowOnly struct {
	exps   map[string]bool
	models map[string]bool
}

func (a allowOnly) CanReadExperiment(_ context.Context, id string) (bool, error) {
	return a.exps[id], nil
}
func (a allowOnly) CanReadRegisteredModel(_ context.Context, n string) (bool, error) {
	return a.models[n], nil
}
func (allowOnly) ExperimentCreated(context.Context, string) error              { return nil }
func (allowOnly) RegisteredModelCreated(context.Context, string) error         { return nil }
func (allowOnly) RegisteredModelRenamed(context.Context, string, string) error { return nil }

// TestGraphQLAuthorization: with an Authorizer in the request context,
// each resolver answers null for what the caller may not read, as MLflow's
// GraphQL authorization middleware does, and searches keep the readable.
func TestGraphQLAuthorization(t *testing.T) {
	ts, srv := newTestServer(t, func(o *Options) { o.Store = AuthorizedStore(o.Store) })
	expA, runA := gqlFixture(t, ts, "readable")
	expB, runB := gqlFixture(t, ts, "private")
	az := allowOnly{exps: map[string]bool{expA: true}, models: map[string]bool{"readable-model": true}}
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r.WithContext(WithAuthorizer(r.Context(), az)))
	}))
	t.Cleanup(gated.Close)

	queries := map[string]string{
		"mlflowGetExperiment":                `{ mlflowGetExperiment(input: {experimentId: "%[1]s"}) { experiment { name } } }`,
		"mlflowGetRun":                       `{ mlflowGetRun(input: {runId: "%[2]s"}) { run { info { runId } } } }`,
		"mlflowGetRun by runUuid":            `{ mlflowGetRun(input: {runUuid: "%[2]s"}) { run { info { runId } } } }`,
		"mlflowListArtifacts":                `{ mlflowListArtifacts(input: {runId: "%[2]s"}) { files { path } } }`,
		"mlflowGetMetricHistoryBulkInterval": `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["%[2]s"], metricKey: "loss"}) { metrics { value } } }`,
		"mlflowSearchRuns":                   `{ mlflowSearchRuns(input: {experimentIds: ["%[1]s"]}) { runs { info { runId } } } }`,
		"mlflowSearchRuns mutation":          `mutation { mlflowSearchRuns(input: {experimentIds: ["%[1]s"]}) { runs { info { runId } } } }`,
		"mlflowSearchDatasets":               `mutation { mlflowSearchDatasets(input: {experimentIds: ["%[1]s"]}) { datasetSummaries { name } } }`,
	}
	for name, tmpl := range queries {
		field := strings.Fields(name)[0]
		denied := gql(t, gated, fmt.Sprintf(tmpl, expB, runB), nil)
		if v, ok := denied.Data[field]; !ok || v != nil {
			t.Errorf("%s on the private experiment: %v %v", name, denied.Data, denied.Errors)
		}
		allowed := gql(t, gated, fmt.Sprintf(tmpl, expA, runA), nil)
		if allowed.Data[field] == nil || allowed.Errors != nil {
			t.Errorf("%s on the readable experiment: %v %v", name, allowed.Data, allowed.Errors)
		}
	}
	// A bulk query naming a readable and a private run is refused whole.
	a := gql(t, gated, `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["`+runA+`", "`+runB+`"], metricKey: "loss"}) { metrics { runId } } }`, nil)
	if at(t, a.Data, "mlflowGetMetricHistoryBulkInterval") != nil {
		t.Errorf("mixed bulk: %v", a.Data)
	}
	// Searching both experiments answers the readable one's runs only.
	a = gql(t, gated, `{ mlflowSearchRuns(input: {experimentIds: ["`+expA+`", "`+expB+`"]}) { runs { info { runId experimentId } } } }`, nil)
	runs := at(t, a.Data, "mlflowSearchRuns", "runs").([]any)
	if len(runs) != 1 || at(t, runs[0], "info", "runId") != runA {
		t.Errorf("mixed search: %v", runs)
	}
	// Model versions of a run are those of models the caller may read.
	az.models["readable-model"] = false
	a = gql(t, gated, `{ mlflowGetRun(input: {runId: "`+runA+`"}) { run { modelVersions { name } } } }`, nil)
	if got := at(t, a.Data, "mlflowGetRun", "run", "modelVersions"); !reflect.DeepEqual(got, []any{}) {
		t.Errorf("modelVersions of an unreadable model: %v", got)
	}
	a = gql(t, gated, `{ mlflowSearchModelVersions(input: {filter: "name='private-model'"}) { modelVersions { name } } }`, nil)
	if got := at(t, a.Data, "mlflowSearchModelVersions", "modelVersions"); !reflect.DeepEqual(got, []any{}) {
		t.Errorf("search of an unreadable model: %v", got)
	}
	// Without an Authorizer (no gateway) everything is readable.
	a = gql(t, ts, `{ mlflowGetExperiment(input: {experimentId: "`+expB+`"}) { experiment { name } } }`, nil)
	if at(t, a.Data, "mlflowGetExperiment", "experiment", "name") != "private" {
		t.Errorf("ungated: %v %v", a.Data, a.Errors)
	}
}
