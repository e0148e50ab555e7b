// Overview: a time range and filters; calls over time by outcome, rates, AMD results, top
// failure reasons, durations. Every figure is /v1/stats for the same query
// (docs/dashboard.md#overview).

import { get } from './api.js';
import { barList, histogram, legend, stackedBars } from './charts.js';
import {
  AMD_OUTCOME, AMD_RESULTS, OUTCOMES, SOURCES, addDays, count, currentZone, dateIn, empty, h,
  label, percent, routeParams, seconds, setRouteParams, setZone, startOfDay, zones,
} from './format.js';

export const PRESETS = {
  '1h': 'Last hour',
  today: 'Today',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  custom: 'Custom',
};

/** The range and bucket of a preset, as instants; the bucket follows the range's length. */
export function rangeOf(params, tz, now = new Date()) {
  const preset = PRESETS[params.get('range')] ? params.get('range') : '7d';
  const today = dateIn(tz, now);
  if (preset === '1h') {
    return { preset, since: new Date(now - 3_600_000).toISOString(), until: now.toISOString(), bucket: 'quarter_hour' };
  }
  let first, last;
  if (preset === 'today') [first, last] = [today, today];
  else if (preset === '7d') [first, last] = [addDays(today, -6), today];
  else if (preset === '30d') [first, last] = [addDays(today, -29), today];
  else {
    first = params.get('since') || addDays(today, -6);
    last = params.get('until') || today;
    if (last < first) [first, last] = [last, first];
  }
  const days = Math.round((Date.parse(last) - Date.parse(first)) / 86_400_000) + 1;
  return {
    preset, first, last,
    since: startOfDay(first, tz),
    until: startOfDay(addDays(last, 1), tz),
    bucket: days <= 2 ? 'hour' : 'day',
  };
}

/** The /v1 filters of the page's query (range, outcome, source, campaign). */
export function filterParams(params, range) {
  const q = new URLSearchParams({ since: range.since, until: range.until });
  if (params.get('outcome')) q.set('outcome', params.get('outcome'));
  if (params.get('source')) q.set('source', params.get('source'));
  if (params.get('campaign')) q.set('metadata.campaign', params.get('campaign'));
  return q;
}

function controls(params, range, tz) {
  const preset = h('select', { name: 'range' }, Object.entries(PRESETS).map(([value, text]) =>
    h('option', { value, selected: value === range.preset }, text)));
  const since = h('input', { type: 'date', name: 'since', value: range.first || '' });
  const until = h('input', { type: 'date', name: 'until', value: range.last || '' });
  const custom = h('span', { class: 'filters-custom' },
    h('label', {}, 'From', since), ' ', h('label', {}, 'To', until));
  custom.hidden = range.preset !== 'custom';
  preset.addEventListener('change', () => { custom.hidden = preset.value !== 'custom'; });
  const zone = h('select', { name: 'tz' }, zones().map((z) => h('option', { value: z, selected: z === tz }, z)));
  const outcome = h('select', { name: 'outcome' }, h('option', { value: '' }, 'any'),
    OUTCOMES.map((o) => h('option', { value: o, selected: params.get('outcome') === o }, label(o))));
  const source = h('select', { name: 'source' }, h('option', { value: '' }, 'any'),
    SOURCES.map((o) => h('option', { value: o, selected: params.get('source') === o }, label(o))));
  const campaign = h('input', { name: 'campaign', value: params.get('campaign') || '', placeholder: 'metadata.campaign', size: 14 });
  const form = h('form', { class: 'filters' },
    h('label', {}, 'Range', preset), custom, h('label', {}, 'Time zone', zone),
    h('label', {}, 'Outcome', outcome), h('label', {}, 'Source', source),
    h('label', {}, 'Campaign', campaign),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    setZone(zone.value);
    const next = new URLSearchParams({ range: preset.value });
    if (preset.value === 'custom') {
      if (since.value) next.set('since', since.value);
      if (until.value) next.set('until', until.value);
    }
    if (outcome.value) next.set('outcome', outcome.value);
    if (source.value) next.set('source', source.value);
    if (campaign.value.trim()) next.set('campaign', campaign.value.trim());
    const before = location.hash;
    setRouteParams(next);
    if (location.hash === before) window.dispatchEvent(new HashChangeEvent('hashchange'));
  });
  return form;
}

