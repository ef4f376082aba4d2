// compare page: /compare?runs=<id>,<id>,... Overlaid metric charts, a
// params/metrics/tags diff table, and a parallel-coordinates plot of chosen
// params against one metric.
import {
  route, h, clear, api, breadcrumbs, errorBox, fmtNumber, runHref, experimentHref, isUserTag, setQuery,
} from '../lib.js';
import { metricCharts, runColor, chartSettings, niceTicks, fmtTick } from '../chart.js';

const MAX_RUNS = 100;
const DEFAULT_KEYS = 6;

route('/compare', 'compare', async (ctx) => {
  const { main, signal } = ctx;
  const ids = [...new Set((ctx.query.get('runs') || '').split(',').map((s) => s.trim()).filter(Boolean))];
  if (!ids.length) {
    clear(main, breadcrumbs(['Experiments', '/experiments'], ['Compare runs']),
      h('h1', null, 'Compare runs'),
      h('div', { class: 'panel empty' }, 'No runs selected. Select two or more runs in an experiment\'s runs table and choose Compare.'));
    return;
  }
  const wanted = ids.slice(0, MAX_RUNS);
  const results = await Promise.all(wanted.map((id) => api.get('runs/get', { run_id: id }, { signal })
    .then((r) => ({ id, run: r.run }), (err) => ({ id, err }))));
  if (signal.aborted) return;
  const aborted = results.find((r) => r.err && r.err.name === 'AbortError');
  if (aborted) return;
  const failed = results.filter((r) => r.err);
  const loaded = results.filter((r) => r.run);
  if (!loaded.length) {
    clear(main, breadcrumbs(['Experiments', '/experiments'], ['Compare runs']), h('h1', null, 'Compare runs'),
      failed.map((f) => errorBox(f.err)));
    return;
  }

  const expIds = [...new Set(loaded.map((r) => r.run.info.experiment_id))];
  const exps = new Map();
  await Promise.all(expIds.map((id) => api.get('experiments/get', { experiment_id: id }, { signal })
    .then((r) => exps.set(id, r.experiment), () => exps.set(id, null))));
  if (signal.aborted) return;

  const runs = loaded.map(({ run }, i) => {
    const d = run.data || {};
    const params = {}, metrics = {}, tags = {};
    for (const p of d.params || []) params[p.key] = p.value;
    for (const m of d.metrics || []) metrics[m.key] = m.value;
    for (const t of d.tags || []) if (isUserTag(t.key)) tags[t.key] = t.value;
    return {
      i, id: run.info.run_id, name: run.info.run_name || run.info.run_id, info: run.info, color: runColor(i),
      params, metrics, tags, badge: null,
    };
  });

  // ----- head
  const expName = (id) => (exps.get(id) && exps.get(id).name) || `Experiment ${id}`;
  const crumbs = expIds.length === 1
    ? breadcrumbs(['Experiments', '/experiments'], [expName(expIds[0]), experimentHref(expIds[0])], ['Compare runs'])
    : breadcrumbs(['Experiments', '/experiments'], [`${expIds.length} experiments`, experimentHref(expIds.join(','))], ['Compare runs']);
  const runList = h('ul', { class: 'compare-runs', 'aria-label': 'Compared runs' }, runs.map((r) => {
    r.badge = h('span', { class: `badge status-${r.info.status}` }, r.info.status);
    return h('li', { class: 'compare-run' },
      h('span', { class: 'swatch', style: { background: r.color }, 'aria-hidden': 'true' }),
      h('a', { href: runHref(r.info.experiment_id, r.id), class: 'run-link', title: r.id }, r.name),
      r.badge,
      expIds.length > 1 ? h('span', { class: 'muted small' }, expName(r.info.experiment_id)) : null);
  }));
  if (runs.length > 12) {
    // a long run list folds after the first dozen
    const extra = [...runList.children].slice(12);
    extra.forEach((li) => { li.hidden = true; });
    const more = h('li', null, h('button', { type: 'button', class: 'btn btn-small', 'aria-expanded': 'false' }, `Show all ${runs.length} runs`));
    more.firstChild.addEventListener('click', () => {
      const open = more.firstChild.getAttribute('aria-expanded') !== 'true';
      extra.forEach((li) => { li.hidden = !open; });
      more.firstChild.setAttribute('aria-expanded', String(open));
      more.firstChild.textContent = open ? 'Show fewer' : `Show all ${runs.length} runs`;
    });
    runList.append(more);
  }
  const notes = [];
  if (ids.length > MAX_RUNS) notes.push(h('div', { class: 'error-box', role: 'alert' }, `Only the first ${MAX_RUNS} of ${ids.length} runs are compared.`));
  for (const f of failed) notes.push(h('div', { class: 'error-box', role: 'alert' }, `Run ${f.id} could not be loaded: `, f.err.message || String(f.err)));

  // ----- metric charts
  const metricKeys = keyUnion(runs, 'metrics');
  const settings = chartSettings();
  const fromQuery = (ctx.query.get('keys') || '').split(',').filter((k) => metricKeys.includes(k));
  const chosenKeys = new Set(fromQuery.length ? fromQuery : defaultKeys(runs, metricKeys));
  const chartBox = h('div', { class: 'compare-charts' });
  let charts = null;
  const onRunUpdate = (run) => {
    const r = runs.find((x) => x.id === run.info.run_id);
    if (!r || !r.badge) return;
    r.info.status = run.info.status;
    r.badge.className = `badge status-${run.info.status}`;
    r.badge.textContent = run.info.status;
  };
  const buildCharts = () => {
    if (charts) charts.destroy();
    const keys = metricKeys.filter((k) => chosenKeys.has(k));
    charts = metricCharts({
      runs: runs.map((r) => ({ run_id: r.id, run_name: r.name, experiment_id: r.info.experiment_id, status: r.info.status })),
      keys, settings, onLeave: ctx.onLeave, signal, onRunUpdate,
      colors: Object.fromEntries(runs.map((r) => [r.id, r.color])),
    });
    clear(chartBox, keys.length ? charts : h('p', { class: 'empty' }, metricKeys.length ? 'Choose metrics to chart.' : 'These runs have no metrics.'));
    return charts.ready;
  };
  const keyPicker = picker({
    label: 'Metrics', items: metricKeys, selected: chosenKeys, id: 'cmp-keys', signal,
    onChange: () => { setQuery({ keys: [...chosenKeys].join(',') }, { render: false }); buildCharts(); },
  });
  const chartsPanel = h('section', { class: 'panel compare-section', 'aria-labelledby': 'cmp-charts-h' },
    h('div', { class: 'section-head' }, h('h2', { id: 'cmp-charts-h' }, 'Metrics'), metricKeys.length ? keyPicker : null),
    chartBox);

  // ----- diff table
  const diffPanel = diffTable(runs, ctx);

  // ----- parallel coordinates
  const pcPanel = parallelPanel(runs, metricKeys, [...chosenKeys], ctx);

  clear(main, crumbs,
    h('div', { class: 'page-head' }, h('h1', null, `Compare ${runs.length} run${runs.length === 1 ? '' : 's'}`)),
    runList, notes, chartsPanel, diffPanel.el, pcPanel.el);
  pcPanel.draw();
  if (metricKeys.length) await buildCharts();
});

