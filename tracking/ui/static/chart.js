// chart.js: metric line charts, drawn on <canvas> by our own code.
//
// metricCharts(opts) returns an element at once and loads its data
// asynchronously from the bulk-interval route (the server picks at most
// max_results steps per request, MLflow's 320 by default), so a chart never
// downloads a whole metric history. One card per metric key, one line per
// run; a shared toolbar (x axis, log scale, smoothing, values table), a
// shared legend (click a run to hide its line), hover crosshair and
// tooltip, drag to zoom (refetching the zoomed step range for more
// detail), double-click to reset, and auto-refresh while a run is RUNNING.
import { h, clear, api, fmtNumber, fmtTime, errorBox } from './lib.js';

// ---------------------------------------------------------------- colours

/** PALETTE holds distinct line colours with at least 3:1 contrast on white. */
export const PALETTE = ['#1f5fbf', '#d55e00', '#1b8a4a', '#a23b8c', '#8a6a00', '#0a7f95', '#6b46c1', '#c0392b', '#4f6b12', '#5b6b7c'];

/** runColor is the colour of the i-th run of a chart group (and of the compare page's swatches). */
export function runColor(i) {
  if (i < PALETTE.length) return PALETTE[i];
  const hue = Math.round((i * 137.508) % 360);
  return `hsl(${hue}, 62%, 38%)`;
}

// FETCHES is how many chart requests run at once: a browser opens at most
// six HTTP/1.1 connections per host.
const FETCHES = 6;

/** chartSettings returns the default settings of a chart group; pass the object back in opts.settings to keep them across re-creations. */
export function chartSettings() {
  return { x: 'step', log: false, smoothing: 0, hidden: new Set(), table: false };
}

const X_MODES = [['step', 'Step'], ['time', 'Time (wall clock)'], ['relative', 'Relative time']];
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const GRID = '#e9ecf0';
const AXIS = '#c3cad3';
const LABEL = '#55606e';
const HUGE = 1.7e308;
const DETAIL_STEPS = 1000; // widest zoomed range fetched point by point // MLflow stores ±Infinity as ±MaxFloat64
let instances = 0;

// ---------------------------------------------------------------- component

/**
 * metricCharts renders charts of the given metric keys for the given runs
 * into a returned element, loading data asynchronously.
 * opts: {runs: [{run_id, run_name, experiment_id, status}], keys: [string],
 * onLeave: ctx.onLeave (stops auto-refresh), signal: ctx.signal}.
 * Optional: settings (from chartSettings(), shared and mutated),
 * colors ({run_id: css colour}), maxResults (default 320), refreshMs
 * (default 5000), onRunUpdate(run) (called with runs/get's run when a
 * RUNNING run is re-checked), toolbar (false hides the toolbar).
 * The element has .ready (a promise settled when the first data load is
 * done) and .destroy() (stops timers and requests).
 */
