// runs page: the runs table of one experiment or of several
// ('/experiments/1,2'). Fixed columns (name, status, user, start, duration,
// source) plus the params/metrics/tags the user picks; sorting, filtering
// (MLflow's search_runs grammar), lifecycle view and paging all happen on
// the server through runs/search, one page at a time. The state that makes
// a view (filter, sort, view, page size, columns) lives in the URL query.
import {
  route, h, clear, api, setQuery, navigate, fmtTime, fmtRelative, fmtDuration, fmtNumber,
  errorBox, toast, confirm, breadcrumbs, tagsOf, runHref, experimentHref, debounce, permissionsFor,
  tokenPager, parseSort as parseOrder, filterForm, listFailed, syncRowChecks,
} from '../lib.js';
import { experimentTabs } from './experiment-tabs.js';

const SIZES = [25, 50, 100, 250];
const DEFAULT_SIZE = 50;
const VIEWS = { active: 'ACTIVE_ONLY', deleted: 'DELETED_ONLY', all: 'ALL' };
const DEFAULT_SORT = 'attributes.start_time DESC';
const KINDS = ['metrics', 'params', 'tags'];
const KIND_LABEL = { metrics: 'Metrics', params: 'Params', tags: 'Tags' };
const KIND_ONE = { metrics: 'metric', params: 'param', tags: 'tag' };
// Tags shown by fixed columns (or too big for a cell): not offered as columns.
const HIDDEN_TAGS = new Set(['mlflow.user', 'mlflow.source.name', 'mlflow.runName', 'mlflow.note.content', 'mlflow.log-model.history']);
const DEFAULT_PER_KIND = 5;
const PICKER_LIMIT = 200; // keys listed per group in the column picker
const STORE_PREFIX = 'mlflow-ui:runs-cols:';

/** orderKey is the order_by key of a picked column ("metrics.`loss`"). */
function orderKey(col) { return `${col.kind}.\`${col.key}\``; }

/** colId is a column's id in the URL ("metrics.loss"). */
function colId(col) { return `${col.kind}.${col.key}`; }

/** parseCols reads "metrics.loss,params.lr" (or "none"). */
function parseCols(s) {
  if (s === null || s === undefined) return null;
  if (s === 'none' || s === '') return [];
  const out = [];
  for (const part of s.split(',')) {
    const i = part.indexOf('.');
    if (i < 0) continue;
    const kind = part.slice(0, i), key = part.slice(i + 1);
    if (KINDS.includes(kind) && key) out.push({ kind, key });
  }
  return out;
}

function serializeCols(cols) { return cols.length ? cols.map(colId).join(',') : 'none'; }

