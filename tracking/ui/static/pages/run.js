// run.js: the run page (overview, metric charts, artifact browser).
import {
  route, h, clear, api, navigate, setQuery, fmtTime, fmtRelative, fmtDuration, fmtNumber, fmtBytes,
  errorBox, toast, dialog, confirm, action, breadcrumbs, tagsOf, runHref, experimentHref, isUserTag, debounce,
  permissionsFor,
} from '../lib.js';
import { metricCharts, chartSettings } from '../chart.js';
import { imageGrid } from './run-images.js';
import { loggedModelHref } from './experiment-tabs.js';

const TABS = [
  ['overview', 'Overview'],
  ['charts', 'Metric charts'],
  ['images', 'Images'],
  ['artifacts', 'Artifacts'],
];
// The tag mlflow.log_image(key=...) sets on a run; the Images tab is
// offered when it is there (or asked for by ?tab=images).
const LOGGED_IMAGES_TAG = 'mlflow.loggedImages';

// Largest file fetched for a text or table preview (bytes).
const PREVIEW_LIMIT = 1024 * 1024;
// Largest image shown inline.
const IMAGE_LIMIT = 16 * 1024 * 1024;
// Rows shown in a CSV/TSV preview.
const CSV_ROWS = 500;
// How often the overview of a RUNNING run refreshes (ms).
const LIVE_INTERVAL = 10000;
// Rows drawn in the params and metrics tables (the filter finds the rest).
const ROW_LIMIT = 1000;
// How many metric keys the charts tab selects by default.
const DEFAULT_CHARTS = 6;

const TEXT_EXT = new Set(['txt', 'log', 'py', 'md', 'markdown', 'rst', 'yaml', 'yml', 'json', 'jsonl', 'ndjson', 'ipynb',
  'toml', 'ini', 'cfg', 'conf', 'properties', 'sh', 'bash', 'r', 'sql', 'js', 'ts', 'go', 'java', 'scala', 'c', 'h',
  'cc', 'cpp', 'hpp', 'rs', 'xml', 'html', 'htm', 'css', 'env', 'gitignore', 'dockerfile', 'mlmodel', 'pb_txt', 'pbtxt']);
const TEXT_NAMES = new Set(['MLmodel', 'requirements.txt', 'Dockerfile', 'LICENSE', 'README', 'Makefile', 'python_env.yaml', 'conda.yaml']);
const IMAGE_EXT = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico']);
const TABLE_EXT = new Set(['csv', 'tsv']);

route('/experiments/:id/runs/:runId', 'run', renderRun);

async function renderRun(ctx) {
  const { id, runId } = ctx.params;
  const [runRes, exp, perms] = await Promise.all([
    api.get('runs/get', { run_id: runId }, { signal: ctx.signal }).then((r) => ({ run: r.run }), (err) => ({ err })),
    api.get('experiments/get', { experiment_id: id }, { signal: ctx.signal }).then((r) => r.experiment, () => null),
    permissionsFor({ experiments: [id] }, ctx.signal),
  ]);
  if (runRes.err) {
    if (runRes.err.name === 'AbortError') throw runRes.err;
    clear(ctx.main,
      breadcrumbs(['Experiments', '/experiments'], [exp ? exp.name : `Experiment ${id}`, experimentHref(id)], [runId]),
      h('h1', null, 'Run not available'), errorBox(runRes.err));
    return;
  }
  const run = runRes.run;
  // A link that names the wrong experiment (e.g. from a model version whose
  // run moved, or a hand-written URL) goes to the run's real address.
  if (run.info.experiment_id && run.info.experiment_id !== id) {
    navigate(runHref(run.info.experiment_id, run.info.run_id) + location.search, { replace: true });
    return;
  }
  const page = new RunPage(ctx, run, exp, perms.experiment(id));
  // The first view waits for its data (the artifact tree's first level).
  await page.draw();
}

class RunPage {
  constructor(ctx, run, exp, may) {
    this.ctx = ctx;
    // may(route) tells whether the viewer may call the route on this
    // run's experiment; actions it may not take are not shown.
    this.may = may;
    this.run = run;
    this.exp = exp;
    const t = ctx.query.get('tab');
    this.tab = TABS.some(([k]) => k === t) ? t : 'overview';
    this.askedImages = t === 'images';
    this.showSystemTags = ctx.query.get('system_tags') === '1';
    this.paramFilter = '';
    this.metricFilter = '';
    this.tabPanel = h('div', { class: 'tab-panel', role: 'tabpanel', id: 'run-tabpanel', tabindex: '-1' });
    this.chartCleanup = null;
    ctx.onLeave(() => this.stopCharts());
    // While the run is RUNNING, the overview follows it (status, duration,
    // latest metrics) unless the user is busy with a control or a dialog.
    const timer = setInterval(() => this.poll(), LIVE_INTERVAL);
    ctx.onLeave(() => clearInterval(timer));
  }