export function metricCharts(opts) {
  const uid = ++instances;
  const settings = opts.settings || chartSettings();
  if (!(settings.hidden instanceof Set)) settings.hidden = new Set(settings.hidden || []);
  const runs = (opts.runs || []).map((r, i) => ({
    run_id: r.run_id, run_name: r.run_name || r.run_id, experiment_id: r.experiment_id, status: r.status,
    color: (opts.colors && opts.colors[r.run_id]) || runColor(i),
  }));
  const keys = [...new Set(opts.keys || [])];
  const maxResults = opts.maxResults || 320;
  const refreshMs = opts.refreshMs || 5000;

  const ctl = new AbortController();
  const signal = ctl.signal;
  let timer = 0;
  let destroyed = false;
  let ro = null, io = null;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    ctl.abort();
    clearTimeout(timer);
    if (ro) ro.disconnect();
    if (io) io.disconnect();
  };
  if (opts.signal) {
    if (opts.signal.aborted) destroy();
    else opts.signal.addEventListener('abort', destroy, { once: true });
  }
  if (opts.onLeave) opts.onLeave(destroy);

  if (!runs.length || !keys.length) {
    const el = h('div', { class: 'metric-charts' }, h('p', { class: 'empty' }, runs.length ? 'No metrics to chart.' : 'No runs to chart.'));
    el.ready = Promise.resolve();
    el.destroy = destroy;
    el.settings = settings;
    return el;
  }

  // ----- toolbar
  const id = (s) => `mc${uid}-${s}`;
  const xSelect = h('select', { id: id('x'), onchange: () => {
    settings.x = xSelect.value;
    for (const c of cards) { c.zoom = null; c.zoomData = null; updateDisplay(c); showZoom(c); }
    redrawAll();
  } },
    X_MODES.map(([v, label]) => h('option', { value: v, selected: settings.x === v }, label)));
  const logBox = h('input', { type: 'checkbox', id: id('log'), class: 'chart-log', checked: settings.log, onchange: () => { settings.log = logBox.checked; redrawAll(); } });
  const smoothOut = h('output', { for: id('smooth'), class: 'chart-smooth-value' }, settings.smoothing.toFixed(2));
  const smooth = h('input', {
    type: 'range', id: id('smooth'), class: 'chart-smoothing', min: 0, max: 0.99, step: 0.01, value: String(settings.smoothing),
    oninput: () => { settings.smoothing = Number(smooth.value); smoothOut.textContent = settings.smoothing.toFixed(2); redrawAll(); },
  });
  const tableBtn = h('button', { type: 'button', class: 'btn btn-small chart-table-toggle', 'aria-pressed': String(settings.table), onclick: () => {
    settings.table = !settings.table;
    tableBtn.setAttribute('aria-pressed', String(settings.table));
    tableBtn.textContent = settings.table ? 'Hide values' : 'Show values';
    for (const c of cards) c.tableWrap.classList.toggle('visually-hidden', !settings.table);
  } }, settings.table ? 'Hide values' : 'Show values');
  const live = h('span', { class: 'chart-live', role: 'status' });
  const toolbar = h('div', { class: 'toolbar chart-toolbar', role: 'group', 'aria-label': 'Chart options' },
    h('label', { class: 'chart-control', for: id('x') }, 'X axis'), xSelect,
    h('label', { class: 'chart-control check' }, logBox, 'Log scale'),
    h('label', { class: 'chart-control', for: id('smooth') }, 'Smoothing'), smooth, smoothOut,
    tableBtn, live);
  if (opts.toolbar === false) toolbar.hidden = true;

  // ----- legend
  const legendButtons = runs.map((r) => {
    const b = h('button', { type: 'button', class: 'legend-item', 'aria-pressed': String(!settings.hidden.has(r.run_id)), title: `Hide or show ${r.run_name}`, dataset: { runId: r.run_id } },
      h('span', { class: 'swatch', style: { background: r.color } }), h('span', { class: 'legend-name' }, r.run_name));
    b.addEventListener('click', () => {
      if (settings.hidden.has(r.run_id)) settings.hidden.delete(r.run_id); else settings.hidden.add(r.run_id);
      b.setAttribute('aria-pressed', String(!settings.hidden.has(r.run_id)));
      redrawAll();
    });
    return b;
  });
  const setAll = (show) => {
    runs.forEach((r, i) => {
      if (show) settings.hidden.delete(r.run_id); else settings.hidden.add(r.run_id);
      legendButtons[i].setAttribute('aria-pressed', String(show));
    });
    redrawAll();
  };
  const legend = h('div', { class: 'chart-legend-row', hidden: runs.length < 2 },
    runs.length > 5 ? h('div', { class: 'legend-actions' },
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => setAll(true) }, 'Show all'),
      h('button', { type: 'button', class: 'btn btn-small', onclick: () => setAll(false) }, 'Hide all')) : null,
    h('div', { class: 'chart-legend' + (runs.length > 24 ? ' many' : ''), role: 'group', 'aria-label': 'Runs (click to hide or show a line)' }, legendButtons));

  // ----- cards
  const cards = keys.map((key) => makeCard(key));
  const grid = h('div', { class: 'chart-grid' }, cards.map((c) => c.el));
  const root = h('div', { class: 'metric-charts' }, toolbar, legend, grid);
  root.settings = settings;
  root.destroy = destroy;

  function makeCard(key) {
    const canvas = h('canvas', { class: 'chart-canvas', role: 'img', tabindex: 0, 'aria-label': `${key}: loading` });
    const overlay = h('canvas', { class: 'chart-overlay', 'aria-hidden': 'true' });
    const tip = h('div', { class: 'chart-tooltip', hidden: true, 'aria-hidden': 'true' });
    const status = h('div', { class: 'chart-status' }, 'Loading…');
    const plot = h('div', { class: 'chart-plot' }, canvas, overlay, tip, status);
    const zoomInfo = h('span', { class: 'chart-zoom muted small' });
    const lastInfo = h('span', { class: 'chart-last small' });
    const reset = h('button', { type: 'button', class: 'btn btn-small chart-reset', hidden: true }, 'Reset zoom');
    const tbody = h('tbody');
    const table = h('table', { class: 'data chart-values' },
      h('caption', null, `${key}: last values`),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Run'), h('th', { scope: 'col' }, 'Last value'), h('th', { scope: 'col' }, 'Step'), h('th', { scope: 'col' }, 'Time'))),
      tbody);
    const tableWrap = h('div', { class: 'chart-table-wrap' + (settings.table ? '' : ' visually-hidden') }, table);
    const el = h('section', { class: 'chart-card', dataset: { key, state: 'loading' }, 'aria-label': `Metric ${key}` },
      h('div', { class: 'chart-head' }, h('h3', { class: 'chart-title', title: key }, key), lastInfo, zoomInfo, reset), plot, tableWrap);
    const card = {
      key, el, canvas, overlay, tip, status, plot, zoomInfo, lastInfo, reset, tbody, tableWrap,
      base: null, zoom: null, zoomData: null, display: null, layout: null,
      visible: true, stale: false, loaded: false, error: null, seq: 0, drag: null, hoverX: null, kbIndex: -1,
    };
    reset.addEventListener('click', () => resetZoom(card));
    wireInteraction(card);
    return card;
  }

  // ----- data loading

  async function fetchPoints(key, range) {
    const chunks = [];
    for (let i = 0; i < runs.length; i += 100) chunks.push(runs.slice(i, i + 100).map((r) => r.run_id));
    // A zoomed range of at most DETAIL_STEPS steps is asked for whole
    // (max_results = its width), so the server does not thin it: MLflow's
    // thinning keeps few samples of a range that does not start at the
    // first step. Wider ranges get the usual sample, merged with the
    // unzoomed one.
    let limit = maxResults;
    if (range && range[1] - range[0] + 1 > maxResults && range[1] - range[0] + 1 <= DETAIL_STEPS) limit = range[1] - range[0] + 1;
    const answers = await Promise.all(chunks.map((ids) => api.get('metrics/get-history-bulk-interval', {
      run_ids: ids, metric_key: key, max_results: limit,
      start_step: range ? range[0] : undefined, end_step: range ? range[1] : undefined,
    }, { signal })));
    const byRun = new Map();
    for (const a of answers) {
      for (const m of a.metrics || []) {
        let list = byRun.get(m.run_id);
        if (!list) byRun.set(m.run_id, (list = []));
        list.push(m);
      }
    }
    const out = new Map();
    for (const [rid, list] of byRun) out.set(rid, toSeries(list));
    return out;
  }

  async function load(card) {
    const seq = ++card.seq;
    try {
      const base = await fetchPoints(card.key, null);
      let zoomData = null;
      if (card.zoom && card.zoom.steps) zoomData = await fetchPoints(card.key, card.zoom.steps);
      if (destroyed || seq !== card.seq) return;
      card.base = base;
      if (zoomData) card.zoomData = zoomData;
      card.error = null;
      card.loaded = true;
      card.stale = false;
      updateDisplay(card);
      drawCard(card);
      describe(card, true);
    } catch (err) {
      if (destroyed || (err && err.name === 'AbortError')) return;
      card.error = err;
      card.loaded = true;
      card.el.dataset.state = 'error';
      clear(card.status, errorBox(err));
      card.status.hidden = false;
      card.canvas.setAttribute('aria-label', `${card.key}: could not load (${err.message || err})`);
    }
  }

  async function loadZoom(card) {
    const z = card.zoom;
    if (!z || !z.steps) return;
    const seq = ++card.seq;
    try {
      const data = await fetchPoints(card.key, z.steps);
      if (destroyed || seq !== card.seq || card.zoom !== z) return;
      card.zoomData = data;
      updateDisplay(card);
      drawCard(card);
    } catch (err) {
      if (destroyed || (err && err.name === 'AbortError')) return;
      card.zoomInfo.textContent = `Could not load detail: ${err.message || err}`;
    }
  }

  function updateDisplay(card) {
    if (!card.base) { card.display = null; return; }
    if (!card.zoomData) { card.display = card.base; return; }
    const m = new Map(card.base);
    for (const [rid, s] of card.zoomData) m.set(rid, m.has(rid) ? mergeSeries(m.get(rid), s) : s);
    card.display = m;
  }

  async function pool(items, n, fn) {
    let i = 0;
    const worker = async () => { while (i < items.length && !destroyed) await fn(items[i++]); };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  }

  // ----- auto-refresh

  const anyRunning = () => runs.some((r) => r.status === 'RUNNING');
  function updateLive() {
    const on = anyRunning() && !destroyed;
    live.classList.toggle('on', on);
    live.textContent = on ? 'Live: refreshing every ' + Math.round(refreshMs / 1000) + ' s' : '';
  }
  function schedule() {
    clearTimeout(timer);
    updateLive();
    if (!destroyed && anyRunning()) timer = setTimeout(tick, refreshMs);
  }
  async function tick() {
    if (destroyed) return;
    await Promise.all(runs.filter((r) => r.status === 'RUNNING').map(async (r) => {
      try {
        const res = await api.get('runs/get', { run_id: r.run_id }, { signal });
        if (res.run && res.run.info) {
          r.status = res.run.info.status;
          if (opts.onRunUpdate) opts.onRunUpdate(res.run);
        }
      } catch { /* keep the old status; the data fetch reports errors */ }
    }));
    if (destroyed) return;
    const due = [];
    for (const c of cards) { if (c.visible) due.push(c); else c.stale = true; }
    await pool(due, FETCHES, load);
    schedule();
  }

  if (typeof IntersectionObserver === 'function') {
    io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const c = cards.find((x) => x.el === e.target);
        if (!c) continue;
        c.visible = e.isIntersecting;
        if (c.visible && c.stale && c.loaded) load(c);
      }
    }, { rootMargin: '200px' });
    for (const c of cards) io.observe(c.el);
  }
  if (typeof ResizeObserver === 'function') {
    ro = new ResizeObserver((entries) => {
      for (const e of entries) {
        const c = cards.find((x) => x.plot === e.target);
        if (!c) continue;
        // remember the size so drawing never forces a layout
        c.size = { w: e.contentRect.width, h: e.contentRect.height };
        scheduleDraw(c);
      }
    });
    for (const c of cards) ro.observe(c.plot);
  }

  root.ready = pool(cards, FETCHES, load).then(schedule);

  // ----- drawing

  function redrawAll() {
    for (const c of cards) { drawCard(c); describe(c, false); }
  }

  function scheduleDraw(card) {
    if (card.rafPending) return;
    card.rafPending = true;
    requestAnimationFrame(() => { card.rafPending = false; drawCard(card); });
  }

  function visibleLines(card) {
    const out = [];
    if (!card.display) return out;
    for (const r of runs) {
      if (settings.hidden.has(r.run_id)) continue;
      const s = card.display.get(r.run_id);
      if (s && s.n) out.push({ run: r, view: viewOf(s, settings.x) });
    }
    return out;
  }

  // drawCard draws a card; the first time it has drawn its data it marks
  // the card data-state="ready" with data-drawn-ms (milliseconds since
  // navigation start), which the performance test reads.
  function drawCard(card) {
    if (destroyed) return;
    const W = card.size ? card.size.w : card.plot.clientWidth, H = card.size ? card.size.h : card.plot.clientHeight;
    if (!W || !H) return;
    drawPlot(card, W, H);
    if (card.base && card.el.dataset.state !== 'ready') {
      card.el.dataset.state = 'ready';
      card.el.dataset.drawnMs = String(Math.round(performance.now()));
    }
  }

  function drawPlot(card, W, H) {
    const dpr = window.devicePixelRatio || 1;
    sizeCanvas(card.canvas, W, H, dpr);
    sizeCanvas(card.overlay, W, H, dpr);
    const ctx = card.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    clearOverlay(card);
    card.layout = null;
    if (card.error) return;
    if (!card.display) { card.status.hidden = false; return; }
    const lines = visibleLines(card);
    const log = settings.log, mode = settings.x;

    // x range
    let x0 = Infinity, x1 = -Infinity;
    if (card.zoom) { x0 = card.zoom.x0; x1 = card.zoom.x1; }
    else {
      for (const l of lines) { if (l.view.n) { x0 = Math.min(x0, l.view.x[0]); x1 = Math.max(x1, l.view.x[l.view.n - 1]); } }
    }
    const message = (text) => { clear(card.status, text); card.status.hidden = false; };
    if (!lines.length || !isFinite(x0)) {
      message(card.display.size ? 'Every run of this chart is hidden.' : 'No data for these runs.');
      return;
    }
    if (x1 - x0 <= 0) { const d = mode === 'step' ? 1 : 1000; x0 -= d; x1 += d; }

    // smoothing and y range over the points inside the x range
    const w = settings.smoothing;
    let y0 = Infinity, y1 = -Infinity;
    for (const l of lines) {
      const v = l.view;
      l.smooth = w > 0 ? ema(v.y, w, log) : null;
      const a = lowerBound(v.x, v.n, x0), b = upperBound(v.x, v.n, x1);
      for (let i = a; i < b; i++) {
        const y = v.y[i];
        if (!isFinite(y) || (log && y <= 0)) continue;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    if (!isFinite(y0)) {
      message(log ? 'No positive values to show on a log scale.' : 'No finite values in this range.');
      return;
    }
    card.status.hidden = true;
    const tf = log ? Math.log10 : (v) => v;
    let ly0 = tf(y0), ly1 = tf(y1);
    if (ly1 - ly0 <= 0) { const d = log ? 0.5 : (Math.abs(ly0) * 0.1 || 1); ly0 -= d; ly1 += d; }
    else { const pad = (ly1 - ly0) * 0.06; ly0 -= pad; ly1 += pad; }

    // ticks and margins
    ctx.font = FONT;
    const narrow = W < 360;
    const ny = Math.max(3, Math.floor((H - 34) / 36));
    const yTicks = log ? logTicks(ly0, ly1, ny) : niceTicks(ly0, ly1, ny);
    let labelW = 0;
    for (const t of yTicks.major) labelW = Math.max(labelW, ctx.measureText(t.label).width);
    const m = { l: Math.ceil(labelW) + 12, r: 14, t: 10, b: 24 };
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    if (pw < 20 || ph < 20) return;
    const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * pw;
    const sy = (v) => m.t + (1 - (tf(v) - ly0) / (ly1 - ly0)) * ph;
    const syl = (lv) => m.t + (1 - (lv - ly0) / (ly1 - ly0)) * ph;
    const xTicks = mode === 'step' ? niceTicks(x0, x1, Math.max(2, Math.floor(pw / (narrow ? 70 : 90))), true)
      : timeTicks(x0, x1, Math.max(2, Math.floor(pw / (narrow ? 80 : 100))), mode === 'relative');

    // grid
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#f3f5f7';
    ctx.beginPath();
    for (const lv of yTicks.minor) { const y = Math.round(syl(lv)) + 0.5; ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); }
    ctx.stroke();
    ctx.strokeStyle = GRID;
    ctx.beginPath();
    for (const t of yTicks.major) { const y = Math.round(syl(t.v)) + 0.5; ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); }
    for (const t of xTicks) { const x = Math.round(sx(t.v)) + 0.5; ctx.moveTo(x, m.t); ctx.lineTo(x, m.t + ph); }
    ctx.stroke();
    ctx.strokeStyle = AXIS;
    ctx.beginPath();
    ctx.moveTo(m.l + 0.5, m.t); ctx.lineTo(m.l + 0.5, m.t + ph + 0.5); ctx.lineTo(m.l + pw, m.t + ph + 0.5);
    ctx.stroke();

    // labels
    ctx.fillStyle = LABEL;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of yTicks.major) ctx.fillText(t.label, m.l - 6, syl(t.v));
    ctx.textBaseline = 'top';
    for (let i = 0; i < xTicks.length; i++) {
      const t = xTicks[i], x = sx(t.v);
      const tw = ctx.measureText(t.label).width;
      ctx.textAlign = x - tw / 2 < 2 ? 'left' : x + tw / 2 > W - 2 ? 'right' : 'center';
      ctx.fillText(t.label, x, m.t + ph + 6);
    }

    // lines
    ctx.save();
    ctx.beginPath();
    ctx.rect(m.l + 1, m.t - 3, pw, ph + 6);
    ctx.clip();
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    for (const l of lines) {
      const v = l.view;
      const a = Math.max(0, lowerBound(v.x, v.n, x0) - 1), b = Math.min(v.n, upperBound(v.x, v.n, x1) + 1);
      if (l.smooth) {
        ctx.globalAlpha = 0.25;
        strokeLine(ctx, l.run.color, v.x, v.y, a, b, sx, sy, log, 1);
        ctx.globalAlpha = 1;
        strokeLine(ctx, l.run.color, v.x, l.smooth, a, b, sx, sy, log, 2);
      } else {
        strokeLine(ctx, l.run.color, v.x, v.y, a, b, sx, sy, log, 1.6);
      }
    }
    ctx.restore();
    ctx.globalAlpha = 1;

    card.layout = { m, pw, ph, W, H, x0, x1, sx, sy, lines, log, mode, invX: (px) => x0 + ((px - m.l) / pw) * (x1 - x0) };
    if (card.hoverX !== null) hoverAt(card, card.hoverX);
  }

  // ----- interaction: hover, keyboard, zoom

  function wireInteraction(card) {
    const pos = (e) => { const r = card.canvas.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; };
    card.plot.addEventListener('mousemove', (e) => {
      const p = pos(e);
      if (card.drag) { card.drag.x1 = p.x; drawSelection(card); return; }
      card.hoverX = p.x;
      hoverAt(card, p.x, p.y);
    });
    card.plot.addEventListener('mouseleave', () => { if (!card.drag) hideHover(card); });
    card.plot.addEventListener('mousedown', (e) => {
      const L = card.layout;
      if (e.button !== 0 || !L) return;
      const p = pos(e);
      if (p.x < L.m.l || p.x > L.m.l + L.pw) return;
      e.preventDefault();
      card.drag = { x0: p.x, x1: p.x };
      hideHover(card);
      const up = (ev) => {
        window.removeEventListener('mouseup', up);
        const d = card.drag;
        card.drag = null;
        clearOverlay(card);
        if (!d || !card.layout) return;
        const end = pos(ev).x;
        if (Math.abs(end - d.x0) < 6) { card.hoverX = end; hoverAt(card, end); return; }
        zoomTo(card, Math.min(d.x0, end), Math.max(d.x0, end));
      };
      window.addEventListener('mouseup', up);
    });
    card.plot.addEventListener('dblclick', () => resetZoom(card));
    card.canvas.addEventListener('keydown', (e) => {
      const L = card.layout;
      if (!L || !L.lines.length) return;
      const v = L.lines[0].view;
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        e.preventDefault();
        let i = card.kbIndex;
        if (i < 0) i = e.key === 'ArrowRight' ? lowerBound(v.x, v.n, L.x0) : upperBound(v.x, v.n, L.x1) - 1;
        else i += e.key === 'ArrowRight' ? 1 : -1;
        i = Math.max(0, Math.min(v.n - 1, i));
        card.kbIndex = i;
        card.hoverX = L.sx(v.x[i]);
        hoverAt(card, card.hoverX);
      } else if (e.key === 'Escape') {
        hideHover(card);
      } else if (e.key === '0' || e.key === 'Home') {
        resetZoom(card);
      }
    });
    card.canvas.addEventListener('blur', () => hideHover(card));
  }

  function clearOverlay(card) {
    const c = card.overlay.getContext('2d');
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, card.overlay.width, card.overlay.height);
  }

  function drawSelection(card) {
    const L = card.layout;
    if (!L) return;
    clearOverlay(card);
    const c = card.overlay.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    const a = clamp(Math.min(card.drag.x0, card.drag.x1), L.m.l, L.m.l + L.pw);
    const b = clamp(Math.max(card.drag.x0, card.drag.x1), L.m.l, L.m.l + L.pw);
    c.fillStyle = 'rgba(11, 92, 173, 0.12)';
    c.fillRect(a, L.m.t, b - a, L.ph);
    c.strokeStyle = 'rgba(11, 92, 173, 0.6)';
    c.strokeRect(a + 0.5, L.m.t + 0.5, b - a - 1, L.ph - 1);
  }

  function hideHover(card) {
    card.hoverX = null;
    card.kbIndex = -1;
    card.tip.hidden = true;
    clearOverlay(card);
  }

  function hoverAt(card, px, py) {
    const L = card.layout;
    if (!L || px < L.m.l - 2 || px > L.m.l + L.pw + 2) { card.tip.hidden = true; clearOverlay(card); return; }
    const xv = L.invX(px);
    const rows = [];
    for (const l of L.lines) {
      const v = l.view;
      const i = nearestFinite(v, xv, L.log);
      if (i < 0) continue;
      const xi = v.x[i];
      if (xi < L.x0 || xi > L.x1) continue;
      rows.push({ l, i, dist: Math.abs(L.sx(xi) - px) });
    }
    clearOverlay(card);
    if (!rows.length) { card.tip.hidden = true; return; }
    // snap the crosshair to the nearest point
    let snap = rows[0];
    for (const r of rows) if (r.dist < snap.dist) snap = r;
    const sxv = snap.l.view.x[snap.i];
    px = L.sx(sxv);
    const c = card.overlay.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.strokeStyle = 'rgba(28, 36, 48, 0.45)';
    c.lineWidth = 1;
    c.setLineDash([3, 3]);
    c.beginPath();
    c.moveTo(Math.round(px) + 0.5, L.m.t);
    c.lineTo(Math.round(px) + 0.5, L.m.t + L.ph);
    c.stroke();
    c.setLineDash([]);
    for (const r of rows) {
      const v = r.l.view;
      const yv = r.l.smooth && isFinite(r.l.smooth[r.i]) ? r.l.smooth[r.i] : v.y[r.i];
      if (!isFinite(yv) || (L.log && yv <= 0)) continue;
      c.beginPath();
      c.arc(L.sx(v.x[r.i]), L.sy(yv), 3.5, 0, Math.PI * 2);
      c.fillStyle = '#fff';
      c.fill();
      c.lineWidth = 2;
      c.strokeStyle = r.l.run.color;
      c.stroke();
    }
    // tooltip: with many runs, the lines nearest the pointer come first
    if (rows.length > 12 && py !== undefined) {
      const yOf = (r) => { const v = r.l.smooth && isFinite(r.l.smooth[r.i]) ? r.l.smooth[r.i] : r.l.view.y[r.i]; return isFinite(v) && !(L.log && v <= 0) ? L.sy(v) : Infinity; };
      rows.sort((a, b) => Math.abs(yOf(a) - py) - Math.abs(yOf(b) - py));
    }
    const shown = rows.slice(0, 12);
    const head = L.mode === 'step' ? `Step ${fmtNumber(sxv)}` : L.mode === 'time' ? fmtTime(sxv) : `+${fmtRel(Math.max(0, sxv))}`;
    clear(card.tip,
      h('div', { class: 'tip-head' }, card.key, ' · ', head),
      h('table', null, h('tbody', null, shown.map((r) => {
        const v = r.l.view;
        const val = v.y[r.i];
        const sm = r.l.smooth ? r.l.smooth[r.i] : null;
        return h('tr', null,
          h('td', null, h('span', { class: 'swatch', style: { background: r.l.run.color } })),
          h('td', { class: 'tip-name' }, r.l.run.run_name),
          h('td', { class: 'tip-num' }, fmtNumber(val), sm !== null && isFinite(sm) ? h('span', { class: 'tip-smooth' }, ` (smoothed ${fmtNumber(sm)})`) : null),
          h('td', { class: 'tip-meta' }, `step ${v.step[r.i]}`),
          h('td', { class: 'tip-meta' }, fmtTime(v.ts[r.i])));
      }))),
      rows.length > shown.length ? h('div', { class: 'tip-more' }, `and ${rows.length - shown.length} more`) : null);
    card.tip.hidden = false;
    const tw = card.tip.offsetWidth, W = card.plot.clientWidth;
    let left = px + 14;
    if (left + tw > W) left = Math.max(0, px - 14 - tw);
    card.tip.style.left = left + 'px';
    // keep the tooltip in the half of the plot away from the pointer
    const low = py !== undefined && py < L.m.t + L.ph / 2;
    card.tip.style.top = (low ? Math.max(L.m.t + 4, L.m.t + L.ph - 4 - card.tip.offsetHeight) : L.m.t + 4) + 'px';
  }

  function zoomTo(card, pa, pb) {
    const L = card.layout;
    const x0 = L.invX(clamp(pa, L.m.l, L.m.l + L.pw)), x1 = L.invX(clamp(pb, L.m.l, L.m.l + L.pw));
    if (!(x1 > x0)) return;
    // the steps the selection covers, for a finer request
    let s0 = Infinity, s1 = -Infinity;
    if (L.mode === 'step') { s0 = Math.floor(x0); s1 = Math.ceil(x1); }
    else {
      for (const l of L.lines) {
        const v = l.view;
        const a = Math.max(0, lowerBound(v.x, v.n, x0) - 1), b = Math.min(v.n, upperBound(v.x, v.n, x1) + 1);
        for (let i = a; i < b; i++) { s0 = Math.min(s0, v.step[i]); s1 = Math.max(s1, v.step[i]); }
      }
    }
    s0 = Math.max(0, s0);
    card.zoom = { x0, x1, steps: isFinite(s0) && isFinite(s1) && s1 >= s0 ? [s0, s1] : null };
    card.zoomData = null;
    updateDisplay(card);
    showZoom(card);
    drawCard(card);
    loadZoom(card);
  }

  function resetZoom(card) {
    if (!card.zoom) return;
    card.seq++;
    card.zoom = null;
    card.zoomData = null;
    updateDisplay(card);
    showZoom(card);
    drawCard(card);
  }

  function showZoom(card) {
    const z = card.zoom;
    card.reset.hidden = !z;
    card.zoomInfo.textContent = z && z.steps ? `steps ${fmtNumber(z.steps[0])}–${fmtNumber(z.steps[1])}` : '';
  }

  // ----- accessible summary and table

  function describe(card, withTable) {
    if (!card.base) return;
    const last = [];
    for (const r of runs) {
      const s = card.base.get(r.run_id);
      if (!s || !s.n) continue;
      let i = s.n - 1; // highest step (latest timestamp at that step)
      last.push({ r, value: s.vals[i], step: s.steps[i], ts: s.ts[i] });
    }
    const parts = last.slice(0, 10).map((x) => `${x.r.run_name} ${fmtNumber(x.value)} at step ${x.step}`);
    if (last.length > 10) parts.push(`and ${last.length - 10} more`);
    const axis = X_MODES.find(([v]) => v === settings.x)[1].toLowerCase();
    card.canvas.setAttribute('aria-label',
      `${card.key}: line chart of ${last.length} run${last.length === 1 ? '' : 's'}, x axis ${axis}${settings.log ? ', log scale' : ''}. ` +
      (last.length ? `Last values: ${parts.join('; ')}.` : 'No data.'));
    if (!withTable) return;
    if (runs.length === 1) {
      clear(card.lastInfo, last.length ? [h('b', null, fmtNumber(last[0].value)), h('span', { class: 'muted' }, ` at step ${last[0].step}`)] : null);
    }
    clear(card.tbody, last.length ? last.map((x) => h('tr', null,
      h('td', null, h('span', { class: 'swatch', style: { background: x.r.color } }), ' ', x.r.run_name),
      h('td', { class: 'num' }, fmtNumber(x.value)),
      h('td', { class: 'num' }, String(x.step)),
      h('td', null, fmtTime(x.ts)))) : h('tr', null, h('td', { colspan: 4, class: 'muted' }, 'No data.')));
  }

  return root;
}

