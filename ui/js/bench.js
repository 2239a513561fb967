// The Benchmarks section: run llama-bench's pp/tg sweeps on a model of the library with live
// progress (from the status stream's `bench`), then the history of runs (/api/bench/runs) as
// charts and a table ranked by tg128 (generation speed), fastest first. The charts show
// the runs ticked in the table, by default the newest run of each model. Exports: each run as
// Markdown, CSV or JSON (the server writes them), the charts as one PNG (drawn here).

import { get, post, send } from './api.js';
import { h, $, replace } from './dom.js';
import { bytes, params, tokens } from './format.js';
import { store, loadedIds } from './store.js';
import { lineChart, barChart, toPng, rate, PALETTE_SIZE } from './charts.js';

// The server's defaults: prompt sizes up to the model's trained context, these lengths, 3 runs.
const DEFAULT_PP = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const DEFAULT_TG = [128, 256, 512, 1024];
const DEFAULT_REPETITIONS = 3;

const STATE_LABELS = { starting: 'Starting', running: 'Running', done: 'Done', failed: 'Failed', cancelled: 'Cancelled' };
const FORMATS = [
  { format: 'md', label: 'MD', name: 'Markdown', ext: 'md' },
  { format: 'csv', label: 'CSV', name: 'CSV', ext: 'csv' },
  { format: 'json', label: 'JSON', name: 'JSON', ext: 'json' },
];

let runs = null; // /api/bench/runs, oldest first; null until read
let runsError = null;
let chosen = null; // ids of the runs the charts show; null: the newest run of each model
let starting = null; // a Run pressed here that the status stream does not show yet
let cancelling = false;
let ppEdited = false; // prompt sizes typed by hand stay when another model is chosen
let lastState = null; // the bench state last seen, to notice a run ending
let askedFor = null; // the run id the history was last refetched for
let sequence = 0; // drops a history answer that arrives after a newer question's

export function initBench() {
  $('#bench-tg').value = DEFAULT_TG.join(', ');
  $('#bench-reps').value = DEFAULT_REPETITIONS;
  $('#bench-form').addEventListener('submit', (event) => {
    event.preventDefault();
    run();
  });
  $('#bench-form').addEventListener('input', (event) => {
    if (event.target.id === 'bench-pp') ppEdited = true;
    renderHint();
  });
  $('#bench-model').addEventListener('change', () => fillPromptSizes());
  $('#bench-cancel').addEventListener('click', cancel);
  $('#bench-png').addEventListener('click', exportPng);
  const table = $('#bench-rows');
  table.addEventListener('change', (event) => {
    if (event.target.dataset.action === 'show') toggleShown(event.target.closest('[data-run-id]').dataset.runId, event.target.checked);
  });
  table.addEventListener('click', (event) => {
    const target = event.target.closest('[data-action]');
    if (!target || target.dataset.action === 'show') return;
    const id = target.closest('[data-run-id]').dataset.runId;
    if (target.dataset.action === 'export') {
      event.preventDefault();
      exportRun(id, target.dataset.format, target.getAttribute('download'));
    } else if (target.dataset.action === 'delete') {
      remove(id);
    }
  });
  store.addEventListener('catalog', fillModels);
  store.addEventListener('status', onStatus);
  store.addEventListener('connection', () => store.connected && refreshBench());
  fillModels();
  renderProgress();
}

/** Rereads the history (the section was opened, or the server came back). */
export async function refreshBench() {
  const mine = ++sequence;
  try {
    const answer = await get('/api/bench/runs');
    if (mine !== sequence) return;
    runs = answer.runs ?? [];
    runsError = null;
  } catch (err) {
    if (mine !== sequence) return;
    runsError = err;
  }
  if (chosen) {
    const ids = new Set((runs ?? []).map((r) => r.id));
    chosen = new Set([...chosen].filter((id) => ids.has(id)));
  }
  renderRuns();
}

// ---------- The form ----------

function models() {
  return store.catalog?.models ?? [];
}

function fillModels() {
  const select = $('#bench-model');
  const before = select.value;
  const loaded = loadedIds(store.status);
  const recent = store.status?.model?.id;
  replace(select, models().map((m) => h('option', { value: m.id, disabled: Boolean(m.error) || !m.facts },
    loaded.includes(m.id) ? `${m.id} (loaded)` : m.id)));
  const ids = models().filter((m) => !m.error && m.facts).map((m) => m.id);
  select.value = ids.includes(before) ? before : ids.includes(recent) ? recent : (ids[0] ?? '');
  if (select.value !== before) fillPromptSizes();
  else renderHint();
  updateButtons();
}

