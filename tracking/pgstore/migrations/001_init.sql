-- caddy-mlflow tracking schema, version 1. Forward-only: never edit a
-- migration that has shipped; add the next numbered file instead.
--
-- Conventions: times are epoch milliseconds (bigint); experiment ids are
-- bigint (MLflow's are decimal strings); run ids are 32 lower-hex chars;
-- "lifecycle_stage" is 'active' or 'deleted'. Searches are compiled to
-- parameterized SQL over these tables; the indexes below serve them.

-- ==== core: experiments, runs, params, metrics, tags, inputs (pgcore) ====

CREATE TABLE experiments (
	experiment_id     bigint PRIMARY KEY,
	name              text NOT NULL,
	artifact_location text NOT NULL,
	lifecycle_stage   text NOT NULL DEFAULT 'active',
	creation_time     bigint NOT NULL,
	last_update_time  bigint NOT NULL,
	CONSTRAINT experiments_name_key UNIQUE (name)
);
CREATE SEQUENCE experiments_id_seq START 1 OWNED BY experiments.experiment_id;

CREATE TABLE experiment_tags (
	experiment_id bigint NOT NULL REFERENCES experiments ON DELETE CASCADE,
	key           text NOT NULL,
	value         text NOT NULL,
	PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
	run_uuid        text PRIMARY KEY,
	experiment_id   bigint NOT NULL REFERENCES experiments,
	name            text NOT NULL DEFAULT '',
	user_id         text NOT NULL DEFAULT '',
	status          text NOT NULL,
	start_time      bigint NOT NULL,
	end_time        bigint,
	artifact_uri    text NOT NULL,
	lifecycle_stage text NOT NULL DEFAULT 'active',
	deleted_time    bigint
);
-- MLflow's default run order within an experiment.
CREATE INDEX runs_experiment_start ON runs (experiment_id, start_time DESC, run_uuid);

CREATE TABLE params (
	run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
	key      text NOT NULL,
	value    text NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX params_key_value ON params (key, value);

CREATE TABLE tags (
	run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
	key      text NOT NULL,
	value    text NOT NULL,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX tags_key_value ON tags (key, value);

-- Full metric history; one row per distinct point. is_nan keeps NaN apart
-- from the value column (stored as 0 then), as MLflow's SQL schema does.
CREATE TABLE metrics (
	run_uuid  text NOT NULL REFERENCES runs ON DELETE CASCADE,
	key       text NOT NULL,
	timestamp bigint NOT NULL,
	step      bigint NOT NULL,
	value     double precision NOT NULL,
	is_nan    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (run_uuid, key, timestamp, step, value, is_nan)
);

-- The latest value of each metric of a run (max step, then timestamp, then
-- value), as MLflow's latest_metrics table.
CREATE TABLE latest_metrics (
	run_uuid  text NOT NULL REFERENCES runs ON DELETE CASCADE,
	key       text NOT NULL,
	timestamp bigint NOT NULL,
	step      bigint NOT NULL,
	value     double precision NOT NULL,
	is_nan    boolean NOT NULL DEFAULT false,
	PRIMARY KEY (run_uuid, key)
);
CREATE INDEX latest_metrics_key_value ON latest_metrics (key, value);

CREATE TABLE datasets (
	name         text NOT NULL,
	digest       text NOT NULL,
	source_type  text NOT NULL,
	source       text NOT NULL,
	schema       text NOT NULL DEFAULT '',
	profile      text NOT NULL DEFAULT '',
	PRIMARY KEY (name, digest)
);

CREATE TABLE run_dataset_inputs (
	run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
	name     text NOT NULL,
	digest   text NOT NULL,
	tags     jsonb NOT NULL DEFAULT '[]',
	seq      bigserial,
	PRIMARY KEY (run_uuid, name, digest)
);

CREATE TABLE run_model_inputs (
	run_uuid text NOT NULL REFERENCES runs ON DELETE CASCADE,
	model_id text NOT NULL,
	seq      bigserial,
	PRIMARY KEY (run_uuid, model_id)
);



-- ==== model registry: models, versions, aliases, tags (pgreg) ====



-- ==== logged models, their params/tags/metrics, traces, assessments (pgreg) ====



-- ==== end ====
