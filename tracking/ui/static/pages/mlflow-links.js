// mlflow-links.js: MLflow's own UI addresses are hash routes
// ("http://host/#/experiments/0/runs/<id>"), and every MLflow client prints
// them ("View run … at: …"). This module maps each of them to the page of
// this UI that shows the same thing, so those links keep working. The route
// shapes follow MLflow's experiment-tracking routes.ts and model-registry
// routes.js. Addresses without a page here land on a page that says so.
import { h, clear, api, setHashRouter, runHref, experimentHref, breadcrumbs, errorBox } from '../lib.js';
import { tracesHref, traceHref, loggedModelsHref, loggedModelHref } from './experiment-tabs.js';
import { promptHref } from './prompts.js';

/** jsonList parses one of MLflow's JSON query values (runs=["a","b"]) as a list of strings. */
function jsonList(raw) {
  if (!raw) return [];
  let v;
  try { v = JSON.parse(raw); } catch { return raw.split(',').map((s) => s.trim()).filter(Boolean); }
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'string' || typeof x === 'number').map(String);
  return [];
}

/** jsonString parses a JSON string value (metric="loss"), falling back to the raw text. */
function jsonString(raw) {
  if (!raw) return '';
  try {
    const v = JSON.parse(raw);
    return typeof v === 'string' ? v : String(v);
  } catch { return raw; }
}

