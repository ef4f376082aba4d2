// models.js: the model registry: registered models, one model (versions,
// aliases, tags) and one model version (stage transitions, tags).
import {
  route, h, clear, api, navigate, setQuery, fmtTime, fmtRelative, errorBox, toast, dialog, confirm, action,
  breadcrumbs, runHref, permissionsFor, tokenPager, timeCell,
} from '../lib.js';
import { quote, dash, aliasChip, nameCell, listCells, nameSearch } from './registry-common.js';

const PAGE_SIZE = 25;
const STAGES = ['None', 'Staging', 'Production', 'Archived'];

route('/models', 'models', renderModels);
route('/models/:name', 'model', renderModel);
route('/models/:name/versions/:version', 'model-version', renderVersion);

// ---------------------------------------------------------------- helpers

function modelHref(name) { return `/models/${encodeURIComponent(name)}`; }
function versionHref(name, v) { return `/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(v)}`; }

function stageBadge(stage) {
  const s = stage || 'None';
  return h('span', { class: `badge stage-badge stage-${s}` }, s);
}

// Experiments of source runs, resolved through runs/get (one call per run).
const runExperiments = new Map();

async function resolveRuns(runIds, signal) {
  const todo = [...new Set(runIds.filter((id) => id && !runExperiments.has(id)))];
  await Promise.all(todo.map((id) => api.get('runs/get', { run_id: id }, { signal })
    .then((r) => runExperiments.set(id, { exp: r.run.info.experiment_id, name: r.run.info.run_name }))
    .catch((err) => { if (err.name !== 'AbortError') runExperiments.set(id, null); })));
}

function runLink(runId) {
  if (!runId) return dash();
  const r = runExperiments.get(runId);
  if (!r) return h('code', { title: 'The source run is not available' }, runId.slice(0, 12));
  return h('a', { href: runHref(r.exp, runId), title: runId }, r.name || runId.slice(0, 12));
}

/** descriptionPanel is a description panel: plain text (never HTML), with an edit button when onEdit is set. */
function descriptionPanel(text, onEdit) {
  return h('section', { class: 'panel', 'aria-labelledby': 'desc-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'desc-h' }, 'Description'),
      onEdit ? h('button', { type: 'button', class: 'btn btn-small', id: 'edit-description', onclick: onEdit }, text ? 'Edit' : 'Add description') : null),
    text ? h('div', { class: 'note-text' }, text) : h('p', { class: 'muted' }, 'No description.'));
}

/** tagsPanel is a table of tags, editable where onSet and onDelete are set. */
function tagsPanel(tags, { onSet, onDelete }) {
  const list = [...(tags || [])].sort((a, b) => a.key.localeCompare(b.key));
  const add = async () => {
    const v = await dialog({
      title: 'Add tag', submit: 'Add',
      fields: [{ name: 'key', label: 'Key', required: true }, { name: 'value', label: 'Value', type: 'textarea' }],
      validate: (x) => (x.key.trim() ? '' : 'Enter a key.'),
    });
    if (v) onSet(v.key.trim(), v.value, 'Tag added');
  };
  const edit = async (t) => {
    const v = await dialog({ title: `Edit tag “${t.key}”`, submit: 'Save', fields: [{ name: 'value', label: 'Value', type: 'textarea', value: t.value }] });
    if (v) onSet(t.key, v.value, 'Tag saved');
  };
  const del = async (t) => {
    if (await confirm('Delete tag?', `The tag “${t.key}” is removed.`)) onDelete(t.key);
  };
  return h('section', { class: 'panel', 'aria-labelledby': 'tags-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'tags-h' }, 'Tags ', h('span', { class: 'muted small' }, String(list.length))),
      onSet ? h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'add-tag', onclick: add }, 'Add tag') : null),
    list.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'data tags-table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', null, list.map((t) => h('tr', { dataset: { key: t.key } },
          h('td', { class: 'mono' }, t.key), h('td', { class: 'wrap' }, t.value),
          h('td', { class: 'row-actions' },
            onSet ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Edit tag ${t.key}`, onclick: () => edit(t) }, 'Edit') : null,
            onDelete ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Delete tag ${t.key}`, onclick: () => del(t) }, 'Delete') : null))))))
      : h('p', { class: 'muted' }, 'No tags yet.'));
}

// ---------------------------------------------------------------- /models