/** The default prompt sizes, capped at the chosen model's trained context. */
function fillPromptSizes() {
  if (!ppEdited) $('#bench-pp').value = defaultPromptSizes().join(', ');
  renderHint();
}

function trainedContext() {
  return models().find((m) => m.id === $('#bench-model').value)?.facts?.n_ctx_train ?? null;
}

function defaultPromptSizes() {
  const ctx = trainedContext();
  if (!ctx) return DEFAULT_PP;
  const sizes = DEFAULT_PP.filter((n) => n <= ctx);
  return sizes.length ? sizes : [ctx];
}

/** "512, 1024" -> [512, 1024]; empty -> undefined (the server's defaults); anything else throws. */
function parseList(text, what) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) return undefined;
  const values = parts.map((part) => {
    if (!/^\d+$/.test(part) || Number(part) < 1) throw new Error(`${what}: “${part}” is not a whole number above 0.`);
    return Number(part);
  });
  return [...new Set(values)];
}

/** The POST /api/bench body from the form; throws with a sentence when a field is wrong. */
function request() {
  const model = $('#bench-model').value;
  if (!model) throw new Error('Choose a model to benchmark.');
  const body = { model };
  const pp = parseList($('#bench-pp').value, 'Prompt sizes');
  const tg = parseList($('#bench-tg').value, 'Generation lengths');
  if (pp) body.n_prompt = pp;
  if (tg) body.n_gen = tg;
  const reps = $('#bench-reps').value.trim();
  if (reps) {
    if (!/^\d+$/.test(reps) || Number(reps) < 1) throw new Error('Repetitions: a whole number above 0.');
    body.repetitions = Number(reps);
  }
  return body;
}

/** Under the form: how many tests the fields make, and what a run does to the served model. */
function renderHint() {
  const ctx = trainedContext();
  let count = '';
  try {
    const body = request();
    const tests = (body.n_prompt ?? defaultPromptSizes()).length + (body.n_gen ?? DEFAULT_TG).length;
    const reps = body.repetitions ?? DEFAULT_REPETITIONS;
    count = `${tests} test${tests === 1 ? '' : 's'}, each run ${reps} time${reps === 1 ? '' : 's'}. `;
    const past = (body.n_prompt ?? []).filter((n) => ctx && n > ctx);
    if (past.length) count += `${past.map((n) => `pp${n}`).join(', ')} ${past.length === 1 ? 'is' : 'are'} past the model's trained context. `;
  } catch {
    // the form's error says what is wrong when Run is pressed
  }
  $('#bench-hint').textContent = count +
    (ctx ? `The prompt sizes offered stop at the model's trained context (${tokens(ctx)} tokens). ` : '') +
    'While a benchmark runs, Paddock unloads the models it serves and answers chat requests with “busy” (503); it loads them again afterwards.';
}

function showError(message) {
  const el = $('#bench-error');
  el.hidden = !message;
  el.textContent = message ?? '';
}

async function run() {
  let body;
  try {
    body = request();
  } catch (err) {
    showError(err.message);
    return;
  }
  showError(null);
  // Until the status stream shows a different benchmark than before, the answer stands in.
  const mine = { before: JSON.stringify(store.status?.bench ?? null), answer: null, model: body.model };
  starting = mine;
  renderProgress();
  try {
    const answer = await post('/api/bench', body);
    if (starting === mine) mine.answer = answer;
  } catch (err) {
    if (starting === mine) starting = null;
    showError(err.status === 409
      ? `A benchmark is already running; wait for it or cancel it. (${err.message})`
      : `The benchmark did not start: ${err.message}`);
  }
  renderProgress();
}

async function cancel() {
  cancelling = true;
  updateButtons();
  try {
    await send('DELETE', '/api/bench');
  } catch (err) {
    showError(`Could not cancel the benchmark: ${err.message}`);
  } finally {
    cancelling = false;
    updateButtons();
  }
}

// ---------- Progress ----------

/** The benchmark to show: the status stream's, or the one this page just started. */
function currentBench() {
  const live = store.status?.bench ?? null;
  if (starting) {
    if (JSON.stringify(live) !== starting.before) starting = null;
    else return starting.answer ?? { state: 'starting', model: starting.model, done: 0, total: 0, current: null, notes: [] };
  }
  return live;
}