// ---------------------------------------------------------------- data helpers

function num(v) {
  if (typeof v === 'number') return Math.abs(v) >= HUGE ? (v > 0 ? Infinity : -Infinity) : v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  const n = Number(v);
  return isNaN(n) ? NaN : num(n);
}

/** toSeries turns [{step, timestamp, value}] into sorted typed arrays. */
function toSeries(list) {
  const pts = list.map((m) => ({ s: Number(m.step) || 0, t: Number(m.timestamp) || 0, v: num(m.value) }));
  return fromPoints(pts);
}

function fromPoints(pts) {
  pts.sort((a, b) => a.s - b.s || a.t - b.t);
  const n = pts.length;
  const steps = new Float64Array(n), ts = new Float64Array(n), vals = new Float64Array(n);
  let t0 = Infinity;
  for (let i = 0; i < n; i++) {
    steps[i] = pts[i].s; ts[i] = pts[i].t; vals[i] = pts[i].v;
    if (pts[i].t < t0) t0 = pts[i].t;
  }
  return { n, steps, ts, vals, t0: isFinite(t0) ? t0 : 0, views: {} };
}

function mergeSeries(a, b) {
  const seen = new Set();
  const pts = [];
  for (const s of [b, a]) {
    for (let i = 0; i < s.n; i++) {
      const k = s.steps[i] + ':' + s.ts[i];
      if (seen.has(k)) continue;
      seen.add(k);
      pts.push({ s: s.steps[i], t: s.ts[i], v: s.vals[i] });
    }
  }
  const out = fromPoints(pts);
  out.t0 = Math.min(a.t0, b.t0);
  return out;
}