// ---------------------------------------------------------------- helpers

function keyUnion(runs, field) {
  const s = new Set();
  for (const r of runs) for (const k of Object.keys(r[field])) s.add(k);
  return [...s].sort(natural);
}

function natural(a, b) { return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: 'base' }); }

function defaultKeys(runs, keys) {
  const count = (k) => runs.reduce((n, r) => n + (k in r.metrics ? 1 : 0), 0);
  return [...keys].sort((a, b) => count(b) - count(a) || natural(a, b)).slice(0, DEFAULT_KEYS);
}

/** differs reports whether runs disagree on a key of field (a missing value counts as a difference). */
function differs(runs, field, key) {
  if (runs.length < 2) return false;
  const first = runs[0][field][key];
  return runs.some((r) => r[field][key] !== first);
}

/** picker is a disclosure with a filterable checkbox list; it mutates selected (a Set). */
function picker({ label, items, selected, onChange, id, signal, limit = 300 }) {
  const summaryCount = h('span', { class: 'picker-count' });
  const list = h('ul', { class: 'picker-list', id: id + '-list' });
  const filter = h('input', { type: 'search', class: 'picker-filter', placeholder: `Filter ${label.toLowerCase()}…`, 'aria-label': `Filter ${label.toLowerCase()}`, 'aria-controls': id + '-list' });
  const note = h('p', { class: 'muted small picker-note' });
  const update = () => { summaryCount.textContent = `${selected.size} of ${items.length}`; };
  const drawList = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = items.filter((k) => !q || k.toLowerCase().includes(q));
    clear(list, shown.slice(0, limit).map((k, n) => {
      const cid = `${id}-${n}`;
      const box = h('input', { type: 'checkbox', id: cid, checked: selected.has(k), dataset: { key: k } });
      box.addEventListener('change', () => { if (box.checked) selected.add(k); else selected.delete(k); update(); onChange(); });
      return h('li', null, box, h('label', { for: cid, title: k }, k));
    }));
    note.textContent = shown.length > limit ? `Showing ${limit} of ${shown.length}; type to narrow the list.` : shown.length ? '' : 'Nothing matches.';
  };
  filter.addEventListener('input', drawList);
  const clearBtn = h('button', { type: 'button', class: 'btn btn-small' }, 'Clear');
  clearBtn.addEventListener('click', () => { selected.clear(); drawList(); update(); onChange(); });
  const el = h('details', { class: 'picker', id },
    h('summary', { class: 'btn btn-small' }, `${label}: `, summaryCount),
    h('div', { class: 'picker-body' }, h('div', { class: 'picker-tools' }, filter, clearBtn), list, note));
  update();
  drawList();
  el.addEventListener('keydown', (e) => { if (e.key === 'Escape' && el.open) { el.open = false; el.querySelector('summary').focus(); } });
  // a click elsewhere closes the list
  document.addEventListener('click', (e) => { if (el.open && !el.contains(e.target)) el.open = false; }, { signal });
  return el;
}

