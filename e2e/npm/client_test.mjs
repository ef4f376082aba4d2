// End-to-end test of caddy-mlflow driven by the third-party `mlflow` npm
// package (https://github.com/Yuhsak/mlflow, v2.0.7), a small REST client
// written against the MLflow 1.x API.
//
// Usage: MLFLOW_TRACKING_URI=http://127.0.0.1:5000 node --test client_test.mjs
//
// The client's public methods are used wherever they exist and work. Where
// the client has no method (get-by-name, experiments/search,
// delete-experiment-tag) or a broken one (setExperimentTag builds the URL
// without a slash), the test calls the client's own transport, `req(method,
// path, params)`, so the requests still go through the package's fetch and
// encoding code. Known client defects are asserted explicitly, so a change in
// the package shows up as a test failure rather than silently.
//
// The package console.log()s every POST body; that is muted unless
// MLFLOW_E2E_VERBOSE=1.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import MLflow from 'mlflow';
import { ViewType, RunStatus, LifecycleStage } from 'mlflow/enum.js';

const endpoint = (process.env.MLFLOW_TRACKING_URI || '').replace(/\/+$/, '');
if (!endpoint) {
  console.error('MLFLOW_TRACKING_URI is not set');
  process.exit(2);
}

if (process.env.MLFLOW_E2E_VERBOSE !== '1') {
  // mlflow/lib/mlflow.js logs each JSON body with console.log(body).
  const orig = console.log;
  console.log = (...args) => {
    if (args.length === 1 && typeof args[0] === 'string' && args[0].startsWith('{')) return;
    orig(...args);
  };
}

const client = new MLflow({ endpoint });
const { Experiments, Runs, Metrics, Artifacts } = client;

// The client throws new Error(new Error(JSON.stringify({status, statusText, data}))),
// so the message is "Error: {...}". Parse it back.
function parseClientError(err) {
  const m = /\{.*\}$/s.exec(String(err && err.message));
  if (!m) return { status: undefined, data: undefined, raw: String(err) };
  try {
    const o = JSON.parse(m[0]);
    return { status: o.status, data: o.data, raw: m[0] };
  } catch {
    return { status: undefined, data: undefined, raw: String(err) };
  }
}

async function rejects(promise, status, errorCode) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    const e = parseClientError(err);
    assert.equal(e.status, status, `expected HTTP ${status}, got ${e.raw}`);
    if (errorCode) {
      assert.equal(e.data && e.data.error_code, errorCode, `expected ${errorCode}, got ${e.raw}`);
    }
    return e;
  }
  assert.fail(`expected HTTP ${status} ${errorCode || ''}, request succeeded: ${JSON.stringify(result)}`);
}

// MLflow emits a double as a number or as the strings "NaN"/"Infinity".
const num = (v) => (typeof v === 'string' ? Number(v) : v);
const byKey = (list) => Object.fromEntries((list || []).map((x) => [x.key, x]));
const uniq = `${Date.now()}-${process.pid}`;
const T0 = 1700000000000;