/** viewOf returns the series' points ordered by the x of the given mode. */
function viewOf(s, mode) {
  if (s.views[mode]) return s.views[mode];
  const n = s.n;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = mode === 'step' ? s.steps[i] : mode === 'time' ? s.ts[i] : s.ts[i] - s.t0;
  let sorted = true;
  for (let i = 1; i < n; i++) if (x[i] < x[i - 1]) { sorted = false; break; }
  let v;
  if (sorted) v = { n, x, y: s.vals, step: s.steps, ts: s.ts };
  else {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b] || s.steps[a] - s.steps[b]);
    v = { n, x: new Float64Array(n), y: new Float64Array(n), step: new Float64Array(n), ts: new Float64Array(n) };
    idx.forEach((j, i) => { v.x[i] = x[j]; v.y[i] = s.vals[j]; v.step[i] = s.steps[j]; v.ts[i] = s.ts[j]; });
  }
  s.views[mode] = v;
  return v;
}

/** ema smooths like TensorBoard: a debiased exponential moving average that skips non-finite values. */
export function ema(ys, w, log) {
  const n = ys.length;
  const out = new Float64Array(n);
  let last = 0, count = 0;
  for (let i = 0; i < n; i++) {
    const v = ys[i];
    if (!isFinite(v) || (log && v <= 0)) { out[i] = NaN; continue; }
    last = last * w + (1 - w) * v;
    count++;
    out[i] = last / (1 - Math.pow(w, count));
  }
  return out;
}

