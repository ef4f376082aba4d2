// trace.js: one trace. The span tree with a timeline (a waterfall bar per
// span), the chosen span's inputs and outputs (JSON trees, or chat
// messages when they look like chat), attributes, events and exceptions;
// the trace's latency, tokens, run, tags and assessments (view, add,
// edit, delete through MLflow 3's assessment routes).
//
// Spans come from GetTrace (GET /ajax-api/3.0/mlflow/traces/get) in
// OpenTelemetry's proto JSON. The tree is virtualised: only the rows in
// view are in the document, so a trace of thousands of spans draws as
// fast as a small one; large traces start with the root's children shown
// and their subtrees closed.
import {
  route, h, clear, api, navigate, setQuery, fmtTime, fmtDuration, errorBox, toast, dialog, confirm, action,
  breadcrumbs, runHref, experimentHref, permissionsFor, viewer,
} from '../lib.js';
import { tracesHref, loggedModelHref } from './experiment-tabs.js';
import {
  V3, parseDuration, tokenUsageOf, usageFrom, stateLabel, traceName, attributeValue, valueView, jsonView,
  assessmentValue, assessmentKind, assessmentValueText, parseJSON,
} from './trace-common.js';

// Height of one row of the span tree (px); the CSS uses the same.
const ROW_H = 30;
// Rows drawn above and below the visible ones.
const OVERSCAN = 12;
// Traces with at most this many spans start fully expanded.
const EXPAND_ALL_LIMIT = 200;
// Attributes shown in their own sections, not in the attribute table.
const SPAN_INPUTS = 'mlflow.spanInputs';
const SPAN_OUTPUTS = 'mlflow.spanOutputs';
const SPAN_TYPE = 'mlflow.spanType';
const SPAN_USAGE = 'mlflow.chat.tokenUsage';
const HIDDEN_ATTRS = new Set([SPAN_INPUTS, SPAN_OUTPUTS, 'mlflow.traceRequestId']);

route('/experiments/:id/traces/:traceId', 'trace', renderTrace, { nav: 'experiments' });

/** hexId turns a proto JSON id (base64 bytes) into the hex MLflow shows; other forms pass through. */
export function hexId(id) {
  if (!id) return '';
  if (/^[0-9a-f]{16}$|^[0-9a-f]{32}$/.test(id)) return id;
  try {
    const bin = atob(id);
    if (bin.length !== 8 && bin.length !== 16) return id;
    let out = '';
    for (let i = 0; i < bin.length; i++) out += bin.charCodeAt(i).toString(16).padStart(2, '0');
    return out;
  } catch {
    return id;
  }
}

/** statusCode is a span's status code by name; proto JSON may also give its number (0, 1, 2). */
function statusCode(s) {
  const c = s.status && s.status.code;
  if (c === 1 || c === '1') return 'STATUS_CODE_OK';
  if (c === 2 || c === '2') return 'STATUS_CODE_ERROR';
  return typeof c === 'string' && c.startsWith('STATUS_CODE_') ? c : 'STATUS_CODE_UNSET';
}

function nanos(s) {
  try { return BigInt(s || 0); } catch { return 0n; }
}

/**
 * nanosMs turns a nanosecond time (proto JSON's decimal string, or a
 * number) into milliseconds without BigInt, which costs too much for every
 * span of a large trace: the digits above and below the millisecond are
 * read apart, so the result stays within a microsecond. 0 when absent.
 */
export function nanosMs(s) {
  if (typeof s === 'number') return s > 0 ? s / 1e6 : 0;
  if (typeof s !== 'string' || !/^\d+$/.test(s)) return 0;
  if (s.length <= 6) return Number(s) / 1e6;
  return Number(s.slice(0, -6)) + Number(s.slice(-6)) / 1e6;
}

/**
 * buildSpans turns GetTrace's spans into tree nodes: {id, parent, name,
 * raw, start and end (ms from the trace's first span), depth, children},
 * children in start order. Spans whose parent is missing are roots.
 */
