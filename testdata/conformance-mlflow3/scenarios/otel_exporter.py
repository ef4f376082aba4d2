"""MLflow 3 client with OpenTelemetry's own OTLP/HTTP exporter
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, protocol http/protobuf): spans go
only to /v1/traces, in batches; the server builds the trace from them."""
import os

from common import PROXY, step

import mlflow

mlflow.set_tracking_uri(PROXY)
step("set_experiment")
exp = mlflow.set_experiment("mlflow3-otel-exporter")
os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = PROXY + "/v1/traces"
os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = "x-mlflow-experiment-id=" + exp.experiment_id
mlflow.tracing.reset()


@mlflow.trace
def inner(x):
    return x * 2


TRACE_IDS = []


@mlflow.trace
def outer(x):
    TRACE_IDS.append(mlflow.get_current_active_span().trace_id)
    return inner(x) + 1


step("export")
outer(20)
trace_id = TRACE_IDS[0]
# The OTel exporter sits behind a BatchSpanProcessor: flush it.
mlflow.tracing.provider.provider.get().force_flush()

step("read_back")
os.environ.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
tr = mlflow.get_trace(trace_id)
print(trace_id, tr.info.state, [s.name for s in tr.data.spans])
assert sorted(s.name for s in tr.data.spans) == ["inner", "outer"]
got = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
assert [t.info.trace_id for t in got] == [trace_id], got
print("ALL OK")
