// The Models section: one card per model in the library, with its facts, whether it fits this
// machine, and Load/Unload. Several models may be loaded at once: Load puts a model beside the
// loaded ones (the server unloads idle ones if memory is short, or says how much is missing), and
// each loaded model has its own Unload. Load progress comes from the status stream, not from the
// load call, which only answers once the model is ready.

import { post, del } from './api.js';
import { h, $, replace } from './dom.js';
import { bytes, params, tokens, sourceLabel, VERDICT_LABELS } from './format.js';
import { store, acceptStatus, refreshCatalog, loadedModels, modelMemory } from './store.js';

let list;
const pending = new Map(); // model id -> 'load' | 'unload' | 'delete' this page started and waits for
const errors = new Map(); // model id -> message of its last failed action

export function initModels({ showMemoryFor }) {
  list = $('#model-list');
  list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const id = button.closest('[data-model-id]').dataset.modelId;
    if (button.dataset.action === 'load') load(id);
    else if (button.dataset.action === 'unload') unload(id);
    else if (button.dataset.action === 'memory') showMemoryFor(id);
    else if (button.dataset.action === 'delete') remove(id);
  });
  store.addEventListener('catalog', render);
  store.addEventListener('status', update);
}

async function load(id) {
  await act(id, 'load', () => post('/api/models/load', { model: id }));
}

async function unload(id) {
  await act(id, 'unload', () => post('/api/models/unload', { model: id }));
}

/** Only models Paddock downloaded can be deleted; other folders belong to other apps. */
async function remove(id) {
  if (!window.confirm(`Delete ${id} from Paddock's models folder? The file is removed from disk.`)) return;
  pending.set(id, 'delete');
  errors.delete(id);
  update();
  try {
    await del(`/api/models/${encodeURIComponent(id)}`);
    refreshCatalog();
  } catch (err) {
    errors.set(id, err.message);
  } finally {
    pending.delete(id);
    update();
  }
}

async function act(id, action, call) {
  pending.set(id, action);
  errors.delete(id);
  update();
  try {
    acceptStatus(await call());
  } catch (err) {
    errors.set(id, failure(action, err));
  } finally {
    pending.delete(id);
    update();
  }
}

/** The API's message, said plainly when the model does not fit beside the loaded ones. */
function failure(action, err) {
  if (action === 'load' && err.code === 'model_does_not_fit') return `Not loaded: ${err.message}`;
  return action === 'load' ? `Loading failed: ${err.message}` : err.message;
}

function render() {
  const catalog = store.catalog;
  const error = $('#models-error');
  error.hidden = !store.catalogError;
  error.textContent = store.catalogError ? `Could not read the model library: ${store.catalogError.message}` : '';
  if (!catalog) return;

  const machine = catalog.machine;
  $('#models-machine').textContent = machine
    ? `${catalog.models.length} model${catalog.models.length === 1 ? '' : 's'} · ` +
      `${bytes(machine.total_memory)} ${machine.unified ? 'unified memory' : 'RAM'}` +
      (machine.gpu_memory ? ` · ${bytes(machine.gpu_memory)} GPU` : '')
    : '';

  if (!catalog.models.length) {
    replace(list, h('li', { class: 'empty card' }, 'No GGUF models were found in the model folders.'));
    return;
  }
  // Keep focus on the same button across a rebuild (the list is rebuilt when a load ends).
  const active = list.contains(document.activeElement) ? document.activeElement : null;
  const focusedId = active?.closest('[data-model-id]')?.dataset.modelId;
  replace(list, catalog.models.map(card));
  update();
  if (focusedId) {
    const buttons = [...list.querySelectorAll(`[data-model-id="${CSS.escape(focusedId)}"] button:not([hidden])`)];
    (buttons.find((b) => b.dataset.action === active.dataset.action) ?? buttons.at(-1))?.focus();
  }
}