/** normKey makes order_by keys comparable ("metrics.`loss`" == "metric.loss"). */
function normKey(k) {
  let s = k.trim();
  const m = /^(attributes?|attr|metrics?|params?|parameters?|tags?)\.(.*)$/i.exec(s);
  if (!m) return 'attributes.' + s.replace(/`/g, '');
  let ent = m[1].toLowerCase();
  if (ent.startsWith('attr')) ent = 'attributes';
  else if (ent.startsWith('metric')) ent = 'metrics';
  else if (ent.startsWith('param')) ent = 'params';
  else ent = 'tags';
  let key = m[2].trim();
  if ((key.startsWith('`') && key.endsWith('`')) || (key.startsWith('"') && key.endsWith('"'))) key = key.slice(1, -1);
  if (ent === 'attributes' && key === 'created') key = 'start_time';
  return ent + '.' + key;
}

/** parseSort splits "metrics.`loss` ASC" into {key, asc, norm}. */
function parseSort(s) {
  const { key, asc } = parseOrder(s, 'attributes.start_time');
  return { key, asc, norm: normKey(key) };
}

function loadStoredCols(storeKey) {
  try {
    const v = localStorage.getItem(storeKey);
    return v === null ? null : parseCols(v);
  } catch { return null; }
}

function storeCols(storeKey, cols) {
  try { localStorage.setItem(storeKey, serializeCols(cols)); } catch { /* private mode */ }
}

/** indexRun precomputes the maps a row needs. */
function indexRun(run) {
  const info = run.info || {};
  const data = run.data || {};
  const metrics = {};
  for (const m of data.metrics || []) metrics[m.key] = m.value;
  return { run, info, metrics, params: tagsOf(data.params), tags: tagsOf(data.tags) };
}

async function render(ctx) {
  const ids = ctx.params.id.split(',').map((s) => s.trim()).filter(Boolean);
  const multi = ids.length > 1;
  const q = ctx.query;
  const filter = (q.get('filter') || '').trim();
  const view = VIEWS[q.get('view')] ? q.get('view') : 'active';
  const sizeQ = Number(q.get('size'));
  const size = SIZES.includes(sizeQ) ? sizeQ : DEFAULT_SIZE;
  const sortStr = q.get('order_by') || q.get('sort') || DEFAULT_SORT;
  const sort = parseSort(sortStr);
  const storeKey = STORE_PREFIX + ids.join(',');

  // The first page of runs is requested together with the experiments.
  const fetchPage = (token) => api.post('runs/search', {
    experiment_ids: ids,
    filter: filter || undefined,
    run_view_type: VIEWS[view],
    max_results: size,
    order_by: [sortStr],
    page_token: token || undefined,
  }, { signal: ctx.signal });
  const firstPage = fetchPage('');
  firstPage.catch(() => {}); // handled by pager.load(); this only avoids an unhandled rejection

  // What the viewer may do here (asked with the experiments).
  const permsP = permissionsFor({ experiments: ids }, ctx.signal);
  permsP.catch(() => {});

  // ---- the experiments
  let exps;
  try {
    exps = await Promise.all(ids.map((id) => api.get('experiments/get', { experiment_id: id }, { signal: ctx.signal }).then((r) => r.experiment)));
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    const denied = err.status === 403 || err.code === 'PERMISSION_DENIED';
    const missing = err.status === 404 || err.code === 'RESOURCE_DOES_NOT_EXIST';
    const what = multi ? 'these experiments' : 'this experiment';
    clear(ctx.main, breadcrumbs(['Experiments', '/experiments'], [ids.join(', '), null]),
      h('h1', null, denied ? `You cannot see ${what}` : missing ? (multi ? 'Experiment not found' : 'Experiment not found') : `Could not load ${what}`),
      errorBox(err),
      denied ? h('p', { class: 'muted' }, 'Ask an owner of the experiment or an administrator to grant you access.') : null,
      h('p', null, h('a', { href: '/experiments' }, 'Back to the experiments')));
    return;
  }
  const expName = Object.fromEntries(exps.map((e) => [e.experiment_id, e.name]));
  const oldTitle = document.title;
  document.title = `${multi ? `${exps.length} experiments` : exps[0].name} · Runs · ${oldTitle}`;
  ctx.onLeave(() => { document.title = oldTitle; });

  // ---- page state
  let rows = [];
  let cols = parseCols(q.get('cols')) ?? loadStoredCols(storeKey);
  const selected = new Map(); // run_id -> lifecycle_stage
  let durationTimer = 0;
  ctx.onLeave(() => clearInterval(durationTimer));

  // ---- head
  const head = [];
  if (multi) {
    head.push(breadcrumbs(['Experiments', '/experiments'], [`${exps.length} experiments`, null]));
    head.push(h('div', { class: 'page-head' }, h('h1', null, `Runs of ${exps.length} experiments`)));
    head.push(h('ul', { class: 'exp-chips', 'aria-label': 'Experiments shown' },
      exps.map((e) => h('li', null, h('a', { class: 'chip', href: experimentHref(e.experiment_id) }, e.name, h('span', { class: 'muted' }, ` #${e.experiment_id}`))))));
  } else {
    const e = exps[0];
    const etags = tagsOf(e.tags);
    head.push(breadcrumbs(['Experiments', '/experiments'], [e.name, null]));
    head.push(h('div', { class: 'page-head' },
      h('h1', null, e.name),
      e.lifecycle_stage === 'deleted' ? h('span', { class: 'badge badge-deleted' }, 'deleted') : null));
    const userTags = (e.tags || []).filter((t) => !t.key.startsWith('mlflow.'));
    head.push(h('dl', { class: 'exp-meta' },
      h('div', null, h('dt', null, 'Experiment ID'), h('dd', { class: 'mono' }, e.experiment_id)),
      h('div', null, h('dt', null, 'Artifact location'), h('dd', { class: 'mono' }, e.artifact_location || '—')),
      h('div', null, h('dt', null, 'Created'), h('dd', null, fmtTime(e.creation_time))),
      userTags.length ? h('div', { class: 'exp-meta-tags' }, h('dt', null, 'Tags'), h('dd', null,
        userTags.map((t) => h('span', { class: 'chip' }, h('span', null, h('b', null, t.key), t.value !== '' ? ': ' : '', t.value))))) : null));
    if (etags['mlflow.note.content']) {
      head.push(h('section', { class: 'panel exp-description', 'aria-label': 'Description' },
        h('h2', { class: 'sr-only' }, 'Description'),
        h('p', { class: 'note-text' }, etags['mlflow.note.content'])));
    }
    head.push(experimentTabs(e.experiment_id, 'runs'));
  }

  // ---- toolbar
  const filterBox = filterForm({
    id: 'runs', label: 'Filter runs', value: filter, help: 'runs-filter-help',
    placeholder: "metrics.loss < 0.5 and params.model = 'cnn'",
  });

  const viewSelect = h('select', { id: 'runs-view', onchange: () => setQuery({ view: viewSelect.value === 'active' ? '' : viewSelect.value }, { push: true }) },
    h('option', { value: 'active', selected: view === 'active' }, 'Active'),
    h('option', { value: 'deleted', selected: view === 'deleted' }, 'Deleted'),
    h('option', { value: 'all', selected: view === 'all' }, 'All'));
  const columnsBtn = h('button', { type: 'button', class: 'btn', id: 'runs-columns', 'aria-haspopup': 'dialog', onclick: () => openPicker() }, 'Columns');

  // ---- selection bar
  const selInfo = h('span', { class: 'muted sel-info' }, '');
  const compareBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'runs-compare', disabled: true, onclick: () => {
    navigate('/compare?runs=' + [...selected.keys()].map(encodeURIComponent).join(','));
  } }, 'Compare');
  // Runs of every shown experiment may be selected: offer an action only
  // when the viewer may take it in all of them.
  const perms = await permsP;
  const mayAll = (rpc) => ids.every((id) => perms.experiment(id)(rpc));
  const mayDelete = mayAll('DeleteRun'), mayRestore = mayAll('RestoreRun');
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-quiet-danger', id: 'runs-delete', disabled: true, hidden: !mayDelete, onclick: () => lifecycle('delete') }, 'Delete');
  const restoreBtn = h('button', { type: 'button', class: 'btn', id: 'runs-restore', disabled: true, hidden: !mayRestore, onclick: () => lifecycle('restore') }, 'Restore');
  const clearSelBtn = h('button', { type: 'button', class: 'btn btn-link', hidden: true, onclick: () => { selected.clear(); syncSelection(); } }, 'Clear selection');

  const selBar = h('div', { class: 'selection-bar', role: 'region', 'aria-label': 'Selected runs', hidden: true }, selInfo, compareBtn, deleteBtn, restoreBtn, clearSelBtn);
  const tableBox = h('div', { class: 'runs-table-box' });
  const pager = tokenPager({
    id: 'runs', noun: 'run', size, sizes: SIZES, defaultSize: DEFAULT_SIZE,
    fetch: fetchPage,
    rows: (res) => res.runs || [],
    draw: (runs) => {
      rows = runs.map(indexRun);
      if (cols === null) cols = defaultCols();
      drawTable();
    },
    fail: (err, index) => listFailed(pager, index, err, {
      form: filterBox, filter, box: tableBox, nouns: 'runs',
      resetSort: q.get('order_by') || q.get('sort') ? () => setQuery({ order_by: '', sort: '' }) : null,
    }),
  });

  clear(ctx.main,
    head,
    h('div', { class: 'toolbar runs-toolbar' },
      filterBox.form,
      h('div', { class: 'inline-field' }, h('label', { for: 'runs-view' }, 'Show'), viewSelect),
      columnsBtn),
    h('details', { class: 'filter-help', id: 'runs-filter-help' },
      h('summary', null, 'Filter syntax'),
      h('p', null, 'Combine conditions with ', h('code', null, 'and'), '. Examples: ',
        h('code', null, 'metrics.loss < 0.5'), ', ', h('code', null, "params.model = 'cnn'"), ', ',
        h('code', null, "tags.team = 'vision'"), ', ', h('code', null, "attributes.status = 'FINISHED'"), ', ',
        h('code', null, "attributes.run_name LIKE '%baseline%'"), '. Quote string values; backquote keys with spaces (',
        h('code', null, 'metrics.`val loss`'), ').')),
    filterBox.feedback,
    selBar,
    tableBox,
    pager.el);

  // keysOnPage lists the keys of each kind found on the loaded runs.
  function keysOnPage() {
    const sets = { metrics: new Set(), params: new Set(), tags: new Set() };
    for (const r of rows) {
      for (const k in r.metrics) sets.metrics.add(k);
      for (const k in r.params) sets.params.add(k);
      for (const k in r.tags) if (!HIDDEN_TAGS.has(k)) sets.tags.add(k);
    }
    const out = {};
    for (const kind of KINDS) out[kind] = [...sets[kind]].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    return out;
  }

  function defaultCols() {
    const keys = keysOnPage();
    return [
      ...keys.metrics.slice(0, DEFAULT_PER_KIND).map((key) => ({ kind: 'metrics', key })),
      ...keys.params.slice(0, DEFAULT_PER_KIND).map((key) => ({ kind: 'params', key })),
    ];
  }

  // ---- table
  function sortButton(label, key, firstDir) {
    const norm = normKey(key);
    const active = sort.norm === norm;
    const next = active ? `${key} ${sort.asc ? 'DESC' : 'ASC'}` : `${key} ${firstDir}`;
    return h('button', { type: 'button', class: 'sort', title: `Sort by ${label}`, onclick: () => setQuery({ order_by: next === DEFAULT_SORT ? '' : next, sort: '' }, { push: true }) },
      h('span', { class: 'col-label' }, label),
      h('span', { class: 'sort-ind', 'aria-hidden': 'true' }, active ? (sort.asc ? '▲' : '▼') : '↕'));
  }

  function th(label, key, firstDir = 'ASC', { cls, extra } = {}) {
    if (!key) return h('th', { scope: 'col', class: cls }, label);
    const active = sort.norm === normKey(key);
    return h('th', { scope: 'col', class: cls, 'aria-sort': active ? (sort.asc ? 'ascending' : 'descending') : null }, extra, sortButton(label, key, firstDir));
  }

  function drawTable() {
    clearInterval(durationTimer);
    selBar.hidden = !rows.length && !selected.size;
    if (!rows.length) {
      const msg = filter ? 'No run matches this filter.'
        : view === 'deleted' ? 'No deleted runs.' : 'No runs yet. Log runs to this experiment with an MLflow client.';
      clear(tableBox, h('div', { class: 'panel empty' }, msg));
      syncSelection();
      return;
    }
    const selectAll = h('input', { type: 'checkbox', class: 'select-all', 'aria-label': 'Select all runs on this page', onchange: () => {
      for (const r of rows) {
        if (selectAll.checked) selected.set(r.info.run_id, r.info.lifecycle_stage); else selected.delete(r.info.run_id);
      }
      syncSelection();
    } });
    const headRow = h('tr', null,
      h('th', { scope: 'col', class: 'col-select' }, selectAll),
      th('Run name', 'attributes.run_name', 'ASC', { cls: 'col-name' }),
      multi ? th('Experiment', null) : null,
      th('Status', 'attributes.status'),
      th('User', 'tags.`mlflow.user`'),
      th('Started', 'attributes.start_time', 'DESC'),
      th('Duration', null, 'ASC', { cls: 'num' }),
      th('Source', 'tags.`mlflow.source.name`'),
      cols.map((c) => th(c.key, orderKey(c), 'ASC', {
        cls: `col-${c.kind}${c.kind === 'metrics' ? ' num' : ''}`,
        extra: h('span', { class: `col-kind kind-${c.kind}` }, KIND_ONE[c.kind]),
      })));

    const running = [];
    const now = Date.now();
    const body = document.createDocumentFragment();
    for (const r of rows) body.appendChild(buildRow(r, now, running));
    const table = h('table', { class: 'data runs-table sticky-cols' },
      h('caption', { class: 'sr-only' }, 'Runs'),
      h('thead', null, headRow),
      h('tbody', null));
    table.tBodies[0].appendChild(body);
    clear(tableBox, h('div', { class: 'table-wrap' }, table));
    syncSelection();
    if (running.length) {
      durationTimer = setInterval(() => {
        const t = Date.now();
        for (const [cell, start] of running) cell.textContent = fmtDuration(t - start);
      }, 1000);
    }
  }

  function td(cls, text, title) {
    const el = document.createElement('td');
    if (cls) el.className = cls;
    if (text !== undefined && text !== null && text !== '') el.textContent = text;
    if (title) el.title = title;
    return el;
  }

  function buildRow(r, now, running) {
    const { info, tags } = r;
    const id = info.run_id;
    const deleted = info.lifecycle_stage === 'deleted';
    const tr = document.createElement('tr');
    tr.dataset.runId = id;
    if (deleted) tr.className = 'is-deleted';
    const name = info.run_name || tags['mlflow.runName'] || id.slice(0, 8);

    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.className = 'row-select';
    cb.value = id;
    cb.setAttribute('aria-label', `Select run ${name}`);
    cb.addEventListener('change', () => {
      if (cb.checked) selected.set(id, info.lifecycle_stage); else selected.delete(id);
      syncSelection();
    });
    const c0 = td('col-select'); c0.appendChild(cb); tr.appendChild(c0);

    const c1 = td('col-name');
    c1.appendChild(h('a', { href: runHref(info.experiment_id, id) }, name));
    if (deleted) c1.appendChild(h('span', { class: 'badge badge-deleted' }, 'deleted'));
    tr.appendChild(c1);

    if (multi) {
      const ce = td('col-exp');
      ce.appendChild(h('a', { href: experimentHref(info.experiment_id), class: 'muted-link' }, expName[info.experiment_id] || info.experiment_id));
      tr.appendChild(ce);
    }

    const cs = td();
    cs.appendChild(h('span', { class: `badge status-${info.status}` }, statusLabel(info.status)));
    tr.appendChild(cs);

    tr.appendChild(td(null, tags['mlflow.user'] || info.user_id || '—'));
    tr.appendChild(td(null, fmtTime(info.start_time), fmtRelative(info.start_time)));

    let dur = '—';
    const start = Number(info.start_time) || 0;
    const cd = td('num');
    if (start && info.end_time) dur = fmtDuration(Number(info.end_time) - start);
    else if (start && info.status === 'RUNNING') { dur = fmtDuration(now - start); running.push([cd, start]); }
    cd.textContent = dur;
    tr.appendChild(cd);

    const src = tags['mlflow.source.name'] || '';
    const csrc = td('col-source');
    if (src) csrc.appendChild(h('span', { class: 'truncate mono small', title: src }, shortSource(src)));
    else csrc.textContent = '—';
    tr.appendChild(csrc);

    for (const c of cols) {
      const v = r[c.kind][c.key];
      if (c.kind === 'metrics') {
        tr.appendChild(td('num', v === undefined ? '' : fmtNumber(v), v === undefined ? null : String(v)));
      } else {
        const cell = td(`col-${c.kind}`);
        if (v !== undefined && v !== '') cell.appendChild(h('span', { class: 'truncate', title: v }, v));
        tr.appendChild(cell);
      }
    }
    return tr;
  }

  function syncSelection() {
    const n = selected.size;
    const stages = [...selected.values()];
    selInfo.textContent = n ? `${n} selected` : 'Select runs to compare, delete or restore.';
    compareBtn.disabled = n < 2;
    compareBtn.textContent = n >= 2 ? `Compare ${n} runs` : 'Compare';
    compareBtn.title = n < 2 ? 'Select two or more runs' : '';
    deleteBtn.disabled = !stages.some((s) => s !== 'deleted');
    restoreBtn.disabled = !stages.some((s) => s === 'deleted');
    restoreBtn.hidden = view === 'active' || !mayRestore;
    clearSelBtn.hidden = n === 0;
    syncRowChecks(tableBox, selected);
  }

  async function lifecycle(op) {
    const want = op === 'delete' ? (s) => s !== 'deleted' : (s) => s === 'deleted';
    const targets = [...selected.entries()].filter(([, s]) => want(s)).map(([id]) => id);
    if (!targets.length) return;
    const noun = `${targets.length} run${targets.length === 1 ? '' : 's'}`;
    if (op === 'delete') {
      if (!await confirm(`Delete ${noun}?`, 'Deleted runs move to the “Deleted” view, where you can restore them.')) return;
    } else if (!await confirm(`Restore ${noun}?`, 'The runs become active again.', 'Restore')) return;
    const failed = [];
    // A few at a time: enough to be quick, gentle with the server.
    const queue = targets.slice();
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try { await api.post(`runs/${op}`, { run_id: id }); } catch (err) { failed.push(err.message); }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    if (failed.length) toast(`${failed.length} of ${noun} failed: ${failed[0]}`, 'error');
    else toast(op === 'delete' ? `Deleted ${noun}` : `Restored ${noun}`);
    selected.clear();
    await pager.load(pager.index);
  }

  // ---- column picker
  function openPicker() {
    if (cols === null) cols = [];
    const keys = keysOnPage();
    for (const c of cols) if (!keys[c.kind].includes(c.key)) keys[c.kind].push(c.key);
    const lower = {};
    for (const kind of KINDS) lower[kind] = keys[kind].map((k) => k.toLowerCase());
    // chosen is the picker's state; order = the order of choosing (existing columns first).
    const chosen = new Set(cols.map(colId));
    const search = h('input', { type: 'search', id: 'colpick-search', placeholder: 'Find a param, metric or tag', autocomplete: 'off' });
    const countEl = h('span', { class: 'muted', 'aria-live': 'polite' });
    const updateCount = () => { countEl.textContent = `${chosen.size} column${chosen.size === 1 ? '' : 's'} chosen`; };
    const none = h('p', { class: 'muted small', hidden: true }, 'No key matches.');
    const groups = KINDS.map((kind) => {
      const list = h('ul', { class: 'colpick-list' });
      const more = h('p', { class: 'muted small colpick-more', hidden: true });
      const legendCount = h('span', { class: 'muted' });
      let shown = []; // keys currently listed
      const setAll = (on) => {
        for (const key of shown) { const id = `${kind}.${key}`; if (on) chosen.add(id); else chosen.delete(id); }
        for (const cb of list.querySelectorAll('input')) cb.checked = on;
        updateCount();
      };
      const fs = h('fieldset', { class: 'colpick-group', dataset: { kind } },
        h('legend', null, KIND_LABEL[kind], legendCount),
        keys[kind].length ? h('div', { class: 'colpick-bulk' },
          h('button', { type: 'button', class: 'btn btn-link btn-small', 'aria-label': `Choose all listed ${KIND_LABEL[kind].toLowerCase()}`, onclick: () => setAll(true) }, 'All'),
          h('button', { type: 'button', class: 'btn btn-link btn-small', 'aria-label': `Clear all listed ${KIND_LABEL[kind].toLowerCase()}`, onclick: () => setAll(false) }, 'None')) : null,
        keys[kind].length ? list : h('p', { class: 'muted small' }, `No ${KIND_LABEL[kind].toLowerCase()} on this page.`),
        more);
      // fill lists at most PICKER_LIMIT keys (an experiment may log thousands).
      const fill = (needle) => {
        const all = keys[kind];
        const match = [];
        let total = 0;
        for (let i = 0; i < all.length; i++) {
          if (needle && !lower[kind][i].includes(needle)) continue;
          total++;
          if (match.length < PICKER_LIMIT) match.push(all[i]);
        }
        shown = match;
        const frag = document.createDocumentFragment();
        for (const key of match) {
          const id = `${kind}.${key}`;
          const cb = h('input', { type: 'checkbox', value: id, checked: chosen.has(id), onchange: () => {
            if (cb.checked) chosen.add(id); else chosen.delete(id);
            updateCount();
          } });
          frag.appendChild(h('li', null, h('label', null, cb, h('span', null, key))));
        }
        list.replaceChildren(frag);
        legendCount.textContent = needle ? ` (${total} of ${all.length})` : ` (${all.length})`;
        more.hidden = total <= match.length;
        more.textContent = `${total - match.length} more — type to narrow the list.`;
        fs.hidden = !!needle && total === 0;
        return total;
      };
      return { fs, fill };
    });
    const refill = () => {
      const needle = search.value.trim().toLowerCase();
      let total = 0;
      for (const g of groups) total += g.fill(needle);
      none.hidden = total > 0 || !needle;
    };
    search.addEventListener('input', debounce(refill, 120));
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const apply = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Apply');
    const form = h('form', { method: 'dialog', class: 'dialog-form colpick' },
      h('h2', { id: 'colpick-title' }, 'Choose columns'),
      h('p', { class: 'muted small' }, 'Keys found on the runs of this page. Your choice is kept in the link and in this browser.'),
      h('div', { class: 'field' }, h('label', { for: 'colpick-search' }, 'Search keys'), search),
      h('div', { class: 'colpick-groups' }, groups.map((g) => g.fs), none),
      h('div', { class: 'dialog-actions' }, countEl, h('span', { class: 'spacer' }), cancel, apply));
    const dlg = h('dialog', { class: 'modal modal-wide', 'aria-labelledby': 'colpick-title' }, form);
    document.body.appendChild(dlg);
    const close = () => { dlg.close(); dlg.remove(); columnsBtn.focus(); };
    ctx.onLeave(() => { if (dlg.isConnected) { dlg.close(); dlg.remove(); } });
    cancel.addEventListener('click', close);
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      // Columns that stay keep their place; new ones follow in the order chosen.
      const next = cols.filter((c) => chosen.has(colId(c)));
      const have = new Set(next.map(colId));
      for (const id of chosen) if (!have.has(id)) next.push(parseCols(id)[0]);
      close();
      setColumns(next);
    });
    refill();
    updateCount();
    dlg.showModal();
    search.focus();
  }

  function setColumns(next) {
    cols = next;
    storeCols(storeKey, cols);
    setQuery({ cols: serializeCols(cols) }, { render: false });
    drawTable();
    columnsBtn.textContent = `Columns (${cols.length})`;
  }

  await pager.load(0, firstPage);
  if (cols) columnsBtn.textContent = `Columns (${cols.length})`;
}

function statusLabel(s) {
  if (!s) return 'unknown';
  return s.charAt(0) + s.slice(1).toLowerCase();
}

/** shortSource keeps the last path segment of a long source name. */
function shortSource(s) {
  if (s.length <= 40) return s;
  const i = s.lastIndexOf('/');
  return i >= 0 && s.length - i < 40 ? '…' + s.slice(i) : s.slice(0, 38) + '…';
}

route('/experiments/:id', 'runs', render);
