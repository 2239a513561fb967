// The Chat section: a short conversation with a loaded model over /v1/chat/completions, streamed,
// so tokens show as they arrive. With several models loaded the picker says which one answers
// (the most recently used one until a person picks; the conversation then stays with it); every
// request names its model, as the server refuses one that does not when several are loaded.
// Stop aborts the request; the server frees the slot when the connection drops.

import { send, readEvents } from './api.js';
import { h, $, replace } from './dom.js';
import { tps } from './format.js';
import { store, loadedIds } from './store.js';

const messages = []; // the conversation sent with each request: {role, content}
let controller = null; // AbortController of the reply being streamed
let chosen = null; // the model picked or last talked to; null follows the most recently used one

export function initChat() {
  const form = $('#chat-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sendPrompt();
  });
  $('#chat-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $('#chat-stop').addEventListener('click', () => controller?.abort());
  $('#chat-clear').addEventListener('click', () => {
    controller?.abort();
    messages.length = 0;
    const empty = $('#chat-empty');
    $('#chat-log').replaceChildren(empty);
    empty.hidden = false;
    $('#chat-stats').textContent = '';
  });
  $('#chat-model-select').addEventListener('change', (event) => {
    chosen = event.target.value || null;
    updateModel();
  });
  store.addEventListener('status', updateModel);
  updateModel();
}

/** The model the next message goes to: the one chosen while it stays loaded, else the last used. */
function loadedModel() {
  const ids = loadedIds(store.status);
  if (chosen && ids.includes(chosen)) return chosen;
  const recent = store.status?.model?.id;
  return ids.includes(recent) ? recent : (ids.at(-1) ?? null);
}

function updateModel() {
  const model = loadedModel();
  const ids = loadedIds(store.status);
  const select = $('#chat-model-select');
  if ([...select.options].map((o) => o.value).join('\n') !== ids.join('\n')) {
    replace(select, ids.map((id) => h('option', { value: id }, id)));
  }
  select.value = model ?? '';
  select.disabled = ids.length < 2 || Boolean(controller);
  $('#chat-model').textContent = model ? `Talking to ${model}` : 'Load a model to chat with it.';
  $('#chat-send').disabled = !model || Boolean(controller);
}

async function sendPrompt() {
  const input = $('#chat-input');
  const prompt = input.value.trim();
  const model = loadedModel();
  if (!prompt || !model || controller) return;
  chosen = model; // the conversation stays with this model while it is loaded
  input.value = '';
  messages.push({ role: 'user', content: prompt });
  $('#chat-empty').hidden = true;
  bubble('user', prompt);
  const reply = bubble('assistant', '');
  reply.classList.add('streaming');
  reply.setAttribute('aria-busy', 'true');

  controller = new AbortController();
  setBusy(true);
  const stats = $('#chat-stats');
  stats.textContent = 'Waiting for the first token…';
  const maxTokens = Number($('#chat-max-tokens').value) || undefined;
  const started = performance.now();
  let firstToken = null;
  let pieces = 0;
  let timings = null;
  let usage = null;
  let text = '';
  let ending = 'done';
  try {
    const res = await send('POST', '/v1/chat/completions', {
      model, messages, stream: true, max_tokens: maxTokens, stream_options: { include_usage: true },
    }, { signal: controller.signal, accept: 'text/event-stream' });
    stats.textContent = 'Generating…';
    for await (const { data } of readEvents(res)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        firstToken ??= performance.now();
        pieces += 1;
        text += delta;
        reply.textContent = text;
        reply.scrollIntoView({ block: 'end' });
      }
      timings = chunk.timings ?? timings;
      usage = chunk.usage ?? usage;
    }
  } catch (err) {
    ending = err.name === 'AbortError' ? 'stopped' : 'error';
    if (ending === 'error') {
      reply.after(h('p', { class: 'notice error', role: 'alert' }, err.message));
    }
  } finally {
    controller = null;
    reply.classList.remove('streaming');
    reply.removeAttribute('aria-busy');
    reply.dataset.state = ending;
    if (text) messages.push({ role: 'assistant', content: text });
    else if (ending !== 'done') messages.pop(); // keep user/assistant turns paired
    stats.textContent = summary(ending, { started, firstToken, pieces, timings, usage });
    setBusy(false);
  }
}

/** "42 tokens · 31.5 tok/s · 60% of 20 drafted accepted": the server's own timing when it sends one, else counted here. */
function summary(ending, { started, firstToken, pieces, timings, usage }) {
  const now = performance.now();
  const count = usage?.completion_tokens ?? timings?.predicted_n ?? pieces;
  let rate = timings?.predicted_per_second ?? null;
  if (rate === null && firstToken !== null && count > 1) rate = ((count - 1) * 1000) / (now - firstToken);
  const parts = [];
  if (ending === 'stopped') parts.push('Stopped');
  if (count) parts.push(`${count} token${count === 1 ? '' : 's'}`);
  if (rate !== null) parts.push(tps(rate));
  if (timings?.draft_n) {
    parts.push(`${Math.round((timings.draft_n_accepted / timings.draft_n) * 100)}% of ${timings.draft_n} drafted accepted`);
  }
  if (firstToken !== null) parts.push(`first token ${((firstToken - started) / 1000).toFixed(2)} s`);
  return parts.join(' · ');
}

function bubble(role, text) {
  const el = h('div', { class: `message ${role}`, 'data-testid': `chat-${role}` }, text);
  $('#chat-log').append(el);
  return el;
}

function setBusy(busy) {
  $('#chat-stop').disabled = !busy;
  updateModel();
}
