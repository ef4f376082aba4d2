// trace-common.js: what the Traces tab and the trace page share: reading
// MLflow 3's TraceInfoV3 (proto JSON: RFC 3339 times, "1.5s" durations,
// metadata and tags as maps), OpenTelemetry's AnyValue, and rendering
// JSON values as collapsible trees or as chat messages.
import { h } from '../lib.js';

/** V3 is the prefix of MLflow 3's routes for the UI. */
export const V3 = '/ajax-api/3.0/mlflow/';

/** parseDuration reads a proto JSON Duration ("1.500s") as milliseconds, or null. */
export function parseDuration(s) {
  if (typeof s !== 'string' || !s.endsWith('s')) return null;
  const f = Number(s.slice(0, -1));
  return isFinite(f) ? Math.round(f * 1000) : null;
}

/** parseJSON parses text, returning fallback when it is not JSON. */
export function parseJSON(text, fallback = undefined) {
  if (typeof text !== 'string') return fallback;
  try { return JSON.parse(text); } catch { return fallback; }
}

function num(v) {
  const n = Number(v);
  return v === undefined || v === null || v === '' || !isFinite(n) ? null : n;
}

/** usageFrom reads MLflow's token usage object ({input_tokens, output_tokens, total_tokens}). */
export function usageFrom(u) {
  if (!u || typeof u !== 'object') return null;
  const input = num(u.input_tokens ?? u.prompt_tokens);
  const output = num(u.output_tokens ?? u.completion_tokens);
  let total = num(u.total_tokens);
  if (total === null && (input !== null || output !== null)) total = (input || 0) + (output || 0);
  if (input === null && output === null && total === null) return null;
  return { input, output, total };
}

/** tokenUsageOf reads the trace's token usage from its metadata (mlflow.trace.tokenUsage). */
export function tokenUsageOf(meta) {
  return usageFrom(parseJSON(meta && meta['mlflow.trace.tokenUsage'], null));
}

/** stateLabel names a trace state for people. */
export function stateLabel(s) {
  if (!s || s === 'STATE_UNSPECIFIED') return 'Unknown';
  if (s === 'IN_PROGRESS') return 'In progress';
  return s === 'OK' ? 'OK' : s.charAt(0) + s.slice(1).toLowerCase();
}

/** traceName is the trace's name (the tag mlflow.traceName), or ''. */
export function traceName(t) {
  return (t.tags && t.tags['mlflow.traceName']) || '';
}

/** assessmentValue is an assessment's value: feedback.value or expectation.value (or its serialized value). */
export function assessmentValue(a) {
  if (a.feedback) return a.feedback.value;
  if (a.expectation) {
    if ('value' in a.expectation) return a.expectation.value;
    const sv = a.expectation.serialized_value;
    if (sv) return sv.serialization_format === 'JSON_FORMAT' ? parseJSON(sv.value, sv.value) : sv.value;
  }
  return undefined;
}

/** assessmentKind is "feedback", "expectation" or "issue". */
export function assessmentKind(a) {
  if (a.expectation) return 'expectation';
  if (a.issue) return 'issue';
  return 'feedback';
}

