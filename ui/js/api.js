// Every call to Paddock's HTTP API goes through here: it sends the API key and, when the server
// answers 401, asks the person for one (once, however many calls were refused at the same time).

const KEY_STORAGE = 'paddock.apiKey';

class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || '';
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

let promptForKey = async () => null; // set by app.js to the key dialog
let pendingKey = null; // the one prompt in flight, shared by concurrent 401s

export function onKeyNeeded(prompt) {
  promptForKey = prompt;
}

function askForKey() {
  pendingKey ??= promptForKey().finally(() => (pendingKey = null));
  return pendingKey;
}

function headers(hasBody) {
  const h = { Accept: 'application/json' };
  // State-changing /api calls must be JSON: the server's cross-site guard checks the type.
  if (hasBody) h['Content-Type'] = 'application/json';
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

/** fetch() with the key; on 401 asks for a key and tries again until it works or is cancelled. */
export async function send(method, path, body, { signal, accept } = {}) {
  for (;;) {
    const init = { method, headers: headers(body !== undefined), signal };
    if (accept) init.headers.Accept = accept;
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(path, init);
    if (res.status === 401) {
      const key = await askForKey();
      if (key) {
        setApiKey(key);
        continue;
      }
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }
}

async function errorFrom(res) {
  let message = `${res.status} ${res.statusText}`;
  let code = null;
  try {
    const body = await res.json();
    message = body?.error?.message || message;
    code = body?.error?.code ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message, code);
}

async function json(method, path, body, opts) {
  const res = await send(method, path, body, opts);
  return res.status === 204 ? null : res.json();
}

export const get = (path, opts) => json('GET', path, undefined, opts);
export const post = (path, body = {}, opts) => json('POST', path, body, opts);
export const put = (path, body, opts) => json('PUT', path, body, opts);
export const del = (path, opts) => json('DELETE', path, undefined, opts);

/**
 * Reads a Server-Sent Events body and yields `{event, data}` per message. Used for /api/events
 * and for streamed chat completions alike: fetch can send the Authorization header, which
 * EventSource cannot, so one reader serves both the keyed and the open server.
 */
export async function* readEvents(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const message = parseBlock(block);
        if (message) yield message;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(':')) continue; // comment, e.g. ": keep-alive"
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { event, data: data.join('\n') } : null;
}
