// The Models section's Hugging Face card: find a repo's GGUF models and download one into
// Paddock's own folder. Progress comes from the status stream (the start call only answers that
// the download began); when one is done the store refetches the catalog and the model appears.

import { get, post, del } from './api.js';
import { h, $, replace } from './dom.js';
import { bytes } from './format.js';
import { store, acceptDownload } from './store.js';
import { fitBadge } from './models.js';

let found = null; // the last /api/hub answer: {repo, models}
let finding = false;
let starting = null; // id of the hub model whose start call is out
const startErrors = new Map(); // hub model id -> why its download did not start
const actionErrors = new Map(); // download id -> why Cancel or Resume failed
const rows = new Map(); // download id -> its list item, patched in place on each status tick

const STATE_LABELS = { running: 'Downloading', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };

// A lead in words per answer of /api/hub; the server's message follows with the details.
const HUB_ERRORS = {
  400: 'That is not a repository name: write it as owner/name.',
  403: 'This repository is gated: Paddock needs a Hugging Face token to read it.',
  404: 'Hugging Face has no repository by that name.',
  502: 'Hugging Face could not be reached.',
};

export function initDownloads() {
  $('#hub-form').addEventListener('submit', (event) => {
    event.preventDefault();
    find();
  });
  $('#hub-models').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action="download"]');
    if (button) start(found.repo, button.closest('[data-hub-model]').dataset.hubModel);
  });
  $('#download-list').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const row = button.closest('[data-download-id]');
    if (button.dataset.action === 'cancel') cancel(Number(row.dataset.downloadId));
    else if (button.dataset.action === 'resume') resume(Number(row.dataset.downloadId));
  });
  store.addEventListener('status', renderDownloads);
  store.addEventListener('catalog', renderFound); // "in the library" marks and fit hints
}