async function renderModels(ctx) {
  const state = {
    q: ctx.query.get('q') || '',
    sort: ctx.query.get('sort') || 'name',
    dir: ctx.query.get('dir') || (ctx.query.get('sort') === 'last_updated_timestamp' ? 'DESC' : 'ASC'),
  };
  document.title = 'Models';
  const tableBox = h('div', { class: 'models-table' });
  const pager = tokenPager({
    id: 'models', noun: 'model', size: PAGE_SIZE, box: tableBox,
    fetch: (token) => api.get('registered-models/search', {
      max_results: PAGE_SIZE, order_by: [`${state.sort} ${state.dir}`], page_token: token || undefined,
      filter: state.q ? `name ILIKE ${quote('%' + state.q + '%')}` : undefined,
    }, { signal: ctx.signal }),
    rows: (res) => res.registered_models || [],
    draw: (models) => drawTable(models),
  });
  const search = nameSearch({ id: 'model-search', label: 'Search models by name', state, pager });
  clear(ctx.main,
    h('div', { class: 'page-head' },
      h('h1', null, 'Registered models'),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-primary', onclick: () => createModel() }, 'Create model'))),
    h('div', { class: 'toolbar' }, search),
    tableBox, pager.el);

  const sortHeader = (key, label) => {
    const on = state.sort === key;
    return h('th', { scope: 'col', 'aria-sort': on ? (state.dir === 'ASC' ? 'ascending' : 'descending') : 'none' },
      h('button', {
        type: 'button', class: 'sort',
        onclick: () => {
          if (on) state.dir = state.dir === 'ASC' ? 'DESC' : 'ASC';
          else { state.sort = key; state.dir = key === 'name' ? 'ASC' : 'DESC'; }
          pager.reset();
          setQuery({ sort: state.sort === 'name' ? '' : state.sort, dir: state.dir }, { render: false });
          pager.load(0);
        },
      }, label, h('span', { 'aria-hidden': 'true', class: 'sort-mark' }, on ? (state.dir === 'ASC' ? '▲' : '▼') : '')));
  };

  const drawTable = (models) => {
    if (!models.length) {
      clear(tableBox, h('div', { class: 'panel empty' },
        state.q ? ['No model name contains “', state.q, '”.'] : [h('p', null, h('strong', null, 'No registered models yet.')),
          h('p', { class: 'muted' }, 'Register a model from a run with mlflow.register_model(), or create one here.')]));
      return;
    }
    clear(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'models-table' },
      h('thead', null, h('tr', null,
        sortHeader('name', 'Name'),
        h('th', { scope: 'col' }, 'Latest versions'),
        h('th', { scope: 'col' }, 'Aliases'),
        h('th', { scope: 'col' }, 'Tags'),
        sortHeader('last_updated_timestamp', 'Last modified'))),
      h('tbody', null, models.map((m) => {
        const latest = [...(m.latest_versions || [])].sort((a, b) => Number(b.version) - Number(a.version));
        return h('tr', { dataset: { name: m.name } },
          nameCell(m, modelHref(m.name), 'model-link'),
          h('td', { class: 'wrap', 'data-label': 'Latest versions' }, h('div', { class: 'cell-chips' }, latest.length
            ? latest.map((v) => h('a', { href: versionHref(m.name, v.version), class: 'chip version-chip' }, `v${v.version}`, stageBadge(v.current_stage)))
            : dash())),
          listCells(m));
      })))));
  };

  await pager.load(0);
}

async function createModel() {
  const v = await dialog({
    title: 'Create registered model', submit: 'Create',
    fields: [{ name: 'name', label: 'Name', required: true, placeholder: 'e.g. churn-classifier' },
      { name: 'description', label: 'Description (optional)', type: 'textarea' }],
    validate: (x) => (x.name.trim() ? '' : 'Enter a name.'),
  });
  if (!v) return;
  const body = { name: v.name.trim() };
  if (v.description.trim()) body.description = v.description;
  const r = await action(() => api.post('registered-models/create', body), 'Model created');
  if (r) navigate(modelHref(r.registered_model.name));
}

// ---------------------------------------------------------------- /models/:name

