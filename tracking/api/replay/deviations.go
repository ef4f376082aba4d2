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
}
