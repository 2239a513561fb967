// The Memory section: first what every loaded model takes together (one bar segment per model,
// then the OS reserve and the headroom left), then the budget of one model (the most recently
// used loaded one unless another is picked), drawn against the machine's limit, with what-if
// controls that ask /api/budget before anything loads. Every number cell carries its raw byte
// count in data-bytes, so tests compare it exactly.

import { get } from './api.js';
import { h, $, replace, debounce } from './dom.js';
import { bytes, tokens, tps, KV_TYPES } from './format.js';
import { store, loadedModels, loadedIds, modelMemory, memoryInUse } from './store.js';
import { fitBadge } from './models.js';

let picked = null; // a model chosen in the picker or from a card; null follows `current`
let current = null; // the loaded model shown unless one is picked: the last loaded, kept while it stays loaded
let shownModel = null; // the model whose defaults fill the controls now
let answer = null; // the last /api/budget answer for shownModel
let sequence = 0; // drops answers that arrive after a newer question

const form = () => $('#whatif');

export function initMemory() {
  for (const select of [$('#whatif-ctk'), $('#whatif-ctv')]) {
    replace(select, KV_TYPES.map((t) => h('option', { value: t }, t)));
  }
  const ask = debounce(askWhatIf, 250);
  form().addEventListener('input', (event) => {
    if (event.target.name === 'model') return;
    ask();
  });
  form().addEventListener('submit', (event) => event.preventDefault());
  $('#whatif-model').addEventListener('change', (event) => {
    picked = event.target.value;
    follow();
  });
  $('#whatif-reset').addEventListener('click', () => askDefaults(shownModel));
  store.addEventListener('catalog', () => {
    fillPicker();
    follow();
    renderTogether();
  });
  store.addEventListener('status', ({ detail: { before, status } }) => {
    // After a load, show the model that was loaded, whatever was picked before. Otherwise the
    // model shown stays while it is loaded (requests to others do not move the view).
    const ids = loadedIds(status);
    const added = ids.filter((id) => before && !loadedIds(before).includes(id));
    if (added.length || (before?.state === 'loading' && status.state !== 'loading')) {
      picked = null;
      current = added.at(-1) ?? status.model?.id ?? null;
    } else if (!ids.includes(current)) {
      current = status.model?.id ?? null;
    }
    if (loadedIds(before).join('\n') !== loadedIds(status).join('\n')) fillPicker();
    follow();
    renderMeasured();
    renderTogether();
  });
}

/** Shows the budget of `id` (from a model card's Memory button). */
export function showMemoryFor(id) {
  picked = id;
  fillPicker();
  follow();
}

function target() {
  const ids = store.catalog?.models?.map((m) => m.id) ?? [];
  const status = store.status;
  const live = status?.state === 'loading' ? status.loading?.model : current;
  const want = picked ?? live;
  return want && ids.includes(want) ? want : (ids[0] ?? null);
}

/** Asks for the defaults of the model to show when it changed. */
function follow() {
  const id = target();
  if ($('#whatif-model').value !== id && id) $('#whatif-model').value = id;
  if (id && id !== shownModel) askDefaults(id);
  if (!id) {
    shownModel = null;
    answer = null;
    render();
  }
}

function fillPicker() {
  const loaded = loadedIds(store.status);
  const models = store.catalog?.models ?? [];
  replace($('#whatif-model'), models.map((m) =>
    h('option', { value: m.id }, loaded.includes(m.id) ? `${m.id} (loaded)` : m.id)));
  const id = target();
  if (id) $('#whatif-model').value = id;
}

/** The serving settings as /api/budget reports them become the controls' starting values. */
async function askDefaults(id) {
  if (!id) return;
  shownModel = id;
  const result = await ask(`/api/budget?model=${encodeURIComponent(id)}`);
  if (!result) return;
  const s = result.settings ?? {};
  const f = form().elements;
  f.ctx_size.value = s.n_ctx ?? s.ctx_size ?? '';
  f.parallel.value = s.n_parallel ?? s.parallel ?? '';
  f.cache_type_k.value = s.cache_type_k ?? 'f16';
  f.cache_type_v.value = s.cache_type_v ?? 'f16';
}

