// logged-models.js: MLflow 3's logged models of an experiment (the Models
// tab, one page at a time from logged-models/search) and one logged model
// (details, metrics, params, tags, registered versions, and its artifacts
// in the run page's artifact browser).
import {
  route, h, clear, api, setQuery, navigate, fmtTime, fmtRelative, fmtNumber, errorBox, breadcrumbs,
  runHref, experimentHref, tagsOf, tokenPager, parseSort, filterForm, listFailed, trunc,
} from '../lib.js';
import { loadExperiment, sectionHead, loggedModelsHref, loggedModelHref } from './experiment-tabs.js';
import { ArtifactBrowser } from './run.js';

const SIZES = [25, 50, 100];
const DEFAULT_SIZE = 25;
const DEFAULT_SORT = 'creation_timestamp DESC';
// The tag MLflow sets on a logged model when a registered model version is made from it.
const MODEL_VERSIONS_TAG = 'mlflow.modelVersions';
const CHIPS = 4;

route('/experiments/:id/models', 'logged-models', renderList, { nav: 'experiments' });
route('/experiments/:id/models/:modelId', 'logged-model', renderModel, { nav: 'experiments' });
// MLflow's tabbed address of a logged model (…/<model id>/artifacts).
route('/experiments/:id/models/:modelId/:tab', 'logged-model', (ctx) => {
  const tab = ctx.params.tab === 'artifacts' ? 'artifacts' : '';
  navigate(loggedModelHref(ctx.params.id, ctx.params.modelId) + (tab ? '?tab=' + tab : ''), { replace: true });
}, { nav: 'experiments' });

function statusLabel(s) {
  switch (s) {
    case 'LOGGED_MODEL_READY': return 'Ready';
    case 'LOGGED_MODEL_PENDING': return 'Pending';
    case 'LOGGED_MODEL_UPLOAD_FAILED': return 'Upload failed';
    default: return 'Unknown';
  }
}

function statusBadge(s) {
  return h('span', { class: `badge lm-status lm-${statusLabel(s).replace(/\s/g, '-').toLowerCase()}` }, statusLabel(s));
}

/** registeredVersions reads the mlflow.modelVersions tag: [{name, version}]. */
function registeredVersions(info) {
  const raw = tagsOf(info.tags)[MODEL_VERSIONS_TAG];
  if (!raw) return [];
  try {
    const v = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((e) => e && e.name !== undefined && e.version !== undefined) : [];
  } catch { return []; }
}

function versionLink(e) {
  return h('a', { class: 'chip version-chip', href: `/models/${encodeURIComponent(e.name)}/versions/${encodeURIComponent(e.version)}` },
    h('b', null, e.name), ` v${e.version}`);
}

/** latestMetrics keeps each metric key's latest value (greatest timestamp, then step). */
function latestMetrics(metrics) {
  const out = new Map();
  for (const m of metrics || []) {
    const key = m.dataset_name ? `${m.key} (${m.dataset_name})` : m.key;
    const p = out.get(key);
    if (!p || m.timestamp > p.timestamp || (m.timestamp === p.timestamp && m.step > p.step)) out.set(key, { ...m, label: key });
  }
  return [...out.values()].sort((a, b) => a.label.localeCompare(b.label));
}

// ---------------------------------------------------------------- the tab

