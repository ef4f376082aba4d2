"""Makes the MLflow fixtures that caddy-mlflow's importer tests read.

Run with MLflow 2.12.2 from a source checkout and Debian's python3 (see
README.md here). It writes, under the output directory:

  mlruns/         an MLflow file store (tracking + model registry)
  mlflow.db       an MLflow SQLite database (tracking + model registry),
                  with artifacts under artifacts/ addressed as
                  mlflow-artifacts:/... the way `mlflow server
                  --artifacts-destination` stores them
  manifest-file.json, manifest-sqlite.json
                  what this script logged, from its own knowledge
"""
import hashlib
import json
import math
import os
import shutil
import sqlite3
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

T0 = 1700000000000


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fnum(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def build(c, workdir, art_root):
    man = {"experiments": [], "runs": [], "models": []}

    def exp(name, tags, deleted=False):
        loc = None
        if art_root is not None:
            loc = "file://" + os.path.join(art_root, name.encode("utf-8").hex()[:12])
        eid = c.create_experiment(name, artifact_location=loc, tags=tags)
        if deleted:
            c.delete_experiment(eid)
        man["experiments"].append(
            {"id": eid, "name": name, "tags": tags, "deleted": deleted}
        )
        return eid

    e1 = exp("fixture ünïcødé 实验", {"team": "ml", "ключ": "значение"})
    e2 = exp("second", {})
    e3 = exp("gone", {"why": "deleted"}, deleted=False)

    def run(eid, name, metrics, params, tags, status="FINISHED", parent=None,
            artifacts=None, deleted=False, dataset=None, start=T0, user="alice"):
        rtags = dict(tags)
        rtags["mlflow.runName"] = name
        rtags["mlflow.user"] = user
        if parent:
            rtags["mlflow.parentRunId"] = parent
        r = c.create_run(eid, start_time=start, tags=rtags, run_name=name)
        rid = r.info.run_id
        ms = [Metric(k, v, ts, step) for (k, v, ts, step) in metrics]
        c.log_batch(rid, metrics=ms, params=[Param(k, v) for k, v in params.items()])
        arts = {}
        if artifacts:
            d = os.path.join(workdir, "tmp-art", rid)
            for rel, content in artifacts.items():
                p = os.path.join(d, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(content)
                arts[rel] = {"size": len(content), "sha256": sha(p)}
            c.log_artifacts(rid, d)
        if dataset is not None:
            import pandas as pd
            df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, float("nan")]})
            ds = mlflow.data.from_pandas(df, source="file:///data/train.csv", name=dataset)
            mlflow.set_tracking_uri(c._tracking_client.tracking_uri)
            with mlflow.start_run(run_id=rid):
                mlflow.log_input(ds, context="training")
            dsinfo = {"name": dataset, "digest": ds.digest, "context": "training",
                      "source_type": ds.source._get_source_type()}
        else:
            dsinfo = None
        c.set_terminated(rid, status=status, end_time=start + 5000)
        if deleted:
            c.delete_run(rid)
        man["runs"].append({
            "id": rid, "experiment_id": eid, "name": name, "status": status,
            "start_time": start, "end_time": start + 5000, "user": user,
            "deleted": deleted, "params": params, "tags": rtags,
            "metrics": [[k, fnum(v), ts, step] for (k, v, ts, step) in metrics],
            "artifacts": arts, "dataset": dsinfo, "parent": parent,
        })
        return rid

    inf = float("inf")
    nan = float("nan")
    p = run(e1, "parent ✓", [("loss", 1.0, T0 + 1, 0), ("loss", 0.5, T0 + 2, 1),
                             ("loss", nan, T0 + 3, 2), ("acc", inf, T0 + 4, 0),
                             ("acc", -inf, T0 + 5, 1), ("acc", 0.25, T0 + 6, 2),
                             ("lr", 0.01, T0 + 7, 0), ("lr", 0.01, T0 + 7, 0)],
            {"alpha": "0.5", "optimizer": "adam", "ünï": "ç"}, {"kind": "parent"},
            artifacts={"model/MLmodel": b"flavors: {}\n", "model/data/weights.bin": bytes(range(256)) * 8,
                       "notes ü.txt": "hello ünïcødé\n".encode()},
            dataset="train-ds")
    run(e1, "child-1", [("loss", 0.3, T0 + 10, 0)], {"seed": "1"}, {"kind": "child"}, parent=p,
        start=T0 + 100)
    run(e1, "child-2", [("loss", 0.2, T0 + 20, 0)], {"seed": "2"}, {"kind": "child"}, parent=p,
        status="FAILED", start=T0 + 200, deleted=True)
    run(e2, "plain", [("m", -1.5, T0 + 30, 5)], {}, {}, start=T0 + 300, user="bob",
        artifacts={"a/b/c.json": b'{"x": 1}\n'})
    run(e3, "in deleted exp", [("m", 2.0, T0 + 40, 0)], {"p": "v"}, {}, start=T0 + 400)
    c.delete_experiment(e3)
    man["experiments"][-1]["deleted"] = True
    # MLflow's stores mark an experiment's runs deleted with it.
    for r in man["runs"]:
        if r["experiment_id"] == e3:
            r["deleted"] = True

    # Registry.
    name = "fixture-model ü"
    c.create_registered_model(name, tags={"owner": "ml"}, description="a model ✓")
    v1 = c.create_model_version(name, "runs:/%s/model" % p, run_id=p, tags={"v": "1"},
                                description="first")
    v2 = c.create_model_version(name, "runs:/%s/model" % p, run_id=p, description="second")
    c.transition_model_version_stage(name, v1.version, "Production")
    c.transition_model_version_stage(name, v2.version, "Staging")
    c.set_registered_model_alias(name, "champion", v1.version)
    c.set_registered_model_alias(name, "challenger", v2.version)
    man["models"].append({
        "name": name, "tags": {"owner": "ml"}, "description": "a model ✓",
        "aliases": {"champion": v1.version, "challenger": v2.version},
        "versions": [
            {"version": v1.version, "stage": "Production", "run_id": p, "tags": {"v": "1"},
             "description": "first"},
            {"version": v2.version, "stage": "Staging", "run_id": p, "tags": {},
             "description": "second"},
        ],
    })
    c.create_registered_model("empty-model")
    man["models"].append({"name": "empty-model", "tags": {}, "description": "",
                          "aliases": {}, "versions": []})
    return man