  async poll() {
    if (this.info.status !== 'RUNNING' || this.tab !== 'overview' || document.hidden) return;
    const busy = () => document.querySelector('dialog[open]') || (document.activeElement && document.activeElement !== this.ctx.main && this.ctx.main.contains(document.activeElement));
    if (busy()) return;
    let r;
    try {
      r = await api.get('runs/get', { run_id: this.info.run_id }, { signal: this.ctx.signal });
    } catch {
      return; // keep what is shown; the next tick retries
    }
    if (busy() || this.tab !== 'overview') return;
    this.run = r.run;
    this.draw();
  }

  get info() { return this.run.info; }
  get tags() { return tagsOf(this.run.data && this.run.data.tags); }
  get runName() { return this.info.run_name || this.tags['mlflow.runName'] || this.info.run_id; }

  async reload() {
    try {
      const r = await api.get('runs/get', { run_id: this.info.run_id }, { signal: this.ctx.signal });
      this.run = r.run;
      this.draw();
    } catch (err) {
      if (err.name !== 'AbortError') toast(err.message, 'error');
    }
  }

  draw() {
    const info = this.info;
    const expName = this.exp ? this.exp.name : `Experiment ${info.experiment_id}`;
    const deleted = info.lifecycle_stage === 'deleted';
    document.title = `${this.runName} · Run`;
    const head = h('div', { class: 'page-head' },
      h('h1', { class: 'run-title' }, this.runName),
      h('span', { class: `badge status-${info.status}` }, statusLabel(info.status)),
      deleted ? h('span', { class: 'badge badge-deleted' }, 'Deleted') : null,
      h('div', { class: 'actions' },
        this.may('UpdateRun') ? h('button', { type: 'button', class: 'btn', id: 'run-rename', onclick: () => this.rename() }, 'Rename') : null,
        deleted
          ? (this.may('RestoreRun') ? h('button', { type: 'button', class: 'btn', id: 'run-restore', onclick: () => this.restore() }, 'Restore') : null)
          : (this.may('DeleteRun') ? h('button', { type: 'button', class: 'btn btn-danger', id: 'run-delete', onclick: () => this.remove() }, 'Delete') : null)));
    clear(this.ctx.main,
      breadcrumbs(['Experiments', '/experiments'], [expName, experimentHref(info.experiment_id)], [this.runName]),
      head,
      this.tabList(),
      this.tabPanel);
    return this.drawTab();
  }

  /** tabs are the run's tabs: Images only when it logged step images. */
  get tabs() {
    const images = this.askedImages || String(this.tags[LOGGED_IMAGES_TAG] || '').toLowerCase() === 'true';
    return TABS.filter(([k]) => k !== 'images' || images);
  }

