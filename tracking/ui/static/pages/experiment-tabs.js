// experiment-tabs.js: the sections of one experiment (Runs, Traces,
// Models), each at its own address as MLflow's UI has them:
// /experiments/<id>, /experiments/<id>/traces and /experiments/<id>/models.
import { h, clear, api, breadcrumbs, errorBox, experimentHref } from '../lib.js';

const TABS = [
  ['runs', 'Runs', ''],
  ['traces', 'Traces', '/traces'],
  ['models', 'Models', '/models'],
];

/** tracesHref is the Traces tab of an experiment. */
export function tracesHref(experimentId) { return experimentHref(experimentId) + '/traces'; }

/** traceHref is one trace's page. */
export function traceHref(experimentId, traceId) {
  return `${tracesHref(experimentId)}/${encodeURIComponent(traceId)}`;
}

/** loggedModelsHref is the Models tab of an experiment. */
export function loggedModelsHref(experimentId) { return experimentHref(experimentId) + '/models'; }

/** loggedModelHref is one logged model's page. */
export function loggedModelHref(experimentId, modelId) {
  return `${loggedModelsHref(experimentId)}/${encodeURIComponent(modelId)}`;
}

/** experimentTabs is the strip of links to an experiment's sections; active is the current one. */
export function experimentTabs(experimentId, active) {
  return h('nav', { class: 'exp-tabs', 'aria-label': 'Experiment sections' },
    TABS.map(([key, label, suffix]) => h('a', {
      href: experimentHref(experimentId) + suffix, id: `exp-tab-${key}`,
      'aria-current': key === active ? 'page' : null,
    }, label)));
}

/**
 * loadExperiment fetches an experiment for a section page; on failure it
 * draws an explanation into ctx.main and resolves to null.
 */
export async function loadExperiment(ctx, id) {
  try {
    return (await api.get('experiments/get', { experiment_id: id }, { signal: ctx.signal })).experiment;
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    const denied = err.status === 403 || err.code === 'PERMISSION_DENIED';
    const missing = err.status === 404 || err.code === 'RESOURCE_DOES_NOT_EXIST';
    clear(ctx.main, breadcrumbs(['Experiments', '/experiments'], [id, null]),
      h('h1', null, denied ? 'You cannot see this experiment' : missing ? 'Experiment not found' : 'Could not load this experiment'),
      errorBox(err),
      denied ? h('p', { class: 'muted' }, 'Ask an owner of the experiment or an administrator to grant you access.') : null,
      h('p', null, h('a', { href: '/experiments' }, 'Back to the experiments')));
    return null;
  }
}

/** sectionHead is the top of a section page: breadcrumbs, the experiment's name and the tabs. */
export function sectionHead(exp, active, label) {
  return [
    breadcrumbs(['Experiments', '/experiments'], [exp.name, experimentHref(exp.experiment_id)], [label, null]),
    h('div', { class: 'page-head' }, h('h1', null, exp.name),
      exp.lifecycle_stage === 'deleted' ? h('span', { class: 'badge badge-deleted' }, 'deleted') : null),
    experimentTabs(exp.experiment_id, active),
  ];
}