async function renderModel(ctx) {
  const name = ctx.params.name;
  let model, versions, perms;
  try {
    [model, versions, perms] = await Promise.all([
      api.get('registered-models/get', { name }, { signal: ctx.signal }).then((r) => r.registered_model),
      loadVersions(name, ctx.signal),
      permissionsFor({ models: [name] }, ctx.signal),
    ]);
    await resolveRuns(versions.map((v) => v.run_id), ctx.signal);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    clear(ctx.main, breadcrumbs(['Models', '/models'], [name]), h('h1', null, name), errorBox(err));
    return;
  }
  document.title = `${name} · Models`;
  const reload = () => ctx.refresh();
  // Actions the viewer may not take are not shown.
  const may = perms.model(name);

  const rename = async () => {
    const v = await dialog({ title: 'Rename model', submit: 'Rename', fields: [{ name: 'name', label: 'New name', value: name, required: true }],
      validate: (x) => (x.name.trim() ? '' : 'Enter a name.') });
    if (!v || v.name.trim() === name) return;
    const r = await action(() => api.post('registered-models/rename', { name, new_name: v.name.trim() }), 'Model renamed');
    if (r) navigate(modelHref(r.registered_model.name), { replace: true });
  };
  const remove = async () => {
    const n = versions.length;
    if (!await confirm(`Delete model “${name}”?`, `This deletes the model${n ? ` and its ${n} version${n === 1 ? '' : 's'}` : ''}. It cannot be undone.`)) return;
    const r = await action(() => api.del('registered-models/delete', { name }), 'Model deleted');
    if (r !== undefined) navigate('/models');
  };
  const editDescription = async () => {
    const v = await dialog({ title: 'Edit description', fields: [{ name: 'text', label: 'Description (plain text)', type: 'textarea', value: model.description || '' }] });
    if (!v) return;
    const r = await action(() => api.patch('registered-models/update', { name, description: v.text }), 'Description saved');
    if (r !== undefined) reload();
  };
  const setAlias = async (preset) => {
    if (!versions.length) { toast('Register a version first: an alias points at a version.', 'error'); return; }
    const v = await dialog({
      title: 'Set alias', submit: 'Set alias',
      message: 'An alias names one version (e.g. “champion”); setting an existing alias moves it.',
      fields: [{ name: 'alias', label: 'Alias', required: true, value: preset || '', placeholder: 'champion' },
        { name: 'version', label: 'Version', type: 'select', options: versions.map((x) => x.version), value: versions[0].version }],
      validate: (x) => (x.alias.trim() ? '' : 'Enter an alias.'),
    });
    if (!v) return;
    const r = await action(() => api.post('registered-models/alias', { name, alias: v.alias.trim(), version: v.version }), `Alias @${v.alias.trim()} now points at version ${v.version}`);
    if (r !== undefined) reload();
  };
  const deleteAlias = async (alias) => {
    if (!await confirm(`Delete alias @${alias}?`, 'The version stays; only the alias is removed.')) return;
    const r = await action(() => api.del('registered-models/alias', { name, alias }), 'Alias deleted');
    if (r !== undefined) reload();
  };

  // Model-version search does not list aliases (as in MLflow): take them from the model.
  const aliasesOf = {};
  for (const a of model.aliases || []) (aliasesOf[a.version] = aliasesOf[a.version] || []).push(a.alias);
  const byStage = {};
  for (const v of model.latest_versions || []) byStage[v.current_stage || 'None'] = v;
  const details = h('section', { class: 'panel', 'aria-labelledby': 'model-details-h' },
    h('h2', { id: 'model-details-h' }, 'Details'),
    h('dl', { class: 'kv' },
      h('dt', null, 'Created'), h('dd', null, fmtTime(model.creation_timestamp)),
      h('dt', null, 'Last modified'), h('dd', null, fmtTime(model.last_updated_timestamp), ' ', h('span', { class: 'muted' }, `(${fmtRelative(model.last_updated_timestamp)})`)),
      h('dt', null, 'Versions'), h('dd', null, String(versions.length)),
      h('dt', null, 'Latest by stage'), h('dd', null, Object.keys(byStage).length
        ? STAGES.filter((s) => byStage[s]).map((s) => h('a', { href: versionHref(name, byStage[s].version), class: 'chip version-chip' }, `v${byStage[s].version}`, stageBadge(s)))
        : '—'),
      h('dt', null, 'Aliases'), h('dd', { class: 'alias-list' },
        (model.aliases || []).length ? model.aliases.map((a) => aliasChip(a.alias, a.version, may('DeleteRegisteredModelAlias') ? () => deleteAlias(a.alias) : null)) : h('span', { class: 'muted' }, 'none'),
        may('SetRegisteredModelAlias') ? h('button', { type: 'button', class: 'btn btn-small', id: 'set-alias', onclick: () => setAlias() }, 'Set alias') : null)));

  const versionsPanel = h('section', { class: 'panel', 'aria-labelledby': 'versions-h' },
    h('h2', { id: 'versions-h' }, 'Versions ', h('span', { class: 'muted small' }, String(versions.length))),
    versions.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'versions-table' },
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Stage'), h('th', { scope: 'col' }, 'Aliases'),
        h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Source run'), h('th', { scope: 'col' }, 'Created'),
        versions.some((v) => v.model_id) ? h('th', { scope: 'col' }, 'Model ID') : null)),
      h('tbody', null, versions.map((v) => h('tr', { dataset: { version: v.version } },
        h('td', null, h('a', { href: versionHref(name, v.version), class: 'version-link' }, `Version ${v.version}`)),
        h('td', null, stageBadge(v.current_stage)),
        h('td', { class: 'wrap' }, (aliasesOf[v.version] || []).length ? aliasesOf[v.version].map((a) => aliasChip(a)) : dash()),
        h('td', null, statusBadge(v.status)),
        h('td', null, runLink(v.run_id)),
        h('td', null, timeCell(v.creation_timestamp)),
        versions.some((x) => x.model_id) ? h('td', null, v.model_id ? h('code', null, v.model_id) : '—') : null)))))
      : h('p', { class: 'muted' }, 'No versions yet. Register one with mlflow.register_model("runs:/<run_id>/model", "' + name + '").'));

  clear(ctx.main,
    breadcrumbs(['Models', '/models'], [name]),
    h('div', { class: 'page-head' }, h('h1', null, name),
      h('div', { class: 'actions' },
        may('RenameRegisteredModel') ? h('button', { type: 'button', class: 'btn', id: 'model-rename', onclick: rename }, 'Rename') : null,
        may('DeleteRegisteredModel') ? h('button', { type: 'button', class: 'btn btn-danger', id: 'model-delete', onclick: remove }, 'Delete') : null)),
    h('div', { class: 'grid-2 grid-shrink' }, details, descriptionPanel(model.description, may('UpdateRegisteredModel') ? editDescription : null)),
    versionsPanel,
    tagsPanel(model.tags, {
      onSet: may('SetRegisteredModelTag') ? async (key, value, msg) => { if (await action(() => api.post('registered-models/set-tag', { name, key, value }), msg) !== undefined) reload(); } : null,
      onDelete: may('DeleteRegisteredModelTag') ? async (key) => { if (await action(() => api.del('registered-models/delete-tag', { name, key }), 'Tag deleted') !== undefined) reload(); } : null,
    }));
}

