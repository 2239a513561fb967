// The page's shared facts: the server status (live from /api/events) and the model catalog
// (/api/models, refetched when a model is loaded or unloaded or a download finishes). Sections
// subscribe; none fetch these.

import { get, send, readEvents } from './api.js';

export const store = new EventTarget();
store.status = null; // the last /api/status JSON
store.catalog = null; // the last /api/models JSON
store.connected = false;

function setStatus(status) {
  const before = store.status;
  store.status = status;
  store.dispatchEvent(new CustomEvent('status', { detail: { before, status } }));
  // The catalog's `loaded` list changes when a model comes or goes, or a load starts or ends.
  const loading = (s) => s?.state === 'loading';
  if (before && (loadedIds(before).join('\n') !== loadedIds(status).join('\n') || loading(before) !== loading(status) ||
      finishedDownloads(status).some((id) => !finishedDownloads(before).includes(id)))) {
    refreshCatalog();
  }
}

/** Every loaded model's status entry, in load order (oldest first). */
export function loadedModels(status) {
  return status?.models ?? [];
}

/** Ids of the loaded models, in load order. */
export function loadedIds(status) {
  return loadedModels(status).map((m) => m.id);
}

/** Ids of the downloads that are done: each one is a new model in the library. */
function finishedDownloads(status) {
  return (status?.downloads ?? []).filter((d) => d.state === 'done').map((d) => d.id);
}

function setConnected(connected) {
  if (store.connected === connected) return;
  store.connected = connected;
  store.dispatchEvent(new CustomEvent('connection', { detail: connected }));
}

let catalogRequest = null;
let catalogStale = false;

/**
 * Refetches /api/models. While one request is on its way, callers share it, and one more
 * follows it: the one on its way may have been asked before the change a caller is about.
 */
export function refreshCatalog() {
  if (catalogRequest) {
    catalogStale = true;
    return catalogRequest;
  }
  catalogRequest = get('/api/models')
    .then((catalog) => {
      store.catalog = catalog;
      store.catalogError = null;
      store.dispatchEvent(new CustomEvent('catalog', { detail: catalog }));
    })
    .catch((err) => {
      store.catalogError = err;
      store.dispatchEvent(new CustomEvent('catalog', { detail: null }));
    })
    .finally(() => {
      catalogRequest = null;
      if (catalogStale) {
        catalogStale = false;
        refreshCatalog();
      }
    });
  return catalogRequest;
}

/** Applies a status answer from a call (load/unload answer with the status JSON). */
export function acceptStatus(status) {
  if (status && status.state) setStatus(status);
}

/**
 * Applies a download status from a call (starting one answers with it), so the page shows the
 * download at once rather than at the stream's next tick.
 */
export function acceptDownload(download) {
  if (!store.status || download?.id === undefined) return;
  const others = (store.status.downloads ?? []).filter((d) => d.id !== download.id);
  setStatus({ ...store.status, downloads: [...others, download] });
}

/**
 * Follows /api/events for as long as the page lives. When the stream drops (server restart,
 * network), waits with a growing pause, then reconnects; the first event is the full status.
 */
export async function watchStatus() {
  let pause = 1000;
  for (;;) {
    try {
      const res = await send('GET', '/api/events', undefined, { accept: 'text/event-stream' });
      for await (const { event, data } of readEvents(res)) {
        if (event !== 'status') continue;
        setConnected(true);
        pause = 1000;
        setStatus(JSON.parse(data));
      }
    } catch (err) {
      console.warn('status stream:', err);
    }
    setConnected(false);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 10000);
  }
}

/**
 * What one loaded model takes (weights, KV cache, recurrent state, compute): llama.cpp's measured
 * figures when it reported them all, else the budget predicted before the load.
 */
export function modelMemory(model) {
  const m = model?.measured;
  if (m && [m.weights, m.kv_cache, m.compute].every(Number.isFinite)) {
    return { bytes: m.weights + m.kv_cache + (m.recurrent_state ?? 0) + m.compute, measured: true };
  }
  const p = model?.predicted;
  if (p) {
    const bytes = p.weights_gpu + p.weights_cpu + p.kv_cache + (p.recurrent_state || 0) + p.compute;
    return { bytes, measured: false };
  }
  return null;
}

/**
 * What every loaded model takes together: the sum of modelMemory over them, each one listed
 * (`id`, `bytes`, `measured`). Null when nothing is loaded.
 */
export function memoryInUse(status) {
  const models = loadedModels(status)
    .map((m) => ({ id: m.id, ...(modelMemory(m) ?? { bytes: 0, measured: false }) }));
  if (!models.length) return null;
  return {
    bytes: models.reduce((sum, m) => sum + m.bytes, 0),
    measured: models.every((m) => m.measured),
    models,
  };
}
