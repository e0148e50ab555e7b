// Charts drawn as SVG in the browser: no library, nothing fetched (docs/dashboard.md#charts).

import { OUTCOMES, count, h, label } from './format.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** A round axis maximum at or above `max`, and its tick step. */
function niceScale(max) {
  if (max <= 0) return { top: 4, step: 1 };
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= rough);
  const whole = Math.max(1, step);
  return { top: Math.ceil(max / whole) * whole, step: whole };
}

/** "MM-DD", "HH:00" or "HH:MM" of a bucket's local start (`2026-03-01T15:45:00+05:45`). */
function bucketLabel(start, size) {
  if (size === 'day') return start.slice(5, 10);
  return start.slice(11, 16);
}

/**
 * Calls over time, one bar per bucket stacked by outcome. `data-total` holds the sum of the
 * bars, which is what the page says it shows.
 */
export function stackedBars(buckets, size) {
  const W = 1000, H = 280, left = 52, right = 10, top = 10, bottom = 44;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(0, ...buckets.map((b) => b.calls));
  const { top: yTop, step } = niceScale(max);
  const total = buckets.reduce((sum, b) => sum + b.calls, 0);
  const svg = s('svg', {
    class: 'chart over-time', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-total': String(total),
    'aria-label': `Calls over time: ${total} calls in ${buckets.length} buckets`,
  });
  for (let v = 0; v <= yTop; v += step) {
    const y = top + plotH - (v / yTop) * plotH;
    svg.append(s('line', { class: 'grid-line', x1: left, x2: W - right, y1: y, y2: y }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, count(v)));
  }
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, slot * 0.8);
  const every = Math.max(1, Math.ceil(buckets.length / 12));
  buckets.forEach((bucket, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let y = top + plotH;
    const group = s('g', { class: 'bucket', 'data-calls': String(bucket.calls) });
    const lines = [`${bucket.start.replace('T', ' ')}: ${count(bucket.calls)} calls`];
    for (const outcome of OUTCOMES) {
      const n = bucket.by_outcome[outcome] || 0;
      if (!n) continue;
      const height = (n / yTop) * plotH;
      y -= height;
      group.append(s('rect', { class: `seg o-${outcome}`, x, y, width: barW, height, 'data-outcome': outcome }));
      lines.push(`${label(outcome)}: ${count(n)}`);
    }
    group.append(s('title', {}, lines.join('\n')));
    svg.append(group);
    if (i % every === 0) {
      svg.append(s('text', { x: x + barW / 2, y: H - bottom + 16, 'text-anchor': 'middle' }, bucketLabel(bucket.start, size)));
    }
  });
  svg.append(s('line', { class: 'axis', x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }));
  if (buckets.length) {
    const first = buckets[0].start.slice(0, 10);
    const last = buckets[buckets.length - 1].start.slice(0, 10);
    svg.append(s('text', { class: 'range', x: left, y: H - 6 }, first === last ? first : `${first} – ${last}`));
  }
  return svg;
}

/** The outcomes that occur, as a legend of swatches. */
export function legend(byOutcome) {
  return h('div', { class: 'legend' }, OUTCOMES.filter((o) => byOutcome[o]).map((o) =>
    h('span', { class: `o-${o}` }, h('span', { class: 'swatch' }), `${label(o)} ${count(byOutcome[o])}`)));
}

/**
 * Horizontal bars: rows of `{name, value, cls, note}`; widths relative to the largest.
 */
export function barList(rows, { max } = {}) {
  const top = max ?? Math.max(1, ...rows.map((r) => r.value));
  return h('div', { class: 'bars' }, rows.map((r) => {
    const fill = h('div', { class: `fill ${r.cls || ''}` });
    fill.style.width = `${(100 * r.value) / top}%`;
    return h('div', { class: 'row', 'data-name': r.name },
      h('span', {}, r.title ?? label(r.name), r.note ? h('span', { class: 'muted' }, ` ${r.note}`) : null),
      h('div', { class: 'track' }, fill),
      h('span', { class: 'n' }, count(r.value)));
  }));
}

/** Vertical bars of the duration histogram (`[{min_s, max_s, calls}]`). */
export function histogram(bins) {
  const W = 600, H = 200, left = 48, bottom = 30, top = 10;
  const plotH = H - top - bottom, plotW = W - left - 10;
  const { top: yTop, step } = niceScale(Math.max(0, ...bins.map((b) => b.calls)));
  const svg = s('svg', { class: 'chart histogram', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Duration distribution' });
  for (let v = 0; v <= yTop; v += step) {
    const y = top + plotH - (v / yTop) * plotH;
    svg.append(s('line', { class: 'grid-line', x1: left, x2: W - 10, y1: y, y2: y }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, count(v)));
  }
  const slot = plotW / bins.length;
  const span = (b) => {
    const unit = (n) => (n >= 60 ? `${n / 60}m` : `${n}s`);
    return b.max_s === null ? `${unit(b.min_s)}+` : `${unit(b.min_s)}–${unit(b.max_s)}`;
  };
  bins.forEach((b, i) => {
    const height = (b.calls / yTop) * plotH;
    const x = left + i * slot + slot * 0.1;
    svg.append(s('rect', { class: 'bar', x, y: top + plotH - height, width: slot * 0.8, height },
      s('title', {}, `${span(b)}: ${count(b.calls)} calls`)));
    svg.append(s('text', { x: x + slot * 0.4, y: H - 10, 'text-anchor': 'middle' }, span(b)));
  });
  svg.append(s('line', { class: 'axis', x1: left, x2: W - 10, y1: top + plotH, y2: top + plotH }));
  return svg;
}