function lowerBound(xs, n, v) { let lo = 0, hi = n; while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < v) lo = mid + 1; else hi = mid; } return lo; }
function upperBound(xs, n, v) { let lo = 0, hi = n; while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] <= v) lo = mid + 1; else hi = mid; } return lo; }

function nearestFinite(v, x, log) {
  if (!v.n) return -1;
  const ok = (i) => isFinite(v.y[i]) && !(log && v.y[i] <= 0);
  let i = lowerBound(v.x, v.n, x);
  let best = -1, bestD = Infinity;
  for (let j = i; j < v.n; j++) if (ok(j)) { best = j; bestD = Math.abs(v.x[j] - x); break; }
  for (let j = i - 1; j >= 0; j--) if (ok(j)) { if (Math.abs(v.x[j] - x) <= bestD) best = j; break; }
  return best;
}

/** strokeLine draws one series as a polyline, breaking it at NaN/±Infinity (and at non-positive values on a log axis); isolated points get a dot. */
function strokeLine(c, color, xs, ys, a, b, fx, fy, lg, width) {
  const ok = (i) => isFinite(ys[i]) && !(lg && ys[i] <= 0);
  c.strokeStyle = color;
  c.fillStyle = color;
  c.lineWidth = width;
  c.beginPath();
  let pen = false, lonely = false;
  for (let i = a; i < b; i++) {
    if (!ok(i)) { pen = false; continue; }
    const px = fx(xs[i]), py = fy(ys[i]);
    if (pen) c.lineTo(px, py);
    else { c.moveTo(px, py); if (!(i + 1 < b && ok(i + 1))) lonely = true; }
    pen = true;
  }
  c.stroke();
  if (!lonely) return;
  for (let i = a; i < b; i++) {
    if (!ok(i) || (i > a && ok(i - 1)) || (i + 1 < b && ok(i + 1))) continue;
    c.beginPath();
    c.arc(fx(xs[i]), fy(ys[i]), 2.5, 0, Math.PI * 2);
    c.fill();
  }
}

