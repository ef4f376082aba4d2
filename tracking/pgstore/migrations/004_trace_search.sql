-- Trace search on assessments (feedback.<name>, expectation.<name>,
-- issue.id): the fields MLflow's assessments table has as columns, kept
-- beside the JSON body by the writers. value is the text MLflow stores
-- (json.dumps of the value, tracking.Assessment.SearchFields). Rows written
-- before this migration have NULLs until the store fills them in when it
-- opens (backfillAssessmentSearch).
ALTER TABLE assessments
	ADD COLUMN assessment_type text COLLATE "C",
	ADD COLUMN name            text COLLATE "C",
	ADD COLUMN value           text COLLATE "C",
	ADD COLUMN valid           boolean,
	ADD COLUMN session_scoped  boolean;
-- Values may be longer than an index row can hold: the index keeps their
-- first 200 characters (pgstore.assessmentValuePrefix).
CREATE INDEX assessments_search ON assessments (assessment_type, name, left(value, 200));

-- prompt = 'name/version': whether a linked prompts tag value (a JSON list
-- of {"name", "version"}) holds the version; text that is not such a list
-- links nothing.
CREATE FUNCTION mlflow_links_prompt(tag text, pname text, pversion text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(tag::jsonb) e
		WHERE jsonb_typeof(e) = 'object' AND e->>'name' = pname AND e->>'version' = pversion);
EXCEPTION WHEN others THEN
	RETURN false;
END $$;

-- order_by execution_time: an experiment's traces by execution time (the
-- tie-breakers then sort incrementally).
CREATE INDEX trace_info_experiment_execution ON trace_info (experiment_id, execution_time_ms);
