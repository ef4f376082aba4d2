// prompts.js: MLflow 3's prompt registry. Prompts are registered models
// tagged mlflow.prompt.is_prompt = 'true' whose versions carry the template
// in mlflow.prompt.text (mlflow/prompt/constants.py). /prompts lists them,
// /prompts/<name> shows a version's template, its variables, a line diff
// between two versions, aliases, tags and the runs and traces linked to it.
import {
  route, h, clear, api, setQuery, errorBox, breadcrumbs, runHref, tokenPager, tagsOf, trunc, timeCell,
} from '../lib.js';
import { quote, dash, userTags, aliasChip, tagChips, nameCell, listCells, nameSearch } from './registry-common.js';
import { traceHref } from './experiment-tabs.js';
import { parseJSON, contentText } from './trace-common.js';
import { lineDiff } from './prompts-diff.js';

const PAGE_SIZE = 25;
const V3 = '/ajax-api/3.0/mlflow/';

// MLflow's tag keys (mlflow/prompt/constants.py, mlflow/tracing/constant.py).
const IS_PROMPT = 'mlflow.prompt.is_prompt';
const TEXT = 'mlflow.prompt.text';
const TYPE = '_mlflow_prompt_type';
const RESPONSE_FORMAT = '_mlflow_prompt_response_format';
const MODEL_CONFIG = '_mlflow_prompt_model_config';
const EXPERIMENT_IDS = '_mlflow_experiment_ids';
const LINKED_PROMPTS = 'mlflow.linkedPrompts';
const PROMPT_FILTER = `tags.\`${IS_PROMPT}\` = 'true'`;

// MLflow's PROMPT_TEMPLATE_VARIABLE_PATTERN: {{ name }} or {{ a.b }}.
const VARIABLE = /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}/g;

route('/prompts', 'prompts', renderPrompts);
route('/prompts/:name', 'prompt', renderPrompt, { nav: 'prompts' });

/** promptHref is the page of a prompt, at a version when one is given. */
export function promptHref(name, version) {
  const base = `/prompts/${encodeURIComponent(name)}`;
  return version === undefined || version === null ? base : `${base}?version=${encodeURIComponent(version)}`;
}

// ---------------------------------------------------------------- template

/**
 * templateOf reads a version's template: {chat: [{role, content}]} for chat
 * prompts (the text tag holds the messages as JSON), else {text}.
 */
export function templateOf(tags) {
  const raw = tags[TEXT] ?? '';
  if (tags[TYPE] === 'chat' || (tags[TYPE] === undefined && raw.trimStart().startsWith('['))) {
    const v = parseJSON(raw);
    if (Array.isArray(v) && v.every((m) => m && typeof m === 'object' && typeof m.role === 'string')) return { chat: v };
  }
  return { text: raw };
}

/** templateLines is the template as lines of text, the unit of the diff. */
function templateLines(tpl) {
  if (tpl.text !== undefined) return tpl.text.split('\n');
  const out = [];
  for (const m of tpl.chat) {
    out.push(`[${m.role}]`);
    out.push(...contentText(m.content).split('\n'));
  }
  return out;
}

/** variablesOf lists the template's {{variables}} in order of first use. */
function variablesOf(lines) {
  const seen = new Set();
  for (const l of lines) for (const m of l.matchAll(VARIABLE)) seen.add(m[1]);
  return [...seen];
}