function clamp(v, a, b) { return Math.max(a, Math.min(b, v)); }

function sizeCanvas(c, W, H, dpr) {
  const w = Math.round(W * dpr), hgt = Math.round(H * dpr);
  if (c.width !== w) c.width = w;
  if (c.height !== hgt) c.height = hgt;
}

// ---------------------------------------------------------------- ticks

/** niceTicks returns about n ticks at 1, 2 or 5 × 10^k over [a, b]. */
export function niceTicks(a, b, n, integer) {
  let step = niceStep((b - a) / Math.max(1, n));
  if (integer) step = Math.max(1, Math.round(step));
  const major = [];
  const first = Math.ceil(a / step - 1e-9) * step;
  for (let v = first, i = 0; v <= b + step * 1e-9 && i < 100; i++, v = first + i * step) {
    const x = Math.abs(v) < step * 1e-9 ? 0 : v;
    major.push({ v: x, label: fmtTick(x, step) });
  }
  return Object.assign(major, { major, minor: [] });
}

function niceStep(raw) {
  if (!(raw > 0) || !isFinite(raw)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

/** fmtTick labels an axis value, with as many decimals as the tick step needs. */
export function fmtTick(v, step) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e15 || a < 1e-6 || step < 1e-6) return trimExp(v.toExponential(2));
  const units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e4, 'k']];
  for (const [u, s] of units) {
    if (a >= u) {
      const k = u === 1e4 ? 1e3 : u;
      const d = Math.max(0, Math.min(3, -Math.floor(Math.log10(step / k) + 1e-9)));
      return trimZeros((v / k).toFixed(d)) + s;
    }
  }
  const d = Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9)));
  return trimZeros(v.toFixed(d));
}