function card(model) {
  const f = model.facts;
  const moe = f?.moe && f.active_params && f.active_params !== f.total_params;
  const tools = f ? (f.tools ?? f.template_supports_tools) : null;
  const fit = model.budget?.fits;
  return h('li', { class: 'card model', 'data-model-id': model.id, 'data-testid': 'model-card',
    'data-unusable': String(Boolean(model.error) || !f) },
    h('div', { class: 'model-head' },
      h('div', { class: 'model-title' },
        h('h2', {}, f?.name || model.id),
        h('span', { class: 'model-id', 'data-testid': 'model-id' }, model.id)),
      h('div', { class: 'badges' },
        h('span', { class: 'badge loaded', 'data-testid': 'loaded-badge', hidden: true }, 'Loaded'),
        h('span', { class: 'badge quiet', 'data-testid': 'pinned-badge', title: 'Never unloaded when idle or to make room', hidden: true }, 'Pinned'),
        fit ? fitBadge(fit) : null,
        h('span', { class: 'badge quiet', 'data-testid': 'source-badge' }, sourceLabel(model.source)))),
    model.error ? h('p', { class: 'notice error' }, model.error) : null,
    f ? h('dl', { class: 'facts grid' },
      fact('Architecture', f.architecture),
      fact('Parameters', moe ? `${params(f.total_params)} (${params(f.active_params)} active)` : params(f.total_params)),
      fact('Quantization', f.quantization?.label ?? '—'),
      fact('Size', bytes(f.file_bytes)),
      fact('Trained context', tokens(f.n_ctx_train)),
      fact('Tools', tools === null || tools === undefined ? '—' : tools ? 'Yes' : 'No'),
      fact('Largest context that fits', model.largest_context ? tokens(model.largest_context) : 'None', 'largest-context'),
      // llama.cpp's MTP drafting, as the crate exposes it, serves one sequence: one slot.
      f.nextn_layers ? fact('MTP heads', `${f.nextn_layers}: guess tokens with 1 parallel slot`, 'mtp-heads') : null,
    ) : null,
    h('div', { class: 'progress', role: 'progressbar', 'aria-label': `Loading ${model.id}`,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'data-testid': 'load-progress', hidden: true },
      h('span', { class: 'progress-fill' })),
    h('p', { class: 'notice error', role: 'alert', 'data-testid': 'model-error', hidden: true }),
    h('div', { class: 'model-actions' },
      h('span', { class: 'model-usage', 'data-testid': 'model-usage' }),
      model.read_only ? null
        : h('button', { type: 'button', class: 'danger', 'data-action': 'delete', 'data-testid': 'delete' }, 'Delete'),
      h('button', { type: 'button', 'data-action': 'memory' }, 'Memory'),
      h('button', { type: 'button', 'data-action': 'unload', 'data-testid': 'unload', hidden: true }, 'Unload'),
      h('button', { type: 'button', class: 'primary', 'data-action': 'load', 'data-testid': 'load' }, 'Load')));
}

function fact(term, value, testid) {
  return h('div', {}, h('dt', {}, term), h('dd', testid ? { 'data-testid': testid } : {}, value ?? '—'));
}

export function fitBadge(fit) {
  const label = VERDICT_LABELS[fit.verdict] ?? fit.verdict;
  const short = fit.short_by ? ` · short by ${bytes(fit.short_by)}` : '';
  return h('span', { class: `badge fit-${fit.verdict}`, 'data-testid': 'fit-badge', 'data-verdict': fit.verdict }, label + short);
}

/** Patches loaded marks, buttons and progress in place, so a progress tick does not rebuild cards. */
function update() {
  const status = store.status;
  // The live status is the truth once it has arrived; the catalog's list only until then.
  const loaded = new Map(status
    ? loadedModels(status).map((m) => [m.id, m])
    : (store.catalog?.loaded ?? []).map((id) => [id, null]));
  const loadingId = status?.state === 'loading' ? status.loading?.model : null;
  // One load at a time (the server refuses a second while one runs); unloads need not wait.
  const loadBusy = Boolean(loadingId) || [...pending.values()].includes('load');

  for (const el of list.querySelectorAll('[data-model-id]')) {
    const id = el.dataset.modelId;
    const isLoaded = loaded.has(id);
    const entry = loaded.get(id);
    const mine = pending.get(id);
    el.classList.toggle('is-loaded', isLoaded);
    el.querySelector('[data-testid="loaded-badge"]').hidden = !isLoaded;
    el.querySelector('[data-testid="pinned-badge"]').hidden = !entry?.pinned;
    const loadButton = el.querySelector('[data-action="load"]');
    loadButton.hidden = isLoaded;
    loadButton.disabled = loadBusy || Boolean(mine) || el.dataset.unusable === 'true';
    loadButton.textContent = mine === 'load' || loadingId === id ? 'Loading…' : 'Load';
    const unloadButton = el.querySelector('[data-action="unload"]');
    unloadButton.hidden = !isLoaded;
    unloadButton.disabled = Boolean(mine);
    unloadButton.textContent = mine === 'unload' ? 'Unloading…' : 'Unload';
    const deleteButton = el.querySelector('[data-action="delete"]');
    if (deleteButton) {
      deleteButton.hidden = isLoaded;
      deleteButton.disabled = Boolean(mine) || loadingId === id;
    }
    const usage = el.querySelector('[data-testid="model-usage"]');
    const takes = modelMemory(entry);
    usage.textContent = takes
      ? `Takes ${bytes(takes.bytes)} (${takes.measured ? 'measured' : 'predicted'}) · ` +
        `${tokens(entry.n_ctx)} tokens of context` +
        (entry.busy_slots ? ` · ${entry.busy_slots} busy` : '')
      : '';
    usage.dataset.bytes = takes?.bytes ?? '';

    const bar = el.querySelector('[role="progressbar"]');
    const loadingThis = loadingId === id || (mine === 'load' && !isLoaded);
    bar.hidden = !loadingThis;
    const pct = loadingId === id ? Math.round((status.loading?.progress ?? 0) * 100) : 0;
    bar.setAttribute('aria-valuenow', pct);
    bar.firstElementChild.style.width = `${pct}%`;

    const message = errors.get(id);
    const errorEl = el.querySelector('[data-testid="model-error"]');
    errorEl.hidden = !message;
    errorEl.textContent = message ?? '';
  }
}
