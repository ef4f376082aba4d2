// run-images.js: the run page's image grid. mlflow.log_image(image,
// key=..., step=...) stores each image as
//   images/<key>%step%<step>%timestamp%<ms>%<uuid>.png
// plus a smaller copy
//   images/<key>%step%<step>%timestamp%<ms>%<uuid>%compressed.webp
// (MlflowClient.log_image; a "/" in the key is stored as "#"), and tags the
// run mlflow.loggedImages. The grid shows one card per key and a slider over
// the logged steps, as MLflow's image grid does.
import { h, clear, api, errorBox, fmtTime } from '../lib.js';

// The directory log_image writes to.
const IMAGES_DIR = 'images';
// Pages of a paged listing read at most.
const MAX_LIST_PAGES = 50;

const NAME_RE = /^([^%]+)%step%(-?\d+)%timestamp%(\d+)%([^%]+?)(%compressed)?\.([A-Za-z0-9]+)$/;

/**
 * parseImageName reads a step image's file name (the last path segment):
 * {key, step, timestamp, id, compressed} or null for other files.
 */
export function parseImageName(name) {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  return {
    key: m[1].replace(/#/g, '/'),
    step: Number(m[2]),
    timestamp: Number(m[3]),
    id: m[4],
    compressed: !!m[5],
  };
}

/** imageURL downloads an artifact; the path is percent-encoded once (a "%" in a name is sent as %25). */
export function imageURL(runId, path) {
  return `/get-artifact?run_uuid=${encodeURIComponent(runId)}&path=${encodeURIComponent(path)}`;
}

/**
 * groupImages turns artifact paths into [{key, steps: [{step, timestamp,
 * full, thumb}]}], keys and steps sorted. When a key has several images at
 * one step, the latest one counts.
 */
export function groupImages(paths) {
  const byKey = new Map();
  for (const p of paths) {
    const name = p.slice(p.lastIndexOf('/') + 1);
    const img = parseImageName(name);
    if (!img) continue;
    let steps = byKey.get(img.key);
    if (!steps) byKey.set(img.key, steps = new Map());
    const id = `${img.step}\u0000${img.timestamp}\u0000${img.id}`;
    let e = steps.get(id);
    if (!e) steps.set(id, e = { step: img.step, timestamp: img.timestamp, full: '', thumb: '' });
    if (img.compressed) e.thumb = p; else e.full = p;
  }
  const out = [];
  for (const [key, entries] of byKey) {
    const perStep = new Map();
    for (const e of entries.values()) {
      if (!e.full && !e.thumb) continue;
      const prev = perStep.get(e.step);
      if (!prev || e.timestamp > prev.timestamp) perStep.set(e.step, e);
    }
    const steps = [...perStep.values()].sort((a, b) => a.step - b.step);
    if (steps.length) out.push({ key, steps });
  }
  out.sort((a, b) => a.key.localeCompare(b.key));
  return out;
}

async function listImages(runId, signal) {
  const paths = [];
  let token = '';
  for (let i = 0; i < MAX_LIST_PAGES; i++) {
    const r = await api.get('artifacts/list', { run_id: runId, path: IMAGES_DIR, page_token: token || undefined }, { signal });
    for (const f of r.files || []) if (!f.is_dir) paths.push(f.path);
    token = r.next_page_token || '';
    if (!token) break;
  }
  return paths;
}

/** atStep is the key's image at the largest logged step not after step (else its first). */
function atStep(steps, step) {
  let pick = steps[0];
  for (const s of steps) {
    if (s.step <= step) pick = s;
    else break;
  }
  return pick;
}

/**
 * imageGrid renders the run's step images into a new element; ready
 * resolves when the first view is drawn.
 */
export function imageGrid(ctx, info) {
  const root = h('div', { class: 'image-grid-wrap' }, h('p', { class: 'loading' }, 'Loading images…'));
  const ready = (async () => {
    let groups;
    try {
      groups = groupImages(await listImages(info.run_id, ctx.signal));
    } catch (err) {
      if (err.name === 'AbortError') return;
      clear(root, errorBox(err));
      return;
    }
    if (!groups.length) {
      clear(root, h('div', { class: 'panel empty' },
        h('p', null, h('strong', null, 'No step images logged for this run.')),
        h('p', { class: 'muted' }, 'Images logged with mlflow.log_image(image, key=…, step=…) show up here.')));
      return;
    }
    const steps = [...new Set(groups.flatMap((g) => g.steps.map((s) => s.step)))].sort((a, b) => a - b);
    const wanted = Number(ctx.query.get('step'));
    let index = steps.length - 1;
    if (ctx.query.has('step') && Number.isFinite(wanted)) {
      const i = steps.findIndex((s) => s >= wanted);
      index = i < 0 ? steps.length - 1 : i;
    }
    const label = h('output', { id: 'image-step-label', for: 'image-step' });
    const slider = h('input', {
      type: 'range', id: 'image-step', min: '0', max: String(steps.length - 1), step: '1', value: String(index),
      'aria-label': 'Step', disabled: steps.length < 2,
    });
    const cards = groups.map((g) => {
      const img = h('img', { class: 'step-image', alt: '', loading: 'lazy', decoding: 'async' });
      const link = h('a', { class: 'step-image-link', target: '_blank', rel: 'noopener' }, img);
      const caption = h('figcaption', { class: 'muted small' });
      const card = h('figure', { class: 'panel image-card', dataset: { key: g.key } },
        h('h3', { class: 'image-key', title: g.key }, g.key), link, caption);
      const show = (step) => {
        const e = atStep(g.steps, step);
        const src = imageURL(info.run_id, e.thumb || e.full);
        if (img.getAttribute('src') !== src) img.setAttribute('src', src);
        img.alt = `${g.key} at step ${e.step}`;
        link.href = imageURL(info.run_id, e.full || e.thumb);
        card.dataset.step = String(e.step);
        clear(caption, `Step ${e.step}`, e.timestamp ? ` · ${fmtTime(e.timestamp)}` : '');
      };
      return { el: card, show };
    });
    const showAll = () => {
      const step = steps[index];
      label.textContent = `Step ${step}`;
      slider.setAttribute('aria-valuetext', `Step ${step}`);
      for (const c of cards) c.show(step);
    };
    slider.addEventListener('input', () => {
      index = Number(slider.value);
      showAll();
    });
    slider.addEventListener('change', () => {
      const q = new URLSearchParams(location.search);
      q.set('step', String(steps[index]));
      history.replaceState(null, '', `${location.pathname}?${q}`);
    });
    const grid = h('div', { class: 'image-grid', id: 'image-grid' }, cards.map((c) => c.el));
    clear(root,
      h('div', { class: 'panel image-toolbar' },
        h('label', { for: 'image-step', class: 'image-step-title' }, 'Step'),
        slider, label,
        h('span', { class: 'muted small' }, `${groups.length} ${groups.length === 1 ? 'key' : 'keys'}, ${steps.length} ${steps.length === 1 ? 'step' : 'steps'}`)),
      grid);
    showAll();
  })();
  return { element: root, ready };
}
