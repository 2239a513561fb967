// Paddock's web UI: the same page in the desktop app's window and in a browser. It talks only to
// the server's HTTP API (/api for administration, /v1 for chat). This file wires the sections,
// the header and the API key prompt; each section lives in ui/js/.

import { onKeyNeeded } from './js/api.js';
import { $ } from './js/dom.js';
import { bytes, STATE_LABELS } from './js/format.js';
import { store, watchStatus, refreshCatalog, memoryInUse } from './js/store.js';
import { initModels } from './js/models.js';
import { initDownloads } from './js/downloads.js';
import { initMemory, showMemoryFor } from './js/memory.js';
import { initChat } from './js/chat.js';
import { initServer, refreshServer } from './js/server.js';
import { initBench, refreshBench } from './js/bench.js';
import { initWorkers, showWorkers } from './js/workers.js';

const SECTIONS = ['models', 'memory', 'chat', 'server', 'workers', 'benchmarks'];

function showSection() {
  const wanted = location.hash.slice(1);
  const name = SECTIONS.includes(wanted) ? wanted : 'models';
  for (const id of SECTIONS) $(`#${id}`).hidden = id !== name;
  for (const link of document.querySelectorAll('.sidebar a')) {
    if (link.dataset.section === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Paddock`;
  if (name === 'server') refreshServer();
  if (name === 'benchmarks') refreshBench();
  showWorkers(name === 'workers');
}

/**
 * Header: state dot and words, the most recently used model (and how many more are loaded), load
 * progress, and the memory every loaded model takes of the machine's.
 */
function renderHeader() {
  const s = store.status;
  const dot = $('#state-dot');
  const state = store.connected ? s?.state ?? '' : 'offline';
  dot.dataset.state = state;
  $('#header-state').textContent = store.connected ? STATE_LABELS[s?.state] ?? s?.state ?? '' : s ? 'Disconnected' : 'Connecting…';
  $('#header-state').dataset.state = state;

  const loading = s?.state === 'loading' ? s.loading : null;
  $('#header-model').textContent = loading ? loading.model : s?.model?.id ?? '';
  const others = (s?.models ?? []).filter((m) => m.id !== $('#header-model').textContent);
  const more = $('#header-more');
  more.hidden = !others.length;
  more.textContent = `+${others.length}`;
  more.title = others.length ? `Also loaded: ${others.map((m) => m.id).join(', ')}` : '';
  const progress = $('#header-progress');
  progress.hidden = !loading;
  if (loading) progress.firstElementChild.style.width = `${Math.round((loading.progress ?? 0) * 100)}%`;

  const total = s?.memory?.machine?.total_memory;
  const used = memoryInUse(s);
  const memory = $('#header-memory');
  memory.textContent = total ? `${used ? bytes(used.bytes) : '0'} of ${bytes(total)}` : '';
  memory.dataset.bytes = used?.bytes ?? 0;
  memory.title = used
    ? [`Loaded models take ${bytes(used.bytes)} of the machine's ${bytes(total)} (weights, KV cache, compute):`,
      ...used.models.map((m) => `${m.id}: ${bytes(m.bytes)} (${m.measured ? 'measured' : 'predicted'})`)].join('\n')
    : 'No model loaded';
}

/** The key prompt for a server that answers 401: resolves to the key, or null when cancelled. */
function promptForKey() {
  const dialog = $('#key-dialog');
  const input = $('#key-input');
  input.value = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'save' && input.value.trim() ? input.value.trim() : null);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}

function start() {
  onKeyNeeded(promptForKey);
  initModels({
    showMemoryFor: (id) => {
      showMemoryFor(id);
      location.hash = '#memory';
    },
  });
  initDownloads();
  initMemory();
  initChat();
  initServer();
  initBench();
  initWorkers();
  store.addEventListener('status', renderHeader);
  store.addEventListener('connection', () => {
    renderHeader();
    // Back after a drop (server restarted): the library and settings may have changed.
    if (store.connected) {
      refreshCatalog();
      if (!$('#server').hidden) refreshServer();
    }
  });
  window.addEventListener('hashchange', showSection);
  showSection();
  renderHeader();
  refreshCatalog();
  watchStatus();
}

start();
