-- Spans received over OTLP (MLflow's spans table): one row per span of a
-- trace, the span itself in MLflow's stored form (Span.to_dict) in
-- content, the fields searches and the trace view need in columns.
-- Deleting a trace deletes its spans.
CREATE TABLE trace_spans (
	request_id           text COLLATE "C" NOT NULL REFERENCES trace_info ON DELETE CASCADE,
	span_id              text COLLATE "C" NOT NULL,
	parent_span_id       text COLLATE "C" NOT NULL DEFAULT '',
	name                 text COLLATE "C" NOT NULL,
	type                 text COLLATE "C" NOT NULL DEFAULT '',
	status               text COLLATE "C" NOT NULL,
	start_time_unix_nano bigint NOT NULL,
	end_time_unix_nano   bigint NOT NULL DEFAULT 0,
	content              text NOT NULL,
	PRIMARY KEY (request_id, span_id)
);
-- The order spans are served in: root spans first, then by start time.
CREATE INDEX trace_spans_order ON trace_spans (request_id, (parent_span_id <> ''), start_time_unix_nano, span_id);