async function loadVersions(name, signal) {
  const out = [];
  let token;
  for (let i = 0; i < 20; i++) { // at most 20 pages of 200 versions
    const r = await api.get('model-versions/search', { filter: `name=${quote(name)}`, order_by: ['version_number DESC'], max_results: 200, page_token: token }, { signal });
    out.push(...(r.model_versions || []).filter((v) => v.name === name));
    token = r.next_page_token;
    if (!token) break;
  }
  return out;
}

function statusBadge(status) {
  const s = status || 'READY';
  const cls = s === 'READY' ? 'status-FINISHED' : s === 'FAILED_REGISTRATION' ? 'status-FAILED' : 'status-RUNNING';
  return h('span', { class: `badge ${cls}` }, s.replace(/_/g, ' ').toLowerCase());
}

// ---------------------------------------------------------------- /models/:name/versions/:version

async function renderVersion(ctx) {
  const { name, version } = ctx.params;
  let mv, perms;
  try {
    [mv, perms] = await Promise.all([
      api.get('model-versions/get', { name, version }, { signal: ctx.signal }).then((r) => r.model_version),
      permissionsFor({ models: [name] }, ctx.signal),
    ]);
    await resolveRuns([mv.run_id], ctx.signal);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    clear(ctx.main, breadcrumbs(['Models', '/models'], [name, modelHref(name)], [`Version ${version}`]),
      h('h1', null, `${name} version ${version}`), errorBox(err));
    return;
  }
  document.title = `${name} v${version} · Models`;
  const reload = () => ctx.refresh();
  const key = { name, version: String(version) };
  const may = perms.model(name);

  const transition = async () => {
    const v = await transitionDialog(mv);
    if (!v) return;
    const r = await action(() => api.post('model-versions/transition-stage', { ...key, stage: v.stage, archive_existing_versions: v.archive }),
      `Version ${version} moved to ${v.stage}`);
    if (r !== undefined) reload();
  };
  const remove = async () => {
    if (!await confirm(`Delete version ${version}?`, `Version ${version} of “${name}” is deleted. It cannot be undone.`)) return;
    const r = await action(() => api.del('model-versions/delete', key), 'Version deleted');
    if (r !== undefined) navigate(modelHref(name));
  };
  const editDescription = async () => {
    const v = await dialog({ title: 'Edit description', fields: [{ name: 'text', label: 'Description (plain text)', type: 'textarea', value: mv.description || '' }] });
    if (!v) return;
    const r = await action(() => api.patch('model-versions/update', { ...key, description: v.text }), 'Description saved');
    if (r !== undefined) reload();
  };

  const rows = [];
  const add = (label, value) => rows.push(h('dt', null, label), h('dd', null, value));
  add('Version', String(mv.version));
  add('Stage', stageBadge(mv.current_stage));
  add('Status', [statusBadge(mv.status), mv.status_message ? h('span', { class: 'muted' }, ' ' + mv.status_message) : null]);
  add('Aliases', (mv.aliases || []).length ? mv.aliases.map((a) => aliasChip(a)) : h('span', { class: 'muted' }, 'none'));
  add('Source', h('code', { class: 'wrap-code' }, mv.source || '—'));
  add('Source run', mv.run_id ? [runLink(mv.run_id), ' ', h('code', { class: 'muted small' }, mv.run_id)] : dash());
  if (mv.model_id) add('Model ID', h('code', null, mv.model_id));
  if (mv.user_id) add('Registered by', mv.user_id);
  add('Created', fmtTime(mv.creation_timestamp));
  add('Last modified', fmtTime(mv.last_updated_timestamp));

  clear(ctx.main,
    breadcrumbs(['Models', '/models'], [name, modelHref(name)], [`Version ${version}`]),
    h('div', { class: 'page-head' },
      h('h1', null, name, ' ', h('span', { class: 'muted' }, `version ${version}`)),
      stageBadge(mv.current_stage),
      h('div', { class: 'actions' },
        may('TransitionModelVersionStage') ? h('button', { type: 'button', class: 'btn btn-primary', id: 'transition-stage', onclick: transition }, 'Transition stage') : null,
        may('DeleteModelVersion') ? h('button', { type: 'button', class: 'btn btn-danger', id: 'version-delete', onclick: remove }, 'Delete version') : null)),
    h('div', { class: 'grid-2 grid-shrink' },
      h('section', { class: 'panel', 'aria-labelledby': 'mv-details-h' }, h('h2', { id: 'mv-details-h' }, 'Details'), h('dl', { class: 'kv' }, rows)),
      descriptionPanel(mv.description, may('UpdateModelVersion') ? editDescription : null)),
    tagsPanel(mv.tags, {
      onSet: may('SetModelVersionTag') ? async (k, value, msg) => { if (await action(() => api.post('model-versions/set-tag', { ...key, key: k, value }), msg) !== undefined) reload(); } : null,
      onDelete: may('DeleteModelVersionTag') ? async (k) => { if (await action(() => api.del('model-versions/delete-tag', { ...key, key: k }), 'Tag deleted') !== undefined) reload(); } : null,
    }));
}