  tabList() {
    const tabs = this.tabs;
    const buttons = tabs.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', id: `run-tab-${key}`, 'aria-selected': String(key === this.tab),
      'aria-controls': 'run-tabpanel', tabindex: key === this.tab ? '0' : '-1', dataset: { tab: key },
      onclick: () => this.selectTab(key),
    }, label));
    const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Run sections' }, buttons);
    list.addEventListener('keydown', (e) => {
      const i = tabs.findIndex(([k]) => k === this.tab);
      let j = -1;
      if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
      else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
      else if (e.key === 'Home') j = 0;
      else if (e.key === 'End') j = tabs.length - 1;
      if (j < 0) return;
      e.preventDefault();
      this.selectTab(tabs[j][0]);
      buttons[j].focus();
    });
    this.tabButtons = buttons;
    return list;
  }

  selectTab(key) {
    if (key === this.tab) return;
    this.tab = key;
    this.tabButtons.forEach((b) => {
      const on = b.dataset.tab === key;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
    });
    setQuery({ tab: key === 'overview' ? '' : key }, { render: false });
    this.drawTab();
  }

  drawTab() {
    this.stopCharts();
    this.tabPanel.setAttribute('aria-labelledby', `run-tab-${this.tab}`);
    if (this.tab === 'charts') clear(this.tabPanel, this.chartsTab());
    else if (this.tab === 'images') {
      const grid = imageGrid(this.ctx, this.info);
      clear(this.tabPanel, grid.element);
      return grid.ready;
    } else if (this.tab === 'artifacts') {
      const browser = new ArtifactBrowser(this.ctx, this.info);
      clear(this.tabPanel, browser.element());
      return browser.ready;
    } else clear(this.tabPanel, this.overview());
    return Promise.resolve();
  }

  // ------------------------------------------------------------ actions

  async rename() {
    const v = await dialog({
      title: 'Rename run', submit: 'Rename',
      fields: [{ name: 'name', label: 'Run name', value: this.runName, required: true }],
      validate: (x) => (x.name.trim() ? '' : 'Enter a name.'),
    });
    if (!v) return;
    const ok = await action(() => api.post('runs/update', { run_id: this.info.run_id, run_name: v.name.trim() }), 'Run renamed');
    if (ok !== undefined) this.reload();
  }

  async remove() {
    if (!await confirm('Delete run?', `“${this.runName}” moves to the deleted runs of its experiment. You can restore it later.`)) return;
    const ok = await action(() => api.post('runs/delete', { run_id: this.info.run_id }), 'Run deleted');
    if (ok !== undefined) this.reload();
  }

  async restore() {
    const ok = await action(() => api.post('runs/restore', { run_id: this.info.run_id }), 'Run restored');
    if (ok !== undefined) this.reload();
  }

  // ------------------------------------------------------------ overview

  overview() {
    return h('div', { class: 'run-overview' },
      h('div', { class: 'grid-2' }, this.detailsPanel(), this.descriptionPanel()),
      h('div', { class: 'grid-2 grid-top' }, this.paramsPanel(), this.metricsPanel()),
      this.tagsPanel(),
      this.datasetsPanel(),
      this.modelsPanel());
  }

  detailsPanel() {
    const info = this.info;
    const t = this.tags;
    const rows = [];
    const add = (label, value) => { if (value !== null && value !== undefined && value !== '') rows.push(h('dt', null, label), h('dd', null, value)); };
    add('Run ID', h('code', null, info.run_id));
    add('Status', h('span', { class: `badge status-${info.status}` }, statusLabel(info.status)));
    add('Started', info.start_time ? h('span', { title: fmtRelative(info.start_time) }, fmtTime(info.start_time)) : '—');
    add('Ended', info.end_time ? fmtTime(info.end_time) : (info.status === 'RUNNING' ? 'still running' : '—'));
    let dur = '—';
    if (info.start_time && info.end_time) dur = fmtDuration(info.end_time - info.start_time);
    else if (info.start_time && info.status === 'RUNNING') dur = `${fmtDuration(Date.now() - info.start_time)} so far`;
    add('Duration', dur);
    add('User', t['mlflow.user'] || info.user_id || '—');
    const src = t['mlflow.source.name'];
    const srcType = t['mlflow.source.type'];
    if (src || srcType) {
      add('Source', h('span', { class: 'source' },
        src ? h('code', { class: 'wrap-code' }, src) : null,
        srcType ? h('span', { class: 'badge' }, srcType.toLowerCase()) : null));
    }
    const commit = t['mlflow.source.git.commit'];
    if (commit) add('Git commit', h('code', { title: commit }, commit.slice(0, 10)));
    const branch = t['mlflow.source.git.branch'];
    if (branch) add('Git branch', h('code', null, branch));
    const repo = t['mlflow.source.git.repoURL'];
    if (repo) add('Git repository', h('code', { class: 'wrap-code' }, repo));
    add('Entry point', t['mlflow.project.entryPoint'] ? h('code', null, t['mlflow.project.entryPoint']) : null);
    const parent = t['mlflow.parentRunId'];
    if (parent) add('Parent run', h('a', { href: runHref(info.experiment_id, parent) }, h('code', null, parent)));
    add('Lifecycle', info.lifecycle_stage === 'deleted' ? h('span', { class: 'badge badge-deleted' }, 'deleted') : 'active');
    add('Artifact URI', h('code', { class: 'wrap-code' }, info.artifact_uri || '—'));
    return h('section', { class: 'panel', 'aria-labelledby': 'run-details-h' },
      h('h2', { id: 'run-details-h' }, 'Details'), h('dl', { class: 'kv' }, rows));
  }

  descriptionPanel() {
    const text = this.tags['mlflow.note.content'] || '';
    const body = text
      ? h('div', { class: 'note-text' }, text)
      : h('p', { class: 'muted' }, 'No description. Add one to tell your team what this run is about.');
    return h('section', { class: 'panel', 'aria-labelledby': 'run-desc-h' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'run-desc-h' }, 'Description'),
        this.may('SetTag') ? h('button', { type: 'button', class: 'btn btn-small', id: 'run-edit-description', onclick: () => this.editDescription() }, text ? 'Edit' : 'Add description') : null),
      body);
  }

  async editDescription() {
    const v = await dialog({
      title: 'Edit description', submit: 'Save',
      fields: [{ name: 'text', label: 'Description (plain text)', type: 'textarea', value: this.tags['mlflow.note.content'] || '' }],
    });
    if (!v) return;
    const ok = await action(() => api.post('runs/set-tag', { run_id: this.info.run_id, key: 'mlflow.note.content', value: v.text }), 'Description saved');
    if (ok !== undefined) this.reload();
  }

  paramsPanel() {
    const params = [...((this.run.data && this.run.data.params) || [])].sort((a, b) => a.key.localeCompare(b.key));
    const body = h('tbody');
    const count = h('span', { class: 'muted small' });
    const fill = () => {
      const f = this.paramFilter.toLowerCase();
      const shown = f ? params.filter((p) => p.key.toLowerCase().includes(f) || String(p.value).toLowerCase().includes(f)) : params;
      clear(body, shown.length
        ? shown.slice(0, ROW_LIMIT).map((p) => h('tr', null, h('td', { class: 'mono' }, p.key), h('td', { class: 'wrap mono' }, p.value)))
        : h('tr', null, h('td', { colspan: 2, class: 'empty' }, 'No parameter matches.')),
        shown.length > ROW_LIMIT ? moreRow(2, shown.length) : null);
      count.textContent = f ? `${shown.length} of ${params.length}` : `${params.length}`;
    };
    const head = h('div', { class: 'panel-head' }, h('h2', { id: 'run-params-h' }, 'Parameters ', count));
    if (!params.length) {
      count.textContent = '0';
      return h('section', { class: 'panel', 'aria-labelledby': 'run-params-h' }, head, h('p', { class: 'muted' }, 'No parameters logged.'));
    }
    let filter = null;
    if (params.length > 8) {
      filter = h('input', {
        type: 'search', class: 'panel-filter', placeholder: 'Filter parameters', 'aria-label': 'Filter parameters',
        value: this.paramFilter,
        oninput: debounce((e) => { this.paramFilter = e.target.value; fill(); }, 120),
      });
    }
    fill();
    return h('section', { class: 'panel', 'aria-labelledby': 'run-params-h' }, head, filter,
      h('div', { class: 'table-wrap table-scroll' }, h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))), body)));
  }

  metricsPanel() {
    const metrics = [...((this.run.data && this.run.data.metrics) || [])].sort((a, b) => a.key.localeCompare(b.key));
    const head = h('div', { class: 'panel-head' }, h('h2', { id: 'run-metrics-h' }, 'Metrics ', h('span', { class: 'muted small' }, String(metrics.length))));
    if (!metrics.length) return h('section', { class: 'panel', 'aria-labelledby': 'run-metrics-h' }, head, h('p', { class: 'muted' }, 'No metrics logged.'));
    const body = h('tbody');
    const row = (m) => h('tr', null,
      h('td', null, h('a', {
        href: location.pathname + '?tab=charts&metric=' + encodeURIComponent(m.key),
        title: `Chart the history of ${m.key}`,
      }, m.key)),
      h('td', { class: 'num' }, fmtNumber(m.value)),
      h('td', { class: 'num' }, String(m.step ?? 0)),
      h('td', { class: 'muted col-time' }, fmtTime(m.timestamp)));
    const fill = () => {
      const f = this.metricFilter.toLowerCase();
      const shown = f ? metrics.filter((m) => m.key.toLowerCase().includes(f)) : metrics;
      clear(body, shown.length ? shown.slice(0, ROW_LIMIT).map(row) : h('tr', null, h('td', { colspan: 4, class: 'empty' }, 'No metric matches.')),
        shown.length > ROW_LIMIT ? moreRow(4, shown.length) : null);
    };
    fill();
    const filter = metrics.length > 8 ? h('input', {
      type: 'search', class: 'panel-filter', placeholder: 'Filter metrics', 'aria-label': 'Filter metrics',
      value: this.metricFilter, oninput: debounce((e) => { this.metricFilter = e.target.value; fill(); }, 120),
    }) : null;
    return h('section', { class: 'panel', 'aria-labelledby': 'run-metrics-h' }, head, filter,
      h('div', { class: 'table-wrap table-scroll' }, h('table', { class: 'data' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col', class: 'num' }, 'Latest value'),
          h('th', { scope: 'col', class: 'num' }, 'Step'), h('th', { scope: 'col', class: 'col-time' }, 'Logged at'))),
        body)));
  }

  tagsPanel() {
    const all = [...((this.run.data && this.run.data.tags) || [])].sort((a, b) => a.key.localeCompare(b.key));
    const userTags = all.filter((t) => isUserTag(t.key));
    const shown = this.showSystemTags ? all : userTags;
    const hidden = all.length - userTags.length;
    const toggle = h('label', { class: 'check small' },
      h('input', {
        type: 'checkbox', checked: this.showSystemTags,
        onchange: (e) => {
          this.showSystemTags = e.target.checked;
          setQuery({ system_tags: this.showSystemTags ? '1' : '' }, { render: false });
          const next = this.tagsPanel();
          panel.replaceWith(next);
          next.querySelector('input[type=checkbox]').focus();
        },
      }), ` Show system tags (${hidden})`);
    const rows = shown.map((t) => {
      const system = !isUserTag(t.key);
      return h('tr', { dataset: { key: t.key } },
        h('td', { class: 'mono' }, t.key, system ? h('span', { class: 'badge badge-system' }, 'system') : null),
        h('td', { class: 'wrap' }, t.key === 'mlflow.note.content' ? h('span', { class: 'muted' }, '(the description)') : t.value),
        h('td', { class: 'row-actions' },
          this.may('SetTag') ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Edit tag ${t.key}`, onclick: () => this.editTag(t) }, 'Edit') : null,
          this.may('DeleteTag') ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Delete tag ${t.key}`, onclick: () => this.deleteTag(t) }, 'Delete') : null));
    });
    const panel = h('section', { class: 'panel run-tags', 'aria-labelledby': 'run-tags-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'run-tags-h' }, 'Tags ', h('span', { class: 'muted small' }, String(userTags.length))),
        toggle,
        this.may('SetTag') ? h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'run-add-tag', onclick: () => this.addTag() }, 'Add tag') : null),
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
          h('tbody', null, rows)))
        : h('p', { class: 'muted' }, 'No tags yet.'));
    return panel;
  }

  async addTag() {
    const v = await dialog({
      title: 'Add tag', submit: 'Add',
      fields: [{ name: 'key', label: 'Key', required: true }, { name: 'value', label: 'Value', type: 'textarea' }],
      validate: (x) => (x.key.trim() ? '' : 'Enter a key.'),
    });
    if (!v) return;
    const ok = await action(() => api.post('runs/set-tag', { run_id: this.info.run_id, key: v.key.trim(), value: v.value }), 'Tag added');
    if (ok !== undefined) this.reload();
  }

  async editTag(t) {
    const v = await dialog({
      title: `Edit tag “${t.key}”`, submit: 'Save',
      fields: [{ name: 'value', label: 'Value', type: 'textarea', value: t.value }],
    });
    if (!v) return;
    const ok = await action(() => api.post('runs/set-tag', { run_id: this.info.run_id, key: t.key, value: v.value }), 'Tag saved');
    if (ok !== undefined) this.reload();
  }

  async deleteTag(t) {
    if (!await confirm('Delete tag?', `The tag “${t.key}” is removed from this run.`)) return;
    const ok = await action(() => api.post('runs/delete-tag', { run_id: this.info.run_id, key: t.key }), 'Tag deleted');
    if (ok !== undefined) this.reload();
  }

  datasetsPanel() {
    const inputs = (this.run.inputs && this.run.inputs.dataset_inputs) || [];
    if (!inputs.length) return null;
    const cards = inputs.map((inp) => {
      const d = inp.dataset || {};
      const ctxTag = tagsOf(inp.tags)['mlflow.data.context'];
      const details = [];
      if (d.source) details.push(collapsible('Source', prettyJSON(d.source)));
      if (d.schema) details.push(collapsible('Schema', prettyJSON(d.schema)));
      if (d.profile) details.push(collapsible('Profile', prettyJSON(d.profile)));
      return h('div', { class: 'dataset' },
        h('div', { class: 'dataset-head' },
          h('strong', null, d.name || '(unnamed)'),
          ctxTag ? h('span', { class: 'chip' }, ctxTag) : null,
          d.source_type ? h('span', { class: 'badge' }, d.source_type) : null,
          d.digest ? h('code', { class: 'muted', title: 'Digest' }, d.digest) : null),
        details);
    });
    return h('section', { class: 'panel', 'aria-labelledby': 'run-datasets-h' },
      h('h2', { id: 'run-datasets-h' }, 'Datasets ', h('span', { class: 'muted small' }, String(inputs.length))), cards);
  }

  modelsPanel() {
    const outs = (this.run.outputs && this.run.outputs.model_outputs) || [];
    const ins = (this.run.inputs && this.run.inputs.model_inputs) || [];
    if (!outs.length && !ins.length) return null;
    // The model's page moves to the model's own experiment when it differs.
    const modelLink = (mid) => h('a', { href: loggedModelHref(this.info.experiment_id, mid) }, h('code', null, mid));
    const rows = [
      ...outs.map((m) => h('tr', null, h('td', null, modelLink(m.model_id)), h('td', null, 'output'), h('td', { class: 'num' }, String(m.step ?? '')))),
      ...ins.map((m) => h('tr', null, h('td', null, modelLink(m.model_id)), h('td', null, 'input'), h('td', null, ''))),
    ];
    return h('section', { class: 'panel', 'aria-labelledby': 'run-models-h' },
      h('h2', { id: 'run-models-h' }, 'Logged models'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Model ID'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col', class: 'num' }, 'Step'))),
        h('tbody', null, rows))));
  }

  // ------------------------------------------------------------ charts

  stopCharts() {
    if (this.chartCleanup) { this.chartCleanup(); this.chartCleanup = null; }
  }

  chartsTab() {
    const keys = [...new Set(((this.run.data && this.run.data.metrics) || []).map((m) => m.key))].sort((a, b) => a.localeCompare(b));
    if (!keys.length) return h('div', { class: 'panel empty' }, 'This run has no metrics to chart.');
    let selected = this.ctx.query.getAll('metric').filter((k) => keys.includes(k));
    if (!selected.length && !this.chartKeys) selected = keys.slice(0, DEFAULT_CHARTS);
    else if (!selected.length) selected = this.chartKeys;
    this.chartKeys = selected;
    const area = h('div', { class: 'chart-area' });
    const boxes = keys.map((k) => h('label', { class: 'check metric-choice' },
      h('input', { type: 'checkbox', value: k, checked: selected.includes(k), onchange: () => update() }), ' ', k));
    const picker = h('fieldset', { class: 'metric-picker panel' },
      h('legend', null, 'Metrics to chart'),
      keys.length > 12 ? h('input', {
        type: 'search', class: 'panel-filter', placeholder: 'Filter metrics', 'aria-label': 'Filter metric keys',
        oninput: (e) => {
          const f = e.target.value.toLowerCase();
          boxes.forEach((b) => { b.hidden = f !== '' && !b.textContent.toLowerCase().includes(f); });
        },
      }) : null,
      h('div', { class: 'metric-choices' }, boxes),
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => { boxes.forEach((b) => { if (!b.hidden) b.firstChild.checked = true; }); update(); } }, 'Select all'),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => { boxes.forEach((b) => { b.firstChild.checked = false; }); update(); } }, 'Clear')));
    const draw = () => {
      this.stopCharts();
      if (!this.chartKeys.length) { clear(area, h('p', { class: 'empty' }, 'Choose one or more metrics to chart.')); return; }
      const leave = [];
      const ctl = new AbortController();
      const abortOuter = () => ctl.abort();
      this.ctx.signal.addEventListener('abort', abortOuter);
      this.chartCleanup = () => {
        ctl.abort();
        this.ctx.signal.removeEventListener('abort', abortOuter);
        for (const fn of leave) { try { fn(); } catch { /* ignore */ } }
      };
      const info = this.info;
      try {
        clear(area, metricCharts({
          runs: [{ run_id: info.run_id, run_name: this.runName, experiment_id: info.experiment_id, status: info.status }],
          keys: this.chartKeys,
          // One settings object for the page, so the x axis, scale and
          // smoothing survive a change of the chosen metrics.
          settings: this.chartSettings || (this.chartSettings = chartSettings()),
          onLeave: (fn) => leave.push(fn),
          signal: ctl.signal,
        }));
      } catch (err) {
        clear(area, errorBox(err));
      }
    };
    const update = () => {
      this.chartKeys = boxes.filter((b) => b.firstChild.checked).map((b) => b.firstChild.value);
      setQuery({ metric: this.chartKeys }, { render: false });
      draw();
    };
    draw();
    return h('div', { class: 'charts-layout' }, picker, area);
  }
}

