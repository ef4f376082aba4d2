"""MLflow 3 client: trace tags and metadata, traces inside a run, searches
(order, paging, run and tag filters), tag edits and deletes."""
import mlflow
from mlflow import MlflowClient

from common import PROXY, step

mlflow.set_tracking_uri(PROXY)
step("set_experiment")
exp = mlflow.set_experiment("mlflow3-trace-ops")
client = MlflowClient()


@mlflow.trace(name="retrieve")
def retrieve(q):
    return ["doc-1", "doc-2"]


@mlflow.trace(name="answer")
def answer(q):
    mlflow.update_current_trace(
        tags={"team": "search", "env": "test"},
        metadata={"mlflow.trace.session": "session-1", "mlflow.trace.user": "user-1"},
    )
    docs = retrieve(q)
    return f"{q}: {len(docs)} docs"


step("trace_tagged")
answer("first")
t1 = mlflow.get_last_active_trace_id()

step("trace_in_run")
with mlflow.start_run(run_name="traced-run") as run:
    answer("second")
    t2 = mlflow.get_last_active_trace_id()

step("get_trace_in_run")
tr = mlflow.get_trace(t2)
assert tr.info.trace_metadata.get("mlflow.sourceRun") == run.info.run_id, tr.info.trace_metadata
assert tr.info.tags.get("team") == "search"
assert tr.info.trace_metadata.get("mlflow.trace.session") == "session-1"
assert [s.name for s in tr.data.spans] == ["answer", "retrieve"], [s.name for s in tr.data.spans]

step("search_order_paging")
page1 = client.search_traces(locations=[exp.experiment_id], max_results=1, order_by=["timestamp_ms ASC"])
assert [t.info.trace_id for t in page1] == [t1], page1
assert page1.token
page2 = client.search_traces(locations=[exp.experiment_id], max_results=1, order_by=["timestamp_ms ASC"], page_token=page1.token)
assert [t.info.trace_id for t in page2] == [t2], page2

step("search_by_run")
got = mlflow.search_traces(locations=[exp.experiment_id], run_id=run.info.run_id, return_type="list")
assert [t.info.trace_id for t in got] == [t2], got

step("search_by_tag")
got = mlflow.search_traces(locations=[exp.experiment_id], filter_string="tag.team = 'search'", order_by=["timestamp_ms DESC"], return_type="list")
assert [t.info.trace_id for t in got] == [t2, t1], got

step("set_trace_tag")
mlflow.set_trace_tag(t1, "reviewed", "yes")
got = mlflow.search_traces(locations=[exp.experiment_id], filter_string="tag.reviewed = 'yes'", return_type="list")
assert [t.info.trace_id for t in got] == [t1], got

step("delete_trace_tag")
mlflow.delete_trace_tag(t1, "reviewed")
info = client.get_trace(t1).info
assert "reviewed" not in info.tags, info.tags

step("delete_traces")
n = client.delete_traces(experiment_id=exp.experiment_id, trace_ids=[t1])
assert n == 1, n
got = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
assert [t.info.trace_id for t in got] == [t2], got

print("ALL OK")