def main(out):
    out = os.path.abspath(out)
    for d in ("mlruns", "artifacts", "tmp-art", "mlflow.db"):
        p = os.path.join(out, d)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)
    # File store.
    uri = "file://" + os.path.join(out, "mlruns")
    c = MlflowClient(uri, uri)
    man = build(c, out, None)
    man["mlflow_version"] = mlflow.__version__
    with open(os.path.join(out, "manifest-file.json"), "w") as f:
        json.dump(man, f, indent=1, ensure_ascii=False, sort_keys=True)
    # SQLite store, artifacts under out/artifacts then addressed as
    # mlflow-artifacts:/ like a server with --artifacts-destination.
    db = "sqlite:///" + os.path.join(out, "mlflow.db")
    art = os.path.join(out, "artifacts")
    c = MlflowClient(db, db)
    man = build(c, out, art)
    man["mlflow_version"] = mlflow.__version__
    con = sqlite3.connect(os.path.join(out, "mlflow.db"))
    prefix = "file://" + art
    for table, col in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
        con.execute("UPDATE %s SET %s = replace(%s, ?, 'mlflow-artifacts:')" % (table, col, col),
                    (prefix,))
    con.commit()
    con.execute("PRAGMA page_size = 1024")  # a smaller file to commit
    con.execute("VACUUM")
    con.close()
    with open(os.path.join(out, "manifest-sqlite.json"), "w") as f:
        json.dump(man, f, indent=1, ensure_ascii=False, sort_keys=True)
    shutil.rmtree(os.path.join(out, "tmp-art"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
