// experiments page: the list of experiments with a filter in MLflow's
// search_experiments grammar, a lifecycle view, server-side sorting and
// paging, create / rename / delete / restore, experiment tags, and a
// "compare runs of selected" button leading to the multi-experiment runs
// table. Filter, view and sort live in the URL query (reload and back work).
import {
  route, h, clear, api, setQuery, navigate, fmtTime, fmtRelative, errorBox, toast,
  dialog, confirm, action, isUserTag, experimentHref, permissionsFor, tokenPager, parseSort, filterForm, filterProblem, syncRowChecks,
} from '../lib.js';

const PAGE_SIZE = 100;
const VIEWS = { active: 'ACTIVE_ONLY', deleted: 'DELETED_ONLY', all: 'ALL' };
const DEFAULT_SORT = 'last_update_time DESC';
const SORTABLE = { name: 'name', id: 'experiment_id', created: 'creation_time', updated: 'last_update_time' };

async function render(ctx) {
  const q = ctx.query;
  const filter = (q.get('filter') || '').trim();
  const view = VIEWS[q.get('view')] ? q.get('view') : 'active';
  const sortStr = q.get('order_by') || q.get('sort') || DEFAULT_SORT;
  const sort = parseSort(sortStr, 'last_update_time');

  const oldTitle = document.title;
  document.title = `Experiments · ${oldTitle}`;
  ctx.onLeave(() => { document.title = oldTitle; });

  // Page state (the pager keeps the page tokens), the selection.
  let experiments = [];
  let more = false; // the server handed out a token for a next page
  let perms = { experiment: () => () => true };
  const selected = new Map(); // id -> name

  // ---- head
  const compareBtn = h('button', { type: 'button', class: 'btn', disabled: true, onclick: () => {
    if (selected.size) navigate('/experiments/' + [...selected.keys()].map(encodeURIComponent).join(','));
  } }, 'Compare runs');
  const createBtn = h('button', { type: 'button', class: 'btn btn-primary', onclick: createExperiment }, '+ New experiment');
  const count = h('span', { class: 'muted exp-count' });

  // ---- toolbar: filter + view
  const filterBox = filterForm({
    id: 'exp', label: 'Filter experiments', value: filter, help: 'exp-filter-help',
    placeholder: "name LIKE '%churn%' and tags.team = 'ml'",
  });

  const viewSelect = h('select', { id: 'exp-view', onchange: () => setQuery({ view: viewSelect.value === 'active' ? '' : viewSelect.value }, { push: true }) },
    h('option', { value: 'active', selected: view === 'active' }, 'Active'),
    h('option', { value: 'deleted', selected: view === 'deleted' }, 'Deleted'),
    h('option', { value: 'all', selected: view === 'all' }, 'All'));

  const tableBox = h('div', { class: 'exp-table-box' });
  const pager = tokenPager({ id: 'experiments', noun: 'experiment', size: PAGE_SIZE, go: (i) => load(i) });

  clear(ctx.main,
    h('div', { class: 'page-head' },
      h('h1', null, 'Experiments'), count,
      h('div', { class: 'actions' }, compareBtn, createBtn)),
    h('div', { class: 'toolbar' },
      filterBox.form,
      h('div', { class: 'inline-field' }, h('label', { for: 'exp-view' }, 'Show'), viewSelect)),
    h('p', { id: 'exp-filter-help', class: 'help muted small' },
      'Filter by ', h('code', null, 'name'), ', ', h('code', null, 'tags.<key>'), ', ',
      h('code', null, 'creation_time'), ' or ', h('code', null, 'last_update_time'),
      ' — e.g. ', h('code', null, "name LIKE '%test%'"), '.'),
    filterBox.feedback,
    tableBox,
    pager.el);

  function syncSelection() {
    const n = selected.size;
    compareBtn.disabled = n === 0;
    compareBtn.textContent = n ? `Compare runs (${n})` : 'Compare runs';
    compareBtn.title = n ? `Show the runs of the ${n} selected experiment${n === 1 ? '' : 's'} in one table` : 'Select experiments to see their runs together';
    syncRowChecks(tableBox, selected);
  }

  async function load(index) {
    let res;
    try {
      res = await api.post('experiments/search', {
        max_results: PAGE_SIZE,
        page_token: pager.token(index) || undefined,
        filter: filter || undefined,
        view_type: VIEWS[view],
        order_by: [sortStr],
      }, { signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      if (index === 0 && err.code === 'INVALID_PARAMETER_VALUE') {
        filterProblem({ form: filterBox, err, filter, box: tableBox, nouns: 'experiments',
          resetSort: q.get('order_by') || q.get('sort') ? () => setQuery({ order_by: '', sort: '' }) : null });
        pager.clearInfo();
        return;
      }
      // The first page failing leaves nothing to show; a later one (Next,
      // Previous, a reload after an action) keeps the page as it was.
      if (index === 0) { clear(tableBox, errorBox(err)); pager.clearInfo(); }
      if (index > 0 || experiments.length) toast(err.message, 'error');
      return;
    }
    const list = res.experiments || [];
    // A reload after the last row of a later page went (deleted, restored
    // or renamed out of the filter) steps back a page instead of showing
    // the gone rows again.
    if (!list.length && index > 0 && index === pager.index) { await load(index - 1); return; }
    // Which rows' actions the viewer may take (one question per page).
    const p = await permissionsFor({ experiments: list.map((e) => e.experiment_id) }, ctx.signal);
    // MLflow hands out a token whenever a page is full; the page after
    // the last full one is empty: the pager stays and says so.
    if (!pager.loaded(index, list.length, res.next_page_token)) return;
    perms = p;
    experiments = list;
    more = !!res.next_page_token;
    drawTable();
  }

  function sortHeader(label, col, cls) {
    const key = SORTABLE[col];
    const active = sort.key === key || sort.key === 'attribute.' + key;
    const ariaSort = active ? (sort.asc ? 'ascending' : 'descending') : null;
    const next = active ? `${key} ${sort.asc ? 'DESC' : 'ASC'}` : `${key} ${col === 'name' ? 'ASC' : 'DESC'}`;
    return h('th', { scope: 'col', class: cls, 'aria-sort': ariaSort },
      h('button', { type: 'button', class: 'sort', title: `Sort by ${label.toLowerCase()}`, onclick: () => setQuery({ order_by: next === DEFAULT_SORT ? '' : next, sort: '' }, { push: true }) },
        label, h('span', { class: 'sort-ind', 'aria-hidden': 'true' }, active ? (sort.asc ? '▲' : '▼') : '↕')));
  }

  function drawTable() {
    if (!experiments.length) {
      const msg = filter ? 'No experiment matches this filter.'
        : view === 'deleted' ? 'No deleted experiments.' : 'No experiments yet. Create one to start tracking runs.';
      clear(tableBox, h('div', { class: 'panel empty' }, msg));
      count.textContent = '';
      syncSelection();
      return;
    }
    const first = pager.index * PAGE_SIZE + 1;
    count.textContent = more || pager.index ? `${first}–${first + experiments.length - 1}`
      : `${experiments.length} experiment${experiments.length === 1 ? '' : 's'}`;
    const selectAll = h('input', { type: 'checkbox', class: 'select-all', 'aria-label': 'Select all experiments on this page', onchange: () => {
      for (const e of experiments) {
        if (selectAll.checked) selected.set(e.experiment_id, e.name); else selected.delete(e.experiment_id);
      }
      syncSelection();
    } });
    const body = document.createDocumentFragment();
    for (const e of experiments) body.appendChild(row(e));
    clear(tableBox, h('div', { class: 'table-wrap' },
      h('table', { class: 'data exp-table sticky-cols' },
        h('caption', { class: 'sr-only' }, 'Experiments'),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col', class: 'col-select' }, selectAll),
          sortHeader('Name', 'name', 'col-name'),
          sortHeader('ID', 'id'),
          h('th', { scope: 'col' }, 'Artifact location'),
          sortHeader('Created', 'created'),
          sortHeader('Last updated', 'updated'),
          view !== 'active' ? h('th', { scope: 'col' }, 'Stage') : null,
          h('th', { scope: 'col' }, 'Tags'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', null, body))));
    syncSelection();
  }

  function row(e) {
    const id = e.experiment_id;
    const may = perms.experiment(id);
    const deleted = e.lifecycle_stage === 'deleted';
    const tags = (e.tags || []).filter((t) => isUserTag(t.key));
    const cb = h('input', { type: 'checkbox', class: 'row-select', value: id, 'aria-label': `Select ${e.name}`, onchange: () => {
      if (cb.checked) selected.set(id, e.name); else selected.delete(id);
      syncSelection();
    } });
    return h('tr', { dataset: { id }, class: deleted ? 'is-deleted' : null },
      h('td', { class: 'col-select' }, cb),
      h('td', { class: 'col-name' }, h('a', { href: experimentHref(id) }, e.name)),
      h('td', { class: 'mono muted' }, id),
      h('td', null, h('span', { class: 'truncate mono small', title: e.artifact_location }, e.artifact_location || '—')),
      h('td', { title: fmtRelative(e.creation_time) }, fmtTime(e.creation_time)),
      h('td', { title: fmtTime(e.last_update_time) }, fmtRelative(e.last_update_time) || '—'),
      view !== 'active' ? h('td', null, h('span', { class: deleted ? 'badge badge-deleted' : 'badge' }, deleted ? 'deleted' : 'active')) : null,
      h('td', { class: 'tags-cell' },
        tags.map((t) => h('span', { class: 'chip' }, h('span', null, h('b', null, t.key), t.value !== '' ? ': ' : '', t.value),
          may('DeleteExperimentTag') ? h('button', { type: 'button', class: 'chip-x', 'aria-label': `Remove tag ${t.key} from ${e.name}`, title: 'Remove tag', onclick: () => removeTag(e, t.key) }, '×') : null)),
        may('SetExperimentTag') ? h('button', { type: 'button', class: 'btn btn-link btn-small add-tag', 'aria-label': `Add a tag to ${e.name}`, onclick: () => addTag(e) }, '+ Tag') : null),
      h('td', { class: 'row-actions' },
        may('UpdateExperiment') ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Rename ${e.name}`, onclick: () => rename(e) }, 'Rename') : null,
        deleted
          ? (may('RestoreExperiment') ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Restore ${e.name}`, onclick: () => restore(e) }, 'Restore') : null)
          : (id === '0' || !may('DeleteExperiment') ? null : h('button', { type: 'button', class: 'btn btn-small btn-quiet-danger', 'aria-label': `Delete ${e.name}`, onclick: () => remove(e) }, 'Delete'))));
  }

  const reload = () => load(pager.index);

  async function createExperiment() {
    const v = await dialog({
      title: 'New experiment', submit: 'Create',
      fields: [
        { name: 'name', label: 'Name', required: true, placeholder: 'e.g. churn-model' },
        { name: 'artifact_location', label: 'Artifact location (optional)', placeholder: 'default: the server\u2019s artifact root' },
      ],
      validate: (x) => (x.name.trim() ? '' : 'Give the experiment a name.'),
    });
    if (!v) return;
    const res = await action(() => api.post('experiments/create', { name: v.name.trim(), artifact_location: v.artifact_location.trim() || undefined }), `Created experiment “${v.name.trim()}”`);
    if (res) await reload();
  }

  async function rename(e) {
    const v = await dialog({
      title: 'Rename experiment', submit: 'Rename',
      fields: [{ name: 'name', label: 'New name', value: e.name, required: true }],
      validate: (x) => (x.name.trim() ? '' : 'The name cannot be empty.'),
    });
    if (!v || v.name.trim() === e.name) return;
    const ok = await action(() => api.post('experiments/update', { experiment_id: e.experiment_id, new_name: v.name.trim() }), `Renamed to “${v.name.trim()}”`);
    if (ok) {
      if (selected.has(e.experiment_id)) selected.set(e.experiment_id, v.name.trim());
      await reload();
    }
  }

  async function remove(e) {
    if (!await confirm('Delete experiment?', `“${e.name}” and its runs move to the deleted experiments. You can restore it from the “Deleted” view.`)) return;
    const ok = await action(() => api.post('experiments/delete', { experiment_id: e.experiment_id }), `Deleted “${e.name}”`);
    if (ok) { selected.delete(e.experiment_id); await reload(); }
  }

  async function restore(e) {
    const ok = await action(() => api.post('experiments/restore', { experiment_id: e.experiment_id }), `Restored “${e.name}”`);
    if (ok) await reload();
  }

  async function addTag(e) {
    const v = await dialog({
      title: `Tag “${e.name}”`, submit: 'Add tag',
      fields: [
        { name: 'key', label: 'Key', required: true, placeholder: 'e.g. team' },
        { name: 'value', label: 'Value', placeholder: 'e.g. forecasting' },
      ],
      validate: (x) => (x.key.trim() ? '' : 'A tag needs a key.'),
    });
    if (!v) return;
    const ok = await action(() => api.post('experiments/set-experiment-tag', { experiment_id: e.experiment_id, key: v.key.trim(), value: v.value }), `Tagged “${e.name}”`);
    if (ok) await reload();
  }

  async function removeTag(e, key) {
    const ok = await action(() => api.post('experiments/delete-experiment-tag', { experiment_id: e.experiment_id, key }), `Removed tag ${key}`);
    if (ok) await reload();
  }

  await load(0);
}

route('/experiments', 'experiments', render);