function trimZeros(s) { return s.includes('.') ? s.replace(/\.?0+$/, '') : s; }
function trimExp(s) { return s.replace(/\.?0+e/, 'e').replace('e+', 'e'); }

/** logTicks returns ticks for a log10 axis over [la, lb] (in log units). */
function logTicks(la, lb, n) {
  const span = lb - la;
  if (span < 0.7) {
    // a fraction of a decade: nice linear values placed on the log axis
    const lin = niceTicks(Math.pow(10, la), Math.pow(10, lb), n);
    return { major: lin.filter((t) => t.v > 0).map((t) => ({ v: Math.log10(t.v), label: t.label })), minor: [] };
  }
  const major = [], minor = [];
  const mults = span <= 2.5 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil(span / n));
  for (let k = Math.floor(la); k <= Math.ceil(lb); k++) {
    for (let j = 1; j <= 9; j++) {
      const lv = k + Math.log10(j);
      if (lv < la || lv > lb) continue;
      if (mults.includes(j) && (j > 1 || k % every === 0)) major.push({ v: lv, label: j === 1 ? powLabel(k) : fmtTick(j * Math.pow(10, k), Math.pow(10, k)) });
      else if (span <= 5) minor.push(lv);
    }
  }
  return { major, minor };
}

function powLabel(k) {
  if (k >= -4 && k <= 5) return fmtTick(Math.pow(10, k), Math.pow(10, k));
  return `1e${k}`;
}