export function buildSpans(raw) {
  let base = Infinity;
  const starts = raw.map((s) => {
    const st = nanosMs(s.start_time_unix_nano);
    if (st > 0 && st < base) base = st;
    return st;
  });
  if (base === Infinity) base = 0;
  const byId = new Map();
  const nodes = raw.map((s, i) => {
    const st = starts[i], en = nanosMs(s.end_time_unix_nano);
    const start = st > 0 ? st - base : 0;
    const end = en > 0 ? en - base : start;
    let type = '';
    for (const a of s.attributes || []) {
      if (a.key === SPAN_TYPE) {
        // Read directly: this runs for every span of the trace.
        let v = a.value && (a.value.string_value ?? a.value.stringValue);
        if (typeof v === 'string' && v.startsWith('"')) v = parseJSON(v, v);
        type = typeof v === 'string' ? v : '';
        break;
      }
    }
    const n = {
      key: s.span_id || `#${i}`, id: s.span_id || '', parent: s.parent_span_id || '', name: s.name || '(unnamed span)',
      raw: s, start, end: Math.max(end, start), type, depth: 0, children: [], error: statusCode(s) === 'STATUS_CODE_ERROR',
    };
    if (n.id && !byId.has(n.id)) byId.set(n.id, n);
    return n;
  });
  const roots = [];
  for (const n of nodes) {
    const p = n.parent && n.parent !== n.id ? byId.get(n.parent) : null;
    if (p) p.children.push(n); else roots.push(n);
  }
  const byStart = (a, b) => a.start - b.start;
  roots.sort(byStart);
  // Depths, iteratively (a deep chain must not overflow the stack).
  const stack = roots.map((r) => [r, 0]);
  const seen = new Set();
  let total = 0;
  while (stack.length) {
    const [n, d] = stack.pop();
    if (seen.has(n)) continue;
    seen.add(n);
    n.depth = d;
    n.children.sort(byStart);
    total = Math.max(total, n.end);
    for (const c of n.children) stack.push([c, d + 1]);
  }
  return { nodes, roots, byKey: new Map(nodes.map((n) => [n.key, n])), total };
}

function attrsOf(span) {
  const out = {};
  for (const a of span.raw.attributes || []) out[a.key] = attributeValue(a.value);
  return out;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '—';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  return fmtDuration(Math.round(ms));
}

