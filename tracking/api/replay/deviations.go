package replay

// Deviations are the exchanges this server answers differently
// from MLflow 2.22.1 on purpose, per transcript.
var Deviations = map[string]Options{
	"experiments_crud.jsonl": {
		Skip: map[int]string{
			37: "delete-experiment-tag is implemented here (MLflow 2.22.1 had no such route and answered 404); " +
				"sending it would delete the tag the final search expects",
		},
	},
	"registry_versions.jsonl": {
		Skip: map[int]string{
			81: "the real server answered 500 (it could not resolve mlflow-artifacts: against a sqlite tracking URI); we serve the file",
		},
	},
	"log_inputs_datasets.jsonl": {
		Skip: map[int]string{
			17: "log-inputs without datasets is accepted (MLflow 3 made datasets optional; " +
				"mlflow.log_metric with a model_id sends models only); 2.22.1 answered 400. Logging nothing changes no state",
		},
	},
	"params_metrics.jsonl": {
		StatusOnly: map[int]string{
			50: "run data lacks metric lit_nan: its bare-NaN log-metric (#47, a quirk) is refused with a 400 here",
			64: "history of lit_nan is empty: its bare-NaN log-metric (#47, a quirk) is refused with a 400 here",
		},
	},
}

// OutOfScope lists the transcripts this server does not serve yet, with the
// reason, for RunDir's skip argument.
var OutOfScope = map[string]string{}

// ProjectOptions returns the replay options of one transcript under this
// project's deviations, for RunDir's options argument.
func ProjectOptions(name string) Options { return Deviations[name] }

// Decision is one point where this server's accept/refuse decision or answer
// was settled against MLflow's code: what MLflow does, what we do, and why.
type Decision struct {
	Point  string // the request or behaviour, e.g. "metrics/get-history order"
	MLflow string // what MLflow 3.x does, and where its code decides it
	Ours   string // what this server does ("same" when it matches)
	Reason string // one line: why, especially for a deliberate deviation
}

