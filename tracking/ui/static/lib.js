// lib.js: the UI's small framework. An element builder, the REST client,
// the router, formatting helpers and a few shared widgets. Pages import
// what they need from here and register themselves with route().

// ---------------------------------------------------------------- elements

/**
 * h builds an element. attrs keys: "class", "text", "dataset" (object),
 * "style" (object), on<event> (function), boolean attributes (true/false),
 * anything else as an attribute. Children may be nodes, strings, numbers,
 * arrays, or null/undefined/false (skipped). Text is never parsed as HTML.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** clear empties el and appends children. */
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---------------------------------------------------------------- REST

/** ApiError is a failed REST call: MLflow's error_code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

/** viewer is who is looking (filled by loadViewer before the first page). */
export const viewer = { auth_enabled: false, authenticated: true, username: '', is_admin: false, csrf_token: '', session: false };

/** qs encodes params as a query string, repeating array values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

/**
 * request calls the server. url is absolute ("/ajax-api/...") or relative
 * to /ajax-api/2.0/mlflow/. GET params go to the query string; other
 * methods send body as JSON. Returns the decoded JSON (or the Response
 * when opts.raw). Throws ApiError; a 401 sends the viewer to the login
 * page when sessions are available.
 */
export async function request(method, url, body, opts = {}) {
  if (!url.startsWith('/')) url = '/ajax-api/2.0/mlflow/' + url;
  const headers = { 'X-Requested-With': 'mlflow-ui' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method === 'GET' || method === 'HEAD') {
    url += qs(body);
  } else {
    if (viewer.csrf_token) headers['X-CSRF-Token'] = viewer.csrf_token;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(url, init);
  if (res.status === 401 && viewer.auth_enabled && !opts.noRedirect) {
    goLogin();
    throw new ApiError(401, 'UNAUTHENTICATED', 'Please sign in.');
  }
  // Account area: a CSRF refusal after a sign-in in another tab (new
  // session, new token) is retried once with the current token.
  if (res.status === 403 && viewer.session && !opts.csrfRetried && method !== 'GET' && method !== 'HEAD') {
    const e = await errorOf(res.clone());
    const before = viewer.csrf_token;
    if (e.message === 'CSRF token missing or invalid.' && (await loadViewer()).csrf_token && viewer.csrf_token !== before) {
      return request(method, url, body, { ...opts, csrfRetried: true });
    }
  }
  if (opts.raw) {
    if (!res.ok) throw await errorOf(res);
    return res;
  }
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

async function errorOf(res) {
  let code = '', msg = '';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      code = j.error_code || '';
      msg = j.message || '';
    } catch {
      msg = text.slice(0, 300);
    }
  } catch { /* body unreadable */ }
  if (res.status === 403 && !msg) msg = 'You do not have permission to do this.';
  return new ApiError(res.status, code, msg || `HTTP ${res.status}`);
}

/** api is request bound to each method. */
export const api = {
  get: (url, params, opts) => request('GET', url, params, opts),
  post: (url, body, opts) => request('POST', url, body ?? {}, opts),
  patch: (url, body, opts) => request('PATCH', url, body ?? {}, opts),
  del: (url, body, opts) => request('DELETE', url, body ?? {}, opts),
};

/** loadViewer asks the server who is looking. */
export async function loadViewer() {
  try {
    const res = await fetch('/ui/whoami', { credentials: 'same-origin', headers: { 'X-Requested-With': 'mlflow-ui' } });
    if (res.ok) Object.assign(viewer, await res.json());
  } catch { /* offline: keep defaults */ }
  return viewer;
}

/**
 * permissionsFor asks the server what the viewer may do on the named
 * experiments (ids) and registered models (names). It resolves to
 * {experiment(id), model(name)}, each returning may(routeName) -> bool,
 * routeName being MLflow's RPC name (DeleteRun, RenameRegisteredModel…):
 * the server's authorization table answers, so pages show only the actions
 * that would succeed. With auth off, or when the answer is missing, every
 * action is shown (the API decides anyway).
 */