const isBusy = (bench) => bench?.state === 'running' || bench?.state === 'starting';

function onStatus() {
  const bench = currentBench();
  renderProgress();
  // A run that ended is in the history now: read it, and show it in the charts.
  const ended = isBusy({ state: lastState }) && bench && !isBusy(bench);
  const unseen = bench?.run_id && runs && !runs.some((r) => r.id === bench.run_id) && askedFor !== bench.run_id;
  lastState = bench?.state ?? null;
  if (ended || unseen) {
    askedFor = bench.run_id ?? askedFor;
    const id = bench.run_id;
    refreshBench().then(() => id && showNewRun(id));
  }
}

function renderProgress() {
  const bench = currentBench();
  const card = $('#bench-progress');
  card.hidden = !bench;
  updateButtons();
  if (!bench) return;
  card.dataset.state = bench.state;
  $('#bench-progress-model').textContent = bench.model ?? '';
  $('#bench-progress-state').textContent = STATE_LABELS[bench.state] ?? bench.state;
  const total = bench.total ?? 0;
  const done = bench.done ?? 0;
  const pct = bench.state === 'done' ? 100 : total ? Math.floor((100 * done) / total) : 0;
  const bar = $('#bench-bar');
  bar.setAttribute('aria-valuenow', pct);
  bar.setAttribute('aria-valuetext', progressText(bench));
  bar.firstElementChild.style.width = `${pct}%`;
  $('#bench-progress-text').textContent = progressText(bench);
  replace($('#bench-notes'), (bench.notes ?? []).map((note) => h('li', {}, note)));
  const failure = $('#bench-failure');
  failure.hidden = !bench.error;
  failure.textContent = bench.error ? `The benchmark failed: ${bench.error}` : '';
}

function progressText(bench) {
  const count = `${bench.done ?? 0}/${bench.total ?? 0}`;
  switch (bench.state) {
    case 'starting': return 'Starting…';
    case 'running': return bench.total ? `${bench.current ?? 'Preparing'} · ${count}` : 'Preparing…';
    case 'done': return `Finished (${count}); the results are below.`;
    case 'cancelled': return `Cancelled at ${count}; nothing more is measured.`;
    case 'failed': return `Stopped at ${count}.`;
    default: return count;
  }
}

function updateButtons() {
  const bench = currentBench();
  $('#bench-run').disabled = isBusy(bench) || !$('#bench-model').value;
  $('#bench-run').textContent = isBusy(bench) ? 'Running…' : 'Run';
  $('#bench-cancel').disabled = bench?.state !== 'running' || cancelling;
  $('#bench-cancel').textContent = cancelling ? 'Cancelling…' : 'Cancel';
}

// ---------- History: which runs, ranked ----------

const ppOf = (run, depth = 0) => run.results.filter((r) => r.n_gen === 0 && r.n_prompt > 0 && (r.n_depth ?? 0) === depth)
  .sort((a, b) => a.n_prompt - b.n_prompt);
const tgOf = (run, depth = 0) => run.results.filter((r) => r.n_prompt === 0 && r.n_gen > 0 && (r.n_depth ?? 0) === depth)
  .sort((a, b) => a.n_gen - b.n_gen);

/** tg128 when measured, else the best generation speed (as the server derives it, or the fastest test). */
function tgHeadline(run) {
  const tg = tgOf(run);
  const tg128 = tg.find((r) => r.n_gen === 128);
  if (tg128) return { result: tg128, ts: tg128.avg_ts };
  const best = tg.reduce((a, b) => (b.avg_ts > (a?.avg_ts ?? -1) ? b : a), null);
  return { result: best, ts: run.derived?.tg_best_ts ?? best?.avg_ts ?? null };
}

/** Fastest generation first, as the source document ranks its models; then newest first. */
function ranked() {
  return [...(runs ?? [])].sort((a, b) =>
    (tgHeadline(b).ts ?? -1) - (tgHeadline(a).ts ?? -1) || String(b.started_at).localeCompare(String(a.started_at)));
}

function defaultShown() {
  const newest = new Map();
  for (const run of runs ?? []) newest.set(run.model?.id, run.id); // oldest first: the last wins
  return new Set(newest.values());
}

const shownIds = () => chosen ?? defaultShown();

function toggleShown(id, on) {
  chosen = new Set(shownIds());
  if (on) chosen.add(id);
  else chosen.delete(id);
  renderRuns();
}