/** highlighted is text with each {{variable}} in a span of its own (text nodes only, never HTML). */
function highlighted(text) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(VARIABLE)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push(h('span', { class: 'prompt-var', title: `variable ${m[1]}` }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function templateView(tpl) {
  if (tpl.text !== undefined) {
    return tpl.text ? h('pre', { class: 'prompt-text', id: 'prompt-template' }, highlighted(tpl.text)) : h('p', { class: 'muted' }, 'This version has no template text.');
  }
  return h('ol', { class: 'chat', id: 'prompt-template' }, tpl.chat.map((m) => h('li', { class: `chat-msg chat-${String(m.role).replace(/[^a-z_]/gi, '')}` },
    h('div', { class: 'chat-role' }, m.role),
    h('div', { class: 'chat-content' }, highlighted(contentText(m.content))))));
}

function jsonBlock(label, raw) {
  const v = parseJSON(raw, raw);
  return h('div', { class: 'prompt-extra' }, h('h3', null, label), h('pre', { class: 'prompt-json' }, typeof v === 'string' ? v : JSON.stringify(v, null, 2)));
}

// ---------------------------------------------------------------- /prompts

async function renderPrompts(ctx) {
  const state = { q: ctx.query.get('q') || '' };
  document.title = 'Prompts';
  const tableBox = h('div', { class: 'prompts-table' });
  const pager = tokenPager({
    id: 'prompts', noun: 'prompt', size: PAGE_SIZE, box: tableBox,
    fetch: (token) => api.get('registered-models/search', {
      filter: state.q ? `${PROMPT_FILTER} AND name ILIKE ${quote('%' + state.q + '%')}` : PROMPT_FILTER,
      max_results: PAGE_SIZE, order_by: ['name ASC'], page_token: token || undefined,
    }, { signal: ctx.signal }),
    rows: (res) => res.registered_models || [],
    draw: (prompts) => drawTable(prompts),
  });
  const search = nameSearch({ id: 'prompt-search', label: 'Search prompts by name', state, pager });
  clear(ctx.main, h('div', { class: 'page-head' }, h('h1', null, 'Prompts')), h('div', { class: 'toolbar' }, search), tableBox, pager.el);

  const drawTable = (prompts) => {
    if (!prompts.length) {
      clear(tableBox, h('div', { class: 'panel empty' },
        state.q ? ['No prompt name contains “', state.q, '”.'] : [h('p', null, h('strong', null, 'No prompts yet.')),
          h('p', { class: 'muted' }, 'Register one with mlflow.genai.register_prompt().')]));
      return;
    }
    clear(tableBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'prompts-table' },
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Latest version'), h('th', { scope: 'col' }, 'Aliases'),
        h('th', { scope: 'col' }, 'Tags'), h('th', { scope: 'col' }, 'Last modified'))),
      h('tbody', null, prompts.map((m) => {
        const latest = (m.latest_versions || []).reduce((a, v) => (!a || Number(v.version) > Number(a.version) ? v : a), null);
        return h('tr', { dataset: { name: m.name } },
          nameCell(m, promptHref(m.name), 'prompt-link'),
          h('td', { 'data-label': 'Latest version' }, latest ? h('a', { href: promptHref(m.name, latest.version), class: 'chip version-chip' }, `v${latest.version}`) : dash()),
          listCells(m));
      })))));
  };

  await pager.load(0);
}

// ---------------------------------------------------------------- /prompts/:name

// At most this many versions are read (pages of 200, MLflow's largest for
// prompt versions is larger, but a prompt with more is not looked at by hand).
const MAX_VERSIONS = 1000;

async function loadVersions(name, signal) {
  const out = [];
  let token;
  do {
    const r = await api.get('model-versions/search', {
      filter: `name = ${quote(name)} AND tags.\`${IS_PROMPT}\` = 'true'`, max_results: 200, order_by: ['version_number DESC'], page_token: token,
    }, { signal });
    out.push(...(r.model_versions || []));
    token = r.next_page_token;
  } while (token && out.length < MAX_VERSIONS);
  return out;
}

/** linkedTo reports whether a mlflow.linkedPrompts tag value names the version. */
function linkedTo(raw, name, version) {
  const v = parseJSON(raw);
  return Array.isArray(v) && v.some((x) => x && x.name === name && String(x.version) === String(version));
}

