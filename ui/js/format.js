// Numbers as people read them. Memory is in binary units (GiB = 2^30), as Activity Monitor shows.

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** 96570000 -> "92.1 MiB", 25276063744 -> "23.54 GiB"; negative values keep their sign. */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const sign = n < 0 ? '−' : '';
  const abs = Math.abs(n);
  if (abs >= GIB) return `${sign}${(abs / GIB).toFixed(2)} GiB`;
  if (abs >= 10 * MIB) return `${sign}${(abs / MIB).toFixed(0)} MiB`;
  if (abs >= MIB / 10) return `${sign}${(abs / MIB).toFixed(1)} MiB`;
  if (abs === 0) return '0';
  return `${sign}${(abs / 1024).toFixed(0)} KiB`;
}

/** 134515008 -> "135M", 35000000000 -> "35B" (parameter counts are decimal). */
export function params(n) {
  if (!n) return '—';
  if (n >= 1e9) return `${trim(n / 1e9)}B`;
  if (n >= 1e6) return `${trim(n / 1e6)}M`;
  return `${trim(n / 1e3)}K`;
}

function trim(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1).replace(/\.0$/, '') : x.toFixed(2).replace(/\.?0+$/, '');
}

/** Token counts: 32768 -> "32,768". */
export function tokens(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function tps(x) {
  return x === null || x === undefined ? '—' : `${x.toFixed(1)} tok/s`;
}

/** The catalog's `source` is a string in the contract and `{kind}` in some builds. */
export function sourceLabel(source) {
  const kind = typeof source === 'string' ? source : source?.kind;
  return {
    paddock: 'Paddock',
    user_folder: 'Folder',
    hugging_face: 'Hugging Face',
    lm_studio: 'LM Studio',
  }[kind] ?? kind ?? '';
}

export const STATE_LABELS = {
  no_model: 'No model',
  loading: 'Loading',
  idle: 'Ready',
  generating: 'Generating',
  error: 'Error',
};

export const VERDICT_LABELS = { fits: 'Fits', tight: 'Tight', does_not_fit: 'Does not fit' };

/** KV cache types llama.cpp accepts (the contract's list). */
export const KV_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1'];