/** A run that just finished is shown in place of the older runs of its model. */
function showNewRun(id) {
  const run = runs?.find((r) => r.id === id);
  if (!run || !chosen) return;
  for (const other of runs) if (other.model?.id === run.model?.id) chosen.delete(other.id);
  chosen.add(id);
  renderRuns();
}

function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso ?? '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** The model's name, with the date when two shown runs are of the same model. */
function labels(shown) {
  const count = new Map();
  for (const run of shown) count.set(run.model?.id, (count.get(run.model?.id) ?? 0) + 1);
  return new Map(shown.map((run) => [run.id,
    count.get(run.model?.id) > 1 ? `${run.model?.id} (${when(run.started_at)})` : run.model?.id ?? run.id]));
}

function renderRuns() {
  const list = runs ?? [];
  const error = $('#bench-runs-error');
  error.hidden = !runsError;
  error.textContent = runsError ? `Could not read the benchmark history: ${runsError.message}` : '';
  $('#bench-empty').hidden = !(runs && !list.length) && !(runsError && !runs);
  $('#bench-results').hidden = !list.length;
  const modelCount = new Set(list.map((r) => r.model?.id)).size;
  $('#bench-summary').textContent = list.length
    ? `${list.length} run${list.length === 1 ? '' : 's'} of ${modelCount} model${modelCount === 1 ? '' : 's'}`
    : '';
  if (!list.length) {
    replace($('#bench-rows'));
    replace($('#bench-charts'));
    replace($('#bench-details'));
    return;
  }
  const order = ranked();
  const ids = shownIds();
  const shown = order.filter((run) => ids.has(run.id));
  const colors = new Map(shown.map((run, i) => [run.id, `c${i % PALETTE_SIZE}`]));
  replace($('#bench-rows'), order.map((run, i) => row(run, i + 1, colors.get(run.id))));
  renderCharts(shown, colors);
  renderDetails(shown, colors);
}

// ---------- The table ----------

function row(run, rank, color) {
  const pp = ppOf(run);
  const pp512 = pp.find((r) => r.n_prompt === 512) ?? pp[0];
  const largest = pp.at(-1);
  const tg = tgHeadline(run);
  const retention = run.derived?.retention;
  const pct = run.derived?.tg_ceiling_pct;
  const model = run.model ?? {};
  const base = `/api/bench/runs/${encodeURIComponent(run.id)}`;
  const label = `${model.id} (${when(run.started_at)})`;
  return h('tr', { 'data-run-id': run.id, 'data-testid': 'bench-row', class: color ? 'shown' : '' },
    h('td', { class: 'show' },
      h('input', { type: 'checkbox', checked: Boolean(color), 'data-action': 'show', 'data-testid': 'bench-show',
        'aria-label': `Show ${label} in the charts` }),
      h('span', { class: `swatch ${color ?? 'none'}`, 'aria-hidden': 'true' })),
    h('td', { class: 'num rank' }, String(rank)),
    h('th', { scope: 'row', class: 'model-cell', title: modelTitle(model) }, h('span', { 'data-testid': 'bench-model' }, model.id ?? '—')),
    h('td', {}, model.quant ?? '—'),
    h('td', { class: 'num', 'data-bytes': model.size_bytes ?? '' }, bytes(model.size_bytes)),
    rateCell(pp512, 'bench-pp512', 'pp512'),
    rateCell(largest, 'bench-pp-largest', null),
    h('td', { class: 'num', 'data-testid': 'bench-retention', 'data-value': retention?.ratio ?? '',
      title: retention ? `${retention.to} keeps ${Math.round(retention.ratio * 100)}% of ${retention.from}'s speed` : null },
    retention ? `${Math.round(retention.ratio * 100)}%` : '—'),
    rateCell(tg.result, 'bench-tg128', 'tg128', tg.ts),
    h('td', { class: 'num', 'data-testid': 'bench-ceiling', 'data-value': pct ?? '',
      title: run.derived?.tg_ceiling_ts ? `${rate(run.derived.tg_best_ts)} of a ${rate(run.derived.tg_ceiling_ts)} t/s ceiling` : null },
    pct === null || pct === undefined ? '—' : `${Math.round(pct)}%`),
    h('td', { class: 'date', 'data-testid': 'bench-date' }, h('time', { datetime: run.started_at },
      when(run.started_at).slice(0, 10), h('span', { class: 'hint test-name' }, when(run.started_at).slice(11)))),
    h('td', { class: 'actions' },
      FORMATS.map(({ format, label: short, name, ext }) => h('a', {
        href: `${base}?format=${format}`, download: `paddock-bench-${model.id ?? 'model'}-${run.id}.${ext}`,
        'data-action': 'export', 'data-format': format, 'data-testid': `bench-export-${format}`,
        'aria-label': `${name} of ${label}`, title: `Download as ${name}`,
      }, short)),
      h('button', { type: 'button', class: 'small danger', 'data-action': 'delete', 'data-testid': 'bench-delete',
        'aria-label': `Delete ${label}` }, 'Delete')));
}