// ---------------------------------------------------------------- artifacts

/**
 * runArtifacts is the artifact source of a run: list(path, signal) reads
 * one directory ({root_uri, files}); url(path) downloads a file.
 */
export function runArtifacts(runId) {
  return {
    noun: 'run',
    list: (path, signal) => api.get('artifacts/list', { run_id: runId, path: path || undefined }, { signal }),
    url: (path) => artifactURL(runId, path),
  };
}

/**
 * ArtifactBrowser is the tree of a run's (or another source's, see
 * runArtifacts) artifacts with a preview of the chosen file.
 */
export class ArtifactBrowser {
  constructor(ctx, info, source) {
    this.ctx = ctx;
    this.source = source || runArtifacts(info.run_id);
    this.selected = new URLSearchParams(location.search).get('artifact') || '';
    this.rootURI = info.artifact_uri || '';
    this.nodes = new Map(); // path -> {entry, li, button, childList, loaded, expanded}
    this.tree = h('ul', { class: 'artifact-tree', role: 'list', 'aria-label': 'Artifact files' });
    this.details = h('div', { class: 'artifact-details', 'aria-live': 'polite' });
    this.root = h('div', { class: 'artifact-browser' },
      h('nav', { class: 'artifact-tree-wrap panel', 'aria-label': 'Artifacts' }, this.tree),
      this.details);
    this.tree.addEventListener('keydown', (e) => this.onKey(e));
    this.ready = this.start();
  }