function decodeSeg(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

function modelHref(name, version) {
  const base = `/models/${encodeURIComponent(name)}`;
  return version === undefined ? base : `${base}/versions/${encodeURIComponent(version)}`;
}

/** metricTarget is MLflow's metric page: one run's charts, or the compare page of several. */
async function metricTarget(runIds, keys, experimentIds, signal) {
  if (runIds.length === 1) {
    return { path: await runTarget(experimentIds[0], runIds[0], ['model-metrics'], signal, keys) };
  }
  return { path: withQuery('/compare', { runs: runIds.join(','), keys: keys.join(',') }) };
}

/**
 * runTarget is the run page for MLflow's run sub-paths: overview,
 * model-metrics and system-metrics (our charts tab), artifacts/<path> and
 * the older artifactPath/<path>. Without the experiment (MLflow's
 * /runs/<id>), it is looked up.
 */
async function runTarget(expId, runId, rest, signal, metricKeys = []) {
  if (!expId) {
    try {
      const r = await api.get('runs/get', { run_id: runId }, { signal });
      expId = r.run.info.experiment_id;
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      // The run page explains what went wrong (missing, forbidden).
      expId = '0';
    }
  }
  const base = runHref(expId, runId);
  const [tab, ...sub] = rest;
  if (tab === 'model-metrics' || tab === 'system-metrics') return withQuery(base, { tab: 'charts', metric: metricKeys });
  if (tab === 'artifacts' || tab === 'artifactPath') return withQuery(base, { tab: 'artifacts', artifact: sub.join('/') });
  return base;
}

/**
 * unavailable describes a page MLflow's UI has and this one does not: the
 * viewer lands on a page that says so, with links to what is here.
 */
function unavailable(title, text, links) {
  return {
    name: 'mlflow-link-unavailable',
    render: (ctx) => {
      clear(ctx.main,
        breadcrumbs(['Experiments', '/experiments'], [title]),
        h('h1', null, title),
        h('div', { class: 'panel notice', id: 'mlflow-link-notice' },
          h('p', null, text),
          h('p', { class: 'muted small' }, 'Link: ', h('code', { class: 'wrap-code' }, location.hash)),
          links.length ? h('ul', { class: 'link-list' }, links.map(([label, href]) => h('li', null, h('a', { href }, label)))) : null));
    },
  };
}

function unknown() {
  return {
    name: 'mlflow-link-unknown',
    render: (ctx) => {
      clear(ctx.main,
        h('h1', null, 'Link not recognized'),
        errorBox(new Error('This address is an MLflow UI link this server has no page for.')),
        h('p', null, 'Link: ', h('code', { class: 'wrap-code' }, location.hash)),
        h('ul', { class: 'link-list' },
          h('li', null, h('a', { href: '/experiments' }, 'Experiments')),
          h('li', null, h('a', { href: '/models' }, 'Registered models'))));
    },
  };
}

/**
 * translate maps an MLflow hash route to {path} (a page of this UI) or
 * {name, render} (a page saying the link has no counterpart here).
 */
export async function translate(hash, signal) {
  const raw = hash.replace(/^#/, '');
  const qAt = raw.indexOf('?');
  const pathPart = qAt < 0 ? raw : raw.slice(0, qAt);
  const query = new URLSearchParams(qAt < 0 ? '' : raw.slice(qAt + 1));
  const segs = pathPart.split('/').filter(Boolean).map(decodeSeg);
  const [first, ...rest] = segs;

  if (!first) return { path: '/experiments' };
  switch (first) {
    case 'experiments': {
      if (!rest.length) return { path: '/experiments' };
      const [id, tab, ...more] = rest;
      const exp = experimentHref(id);
      const searchFilter = query.get('searchFilter');
      const expWithFilter = searchFilter ? withQuery(exp, { filter: searchFilter }) : exp;
      // MLflow 2.x showed traces in the experiment page's TRACES mode
      // (?compareRunsMode=TRACES&selectedTraceId=<id>); MLflow 3 has the
      // traces tab (?selectedEvaluationId=<id>) and /traces/<id>.
      const selectedTrace = query.get('selectedEvaluationId') || query.get('selectedTraceId');
      if ((tab === undefined || tab === 'traces' || tab === 'chat-sessions') && selectedTrace) return { path: traceHref(id, selectedTrace) };
      if (tab === undefined && query.get('compareRunsMode') === 'TRACES') return { path: tracesHref(id) };
      if (tab === undefined || tab === 's' || (tab === 'runs' && !more.length)) return { path: expWithFilter };
      if (tab === 'runs') return { path: await runTarget(id, more[0], more.slice(1), signal) };
      if (tab === 'traces') return { path: more.length ? traceHref(id, more[0]) : tracesHref(id) };
      if (tab === 'models') {
        if (!more.length) return { path: loggedModelsHref(id) };
        const page = loggedModelHref(id, more[0]);
        return { path: more[1] === 'artifacts' ? withQuery(page, { tab: 'artifacts' }) : page };
      }
      // MLflow 3's experiment prompts tab lists the registry's prompts.
      if (tab === 'prompts') return { path: more.length ? promptHref(more[0]) : '/prompts' };
      return unavailable(`The “${tab}” tab is not shown here`, 'This UI has no page for this tab of the experiment.', [['Open the experiment', exp]]);
    }
    case 'runs':
      if (!rest.length) return unknown();
      return { path: await runTarget('', rest[0], rest.slice(1), signal) };
    case 'metric': {
      // /metric/<key>?runs=[...]&experiments=[...] (older) or
      // /metric?runs=[...]&metric="<key>"&plot_metric_keys=[...] (newer).
      const runIds = jsonList(query.get('runs'));
      const expIds = jsonList(query.get('experiments') || query.get('experiment'));
      let keys = jsonList(query.get('plot_metric_keys'));
      const main = jsonString(query.get('metric')) || rest.join('/');
      if (!keys.length && main) keys = [main];
      if (!runIds.length) return unknown();
      return metricTarget(runIds, keys, expIds, signal);
    }
    case 'compare-runs': {
      const runIds = jsonList(query.get('runs'));
      if (!runIds.length) return unknown();
      return { path: withQuery('/compare', { runs: runIds.join(',') }) };
    }
    case 'compare-experiments': {
      const ids = jsonList(query.get('experiments'));
      if (!ids.length) return { path: '/experiments' };
      return { path: experimentHref(ids.join(',')) };
    }
    case 'compare-model-versions': {
      // runs={"<run id>": "<version>", ...}
      let runIds = [];
      try {
        const v = JSON.parse(query.get('runs') || '{}');
        if (v && typeof v === 'object' && !Array.isArray(v)) runIds = Object.keys(v);
      } catch { /* not JSON */ }
      if (!runIds.length) {
        const name = decodeSeg(jsonString(query.get('name')));
        return { path: name ? modelHref(name) : '/models' };
      }
      return { path: withQuery('/compare', { runs: runIds.join(',') }) };
    }
    case 'models': {
      if (!rest.length) return { path: '/models' };
      const [name, sub, version] = rest;
      if (sub === 'versions' && version !== undefined) return { path: modelHref(name, version) };
      return { path: modelHref(name) };
    }
    case 'prompts':
      return { path: rest.length ? promptHref(rest[0]) : '/prompts' };
    default:
      return unknown();
  }
}

setHashRouter(translate);