export async function permissionsFor({ experiments = [], models = [] } = {}, signal) {
  const everything = () => true;
  const allowAll = { experiment: () => everything, model: () => everything };
  if (!viewer.auth_enabled || !viewer.authenticated) return allowAll;
  const q = qs({ experiment_id: [...new Set(experiments.map(String))], registered_model: [...new Set(models)] });
  if (!q) return allowAll;
  let perms;
  try {
    const init = { credentials: 'same-origin', headers: { 'X-Requested-With': 'mlflow-ui' } };
    if (signal) init.signal = signal;
    const res = await fetch('/ui/whoami' + q, init);
    if (!res.ok) return allowAll;
    perms = (await res.json()).permissions;
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    return allowAll;
  }
  const pick = (table) => (key) => {
    const p = table && table[key];
    if (!p) return everything;
    const allowed = new Set(p.allowed || []);
    return (route) => allowed.has(route);
  };
  return { experiment: pick(perms && perms.experiments), model: pick(perms && perms.registered_models) };
}

function goLogin() {
  const here = location.pathname + location.search + (isMLflowHash() ? location.hash : '');
  if (location.pathname !== '/login') location.assign('/login' + qs({ next: here }));
}

// ---------------------------------------------------------------- router

const routes = [];
let current = null; // {leave: [fn], controller}
let hashRouter = null;

/**
 * setHashRouter installs the translator of MLflow's hash routes
 * ("/#/experiments/0/runs/<id>"): fn(hash, signal) resolves to {path} (the
 * page to show instead, replacing the address) or {name, render(ctx)} (a
 * page of its own under the same address).
 */
export function setHashRouter(fn) { hashRouter = fn; }

/** isMLflowHash reports whether the address is one of MLflow's hash routes. */
function isMLflowHash() {
  return hashRouter !== null && location.pathname === '/' && location.hash.startsWith('#/');
}

/**
 * route registers a page. pattern is a path with :name segments
 * ("/experiments/:id/runs/:runId"). render(ctx) draws into ctx.main and may
 * return a promise; ctx has params, query (URLSearchParams), main,
 * onLeave(fn) (called when the user navigates away), signal (aborted on
 * leave) and refresh() (re-renders the same URL).
 * opts.public marks pages shown without signing in (the login page).
 */
export function route(pattern, name, render, opts = {}) {
  const keys = [];
  const re = new RegExp('^' + pattern.replace(/\/:([A-Za-z]+)/g, (_, k) => { keys.push(k); return '/([^/]+)'; }) + '/?$');
  routes.push({ re, keys, name, render, public: !!opts.public, nav: opts.nav || name });
}

/** navigate moves to url inside the app (pushState) and renders it. */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  renderCurrent();
}

/** refresh re-renders the current URL. */
export function refresh() { renderCurrent(); }

/** setQuery replaces some query parameters of the current URL without a new history entry and re-renders. */
export function setQuery(changes, { render = true, push = false } = {}) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    q.delete(k);
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  const url = location.pathname + (s ? '?' + s : '');
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  if (render) renderCurrent();
}

function leaveCurrent() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.leave) { try { fn(); } catch { /* ignore */ } }
  current = null;
}

let renderSeq = 0;