function kpi(name, value, key) {
  return h('div', { class: 'kpi', 'data-kpi': key }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, name));
}

export async function render(root, ctx) {
  const params = routeParams();
  const tz = currentZone();
  const range = rangeOf(params, tz);
  const filters = filterParams(params, range);
  const withBuckets = new URLSearchParams(filters);
  withBuckets.set('bucket', range.bucket);
  withBuckets.set('tz', tz);
  const failedOnly = new URLSearchParams(filters);
  failedOnly.append('state', 'failed');
  // The bucketed statistics take longest: the failure reasons and their SIP codes are read
  // meanwhile.
  const bucketed = get('stats', withBuckets);
  bucketed.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  const failed = await get('stats', failedOnly);
  const reasons = Object.entries(failed.by_reason_code).sort((a, b) => b[1] - a[1]).slice(0, 6);
  // The SIP code of each reason, from its latest call (a reason code and a SIP code go together).
  const sips = await Promise.all(reasons.map(async ([code]) => {
    const q = new URLSearchParams(failedOnly);
    q.set('reason_code', code);
    q.set('limit', '1');
    const page = await get('calls', q);
    const c = page.data[0];
    return c && c.sip_code ? `${c.sip_code} ${c.sip_reason || ''}`.trim() : null;
  }));
  const stats = await bucketed;

  const callsLink = new URLSearchParams({ since: range.since, until: range.until });
  for (const k of ['outcome', 'source', 'campaign']) if (params.get(k)) callsLink.set(k, params.get(k));

  root.append(
    h('h1', {}, 'Overview'),
    controls(params, range, tz),
    h('div', { class: 'kpis' },
      kpi('Calls', count(stats.calls), 'calls'),
      kpi('Answer rate', percent(stats.answer_rate), 'answer_rate'),
      kpi('Human rate (of AMD results)', percent(stats.human_rate), 'human_rate'),
      kpi('Machine rate (of AMD results)', percent(stats.machine_rate), 'machine_rate'),
      kpi('Median duration', seconds(stats.duration_s.p50), 'p50'),
      kpi('95th percentile duration', seconds(stats.duration_s.p95), 'p95')),
  );
  const chart = h('section', { class: 'card wide', id: 'calls-over-time' },
    h('h2', {}, `Calls per ${label(range.bucket)} by outcome `, h('span', { class: 'muted' }, `(${tz})`)));
  if (stats.calls === 0) chart.append(empty('No calls in this range.'));
  else chart.append(stackedBars(stats.buckets, range.bucket), legend(stats.by_outcome));
  chart.append(h('p', {}, h('a', { href: `#/calls?${callsLink}` }, `List these ${count(stats.calls)} calls →`)));

  const outcomes = h('section', { class: 'card', id: 'outcomes' }, h('h2', {}, 'Outcomes'),
    stats.calls ? barList(OUTCOMES.filter((o) => stats.by_outcome[o]).map((o) => ({ name: o, value: stats.by_outcome[o], cls: `o-${o}` })))
      : empty('No calls.'));
  const amdRows = AMD_RESULTS.filter((r) => stats.by_amd_result[r]).map((r) =>
    ({ name: r, title: label(r.replace('amd_', '')), value: stats.by_amd_result[r], cls: `o-${AMD_OUTCOME[r]}` }));
  const amd = h('section', { class: 'card', id: 'amd' }, h('h2', {}, 'Answering-machine detection'),
    amdRows.length ? barList(amdRows) : empty('No AMD results in this range.'));
  const failures = h('section', { class: 'card', id: 'failures' }, h('h2', {}, `Top failure reasons (${count(failed.calls)} failed calls)`),
    reasons.length ? barList(reasons.map(([code, n], i) => ({ name: code, value: n, note: sips[i] ? `SIP ${sips[i]}` : '', cls: 'o-failed' })))
      : empty('No failed calls in this range.'));
  const d = stats.duration_s;
  const durations = h('section', { class: 'card', id: 'durations' }, h('h2', {}, 'Duration distribution'),
    d.max === null ? empty('No call has a duration in this range.') : [
      histogram(stats.duration_histogram),
      h('p', { class: 'muted' }, `average ${seconds(d.avg)} · median ${seconds(d.p50)} · 95th percentile ${seconds(d.p95)} · longest ${seconds(d.max)}`),
    ]);
  root.append(h('div', { class: 'grid' }, chart, outcomes, amd, failures, durations));

}
