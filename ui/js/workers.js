// The Workers section: other machines a model is spread over (llama.cpp's RPC backend), and this
// machine lent to another Paddock as one. Workers found on the local network (mDNS) are listed
// with their memory and can be ticked; the ticked and the typed ones make the model's worker list
// (PUT /api/settings rpc), which applies when the model loads next. The server starts listening
// for workers at the first GET /api/workers, so the list is asked again every 2 s while shown.

import { get, put, post } from './api.js';
import { h, $, replace } from './dom.js';
import { bytes } from './format.js';
import { store, acceptStatus, loadedModels } from './store.js';

const POLL_MS = 2000;
const DEFAULT_PORT = 50052;

let workers = null; // the last GET /api/workers answer
let readError = null;
let saved = null; // the saved worker list (`configured`)
let draft = null; // the list as edited here; null: as saved
let lending = { on: false };
let lendError = null;
let lendBusy = false;
let saving = false;
let changes = 0; // bumped by every change made here, so an answer asked for before it is dropped
let polling = 0; // the current poll loop; a new one (section shown again) ends the old one
let shown = ''; // what the lists were last drawn from: they are redrawn only when it changes

export function initWorkers() {
  $('#workers-found').addEventListener('change', (event) => {
    const box = event.target.closest('input[data-endpoint]');
    if (box) pick(box.dataset.endpoint, box.checked);
  });
  $('#workers-chosen').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action="remove"]');
    if (button) pick(button.closest('[data-endpoint]').dataset.endpoint, false);
  });
  $('#worker-add').addEventListener('click', add);
  $('#worker-endpoint').addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    add();
  });
  $('#workers-save').addEventListener('click', () => save(false));
  $('#workers-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save(true);
  });
  $('#workers-revert').addEventListener('click', () => {
    draft = null;
    showMessage(null);
    render();
  });
  $('#lend-on').addEventListener('change', toggleLend);
  $('#lend-lan').addEventListener('change', renderLend);
  store.addEventListener('status', render);
}

/** Called when the section is shown (true) or left (false): polls only while shown. */
export function showWorkers(visible) {
  const loop = ++polling;
  if (visible) poll(loop);
}