/** parseValueInput reads what a person typed as an assessment value: true/false, a number, JSON, else text. */
function parseValueInput(s) {
  const t = s.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (/^[[{]/.test(t)) { const v = parseJSON(t); if (v !== undefined) return v; }
  return s;
}

function valueInputText(v) {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

async function renderTrace(ctx) {
  const { id, traceId } = ctx.params;
  const [res, exp, perms] = await Promise.all([
    api.get(V3 + 'traces/get', { trace_id: traceId, allow_partial: 'true' }, { signal: ctx.signal }).then((r) => ({ trace: r.trace }), (err) => ({ err })),
    api.get('experiments/get', { experiment_id: id }, { signal: ctx.signal }).then((r) => r.experiment, () => null),
    permissionsFor({ experiments: [id] }, ctx.signal),
  ]);
  if (res.err) {
    if (res.err.name === 'AbortError') throw res.err;
    clear(ctx.main,
      breadcrumbs(['Experiments', '/experiments'], [exp ? exp.name : `Experiment ${id}`, experimentHref(id)], ['Traces', tracesHref(id)], [traceId]),
      h('h1', null, 'Trace not available'), errorBox(res.err),
      h('p', null, h('a', { href: tracesHref(id) }, 'Back to the traces')));
    return;
  }
  const info = res.trace.trace_info || {};
  const realExp = info.trace_location && info.trace_location.mlflow_experiment && info.trace_location.mlflow_experiment.experiment_id;
  if (realExp && realExp !== id) {
    navigate(tracesHref(realExp) + '/' + encodeURIComponent(traceId) + location.search, { replace: true });
    return;
  }
  const page = new TracePage(ctx, res.trace, exp, perms.experiment(id));
  page.draw();
}

class TracePage {
  constructor(ctx, trace, exp, may) {
    this.ctx = ctx;
    this.may = may;
    this.exp = exp;
    this.expId = ctx.params.id;
    this.info = trace.trace_info || {};
    this.rawSpans = trace.spans || [];
    this.tree = buildSpans(this.rawSpans);
    this.expanded = new Set();
    const all = this.tree.nodes.length <= EXPAND_ALL_LIMIT;
    for (const n of this.tree.nodes) if (n.children.length && (all || n.depth < 1)) this.expanded.add(n);
    const want = ctx.query.get('span');
    this.selected = (want && this.tree.nodes.find((n) => n.id === want || hexId(n.id) === want)) || this.tree.roots[0] || null;
    if (this.selected) this.reveal(this.selected);
    this.visible = [];
    this.rowEls = new Map();
    this.details = h('div', { class: 'span-details', id: 'span-details', 'aria-live': 'polite' });
  }

  get traceId() { return this.info.trace_id; }

  // ------------------------------------------------------------ layout

  draw() {
    const info = this.info;
    const name = traceName(info) || (this.tree.roots[0] && this.tree.roots[0].name) || info.trace_id;
    const expName = this.exp ? this.exp.name : `Experiment ${this.expId}`;
    document.title = `${name} · Trace`;
    const head = h('div', { class: 'page-head' },
      h('h1', { class: 'trace-title' }, name),
      h('span', { class: `badge trace-state state-${info.state}` }, stateLabel(info.state)),
      h('div', { class: 'actions' },
        this.may('DeleteTracesV3') ? h('button', { type: 'button', class: 'btn btn-danger', id: 'trace-delete', onclick: () => this.remove() }, 'Delete') : null));
    clear(this.ctx.main,
      breadcrumbs(['Experiments', '/experiments'], [expName, experimentHref(this.expId)], ['Traces', tracesHref(this.expId)], [info.trace_id]),
      head,
      this.summary(),
      this.spansSection(),
      h('div', { class: 'grid-2 grid-top trace-panels' }, this.assessmentsPanel(), this.tagsPanel()),
      this.metadataPanel());
    this.renderRows();
    this.showSpan(this.selected);
  }

  summary() {
    const info = this.info;
    const meta = info.trace_metadata || {};
    const usage = tokenUsageOf(meta);
    const ms = Date.parse(info.request_time);
    const lat = parseDuration(info.execution_duration);
    const run = meta['mlflow.sourceRun'];
    const model = meta['mlflow.modelId'];
    const item = (label, value, id) => h('div', { id }, h('dt', null, label), h('dd', null, value));
    return h('dl', { class: 'exp-meta trace-summary', id: 'trace-summary' },
      item('Trace ID', h('code', null, info.trace_id)),
      item('Request time', ms ? fmtTime(ms) : '—'),
      item('Latency', lat === null ? '—' : fmtMs(lat), 'trace-latency'),
      item('Spans', String(this.tree.nodes.length)),
      usage ? item('Tokens', `${usage.total ?? '—'} (in ${usage.input ?? '—'}, out ${usage.output ?? '—'})`, 'trace-tokens') : null,
      run ? item('Run', h('a', { href: runHref(this.expId, run), id: 'trace-run' }, h('code', null, run))) : null,
      model ? item('Logged model', h('a', { href: loggedModelHref(this.expId, model) }, h('code', null, model))) : null,
      meta['mlflow.trace.session'] ? item('Session', meta['mlflow.trace.session']) : null,
      meta['mlflow.trace.user'] ? item('User', meta['mlflow.trace.user']) : null,
      info.client_request_id ? item('Client request ID', h('code', null, info.client_request_id)) : null);
  }

  // ------------------------------------------------------------ span tree

  spansSection() {
    if (!this.tree.nodes.length) {
      const info = this.info;
      return h('section', { class: 'panel', id: 'trace-no-spans' },
        h('h2', null, 'Spans'),
        h('p', { class: 'muted' }, 'The span data of this trace is not stored (yet): the client may still be exporting it.'),
        info.request_preview ? h('div', null, h('h3', null, 'Request'), valueView(parseJSON(info.request_preview, info.request_preview), 'request')) : null,
        info.response_preview ? h('div', null, h('h3', null, 'Response'), valueView(parseJSON(info.response_preview, info.response_preview), 'response')) : null);
    }
    this.spacer = h('div', { class: 'span-spacer' });
    this.scroller = h('div', { class: 'span-tree', id: 'span-tree', role: 'tree', 'aria-label': 'Spans', tabindex: '-1' }, this.spacer);
    this.scroller.addEventListener('scroll', () => this.drawWindow(), { passive: true });
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    const total = this.tree.total;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { class: 'wf-tick', style: { left: `${f * 100}%` } }, fmtMs(total * f)));
    const count = h('span', { class: 'muted small', id: 'span-count' });
    this.countEl = count;
    const tools = h('div', { class: 'span-tools' },
      h('button', { type: 'button', class: 'btn btn-small', id: 'spans-expand-all', onclick: () => { for (const n of this.tree.nodes) if (n.children.length) this.expanded.add(n); this.renderRows(); } }, 'Expand all'),
      h('button', { type: 'button', class: 'btn btn-small', id: 'spans-collapse-all', onclick: () => { this.expanded.clear(); this.renderRows(); } }, 'Collapse all'),
      count);
    return h('div', { class: 'trace-layout' },
      h('section', { class: 'panel span-panel', 'aria-labelledby': 'spans-h' },
        h('div', { class: 'panel-head' }, h('h2', { id: 'spans-h' }, 'Spans'), tools),
        h('div', { class: 'wf-scale', 'aria-hidden': 'true' }, h('span', { class: 'wf-scale-label' }), h('span', { class: 'wf-scale-axis' }, ticks), h('span')),
        this.scroller),
      this.details);
  }

  reveal(node) {
    let p = node.parent ? this.tree.nodes.find((n) => n.id === node.parent) : null;
    const guard = new Set();
    while (p && !guard.has(p)) {
      guard.add(p);
      this.expanded.add(p);
      p = p.parent ? this.tree.nodes.find((n) => n.id === p.parent) : null;
    }
  }

  /** renderRows recomputes the visible rows (the open part of the tree) and draws the window. */
  renderRows() {
    if (!this.scroller) return;
    const out = [];
    const stack = [...this.tree.roots].reverse();
    const seen = new Set();
    while (stack.length) {
      const n = stack.pop();
      if (seen.has(n)) continue;
      seen.add(n);
      out.push(n);
      if (this.expanded.has(n)) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
    }
    this.visible = out;
    this.indexOf = new Map(out.map((n, i) => [n, i]));
    this.spacer.style.height = `${out.length * ROW_H}px`;
    // As tall as its rows, up to the CSS max-height (then it scrolls).
    this.scroller.style.height = `${Math.max(out.length, 2) * ROW_H + 2}px`;
    this.countEl.textContent = `${this.tree.nodes.length} span${this.tree.nodes.length === 1 ? '' : 's'}, ${out.length} shown`;
    for (const el of this.rowEls.values()) el.remove();
    this.rowEls.clear();
    this.drawWindow();
  }

  drawWindow() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const keep = new Set();
    for (let i = first; i < last; i++) {
      const n = this.visible[i];
      keep.add(n);
      if (!this.rowEls.has(n)) {
        const el = this.row(n, i);
        this.rowEls.set(n, el);
        this.scroller.appendChild(el);
      }
    }
    for (const [n, el] of this.rowEls) if (!keep.has(n)) { el.remove(); this.rowEls.delete(n); }
  }

  row(n, i) {
    const total = this.tree.total || 1;
    const left = (n.start / total) * 100;
    const width = Math.max(((n.end - n.start) / total) * 100, 0.3);
    const hasKids = n.children.length > 0;
    const open = this.expanded.has(n);
    const el = h('div', {
      class: 'span-row' + (n === this.selected ? ' is-selected' : '') + (n.error ? ' is-error' : ''),
      role: 'treeitem', 'aria-level': String(n.depth + 1), 'aria-selected': String(n === this.selected),
      'aria-expanded': hasKids ? String(open) : null, tabindex: n === this.selected ? '0' : '-1',
      dataset: { spanId: n.id, key: n.key }, style: { top: `${i * ROW_H}px` },
    },
    h('span', { class: 'span-label', style: { paddingLeft: `${4 + Math.min(n.depth, 30) * 14}px` } },
      hasKids ? h('button', { type: 'button', class: 'span-toggle', tabindex: '-1', 'aria-label': open ? `Collapse ${n.name}` : `Expand ${n.name}`,
        onclick: (e) => { e.stopPropagation(); this.toggle(n); } }, open ? '▾' : '▸') : h('span', { class: 'span-toggle-pad' }),
      n.type ? h('span', { class: `span-type type-${n.type.replace(/[^A-Z_]/gi, '')}` }, n.type) : null,
      h('span', { class: 'span-name', title: n.name }, n.name),
      hasKids && !open ? h('span', { class: 'muted small span-kids' }, `(${n.children.length})`) : null),
    h('span', { class: 'span-bar-cell' },
      h('span', { class: 'span-bar', style: { left: `${left}%`, width: `${width}%` } })),
    h('span', { class: 'span-dur' }, fmtMs(n.end - n.start)));
    el.addEventListener('click', () => this.select(n));
    return el;
  }

  toggle(n, want) {
    const open = want === undefined ? !this.expanded.has(n) : want;
    if (open === this.expanded.has(n)) return;
    if (open) this.expanded.add(n); else this.expanded.delete(n);
    this.renderRows();
    this.focusRow(n);
  }

  select(n) {
    if (!n) return;
    const prev = this.selected;
    this.selected = n;
    for (const m of [prev, n]) {
      const el = m && this.rowEls.get(m);
      if (!el) continue;
      el.classList.toggle('is-selected', m === n);
      el.setAttribute('aria-selected', String(m === n));
      el.tabIndex = m === n ? 0 : -1;
    }
    setQuery({ span: n.id ? hexId(n.id) : '' }, { render: false });
    this.showSpan(n);
  }

  focusRow(n) {
    const i = this.indexOf.get(n);
    if (i === undefined) return;
    const top = i * ROW_H;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + ROW_H > this.scroller.scrollTop + this.scroller.clientHeight) this.scroller.scrollTop = top + ROW_H - this.scroller.clientHeight;
    this.drawWindow();
    const el = this.rowEls.get(n);
    if (el) el.focus({ preventScroll: true });
  }

  onKey(e) {
    const n = this.selected;
    if (!n) return;
    const i = this.indexOf.get(n) ?? 0;
    let to = null;
    if (e.key === 'ArrowDown') to = this.visible[i + 1];
    else if (e.key === 'ArrowUp') to = this.visible[i - 1];
    else if (e.key === 'Home') to = this.visible[0];
    else if (e.key === 'End') to = this.visible[this.visible.length - 1];
    else if (e.key === 'ArrowRight' && n.children.length) {
      if (!this.expanded.has(n)) { e.preventDefault(); this.toggle(n, true); return; }
      to = n.children[0];
    } else if (e.key === 'ArrowLeft') {
      if (this.expanded.has(n)) { e.preventDefault(); this.toggle(n, false); return; }
      to = n.parent ? this.tree.nodes.find((m) => m.id === n.parent) : null;
    } else return;
    e.preventDefault();
    if (to) { this.select(to); this.focusRow(to); }
  }

  // ------------------------------------------------------------ span details

  showSpan(n) {
    if (!this.tree.nodes.length) { this.details.hidden = true; return; }
    if (!n) { clear(this.details, h('div', { class: 'panel empty' }, 'Select a span.')); return; }
    const attrs = attrsOf(n);
    const s = n.raw;
    const status = statusCode(s);
    const usage = usageFrom(attrs[SPAN_USAGE]);
    const events = s.events || [];
    const exceptions = events.filter((e) => e.name === 'exception');
    const others = events.filter((e) => e.name !== 'exception');
    const rest = Object.keys(attrs).filter((k) => !HIDDEN_ATTRS.has(k)).sort();
    const evTime = (e) => {
      const t = nanos(e.time_unix_nano);
      const st = nanos(s.start_time_unix_nano);
      return t > 0n && st > 0n ? `+${fmtMs(Number(t - st) / 1e6)}` : '';
    };
    const evAttrs = (e) => {
      const o = {};
      for (const a of e.attributes || []) o[a.key] = attributeValue(a.value);
      return o;
    };
    clear(this.details, h('section', { class: 'panel', 'aria-labelledby': 'span-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'span-h', class: 'span-title' }, n.name),
        n.type ? h('span', { class: `span-type type-${n.type.replace(/[^A-Z_]/gi, '')}` }, n.type) : null,
        h('span', { class: `badge span-status status-${status}` }, status.replace('STATUS_CODE_', ''))),
      h('dl', { class: 'kv' },
        h('dt', null, 'Span ID'), h('dd', null, h('code', null, hexId(n.id) || '—')),
        n.parent ? [h('dt', null, 'Parent'), h('dd', null, h('code', null, hexId(n.parent)))] : null,
        h('dt', null, 'Start'), h('dd', null, `+${fmtMs(n.start)}`),
        h('dt', null, 'Duration'), h('dd', { id: 'span-duration' }, fmtMs(n.end - n.start)),
        s.status && s.status.message ? [h('dt', null, 'Status message'), h('dd', { class: 'wrap' }, s.status.message)] : null,
        usage ? [h('dt', null, 'Tokens'), h('dd', { id: 'span-tokens' }, `${usage.total ?? '—'} (in ${usage.input ?? '—'}, out ${usage.output ?? '—'})`)] : null),
      exceptions.length ? h('div', { class: 'span-exceptions' }, exceptions.map((e) => {
        const a = evAttrs(e);
        return h('div', { class: 'error-box span-exception' },
          h('strong', null, String(a['exception.type'] || 'Exception')), ': ', String(a['exception.message'] ?? ''),
          a['exception.stacktrace'] ? h('details', { class: 'collapsible' }, h('summary', null, 'Stack trace'), h('pre', { class: 'preview' }, String(a['exception.stacktrace']))) : null);
      })) : null,
      h('h3', null, 'Inputs'),
      h('div', { class: 'span-inputs', id: 'span-inputs' }, valueView(attrs[SPAN_INPUTS], 'inputs')),
      h('h3', null, 'Outputs'),
      h('div', { class: 'span-outputs', id: 'span-outputs' }, valueView(attrs[SPAN_OUTPUTS], 'outputs')),
      h('details', { class: 'collapsible span-attrs', open: rest.length <= 12 },
        h('summary', null, `Attributes (${rest.length})`),
        rest.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('tbody', null, rest.map((k) => {
            const v = attrs[k];
            return h('tr', null, h('td', { class: 'mono' }, k),
              h('td', { class: 'wrap' }, v !== null && typeof v === 'object' ? jsonView(v, { open: 0 }) : String(v)));
          })))) : h('p', { class: 'muted' }, 'No attributes.')),
      others.length ? h('details', { class: 'collapsible span-events', open: true },
        h('summary', null, `Events (${others.length})`),
        h('ul', { class: 'event-list' }, others.map((e) => {
          const a = evAttrs(e);
          return h('li', null, h('strong', null, e.name || '(event)'), ' ', h('span', { class: 'muted small' }, evTime(e)),
            Object.keys(a).length ? jsonView(a, { open: 1 }) : null);
        }))) : null));
  }

  // ------------------------------------------------------------ trace actions

  async reload() {
    try {
      const r = await api.get(V3 + 'traces/get', { trace_id: this.traceId, allow_partial: 'true' }, { signal: this.ctx.signal });
      this.info = r.trace.trace_info || this.info;
      const y = this.scroller ? this.scroller.scrollTop : 0;
      this.draw();
      if (this.scroller) { this.scroller.scrollTop = y; this.drawWindow(); }
    } catch (err) {
      if (err.name !== 'AbortError') toast(err.message, 'error');
    }
  }

  async remove() {
    if (!await confirm('Delete trace?', 'The trace, its spans and its assessments are removed for good.')) return;
    const ok = await action(() => api.post(V3 + 'traces/delete-traces', { experiment_id: this.expId, request_ids: [this.traceId] }), 'Trace deleted');
    if (ok !== undefined) navigate(tracesHref(this.expId));
  }

  // ------------------------------------------------------------ assessments

  assessmentsPanel() {
    const list = [...(this.info.assessments || [])].sort((a, b) => a.assessment_name.localeCompare(b.assessment_name));
    const mayAdd = this.may('CreateAssessment');
    const rows = list.map((a) => {
      const src = a.source || {};
      const span = a.span_id ? this.tree.nodes.find((n) => n.id === a.span_id || hexId(n.id) === a.span_id) : null;
      return h('tr', { dataset: { assessmentId: a.assessment_id || '' }, class: a.valid === false ? 'is-deleted' : null },
        h('td', null, h('strong', null, a.assessment_name), h('div', { class: 'muted small' }, assessmentKind(a))),
        h('td', { class: 'wrap assessment-value' }, assessmentValueText(a),
          a.feedback && a.feedback.error ? h('div', { class: 'error-box small' }, a.feedback.error.error_message || a.feedback.error.error_code || 'error') : null,
          a.rationale ? h('div', { class: 'muted small assessment-rationale' }, a.rationale) : null),
        h('td', { class: 'small' }, src.source_type ? h('span', { class: 'badge' }, String(src.source_type).toLowerCase()) : null, ' ', src.source_id || '',
          span ? h('div', null, h('button', { type: 'button', class: 'btn btn-link btn-small', onclick: () => { this.reveal(span); this.renderRows(); this.select(span); this.focusRow(span); } }, `span ${span.name}`)) : null),
        h('td', { class: 'row-actions' },
          this.may('UpdateAssessment') && a.assessment_id ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Edit assessment ${a.assessment_name}`, onclick: () => this.editAssessment(a) }, 'Edit') : null,
          this.may('DeleteAssessment') && a.assessment_id ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Delete assessment ${a.assessment_name}`, onclick: () => this.deleteAssessment(a) }, 'Delete') : null));
    });
    return h('section', { class: 'panel trace-assessments', id: 'trace-assessments', 'aria-labelledby': 'assess-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'assess-h' }, 'Assessments ', h('span', { class: 'muted small' }, String(list.length))),
        mayAdd ? h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'assessment-add', onclick: () => this.addAssessment() }, 'Add feedback') : null),
      rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, 'Source'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', null, rows)))
        : h('p', { class: 'muted' }, 'No assessments yet. Feedback from people, judges or code shows up here.'));
  }

  async addAssessment() {
    const v = await dialog({
      title: 'Add feedback', submit: 'Add',
      fields: [
        { name: 'name', label: 'Name', required: true, placeholder: 'correctness' },
        { name: 'kind', label: 'Kind', type: 'select', options: ['feedback', 'expectation'], value: 'feedback' },
        { name: 'value', label: 'Value (true/false, a number, JSON or text)', required: true },
        { name: 'rationale', label: 'Rationale', type: 'textarea' },
      ],
      validate: (x) => (!x.name.trim() ? 'Enter a name.' : x.value.trim() === '' ? 'Enter a value.' : ''),
    });
    if (!v) return;
    const a = {
      assessment_name: v.name.trim(),
      trace_id: this.traceId,
      source: { source_type: 'HUMAN', source_id: viewer.username || 'mlflow-ui' },
      [v.kind === 'expectation' ? 'expectation' : 'feedback']: { value: parseValueInput(v.value) },
    };
    if (v.rationale.trim()) a.rationale = v.rationale;
    const ok = await action(() => api.post(`${V3}traces/${encodeURIComponent(this.traceId)}/assessments`, { assessment: a }), 'Assessment added');
    if (ok !== undefined) this.reload();
  }

  async editAssessment(a) {
    const kind = assessmentKind(a);
    const v = await dialog({
      title: `Edit “${a.assessment_name}”`, submit: 'Save',
      fields: [
        { name: 'value', label: 'Value (true/false, a number, JSON or text)', value: valueInputText(assessmentValue(a)), required: true },
        { name: 'rationale', label: 'Rationale', type: 'textarea', value: a.rationale || '' },
      ],
      validate: (x) => (x.value.trim() === '' ? 'Enter a value.' : ''),
    });
    if (!v) return;
    const field = kind === 'expectation' ? 'expectation' : 'feedback';
    const body = {
      assessment: { assessment_name: a.assessment_name, [field]: { value: parseValueInput(v.value) }, rationale: v.rationale },
      update_mask: `${field},rationale`,
    };
    const ok = await action(() => api.patch(`${V3}traces/${encodeURIComponent(this.traceId)}/assessments/${encodeURIComponent(a.assessment_id)}`, body), 'Assessment saved');
    if (ok !== undefined) this.reload();
  }

  async deleteAssessment(a) {
    if (!await confirm('Delete assessment?', `The assessment “${a.assessment_name}” is removed from this trace.`)) return;
    const ok = await action(() => api.del(`${V3}traces/${encodeURIComponent(this.traceId)}/assessments/${encodeURIComponent(a.assessment_id)}`), 'Assessment deleted');
    if (ok !== undefined) this.reload();
  }

  // ------------------------------------------------------------ tags

  tagsPanel() {
    const tags = Object.entries(this.info.tags || {}).filter(([k]) => !k.startsWith('mlflow.')).sort(([a], [b]) => a.localeCompare(b));
    const may = this.may('SetTraceTagV3');
    const mayDel = this.may('DeleteTraceTagV3');
    return h('section', { class: 'panel trace-tags', id: 'trace-tags', 'aria-labelledby': 'ttags-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'ttags-h' }, 'Tags ', h('span', { class: 'muted small' }, String(tags.length))),
        may ? h('button', { type: 'button', class: 'btn btn-small btn-primary', id: 'trace-add-tag', onclick: () => this.setTag() }, 'Add tag') : null),
      tags.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('tbody', null, tags.map(([k, val]) => h('tr', { dataset: { key: k } },
          h('td', { class: 'mono' }, k), h('td', { class: 'wrap' }, val),
          h('td', { class: 'row-actions' },
            may ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Edit tag ${k}`, onclick: () => this.setTag(k, val) }, 'Edit') : null,
            mayDel ? h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Delete tag ${k}`, onclick: () => this.deleteTag(k) }, 'Delete') : null))))))
        : h('p', { class: 'muted' }, 'No tags.'));
  }

  async setTag(key, value) {
    const fields = key === undefined ? [{ name: 'key', label: 'Key', required: true }] : [];
    fields.push({ name: 'value', label: 'Value', type: 'textarea', value: value || '' });
    const v = await dialog({ title: key === undefined ? 'Add tag' : `Edit tag “${key}”`, submit: 'Save', fields,
      validate: (x) => (key === undefined && !x.key.trim() ? 'Enter a key.' : '') });
    if (!v) return;
    const k = key === undefined ? v.key.trim() : key;
    const ok = await action(() => api.patch(`${V3}traces/${encodeURIComponent(this.traceId)}/tags`, { key: k, value: v.value }), 'Tag saved');
    if (ok !== undefined) this.reload();
  }

  async deleteTag(key) {
    if (!await confirm('Delete tag?', `The tag “${key}” is removed from this trace.`)) return;
    const ok = await action(() => api.del(`${V3}traces/${encodeURIComponent(this.traceId)}/tags`, { key }), 'Tag deleted');
    if (ok !== undefined) this.reload();
  }

  metadataPanel() {
    const meta = Object.entries(this.info.trace_metadata || {}).sort(([a], [b]) => a.localeCompare(b));
    const sys = Object.entries(this.info.tags || {}).filter(([k]) => k.startsWith('mlflow.')).sort(([a], [b]) => a.localeCompare(b));
    if (!meta.length && !sys.length) return null;
    const table = (list) => h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('tbody', null, list.map(([k, v]) => h('tr', null, h('td', { class: 'mono' }, k), h('td', { class: 'wrap mono' }, v))))));
    return h('section', { class: 'panel' },
      h('details', { class: 'collapsible', id: 'trace-metadata' }, h('summary', null, `Metadata and system tags (${meta.length + sys.length})`),
        meta.length ? [h('h3', null, 'Metadata'), table(meta)] : null,
        sys.length ? [h('h3', null, 'System tags'), table(sys)] : null));
  }
}