const S = 1000, MIN = 60 * S, HOUR = 60 * MIN, DAY = 24 * HOUR;
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, S, 2 * S, 5 * S, 10 * S, 15 * S, 30 * S, MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY, 365 * DAY];

/** timeTicks returns ticks for a wall-clock (ms since epoch) or relative (ms) axis. */
function timeTicks(a, b, n, relative) {
  const span = b - a;
  let step = TIME_STEPS.find((s) => span / s <= n) || niceStep(span / n);
  const off = relative || step >= DAY ? 0 : -new Date(a).getTimezoneOffset() * MIN;
  const out = [];
  const first = Math.ceil((a + off) / step) * step - off;
  for (let v = first, i = 0; v <= b && i < 100; i++, v = first + i * step) {
    out.push({ v, label: relative ? fmtRel(v) : clockLabel(v, step, span) });
  }
  return out;
}

function clockLabel(ms, step, span) {
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, '0');
  if (step >= DAY) return `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  const t = step < MIN ? `${hm}:${p(d.getSeconds())}` : hm;
  return span > DAY && d.getHours() === 0 && d.getMinutes() === 0 ? `${p(d.getMonth() + 1)}-${p(d.getDate())}` : t;
}

/** fmtRel labels a relative time span: "850ms", "45s", "2m30s", "1h20m", "3d4h". */
export function fmtRel(ms) {
  ms = Math.round(ms);
  if (ms === 0) return '0';
  if (ms < S) return `${ms}ms`;
  if (ms < MIN) return `${trimZeros((ms / S).toFixed(ms % S ? 1 : 0))}s`;
  const s = Math.round(ms / S);
  if (ms < HOUR) { const m = Math.floor(s / 60), r = s % 60; return r ? `${m}m${r}s` : `${m}m`; }
  if (ms < DAY) { const hr = Math.floor(s / 3600), m = Math.round((s % 3600) / 60); return m ? `${hr}h${m}m` : `${hr}h`; }
  const d = Math.floor(s / 86400), hr = Math.round((s % 86400) / 3600);
  return hr ? `${d}d${hr}h` : `${d}d`;
}