async function poll(loop) {
  while (loop === polling) {
    await refreshWorkers();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function refreshWorkers() {
  const asked = changes;
  try {
    const answer = await get('/api/workers');
    if (asked !== changes) return;
    workers = answer;
    saved = answer.configured ?? [];
    if (!lendBusy) lending = answer.lending ?? { on: false };
    readError = null;
  } catch (err) {
    readError = `Could not read the workers: ${err.message}`;
  }
  render();
}

/** The list the buttons save: as edited, or as saved. */
function chosen() {
  return draft ?? saved ?? [];
}

function edited() {
  return draft !== null && draft.join('\n') !== (saved ?? []).join('\n');
}

function pick(endpoint, on) {
  const list = chosen();
  if (on === list.includes(endpoint)) return;
  // Order matters (llama.cpp numbers the devices in it): a new one goes last.
  draft = on ? [...list, endpoint] : list.filter((e) => e !== endpoint);
  showMessage(null);
  render();
}

/** Adds what was typed; whether it is a worker address is the server's to say, at Save. */
function add() {
  const input = $('#worker-endpoint');
  const endpoint = input.value.trim();
  if (!endpoint) return;
  pick(endpoint, true);
  input.value = '';
}

async function save(reload) {
  const list = chosen();
  saving = true;
  changes++;
  render();
  showMessage('Saving…');
  let stage = 'save';
  try {
    const answer = await put('/api/settings', { rpc: list });
    saved = answer.settings?.rpc ?? list;
    draft = null;
    const spread = saved.length ? `over ${saved.join(', ')}` : 'on this machine only';
    if (!reload) {
      showMessage(`Saved. The model runs ${spread} when it loads next.`);
      return;
    }
    const model = answer.settings?.model;
    if (!model) {
      showMessage('Saved. No model is configured, so nothing was reloaded.');
      return;
    }
    stage = 'load';
    showMessage(`Saved. Reloading ${model} ${spread}…`);
    acceptStatus(await post('/api/models/load', { model }));
    showMessage(`Reloaded ${model} ${spread}.`);
  } catch (err) {
    showMessage(stage === 'load' ? `Saved, but the model did not load: ${err.message}` : err.message, true);
  } finally {
    saving = false;
    changes++;
    render();
    refreshWorkers();
  }
}

function showMessage(text, isError = false) {
  const el = $('#workers-message');
  el.hidden = !text;
  el.textContent = text ?? '';
  el.classList.toggle('error', isError);
}

/** Endpoint -> ids of the loaded models spread over it. */
function usedBy() {
  const map = new Map();
  for (const m of loadedModels(store.status)) {
    for (const endpoint of m.workers ?? []) map.set(endpoint, [...(map.get(endpoint) ?? []), m.id]);
  }
  return map;
}

function render() {
  const models = loadedModels(store.status).map((m) => [m.id, m.workers ?? []]);
  const key = JSON.stringify([workers, readError, saved, draft, saving, models]);
  renderLend();
  if (key === shown) return;
  shown = key;
  const error = $('#workers-error');
  error.hidden = !readError;
  error.textContent = readError ?? '';
  const used = usedBy();
  renderUsage(models);
  renderFound(used);
  renderChosen(used);
  for (const id of ['#workers-save', '#workers-reload']) $(id).disabled = saving;
  $('#workers-revert').disabled = saving || !edited();
}

/** Which loaded model is spread over which workers. */
function renderUsage(models) {
  replace($('#workers-usage'), models.length
    ? models.map(([id, endpoints]) => h('li', { 'data-testid': 'usage-model', 'data-model-id': id, 'data-workers': endpoints.join(' ') },
      h('strong', {}, id), ' ',
      endpoints.length
        ? ['runs on this machine and ', endpoints.map((e, i) => [i ? ', ' : '', h('code', {}, e)])]
        : h('span', { class: 'hint' }, 'runs on this machine only')))
    : h('li', { class: 'hint' }, 'No model is loaded.'));
}

function renderFound(used) {
  const list = $('#workers-found');
  if (!workers) {
    replace(list, h('li', { class: 'hint' }, readError ? '' : 'Looking for workers…'));
    return;
  }
  const picked = chosen();
  const found = workers.found ?? [];
  replace(list,
    workers.discovery_error ? h('li', { class: 'notice error', 'data-testid': 'discovery-error' }, workers.discovery_error) : null,
    found.length ? null : h('li', { class: 'hint' },
      'None found yet. A worker announces itself a second or two after it starts.'),
    found.map((w) => h('li', { class: 'worker', 'data-testid': 'found-worker', 'data-endpoint': w.endpoint },
      h('label', { class: 'worker-pick' },
        h('input', { type: 'checkbox', checked: picked.includes(w.endpoint), 'data-endpoint': w.endpoint,
          'data-testid': 'found-pick', disabled: saving }),
        'Spread the model over it'),
      h('div', { class: 'worker-title' },
        h('span', { class: 'worker-name' }, w.name, usage(used, w.endpoint, w.in_use)),
        h('code', { class: 'worker-endpoint' }, w.endpoint)),
      memory(w.memory_free, w.memory_total))));
}

/** The badge that says a worker is in use by a loaded model, or saved for the next load. */
function usage(used, endpoint, isSaved) {
  const models = used.get(endpoint);
  if (models) return h('span', { class: 'badge loaded', 'data-testid': 'worker-in-use' }, `In use by ${models.join(', ')}`);
  if (isSaved) return h('span', { class: 'badge quiet', 'data-testid': 'worker-saved' }, 'Used at the next load');
  return null;
}

/** Free and total memory, as a bar (the free share filled) and in words. */
function memory(free, total) {
  const share = total ? Math.min(1, Math.max(0, free / total)) : 0;
  const words = `${bytes(free)} free of ${bytes(total)}`;
  return h('div', { class: 'worker-memory' },
    h('span', { class: 'mem-bar', role: 'img', 'aria-label': words, title: `${bytes(total - free)} in use` },
      h('span', { class: 'mem-free', style: { width: `${(share * 100).toFixed(1)}%` } })),
    h('span', { 'data-testid': 'worker-memory', 'data-free': free, 'data-total': total }, words));
}

/** The model's list as edited, each with what it reported when last asked. */
function renderChosen(used) {
  const list = chosen();
  const devices = workers?.devices ?? [];
  const missing = workers?.missing ?? [];
  const names = new Map((workers?.found ?? []).map((w) => [w.endpoint, w.name]));
  replace($('#workers-chosen'), list.length
    ? list.map((endpoint) => {
      const isSaved = (saved ?? []).includes(endpoint);
      const reported = devices.filter((d) => d.endpoint === endpoint);
      const failed = missing.filter((m) => m.includes(endpoint));
      return h('li', { class: 'worker', 'data-testid': 'chosen-worker', 'data-endpoint': endpoint },
        h('div', { class: 'worker-title' },
          h('span', { class: 'worker-name' }, h('code', {}, endpoint), names.get(endpoint) ?? null,
            isSaved ? usage(used, endpoint, false) : h('span', { class: 'badge unsaved' }, 'Not saved')),
          !isSaved || reported.length || failed.length ? null
            : h('span', { class: 'hint' }, 'Not asked yet: it is asked when the model loads.')),
        h('button', { type: 'button', class: 'small', 'data-action': 'remove', disabled: saving,
          'aria-label': `Remove ${endpoint}` }, 'Remove'),
        reported.length || failed.length
          ? h('ul', { class: 'worker-reports' },
            reported.map((d) => h('li', { 'data-testid': 'worker-device' },
              h('span', {}, d.name, d.description && d.description !== d.name ? h('span', { class: 'hint' }, ` · ${d.description}`) : null),
              memory(d.memory_free, d.memory_total))),
            failed.map((m) => h('li', { class: 'notice error', 'data-testid': 'worker-missing' }, `Did not answer: ${m}`)))
          : null);
    })
    : h('li', { class: 'hint' }, 'None: the model runs on this machine only. Tick a worker above or add one by address.'));
}

async function toggleLend() {
  const on = $('#lend-on').checked;
  const body = on
    ? { on: true, lan: $('#lend-lan').checked, port: Number($('#lend-port').value) || DEFAULT_PORT, cache: $('#lend-cache').checked }
    : { on: false };
  lendBusy = true;
  lendError = null;
  changes++;
  renderLend();
  try {
    lending = await put('/api/lend', body);
  } catch (err) {
    lendError = err.message;
  } finally {
    lendBusy = false;
    changes++;
    renderLend();
  }
}

function renderLend() {
  const toggle = $('#lend-on');
  const on = Boolean(lending?.on);
  if (!lendBusy) toggle.checked = on;
  toggle.disabled = lendBusy;
  if (on) {
    const port = Number(lending.endpoint?.split(':').pop());
    if (port) $('#lend-port').value = port;
    $('#lend-lan').checked = Boolean(lending.lan);
    $('#lend-cache').checked = Boolean(lending.cache);
  }
  for (const id of ['#lend-port', '#lend-lan', '#lend-cache']) $(id).disabled = on || lendBusy;
  $('#lend-warning').classList.toggle('active', $('#lend-lan').checked);
  const state = $('#lend-state');
  state.dataset.on = String(on);
  if (lendBusy) {
    replace(state, toggle.checked ? 'Starting the worker…' : 'Stopping…');
  } else if (on) {
    replace(state, 'Lending on ', h('code', { 'data-testid': 'lend-endpoint' }, lending.endpoint),
      lending.lan ? ': other machines reach it at this machine\'s address on that port, and find it on their Workers page.'
        : ' (this machine only).');
  } else {
    replace(state, 'Not lent.');
  }
  const error = $('#lend-error');
  error.hidden = !lendError;
  error.textContent = lendError ?? '';
}