// Decisions are the parity points settled so far, in the order they were
// decided. A Decision whose Ours is not "same" is a deliberate deviation and
// is listed in README.md under "Differences from MLflow".
var Decisions = []Decision{
	{
		Point:  "registry tag limits (registered-models/create, set-tag; model-versions/create, set-tag)",
		MLflow: "utils/validation.py _validate_registered_model_tag / _validate_model_version_tag, called by the registry store: tag name rules, key <= 250, (version tags: 'Prompt text exceeds max length of 5000 characters.' for mlflow.prompt.text), value <= 5000 code points ('<key|value>' exceeds the maximum length of N characters)",
		Ours:   "same (validate.RegisteredModelTag, validate.ModelVersionTag; read in v2.22.1 and v3.1.0rc0, both 5000); we accepted values up to 100000 before, as the condensed contract (mlflow-rest-api.md) gives for later releases; no MLflow code read here shows that limit",
		Reason: "parity; TestRegistryTagLimits",
	},
	{
		Point:  "registry alias rules (registered-models/alias)",
		MLflow: "utils/validation.py _validate_model_alias_name, from SqlAlchemyStore.set_registered_model_alias before _validate_model_version: empty, ^[\\w\\-]*$, 'Registered model alias name' <= 255, 'latest' reserved (fixed text), ^[vV]\\d+$ 'Version alias name ... is reserved.'",
		Ours:   "same (validate.ModelAlias); our length and reserved-name messages differed before",
		Reason: "parity; TestRegistryAliasRules",
	},
	{
		Point:  "check order: schema before store (registry version numbers, stages)",
		MLflow: "server/handlers.py _get_request_message runs every schema check (version is [_assert_string, _assert_required]) before the store's _validate_model_version; transition_model_version_stage canonicalizes the stage before reading the version",
		Ours:   "same: a declaration's fields are all checked before its validate(); we parsed the version number first before",
		Reason: "parity; TestDeclCheckOrder",
	},
	{
		Point:  "max_results above the limit (registered-models/search, model-versions/search)",
		MLflow: "handlers.py schema lambda x: _assert_less_than_or_equal(int(x), 1000 / 200_000) raises a bare AssertionError, so _validate_param_against_schema answers invalid_value(...) with the ' Hint: Value was of type ...' text; the store's 'It must be at most' is never reached",
		Ours:   "same (atMost check)",
		Reason: "parity; TestRegistrySearchMaxResults",
	},
	{
		Point:  "max_results < 1 on model-versions/search",
		MLflow: "SqlAlchemyStore.search_model_versions: 'Invalid value for max_results. It must be a positive integer, but got N'",
		Ours:   "same",
		Reason: "parity; TestRegistrySearchMaxResults",
	},
	{
		Point:  "max_results < 1 on registered-models/search",
		MLflow: "no check in the handler schema or SqlAlchemyStore.search_registered_models: 0 queries LIMIT 1 and answers an empty page whose token points at the same offset; a negative value becomes a negative SQL LIMIT (SQLite: no limit, minus the last |N| rows; others: a database error)",
		Ours:   "refused: 'Invalid value for request parameter max_results. It must be at least 1, but got value N'",
		Reason: "MLflow's answer depends on the database and 0 makes a client that follows tokens loop forever",
	},
	{
		Point:  "int64 fields sent as JSON strings (e.g. max_results: \"5\")",
		MLflow: "protobuf json_format (parse_dict) takes a string holding an integer for int64; the schema's _assert_intlike accepts it too",
		Ours:   "same",
		Reason: "parity; TestProtoJSONScalars",
	},
	{
		Point:  "a scalar for a repeated field (\"experiment_ids\": \"1\")",
		MLflow: "json_format raises ParseError ('repeated field ... must be in []'), so the schema's type checks run: runs/search ([_assert_array]) answers the invalid-value hint; experiments/search-datasets has no schema and sees the field unset ('must specify at least one experiment_id'); elements before a bad one are kept. GET query strings: _get_request_message builds a list (args.getlist) for every repeated field",
		Ours:   "same (search-datasets answered the type error before)",
		Reason: "parity; TestProtoJSONScalars",
	},
	{
		Point:  "enum values (view_type, run_view_type) by name, number, unknown",
		MLflow: "parse_dict passes ignore_unknown_fields=True: an unknown name is ignored; an unknown number of a proto2 (closed) enum fails the parse, the field stays unset, and the schema's type checks then run: _assert_intlike (search-experiments view_type) or no schema (search-runs run_view_type) accepts it, so the default ACTIVE_ONLY; _assert_string (update-run status) refuses it with the invalid-value hint",
		Ours:   "same for the value (decl: enumField vs enumStrField; runs/search refused an unknown run_view_type number before it was declared); MLflow's failed parse also leaves the JSON fields after the bad enum unset, while we still read them",
		Reason: "the fields' fate would hang on JSON key order; TestProtoJSONScalars, TestSearchRunsViewTypeNumber",
	},
	{
		Point:  "log-metric schema: model_id, dataset_name, dataset_digest, and check order",
		MLflow: "server/handlers.py _log_metric schema gives the three [_assert_string]; _get_request_message runs the whole schema before store.log_metric's _validate_metric (name, timestamp, ...)",
		Ours:   "same; before, dataset_name and dataset_digest were read only with a model_id, and after the store's metric checks",
		Reason: "parity; TestLogMetricSchemaBeforeStore",
	},
	{
		Point:  "nested message fields of the wrong type (log-batch metrics/params/tags, log-inputs datasets/models)",
		MLflow: "parse_dict raises ParseError and _get_request_message goes on with the message as far as it was parsed; the schemas check only the elements' required keys (_assert_metrics_fields_present, ...), so the request is logged partly",
		Ours:   "refused with the invalid-value hint naming the field's path ('metrics[1].dataset_digest', 'datasets[0].dataset.name'), element by element, each field's type then its presence (decl msgList); a log-batch metric's dataset_name/dataset_digest are now checked without a model_id too",
		Reason: "what is logged must not hang on where the parser stopped; TestNestedMessagePaths",
	},
	{
		Point:  "a blank string for a required number or list (log-metric timestamp and value, get-history-bulk-interval run_ids)",
		MLflow: "the blank string fails the proto parse, so _validate_param_against_schema runs the type checks in the schema's order: log-metric timestamp [_assert_intlike, _assert_required] answers the invalid-value hint, value [_assert_required, _assert_floatlike] and run_ids [_assert_required, _assert_array, ...] answer 'Missing value'; log-batch's _assert_metrics_fields_present answers 'Missing value' for metrics[i].timestamp",
		Ours:   "same (decl req / reqAfterType); before, log-metric's blank timestamp was 'Missing value' and a blank run_ids the invalid-value hint",
		Reason: "parity; TestLogMetricSchemaBeforeStore, TestNestedMessagePaths",
	},
	{
		Point:  "runs/search max_results below 1",
		MLflow: "handlers.py _search_runs schema checks only <= 50000 (the invalid-value hint); SqlAlchemyStore._search_runs then calls _validate_max_results_param(allow_null=True) before parsing the filter: 'Invalid value N for parameter 'max_results' supplied. It must be a positive integer'",
		Ours:   "same; before, below 1 answered the schema's hint",
		Reason: "parity; TestSearchRunsViewTypeNumber",
	},
	{
		Point:  "query strings with invalid UTF-8 (GET requests)",
		MLflow: "werkzeug decodes request.args as UTF-8 with errors='replace': invalid bytes become U+FFFD before _get_request_message sees them",
		Ours:   "same, one U+FFFD per invalid byte (Python's decoder gives one per maximal invalid subsequence, e.g. one for a truncated 3-byte sequence); before, handlers saw the raw bytes, so a lookup by such a name missed what MLflow finds",
		Reason: "parity; found by FuzzDecode; TestQueryInvalidUTF8",
	},
	{
		Point: "repeated slashes in a request path (//api/2.0/mlflow/..., /api/2.0//mlflow/...)",
		MLflow: "mlflow/server/__init__.py builds a plain Flask app, whose URL map is Werkzeug's default Map(merge_slashes=True). " +
			"werkzeug/routing/map.py MapAdapter.match matches \"/\" + path_info.lstrip(\"/\"), so leading slashes are dropped and the route is served; " +
			"werkzeug/routing/matcher.py StateMachineMatcher.match, when the path matches no rule as it is, retries with re.sub(\"/{2,}?\", \"/\", path) " +
			"(each pair halved: /// becomes //) and raises RequestPath, which MapAdapter.match turns into RequestRedirect: 308 to the merged URL with the query; " +
			"a merged path routed for another method gets 405, none 404. The basic-auth app's before_request runs before Flask raises the redirect, so no credentials get 401",
		Ours: "same: caddymodule/slashes.go drops leading slashes before the UI, the authorization table and the API see the path, " +
			"and answers the 308 (or the merged path's 405) behind the gateway, so it needs valid credentials and runs no endpoint",
		Reason: "MLflow clients and proxies that join a base URL ending in / get what mlflow server answers; " +
			"authorization sees only canonical paths, so a double slash cannot reach a route unchecked",
	},
	{
		Point:  "runs/outputs without models",
		MLflow: "server/handlers.py _log_outputs: schema \"models\": [_assert_required, _assert_array]: absent is 'Missing value for required parameter 'models'.', an empty list passes",
		Ours:   "same; we accepted a request without models before",
		Reason: "parity; TestLoggedModelRequestMessages",
	},
	{
		Point:  "max_results above 500 (traces search, v2 and v3)",
		MLflow: "server/handlers.py _search_traces (2.22.1) and _search_traces_v3: schema lambda x: _assert_less_than_or_equal(int(x), 500) fails with a bare AssertionError, so the answer is invalid_value(...) with ' Hint: Value was of type ...' (recorded: traces.jsonl #48)",
		Ours:   "same (atMost check); we answered 'It must be at most 500' before",
		Reason: "parity; TestTracesV3API",
	},
	{
		Point:  "model_id in the body of logged-models/{model_id} PATCH (finalize) and .../params",
		MLflow: "server/handlers.py _finalize_logged_model and _log_logged_model_params: schema \"model_id\": [_assert_string, _assert_required] on the body (MLflow's client repeats the path's id there); finalize then acts on the body's id, params on the path's",
		Ours:   "the body's model_id is required as MLflow's schema says (we ignored it before); both act on the path's id",
		Reason: "parity of the check; the path's id is the one the gateway authorized (authz LoggedModel scope), so a body naming another model must not redirect the write; TestLoggedModelRequestMessages",
	},
	{
		Point:  "traces/get allow_partial in the query string",
		MLflow: "server/handlers.py _get_request_message: a bool field of a GET query must be 'true' or 'false' in any case, else 'Invalid boolean value: <v>, must be 'true' or 'false'.' (raised while reading the query, before the schema's checks)",
		Ours:   "same; we read any other value as false before",
		Reason: "parity; TestGetTraceAllowPartial",
	},
	{
		Point: "page tokens of every paged search (runs, experiments, registered models, model versions, logged models, traces v2/v3)",
		MLflow: "offset tokens: base64 of {\"offset\": N} (mlflow/utils/search_utils.py SearchUtils.create_page_token / " +
			"parse_start_offset_from_page_token, used by SqlAlchemyStore.search_runs, search_experiments, search_traces and the " +
			"SQL registry); logged models echo the request plus the offset (SearchLoggedModelsPaginationToken)",
		Ours: "keyset tokens: the sort values of the page's last row plus a check over the query (filter, order, experiments, " +
			"view type) and those values; a token of another query, or altered, is 400 INVALID_PARAMETER_VALUE \"Invalid page " +
			"token, parsed value=...\"; MLflow's offset tokens are still accepted; when a token is issued is unchanged " +
			"(search_runs and search_traces: every full page; the others: only when rows follow)",
		Reason: "an offset shifts when rows are inserted or deleted between page fetches, so a row is shown twice or never",
	},
	{
		Point:  "metrics/get-history order",
		MLflow: "SqlAlchemyStore.get_metric_history orders by (timestamp, step, value) (mlflow/store/tracking/sqlalchemy_store.py)",
		Ours:   "same",
		Reason: "aligned: the history keys are now stored in that order (they were ordered by step first; " +
			"schema-1 databases are migrated on open)",
	},
	{
		Point: "metrics/get-history max_results and page_token",
		MLflow: "3.x pages: handlers._get_metric_history passes both to SqlAlchemyStore.get_metric_history, which limits to " +
			"max_results, skips the token's offset and issues an offset token when more points follow",
		Ours: "every point in one page, no next_page_token; page_token is only type-checked and max_results is ignored, " +
			"as MLflow 2.22.1 answered (metric_history.jsonl #13 with max_results=3, #14 with page_token=abc)",
		Reason: "the recorded 2.22.1 exchanges must keep passing; MLflow's client sends max_results=25000 and follows tokens, " +
			"so one complete page is the same to it; the answer is streamed, never held in memory",
	},
	{
		Point: "metrics/get-history-bulk-interval order",
		MLflow: "SqlAlchemyStore.get_metric_history_bulk_interval_from_steps orders each run's sampled points by " +
			"(step, timestamp, value); runs in request order",
		Ours:   "same",
		Reason: "kept: the handler now sorts each run's points, since history streams in timestamp order",
	},
	{
		Point: "logged-models create with a source_run_id that names no run",
		MLflow: "accepted and stored: SqlAlchemyStore.create_logged_model does not look the run up and " +
			"logged_models.source_run_id has no foreign key; handlers._create_logged_model only asserts a string",
		Ours:   "same",
		Reason: "aligned: it was RESOURCE_DOES_NOT_EXIST before",
	},
	{
		Point: "runs/update with an unknown status",
		MLflow: "handlers._update_run reads the request with parse_dict (ParseDict, ignore_unknown_fields=True): an unknown " +
			"enum name (names are case-sensitive) is dropped, status stays unset and update_run_info changes nothing (200); " +
			"an unknown number of the closed RunStatus enum is a ParseError, which the _assert_string schema check makes a 400",
		Ours:   "same",
		Reason: "no change needed; runs_errors.jsonl #9 records \"DONE\" answering 200 unchanged",
	},
	{
		Point:  "artifact path canonical form (every route that takes an artifact path: mlflow-artifacts upload/download/list/delete/mpu, get-artifact, artifacts/list, model-versions/get-artifact, logged-model files/directories, upload-artifact)",
		MLflow: "utils/uri.py validate_path_is_safe, applied by handlers.py to every such path, and its return value used: _decode (urllib.parse.unquote, invalid UTF-8 as U+FFFD, then urlparse/urlunparse, which drops leading C0/space, tab/CR/LF, an empty ;params ?query #fragment and lowercases a scheme; repeated until stable, ValueError (500) after 10 rounds), then _escape_control_characters (C0 and DEL as lowercase %xx); the Python client applies the same function to every listed name before requesting it (store/artifact/http_artifact_repo.py list_artifacts)",
		Ours:   "same canonical form, stored and looked up (artifact.CleanPath): a log_image name's %72 uuid is stored as 'r', %c8 as U+FFFD, %10 stays the text %10; then refused: '..' and dot-and-space segments, empty segments, a backslash that leads, ends, doubles or delimits a dot-only part or follows a drive letter (any backslash on Windows, as MLflow there), drive letter or bare scheme first, C1 controls, invisible characters and Unicode look-alikes; a path that never settles or that urlunparse makes absolute (a //netloc, http:x) is a 400 'Invalid path', not a 500. Deviations kept: a '#' the client sent as such is accepted (one that only the further decoding makes, e.g. the %23 of a log_image name for step 23, is refused as MLflow does: MLflow's client refuses to list a directory holding it); a backslash is otherwise a name character, as on MLflow on Linux (a log_image uuid starting 5c makes one)",
		Reason: "names MLflow clients upload round-trip through list and the client's own transform (TestPythonClientRoundTrip, TestArtifactNamesThroughCaddy); the canonical form is a fixed point whose only escapes left are control escapes, so a further decoding by another layer cannot form a traversal (FuzzCleanEscapedPath)",
	},
}
