// The Server section: where Paddock listens, its saved settings, network sharing (API key, LAN
// URL and a provider block for coding assistants) and launch at login.

import { get, put, setApiKey, apiKey } from './api.js';
import { h, $, replace, copyButton } from './dom.js';
import { tokens, tps, STATE_LABELS, KV_TYPES } from './format.js';
import { store, loadedModels } from './store.js';

let saved = null; // the last /api/settings answer

export function initServer() {
  for (const select of [$('#set-ctk'), $('#set-ctv')]) {
    replace(select, KV_TYPES.map((t) => h('option', { value: t }, t)));
  }
  $('#settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  $('#settings-revert').addEventListener('click', () => saved && fillForm(saved.settings));
  $('#autostart').addEventListener('change', toggleAutostart);
  store.addEventListener('status', () => {
    renderStatus();
    renderLan();
  });
  store.addEventListener('catalog', () => {
    renderLan();
    // Keep an unsaved choice while the list refreshes.
    fillDraftModels($('#settings-form').elements.model_draft.value);
  });
}

/** Called when the section is shown: settings may have changed elsewhere (tray, CLI). */
export async function refreshServer() {
  renderStatus();
  await Promise.all([loadSettings(), loadAutostart()]);
}

function renderStatus() {
  const s = store.status;
  if (!s) return;
  const entries = [
    ['URL', link(s.server?.url), 'status-url'],
    ['API', link(s.server?.api_url), 'status-api-url'],
    ['State', STATE_LABELS[s.state] ?? s.state, 'status-state'],
    ['Model', s.model ? s.model.id : 'None', 'status-model'],
    ['Loaded models', loadedModels(s).map((m) => m.id).join(', ') || 'None', 'status-models'],
    ['Context', s.model ? `${tokens(s.model.n_ctx)} tokens, ${s.model.n_parallel} parallel` : '—', 'status-context'],
    ['Last speed', tps(s.last_tps), 'status-tps'],
    ['Speculative decoding', speculation(s.model?.speculation), 'status-speculation'],
    ['Drafts accepted', s.last_acceptance === null || s.last_acceptance === undefined
      ? '—' : `${Math.round(s.last_acceptance * 100)}% (last request)`, 'status-acceptance'],
  ];
  if (s.error) entries.push(['Last error', s.error, 'status-error']);
  replace($('#server-status'), entries.map(([term, value, testid]) =>
    h('div', {}, h('dt', {}, term), h('dd', { 'data-testid': testid }, value))));
}

/** What guesses tokens for the loaded model: the n-gram lookup, its own MTP heads, a draft
 * model, or nothing. */
function speculation(spec) {
  if (!spec) return '—';
  if (!spec.draft_max) return 'Off';
  const sources = [
    spec.ngram ? 'n-gram lookup' : null,
    spec.mtp ? 'MTP heads' : null,
    spec.draft_model ? `draft model ${spec.draft_model}` : null,
  ];
  return `${sources.filter(Boolean).join(' + ')}, up to ${spec.draft_max} tokens`;
}

function link(url) {
  return url ? h('a', { href: url, target: '_blank', rel: 'noopener' }, url) : '—';
}

async function loadSettings() {
  try {
    saved = await get('/api/settings');
    fillForm(saved.settings);
    showSettingsMessage(saved.restart_required ? restartText() : null);
  } catch (err) {
    showSettingsMessage(`Could not read the settings: ${err.message}`, true);
  }
  renderLan();
}

function fillForm(s) {
  const f = $('#settings-form').elements;
  f.port.value = s.port ?? '';
  f.lan.checked = Boolean(s.lan);
  f.ctx_size.value = s.ctx_size ?? '';
  f.parallel.value = s.parallel ?? '';
  f.cache_type_k.value = s.cache_type_k ?? 'f16';
  f.cache_type_v.value = s.cache_type_v ?? 'f16';
  f.flash_attn.value = s.flash_attn ?? 'auto';
  f.mlock.checked = Boolean(s.mlock);
  f.spec_ngram.checked = Boolean(s.spec_ngram);
  f.spec_mtp.checked = Boolean(s.spec_mtp);
  fillDraftModels(s.model_draft);
  f.draft_max.value = s.draft_max ?? '';
  f.draft_p_min.value = s.draft_p_min ?? '';
  $('#settings-file').textContent = saved?.config_file ? `Saved in ${saved.config_file}` : '';
}

function readForm() {
  const f = $('#settings-form').elements;
  const int = (input) => (input.value === '' ? undefined : Number(input.value));
  return {
    port: int(f.port),
    lan: f.lan.checked,
    ctx_size: int(f.ctx_size),
    parallel: int(f.parallel),
    cache_type_k: f.cache_type_k.value,
    cache_type_v: f.cache_type_v.value,
    flash_attn: f.flash_attn.value,
    mlock: f.mlock.checked,
    spec_ngram: f.spec_ngram.checked,
    spec_mtp: f.spec_mtp.checked,
    model_draft: f.model_draft.value,
    draft_max: int(f.draft_max),
    draft_p_min: f.draft_p_min.value === '' ? undefined : Number(f.draft_p_min.value),
  };
}

/** The draft model choices: none, or any model in the library; `chosen` kept even if
 * the library no longer lists it. */
function fillDraftModels(chosen) {
  const select = $('#settings-form').elements.model_draft;
  const ids = (store.catalog?.models ?? []).map((m) => m.id);
  if (chosen && !ids.includes(chosen)) ids.unshift(chosen);
  replace(select, [h('option', { value: '' }, 'None'), ...ids.map((id) => h('option', { value: id }, id))]);
  select.value = chosen ?? '';
}

async function save() {
  const button = $('#settings-form [type="submit"]');
  button.disabled = true;
  try {
    saved = await put('/api/settings', readForm());
    // The key the server now asks for (LAN on) is this page's key too, so a restart does not
    // lock the page out.
    if (saved.settings.api_key && saved.settings.api_key !== apiKey()) setApiKey(saved.settings.api_key);
    fillForm(saved.settings);
    showSettingsMessage(saved.restart_required ? restartText() : 'Saved. Engine settings apply at the next model load.');
  } catch (err) {
    showSettingsMessage(err.message, true);
  } finally {
    button.disabled = false;
    renderLan();
  }
}

function restartText() {
  return 'Saved. Restart Paddock to apply the port and network settings.';
}

function showSettingsMessage(text, isError = false) {
  const el = $('#settings-message');
  el.hidden = !text;
  el.textContent = text ?? '';
  el.classList.toggle('error', isError);
  el.dataset.restartRequired = String(Boolean(saved?.restart_required));
}

/** Network access card: shown while sharing on the LAN is saved as on. */
function renderLan() {
  const card = $('#lan-card');
  const s = saved?.settings;
  card.hidden = !s?.lan;
  if (!s?.lan) return;
  const server = store.status?.server;
  // Until the restart, the server still listens on loopback only and has no LAN URL.
  const baseUrl = server?.lan_url ?? null;
  replace($('#lan-facts'),
    h('div', {}, h('dt', {}, 'API key'),
      h('dd', { class: 'with-action' },
        h('code', { 'data-testid': 'lan-api-key' }, s.api_key ?? 'generated when saved'),
        s.api_key ? copyButton(() => s.api_key, 'Copy', { 'aria-label': 'Copy API key', 'data-testid': 'copy-api-key' }) : null)),
    h('div', {}, h('dt', {}, 'LAN URL'),
      h('dd', { class: 'with-action' },
        h('code', { 'data-testid': 'lan-url' }, baseUrl ?? 'after Paddock restarts'),
        baseUrl ? copyButton(() => baseUrl, 'Copy', { 'aria-label': 'Copy LAN URL' }) : null)));
  $('#provider-hint').hidden = Boolean(baseUrl);
  const config = providerConfig(baseUrl ?? server?.api_url ?? `${location.origin}/v1`, s.api_key);
  $('#provider-config').textContent = config;
  replace($('#provider-copy'), copyButton(() => $('#provider-config').textContent, 'Copy',
    { 'aria-label': 'Copy provider config', 'data-testid': 'copy-provider-config' }));
}

/**
 * An opencode.json provider block for Paddock's OpenAI-compatible API: every loaded model, each
 * with its context as the assistant's limit so it compacts before the server runs out (with
 * none loaded, the library: a request loads the model it names).
 */
function providerConfig(baseUrl, key) {
  const loaded = store.status ? loadedModels(store.status) : [];
  const ids = store.status ? loaded.map((m) => m.id) : (store.catalog?.loaded ?? []);
  const models = {};
  for (const id of ids.length ? ids : (store.catalog?.models ?? []).map((m) => m.id)) {
    const entry = { name: id };
    const running = loaded.find((m) => m.id === id);
    if (running) entry.limit = { context: running.n_ctx };
    const facts = store.catalog?.models?.find((m) => m.id === id)?.facts;
    if (facts && (facts.tools ?? facts.template_supports_tools)) entry.tool_call = true;
    models[id] = entry;
  }
  return JSON.stringify({
    $schema: 'https://opencode.ai/config.json',
    provider: {
      paddock: {
        npm: '@ai-sdk/openai-compatible',
        name: 'Paddock',
        options: { baseURL: baseUrl, ...(key ? { apiKey: key } : {}) },
        models,
      },
    },
  }, null, 2);
}

async function loadAutostart() {
  const card = $('#autostart-card');
  try {
    const a = await get('/api/autostart');
    card.hidden = !a.supported;
    $('#autostart').checked = Boolean(a.enabled);
    $('#autostart-mechanism').textContent = a.mechanism ? `(${a.mechanism})` : '';
  } catch {
    card.hidden = true; // no autostart on this server: nothing to offer
  }
}

async function toggleAutostart(event) {
  const input = event.target;
  const error = $('#autostart-error');
  input.disabled = true;
  try {
    const a = await put('/api/autostart', { enabled: input.checked });
    input.checked = Boolean(a.enabled);
    error.hidden = true;
  } catch (err) {
    input.checked = !input.checked;
    error.hidden = false;
    error.textContent = err.message;
  } finally {
    input.disabled = false;
  }
}