// ---------------------------------------------------------------- diff table

function diffTable(runs, ctx) {
  const sections = [['Parameters', 'params'], ['Metrics', 'metrics'], ['Tags', 'tags']];
  const onlyDiff = h('input', { type: 'checkbox', id: 'cmp-only-diff', class: 'only-diff', checked: ctx.query.get('diff') === '1' });
  const counts = h('span', { class: 'muted small diff-counts' });
  const tbody = h('tbody');
  const rowsByGroup = [];
  let total = 0, differing = 0;
  for (const [title, field] of sections) {
    const keys = keyUnion(runs, field);
    const group = h('tr', { class: 'group-row' }, h('th', { scope: 'colgroup', colspan: runs.length + 1 }, `${title} `, h('span', { class: 'muted' }, `(${keys.length})`)));
    const rows = keys.map((k) => {
      const diff = differs(runs, field, k);
      total++;
      if (diff) differing++;
      return h('tr', { class: diff ? 'diff' : null, dataset: { key: k, field } },
        h('th', { scope: 'row', class: 'row-key', title: k }, k),
        runs.map((r) => {
          const v = r[field][k];
          if (v === undefined) return h('td', { class: 'missing' }, h('span', { class: 'muted', title: 'Not set' }, '—'));
          return field === 'metrics' ? h('td', { class: 'num' }, fmtNumber(v)) : h('td', { class: 'wrap cell-value' }, String(v));
        }));
    });
    rowsByGroup.push({ group, rows, empty: !keys.length });
    tbody.append(group, ...rows);
    if (!keys.length) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: runs.length + 1, class: 'muted' }, `No ${title.toLowerCase()}.`)));
  }
  const noDiff = h('p', { class: 'empty', hidden: true }, 'These runs do not differ in any parameter, metric or tag.');
  const apply = () => {
    const on = onlyDiff.checked;
    for (const g of rowsByGroup) {
      let visible = 0;
      for (const r of g.rows) { const show = !on || r.classList.contains('diff'); r.hidden = !show; if (show) visible++; }
      g.group.hidden = on && !visible;
      const emptyRow = g.group.nextElementSibling;
      if (g.empty && emptyRow) emptyRow.hidden = on;
    }
    noDiff.hidden = !(on && differing === 0);
    counts.textContent = `${differing} of ${total} rows differ`;
  };
  onlyDiff.addEventListener('change', () => { apply(); setQuery({ diff: onlyDiff.checked ? '1' : '' }, { render: false }); });
  const table = h('table', { class: 'data diff-table' },
    h('caption', { class: 'visually-hidden' }, 'Parameters, metrics and tags of the compared runs; rows that differ are highlighted'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'row-key' }, 'Name'),
      runs.map((r) => h('th', { scope: 'col', class: 'run-col' },
        h('span', { class: 'swatch', style: { background: r.color }, 'aria-hidden': 'true' }),
        h('a', { href: runHref(r.info.experiment_id, r.id), title: r.name }, r.name))))),
    tbody);
  apply();
  const el = h('section', { class: 'panel compare-section', 'aria-labelledby': 'cmp-diff-h' },
    h('div', { class: 'section-head' },
      h('h2', { id: 'cmp-diff-h' }, 'Parameters, metrics and tags'),
      h('label', { class: 'check', for: 'cmp-only-diff' }, onlyDiff, 'Only show differences'),
      counts,
      h('span', { class: 'diff-legend small' }, h('span', { class: 'diff-swatch', 'aria-hidden': 'true' }), 'differs')),
    h('div', { class: 'table-wrap diff-wrap' }, table), noDiff);
  return { el };
}