function askWhatIf() {
  if (!shownModel) return;
  const f = form().elements;
  const query = new URLSearchParams({ model: shownModel });
  if (f.ctx_size.value) query.set('ctx_size', f.ctx_size.value);
  if (f.parallel.value) query.set('parallel', f.parallel.value);
  query.set('cache_type_k', f.cache_type_k.value);
  query.set('cache_type_v', f.cache_type_v.value);
  ask(`/api/budget?${query}`);
}

async function ask(url) {
  const mine = ++sequence;
  const error = $('#memory-error');
  try {
    const result = await get(url);
    if (mine !== sequence) return null;
    error.hidden = true;
    markStale(false);
    answer = result;
    render();
    return result;
  } catch (err) {
    if (mine !== sequence) return null;
    // A bad what-if value: keep the last good numbers, say what was wrong.
    error.hidden = false;
    error.textContent = err.message;
    markStale(true);
    return null;
  }
}

/** Dims the figures while they answer an earlier question than the one now in the controls. */
function markStale(stale) {
  $('#budget-card').classList.toggle('stale', stale);
  $('#budget-rows').closest('.card').classList.toggle('stale', stale);
}

const PARTS = [
  { key: 'weights', label: 'Weights', testid: 'budget-weights', of: (b) => b.weights_gpu + b.weights_cpu },
  { key: 'kv', label: 'KV cache', testid: 'budget-kv', of: (b) => b.kv_cache },
  { key: 'recurrent', label: 'Recurrent state', testid: 'budget-recurrent', of: (b) => b.recurrent_state ?? 0, optional: true },
  { key: 'compute', label: 'Compute', testid: 'budget-compute', of: (b) => b.compute },
  { key: 'draft', label: 'Draft model', testid: 'budget-draft', of: (b) => b.draft ?? 0, optional: true },
  { key: 'os', label: 'OS reserve', testid: 'budget-os', of: (b) => b.os_reserve },
];