/** assessmentValueText renders an assessment's value in one line. */
export function assessmentValueText(a) {
  if (a.feedback && a.feedback.error && a.feedback.value === undefined) return 'error';
  const v = assessmentValue(a);
  if (v === undefined || v === null) return '—';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * previewText is a one-line preview of a request or response preview: the
 * last user message of a chat request, the content of a chat answer, or
 * the text with its whitespace collapsed.
 */
export function previewText(s) {
  if (!s) return '';
  const v = parseJSON(s);
  if (typeof v === 'string') return v.replace(/\s+/g, ' ').trim();
  const chat = v === undefined ? null : chatMessages(v);
  if (chat && chat.length) {
    const users = chat.filter((m) => m.role === 'user');
    const m = users.length ? users[users.length - 1] : chat[chat.length - 1];
    const text = contentText(m.content);
    if (text) return text.replace(/\s+/g, ' ').trim();
  }
  return String(s).replace(/\s+/g, ' ').trim();
}

/** fromAnyValue turns OpenTelemetry's AnyValue (proto JSON) into a plain value. */
export function fromAnyValue(v) {
  if (!v || typeof v !== 'object') return v ?? null;
  if ('string_value' in v) return v.string_value;
  if ('bool_value' in v) return v.bool_value;
  if ('int_value' in v) {
    const n = Number(v.int_value);
    return Number.isSafeInteger(n) ? n : String(v.int_value);
  }
  if ('double_value' in v) return typeof v.double_value === 'number' ? v.double_value : Number(v.double_value);
  if ('array_value' in v) return ((v.array_value && v.array_value.values) || []).map(fromAnyValue);
  if ('kvlist_value' in v) {
    const o = {};
    for (const kv of (v.kvlist_value && v.kvlist_value.values) || []) o[kv.key] = fromAnyValue(kv.value);
    return o;
  }
  if ('bytes_value' in v) return v.bytes_value;
  // The camelCase names of proto JSON, accepted as well.
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return ((v.arrayValue && v.arrayValue.values) || []).map(fromAnyValue);
  if ('kvlistValue' in v) {
    const o = {};
    for (const kv of (v.kvlistValue && v.kvlistValue.values) || []) o[kv.key] = fromAnyValue(kv.value);
    return o;
  }
  return null;
}

/**
 * attributeValue decodes one span attribute. MLflow writes its attribute
 * values JSON-encoded; a string holding a JSON object, array or string is
 * decoded (numbers and words stay text).
 */
export function attributeValue(v) {
  const x = fromAnyValue(v);
  if (typeof x === 'string' && /^\s*[[{"]/.test(x)) {
    const d = parseJSON(x);
    if (d !== undefined) return d;
  }
  return x;
}

// ---------------------------------------------------------------- chat

function isMessage(m) {
  return m && typeof m === 'object' && !Array.isArray(m) && typeof m.role === 'string' &&
    ('content' in m || 'tool_calls' in m || 'function_call' in m);
}

/**
 * chatMessages finds OpenAI-style chat messages in a span's input or
 * output: {messages: [...]}, a list of messages, {choices: [{message}]}
 * (a completion), or one message. Null when the value is no chat.
 */
export function chatMessages(v) {
  if (!v || typeof v !== 'object') return null;
  if (Array.isArray(v)) return v.length && v.every(isMessage) ? v : null;
  if (Array.isArray(v.messages) && v.messages.length && v.messages.every(isMessage)) return v.messages;
  if (Array.isArray(v.choices) && v.choices.length && v.choices.every((c) => c && isMessage(c.message))) return v.choices.map((c) => c.message);
  if (isMessage(v)) return [v];
  return null;
}

/** contentText is a message's text: a string, or the text parts of a list of parts. */
export function contentText(c) {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) return c.map((p) => (typeof p === 'string' ? p : p && (p.text ?? (p.type === 'text' ? '' : `[${p.type || 'part'}]`)))).filter(Boolean).join('\n');
  return JSON.stringify(c);
}

/** chatView renders messages as a conversation. */
export function chatView(messages) {
  return h('ol', { class: 'chat' }, messages.map((m) => {
    const calls = m.tool_calls || (m.function_call ? [{ function: m.function_call }] : null);
    return h('li', { class: `chat-msg chat-${String(m.role).replace(/[^a-z_]/gi, '')}` },
      h('div', { class: 'chat-role' }, m.role, m.name ? h('span', { class: 'muted' }, ` · ${m.name}`) : null,
        m.tool_call_id ? h('span', { class: 'muted small' }, ` (${m.tool_call_id})`) : null),
      m.content !== undefined && m.content !== null && m.content !== '' ? h('div', { class: 'chat-content' }, contentText(m.content)) : null,
      calls ? calls.map((c) => h('div', { class: 'chat-tool-call' },
        h('span', { class: 'badge' }, 'tool call'), ' ', h('code', null, (c.function && c.function.name) || c.name || ''),
        jsonView(parseJSON(c.function && c.function.arguments, c.function ? c.function.arguments : c), { open: 1 }))) : null);
  }));
}

// ---------------------------------------------------------------- JSON tree

// Children drawn per object or array before a "show more" button.
const JSON_CHUNK = 200;

/**
 * jsonView renders a value as a collapsible tree: objects and arrays are
 * <details> whose children are built when first opened (opts.open levels
 * start open), so a large value costs nothing until it is looked at.
 */
export function jsonView(value, opts = {}) {
  const open = opts.open ?? 2;
  return h('div', { class: 'json-view' }, jsonNode(null, value, 0, open));
}

function scalar(v) {
  if (v === null || v === undefined) return h('span', { class: 'json-null' }, 'null');
  if (typeof v === 'string') return h('span', { class: 'json-string' }, JSON.stringify(v).length > 2 && v.includes('\n') ? v : JSON.stringify(v));
  if (typeof v === 'number') return h('span', { class: 'json-number' }, String(v));
  if (typeof v === 'boolean') return h('span', { class: 'json-bool' }, String(v));
  return h('span', null, String(v));
}

function jsonNode(key, v, depth, open) {
  const label = key === null ? null : h('span', { class: 'json-key' }, key, ': ');
  if (v === null || typeof v !== 'object') return h('div', { class: 'json-leaf' }, label, scalar(v));
  const isArr = Array.isArray(v);
  const entries = isArr ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  const summary = h('summary', null, label, h('span', { class: 'json-type muted' }, isArr ? `[${entries.length}]` : `{${entries.length}}`));
  if (!entries.length) return h('div', { class: 'json-leaf' }, label, h('span', { class: 'muted' }, isArr ? '[]' : '{}'));
  const det = h('details', { class: 'json-node' }, summary);
  const box = h('div', { class: 'json-children' });
  det.appendChild(box);
  let drawn = 0;
  const more = () => {
    const end = Math.min(entries.length, drawn + JSON_CHUNK);
    const frag = document.createDocumentFragment();
    for (; drawn < end; drawn++) frag.appendChild(jsonNode(entries[drawn][0], entries[drawn][1], depth + 1, open));
    box.querySelector(':scope > .json-more')?.remove();
    box.appendChild(frag);
    if (drawn < entries.length) {
      box.appendChild(h('button', { type: 'button', class: 'btn btn-link btn-small json-more', onclick: more }, `Show ${Math.min(JSON_CHUNK, entries.length - drawn)} more of ${entries.length - drawn}`));
    }
  };
  det.addEventListener('toggle', () => { if (det.open && drawn === 0) more(); });
  if (depth < open) { det.open = true; more(); }
  return det;
}

/**
 * valueView renders a span's input or output: chat messages when they look
 * like chat (with a switch to the raw JSON), a string as text, anything
 * else as a JSON tree.
 */
export function valueView(value, what) {
  if (value === undefined) return h('p', { class: 'muted' }, `No ${what}.`);
  if (typeof value === 'string') return h('pre', { class: 'preview value-text' }, value);
  const chat = chatMessages(value);
  if (!chat) return jsonView(value);
  const box = h('div', { class: 'value-box' });
  let raw = false;
  const toggle = h('button', { type: 'button', class: 'btn btn-link btn-small value-toggle' });
  const draw = () => {
    toggle.textContent = raw ? 'Show as chat' : 'Show JSON';
    box.replaceChildren(raw ? jsonView(value) : chatView(chat));
  };
  toggle.addEventListener('click', () => { raw = !raw; draw(); });
  draw();
  return h('div', null, h('div', { class: 'value-head' }, toggle), box);
}