  element() { return this.root; }

  async start() {
    clear(this.tree, h('li', { class: 'muted' }, 'Loading…'));
    clear(this.details, h('div', { class: 'panel empty' }, 'Select a file to see its details and a preview.'));
    let files;
    try {
      files = await this.list('');
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(this.tree);
      clear(this.root, errorBox(err));
      return;
    }
    if (!files.length) {
      clear(this.root, h('div', { class: 'panel empty artifact-empty' },
        h('p', null, h('strong', null, `No artifacts recorded for this ${this.source.noun}.`)),
        h('p', { class: 'muted' }, 'Files logged with mlflow.log_artifact() or mlflow.log_artifacts() show up here.'),
        this.rootURI ? h('p', { class: 'muted small' }, 'Artifact location: ', h('code', { class: 'wrap-code' }, this.rootURI)) : null));
      return;
    }
    clear(this.tree, files.map((f) => this.item(f, 0)));
    if (this.selected) await this.reveal(this.selected);
  }

  async list(path) {
    const r = await this.source.list(path, this.ctx.signal);
    if (r.root_uri) this.rootURI = r.root_uri;
    const files = r.files || [];
    files.sort((a, b) => (a.is_dir === b.is_dir ? a.path.localeCompare(b.path) : a.is_dir ? -1 : 1));
    return files;
  }