async function renderList(ctx) {
  const id = ctx.params.id;
  const q = ctx.query;
  const filter = (q.get('filter') || '').trim();
  const sizeQ = Number(q.get('size'));
  const size = SIZES.includes(sizeQ) ? sizeQ : DEFAULT_SIZE;
  const sortStr = q.get('order_by') || DEFAULT_SORT;
  const sort = parseSort(sortStr, 'creation_timestamp');
  const fetchPage = (token) => api.post('logged-models/search', {
    experiment_ids: [id], filter: filter || undefined, max_results: size,
    order_by: [{ field_name: sort.key, ascending: sort.asc }], page_token: token || undefined,
  }, { signal: ctx.signal });
  const firstPage = fetchPage('');
  firstPage.catch(() => {});
  const exp = await loadExperiment(ctx, id);
  if (!exp) return;
  const oldTitle = document.title;
  document.title = `${exp.name} · Models · ${oldTitle}`;
  ctx.onLeave(() => { document.title = oldTitle; });

  let rows = [];
  const filterBox = filterForm({
    id: 'lm', label: 'Filter logged models', value: filter,
    placeholder: "metrics.accuracy > 0.9 and params.lr = '0.01'",
  });
  const tableBox = h('div');
  const pager = tokenPager({
    id: 'lm', noun: 'model', size,
    fetch: fetchPage,
    rows: (res) => res.models || [],
    draw: (models) => { rows = models; draw(); },
    fail: (err, index) => listFailed(pager, index, err, {
      form: filterBox, filter, box: tableBox, nouns: 'models',
      resetSort: q.get('order_by') ? () => setQuery({ order_by: '' }) : null,
    }),
  });

  clear(ctx.main,
    sectionHead(exp, 'models', 'Models'),
    h('div', { class: 'toolbar' }, filterBox.form),
    filterBox.feedback, tableBox, pager.el);

  function sortTh(label, key, firstDir) {
    const active = sort.key === key;
    const next = active ? `${key} ${sort.asc ? 'DESC' : 'ASC'}` : `${key} ${firstDir}`;
    return h('th', { scope: 'col', 'aria-sort': active ? (sort.asc ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'sort', onclick: () => setQuery({ order_by: next === DEFAULT_SORT ? '' : next }, { push: true }) },
        h('span', { class: 'col-label' }, label), h('span', { class: 'sort-ind', 'aria-hidden': 'true' }, active ? (sort.asc ? '▲' : '▼') : '↕')));
  }

  function draw() {
    if (!rows.length) {
      clear(tableBox, h('div', { class: 'panel empty' }, filter ? 'No logged model matches this filter.'
        : 'No logged models yet. Models logged with MLflow 3 (mlflow.<flavor>.log_model, mlflow.create_external_model) show up here.'));
      return;
    }
    const chipList = (items) => [items.slice(0, CHIPS), items.length > CHIPS ? h('span', { class: 'muted small' }, ` +${items.length - CHIPS}`) : null];
    clear(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data lm-table', id: 'logged-models-table' },
      h('thead', null, h('tr', null,
        sortTh('Name', 'name', 'ASC'), sortTh('Status', 'status', 'ASC'), sortTh('Created', 'creation_timestamp', 'DESC'),
        h('th', { scope: 'col' }, 'Source run'), h('th', { scope: 'col' }, 'Metrics'), h('th', { scope: 'col' }, 'Params'),
        h('th', { scope: 'col' }, 'Registered versions'))),
      h('tbody', null, rows.map((m) => {
        const info = m.info || {};
        const data = m.data || {};
        const metrics = latestMetrics(data.metrics);
        const params = [...(data.params || [])].sort((a, b) => a.key.localeCompare(b.key));
        const versions = registeredVersions(info);
        return h('tr', { dataset: { modelId: info.model_id } },
          h('td', { class: 'col-name' }, h('a', { href: loggedModelHref(id, info.model_id), class: 'lm-link' }, info.name || info.model_id),
            info.model_type ? h('div', { class: 'muted small' }, info.model_type) : null),
          h('td', null, statusBadge(info.status)),
          h('td', { title: fmtRelative(info.creation_timestamp_ms) }, fmtTime(info.creation_timestamp_ms)),
          h('td', null, info.source_run_id ? h('a', { href: runHref(id, info.source_run_id), class: 'mono small' }, info.source_run_id.slice(0, 8)) : '—'),
          h('td', null, chipList(metrics.map((x) => h('span', { class: 'chip', title: `${x.label} = ${x.value}` }, h('b', null, x.label), ' ', fmtNumber(x.value))))),
          h('td', null, chipList(params.map((p) => h('span', { class: 'chip', title: `${p.key} = ${p.value}` }, h('b', null, p.key), ' ', trunc(p.value, 16))))),
          h('td', null, versions.length ? versions.map(versionLink) : '—'));
      })))));
  }

  await pager.load(0, firstPage);
}


// ---------------------------------------------------------------- one model

/** loggedModelArtifacts is the artifact source of a logged model (for ArtifactBrowser). */
function loggedModelArtifacts(modelId) {
  const base = `/ajax-api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}/artifacts`;
  return {
    noun: 'model',
    list: (path, signal) => api.get(`${base}/directories`, { artifact_directory_path: path || undefined }, { signal }),
    url: (path) => `${base}/files?artifact_file_path=${encodeURIComponent(path)}`,
  };
}