/** "llama, 135M parameters, 90 MiB read per token" for the model cell's tooltip. */
function modelTitle(model) {
  return [model.architecture, model.moe ? 'MoE' : null, model.params ? `${params(model.params)} parameters` : null,
    model.file].filter(Boolean).join(' · ') || null;
}

/**
 * A tokens/s cell: the figure and its raw value (data-ts). When the column's own test is missing
 * (no pp512 in a short sweep), the cell names the test it shows instead.
 */
function rateCell(result, testid, column, ts = result?.avg_ts) {
  if (!result && (ts === null || ts === undefined)) return h('td', { class: 'num muted', 'data-testid': testid }, '—');
  return h('td', { class: 'num', 'data-testid': testid, 'data-ts': ts, 'data-test': result?.test ?? '',
    title: result?.stddev_ts ? `${rate(ts)} ± ${rate(result.stddev_ts)} t/s` : null },
  rate(ts), result && result.test !== column ? h('span', { class: 'hint test-name' }, result.test) : null);
}

// ---------- Charts ----------

/** One series per shown run and prompt depth (depth 0 solid, deeper ones dashed). */
function seriesOf(shown, colors, names, pick, x) {
  return shown.flatMap((run) => {
    const depths = [...new Set(run.results.map((r) => r.n_depth ?? 0))].sort((a, b) => a - b);
    return depths.map((depth) => ({
      key: depth ? `${run.id}@d${depth}` : run.id,
      label: depth ? `${names.get(run.id)} @ d${depth}` : names.get(run.id),
      color: colors.get(run.id),
      dashed: depth > 0,
      points: pick(run, depth).map((r) => ({ x: x(r), y: r.avg_ts, err: r.stddev_ts, name: r.test })),
    }));
  });
}

function renderCharts(shown, colors) {
  const names = labels(shown);
  const none = 'Tick a run in the table to draw it.';
  const charts = [
    lineChart({
      id: 'chart-pp', title: 'Prompt processing by prompt size', xLabel: 'Prompt size (tokens, log scale)', yLabel: 'tokens/s',
      series: seriesOf(shown, colors, names, ppOf, (r) => r.n_prompt),
      empty: shown.length ? 'The shown runs have no prompt processing tests.' : none,
    }),
    lineChart({
      id: 'chart-tg', title: 'Generation by length', xLabel: 'Generated tokens (log scale)', yLabel: 'tokens/s',
      series: seriesOf(shown, colors, names, tgOf, (r) => r.n_gen),
      empty: shown.length ? 'The shown runs have no generation tests.' : none,
    }),
    barChart({
      id: 'chart-retention', title: 'Context scaling retention', xLabel: 'Share of the smallest prompt size’s speed kept at the largest',
      max: 1, format: (v) => `${Math.round(v * 100)}%`, empty: none,
      rows: shown.map((run) => {
        const r = run.derived?.retention;
        return { key: run.id, label: names.get(run.id), color: colors.get(run.id), value: r ? r.ratio : null,
          text: r ? `${Math.round(r.ratio * 100)}% (${r.from}→${r.to})` : '', missing: 'needs two prompt sizes' };
      }),
    }),
    barChart({
      id: 'chart-ceiling', title: 'Generation vs its ceiling', xLabel: 'tokens/s (ceiling: memory bandwidth ÷ bytes read per token)',
      empty: none,
      rows: shown.map((run) => {
        const d = run.derived ?? {};
        const best = d.tg_best_ts ?? tgHeadline(run).ts;
        const ceiling = d.tg_ceiling_ts ?? null;
        const text = ceiling
          ? `${rate(best)} of ${rate(ceiling)}${d.tg_ceiling_pct !== null && d.tg_ceiling_pct !== undefined ? ` · ${Math.round(d.tg_ceiling_pct)}%` : ''}`
          : `${rate(best)} · ceiling unknown`;
        return { key: run.id, label: names.get(run.id), color: colors.get(run.id), value: best ?? null, marker: ceiling,
          text, missing: 'no generation test' };
      }),
    }),
  ];
  replace($('#bench-charts'), charts.map((svg) => h('figure', { class: 'chart-cell' }, svg)));
  $('#bench-png').disabled = !shown.length;
}