async function renderCurrent() {
  const seq = ++renderSeq;
  leaveCurrent();
  const main = document.getElementById('main');
  document.body.dataset.ready = 'false';
  let special = null;
  if (isMLflowHash()) {
    const state = { leave: [], controller: new AbortController() };
    current = state;
    let target;
    try {
      target = await hashRouter(location.hash, state.controller.signal);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      target = { name: 'mlflow-link-unknown', render: (ctx) => clear(ctx.main, h('h1', null, 'Link not recognized'), errorBox(err)) };
    }
    if (seq !== renderSeq) return;
    current = null;
    if (target.path) history.replaceState(null, '', target.path);
    else special = target;
  }
  const path = decodeURIComponent(location.pathname) === '/' ? '/experiments' : location.pathname;
  let match = special ? { name: special.name, render: special.render, nav: '' } : null;
  let params = {};
  for (const r of special ? [] : routes) {
    const m = r.re.exec(path);
    if (m) {
      match = r;
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      break;
    }
  }
  const state = { leave: [], controller: new AbortController() };
  current = state;
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (match && a.dataset.nav === match.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!match) {
    clear(main, h('h1', null, 'Page not found'), h('p', null, 'Nothing lives at ', h('code', null, location.pathname), '. ', h('a', { href: '/experiments' }, 'Go to experiments')));
    finish(seq, 'notfound');
    return;
  }
  if (viewer.auth_enabled && !viewer.authenticated && !match.public) {
    goLogin();
    return;
  }
  const ctx = {
    params,
    query: new URLSearchParams(location.search),
    main,
    signal: state.controller.signal,
    onLeave: (fn) => state.leave.push(fn),
    refresh,
  };
  clear(main, h('p', { class: 'loading' }, 'Loading…'));
  try {
    await match.render(ctx);
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (seq !== renderSeq) return;
    clear(main, h('h1', null, 'Something went wrong'), errorBox(err));
  }
  finish(seq, match.name);
}

function finish(seq, name) {
  if (seq !== renderSeq) return;
  document.body.dataset.page = name;
  // Milliseconds since the document's navigation started: the page-ready
  // time the performance test reports.
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = 'true';
}

/** start loads the viewer, wires link interception and renders. */
export async function start() {
  await loadViewer();
  drawUserMenu();
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || a.dataset.external !== undefined) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !isAppPath(url.pathname)) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
    document.getElementById('main').focus({ preventScroll: true });
    window.scrollTo(0, 0);
  });
  window.addEventListener('popstate', renderCurrent);
  await renderCurrent();
}

function isAppPath(p) {
  return p === '/' || /^\/(experiments|compare|models|prompts|account|admin)(\/|$)/.test(p);
}

function drawUserMenu() {
  const box = document.getElementById('user-menu');
  if (!box) return;
  if (!viewer.auth_enabled) { clear(box); return; }
  if (!viewer.authenticated) { clear(box, h('a', { href: '/login' }, 'Sign in')); return; }
  const items = [h('span', { class: 'user-name', title: 'Signed in' }, viewer.username)];
  items.push(h('a', { href: '/account', 'data-nav': 'account' }, 'Account'));
  if (viewer.is_admin) items.push(h('a', { href: '/admin', 'data-nav': 'admin' }, 'Admin'));
  if (viewer.session) {
    const form = h('form', { method: 'post', action: '/logout', class: 'inline-form' },
      h('input', { type: 'hidden', name: 'csrf_token', value: viewer.csrf_token }),
      h('button', { type: 'submit', class: 'link-button' }, 'Sign out'));
    items.push(form);
  }
  clear(box, items);
}

// ---------------------------------------------------------------- formatting