  item(entry, depth) {
    const name = baseName(entry.path);
    const node = { entry, loaded: false, expanded: false, childList: null };
    const attrs = {
      type: 'button', class: 'tree-item' + (entry.is_dir ? ' tree-dir' : ' tree-file'),
      dataset: { path: entry.path }, title: entry.path,
    };
    if (entry.is_dir) attrs['aria-expanded'] = 'false';
    else attrs['aria-current'] = entry.path === this.selected ? 'true' : 'false';
    node.button = h('button', attrs,
      h('span', { class: 'tree-icon', 'aria-hidden': 'true' }, entry.is_dir ? '▸' : fileIcon(name)),
      h('span', { class: 'tree-name' }, name),
      !entry.is_dir && entry.file_size !== undefined ? h('span', { class: 'tree-size' }, fmtBytes(entry.file_size || 0)) : null);
    node.button.style.paddingLeft = `${8 + depth * 16}px`;
    node.depth = depth;
    node.button.addEventListener('click', () => (entry.is_dir ? this.toggle(node) : this.select(entry.path)));
    node.li = h('li', null, node.button);
    this.nodes.set(entry.path, node);
    return node.li;
  }

  async toggle(node, open) {
    const want = open === undefined ? !node.expanded : open;
    if (want === node.expanded && (!want || node.loaded)) return;
    if (!want) {
      node.expanded = false;
      node.button.setAttribute('aria-expanded', 'false');
      node.button.firstChild.textContent = '▸';
      if (node.childList) node.childList.hidden = true;
      return;
    }
    node.expanded = true;
    node.button.setAttribute('aria-expanded', 'true');
    node.button.firstChild.textContent = '▾';
    if (!node.loaded) {
      node.childList = h('ul', { role: 'list' }, h('li', { class: 'muted tree-loading' }, 'Loading…'));
      node.li.appendChild(node.childList);
      try {
        const files = await this.list(node.entry.path);
        clear(node.childList, files.length ? files.map((f) => this.item(f, node.depth + 1)) : h('li', { class: 'muted tree-loading' }, 'Empty folder'));
        node.loaded = true;
      } catch (err) {
        if (err.name === 'AbortError') return;
        clear(node.childList, h('li', null, errorBox(err)));
        return;
      }
    }
    node.childList.hidden = false;
  }

