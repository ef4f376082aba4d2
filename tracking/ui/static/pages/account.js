// account.js: page 7. The login page (/login, public), the viewer's own
// account with API tokens (/account) and user and permission management
// for administrators (/admin).
//
// Sign-in is a plain HTML form POST to /login (the gateway verifies the
// password, sets the session cookie and redirects: PRG), so it works
// without any script state. Everything else goes through the REST API:
// the management routes under /ajax-api/2.0/mlflow/users/... and
// .../permissions/..., which the gateway authorizes.
import {
  route, h, clear, api, viewer, navigate, setQuery, fmtTime, fmtRelative, errorBox,
  toast, dialog, confirm, action,
} from '../lib.js';

const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'];
const MIN_PASSWORD = 12;

// ---------------------------------------------------------------- helpers

/** safeNext keeps next only when it is a path on this site. */
function safeNext(next) {
  if (!next || next[0] !== '/' || next[1] === '/' || next[1] === '\\' || /[\\\u0000-\u001f\u007f]/.test(next)) return '/experiments';
  const path = next.split(/[?#]/)[0];
  if (path === '/login' || path === '/logout' || path.startsWith('/login/')) return '/experiments';
  return next;
}

/** isoTime renders an RFC 3339 time from the management API. */
function isoTime(s) {
  const ms = Date.parse(s || '');
  return isNaN(ms) ? '—' : fmtTime(ms);
}

/** ago renders an RFC 3339 time as "just now", "5 min ago", .... */
function ago(s) {
  const ms = Date.parse(s || '');
  if (isNaN(ms)) return '—';
  return Date.now() - ms < 60000 ? 'just now' : fmtRelative(ms);
}

function authOff(main, title) {
  clear(main,
    h('div', { class: 'page-head' }, h('h1', null, title)),
    h('div', { class: 'panel notice' },
      h('h2', null, 'Authentication is off'),
      h('p', null, 'This server runs without an auth block: everyone who can reach it has full access, and there are no accounts, API tokens or permissions to manage.'),
      h('p', { class: 'muted' }, 'To turn it on, add an ', h('code', null, 'auth { … }'), ' block to the mlflow directive (see the README).')));
}

function passwordRule(pw, confirm) {
  if ([...pw].length < MIN_PASSWORD) return `The password must be at least ${MIN_PASSWORD} characters long.`;
  if (confirm !== undefined && pw !== confirm) return 'The two passwords differ.';
  return '';
}

/** basicHeader encodes user:password for an Authorization header (UTF-8). */
function basicHeader(user, pw) {
  const bytes = new TextEncoder().encode(`${user}:${pw}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return 'Basic ' + btoa(bin);
}

/** copyText copies s to the clipboard, falling back to a selected field. */
async function copyText(s, field) {
  try {
    await navigator.clipboard.writeText(s);
    return true;
  } catch {
    if (field) {
      field.focus();
      field.select();
      try { return document.execCommand('copy'); } catch { return false; }
    }
    return false;
  }
}

// ---------------------------------------------------------------- login

const LOGIN_ERRORS = {
  invalid: 'Invalid username or password.',
  expired: 'Your sign-in form expired or was sent from another site. Please try again.',
  throttled: 'Too many failed sign-in attempts. Wait a minute, then try again.',
  unavailable: 'Password sign-in is not enabled on this server. Use an API token or your identity provider.',
  server: 'The server could not check your password right now. Please try again later.',
};

const USER_KEY = 'mlflow.login.username';

route('/login', 'login', async (ctx) => {
  const next = safeNext(ctx.query.get('next') || '');
  if (!viewer.auth_enabled || viewer.authenticated) {
    navigate(viewer.auth_enabled ? next : '/experiments', { replace: true });
    return;
  }
  document.title = 'Sign in · MLflow';
  // Without a login form token the server offers no password sign-in
  // (its auth block has no basic).
  const code = viewer.csrf_token ? ctx.query.get('error') : 'unavailable';
  const msg = code ? (LOGIN_ERRORS[code] || LOGIN_ERRORS.invalid) : '';
  let remembered = '';
  try { remembered = sessionStorage.getItem(USER_KEY) || ''; } catch { /* storage off */ }

  const user = h('input', { id: 'login-username', name: 'username', type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true, value: code ? remembered : '' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { method: 'post', action: '/login', class: 'login-form', 'aria-describedby': msg ? 'login-error' : null },
    h('input', { type: 'hidden', name: 'csrf_token', value: viewer.csrf_token || '' }),
    h('input', { type: 'hidden', name: 'next', value: next }),
    h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), pass),
    submit);
  form.addEventListener('submit', () => {
    try { sessionStorage.setItem(USER_KEY, user.value); } catch { /* storage off */ }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
  });

  clear(ctx.main, h('div', { class: 'login-wrap' },
    h('section', { class: 'panel login-card', 'aria-labelledby': 'login-title' },
      h('div', { class: 'login-brand' }, h('img', { src: '/static/favicon.svg', alt: '', width: 36, height: 36 })),
      h('h1', { id: 'login-title' }, 'Sign in to MLflow'),
      h('p', { class: 'muted login-sub' }, 'Use your MLflow username and password.'),
      msg ? h('div', { class: 'error-box', role: 'alert', id: 'login-error' }, msg) : null,
      ctx.query.get('signed_out') && !msg ? h('div', { class: 'info-box', role: 'status' }, 'You have been signed out.') : null,
      code === 'unavailable' ? null : form),
    h('p', { class: 'login-foot muted small' },
      'Scripts and MLflow clients sign in with an API token (', h('code', null, 'MLFLOW_TRACKING_TOKEN'), ') or ',
      h('code', null, 'MLFLOW_TRACKING_USERNAME'), ' / ', h('code', null, 'MLFLOW_TRACKING_PASSWORD'), '.')));
  if (code !== 'unavailable') (code && user.value ? pass : user).focus();
}, { public: true });

// ---------------------------------------------------------------- account

route('/account', 'account', async (ctx) => {
  if (!viewer.auth_enabled) { authOff(ctx.main, 'Account'); return; }
  document.title = 'Account · MLflow';
  const tokensBox = h('div');
  const onceBox = h('div');
  const profile = h('dl', { class: 'kv' },
    h('dt', null, 'Username'), h('dd', null, h('strong', null, viewer.username)),
    h('dt', null, 'Role'), h('dd', null, viewer.is_admin ? h('span', { class: 'badge badge-admin' }, 'Administrator') : 'User'),
    h('dt', null, 'Signed in with'), h('dd', null, viewer.session ? 'This browser session (ends after 12 hours without use)' : 'Credentials your browser sends (Basic, token or certificate)'));
  const actions = h('div', { class: 'panel-actions' },
    h('button', { type: 'button', class: 'btn', id: 'change-password', onclick: () => changePassword() }, 'Change password'),
    viewer.is_admin ? h('a', { class: 'btn', href: '/admin' }, 'Manage users') : null);

  clear(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Account')),
    h('div', { class: 'account-grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'profile-h' }, h('h2', { id: 'profile-h' }, 'Profile'), profile, actions),
      h('section', { class: 'panel', 'aria-labelledby': 'tokens-h' },
        h('div', { class: 'acct-head' },
          h('h2', { id: 'tokens-h' }, 'API tokens'),
          h('button', { type: 'button', class: 'btn btn-primary', id: 'create-token', onclick: () => createToken() }, 'Create token')),
        h('p', { class: 'muted' }, 'Tokens let scripts and MLflow clients act as you: set ', h('code', null, 'MLFLOW_TRACKING_TOKEN'), ' to one. A token is shown once, when it is created; revoke tokens you no longer use.'),
        onceBox, tokensBox)));

  async function loadTokens() {
    let out;
    try {
      out = await api.get('users/tokens/list', {}, { signal: ctx.signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      clear(tokensBox, errorBox(err));
      return;
    }
    const tokens = out.tokens || [];
    if (!tokens.length) {
      clear(tokensBox, h('p', { class: 'empty' }, 'No API tokens yet.'));
      return;
    }
    const now = Date.now();
    const rows = tokens.map((t) => {
      const exp = Date.parse(t.expires_at || '');
      const expired = !isNaN(exp) && exp <= now;
      const status = t.revoked ? h('span', { class: 'badge status-FAILED' }, 'Revoked')
        : expired ? h('span', { class: 'badge status-KILLED' }, 'Expired')
          : h('span', { class: 'badge status-FINISHED' }, 'Active');
      return h('tr', { dataset: { token: t.id } },
        h('td', { class: 'wrap' }, t.name || h('span', { class: 'muted' }, '(no name)')),
        h('td', null, h('code', null, t.id)),
        h('td', { title: isoTime(t.created) }, ago(t.created)),
        h('td', null, t.expires_at ? isoTime(t.expires_at) : 'Never'),
        h('td', null, status),
        h('td', { class: 'actions-cell' }, t.revoked ? null : h('button', {
          type: 'button', class: 'btn btn-small btn-danger-outline', 'aria-label': `Revoke token ${t.name || t.id}`,
          onclick: () => revoke(t),
        }, 'Revoke')));
    });
    clear(tokensBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'tokens-table' },
      h('thead', null, h('tr', null, ['Name', 'ID', 'Created', 'Expires', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows))));
  }

  async function createToken() {
    const v = await dialog({
      title: 'Create API token',
      submit: 'Create token',
      // A token outlives the session: the server wants the password again
      // when a session mints one.
      message: viewer.session ? 'A token acts as you until it expires or is revoked, even after you sign out: confirm with your password.' : '',
      fields: [
        { name: 'name', label: 'Name (what it is for)', placeholder: 'e.g. ci-pipeline', required: true },
        { name: 'expires', label: 'Expires', type: 'select', value: '90 days', options: ['30 days', '90 days', '1 year', 'Never'] },
        viewer.session ? { name: 'current', label: 'Your password', type: 'password', required: true } : null,
      ].filter(Boolean),
      validate: (x) => (!x.name.trim() ? 'Give the token a name.' : viewer.session && !x.current ? 'Enter your password.' : ''),
    });
    if (!v) return;
    const ttl = { '30 days': '720h', '90 days': '2160h', '1 year': '8760h', Never: '' }[v.expires];
    const body = { name: v.name.trim(), expires_in: ttl || undefined };
    if (viewer.session) body.current_password = v.current;
    const out = await action(() => api.post('users/tokens/create', body));
    if (!out || !out.token) return;
    showOnce(out.token, v.name.trim());
    await loadTokens();
  }

  function showOnce(token, name) {
    const field = h('input', { type: 'text', id: 'new-token', class: 'token-field', readonly: true, value: token, 'aria-label': 'New API token', spellcheck: 'false' });
    field.addEventListener('focus', () => field.select());
    const copy = h('button', { type: 'button', class: 'btn btn-primary', id: 'copy-token' }, 'Copy');
    copy.addEventListener('click', async () => {
      const ok = await copyText(token, field);
      toast(ok ? 'Token copied to the clipboard.' : 'Select the token and copy it by hand.', ok ? 'ok' : 'error');
    });
    const done = h('button', { type: 'button', class: 'btn', id: 'token-done' }, 'I have saved it');
    done.addEventListener('click', () => { clear(onceBox); document.getElementById('create-token')?.focus(); });
    clear(onceBox, h('div', { class: 'token-once', role: 'region', 'aria-label': 'New token' },
      h('p', { class: 'token-once-title' }, h('strong', null, `Token “${name}” created.`), ' Copy it now: it will not be shown again.'),
      h('div', { class: 'token-row' }, field, copy),
      h('p', { class: 'small muted' }, 'Use it as ', h('code', null, 'MLFLOW_TRACKING_TOKEN'), ' or in an ', h('code', null, 'Authorization: Bearer …'), ' header.'),
      h('div', null, done)));
    field.focus();
  }

  async function revoke(t) {
    if (!await confirm('Revoke token?', `Clients using “${t.name || t.id}” will be refused from now on. This cannot be undone.`, 'Revoke')) return;
    const ok = await action(() => api.post('users/tokens/revoke', { id: t.id }), 'Token revoked.');
    if (ok !== undefined) await loadTokens();
  }

  async function changePassword() {
    const v = await dialog({
      title: 'Change password',
      submit: 'Change password',
      message: 'Your other signed-in browsers will be signed out.',
      fields: [
        { name: 'current', label: 'Current password', type: 'password', required: true },
        { name: 'password', label: `New password (at least ${MIN_PASSWORD} characters)`, type: 'password', required: true },
        { name: 'confirm', label: 'New password again', type: 'password', required: true },
      ],
      validate: (x) => passwordRule(x.password, x.confirm),
    });
    if (!v) return;
    // Check the current password first (Basic against the same verifier
    // the login uses), so an unattended signed-in browser cannot be used
    // to take the account over.
    const res = await fetch('/ajax-api/2.0/mlflow/users/current', {
      headers: { Authorization: basicHeader(viewer.username, v.current), 'X-Requested-With': 'mlflow-ui' },
      credentials: 'omit',
    }).catch(() => null);
    if (!res || !res.ok) { toast('The current password is not right.', 'error'); return; }
    await action(() => api.patch('users/update-password', { password: v.password, current_password: v.current }), 'Password changed.');
  }

  await loadTokens();
});

// ---------------------------------------------------------------- admin

route('/admin', 'admin', async (ctx) => {
  if (!viewer.auth_enabled) { authOff(ctx.main, 'Administration'); return; }
  document.title = 'Administration · MLflow';
  if (!viewer.is_admin) {
    clear(ctx.main,
      h('div', { class: 'page-head' }, h('h1', null, 'Administration')),
      h('div', { class: 'panel notice notice-denied', role: 'alert', id: 'admin-denied' },
        h('h2', null, 'Administrators only'),
        h('p', null, `You are signed in as ${viewer.username}, who is not an administrator. Managing users and permissions needs administrator rights.`),
        h('p', null, h('a', { href: '/account' }, 'Go to your account'), ' · ', h('a', { href: '/experiments' }, 'Experiments'))));
    return;
  }
  const tab = ctx.query.get('tab') === 'permissions' ? 'permissions' : 'users';
  const body = h('div', { role: 'tabpanel', id: 'admin-panel', 'aria-labelledby': `tab-${tab}` });
  const tabBtn = (id, label) => h('button', {
    type: 'button', role: 'tab', id: `tab-${id}`, 'aria-selected': String(tab === id), 'aria-controls': 'admin-panel', tabindex: tab === id ? '0' : '-1',
    onclick: () => setQuery({ tab: id === 'users' ? '' : id }),
    onkeydown: (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') { e.preventDefault(); setQuery({ tab: id === 'users' ? 'permissions' : '' }); requestAnimationFrame(() => document.querySelector('.tabs [aria-selected=true]')?.focus()); }
    },
  }, label);
  clear(ctx.main,
    h('div', { class: 'page-head' }, h('h1', null, 'Administration')),
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Administration' }, tabBtn('users', 'Users'), tabBtn('permissions', 'Permissions')),
    body);

  let users;
  try {
    users = (await api.get('users/list', {}, { signal: ctx.signal })).users || [];
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    clear(body, errorBox(err));
    return;
  }
  users.sort((a, b) => a.username.localeCompare(b.username));
  if (tab === 'users') drawUsers(ctx, body, users);
  else await drawPermissions(ctx, body, users);
});

function drawUsers(ctx, body, users) {
  const rows = users.map((u) => {
    const self = u.username === viewer.username;
    return h('tr', { dataset: { user: u.username } },
      h('td', { class: 'wrap' }, h('strong', null, u.username), self ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', null, u.is_admin ? h('span', { class: 'badge badge-admin' }, 'Administrator') : h('span', { class: 'badge' }, 'User')),
      h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' },
        h('a', { class: 'btn btn-small', href: `/admin?tab=permissions&user=${encodeURIComponent(u.username)}`, 'aria-label': `Permissions of ${u.username}` }, 'Permissions'),
        h('button', {
          type: 'button', class: 'btn btn-small', disabled: self, title: self ? 'You cannot change your own role' : null,
          'data-action': 'toggle-admin', onclick: () => toggleAdmin(u),
        }, u.is_admin ? 'Remove admin' : 'Make admin'),
        h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'reset-password', onclick: () => resetPassword(u) }, 'Reset password'),
        h('button', {
          type: 'button', class: 'btn btn-small btn-danger-outline', disabled: self, title: self ? 'You cannot delete yourself' : null,
          'data-action': 'delete', 'aria-label': `Delete user ${u.username}`, onclick: () => del(u),
        }, 'Delete'))));
  });
  clear(body,
    h('div', { class: 'toolbar' },
      h('p', { class: 'muted grow' }, `${users.length} user${users.length === 1 ? '' : 's'}. Administrators can do everything; other users get what their grants and the server's default permission allow.`),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'create-user', onclick: () => createUser() }, 'Create user')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'users-table' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Username'), h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', null, rows))));

  async function createUser() {
    const v = await dialog({
      title: 'Create user',
      submit: 'Create user',
      fields: [
        { name: 'username', label: 'Username', required: true, placeholder: 'e.g. alice' },
        { name: 'password', label: `Password (at least ${MIN_PASSWORD} characters)`, type: 'password', required: true },
        { name: 'role', label: 'Role', type: 'select', value: 'User', options: ['User', 'Administrator'] },
      ],
      validate: (x) => (x.username.trim() ? passwordRule(x.password) : 'Enter a username.'),
    });
    if (!v) return;
    const name = v.username.trim();
    const ok = await action(async () => {
      await api.post('users/create', { username: name, password: v.password });
      if (v.role === 'Administrator') await api.patch('users/update-admin', { username: name, is_admin: true });
      return true;
    }, `User ${name} created.`);
    if (ok) ctx.refresh();
  }

  async function toggleAdmin(u) {
    const make = !u.is_admin;
    if (!make && !await confirm('Remove administrator rights?', `${u.username} will only keep the permissions granted to them.`, 'Remove admin')) return;
    const ok = await action(() => api.patch('users/update-admin', { username: u.username, is_admin: make }).then(() => true),
      make ? `${u.username} is now an administrator.` : `${u.username} is no longer an administrator.`);
    if (ok) ctx.refresh();
  }

  async function resetPassword(u) {
    // One's own password, from a session: the server wants the current one.
    const self = viewer.session && u.username === viewer.username;
    const v = await dialog({
      title: `Reset password of ${u.username}`,
      submit: 'Set password',
      message: 'Their signed-in browsers will be signed out. Tell them the new password through a safe channel.',
      fields: [
        self ? { name: 'current', label: 'Your current password', type: 'password', required: true } : null,
        { name: 'password', label: `New password (at least ${MIN_PASSWORD} characters)`, type: 'password', required: true },
        { name: 'confirm', label: 'New password again', type: 'password', required: true },
      ].filter(Boolean),
      validate: (x) => passwordRule(x.password, x.confirm),
    });
    if (!v) return;
    const body = { username: u.username, password: v.password };
    if (self) body.current_password = v.current;
    await action(() => api.patch('users/update-password', body), `Password of ${u.username} changed.`);
  }

  async function del(u) {
    if (!await confirm(`Delete ${u.username}?`, 'The user, their API tokens, sessions and permission grants are deleted. Experiments and runs they created stay.', 'Delete user')) return;
    const ok = await action(() => api.del('users/delete', { username: u.username }).then(() => true), `User ${u.username} deleted.`);
    if (ok) ctx.refresh();
  }
}

/** loadAll pages through a search route (bounded) and returns the items. */
async function loadAll(url, key, params, signal, limit = 5000) {
  const out = [];
  let token = '';
  do {
    const r = await api.get(url, { ...params, page_token: token || undefined }, { signal });
    out.push(...(r[key] || []));
    token = r.next_page_token || '';
  } while (token && out.length < limit);
  return out;
}

async function drawPermissions(ctx, body, users) {
  const names = users.map((u) => u.username);
  let who = ctx.query.get('user');
  if (!names.includes(who)) who = (users.find((u) => !u.is_admin) || users[0] || {}).username || '';
  const picker = h('select', { id: 'perm-user', onchange: () => setQuery({ user: picker.value }) },
    users.map((u) => h('option', { value: u.username, selected: u.username === who }, u.is_admin ? `${u.username} (administrator)` : u.username)));
  const head = h('div', { class: 'toolbar' },
    h('label', { for: 'perm-user', class: 'toolbar-label' }, 'User'), picker,
    h('span', { class: 'muted small grow' }, 'Grants override the server\'s default permission for one experiment or registered model. Levels: READ < USE < EDIT < MANAGE; NO_PERMISSIONS hides it.'));
  if (!who) { clear(body, head, h('p', { class: 'empty' }, 'No users.')); return; }

  let user, exps, models;
  try {
    [user, exps, models] = await Promise.all([
      api.get('users/get', { username: who }, { signal: ctx.signal }).then((r) => r.user),
      loadAll('experiments/search', 'experiments', { max_results: 1000, view_type: 'ALL' }, ctx.signal),
      loadAll('registered-models/search', 'registered_models', { max_results: 1000 }, ctx.signal).catch((err) => {
        if (err.name === 'AbortError') throw err;
        return [];
      }),
    ]);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    clear(body, head, errorBox(err));
    return;
  }
  const expName = new Map(exps.map((e) => [e.experiment_id, e.name]));
  exps.sort((a, b) => a.name.localeCompare(b.name));
  models.sort((a, b) => a.name.localeCompare(b.name));

  const adminNote = user.is_admin
    ? h('div', { class: 'info-box' }, `${who} is an administrator: grants are kept but not needed, administrators may do everything.`) : null;

  const section = ({ title, id, grants, resKey, label, link, options, base }) => {
    const noun = title.toLowerCase().replace(/s$/, '');
    const granted = new Set(grants.map((g) => g[resKey]));
    const rows = grants.map((g) => {
      const res = g[resKey];
      const sel = h('select', { 'aria-label': `Permission of ${who} on ${label(res)}`, 'data-resource': res },
        LEVELS.map((l) => h('option', { value: l, selected: l === g.permission }, l)));
      sel.addEventListener('change', async () => {
        const ok = await action(() => api.patch(`${base}/update`, { [resKey]: res, username: who, permission: sel.value }).then(() => true), `Permission on ${label(res)} set to ${sel.value}.`);
        if (!ok) sel.value = g.permission; else g.permission = sel.value;
      });
      return h('tr', { dataset: { resource: res } },
        h('td', { class: 'wrap' }, link(res)),
        h('td', null, sel),
        h('td', { class: 'actions-cell' }, h('button', {
          type: 'button', class: 'btn btn-small btn-danger-outline', 'aria-label': `Revoke ${who}'s permission on ${label(res)}`,
          onclick: async () => {
            if (!await confirm('Revoke permission?', `${who} falls back to the default permission on ${label(res)}.`, 'Revoke')) return;
            const ok = await action(() => api.del(`${base}/delete`, { [resKey]: res, username: who }).then(() => true), 'Permission revoked.');
            if (ok) ctx.refresh();
          },
        }, 'Revoke')));
    });
    const free = options.filter((o) => !granted.has(o.value));
    const none = options.length ? `Every ${noun} has a grant` : `No ${noun}s yet`;
    const resSel = h('select', { id: `${id}-resource`, disabled: !free.length }, free.length
      ? free.map((o) => h('option', { value: o.value }, o.label)) : h('option', { value: '' }, none));
    const lvlSel = h('select', { id: `${id}-level` }, LEVELS.map((l) => h('option', { value: l, selected: l === 'READ' }, l)));
    const grant = h('form', { class: 'grant-form', id: `${id}-grant` },
      h('div', { class: 'field' }, h('label', { for: `${id}-resource` }, title.replace(/s$/, '')), resSel),
      h('div', { class: 'field' }, h('label', { for: `${id}-level` }, 'Permission'), lvlSel),
      h('button', { type: 'submit', class: 'btn btn-primary', disabled: !free.length }, 'Grant'));
    grant.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!resSel.value) return;
      const ok = await action(() => api.post(`${base}/create`, { [resKey]: resSel.value, username: who, permission: lvlSel.value }).then(() => true),
        `${who} now has ${lvlSel.value} on ${label(resSel.value)}.`);
      if (ok) ctx.refresh();
    });
    return h('section', { class: 'panel', 'aria-labelledby': `${id}-h`, id },
      h('h2', { id: `${id}-h` }, title, ' ', h('span', { class: 'count' }, String(grants.length))),
      grants.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, title.replace(/s$/, '')), h('th', { scope: 'col' }, 'Permission'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
          h('tbody', null, rows)))
        : h('p', { class: 'empty' }, `No grants: ${who} gets the default permission on every ${noun}.`),
      grant);
  };

  clear(body, head, adminNote,
    h('div', { class: 'grid-2' },
      section({
        title: 'Experiments', id: 'perm-exp', base: 'experiments/permissions', resKey: 'experiment_id',
        grants: user.experiment_permissions || [],
        label: (id) => (expName.has(id) ? `${expName.get(id)} (${id})` : `experiment ${id}`),
        link: (id) => h('a', { href: `/experiments/${encodeURIComponent(id)}` }, expName.get(id) || `experiment ${id}`, h('span', { class: 'muted' }, ` · ${id}`)),
        options: exps.map((e) => ({ value: e.experiment_id, label: `${e.name} (${e.experiment_id})` })),
      }),
      section({
        title: 'Registered models', id: 'perm-model', base: 'registered-models/permissions', resKey: 'name',
        grants: user.registered_model_permissions || [],
        label: (n) => n,
        link: (n) => h('a', { href: `/models/${encodeURIComponent(n)}` }, n),
        options: models.map((m) => ({ value: m.name, label: m.name })),
      })));
}