/** fmtTime renders epoch milliseconds as local "YYYY-MM-DD HH:MM:SS". */
export function fmtTime(ms) {
  if (ms === undefined || ms === null || ms === '' || Number(ms) <= 0) return '—';
  const d = new Date(Number(ms));
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** fmtRelative renders epoch milliseconds as "3 min ago". */
export function fmtRelative(ms) {
  if (!ms) return '';
  const s = Math.round((Date.now() - Number(ms)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** fmtDuration renders a millisecond span as "1h 2m", "3.4s". */
export function fmtDuration(ms) {
  if (ms === undefined || ms === null || ms === '' || isNaN(ms) || ms < 0) return '—';
  ms = Number(ms);
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

/** fmtNumber renders a metric value compactly (NaN and ±Infinity included). */
export function fmtNumber(v) {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'string') {
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return v;
    v = Number(v);
  }
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

/** fmtBytes renders a size as "1.5 MiB". */
export function fmtBytes(n) {
  if (n === undefined || n === null || n === '') return '';
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * parseSort splits an MLflow order_by clause such as "name ASC" into
 * {key, asc}; no direction is descending, no clause sorts by defaultKey.
 */
export function parseSort(s, defaultKey) {
  const m = /^\s*(.*?)(?:\s+(ASC|DESC))?\s*$/i.exec(s || '');
  return { key: (m && m[1]) || defaultKey, asc: !!(m && m[2] && m[2].toUpperCase() === 'ASC') };
}

/** trunc shortens s to at most n characters, ending in '…' when cut. */
export function trunc(s, n) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// ---------------------------------------------------------------- widgets

/**
 * filterForm is a list's filter box for one of MLflow's search grammars:
 * the input #<id>-filter, a Search button that puts the text in the URL's
 * filter (a new history entry, so Back returns to the previous filter) and,
 * while a filter is on, Clear. help is the id of the syntax help, if any.
 * Returns {form, input, feedback}: feedback (#<id>-filter-error) is where
 * filterProblem shows what the server said about the filter.
 */
export function filterForm({ id, label, value, placeholder, help }) {
  const input = h('input', {
    type: 'search', id: `${id}-filter`, class: 'filter-input', name: 'filter', value,
    placeholder, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': help,
  });
  const form = h('form', { class: 'filter-form grow', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    setQuery({ filter: input.value.trim() }, { push: true });
  } },
  h('label', { for: `${id}-filter`, class: 'sr-only' }, label),
  input,
  h('button', { type: 'submit', class: 'btn' }, 'Search'),
  value ? h('button', { type: 'button', class: 'btn btn-link', onclick: () => setQuery({ filter: '' }, { push: true }) }, 'Clear') : null);
  const feedback = h('div', { id: `${id}-filter-error`, class: 'filter-feedback' });
  return { form, input, feedback, help };
}

/**
 * filterProblem shows a list's INVALID_PARAMETER_VALUE answer: about the
 * filter (one is on and the message is not about order_by), the box is
 * marked invalid; else the view (its order) cannot be shown, and when
 * resetSort is given a button calls it. box gets a short note instead of
 * the rows; nouns names them ("runs").
 */
export function filterProblem({ form, err, filter, box, nouns, resetSort }) {
  const { input, feedback, help } = form;
  const aboutFilter = !!filter && !/order_by|order by/i.test(err.message);
  if (aboutFilter) {
    input.classList.add('invalid');
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', help ? `${feedback.id} ${help}` : feedback.id);
  }
  clear(feedback, h('div', { class: 'error-box filter-error', role: 'alert' },
    h('strong', null, aboutFilter ? 'This filter cannot be used. ' : 'This view cannot be shown. '), err.message,
    !aboutFilter && resetSort ? h('button', { type: 'button', class: 'btn btn-small', onclick: resetSort }, 'Reset sorting') : null));
  clear(box, h('div', { class: 'panel empty' }, aboutFilter ? `Fix the filter above, or clear it, to see ${nouns}.` : `No ${nouns} to show.`));
}

/**
 * listFailed shows why page index of a filtered list could not be loaded:
 * for the first page, a bad filter or order (filterProblem, given problem's
 * form, filter, box, nouns and resetSort) or else the error itself in box,
 * with the pager's label emptied; for a later page (Next, Previous) a
 * notice, and the page shown stays.
 */
export function listFailed(pager, index, err, problem) {
  if (index > 0) { toast(err.message, 'error'); return; }
  if (err.code === 'INVALID_PARAMETER_VALUE') filterProblem({ ...problem, err });
  else clear(problem.box, errorBox(err));
  pager.clearInfo();
}

/**
 * syncRowChecks ticks the row checkboxes in box (input.row-select, whose
 * value is the row's id) that selected has, marks their rows .selected,
 * and sets the select-all box (input.select-all) to all, some or none.
 */
export function syncRowChecks(box, selected) {
  const boxes = box.querySelectorAll('input.row-select');
  let k = 0;
  for (const cb of boxes) {
    const on = selected.has(cb.value);
    if (cb.checked !== on) cb.checked = on;
    cb.closest('tr').classList.toggle('selected', on);
    if (on) k++;
  }
  const all = box.querySelector('input.select-all');
  if (all) {
    all.checked = boxes.length > 0 && k === boxes.length;
    all.indeterminate = k > 0 && k < boxes.length;
  }
}

/** timeCell shows epoch milliseconds as "3 min ago", the full time on hover. */
export function timeCell(ms) {
  return h('span', { title: fmtTime(ms) }, ms ? fmtRelative(ms) : '—');
}

/** errorBox renders an error for the user, with MLflow's error code. */
export function errorBox(err) {
  const code = err && err.code ? h('code', null, err.code) : null;
  return h('div', { class: 'error-box', role: 'alert' }, code, code ? ' ' : null, String((err && err.message) || err));
}

/** toast shows a short message that fades away. kind: "ok" or "error". */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}` }, message);
  box.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 3500);
}

/**
 * dialog opens a modal <dialog> with a form. fields: [{name, label, value,
 * type, required, placeholder, options}]. Resolves with the values, or null
 * when cancelled. validate(values) may return an error string.
 */
export function dialog({ title, fields = [], submit = 'Save', danger = false, message = '', validate }) {
  return new Promise((resolve) => {
    const inputs = {};
    const err = h('p', { class: 'form-error', role: 'alert' });
    const rows = fields.map((f) => {
      const id = 'dlg-' + f.name;
      let input;
      if (f.type === 'textarea') input = h('textarea', { id, name: f.name, rows: 6, placeholder: f.placeholder, required: f.required }, f.value || '');
      else if (f.type === 'select') input = h('select', { id, name: f.name }, f.options.map((o) => h('option', { value: o, selected: o === f.value }, o)));
      else input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value ?? '', placeholder: f.placeholder, required: f.required, autocomplete: 'off' });
      inputs[f.name] = input;
      return h('div', { class: 'field' }, h('label', { for: id }, f.label), input);
    });
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const ok = h('button', { type: 'submit', class: danger ? 'btn btn-danger' : 'btn btn-primary' }, submit);
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', null, title), message ? h('p', null, message) : null, rows, err, h('div', { class: 'dialog-actions' }, cancel, ok));
    const dlg = h('dialog', { class: 'modal', 'aria-label': title }, form);
    document.body.appendChild(dlg);
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    cancel.addEventListener('click', () => done(null));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(null); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const values = {};
      for (const [k, el] of Object.entries(inputs)) values[k] = el.value;
      const msg = validate ? validate(values) : '';
      if (msg) { err.textContent = msg; return; }
      done(values);
    });
    dlg.showModal();
    const first = fields.length ? inputs[fields[0].name] : ok;
    first.focus();
  });
}

/** confirm asks a yes/no question in a modal. */
export async function confirm(title, message, submit = 'Delete') {
  return (await dialog({ title, message, submit, danger: true })) !== null;
}

/**
 * action wraps an async UI action: runs fn, shows okMessage or the error
 * as a toast, and returns fn's result (undefined on error).
 */
export async function action(fn, okMessage) {
  try {
    const r = await fn();
    if (okMessage) toast(okMessage);
    return r;
  } catch (err) {
    toast(err.message || String(err), 'error');
    return undefined;
  }
}

/** breadcrumbs renders a trail of [label, href] pairs (last one is current). */
export function breadcrumbs(...items) {
  return h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' },
    h('ol', null, items.map(([label, href], i) => h('li', null,
      href && i < items.length - 1 ? h('a', { href }, label) : h('span', { 'aria-current': 'page' }, label)))));
}

/** tagsOf turns MLflow's [{key, value}] into a plain object. */
export function tagsOf(list) {
  const o = {};
  for (const t of list || []) o[t.key] = t.value;
  return o;
}

/** debounce delays fn until ms after the last call. */
export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** runLink is a link to a run page. */
export function runHref(experimentId, runId) {
  return `/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}`;
}

/** experimentHref is a link to an experiment's runs table. */
export function experimentHref(experimentId) {
  return `/experiments/${encodeURIComponent(experimentId)}`;
}

/** isVisibleTag reports whether a tag is the user's (not mlflow.*). */
export function isUserTag(key) {
  return !key.startsWith('mlflow.');
}

/**
 * tokenPager pages a list through MLflow's page tokens (page_token in,
 * next_page_token out) with Previous / Next buttons, a "Runs 51–100"
 * label and (given sizes) a rows-per-page select bound to the URL's size
 * parameter.
 * go(index) loads page index, asking for pager.token(index); it reports
 * the answer with pager.loaded(index, rowCount, nextPageToken), which
 * returns false (and says so) when a page after the first is empty: MLflow
 * hands out a token whenever a page is full, so the page after the last
 * full one has no rows, and the pager stays where it was.
 * reset() forgets the tokens seen (a new search or order), so the next
 * go(0) starts over.
 * A plain list passes fetch(token) (a promise of the response), rows(response)
 * (its list) and draw(list) instead of go: pager.load(index) then fetches,
 * counts and draws page index, and shows a failure in an errorBox in box,
 * or hands it to fail(err, index) when given. pager.load(index, pending)
 * takes the answer of pending, page index's fetch started earlier (a first
 * page asked for while the page's other data loads).
 */
export function tokenPager({ id, noun, size, sizes, defaultSize, go, fetch: fetchPage, rows: rowsOf, draw: drawRows, box, fail }) {
  const tokens = [''];
  let index = 0, next = '', last = false, rows = 0;
  // loads counts load calls and resets: an answer that arrives after a
  // newer load or a reset began is stale (typing "FR" then "FRAUD" must
  // not end on FR's rows) and is dropped.
  let loads = 0;
  go = go || ((i) => pager.load(i));
  const info = h('span', { class: 'muted page-info', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn', id: `${id}-prev`, disabled: true, onclick: () => go(index - 1) }, '‹ Previous');
  const nextBtn = h('button', { type: 'button', class: 'btn', id: `${id}-next`, disabled: true, onclick: () => go(index + 1) }, 'Next ›');
  let sizeField = null;
  if (sizes) {
    const sizeSelect = h('select', { id: `${id}-size`, onchange: () => setQuery({ size: Number(sizeSelect.value) === defaultSize ? '' : sizeSelect.value }, { push: true }) },
      sizes.map((n) => h('option', { value: String(n), selected: n === size }, String(n))));
    sizeField = h('div', { class: 'inline-field' }, h('label', { for: `${id}-size` }, 'Rows per page'), sizeSelect);
  }
  const el = h('div', { class: 'pager', hidden: true }, prev, nextBtn, info, h('span', { class: 'spacer' }), sizeField);
  const plural = (n) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  const title = noun[0].toUpperCase() + noun.slice(1) + 's';
  function draw() {
    el.hidden = !rows;
    const first = index * size + 1, lastRow = index * size + rows;
    if (!rows) info.textContent = '';
    else if (!next || last) info.textContent = index === 0 ? plural(rows) : `${title} ${first}–${lastRow} of ${lastRow}`;
    else info.textContent = `${title} ${first}–${lastRow}`;
    prev.disabled = index === 0;
    nextBtn.disabled = !next || last;
  }
  const pager = {
    el,
    get index() { return index; },
    token: (i) => tokens[i] || '',
    loaded(i, n, nextToken) {
      if (i > 0 && n === 0) {
        last = true;
        next = '';
        draw();
        toast('This is the last page.');
        return false;
      }
      index = i;
      last = false;
      next = nextToken || '';
      if (next) tokens[i + 1] = next;
      rows = n;
      draw();
      return true;
    },
    /** clearInfo empties the label (a page that could not be shown). */
    clearInfo() { info.textContent = ''; },
    /** reset forgets the page tokens: the list is searched or ordered anew. */
    reset() {
      loads++;
      tokens.length = 1;
      index = 0;
      next = '';
      last = false;
    },
    /** load shows page i of a plain list (given fetch, rows, draw, and box or fail). */
    async load(i, pending) {
      const mine = ++loads;
      let res;
      try {
        res = await (pending || fetchPage(pager.token(i)));
      } catch (err) {
        if (err.name === 'AbortError' || mine !== loads) return;
        if (fail) { fail(err, i); return; }
        clear(box, errorBox(err));
        pager.clearInfo();
        return;
      }
      if (mine !== loads) return;
      const list = rowsOf(res);
      if (pager.loaded(i, list.length, res.next_page_token)) drawRows(list);
    },
  };
  return pager;
}