function render() {
  const budget = answer?.budget;
  $('#budget-card').hidden = !budget;
  const machine = store.catalog?.machine;
  $('#memory-machine').textContent = machine
    ? `${bytes(machine.total_memory)} ${machine.unified ? 'unified memory' : 'RAM'}` +
      (machine.gpu_memory ? ` · ${bytes(machine.gpu_memory)} GPU` : '')
    : '';
  if (!budget) {
    replace($('#budget-rows'), h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No model to show.')));
    return;
  }
  renderSummary(budget);
  renderBar(budget);
  renderTable(budget);
}

function renderSummary(budget) {
  replace($('#budget-summary'),
    fitBadge(budget.fits),
    h('span', {}, 'Limit ', cell('budget-limit', budget.limit), budget.pool ? ` (${poolLabel(budget.pool)})` : ''),
    h('span', {}, 'Largest context that fits ',
      h('strong', { 'data-testid': 'budget-largest-context', 'data-value': answer.largest_context ?? '' },
        answer.largest_context ? `${tokens(answer.largest_context)} tokens` : 'none')),
    answer.tg_ceiling
      ? h('span', {}, 'Generation ceiling ', h('strong', { 'data-testid': 'budget-tg-ceiling' }, tps(answer.tg_ceiling)))
      : null);
}

function poolLabel(pool) {
  return { unified: 'unified memory', ram: 'RAM', gpu: 'GPU memory' }[pool] ?? pool;
}

function renderBar(budget) {
  const parts = PARTS.map((p) => ({ ...p, bytes: p.of(budget) })).filter((p) => !p.optional || p.bytes > 0);
  if (budget.headroom > 0) parts.push({ key: 'headroom', label: 'Headroom', bytes: budget.headroom });
  // Over the limit, the bar spans the total and a marker shows where the limit falls.
  const scale = Math.max(budget.limit, budget.total);
  const bar = $('#budget-bar');
  bar.setAttribute('aria-label',
    `${bytes(budget.total)} of ${bytes(budget.limit)}: ` + parts.map((p) => `${p.label} ${bytes(p.bytes)}`).join(', '));
  replace(bar,
    parts.map((p) => h('span', {
      class: `segment seg-${p.key}`, title: `${p.label}: ${bytes(p.bytes)}`,
      style: { width: `${(100 * p.bytes) / scale}%` },
    })),
    budget.total > budget.limit
      ? h('span', { class: 'limit-marker', title: `Limit ${bytes(budget.limit)}`, style: { left: `${(100 * budget.limit) / scale}%` } })
      : null);
  replace($('#budget-legend'), parts.map((p) =>
    h('li', {}, h('span', { class: `swatch seg-${p.key}`, 'aria-hidden': 'true' }), `${p.label} `, h('span', { class: 'muted' }, bytes(p.bytes)))));
}

function renderTable(budget) {
  const measured = measuredFor(budget);
  const rows = PARTS.filter((p) => !p.optional || p.of(budget) > 0).map((p) =>
    h('tr', {}, h('th', { scope: 'row' }, p.label, p.key === 'weights' && budget.weights_gpu > 0
      ? h('span', { class: 'hint' }, ` ${bytes(budget.weights_gpu)} GPU + ${bytes(budget.weights_cpu)} CPU`) : null),
    h('td', { class: 'num' }, cell(p.testid, p.of(budget))),
    h('td', { class: 'num' }, cell(p.testid.replace('budget-', 'measured-'), measured?.[p.key]))));
  rows.push(
    h('tr', { class: 'total' }, h('th', { scope: 'row' }, 'Total'),
      h('td', { class: 'num' }, cell('budget-total', budget.total)),
      h('td', { class: 'num' }, cell('measured-total', measured?.total))),
    h('tr', { class: budget.headroom < 0 ? 'over' : '' }, h('th', { scope: 'row' }, 'Headroom'),
      h('td', { class: 'num' }, cell('budget-headroom', budget.headroom)),
      h('td', { class: 'num' }, cell('measured-headroom', measured?.headroom))));
  replace($('#budget-rows'), rows);
  const model = loadedEntry(shownModel);
  const note = measured
    ? `Measured: ${shownModel} as loaded now (${tokens(model.n_ctx)} tokens of context, ${model.n_parallel} parallel); ` +
      'its total counts the OS reserve, which is set aside, not measured.'
    : 'Measured figures appear once this model is loaded.';
  $('#budget-footnote').textContent = `Predicted figures follow the settings above. ${note}`;
}

/** The status entry of `id` when it is loaded. */
function loadedEntry(id) {
  return loadedModels(store.status).find((m) => m.id === id) ?? null;
}

/**
 * Measured bytes of the shown model, when it is loaded. The server may measure only some parts
 * (weights first); the total and headroom need all three.
 */
function measuredFor(budget) {
  const m = loadedEntry(shownModel)?.measured;
  if (!m || !Number.isFinite(m.weights)) return null;
  const out = { weights: m.weights, kv: m.kv_cache, recurrent: m.recurrent_state, compute: m.compute, draft: null, os: null };
  if ([m.weights, m.kv_cache, m.compute].every(Number.isFinite)) {
    // The OS reserve and a draft model are not measured: the measured total counts the
    // predicted ones.
    out.total = m.weights + m.kv_cache + (m.recurrent_state ?? 0) + m.compute + (budget.draft ?? 0) + budget.os_reserve;
    out.headroom = budget.limit - out.total;
  }
  return out;
}

function renderMeasured() {
  if (answer?.budget) renderTable(answer.budget);
}

/**
 * What the loaded models take together, as the server's fit check adds them up: each model's
 * measured memory (else its prediction), the OS reserve once, and what is left of the limit.
 */
function renderTogether() {
  const status = store.status;
  const card = $('#together-card');
  const used = memoryInUse(status);
  card.hidden = !used;
  if (!used) return;
  const models = loadedModels(status);
  const machine = status.memory?.machine ?? store.catalog?.machine;
  const budget = models.map((m) => m.predicted).find(Boolean);
  const limit = budget?.limit ?? machine?.total_memory ?? 0;
  const os = budget?.os_reserve ?? machine?.os_reserve ?? 0;
  const total = used.bytes + os;
  const headroom = limit - total;
  const recent = status.model?.id;

  const parts = used.models.map((m, i) => ({
    ...m, key: `m${i % 6}`, label: m.id,
    note: `${m.measured ? 'measured' : 'predicted'}${m.id === recent ? ', last used' : ''}`,
  }));
  const shares = [...parts, { key: 'os', label: 'OS reserve', bytes: os, note: 'set aside' }];
  if (headroom > 0) shares.push({ key: 'headroom', label: 'Headroom', bytes: headroom, note: 'free' });
  const scale = Math.max(limit, total) || 1;
  const bar = $('#together-bar');
  bar.setAttribute('aria-label', `Loaded models and the OS reserve take ${bytes(total)} of ${bytes(limit)}: ` +
    shares.map((p) => `${p.label} ${bytes(p.bytes)}`).join(', '));
  replace(bar,
    shares.map((p) => h('span', {
      class: `segment seg-${p.key}${p.measured === false ? ' predicted' : ''}`,
      title: `${p.label}: ${bytes(p.bytes)} (${p.note})`,
      style: { width: `${(100 * p.bytes) / scale}%` },
      'data-testid': p.id ? 'together-segment' : `together-seg-${p.key}`,
      'data-model-id': p.id ?? null,
      'data-bytes': p.bytes,
    })),
    total > limit
      ? h('span', { class: 'limit-marker', title: `Limit ${bytes(limit)}`, style: { left: `${(100 * limit) / scale}%` } })
      : null);
  replace($('#together-legend'), shares.map((p) =>
    h('li', p.id ? { 'data-testid': 'together-model', 'data-model-id': p.id } : {},
      h('span', { class: `swatch seg-${p.key}`, 'aria-hidden': 'true' }),
      `${p.label} `, h('span', { class: 'muted' }, `${bytes(p.bytes)} · ${p.note}`))));

  const resident = status.memory?.process_resident;
  replace($('#together-summary'),
    h('span', {}, `${models.length} model${models.length === 1 ? '' : 's'} loaded `, cell('together-models', used.bytes)),
    h('span', {}, 'With the OS reserve ', cell('together-total', total), ' of ', cell('together-limit', limit),
      budget?.pool ? ` (${poolLabel(budget.pool)})` : ''),
    h('span', { class: headroom < 0 ? 'over' : '' }, 'Headroom ', cell('together-headroom', headroom)),
    Number.isFinite(resident)
      ? h('span', { title: 'This process as the OS counts it: weights paged in, KV caches, compute buffers and the server itself' },
        'Process resident ', cell('together-resident', resident))
      : null);

  const rows = models.map((m, i) => {
    const p = m.predicted;
    const predicted = p ? p.weights_gpu + p.weights_cpu + p.kv_cache + (p.recurrent_state || 0) + p.compute : null;
    const measured = modelMemory(m)?.measured ? used.models[i].bytes : null;
    return h('tr', { 'data-testid': 'together-row', 'data-model-id': m.id },
      h('th', { scope: 'row' }, h('span', { class: `swatch seg-m${i % 6}`, 'aria-hidden': 'true' }), ` ${m.id}`,
        m.pinned ? h('span', { class: 'hint' }, ' pinned') : null),
      h('td', { class: 'num' }, `${tokens(m.n_ctx)} × ${m.n_parallel}`),
      h('td', { class: 'num' }, m.busy_slots ? `${m.busy_slots} busy` : idle(m.idle_secs)),
      h('td', { class: 'num' }, cell('together-predicted', predicted)),
      h('td', { class: 'num' }, cell('together-measured', measured)));
  });
  replace($('#together-rows'), rows);
}

/** "idle 3 min" from seconds. */
function idle(secs) {
  if (!Number.isFinite(secs)) return '—';
  if (secs < 60) return 'idle <1 min';
  if (secs < 3600) return `idle ${Math.floor(secs / 60)} min`;
  return `idle ${Math.floor(secs / 3600)} h`;
}

function cell(testid, value) {
  if (value === null || value === undefined) return h('span', { class: 'muted', 'data-testid': testid }, '—');
  return h('span', { 'data-testid': testid, 'data-bytes': value, title: `${Number(value).toLocaleString('en-US')} bytes` }, bytes(value));
}
