-- caddy-mlflow tracking schema, version 1. Forward-only: never edit a
-- migration that has shipped; add the next numbered file instead.
--
-- Conventions: times are epoch milliseconds (bigint); experiment ids are
-- bigint (MLflow's are decimal strings); run ids are 32 lower-hex chars;
-- "lifecycle_stage" is 'active' or 'deleted'. Searches are compiled to
-- parameterized SQL over these tables; the indexes below serve them.

-- ==== core: experiments, runs, params, metrics, tags, inputs (pgcore) ====
--
-- Text that is compared or ordered by searches uses COLLATE "C": byte
-- order, which for UTF-8 is code-point order, as the bbolt store and
-- Go's strings.Compare order (MLflow's reference server runs on SQLite,
-- whose default collation is the same binary order).

CREATE TABLE experiments (
	experiment_id     bigint PRIMARY KEY,
	name              text COLLATE "C" NOT NULL,
	artifact_location text NOT NULL,
	lifecycle_stage   text NOT NULL DEFAULT 'active',
	creation_time     bigint NOT NULL,
	last_update_time  bigint NOT NULL,
	CONSTRAINT experiments_name_key UNIQUE (name)
);
CREATE SEQUENCE experiments_id_seq START 1 OWNED BY experiments.experiment_id;
-- search_experiments' default order.
CREATE INDEX experiments_creation ON experiments (creation_time DESC, experiment_id);

CREATE TABLE experiment_tags (
	experiment_id bigint NOT NULL REFERENCES experiments ON DELETE CASCADE,
	key           text COLLATE "C" NOT NULL,
	value         text COLLATE "C" NOT NULL,
	PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
	run_uuid        text COLLATE "C" PRIMARY KEY,
	experiment_id   bigint NOT NULL REFERENCES experiments,
	name            text COLLATE "C" NOT NULL DEFAULT '',
	user_id         text COLLATE "C" NOT NULL DEFAULT '',
	status          text COLLATE "C" NOT NULL,
	start_time      bigint NOT NULL,
	end_time        bigint,
	artifact_uri    text COLLATE "C" NOT NULL,
	lifecycle_stage text NOT NULL DEFAULT 'active',
	deleted_time    bigint
);
-- MLflow's default run order within an experiment.
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time DESC, run_uuid);

CREATE TABLE params (
	run_uuid text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	key      text COLLATE "C" NOT NULL,
	value    text COLLATE "C" NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);

CREATE TABLE tags (
	run_uuid text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	key      text COLLATE "C" NOT NULL,
	value    text COLLATE "C" NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);

-- Full metric history; one row per distinct point. NaN is stored as value
-- 0 with is_nan set, as MLflow's SQL schema does, so NaN points dedupe
-- with each other and sort next to 0. The primary key is the point, in
-- get_metric_history's order (timestamp, step, value): exact duplicates
-- are ignored and history pages are keyset ranges of this index.
CREATE TABLE metrics (
	run_uuid  text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	key       text COLLATE "C" NOT NULL,
	timestamp bigint NOT NULL,
	step      bigint NOT NULL,
	value     double precision NOT NULL,
	is_nan    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (run_uuid, key, timestamp, step, value, is_nan)
);

-- The latest value of each metric of a run (max step, then timestamp, then
-- value with NaN as 0), as MLflow's latest_metrics table.
CREATE TABLE latest_metrics (
	run_uuid  text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	key       text COLLATE "C" NOT NULL,
	timestamp bigint NOT NULL,
	step      bigint NOT NULL,
	value     double precision NOT NULL,
	is_nan    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (run_uuid, key)
);
-- Metric filters and orders: a search ordered by a metric it also filters
-- on reads (is_nan, value) in order from one of these (numbers first, then
-- NaN, in either direction) and stops at the page's LIMIT; filters on
-- key and value are checked inside either index.
CREATE INDEX latest_metrics_key_asc ON latest_metrics (key, is_nan, value);
CREATE INDEX latest_metrics_key_desc ON latest_metrics (key, is_nan, value DESC);

-- Datasets are shared by (name, digest); the first logging defines source,
-- schema and profile.
CREATE TABLE datasets (
	name         text COLLATE "C" NOT NULL,
	digest       text COLLATE "C" NOT NULL,
	source_type  text NOT NULL,
	source       text NOT NULL,
	schema       text NOT NULL DEFAULT '',
	profile      text NOT NULL DEFAULT '',
	PRIMARY KEY (name, digest)
);

