// chart.js: metric charts (placeholder until the chart component lands).
import { h } from './lib.js';

/**
 * metricCharts renders charts of the given metric keys for the given runs
 * into a returned element, loading data asynchronously.
 * opts: {runs: [{run_id, run_name, experiment_id, status}], keys: [string],
 * onLeave: ctx.onLeave (stops auto-refresh), signal: ctx.signal}.
 */
export function metricCharts(opts) {
  return h('div', { class: 'chart-grid' }, (opts.keys || []).map((k) => h('div', { class: 'chart-card' }, k)));
}