async function exportPng() {
  const button = $('#bench-png');
  button.disabled = true;
  try {
    const svgs = [...$('#bench-charts').querySelectorAll('svg.chart')];
    const blob = await toPng(svgs, { background: getComputedStyle($('#bench-charts-card')).backgroundColor });
    save(blob, 'paddock-benchmarks.png');
  } catch (err) {
    showError(`Could not export the charts: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---------- Details of the shown runs ----------

function renderDetails(shown, colors) {
  replace($('#bench-details'), shown.map((run) => {
    const m = run.machine ?? {};
    const s = run.settings ?? {};
    const v = run.versions ?? {};
    const warnings = run.warnings ?? [];
    const notes = run.notes ?? [];
    const facts = [
      ['CPU', m.cpu ? `${m.cpu}${m.cores ? `, ${m.cores} cores` : ''}` : null],
      ['Memory', m.memory_bytes ? bytes(m.memory_bytes) : null],
      ['OS', m.os],
      ['Memory bandwidth', m.bandwidth_bytes_per_s ? `${(m.bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s${m.bandwidth_source ? ` (${m.bandwidth_source})` : ''}` : null],
      ['Threads', s.n_threads],
      ['Batch / micro-batch', s.n_batch ? `${s.n_batch} / ${s.n_ubatch}` : null],
      ['Flash attention', s.flash_attn],
      ['KV cache', s.type_k ? `${s.type_k} / ${s.type_v}` : null],
      ['GPU layers', s.n_gpu_layers === -1 ? 'all' : s.n_gpu_layers],
      ['Repetitions', s.repetitions],
      ['Paddock', v.paddock],
      ['llama.cpp', v.llama_cpp],
    ].filter(([, value]) => value !== null && value !== undefined && value !== '');
    return h('details', { class: 'bench-run', 'data-run-id': run.id, 'data-testid': 'bench-run-details' },
      h('summary', {},
        h('span', { class: `swatch ${colors.get(run.id)}`, 'aria-hidden': 'true' }),
        h('strong', {}, run.model?.id ?? run.id), ` · ${when(run.started_at)}`,
        warnings.length ? h('span', { class: 'badge fit-tight' }, `${warnings.length} warning${warnings.length === 1 ? '' : 's'}`) : null),
      warnings.length ? h('ul', { class: 'notice bench-warnings', 'data-testid': 'bench-warnings' }, warnings.map((w) => h('li', {}, w))) : null,
      h('dl', { class: 'facts' }, facts.map(([term, value]) =>
        // A long value (llama.cpp's build line) takes the whole row rather than a tall column.
        h('div', { class: String(value).length > 40 ? 'span-all' : null }, h('dt', {}, term), h('dd', {}, String(value))))),
      notes.length ? h('ul', { class: 'bench-notes' }, notes.map((n) => h('li', {}, n))) : null);
  }));
  for (const el of $('#bench-details').querySelectorAll('details')) {
    // Runs with warnings open, so the warnings are read.
    if (el.querySelector('.bench-warnings')) el.open = true;
  }
}

// ---------- Export and delete ----------

/** Downloads a run as the server writes it; through send(), so a keyed server gets the key. */
async function exportRun(id, format, filename) {
  try {
    const res = await send('GET', `/api/bench/runs/${encodeURIComponent(id)}?format=${format}`, undefined, { accept: '*/*' });
    save(await res.blob(), filename);
  } catch (err) {
    showError(`Could not export the run: ${err.message}`);
  }
}

function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function remove(id) {
  const run = runs?.find((r) => r.id === id);
  const what = run ? `${run.model?.id} from ${when(run.started_at)}` : id;
  if (!window.confirm(`Delete the benchmark of ${what}? Its results are removed from the history.`)) return;
  try {
    await send('DELETE', `/api/bench/runs/${encodeURIComponent(id)}`);
    showError(null);
  } catch (err) {
    showError(`Could not delete the run: ${err.message}`);
  }
  await refreshBench();
}
