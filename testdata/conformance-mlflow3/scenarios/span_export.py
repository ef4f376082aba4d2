"""MLflow 3 client: nested @mlflow.trace spans (types, attributes, inputs and
outputs, token usage, an exception), exported span by span to /v1/traces,
then read back: get_trace, search_traces (all, span.name, trace.status), the
pandas form."""
import mlflow
from mlflow.entities import SpanType

from common import PROXY, step


mlflow.set_tracking_uri(PROXY)
step("set_experiment")
exp = mlflow.set_experiment("mlflow3-tracing")
print("experiment", exp.experiment_id)


@mlflow.trace(span_type=SpanType.TOOL, attributes={"tool.kind": "lookup"})
def lookup(city):
    return {"city": city, "temp_c": 21.5}


@mlflow.trace(name="llm_call", span_type=SpanType.CHAT_MODEL)
def call_llm(prompt):
    span = mlflow.get_current_active_span()
    span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19})
    span.set_attributes({"model": "fake-model", "temperature": 0.2})
    return "It is sunny in " + prompt


@mlflow.trace(span_type=SpanType.AGENT)
def agent(question):
    info = lookup("Paris")
    with mlflow.start_span(name="format", span_type=SpanType.PARSER) as s:
        s.set_inputs({"info": info})
        text = f"{info['city']} {info['temp_c']}"
        s.set_outputs(text)
    return call_llm(text)


@mlflow.trace
def failing(x):
    raise ValueError("boom " + str(x))


step("trace_ok")
out = agent("What is the weather in Paris?")
ok_id = mlflow.get_last_active_trace_id()
print("trace ok", ok_id, out)

step("trace_error")
try:
    failing(3)
except ValueError:
    pass
err_id = mlflow.get_last_active_trace_id()
print("trace err", err_id)

step("get_trace_ok")
t = mlflow.get_trace(ok_id)
print("status", t.info.state, "spans", [(s.name, s.parent_id is not None) for s in t.data.spans])
assert t.info.trace_id == ok_id, t.info.trace_id
names = sorted(s.name for s in t.data.spans)
assert names == ["agent", "format", "llm_call", "lookup"], names
root = [s for s in t.data.spans if s.parent_id is None]
assert len(root) == 1 and root[0].name == "agent", root
byname = {s.name: s for s in t.data.spans}
assert byname["lookup"].parent_id == root[0].span_id
assert byname["format"].parent_id == root[0].span_id
assert byname["llm_call"].parent_id == root[0].span_id
assert byname["lookup"].inputs == {"city": "Paris"}, byname["lookup"].inputs
assert byname["lookup"].outputs == {"city": "Paris", "temp_c": 21.5}
assert byname["lookup"].get_attribute("tool.kind") == "lookup"
assert byname["lookup"].span_type == SpanType.TOOL
assert byname["llm_call"].get_attribute("model") == "fake-model"
assert byname["format"].outputs == "Paris 21.5"
assert root[0].inputs == {"question": "What is the weather in Paris?"}
assert root[0].outputs == "It is sunny in Paris 21.5"
print("token usage", t.info.token_usage)

step("get_trace_error")
te = mlflow.get_trace(err_id)
print("err state", te.info.state, [(s.name, s.status.status_code, [e.name for e in s.events]) for s in te.data.spans])
assert str(te.info.state) in ("ERROR", "TraceState.ERROR"), te.info.state
fs = te.data.spans[0]
assert fs.status.status_code == "ERROR", fs.status
assert any(e.name == "exception" for e in fs.events), fs.events

step("search_traces")
found = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
print("search all", [x.info.trace_id for x in found])
assert {x.info.trace_id for x in found} == {ok_id, err_id}

step("search_traces_span_name")
found = mlflow.search_traces(locations=[exp.experiment_id], filter_string="span.name = 'llm_call'", return_type="list")
print("search span.name", [x.info.trace_id for x in found])
assert [x.info.trace_id for x in found] == [ok_id], found

step("search_traces_status")
found = mlflow.search_traces(locations=[exp.experiment_id], filter_string="trace.status = 'ERROR'", return_type="list")
print("search status", [x.info.trace_id for x in found])
assert [x.info.trace_id for x in found] == [err_id]

step("search_traces_dataframe")
df = mlflow.search_traces(locations=[exp.experiment_id])
print("df", df.shape, list(df.columns))

print("ALL OK")
