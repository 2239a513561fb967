// Small SVG charts for the Benchmarks section: a line chart (log2 or linear x, linear y from 0)
// and two kinds of horizontal bars. No library: each chart is an <svg role="img"> with a <title>
// and a <desc> that says the numbers in words. Colors and fonts come from classes in app.css
// (the page's CSS variables), so light and dark themes both apply; toPng() copies the computed
// styles onto a clone, since an SVG drawn as an image sees no stylesheet.
//
// Every mark carries its numbers (data-value on points and grid lines), so a test can read a
// point's value back from its position.

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 460;
const FONT = 11;
export const PALETTE_SIZE = 6; // classes c0..c5 in app.css

let uid = 0;

/** s('line', {x1: 0, ...}, children...) as dom.js's h(), for SVG. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    // Coordinates to 0.01 px; data-* keep the numbers as they came, for tests and tooltips.
    el.setAttribute(name, typeof value === 'number' && !name.startsWith('data-') ? round(value) : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const round = (x) => String(Math.round(x * 100) / 100);

/** The frame every chart shares: svg, accessible name and description, the visible title. */
function frame(id, title, description, height) {
  const n = ++uid;
  return s('svg', {
    class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img',
    'aria-labelledby': `chart-${n}-title chart-${n}-desc`, 'data-testid': id,
    xmlns: NS, width: WIDTH, height,
  },
  s('title', { id: `chart-${n}-title` }, title),
  s('desc', { id: `chart-${n}-desc` }, description),
  s('rect', { class: 'chart-bg', x: 0, y: 0, width: WIDTH, height }),
  s('text', { class: 'chart-title', x: 12, y: 18 }, title));
}

/** 0, step, 2 step … up to a round number at or above `max` (steps of 1, 2, 2.5 or 5 × 10^k). */
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= raw);
  const ticks = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(v);
  if (ticks.at(-1) < max) ticks.push(ticks.at(-1) + step);
  return ticks;
}