  // reveal expands the folders above path and selects it.
  async reveal(path) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const n = this.nodes.get(dir);
      if (!n) break;
      await this.toggle(n, true);
    }
    const n = this.nodes.get(path);
    if (n && n.entry.is_dir) { await this.toggle(n, true); return; }
    this.select(path, n ? n.entry : null);
  }

  select(path, entry) {
    this.selected = path;
    for (const [p, n] of this.nodes) if (!n.entry.is_dir) n.button.setAttribute('aria-current', p === path ? 'true' : 'false');
    setQuery({ artifact: path }, { render: false });
    const node = this.nodes.get(path);
    this.showFile(entry || (node ? node.entry : { path, is_dir: false }));
  }

  onKey(e) {
    const t = e.target.closest('button.tree-item');
    if (!t) return;
    const all = [...this.tree.querySelectorAll('button.tree-item')].filter((b) => b.offsetParent !== null);
    const i = all.indexOf(t);
    const node = this.nodes.get(t.dataset.path);
    let to = null;
    if (e.key === 'ArrowDown') to = all[i + 1];
    else if (e.key === 'ArrowUp') to = all[i - 1];
    else if (e.key === 'Home') to = all[0];
    else if (e.key === 'End') to = all[all.length - 1];
    else if (e.key === 'ArrowRight' && node && node.entry.is_dir) {
      if (!node.expanded) this.toggle(node, true); else to = all[i + 1];
    } else if (e.key === 'ArrowLeft' && node) {
      if (node.entry.is_dir && node.expanded) this.toggle(node, false);
      else {
        const parent = node.entry.path.includes('/') ? this.nodes.get(node.entry.path.slice(0, node.entry.path.lastIndexOf('/'))) : null;
        if (parent) to = parent.button;
      }
    } else return;
    e.preventDefault();
    if (to) to.focus();
  }

  async showFile(entry) {
    const path = entry.path;
    const name = baseName(path);
    const url = this.source.url(path);
    const size = entry.file_size;
    const preview = h('div', { class: 'artifact-preview' });
    clear(this.details, h('section', { class: 'panel', 'aria-labelledby': 'artifact-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'artifact-h', class: 'artifact-name' }, name),
        h('a', { class: 'btn btn-small btn-primary', href: url, download: name }, 'Download')),
      h('dl', { class: 'kv' },
        h('dt', null, 'Path'), h('dd', null, h('code', null, path)),
        h('dt', null, 'Size'), h('dd', null, size !== undefined ? `${fmtBytes(size || 0)}${size >= 1024 ? ` (${Number(size).toLocaleString()} bytes)` : ''}` : '—')),
      preview));
    const kind = previewKind(name);
    const tooLarge = (limit) => h('div', { class: 'empty' }, `This file is too large to preview (${fmtBytes(size)}). `,
      h('a', { href: url, download: name }, 'Download it'), ' to view it.');
    if (!kind) {
      clear(preview, h('div', { class: 'empty' }, 'No preview for this file type. ', h('a', { href: url, download: name }, 'Download'), ' it to open it.'));
      return;
    }
    if (kind === 'image') {
      if (size > IMAGE_LIMIT) { clear(preview, tooLarge(IMAGE_LIMIT)); return; }
      const img = h('img', { class: 'preview', src: url, alt: `Preview of ${name}` });
      img.addEventListener('error', () => clear(preview, h('div', { class: 'empty' }, 'This image could not be displayed.')));
      clear(preview, h('div', { class: 'image-preview' }, img));
      return;
    }
    if (size > PREVIEW_LIMIT) { clear(preview, tooLarge(PREVIEW_LIMIT)); return; }
    clear(preview, h('p', { class: 'muted' }, 'Loading preview…'));
    let text;
    try {
      const res = await fetch(url, { credentials: 'same-origin', headers: { 'X-Requested-With': 'mlflow-ui' }, signal: this.ctx.signal });
      if (!res.ok) throw new Error(`Could not load the file (HTTP ${res.status}).`);
      const len = Number(res.headers.get('Content-Length') || 0);
      if (len > PREVIEW_LIMIT) { res.body && res.body.cancel(); clear(preview, tooLarge(PREVIEW_LIMIT)); return; }
      text = await res.text();
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(preview, errorBox(err));
      return;
    }
    if (this.selected !== path) return; // the user moved on meanwhile
    if (kind === 'table') {
      clear(preview, csvTable(text, name.toLowerCase().endsWith('.tsv') ? '\t' : ','));
      return;
    }
    let shown = text;
    if (kind === 'json') shown = prettyJSON(text);
    clear(preview, h('pre', { class: 'preview', tabindex: '0', 'aria-label': `Contents of ${name}` }, shown));
  }
}

