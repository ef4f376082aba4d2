-- Runs an import wrote (ImportRun) whose metric history is not all in
-- yet (FinishRunImport deletes the row): an import cut off half-way
-- leaves the mark, and the next import writes the run again whole.
CREATE TABLE run_import_pending (
	run_uuid text COLLATE "C" PRIMARY KEY REFERENCES runs ON DELETE CASCADE
);