async function renderModel(ctx) {
  const { id, modelId } = ctx.params;
  const [res, exp] = await Promise.all([
    api.get(`logged-models/${encodeURIComponent(modelId)}`, null, { signal: ctx.signal }).then((r) => ({ model: r.model }), (err) => ({ err })),
    api.get('experiments/get', { experiment_id: id }, { signal: ctx.signal }).then((r) => r.experiment, () => null),
  ]);
  const expName = exp ? exp.name : `Experiment ${id}`;
  if (res.err) {
    if (res.err.name === 'AbortError') throw res.err;
    clear(ctx.main, breadcrumbs(['Experiments', '/experiments'], [expName, experimentHref(id)], ['Models', loggedModelsHref(id)], [modelId]),
      h('h1', null, 'Model not available'), errorBox(res.err));
    return;
  }
  const m = res.model;
  const info = m.info || {};
  if (info.experiment_id && info.experiment_id !== id) {
    navigate(loggedModelHref(info.experiment_id, modelId) + location.search, { replace: true });
    return;
  }
  const tab = ctx.query.get('tab') === 'artifacts' ? 'artifacts' : 'overview';
  document.title = `${info.name || modelId} · Logged model`;
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'lm-tabpanel' });
  const tabBtn = (key, label) => h('button', {
    type: 'button', role: 'tab', id: `lm-tab-${key}`, 'aria-selected': String(key === tab), 'aria-controls': 'lm-tabpanel',
    onclick: () => { if (key !== tab) setQuery({ tab: key === 'overview' ? '' : key, artifact: '' }); },
  }, label);
  clear(ctx.main,
    breadcrumbs(['Experiments', '/experiments'], [expName, experimentHref(id)], ['Models', loggedModelsHref(id)], [info.name || modelId]),
    h('div', { class: 'page-head' }, h('h1', null, info.name || modelId), statusBadge(info.status)),
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Model sections' }, tabBtn('overview', 'Overview'), tabBtn('artifacts', 'Artifacts')),
    panel);
  if (tab === 'artifacts') {
    const browser = new ArtifactBrowser(ctx, { run_id: '', artifact_uri: info.artifact_uri }, loggedModelArtifacts(modelId));
    clear(panel, browser.element());
    await browser.ready;
    return;
  }
  clear(panel, overview(id, m));
}

function overview(expId, m) {
  const info = m.info || {};
  const data = m.data || {};
  const rows = [];
  const add = (label, value) => { if (value !== null && value !== undefined && value !== '') rows.push(h('dt', null, label), h('dd', null, value)); };
  add('Model ID', h('code', null, info.model_id));
  add('Status', [statusBadge(info.status), info.status_message ? h('span', { class: 'muted' }, ' ' + info.status_message) : null]);
  add('Model type', info.model_type);
  add('Created', fmtTime(info.creation_timestamp_ms));
  add('Last updated', fmtTime(info.last_updated_timestamp_ms));
  add('Source run', info.source_run_id ? h('a', { href: runHref(expId, info.source_run_id), id: 'lm-source-run' }, h('code', null, info.source_run_id)) : '—');
  add('Artifact URI', h('code', { class: 'wrap-code' }, info.artifact_uri || '—'));
  const versions = registeredVersions(info);
  const metrics = latestMetrics(data.metrics);
  const params = [...(data.params || [])].sort((a, b) => a.key.localeCompare(b.key));
  const tags = (info.tags || []).filter((t) => !t.key.startsWith('mlflow.')).sort((a, b) => a.key.localeCompare(b.key));
  const table = (id, head, body) => h('div', { class: 'table-wrap table-scroll' }, h('table', { class: 'data', id },
    h('thead', null, h('tr', null, head.map((x) => h('th', { scope: 'col', class: x.cls }, x.label || x)))), h('tbody', null, body)));
  return h('div', { class: 'run-overview' },
    h('div', { class: 'grid-2' },
      h('section', { class: 'panel' }, h('h2', null, 'Details'), h('dl', { class: 'kv' }, rows)),
      h('section', { class: 'panel', id: 'lm-versions' }, h('h2', null, 'Registered versions'),
        versions.length ? h('div', { class: 'alias-list' }, versions.map(versionLink))
          : h('p', { class: 'muted' }, 'Not registered. Register it with mlflow.register_model("models:/' + info.model_id + '", name).'))),
    h('div', { class: 'grid-2 grid-top' },
      h('section', { class: 'panel' }, h('h2', null, 'Metrics ', h('span', { class: 'muted small' }, String(metrics.length))),
        metrics.length ? table('lm-metrics', ['Name', { label: 'Value', cls: 'num' }, { label: 'Step', cls: 'num' }, 'Run'], metrics.map((x) => h('tr', null,
          h('td', null, x.label), h('td', { class: 'num' }, fmtNumber(x.value)), h('td', { class: 'num' }, String(x.step ?? 0)),
          h('td', null, x.run_id ? h('a', { href: runHref(expId, x.run_id), class: 'mono small' }, x.run_id.slice(0, 8)) : '—'))))
          : h('p', { class: 'muted' }, 'No metrics logged.')),
      h('section', { class: 'panel' }, h('h2', null, 'Parameters ', h('span', { class: 'muted small' }, String(params.length))),
        params.length ? table('lm-params', ['Name', 'Value'], params.map((p) => h('tr', null, h('td', { class: 'mono' }, p.key), h('td', { class: 'wrap mono' }, p.value))))
          : h('p', { class: 'muted' }, 'No parameters logged.'))),
    h('section', { class: 'panel' }, h('h2', null, 'Tags ', h('span', { class: 'muted small' }, String(tags.length))),
      tags.length ? table('lm-tags', ['Key', 'Value'], tags.map((t) => h('tr', null, h('td', { class: 'mono' }, t.key), h('td', { class: 'wrap' }, t.value))))
        : h('p', { class: 'muted' }, 'No tags.')));
}