describe('experiments', () => {
  let expId;
  const name = `npm-e2e-exp-${uniq}`;
  const renamed = `${name}-renamed`;

  it('create', async () => {
    const r = await Experiments.create({ name });
    assert.equal(typeof r.experiment_id, 'string');
    assert.match(r.experiment_id, /^\S+$/);
    expId = r.experiment_id;
  });

  it('create with a duplicate name is RESOURCE_ALREADY_EXISTS (400)', async () => {
    await rejects(Experiments.create({ name }), 400, 'RESOURCE_ALREADY_EXISTS');
  });

  it('get', async () => {
    const r = await Experiments.get({ experiment_id: expId });
    assert.equal(r.experiment.experiment_id, expId);
    assert.equal(r.experiment.name, name);
    assert.equal(r.experiment.lifecycle_stage, LifecycleStage.active);
    assert.ok(r.experiment.artifact_location, 'artifact_location is set');
    assert.equal(typeof r.experiment.creation_time, 'number');
  });

  it('get of an unknown id is RESOURCE_DOES_NOT_EXIST (404)', async () => {
    await rejects(Experiments.get({ experiment_id: '987654321' }), 404, 'RESOURCE_DOES_NOT_EXIST');
  });

  it('get-by-name (no client method; via the client transport)', async () => {
    const r = await Experiments.req('get', '/get-by-name', { experiment_name: name });
    assert.equal(r.experiment.experiment_id, expId);
    await rejects(
      Experiments.req('get', '/get-by-name', { experiment_name: `${name}-missing` }),
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
  });

  it('search (no client method; via the client transport)', async () => {
    const r = await Experiments.req('post', '/search', {
      filter: `name = '${name}'`,
      max_results: 10,
    });
    assert.equal(r.experiments.length, 1);
    assert.equal(r.experiments[0].experiment_id, expId);
    const like = await Experiments.req('post', '/search', {
      filter: `name LIKE 'npm-e2e-exp-${uniq}%'`,
      order_by: ['name ASC'],
      max_results: 10,
    });
    assert.deepEqual(like.experiments.map((e) => e.name), [name]);
  });

  it('list (/experiments/list was removed in MLflow 2.0)', async () => {
    let r;
    try {
      r = await Experiments.list();
    } catch (err) {
      const e = parseClientError(err);
      assert.equal(e.status, 404, `list: expected 404 (route removed) or 200, got ${e.raw}`);
      return;
    }
    assert.ok(r.experiments.some((e) => e.experiment_id === expId));
  });

  it('setExperimentTag is broken in the client (URL lacks a slash); the correct route works', async () => {
    // The package requests /api/2.0/mlflow/experimentsset-experiment-tag.
    await rejects(Experiments.setExperimentTag({ experiment_id: expId, key: 'k', value: 'broken' }), 404);
    await Experiments.req('post', '/set-experiment-tag', { experiment_id: expId, key: 'owner', value: 'npm' });
    await Experiments.req('post', '/set-experiment-tag', { experiment_id: expId, key: 'tmp', value: 'x' });
    let r = await Experiments.get({ experiment_id: expId });
    assert.equal(byKey(r.experiment.tags).owner.value, 'npm');
    assert.equal(byKey(r.experiment.tags).tmp.value, 'x');
    await Experiments.req('post', '/delete-experiment-tag', { experiment_id: expId, key: 'tmp' });
    r = await Experiments.get({ experiment_id: expId });
    assert.equal(byKey(r.experiment.tags).tmp, undefined);
    await rejects(
      Experiments.req('post', '/delete-experiment-tag', { experiment_id: expId, key: 'tmp' }),
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
  });

  it('update (rename)', async () => {
    await Experiments.update({ experiment_id: expId, new_name: renamed });
    const r = await Experiments.get({ experiment_id: expId });
    assert.equal(r.experiment.name, renamed);
    const byName = await Experiments.req('get', '/get-by-name', { experiment_name: renamed });
    assert.equal(byName.experiment.experiment_id, expId);
    await rejects(Experiments.req('get', '/get-by-name', { experiment_name: name }), 404);
  });

  it('delete and restore', async () => {
    await Experiments.delete({ experiment_id: expId });
    let r = await Experiments.get({ experiment_id: expId });
    assert.equal(r.experiment.lifecycle_stage, LifecycleStage.deleted);

    const filter = `name = '${renamed}'`;
    const active = await Experiments.req('post', '/search', { filter, max_results: 10 });
    assert.equal((active.experiments || []).length, 0, 'deleted experiment hidden from ACTIVE_ONLY');
    const deleted = await Experiments.req('post', '/search', {
      filter,
      max_results: 10,
      view_type: ViewType.DELETED_ONLY,
    });
    assert.equal(deleted.experiments.length, 1);

    // Deleting twice is 404; so is restoring an active experiment.
    await rejects(Experiments.delete({ experiment_id: expId }), 404);
    await Experiments.restore({ experiment_id: expId });
    r = await Experiments.get({ experiment_id: expId });
    assert.equal(r.experiment.lifecycle_stage, LifecycleStage.active);
    await rejects(Experiments.restore({ experiment_id: expId }), 404);
  });
});

describe('runs, metrics, params, tags', () => {
  let expId;
  let runId;
  let run;

  before(async () => {
    const r = await Experiments.create({ name: `npm-e2e-runs-${uniq}` });
    expId = r.experiment_id;
  });

  it('create', async () => {
    const r = await Runs.create({
      experiment_id: expId,
      user_id: 'npm-user',
      start_time: T0,
      tags: [{ key: 'team', value: 'e2e' }],
    });
    run = r.run;
    runId = run.info.run_id;
    assert.match(runId, /^[0-9a-f]{32}$/);
    assert.equal(run.info.run_uuid, runId);
    assert.equal(run.info.experiment_id, expId);
    assert.equal(run.info.status, RunStatus.RUNNING);
    assert.equal(run.info.lifecycle_stage, LifecycleStage.active);
    assert.equal(run.info.start_time, T0);
    assert.equal(run.info.user_id, 'npm-user');
    assert.ok(run.info.artifact_uri.includes(runId), 'artifact_uri contains the run id');
    const tags = byKey(run.data.tags);
    assert.equal(tags.team.value, 'e2e');
    // No run name was given: the server makes one up and records it as a tag.
    assert.ok(tags['mlflow.runName'] && tags['mlflow.runName'].value, 'generated mlflow.runName tag');
    assert.equal(run.info.run_name, tags['mlflow.runName'].value);
  });

  it('create in an unknown experiment is 404', async () => {
    await rejects(Runs.create({ experiment_id: '987654321', start_time: T0 }), 404, 'RESOURCE_DOES_NOT_EXIST');
  });

  it('get', async () => {
    const r = await Runs.get({ run_id: runId });
    assert.equal(r.run.info.run_id, runId);
    assert.deepEqual(r.run.info.start_time, T0);
    await rejects(Runs.get({ run_id: 'f'.repeat(32) }), 404, 'RESOURCE_DOES_NOT_EXIST');
  });

  it('log params (immutable)', async () => {
    await Runs.logParameter({ run_id: runId, key: 'lr', value: '0.01' });
    await Runs.logParameter({ run_id: runId, key: 'lr', value: '0.01' }); // same value: no-op
    await rejects(Runs.logParameter({ run_id: runId, key: 'lr', value: '0.02' }), 400, 'INVALID_PARAMETER_VALUE');
    await Runs.logParameter({ run_id: runId, key: 'empty', value: '' });
  });

  it('log metrics with steps', async () => {
    const loss = [1.0, 0.5, 0.25, 0.3, 0.1];
    for (const [step, value] of loss.entries()) {
      await Runs.logMetric({ run_id: runId, key: 'loss', value, timestamp: T0 + step, step });
    }
    // step omitted: defaults to 0.
    await Runs.logMetric({ run_id: runId, key: 'nostep', value: 7, timestamp: T0 });
    // Negative steps are allowed.
    await Runs.logMetric({ run_id: runId, key: 'neg', value: 3, timestamp: T0, step: -2 });
  });

  it('NaN: the client sends null (rejected); the wire form "NaN" works', async () => {
    // JSON.stringify(NaN) === 'null', so the client cannot send a NaN number.
    await rejects(
      Runs.logMetric({ run_id: runId, key: 'nan', value: NaN, timestamp: T0, step: 0 }),
      400,
      'INVALID_PARAMETER_VALUE',
    );
    // The client does not check types, so the string form MLflow's Python client uses goes through.
    await Runs.logMetric({ run_id: runId, key: 'nan', value: 'NaN', timestamp: T0 + 1, step: 1 });
    const h = await Metrics.getHistory({ run_id: runId, metric_key: 'nan' });
    assert.equal(h.metrics.length, 1);
    assert.ok(Number.isNaN(num(h.metrics[0].value)), `NaN round-trips, got ${JSON.stringify(h.metrics[0].value)}`);
  });

  it('log-batch', async () => {
    await Runs.logBatch({
      run_id: runId,
      metrics: [0, 1, 2].map((step) => ({ key: 'acc', value: 0.5 + step / 10, timestamp: T0 + 10 + step, step })),
      params: [
        { key: 'batch_size', value: '32' },
        { key: 'optimizer', value: 'adam' },
      ],
      tags: [{ key: 'stage', value: 'train' }],
    });
    // A batch changing a logged param is refused as a whole.
    await rejects(
      Runs.logBatch({ run_id: runId, params: [{ key: 'optimizer', value: 'sgd' }] }),
      400,
      'INVALID_PARAMETER_VALUE',
    );
    // A batch may be empty.
    await Runs.logBatch({ run_id: runId });
  });

  it('set and delete tags', async () => {
    await Runs.setTag({ run_id: runId, key: 'note', value: 'hello' });
    await Runs.setTag({ run_id: runId, key: 'note', value: 'hello again' }); // upsert
    await Runs.setTag({ run_id: runId, key: 'gone', value: 'soon' });
    await Runs.deleteTag({ run_id: runId, key: 'gone' });
    await rejects(Runs.deleteTag({ run_id: runId, key: 'gone' }), 404, 'RESOURCE_DOES_NOT_EXIST');
  });

  it('get shows latest metrics, params and tags', async () => {
    const { run: r } = await Runs.get({ run_id: runId });
    const m = byKey(r.data.metrics);
    // Latest = greatest (step, timestamp, value): step 4.
    assert.equal(num(m.loss.value), 0.1);
    assert.equal(m.loss.step, 4);
    assert.equal(m.loss.timestamp, T0 + 4);
    assert.equal(num(m.acc.value), 0.7);
    assert.equal(m.nostep.step, 0);
    assert.equal(m.neg.step, -2);
    const p = byKey(r.data.params);
    assert.equal(p.lr.value, '0.01');
    assert.equal(p.empty.value, '');
    assert.equal(p.batch_size.value, '32');
    assert.equal(p.optimizer.value, 'adam');
    const t = byKey(r.data.tags);
    assert.equal(t.note.value, 'hello again');
    assert.equal(t.stage.value, 'train');
    assert.equal(t.team.value, 'e2e');
    assert.equal(t.gone, undefined);
  });

  it('metric history', async () => {
    const h = await Metrics.getHistory({ run_id: runId, metric_key: 'loss' });
    assert.deepEqual(
      h.metrics.map((x) => [x.step, num(x.value), x.timestamp]),
      [
        [0, 1.0, T0],
        [1, 0.5, T0 + 1],
        [2, 0.25, T0 + 2],
        [3, 0.3, T0 + 3],
        [4, 0.1, T0 + 4],
      ],
    );
    assert.ok(h.metrics.every((x) => x.key === 'loss'));
    const acc = await Metrics.getHistory({ run_id: runId, metric_key: 'acc' });
    assert.equal(acc.metrics.length, 3);
    // Duplicate points (same key, value, timestamp, step) are dropped.
    await Runs.logMetric({ run_id: runId, key: 'loss', value: 0.1, timestamp: T0 + 4, step: 4 });
    const again = await Metrics.getHistory({ run_id: runId, metric_key: 'loss' });
    assert.equal(again.metrics.length, 5);
    // Unknown key: empty history.
    const none = await Metrics.getHistory({ run_id: runId, metric_key: 'nope' });
    assert.equal((none.metrics || []).length, 0);
  });

  it('artifacts list', async () => {
    const r = await Artifacts.list({ run_id: runId });
    assert.equal(r.root_uri, run.info.artifact_uri);
    assert.equal((r.files || []).length, 0);
  });

  it('update', async () => {
    const r = await Runs.update({ run_id: runId, status: RunStatus.FINISHED, end_time: T0 + 1000 });
    assert.equal(r.run_info.status, RunStatus.FINISHED);
    assert.equal(r.run_info.end_time, T0 + 1000);
    const g = await Runs.get({ run_id: runId });
    assert.equal(g.run.info.status, RunStatus.FINISHED);
    assert.equal(g.run.info.end_time, T0 + 1000);
  });

  it('delete and restore', async () => {
    await Runs.delete({ run_id: runId });
    let g = await Runs.get({ run_id: runId });
    assert.equal(g.run.info.lifecycle_stage, LifecycleStage.deleted);
    // Deleted runs refuse writes.
    await rejects(
      Runs.logMetric({ run_id: runId, key: 'loss', value: 9, timestamp: T0, step: 9 }),
      400,
      'INVALID_PARAMETER_VALUE',
    );
    const active = await Runs.search({ experiment_ids: [expId] });
    assert.ok(!(active.runs || []).some((x) => x.info.run_id === runId));
    const deleted = await Runs.search({ experiment_ids: [expId], run_view_type: ViewType.DELETED_ONLY });
    assert.deepEqual(deleted.runs.map((x) => x.info.run_id), [runId]);
    await Runs.restore({ run_id: runId });
    g = await Runs.get({ run_id: runId });
    assert.equal(g.run.info.lifecycle_stage, LifecycleStage.active);
  });

  it('search runs with filter and order_by, paging', async () => {
    const { experiment_id: sExp } = await Experiments.create({ name: `npm-e2e-search-${uniq}` });
    const specs = [
      { score: 0.1, kind: 'a' },
      { score: 0.5, kind: 'b' },
      { score: 0.9, kind: 'a' },
      { score: 0.7, kind: 'b' },
    ];
    const ids = {};
    for (const [i, s] of specs.entries()) {
      const { run: r } = await Runs.create({ experiment_id: sExp, start_time: T0 + i });
      ids[s.score] = r.info.run_id;
      await Runs.logBatch({
        run_id: r.info.run_id,
        metrics: [{ key: 'score', value: s.score, timestamp: T0, step: 0 }],
        params: [{ key: 'kind', value: s.kind }],
      });
    }
    const scores = (res) => (res.runs || []).map((x) => num(byKey(x.data.metrics).score.value));

    let r = await Runs.search({
      experiment_ids: [sExp],
      filter: 'metrics.score > 0.2',
      order_by: ['metrics.score DESC'],
    });
    assert.deepEqual(scores(r), [0.9, 0.7, 0.5]);
    assert.equal(r.runs[0].info.run_id, ids[0.9]);

    r = await Runs.search({
      experiment_ids: [sExp],
      filter: "params.kind = 'a' and metrics.score < 1",
      order_by: ['metrics.score ASC'],
    });
    assert.deepEqual(scores(r), [0.1, 0.9]);

    // Default order: start_time DESC.
    r = await Runs.search({ experiment_ids: [sExp] });
    assert.deepEqual(scores(r), [0.7, 0.9, 0.5, 0.1]);

    // Paging.
    const p1 = await Runs.search({ experiment_ids: [sExp], order_by: ['metrics.score ASC'], max_results: 3 });
    assert.deepEqual(scores(p1), [0.1, 0.5, 0.7]);
    assert.ok(p1.next_page_token, 'next_page_token on a non-final page');
    const p2 = await Runs.search({
      experiment_ids: [sExp],
      order_by: ['metrics.score ASC'],
      max_results: 3,
      page_token: p1.next_page_token,
    });
    assert.deepEqual(scores(p2), [0.9]);
    assert.ok(!p2.next_page_token, 'no next_page_token on the last page');

    // No match: MLflow omits the empty list.
    r = await Runs.search({ experiment_ids: [sExp], filter: 'metrics.score > 5' });
    assert.equal((r.runs || []).length, 0);

    // A bad filter is a 400.
    await rejects(Runs.search({ experiment_ids: [sExp], filter: 'params.kind = a' }), 400, 'INVALID_PARAMETER_VALUE');
  });

  it('deleting an experiment deletes its runs; restoring restores them', async () => {
    await Experiments.delete({ experiment_id: expId });
    let g = await Runs.get({ run_id: runId });
    assert.equal(g.run.info.lifecycle_stage, LifecycleStage.deleted);
    await rejects(Runs.create({ experiment_id: expId, start_time: T0 }), 400, 'INVALID_PARAMETER_VALUE');
    await Experiments.restore({ experiment_id: expId });
    g = await Runs.get({ run_id: runId });
    assert.equal(g.run.info.lifecycle_stage, LifecycleStage.active);
  });
});