/**
 * loadLinks finds the runs and traces whose mlflow.linkedPrompts tag names
 * the prompt, in the experiments the prompt was used in (its
 * _mlflow_experiment_ids tag, ",1,2,"). Failures leave the lists empty.
 */
async function loadLinks(name, promptTags, signal) {
  const expIds = (promptTags[EXPERIMENT_IDS] || '').split(',').map((s) => s.trim()).filter(Boolean).slice(0, 50);
  if (!expIds.length) return { runs: [], traces: [] };
  const like = quote(`%"name": "${name}"%`);
  const runs = api.post('runs/search', { experiment_ids: expIds, filter: `tags.\`${LINKED_PROMPTS}\` LIKE ${like}`, max_results: 200 }, { signal })
    .then((r) => r.runs || []).catch((err) => { if (err.name === 'AbortError') throw err; return []; });
  const traces = api.post(V3 + 'traces/search', {
    locations: expIds.map((id) => ({ type: 'MLFLOW_EXPERIMENT', mlflow_experiment: { experiment_id: id } })),
    filter: `tags.\`${LINKED_PROMPTS}\` LIKE ${like}`, max_results: 100,
  }, { signal }).then((r) => r.traces || []).catch((err) => { if (err.name === 'AbortError') throw err; return []; });
  return { runs: await runs, traces: await traces };
}