// ---------------------------------------------------------------- parallel coordinates

// GRADIENT runs from low (dark blue) to high (burnt orange) metric values;
// every stop keeps at least 3:1 contrast on white.
const GRADIENT = [[43, 58, 140], [36, 112, 176], [22, 140, 128], [191, 136, 0], [200, 70, 27]];

function gradient(t) {
  if (!isFinite(t)) return '#9aa3ad';
  t = Math.max(0, Math.min(1, t));
  const x = t * (GRADIENT.length - 1);
  const i = Math.min(GRADIENT.length - 2, Math.floor(x));
  const f = x - i;
  const c = GRADIENT[i].map((v, j) => Math.round(v + (GRADIENT[i + 1][j] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function numeric(v) {
  if (v === undefined || v === null) return NaN;
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  if (s === '' || s === 'NaN') return NaN;
  return Number(s);
}

function parallelPanel(runs, metricKeys, chartKeys, ctx) {
  const paramKeys = keyUnion(runs, 'params');
  const differing = paramKeys.filter((k) => differs(runs, 'params', k));
  const isNum = (k) => runs.every((r) => r.params[k] === undefined || isFinite(numeric(r.params[k])));
  const defaults = (differing.length ? differing : paramKeys).slice().sort((a, b) => Number(isNum(b)) - Number(isNum(a)) || natural(a, b)).slice(0, 5);
  const chosen = new Set(defaults);
  let metric = chartKeys.find((k) => metricKeys.includes(k)) || metricKeys[0] || '';

  const canvas = h('canvas', { class: 'pc-canvas', role: 'img', tabindex: 0, 'aria-label': 'Parallel coordinates plot' });
  const tip = h('div', { class: 'chart-tooltip', hidden: true, 'aria-hidden': 'true' });
  const status = h('div', { class: 'chart-status', hidden: true });
  const plot = h('div', { class: 'pc-plot' }, canvas, tip, status);
  const scroller = h('div', { class: 'pc-scroll' }, plot);
  const lowLabel = h('span', { class: 'pc-low' }), highLabel = h('span', { class: 'pc-high' });
  const bar = h('span', { class: 'pc-bar', 'aria-hidden': 'true' });
  bar.style.background = `linear-gradient(to right, ${GRADIENT.map((_, i) => gradient(i / (GRADIENT.length - 1))).join(', ')})`;
  const scale = h('div', { class: 'pc-scale small' }, h('span', { class: 'pc-scale-title' }), lowLabel, bar, highLabel);
  const metricSelect = h('select', { id: 'cmp-pc-metric', class: 'pc-metric' },
    metricKeys.length ? metricKeys.map((k) => h('option', { value: k, selected: k === metric }, k)) : h('option', { value: '' }, 'No metrics'));
  metricSelect.addEventListener('change', () => { metric = metricSelect.value; draw(); });
  const paramPicker = picker({ label: 'Parameters', items: paramKeys, selected: chosen, id: 'cmp-pc-params', signal: ctx.signal, onChange: () => draw() });

  let highlight = -1;
  let layout = null;

  const el = h('section', { class: 'panel compare-section', 'aria-labelledby': 'cmp-pc-h' },
    h('div', { class: 'section-head' },
      h('h2', { id: 'cmp-pc-h' }, 'Parallel coordinates'),
      paramKeys.length ? paramPicker : null,
      h('label', { for: 'cmp-pc-metric', class: 'inline-label' }, 'Colour by metric'), metricSelect),
    scroller, scale,
    h('p', { class: 'muted small pc-help' }, 'One line per run, coloured by the metric. Numeric parameters are scaled linearly; text parameters are spaced by value; “—” marks a missing value. Hover over a line (or focus the plot and use the arrow keys) to see its run; click or press Enter to open it.'));

  function axesOf() {
    const axes = paramKeys.filter((k) => chosen.has(k)).map((k) => axis(k, 'param', runs.map((r) => r.params[k])));
    if (metric) axes.push(axis(metric, 'metric', runs.map((r) => r.metrics[metric])));
    return axes;
  }

  function axis(name, kind, raw) {
    const present = raw.filter((v) => v !== undefined && !(kind === 'metric' && !isFinite(numeric(v))));
    const isNumber = kind === 'metric' || (present.length > 0 && present.every((v) => isFinite(numeric(v))));
    const a = { name, kind, raw, numeric: isNumber, missing: false, pos: [] };
    if (isNumber) {
      const vals = raw.map((v) => (v === undefined ? NaN : numeric(v)));
      const fin = vals.filter((v) => isFinite(v) && Math.abs(v) < 1.7e308);
      a.min = fin.length ? Math.min(...fin) : 0;
      a.max = fin.length ? Math.max(...fin) : 1;
      const span = a.max - a.min;
      a.pos = vals.map((v) => (isFinite(v) && Math.abs(v) < 1.7e308 ? (span > 0 ? (v - a.min) / span : 0.5) : null));
      a.norm = a.pos.slice();
      a.ticks = span > 0 ? niceTicks(a.min, a.max, 4).map((t) => ({ p: (t.v - a.min) / span, label: t.label })) : [{ p: 0.5, label: fmtTick(a.min, Math.abs(a.min) / 10 || 1) }];
    } else {
      const cats = [...new Set(present.map(String))].sort(natural);
      const idx = new Map(cats.map((c, i) => [c, i]));
      a.pos = raw.map((v) => (v === undefined ? null : cats.length === 1 ? 0.5 : idx.get(String(v)) / (cats.length - 1)));
      a.ticks = cats.map((c, i) => ({ p: cats.length === 1 ? 0.5 : i / (cats.length - 1), label: c }));
    }
    a.missing = a.pos.some((p) => p === null);
    return a;
  }

  function draw() {
    // below about 96px per axis the plot scrolls sideways instead of squeezing
    const axesN = [...chosen].filter((k) => paramKeys.includes(k)).length + (metric ? 1 : 0);
    const avail = scroller.clientWidth;
    const need = Math.max(0, axesN - 1) * 96 + 80;
    const W = Math.max(avail, need), H = plot.clientHeight;
    plot.style.width = W > avail ? W + 'px' : '';
    if (!W || !H) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    const c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.fillStyle = '#fff';
    c.fillRect(0, 0, W, H);
    tip.hidden = true;
    const axes = axesOf();
    layout = null;
    const few = axes.length < 2;
    plot.classList.toggle('pc-empty', few);
    if (few) {
      status.textContent = !paramKeys.length ? 'These runs have no parameters to plot.' : 'Pick at least one parameter to plot against the metric.';
      status.hidden = false;
    } else status.hidden = true;
    const metricAxis = axes.find((a) => a.kind === 'metric');
    lowLabel.textContent = metricAxis ? fmtNumber(metricAxis.min) : '';
    highLabel.textContent = metricAxis ? fmtNumber(metricAxis.max) : '';
    scale.querySelector('.pc-scale-title').textContent = metricAxis ? `${metricAxis.name}:` : '';
    scale.hidden = !metricAxis || few;
    if (few) return;

    const narrow = W < 600;
    const m = { l: narrow ? 52 : 72, r: narrow ? 52 : 72, t: 50, b: 34 };
    const ph = H - m.t - m.b;
    const gap = (W - m.l - m.r) / (axes.length - 1);
    const ax = (i) => m.l + i * gap;
    const ay = (p) => (p === null ? m.t + ph + 20 : m.t + (1 - p) * ph);
    const colorOf = (ri) => (metricAxis && metricAxis.norm[ri] !== null ? gradient(metricAxis.norm[ri]) : '#9aa3ad');
    const points = runs.map((r, ri) => axes.map((a, i) => [ax(i), ay(a.pos[ri])]));

    // lines: missing metric first, then by metric value so the highest sit on top
    const order = runs.map((_, i) => i).sort((a, b) => {
      const va = metricAxis ? metricAxis.norm[a] : 0, vb = metricAxis ? metricAxis.norm[b] : 0;
      return (va === null ? -1 : va) - (vb === null ? -1 : vb);
    });
    c.lineJoin = 'round';
    for (const ri of order) {
      const hl = highlight === ri;
      if (hl) continue;
      c.globalAlpha = highlight >= 0 ? 0.18 : 0.85;
      c.strokeStyle = colorOf(ri);
      c.lineWidth = 1.6;
      if (metricAxis && metricAxis.norm[ri] === null) c.setLineDash([4, 3]); else c.setLineDash([]);
      c.beginPath();
      points[ri].forEach(([x, y], i) => (i ? c.lineTo(x, y) : c.moveTo(x, y)));
      c.stroke();
    }
    c.setLineDash([]);
    c.globalAlpha = 1;

    // axes
    c.font = FONT;
    for (let i = 0; i < axes.length; i++) {
      const a = axes[i], x = Math.round(ax(i)) + 0.5;
      c.strokeStyle = '#7d8894';
      c.lineWidth = 1;
      c.beginPath();
      c.moveTo(x, m.t); c.lineTo(x, m.t + ph);
      c.stroke();
      // ticks: labels left of each axis, right of the last one (the
      // outer axes keep their labels outside the lines)
      const leftSide = i < axes.length - 1;
      c.textAlign = leftSide ? 'right' : 'left';
      c.textBaseline = 'middle';
      const maxLabel = i === 0 ? m.l - 10 : i === axes.length - 1 ? m.r - 10 : Math.max(30, Math.min(gap - 16, 120));
      let ticks = a.ticks;
      if (a.numeric && a.max > a.min) {
        // label the ends with the exact extremes; drop nice ticks too close to them
        const ends = [{ p: 0, label: fmtNumber(a.min) }, { p: 1, label: fmtNumber(a.max) }];
        ticks = ends.concat(ticks.filter((t) => t.p * ph > 16 && (1 - t.p) * ph > 16));
      }
      const room = Math.max(2, Math.floor(ph / 16));
      if (ticks.length > room) { const every = Math.ceil(ticks.length / room); ticks = ticks.filter((_, j) => j % every === 0 || j === ticks.length - 1); }
      for (const t of ticks) {
        const y = ay(t.p);
        c.beginPath(); c.moveTo(x - 3, y); c.lineTo(x + 3, y); c.stroke();
        halo(c, ellipsis(c, t.label, maxLabel), leftSide ? x - 6 : x + 6, y);
      }
      if (a.missing) {
        const y = ay(null);
        c.fillStyle = '#7d8894';
        c.beginPath(); c.arc(x, y, 2, 0, Math.PI * 2); c.fill();
        halo(c, '—', leftSide ? x - 6 : x + 6, y);
      }
      // title
      c.font = a.kind === 'metric' ? '600 12px system-ui, sans-serif' : '12px system-ui, sans-serif';
      c.fillStyle = '#1c2430';
      c.textBaseline = 'bottom';
      c.textAlign = i === 0 && narrow ? 'left' : i === axes.length - 1 && narrow ? 'right' : 'center';
      const tx = c.textAlign === 'left' ? x - 6 : c.textAlign === 'right' ? x + 6 : x;
      c.fillText(ellipsis(c, a.name, Math.max(40, gap - 8)), tx, m.t - 22);
      c.font = FONT;
      c.fillStyle = '#55606e';
      c.fillText(a.kind === 'metric' ? 'metric' : a.numeric ? 'param' : 'param (text)', tx, m.t - 9);
    }

    // highlighted run on top
    if (highlight >= 0) {
      c.globalAlpha = 1;
      c.strokeStyle = '#fff';
      c.lineWidth = 5;
      c.beginPath();
      points[highlight].forEach(([x, y], i) => (i ? c.lineTo(x, y) : c.moveTo(x, y)));
      c.stroke();
      c.strokeStyle = colorOf(highlight);
      c.lineWidth = 3;
      c.stroke();
      c.fillStyle = colorOf(highlight);
      for (const [x, y] of points[highlight]) { c.beginPath(); c.arc(x, y, 3.5, 0, Math.PI * 2); c.fill(); }
    }

    layout = { axes, points, W };
    canvas.setAttribute('aria-label', `Parallel coordinates of ${runs.length} runs over ${axes.filter((a) => a.kind === 'param').map((a) => a.name).join(', ')}` +
      (metricAxis ? `, coloured by ${metricAxis.name} from ${fmtNumber(metricAxis.min)} to ${fmtNumber(metricAxis.max)}` : ''));
  }

  function nearestRun(px, py) {
    if (!layout) return -1;
    let best = -1, bestD = 8;
    layout.points.forEach((pts, ri) => {
      for (let i = 1; i < pts.length; i++) {
        const d = segDist(px, py, pts[i - 1], pts[i]);
        if (d < bestD) { bestD = d; best = ri; }
      }
    });
    return best;
  }

  plot.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const ri = nearestRun(px, py);
    if (ri !== highlight) { highlight = ri; draw(); }
    plot.style.cursor = ri >= 0 ? 'pointer' : '';
    showTip(ri, px, py);
  });
  // keyboard: arrows step through the runs, Enter opens the highlighted one
  canvas.addEventListener('keydown', (e) => {
    if (!layout) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowRight' || e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
      e.preventDefault();
      const d = e.key === 'ArrowDown' || e.key === 'ArrowRight' ? 1 : -1;
      highlight = highlight < 0 ? (d > 0 ? 0 : runs.length - 1) : (highlight + d + runs.length) % runs.length;
      draw();
      const pts = layout.points[highlight];
      const [x, y] = pts[pts.length - 1];
      showTip(highlight, x, y);
    } else if (e.key === 'Escape') {
      highlight = -1; draw();
    } else if (e.key === 'Enter' && highlight >= 0) {
      openRun(highlight);
    }
  });
  canvas.addEventListener('blur', () => { if (highlight >= 0) { highlight = -1; draw(); } });
  function showTip(ri, px, py) {
    if (ri < 0 || !layout) { tip.hidden = true; return; }
    const run = runs[ri];
    clear(tip,
      h('div', { class: 'tip-head' }, h('span', { class: 'swatch', style: { background: run.color } }), ' ', run.name),
      h('table', null, h('tbody', null, layout.axes.map((a) => {
        const v = a.raw[ri];
        return h('tr', null, h('td', { class: 'tip-name' }, a.name), h('td', { class: 'tip-num' }, v === undefined ? '—' : a.kind === 'metric' ? fmtNumber(v) : String(v)));
      }))));
    tip.hidden = false;
    const tw = tip.offsetWidth;
    let left = px + 14;
    if (left + tw > layout.W) left = Math.max(0, px - 14 - tw);
    tip.style.left = left + 'px';
    tip.style.top = Math.max(0, Math.min(py - 10, plot.clientHeight - tip.offsetHeight)) + 'px';
  }
  plot.addEventListener('mouseleave', () => { if (highlight >= 0) { highlight = -1; draw(); } tip.hidden = true; });
  plot.addEventListener('click', (e) => {
    // a click on a highlighted line opens that run
    if (highlight < 0 || e.button !== 0) return;
    openRun(highlight);
  });
  function openRun(ri) {
    const r = runs[ri];
    const a = h('a', { href: runHref(r.info.experiment_id, r.id) });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  if (typeof ResizeObserver === 'function') {
    let pending = false;
    const ro = new ResizeObserver(() => {
      if (!scroller.clientWidth) return;
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; draw(); });
    });
    ro.observe(scroller);
    ctx.onLeave(() => ro.disconnect());
  }
  return { el, draw };
}

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

function halo(c, text, x, y) {
  c.save();
  c.strokeStyle = 'rgba(255,255,255,0.9)';
  c.lineWidth = 3;
  c.lineJoin = 'round';
  c.strokeText(text, x, y);
  c.fillStyle = '#3a4552';
  c.fillText(text, x, y);
  c.restore();
}

function ellipsis(c, text, max) {
  text = String(text);
  if (c.measureText(text).width <= max) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (c.measureText(text.slice(0, mid) + '…').width <= max) lo = mid; else hi = mid - 1;
  }
  return text.slice(0, lo) + '…';
}

function segDist(px, py, [x1, y1], [x2, y2]) {
  const dx = x2 - x1, dy = y2 - y1;
  const len = dx * dx + dy * dy;
  let t = len ? ((px - x1) * dx + (py - y1) * dy) / len : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}
