// registry-common.js: pieces the registered-models pages (models.js) and
// the prompts pages (prompts.js) share: prompts are registered models
// (tagged mlflow.prompt.is_prompt), so their lists show the same cells.
import { h, setQuery, debounce, trunc, timeCell } from '../lib.js';

/**
 * quote wraps a value for a registry filter, which has no escapes: single
 * quotes, else double quotes, else single quotes with each ' turned into
 * '_' (which matches any one character under LIKE).
 */
export function quote(s) {
  if (!s.includes("'")) return `'${s}'`;
  if (!s.includes('"')) return `"${s}"`;
  return `'${s.replace(/'/g, '_')}'`;
}

/** dash is the muted "—" of an empty cell. */
export function dash() { return h('span', { class: 'muted' }, '—'); }

/** userTags leaves out MLflow's own tags (mlflow.* and _mlflow_*). */
export function userTags(list) {
  return (list || []).filter((t) => !t.key.startsWith('mlflow.') && !t.key.startsWith('_mlflow_'));
}

/** tagChips shows the user's tags as chips (values cut at 24 characters), or a dash. */
export function tagChips(list) {
  const tags = userTags(list);
  if (!tags.length) return dash();
  return tags.map((t) => h('span', { class: 'chip', title: `${t.key}: ${t.value}` }, h('b', null, t.key), t.value ? ' ' + trunc(t.value, 24) : ''));
}

/** aliasChip shows @alias (and the version it names when given), with a × button when onDelete is set. */
export function aliasChip(alias, version, onDelete) {
  return h('span', { class: 'chip alias-chip' },
    h('b', null, '@' + alias),
    version !== undefined ? h('span', { class: 'muted' }, `v${version}`) : null,
    onDelete ? h('button', { type: 'button', class: 'chip-x', 'aria-label': `Delete alias ${alias}`, title: 'Delete alias', onclick: onDelete }, '×') : null);
}

/** nameCell is a list row's first cell: the name linking to href, the description's start below it. */
export function nameCell(m, href, linkClass) {
  return h('td', null, h('a', { href, class: linkClass }, m.name),
    m.description ? h('div', { class: 'muted small desc-line' }, trunc(m.description, 80)) : null);
}

/** listCells are a registered model's (or prompt's) Aliases, Tags and Last modified cells. */
export function listCells(m) {
  return [
    h('td', { class: 'wrap', 'data-label': 'Aliases' }, h('div', { class: 'cell-chips' },
      (m.aliases || []).length ? m.aliases.map((a) => aliasChip(a.alias, a.version)) : dash())),
    h('td', { class: 'wrap', 'data-label': 'Tags' }, h('div', { class: 'cell-chips' }, tagChips(m.tags))),
    h('td', { 'data-label': 'Last modified' }, timeCell(m.last_updated_timestamp)),
  ];
}

/**
 * nameSearch is a list's search-by-name box: typing (debounced) keeps the
 * text in state.q and the URL's q, and starts pager over at the first page.
 */
export function nameSearch({ id, label, state, pager }) {
  const input = h('input', {
    type: 'search', id, class: 'grow', value: state.q, placeholder: label, 'aria-label': label, autocomplete: 'off',
  });
  input.addEventListener('input', debounce(() => {
    state.q = input.value.trim();
    pager.reset();
    setQuery({ q: state.q }, { render: false });
    pager.load(0);
  }, 250));
  return input;
}