-- A dataset input of a run, with its input tags (JSON list of {key,
-- value}); context is the mlflow.data.context input tag (NULL without
-- one), kept apart for datasets.context filters.
CREATE TABLE run_dataset_inputs (
	run_uuid text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	name     text COLLATE "C" NOT NULL,
	digest   text COLLATE "C" NOT NULL,
	tags     jsonb NOT NULL DEFAULT '[]',
	context  text COLLATE "C",
	PRIMARY KEY (run_uuid, name, digest)
);
CREATE INDEX run_dataset_inputs_name ON run_dataset_inputs (name, digest);

CREATE TABLE run_model_inputs (
	run_uuid text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	model_id text COLLATE "C" NOT NULL,
	PRIMARY KEY (run_uuid, model_id)
);



-- ==== model registry: models, versions, aliases, tags (pgreg) ====

-- Names, keys and aliases use the "C" collation: the registry orders them
-- bytewise (as MLflow's SQLite store and the bbolt store do), and equality
-- and LIKE are exact. max_version is the highest version number ever
-- created, so that numbers are never reused after deletes; creating a
-- version locks the model row and takes max_version + 1. Renames cascade
-- to versions, tags and aliases through ON UPDATE CASCADE in one statement.
CREATE TABLE registered_models (
	name              text COLLATE "C" PRIMARY KEY,
	creation_time     bigint NOT NULL,
	last_updated_time bigint NOT NULL,
	description       text NOT NULL DEFAULT '',
	max_version       bigint NOT NULL DEFAULT 0
);
CREATE INDEX registered_models_updated ON registered_models (last_updated_time, name);

CREATE TABLE registered_model_tags (
	name  text COLLATE "C" NOT NULL REFERENCES registered_models ON UPDATE CASCADE ON DELETE CASCADE,
	key   text COLLATE "C" NOT NULL,
	value text COLLATE "C" NOT NULL,
	PRIMARY KEY (name, key)
);
CREATE INDEX registered_model_tags_key_value ON registered_model_tags (key, value);

-- Aliases have no foreign key to the version: an alias of a deleted
-- version stays (and no longer resolves), as in MLflow 2.22.1.
CREATE TABLE registered_model_aliases (
	name    text COLLATE "C" NOT NULL REFERENCES registered_models ON UPDATE CASCADE ON DELETE CASCADE,
	alias   text COLLATE "C" NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (name, alias)
);

CREATE TABLE model_versions (
	name              text COLLATE "C" NOT NULL REFERENCES registered_models ON UPDATE CASCADE ON DELETE CASCADE,
	version           bigint NOT NULL,
	creation_time     bigint NOT NULL,
	last_updated_time bigint NOT NULL,
	current_stage     text NOT NULL,
	description       text NOT NULL DEFAULT '',
	source            text COLLATE "C" NOT NULL DEFAULT '',
	storage_location  text NOT NULL DEFAULT '',
	run_id            text COLLATE "C" NOT NULL DEFAULT '',
	run_link          text NOT NULL DEFAULT '',
	status            text NOT NULL,
	user_id           text NOT NULL DEFAULT '',
	model_id          text NOT NULL DEFAULT '',
	PRIMARY KEY (name, version)
);
-- The default search order (last update newest first, name, version).
CREATE INDEX model_versions_updated ON model_versions (last_updated_time DESC, name, version DESC);
CREATE INDEX model_versions_run ON model_versions (run_id);

CREATE TABLE model_version_tags (
	name    text COLLATE "C" NOT NULL,
	version bigint NOT NULL,
	key     text COLLATE "C" NOT NULL,
	value   text COLLATE "C" NOT NULL,
	PRIMARY KEY (name, version, key),
	FOREIGN KEY (name, version) REFERENCES model_versions ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX model_version_tags_key_value ON model_version_tags (key, value);



-- ==== logged models, their params/tags/metrics, traces, assessments (pgreg) ====

-- MLflow 3 logged models. Tags and params keep their insertion order
-- (seq), as the bbolt store lists them; metric points are rows keyed by
-- the whole point, so exact repeats are no-ops. NaN is stored as 0 plus
-- is_nan, as for run metrics.
CREATE TABLE logged_models (
	model_id               text COLLATE "C" PRIMARY KEY,
	experiment_id          bigint NOT NULL REFERENCES experiments ON DELETE CASCADE,
	name                   text COLLATE "C" NOT NULL,
	artifact_location      text COLLATE "C" NOT NULL,
	creation_timestamp     bigint NOT NULL,
	last_updated_timestamp bigint NOT NULL,
	status                 text NOT NULL,
	status_number          int NOT NULL,
	model_type             text COLLATE "C" NOT NULL DEFAULT '',
	source_run_id          text COLLATE "C" NOT NULL DEFAULT '',
	status_message         text COLLATE "C" NOT NULL DEFAULT ''
);
-- The default search order within an experiment (newest first, model id).
CREATE INDEX logged_models_experiment_created ON logged_models (experiment_id, creation_timestamp DESC, model_id);

CREATE TABLE logged_model_tags (
	model_id text COLLATE "C" NOT NULL REFERENCES logged_models ON DELETE CASCADE,
	key      text COLLATE "C" NOT NULL,
	value    text COLLATE "C" NOT NULL,
	seq      bigserial,
	PRIMARY KEY (model_id, key)
);

CREATE TABLE logged_model_params (
	model_id text COLLATE "C" NOT NULL REFERENCES logged_models ON DELETE CASCADE,
	key      text COLLATE "C" NOT NULL,
	value    text COLLATE "C" NOT NULL,
	seq      bigserial,
	PRIMARY KEY (model_id, key)
);

CREATE TABLE logged_model_metrics (
	model_id       text COLLATE "C" NOT NULL REFERENCES logged_models ON DELETE CASCADE,
	key            text COLLATE "C" NOT NULL,
	timestamp      bigint NOT NULL,
	step           bigint NOT NULL,
	run_id         text COLLATE "C" NOT NULL DEFAULT '',
	dataset_name   text COLLATE "C" NOT NULL DEFAULT '',
	dataset_digest text COLLATE "C" NOT NULL DEFAULT '',
	value          double precision NOT NULL,
	is_nan         boolean NOT NULL DEFAULT false
);
-- The point is the key (exact repeats are no-ops); the column order is the
-- order searches pick a metric's latest point in (greatest timestamp and
-- step, then the first in point order), so that is one index probe.
CREATE UNIQUE INDEX logged_model_metrics_point ON logged_model_metrics
	(model_id, key, timestamp DESC, step DESC, run_id, dataset_name, dataset_digest, value, is_nan);

-- Logged models recorded as outputs of a run (LogOutputs; GetRun lists
-- them in model id order).
CREATE TABLE run_model_outputs (
	run_uuid text COLLATE "C" NOT NULL REFERENCES runs ON DELETE CASCADE,
	model_id text COLLATE "C" NOT NULL,
	step     bigint NOT NULL,
	PRIMARY KEY (run_uuid, model_id)
);

-- Traces (MLflow 2.x trace info and 3.x additions). Tags, request
-- metadata, run links and assessments keep their insertion order (seq).
CREATE TABLE trace_info (
	request_id        text COLLATE "C" PRIMARY KEY,
	experiment_id     bigint NOT NULL REFERENCES experiments ON DELETE CASCADE,
	timestamp_ms      bigint NOT NULL,
	execution_time_ms bigint NOT NULL DEFAULT 0,
	status            text COLLATE "C" NOT NULL,
	client_request_id text COLLATE "C" NOT NULL DEFAULT '',
	request_preview   text NOT NULL DEFAULT '',
	response_preview  text NOT NULL DEFAULT ''
);
-- The default search order within an experiment (newest first, id).
CREATE INDEX trace_info_experiment_timestamp ON trace_info (experiment_id, timestamp_ms DESC, request_id);

CREATE TABLE trace_tags (
	request_id text COLLATE "C" NOT NULL REFERENCES trace_info ON DELETE CASCADE,
	key        text COLLATE "C" NOT NULL,
	value      text COLLATE "C" NOT NULL,
	seq        bigserial,
	PRIMARY KEY (request_id, key)
);
CREATE INDEX trace_tags_key_value ON trace_tags (key, value);

CREATE TABLE trace_request_metadata (
	request_id text COLLATE "C" NOT NULL REFERENCES trace_info ON DELETE CASCADE,
	key        text COLLATE "C" NOT NULL,
	value      text COLLATE "C" NOT NULL,
	seq        bigserial,
	PRIMARY KEY (request_id, key)
);
CREATE INDEX trace_request_metadata_key_value ON trace_request_metadata (key, value);

-- Runs a trace was linked to with link-to-run (no foreign key to runs:
-- the link is checked when made and kept like the bbolt store keeps it).
CREATE TABLE trace_run_links (
	request_id text COLLATE "C" NOT NULL REFERENCES trace_info ON DELETE CASCADE,
	run_id     text COLLATE "C" NOT NULL,
	seq        bigserial,
	PRIMARY KEY (request_id, run_id)
);
CREATE INDEX trace_run_links_run ON trace_run_links (run_id);

-- Assessments: the tracking.Assessment JSON as given (json keeps the
-- text of the raw value messages exactly), one row each.
CREATE TABLE assessments (
	request_id    text COLLATE "C" NOT NULL REFERENCES trace_info ON DELETE CASCADE,
	assessment_id text COLLATE "C" NOT NULL,
	body          json NOT NULL,
	seq           bigserial,
	PRIMARY KEY (request_id, assessment_id)
);



-- ==== end ====
