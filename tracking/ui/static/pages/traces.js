// traces.js: an experiment's Traces tab. One page of traces at a time from
// MLflow 3's trace search (POST /ajax-api/3.0/mlflow/traces/search):
// filter (MLflow's trace filter grammar), order_by and page tokens all go
// to the server, so an experiment of any size shows its first page as fast
// as the server answers it. The view (filter, sort, page size) lives in the
// URL query. Selected traces are deleted with delete-traces.
import {
  route, h, clear, api, setQuery, fmtTime, fmtRelative, fmtDuration, toast, confirm,
  runHref, permissionsFor, tokenPager, parseSort, filterForm, listFailed, trunc, syncRowChecks,
} from '../lib.js';
import { loadExperiment, sectionHead, traceHref } from './experiment-tabs.js';
import {
  V3, parseDuration, tokenUsageOf, stateLabel, assessmentValueText, traceName, previewText,
} from './trace-common.js';

const SIZES = [25, 50, 100];
const DEFAULT_SIZE = 50;
const DEFAULT_SORT = 'timestamp_ms DESC';
// Trace tags the table does not list as user tags.
const isUserTraceTag = (k) => !k.startsWith('mlflow.');

route('/experiments/:id/traces', 'traces', render, { nav: 'experiments' });

async function render(ctx) {
  const id = ctx.params.id;
  const q = ctx.query;
  const filter = (q.get('filter') || '').trim();
  const sizeQ = Number(q.get('size'));
  const size = SIZES.includes(sizeQ) ? sizeQ : DEFAULT_SIZE;
  const sortStr = q.get('order_by') || DEFAULT_SORT;
  const sort = parseSort(sortStr, 'timestamp_ms');

  const fetchPage = (token) => api.post(V3 + 'traces/search', {
    locations: [{ type: 'MLFLOW_EXPERIMENT', mlflow_experiment: { experiment_id: id } }],
    filter: filter || undefined,
    max_results: size,
    order_by: [sortStr],
    page_token: token || undefined,
  }, { signal: ctx.signal });
  const firstPage = fetchPage('');
  firstPage.catch(() => {});
  const permsP = permissionsFor({ experiments: [id] }, ctx.signal);
  permsP.catch(() => {});

  const exp = await loadExperiment(ctx, id);
  if (!exp) return;
  const oldTitle = document.title;
  document.title = `${exp.name} · Traces · ${oldTitle}`;
  ctx.onLeave(() => { document.title = oldTitle; });
  const may = (await permsP).experiment(id);

  let rows = [];
  const selected = new Set();

  const filterBox = filterForm({
    id: 'traces', label: 'Filter traces', value: filter, help: 'traces-filter-help',
    placeholder: "tags.`mlflow.traceName` = 'chat' and execution_time_ms > 500",
  });

  const selInfo = h('span', { class: 'muted sel-info' }, '');
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-quiet-danger', id: 'traces-delete', disabled: true, hidden: !may('DeleteTracesV3'), onclick: () => removeSelected() }, 'Delete');
  const clearSelBtn = h('button', { type: 'button', class: 'btn btn-link', hidden: true, onclick: () => { selected.clear(); syncSelection(); } }, 'Clear selection');
  const selBar = h('div', { class: 'selection-bar', role: 'region', 'aria-label': 'Selected traces', hidden: true }, selInfo, deleteBtn, clearSelBtn);
  const tableBox = h('div', { class: 'traces-table-box' });
  const pager = tokenPager({
    id: 'traces', noun: 'trace', size, sizes: SIZES, defaultSize: DEFAULT_SIZE,
    fetch: fetchPage,
    rows: (res) => res.traces || [],
    draw: (traces) => { rows = traces; drawTable(); },
    fail: (err, index) => listFailed(pager, index, err, {
      form: filterBox, filter, box: tableBox, nouns: 'traces',
      resetSort: q.get('order_by') ? () => setQuery({ order_by: '' }) : null,
    }),
  });

  clear(ctx.main,
    sectionHead(exp, 'traces', 'Traces'),
    h('div', { class: 'toolbar' }, filterBox.form),
    h('details', { class: 'filter-help', id: 'traces-filter-help' },
      h('summary', null, 'Filter syntax'),
      h('p', null, 'MLflow’s trace search grammar; combine conditions with ', h('code', null, 'and'), '. Examples: ',
        h('code', null, "status = 'ERROR'"), ', ', h('code', null, 'execution_time_ms > 1000'), ', ',
        h('code', null, "name = 'chat'"), ', ', h('code', null, "tags.env = 'prod'"), ', ',
        h('code', null, "metadata.`mlflow.trace.user` = 'alice'"), ', ', h('code', null, "run_id = '<run id>'"), ', ',
        h('code', null, 'timestamp_ms > 1700000000000'), '.')),
    filterBox.feedback,
    selBar,
    tableBox,
    pager.el);

  function sortHeader(label, key, firstDir, cls) {
    const active = sort.key === key;
    const next = active ? `${key} ${sort.asc ? 'DESC' : 'ASC'}` : `${key} ${firstDir}`;
    return h('th', { scope: 'col', class: cls, 'aria-sort': active ? (sort.asc ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'sort', title: `Sort by ${label}`, dataset: { sort: key },
        onclick: () => setQuery({ order_by: next === DEFAULT_SORT ? '' : next }, { push: true }) },
      h('span', { class: 'col-label' }, label),
      h('span', { class: 'sort-ind', 'aria-hidden': 'true' }, active ? (sort.asc ? '▲' : '▼') : '↕')));
  }

  function drawTable() {
    selBar.hidden = !rows.length && !selected.size;
    if (!rows.length) {
      clear(tableBox, h('div', { class: 'panel empty' }, filter ? 'No trace matches this filter.'
        : 'No traces yet. Traces logged to this experiment (mlflow.trace, autologging, OpenTelemetry) show up here.'));
      syncSelection();
      return;
    }
    const selectAll = h('input', { type: 'checkbox', class: 'select-all', 'aria-label': 'Select all traces on this page', onchange: () => {
      for (const t of rows) { if (selectAll.checked) selected.add(t.trace_id); else selected.delete(t.trace_id); }
      syncSelection();
    } });
    const head = h('tr', null,
      h('th', { scope: 'col', class: 'col-select' }, selectAll),
      h('th', { scope: 'col', class: 'col-name' }, 'Trace'),
      h('th', { scope: 'col' }, 'Request'),
      h('th', { scope: 'col' }, 'Response'),
      sortHeader('State', 'status', 'ASC'),
      sortHeader('Request time', 'timestamp_ms', 'DESC'),
      sortHeader('Latency', 'execution_time_ms', 'DESC', 'num'),
      h('th', { scope: 'col', class: 'num' }, 'Tokens'),
      h('th', { scope: 'col' }, 'Tags'),
      h('th', { scope: 'col' }, 'Assessments'),
      h('th', { scope: 'col' }, 'Run'));
    const body = document.createDocumentFragment();
    for (const t of rows) body.appendChild(buildRow(t));
    const table = h('table', { class: 'data traces-table', id: 'traces-table' },
      h('caption', { class: 'sr-only' }, 'Traces'), h('thead', null, head), h('tbody', null));
    table.tBodies[0].appendChild(body);
    clear(tableBox, h('div', { class: 'table-wrap' }, table));
    syncSelection();
  }

  function buildRow(t) {
    const tid = t.trace_id;
    const meta = t.trace_metadata || {};
    const tags = t.tags || {};
    const tr = h('tr', { dataset: { traceId: tid } });
    const cb = h('input', { type: 'checkbox', class: 'row-select', value: tid, 'aria-label': `Select trace ${tid}`, onchange: () => {
      if (cb.checked) selected.add(tid); else selected.delete(tid);
      syncSelection();
    } });
    const name = traceName(t);
    const ms = Date.parse(t.request_time);
    const lat = parseDuration(t.execution_duration);
    const usage = tokenUsageOf(meta);
    const userTags = Object.entries(tags).filter(([k]) => isUserTraceTag(k)).sort(([a], [b]) => a.localeCompare(b));
    const assessments = t.assessments || [];
    const run = meta['mlflow.sourceRun'];
    tr.append(
      h('td', { class: 'col-select' }, cb),
      h('td', { class: 'col-name' }, h('a', { href: traceHref(id, tid), class: 'trace-link' }, name || tid.slice(0, 12)),
        name ? h('div', { class: 'muted small mono', title: tid }, tid.length > 16 ? '…' + tid.slice(-12) : tid) : null),
      h('td', { class: 'col-preview' }, h('span', { class: 'truncate preview-cell', title: previewText(t.request_preview) }, previewText(t.request_preview) || '—')),
      h('td', { class: 'col-preview' }, h('span', { class: 'truncate preview-cell', title: previewText(t.response_preview) }, previewText(t.response_preview) || '—')),
      h('td', null, h('span', { class: `badge trace-state state-${t.state}` }, stateLabel(t.state))),
      h('td', { title: ms ? fmtRelative(ms) : null }, ms ? fmtTime(ms) : '—'),
      h('td', { class: 'num' }, lat === null ? '—' : fmtDuration(lat)),
      h('td', { class: 'num', title: usage ? `input ${usage.input ?? '—'}, output ${usage.output ?? '—'}` : null }, usage && usage.total !== null ? String(usage.total) : '—'),
      h('td', { class: 'col-tags' }, userTags.length ? userTags.slice(0, 4).map(([k, v]) => h('span', { class: 'chip', title: `${k}: ${v}` }, h('b', null, k), v ? ' ' + trunc(v, 20) : '')) : '',
        userTags.length > 4 ? h('span', { class: 'muted small' }, ` +${userTags.length - 4}`) : null),
      h('td', { class: 'col-assessments' }, assessments.slice(0, 4).map((a) => h('span', { class: 'chip assessment-chip', title: a.rationale || '' },
        h('b', null, a.assessment_name), ' ', trunc(assessmentValueText(a), 20))),
      assessments.length > 4 ? h('span', { class: 'muted small' }, ` +${assessments.length - 4}`) : null),
      h('td', null, run ? h('a', { href: runHref(id, run), class: 'mono small' }, run.slice(0, 8)) : '—'));
    return tr;
  }

  function syncSelection() {
    const n = selected.size;
    selInfo.textContent = n ? `${n} selected` : 'Select traces to delete them.';
    deleteBtn.disabled = n === 0;
    clearSelBtn.hidden = n === 0;
    syncRowChecks(tableBox, selected);
  }

  async function removeSelected() {
    const ids = [...selected];
    if (!ids.length) return;
    const noun = `${ids.length} trace${ids.length === 1 ? '' : 's'}`;
    if (!await confirm(`Delete ${noun}?`, 'Deleted traces and their spans and assessments are removed for good.')) return;
    let deleted = 0;
    try {
      // delete-traces takes at most 100 ids at a time (MLflow's limit).
      for (let i = 0; i < ids.length; i += 100) {
        const r = await api.post(V3 + 'traces/delete-traces', { experiment_id: id, request_ids: ids.slice(i, i + 100) });
        deleted += Number(r.traces_deleted || 0);
      }
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    toast(`Deleted ${deleted} trace${deleted === 1 ? '' : 's'}`);
    selected.clear();
    await pager.load(pager.index);
  }

  await pager.load(0, firstPage);
}

