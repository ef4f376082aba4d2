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
}