/** "owner/name" from what people paste: the name itself, or a link to the repo's page. */
function repoName(text) {
  const link = text.trim().match(/^(?:https?:\/\/)?(?:www\.)?huggingface\.co\/([^/?#\s]+\/[^/?#\s]+)/i);
  return link ? link[1] : text.trim();
}

async function find() {
  if (finding) return;
  const input = $('#hub-repo');
  const repo = repoName(input.value);
  input.value = repo;
  found = null;
  startErrors.clear();
  showHubError(repo ? null : [HUB_ERRORS[400]]);
  renderFound();
  if (!repo) return;
  finding = true;
  $('#hub-find').disabled = true;
  $('#hub-find').textContent = 'Finding…';
  try {
    found = await get(`/api/hub?repo=${encodeURIComponent(repo)}`);
  } catch (err) {
    showHubError([HUB_ERRORS[err.status] ?? `Could not list ${repo}.`, err.message]);
  } finally {
    finding = false;
    $('#hub-find').disabled = false;
    $('#hub-find').textContent = 'Find';
    renderFound();
  }
}

function showHubError(lines) {
  const el = $('#hub-error');
  el.hidden = !lines;
  replace(el, lines ? [h('strong', {}, lines[0]), lines[1] ? ` ${lines[1]}` : null] : null);
}

function renderFound() {
  const list = $('#hub-models');
  list.hidden = !found;
  if (!found) {
    replace(list);
    return;
  }
  if (!found.models.length) {
    replace(list, h('li', { class: 'empty' }, `${found.repo} holds no GGUF models.`));
    return;
  }
  replace(list, found.models.map(hubModel));
  updateFound();
}

function hubModel(model) {
  // Fit is only told for a copy already on disk: the catalog has its budget, read from the file.
  const onDisk = store.catalog?.models.find((m) => m.id === model.id);
  const parts = model.files.length > 1 ? ` in ${model.files.length} parts` : '';
  return h('li', { class: 'hub-model', 'data-hub-model': model.id, 'data-testid': 'hub-model' },
    h('div', { class: 'hub-model-title' },
      h('span', { class: 'hub-model-name' }, model.id),
      h('span', { class: 'hint', 'data-testid': 'hub-model-size' }, bytes(model.total_size) + parts)),
    h('div', { class: 'badges' },
      onDisk ? h('span', { class: 'badge quiet', 'data-testid': 'in-library' }, 'In library') : null,
      onDisk?.budget?.fits ? fitBadge(onDisk.budget.fits) : null),
    h('button', { type: 'button', 'data-action': 'download', 'data-testid': 'hub-download' }, 'Download'),
    h('p', { class: 'notice error', role: 'alert', 'data-testid': 'hub-download-error', hidden: true }));
}

/** Download buttons and start errors, patched in place (status ticks come ten times a second). */
function updateFound() {
  if (!found) return;
  const running = (store.status?.downloads ?? []).filter((d) => d.state === 'running');
  // The server takes one download per repo at a time (409 otherwise).
  const repoBusy = running.some((d) => d.repo === found.repo);
  for (const el of $('#hub-models').querySelectorAll('[data-hub-model]')) {
    const id = el.dataset.hubModel;
    const button = el.querySelector('[data-action="download"]');
    const downloading = running.some((d) => d.repo === found.repo && d.model === id);
    button.disabled = Boolean(starting) || repoBusy;
    button.textContent = starting === id ? 'Starting…' : downloading ? 'Downloading…' : 'Download';
    const error = el.querySelector('[data-testid="hub-download-error"]');
    error.hidden = !startErrors.has(id);
    error.textContent = startErrors.get(id) ?? '';
  }
}

async function start(repo, model) {
  starting = model;
  startErrors.delete(model);
  updateFound();
  try {
    acceptDownload(await post('/api/downloads', { repo, model }));
  } catch (err) {
    startErrors.set(model, `The download did not start: ${err.message}`);
  } finally {
    starting = null;
    updateFound();
  }
}

async function cancel(id) {
  actionErrors.delete(id);
  try {
    await del(`/api/downloads/${id}`);
  } catch (err) {
    actionErrors.set(id, `Could not cancel: ${err.message}`);
    renderDownloads();
  }
}

/** Starts the same model again: the server resumes from the kept .part file. */
async function resume(id) {
  const download = store.status?.downloads?.find((d) => d.id === id);
  if (!download) return;
  actionErrors.delete(id);
  try {
    acceptDownload(await post('/api/downloads', { repo: download.repo, model: download.model }));
  } catch (err) {
    actionErrors.set(id, `Could not resume: ${err.message}`);
    renderDownloads();
  }
}

/** The newest download of each model: a resumed download takes the cancelled one's place. */
function current(downloads) {
  const newest = new Map();
  for (const d of [...downloads].sort((a, b) => a.id - b.id)) newest.set(`${d.repo}\n${d.model}`, d);
  return [...newest.values()];
}

function renderDownloads() {
  const list = $('#download-list');
  const shown = current(store.status?.downloads ?? []);
  const ids = new Set(shown.map((d) => d.id));
  for (const [id, row] of rows) {
    if (!ids.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  for (const d of shown) {
    if (!rows.has(d.id)) {
      rows.set(d.id, downloadRow(d));
      list.prepend(rows.get(d.id)); // newest first, next to the models it came from
    }
    patch(rows.get(d.id), d);
  }
  list.hidden = !shown.length;
  updateFound();
}

function downloadRow(d) {
  return h('li', { class: 'download', 'data-download-id': d.id, 'data-testid': 'download' },
    h('div', { class: 'download-head' },
      h('div', { class: 'model-title' },
        h('span', { class: 'hub-model-name' }, d.model),
        h('span', { class: 'model-id' }, d.repo)),
      h('span', { class: 'download-state', 'data-testid': 'download-state' })),
    h('div', { class: 'progress', role: 'progressbar', 'aria-label': `Downloading ${d.model}`,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'data-testid': 'download-progress' },
      h('span', { class: 'progress-fill' })),
    h('div', { class: 'download-foot' },
      h('span', { class: 'download-figures', 'data-testid': 'download-figures' }),
      h('button', { type: 'button', class: 'small', 'data-action': 'cancel', 'data-testid': 'download-cancel' }, 'Cancel'),
      h('button', { type: 'button', class: 'small', 'data-action': 'resume', 'data-testid': 'download-resume' }, 'Resume')),
    h('p', { class: 'notice error', role: 'alert', 'data-testid': 'download-error', hidden: true }));
}

function patch(row, d) {
  // Rounded down, so 100% means every byte is in (and checked), not 99.6%.
  const pct = d.state === 'done' ? 100 : d.total_bytes ? Math.floor((100 * d.done_bytes) / d.total_bytes) : 0;
  row.dataset.state = d.state;
  row.querySelector('[data-testid="download-state"]').textContent = STATE_LABELS[d.state] ?? d.state;
  const bar = row.querySelector('[role="progressbar"]');
  bar.setAttribute('aria-valuenow', pct);
  bar.firstElementChild.style.width = `${pct}%`;
  const speed = d.state === 'running' && d.bytes_per_sec > 0 ? ` · ${bytes(d.bytes_per_sec)}/s` : '';
  row.querySelector('[data-testid="download-figures"]').textContent =
    `${pct}% · ${bytes(d.done_bytes)} of ${bytes(d.total_bytes)}${speed}`;
  row.querySelector('[data-action="cancel"]').hidden = d.state !== 'running';
  row.querySelector('[data-action="resume"]').hidden = d.state !== 'cancelled' && d.state !== 'failed';
  const message = actionErrors.get(d.id) ?? d.error;
  const error = row.querySelector('[data-testid="download-error"]');
  error.hidden = !message;
  error.textContent = message ?? '';
}