/** Token counts on a log2 axis: 64, 512, 1k, 64k. */
export function tokenLabel(n) {
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}k`;
  return String(n);
}

/** Tokens/s as the source document writes them: 3,320 and 99, one decimal below 100. */
export function rate(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x >= 100 ? x.toLocaleString('en-US', { maximumFractionDigits: 0 }) : x.toFixed(1);
}

/** Axis ticks: 0, 25, 2,000, 0.5 (no trailing zeros). */
export function tickLabel(v) {
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

const CHAR_WIDTH = 6.9; // of an 11 px label, to wrap the legend before a label runs into the next

/** A legend of `items` ({label, color, dashed}) wrapped in rows under the plot; returns its height. */
function legend(svg, items, top) {
  let x = 12;
  let y = top;
  const group = s('g', { class: 'chart-legend' });
  for (const item of items) {
    const width = 28 + item.label.length * CHAR_WIDTH;
    if (x + width > WIDTH - 8 && x > 12) {
      x = 12;
      y += 16;
    }
    group.append(
      s('line', { class: `series ${item.color}${item.dashed ? ' dashed' : ''}`, x1: x, x2: x + 16, y1: y - 4, y2: y - 4 }),
      s('text', { class: 'chart-label', x: x + 21, y }, item.label));
    x += width + 10;
  }
  svg.append(group);
  return items.length ? y - top + 16 : 0;
}

/**
 * One line per series; y is linear from 0, x is log2 (`log2: true`) or linear.
 * series: [{key, label, color: 'c0', dashed, points: [{x, y, err, name}]}]
 * The caller gives the text for axes: xLabel, yLabel; formats: xTick(n), yTick(v).
 */
export function lineChart({ id, title, xLabel, yLabel, series, log2 = true, xTick = tokenLabel, yTick = tickLabel, empty }) {
  const shown = series.filter((line) => line.points.length);
  const items = shown.map((line) => ({ label: line.label, color: line.color, dashed: line.dashed }));
  const legendHeight = items.length ? 16 * legendRows(items) + 6 : 0;
  const plot = { left: 60, right: WIDTH - 16, top: 32, bottom: 212 };
  const height = plot.bottom + 40 + legendHeight;
  const description = shown.length
    ? shown.map((line) => `${line.label}: ${line.points.map((p) => `${p.name} ${rate(p.y)} ${yLabel}`).join(', ')}`).join('; ')
    : empty;
  const svg = frame(id, title, description, height);
  if (!shown.length) {
    svg.append(s('text', { class: 'chart-empty', x: WIDTH / 2, y: (plot.top + plot.bottom) / 2 }, empty));
    return svg;
  }

  const all = shown.flatMap((line) => line.points);
  const tx = log2 ? Math.log2 : (v) => v;
  let lo = Math.min(...all.map((p) => tx(p.x)));
  let hi = Math.max(...all.map((p) => tx(p.x)));
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.06;
  lo -= pad;
  hi += pad;
  const yTicks = niceTicks(Math.max(...all.map((p) => p.y + (p.err || 0))));
  const yMax = yTicks.at(-1);
  const X = (v) => plot.left + ((tx(v) - lo) / (hi - lo)) * (plot.right - plot.left);
  const Y = (v) => plot.bottom - (v / yMax) * (plot.bottom - plot.top);

  const grid = s('g', { class: 'chart-axis' });
  for (const v of yTicks) {
    grid.append(
      s('line', { class: 'grid', x1: plot.left, x2: plot.right, y1: Y(v), y2: Y(v), 'data-value': v }),
      s('text', { class: 'tick tick-y', x: plot.left - 6, y: Y(v) + 4, 'data-value': v }, yTick(v)));
  }
  for (const v of xTicksFor(all.map((p) => p.x), log2)) {
    grid.append(
      s('line', { class: 'tick-mark', x1: X(v), x2: X(v), y1: plot.bottom, y2: plot.bottom + 4 }),
      s('text', { class: 'tick tick-x', x: X(v), y: plot.bottom + 16, 'data-value': v }, xTick(v)));
  }
  grid.append(
    s('line', { class: 'axis', x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }),
    s('text', { class: 'axis-label', x: (plot.left + plot.right) / 2, y: plot.bottom + 32 }, xLabel),
    s('text', { class: 'axis-label', transform: `translate(13 ${(plot.top + plot.bottom) / 2}) rotate(-90)` }, yLabel));
  svg.append(grid);

  for (const line of shown) {
    const points = [...line.points].sort((a, b) => a.x - b.x);
    const group = s('g', { class: `series-group ${line.color}`, 'data-series': line.key });
    group.append(s('polyline', {
      class: `series ${line.color}${line.dashed ? ' dashed' : ''}`, 'data-series': line.key,
      points: points.map((p) => `${round(X(p.x))},${round(Y(p.y))}`).join(' '),
    }));
    for (const p of points) {
      if (p.err > 0) {
        const x = X(p.x);
        group.append(s('path', {
          class: `error-bar ${line.color}`,
          d: `M${round(x)} ${round(Y(p.y - p.err))}V${round(Y(p.y + p.err))}` +
            `M${round(x - 3)} ${round(Y(p.y - p.err))}h6M${round(x - 3)} ${round(Y(p.y + p.err))}h6`,
        }));
      }
      group.append(s('circle', {
        class: `point ${line.color}${line.dashed ? ' hollow' : ''}`, cx: X(p.x), cy: Y(p.y), r: 3.2,
        'data-series': line.key, 'data-x': p.x, 'data-value': p.y, 'data-test': p.name,
      }, s('title', {}, `${line.label}, ${p.name}: ${rate(p.y)}${p.err ? ` ± ${rate(p.err)}` : ''} ${yLabel}`)));
    }
    svg.append(group);
  }
  legend(svg, items, plot.bottom + 58);
  return svg;
}

function legendRows(items) {
  let x = 12;
  let rows = 1;
  for (const item of items) {
    const width = 28 + item.label.length * CHAR_WIDTH;
    if (x + width > WIDTH - 8 && x > 12) {
      x = 12;
      rows += 1;
    }
    x += width + 10;
  }
  return rows;
}

/** Powers of two between the smallest and largest x (every other one when there are many). */
function xTicksFor(values, log2) {
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (!log2) return niceTicks(max).filter((v) => v >= min || v === 0);
  const ticks = [];
  for (let e = Math.floor(Math.log2(min)); e <= Math.ceil(Math.log2(max)); e++) {
    const v = 2 ** e;
    if (v >= min && v <= max) ticks.push(v);
  }
  if (!ticks.length) return [...new Set(values)];
  const every = Math.ceil(ticks.length / 8);
  return ticks.filter((_, i) => i % every === 0 || i === ticks.length - 1);
}

/**
 * Horizontal bars, one row per item, on a shared scale from 0.
 * rows: [{key, label, color, value (null: not measured), marker (a second value drawn as a
 * tick, e.g. a ceiling), text (printed after the bar), missing (printed when value is null)}]
 * max: the scale's least top (1 for ratios); format: tick labels.
 */
export function barChart({ id, title, rows, xLabel, max = 0, format = tickLabel, empty }) {
  const rowHeight = 26;
  const plot = { left: 164, right: WIDTH - 104, top: 34 };
  plot.bottom = plot.top + Math.max(rows.length, 1) * rowHeight;
  const height = plot.bottom + 40;
  const description = rows.length
    ? rows.map((row) => `${row.label}: ${row.value === null ? row.missing : row.text}`).join('; ')
    : empty;
  const svg = frame(id, title, description, height);
  if (!rows.length) {
    svg.append(s('text', { class: 'chart-empty', x: WIDTH / 2, y: plot.top + 14 }, empty));
    return svg;
  }
  const top = Math.max(max, ...rows.map((r) => Math.max(r.value ?? 0, r.marker ?? 0)));
  const ticks = niceTicks(top);
  const scale = ticks.at(-1);
  const X = (v) => plot.left + (v / scale) * (plot.right - plot.left);

  const grid = s('g', { class: 'chart-axis' });
  for (const v of ticks) {
    grid.append(
      s('line', { class: 'grid', x1: X(v), x2: X(v), y1: plot.top - 4, y2: plot.bottom, 'data-value': v }),
      s('text', { class: 'tick tick-x', x: X(v), y: plot.bottom + 14, 'data-value': v }, format(v)));
  }
  grid.append(s('text', { class: 'axis-label', x: (plot.left + plot.right) / 2, y: plot.bottom + 32 }, xLabel));
  svg.append(grid);

  rows.forEach((row, i) => {
    const y = plot.top + i * rowHeight;
    const mid = y + rowHeight / 2;
    const group = s('g', { class: `bar-row ${row.color}`, 'data-series': row.key });
    group.append(s('text', { class: 'chart-label row-label', x: plot.left - 8, y: mid + 4 }, clip(row.label, 22),
      s('title', {}, row.label)));
    if (row.marker !== null && row.marker !== undefined) {
      group.append(s('rect', { class: 'bar-track', x: plot.left, y: y + 5, width: X(row.marker) - plot.left, height: rowHeight - 10, rx: 3 }));
    }
    if (row.value !== null && row.value !== undefined) {
      group.append(s('rect', {
        class: `bar ${row.color}`, x: plot.left, y: y + 5, width: Math.max(1, X(row.value) - plot.left),
        height: rowHeight - 10, rx: 3, 'data-value': row.value,
      }, s('title', {}, `${row.label}: ${row.text}`)));
    }
    if (row.marker !== null && row.marker !== undefined) {
      group.append(s('line', { class: 'marker', x1: X(row.marker), x2: X(row.marker), y1: y + 2, y2: y + rowHeight - 2, 'data-value': row.marker }));
    }
    // The figure goes after the bar, or inside its end when the chart's edge is too near.
    const text = row.value === null ? row.missing : row.text;
    const end = Math.max(X(row.value ?? 0), X(row.marker ?? 0));
    const width = text.length * CHAR_WIDTH;
    const inside = end + 6 + width > WIDTH - 4 && row.value !== null && X(row.value) - plot.left > width + 12;
    group.append(s('text', {
      class: `chart-label value-label${row.value === null ? ' muted' : ''}${inside ? ' inside' : ''}`,
      x: inside ? X(row.value) - 6 : end + 6, y: mid + 4,
    }, text));
    svg.append(group);
  });
  return svg;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// Presentation properties an SVG image needs to look as it does in the page.
const STYLE_PROPS = ['fill', 'fill-opacity', 'stroke', 'stroke-width', 'stroke-dasharray', 'stroke-linecap',
  'stroke-linejoin', 'opacity', 'font-family', 'font-size', 'font-weight', 'text-anchor', 'dominant-baseline'];

/** A copy of `svg` whose elements carry their computed styles as attributes. */
function standalone(svg) {
  const copy = svg.cloneNode(true);
  const from = [svg, ...svg.querySelectorAll('*')];
  const to = [copy, ...copy.querySelectorAll('*')];
  from.forEach((el, i) => {
    const style = getComputedStyle(el);
    for (const prop of STYLE_PROPS) {
      const value = style.getPropertyValue(prop);
      if (value) to[i].setAttribute(prop, value);
    }
  });
  return copy;
}

function image(svg) {
  const text = new XMLSerializer().serializeToString(standalone(svg));
  // A data: URL: the page's CSP lets images come from 'self' and data: only (not blob:).
  const url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('the chart could not be drawn as an image'));
    img.src = url;
  });
}

/**
 * Draws `svgs` on one canvas, two per row, on `background`, at twice their size; resolves to a
 * PNG blob.
 */
export async function toPng(svgs, { background = '#ffffff', columns = 2, scale = 2 } = {}) {
  const images = await Promise.all(svgs.map(image));
  const gap = 16;
  const cellWidth = WIDTH;
  const rows = [];
  for (let i = 0; i < images.length; i += columns) rows.push(images.slice(i, i + columns));
  const rowHeights = rows.map((row, r) => Math.max(...row.map((_, j) => svgs[r * columns + j].viewBox.baseVal.height)));
  const width = gap + Math.min(columns, images.length) * (cellWidth + gap);
  const height = gap + rowHeights.reduce((a, b) => a + b + gap, 0);
  const canvas = document.createElement('canvas');
  canvas.width = width * scale;
  canvas.height = height * scale;
  const ctx = canvas.getContext('2d');
  ctx.scale(scale, scale);
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, width, height);
  let y = gap;
  rows.forEach((row, r) => {
    row.forEach((img, j) => {
      const box = svgs[r * columns + j].viewBox.baseVal;
      ctx.drawImage(img, gap + j * (cellWidth + gap), y, box.width, box.height);
    });
    y += rowHeights[r] + gap;
  });
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the browser made no PNG'))), 'image/png');
  });
}