async function renderPrompt(ctx) {
  const name = ctx.params.name;
  let prompt, versions;
  try {
    [prompt, versions] = await Promise.all([
      api.get('registered-models/get', { name }, { signal: ctx.signal }).then((r) => r.registered_model),
      loadVersions(name, ctx.signal),
    ]);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    clear(ctx.main, breadcrumbs(['Prompts', '/prompts'], [name]), h('h1', null, name), errorBox(err));
    return;
  }
  const promptTags = tagsOf(prompt.tags);
  if (promptTags[IS_PROMPT] !== 'true') {
    clear(ctx.main, breadcrumbs(['Prompts', '/prompts'], [name]), h('h1', null, name),
      h('div', { class: 'panel empty' }, h('p', null, 'This is a registered model, not a prompt. '), h('a', { href: `/models/${encodeURIComponent(name)}` }, 'Open the model')));
    return;
  }
  document.title = `${name} · Prompts`;
  const aliasesOf = new Map();
  for (const a of prompt.aliases || []) {
    if (!aliasesOf.has(a.version)) aliasesOf.set(a.version, []);
    aliasesOf.get(a.version).push(a.alias);
  }
  const byVersion = new Map(versions.map((v) => [String(v.version), v]));
  const wanted = ctx.query.get('version');
  const selected = (wanted && byVersion.get(wanted)) || versions[0];

  const head = [
    breadcrumbs(['Prompts', '/prompts'], [name]),
    h('div', { class: 'page-head' }, h('h1', null, name, h('span', { class: 'muted small' }, ` · ${versions.length} version${versions.length === 1 ? '' : 's'}`))),
    prompt.description ? h('p', { class: 'note-text' }, prompt.description) : null,
  ];
  if (!selected) {
    clear(ctx.main, head, h('div', { class: 'panel empty' }, h('p', null, 'This prompt has no versions yet.')), metaPanels(prompt, null));
    return;
  }

  const versionsTable = h('section', { class: 'panel', 'aria-labelledby': 'versions-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'versions-h' }, 'Versions')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'prompt-versions' },
      h('thead', null, h('tr', null, ['Version', 'Commit message', 'Created', 'Aliases', 'Tags'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, versions.map((v) => h('tr', { dataset: { version: v.version }, class: v === selected ? 'selected' : null, 'aria-current': v === selected ? 'true' : null },
        h('td', null, h('a', { href: promptHref(name, v.version), class: 'version-link' }, `v${v.version}`)),
        h('td', { class: 'wrap', 'data-label': 'Commit message' }, v.description ? trunc(v.description, 120) : dash()),
        h('td', { 'data-label': 'Created' }, timeCell(v.creation_timestamp)),
        h('td', { class: 'wrap', 'data-label': 'Aliases' }, h('div', { class: 'cell-chips' },
          (aliasesOf.get(String(v.version)) || []).length ? aliasesOf.get(String(v.version)).map((a) => aliasChip(a)) : dash())),
        h('td', { class: 'wrap', 'data-label': 'Tags' }, h('div', { class: 'cell-chips' }, tagChips(v.tags)))))))));

  const vt = tagsOf(selected.tags);
  const tpl = templateOf(vt);
  const lines = templateLines(tpl);
  const vars = variablesOf(lines);
  const templatePanel = h('section', { class: 'panel', 'aria-labelledby': 'template-h', id: 'template-panel' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'template-h' }, `Template · v${selected.version}`),
      h('span', { class: 'badge' }, tpl.chat ? 'chat' : 'text')),
    selected.description ? h('p', { class: 'muted' }, selected.description) : null,
    templateView(tpl),
    h('div', { class: 'prompt-vars', id: 'prompt-vars' }, h('span', { class: 'muted small' }, 'Variables: '),
      vars.length ? vars.map((v) => h('code', { class: 'prompt-var' }, v)) : h('span', { class: 'muted small' }, 'none')),
    vt[RESPONSE_FORMAT] ? jsonBlock('Response format', vt[RESPONSE_FORMAT]) : null,
    vt[MODEL_CONFIG] ? jsonBlock('Model config', vt[MODEL_CONFIG]) : null);

  const diffPanel = versions.length > 1 ? diffSection(ctx, name, versions, selected, byVersion) : null;
  const linksBox = h('section', { class: 'panel', 'aria-labelledby': 'links-h', id: 'prompt-links' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'links-h' }, `Used by v${selected.version}`)),
    h('p', { class: 'muted small' }, 'Loading…'));

  clear(ctx.main, head, h('div', { class: 'prompt-layout' }, versionsTable, templatePanel), diffPanel, metaPanels(prompt, selected), linksBox);

  const links = await loadLinks(name, promptTags, ctx.signal);
  const runs = links.runs.filter((r) => linkedTo(tagsOf(r.data && r.data.tags)[LINKED_PROMPTS], name, selected.version));
  const traces = links.traces.filter((t) => linkedTo((t.tags || {})[LINKED_PROMPTS], name, selected.version));
  clear(linksBox, h('div', { class: 'panel-head' }, h('h2', { id: 'links-h' }, `Used by v${selected.version}`)),
    !runs.length && !traces.length ? h('p', { class: 'muted' }, 'No run or trace is linked to this version.') : null,
    runs.length ? h('div', null, h('h3', null, 'Runs'), h('ul', { class: 'link-list', id: 'linked-runs' },
      runs.map((r) => h('li', null, h('a', { href: runHref(r.info.experiment_id, r.info.run_id) }, r.info.run_name || r.info.run_id))))) : null,
    traces.length ? h('div', null, h('h3', null, 'Traces'), h('ul', { class: 'link-list', id: 'linked-traces' },
      traces.map((t) => {
        const exp = t.trace_location && t.trace_location.mlflow_experiment && t.trace_location.mlflow_experiment.experiment_id;
        return h('li', null, exp ? h('a', { href: traceHref(exp, t.trace_id) }, t.trace_id) : h('code', null, t.trace_id));
      }))) : null);
}