/** transitionDialog asks for a target stage and whether to archive the others. */
function transitionDialog(mv) {
  return new Promise((resolve) => {
    const current = mv.current_stage || 'None';
    const select = h('select', { id: 'stage-select', name: 'stage' },
      STAGES.map((s) => h('option', { value: s, selected: s === (current === 'None' ? 'Staging' : current) }, s === current ? `${s} (current)` : s)));
    const archive = h('input', { type: 'checkbox', id: 'stage-archive', name: 'archive' });
    const archiveRow = h('div', { class: 'field check-field' },
      h('label', { for: 'stage-archive', class: 'check' }, archive, ' Archive the other versions now in this stage'));
    const sync = () => {
      const on = select.value === 'Staging' || select.value === 'Production';
      archive.disabled = !on;
      if (!on) archive.checked = false;
      archiveRow.classList.toggle('muted', !on);
    };
    select.addEventListener('change', sync);
    sync();
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const ok = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Transition');
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', null, `Transition version ${mv.version}`),
      h('p', null, 'Current stage: ', stageBadge(current)),
      h('div', { class: 'field' }, h('label', { for: 'stage-select' }, 'New stage'), select),
      archiveRow,
      h('div', { class: 'dialog-actions' }, cancel, ok));
    const dlg = h('dialog', { class: 'modal', 'aria-label': 'Transition stage' }, form);
    document.body.appendChild(dlg);
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    cancel.addEventListener('click', () => done(null));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(null); });
    form.addEventListener('submit', (e) => { e.preventDefault(); done({ stage: select.value, archive: archive.checked }); });
    dlg.showModal();
    select.focus();
  });
}
