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



-- ==== logged models, their params/tags/metrics, traces, assessments (pgreg) ====



-- ==== end ====