/** metaPanels shows the prompt's aliases and tags, and the selected version's tags. */
function metaPanels(prompt, selected) {
  const tagTable = (id, list) => {
    const tags = userTags(list);
    if (!tags.length) return h('p', { class: 'muted' }, 'No tags.');
    return h('table', { class: 'data tags-table', id },
      h('tbody', null, tags.map((t) => h('tr', { dataset: { key: t.key } }, h('td', { class: 'mono' }, t.key), h('td', { class: 'wrap' }, t.value)))));
  };
  return h('div', { class: 'prompt-meta' },
    h('section', { class: 'panel', 'aria-labelledby': 'aliases-h' }, h('h2', { id: 'aliases-h' }, 'Aliases'),
      (prompt.aliases || []).length ? h('div', { class: 'cell-chips', id: 'prompt-aliases' },
        prompt.aliases.map((a) => h('a', { href: promptHref(prompt.name, a.version) }, aliasChip(a.alias, a.version)))) : h('p', { class: 'muted' }, 'No aliases.')),
    h('section', { class: 'panel', 'aria-labelledby': 'ptags-h' }, h('h2', { id: 'ptags-h' }, 'Prompt tags'), tagTable('prompt-tags', prompt.tags)),
    selected ? h('section', { class: 'panel', 'aria-labelledby': 'vtags-h' }, h('h2', { id: 'vtags-h' }, `Version ${selected.version} tags`), tagTable('version-tags', selected.tags)) : null);
}

// ---------------------------------------------------------------- diff

function diffSection(ctx, name, versions, selected, byVersion) {
  const idx = versions.indexOf(selected);
  const older = versions[idx + 1] || versions[idx - 1];
  const to = byVersion.get(ctx.query.get('to') || '') || selected;
  let from = byVersion.get(ctx.query.get('from') || '') || older;
  if (from === to && !ctx.query.get('from')) from = older;
  const options = (sel) => versions.map((v) => h('option', { value: v.version, selected: v === sel }, `v${v.version}`));
  const fromSel = h('select', { id: 'diff-from', 'aria-label': 'Compare from version' }, options(from));
  const toSel = h('select', { id: 'diff-to', 'aria-label': 'Compare to version' }, options(to));
  const out = h('div', { class: 'prompt-diff-out' });
  const draw = () => {
    const a = byVersion.get(fromSel.value);
    const b = byVersion.get(toSel.value);
    const d = lineDiff(templateLines(templateOf(tagsOf(a.tags))), templateLines(templateOf(tagsOf(b.tags))));
    const added = d.filter((x) => x.op === '+').length;
    const removed = d.filter((x) => x.op === '-').length;
    const sign = { '+': '+', '-': '−', '=': ' ' };
    const cls = { '+': 'pdiff-add', '-': 'pdiff-del', '=': 'pdiff-eq' };
    clear(out,
      h('p', { class: 'small', id: 'diff-summary' }, h('span', { class: 'pdiff-count-add' }, `+${added}`), ' ', h('span', { class: 'pdiff-count-del' }, `−${removed}`),
        h('span', { class: 'muted' }, added || removed ? ` lines, v${a.version} → v${b.version}` : ` — v${a.version} and v${b.version} have the same template`)),
      h('div', { class: 'pdiff', id: 'prompt-diff', role: 'table', 'aria-label': `Template diff v${a.version} to v${b.version}` },
        d.map((x) => h('div', { class: `pdiff-line ${cls[x.op]}`, role: 'row' },
          h('span', { class: 'pdiff-no', role: 'cell' }, x.a ?? ''), h('span', { class: 'pdiff-no', role: 'cell' }, x.b ?? ''),
          h('span', { class: 'pdiff-sign', role: 'cell', 'aria-label': x.op === '+' ? 'added' : x.op === '-' ? 'removed' : null }, sign[x.op]),
          h('span', { class: 'pdiff-text', role: 'cell' }, x.text)))));
  };
  const changed = () => {
    setQuery({ from: fromSel.value, to: toSel.value }, { render: false });
    draw();
  };
  fromSel.addEventListener('change', changed);
  toSel.addEventListener('change', changed);
  draw();
  return h('section', { class: 'panel', 'aria-labelledby': 'diff-h', id: 'diff-panel' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'diff-h' }, 'Compare versions'),
      h('div', { class: 'diff-pick' }, fromSel, h('span', { 'aria-hidden': 'true' }, ' → '), toSel)),
    out);
}