function moreRow(cols, total) {
  return h('tr', null, h('td', { colspan: cols, class: 'empty' },
    `Showing the first ${ROW_LIMIT.toLocaleString()} of ${total.toLocaleString()}; filter to find the rest.`));
}

function artifactURL(runId, path) {
  return `/get-artifact?run_uuid=${encodeURIComponent(runId)}&path=${encodeURIComponent(path)}`;
}

function baseName(p) {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

function extOf(name) {
  const i = name.lastIndexOf('.');
  return i <= 0 ? '' : name.slice(i + 1).toLowerCase();
}

function previewKind(name) {
  const ext = extOf(name);
  if (IMAGE_EXT.has(ext)) return 'image';
  if (TABLE_EXT.has(ext)) return 'table';
  if (ext === 'json' || ext === 'ipynb') return 'json';
  if (TEXT_NAMES.has(name) || TEXT_EXT.has(ext) || TEXT_EXT.has(name.toLowerCase())) return 'text';
  return '';
}

function fileIcon(name) {
  const k = previewKind(name);
  if (k === 'image') return '◩';
  if (k === 'table') return '▦';
  return '▤';
}

function prettyJSON(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function collapsible(label, text) {
  return h('details', { class: 'collapsible' }, h('summary', null, label), h('pre', { class: 'preview' }, text));
}

/**
 * parseDelimited splits CSV/TSV text into rows of fields: quoted fields may
 * hold delimiters, newlines and doubled quotes. Stops after max rows.
 */
export function parseDelimited(text, delim, max) {
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      field += c; i++; continue;
    }
    if (c === '"' && field === '') { quoted = true; i++; continue; }
    if (c === delim) { row.push(field); field = ''; i++; continue; }
    if (c === '\r' || c === '\n') {
      row.push(field); field = '';
      rows.push(row); row = [];
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      if (rows.length >= max) return { rows, more: i < n };
      continue;
    }
    field += c; i++;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return { rows, more: false };
}

function csvTable(text, delim) {
  const { rows, more } = parseDelimited(text, delim, CSV_ROWS + 1);
  if (!rows.length) return h('div', { class: 'empty' }, 'This file is empty.');
  const [header, ...body] = rows;
  const width = Math.max(...rows.map((r) => r.length));
  const cells = (r, tag) => Array.from({ length: width }, (_, i) => h(tag, tag === 'th' ? { scope: 'col' } : null, r[i] ?? ''));
  const note = more ? `Showing the first ${body.length} rows.` : `${body.length} row${body.length === 1 ? '' : 's'}, ${width} column${width === 1 ? '' : 's'}.`;
  return h('div', null,
    h('p', { class: 'muted small' }, note),
    h('div', { class: 'table-wrap csv-preview', tabindex: '0', role: 'region', 'aria-label': 'Table preview' },
      h('table', { class: 'data' },
        h('thead', null, h('tr', null, cells(header, 'th'))),
        h('tbody', null, body.map((r) => h('tr', null, cells(r, 'td')))))));
}

function statusLabel(s) {
  return s ? s.charAt(0) + s.slice(1).toLowerCase() : 'Unknown';
}
