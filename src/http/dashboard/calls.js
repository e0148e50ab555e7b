// Calls: the filterable, keyset-paged list of /v1/calls, and a CSV export of the same
// filter (docs/dashboard.md#calls).

import { download, get } from './api.js';
import {
  OUTCOMES, SOURCES, STATES, badge, currentZone, empty, h, label, maskTarget, routeParams, seconds,
  setRouteParams, time,
} from './format.js';

const PAGE = 50;

/** The /v1 filters of the page's query. */
function filters(params) {
  const q = new URLSearchParams();
  for (const name of ['outcome', 'state', 'source', 'q', 'since', 'until', 'min_duration', 'reason_code']) {
    if (params.get(name)) q.set(name, params.get(name));
  }
  if (params.get('campaign')) q.set('metadata.campaign', params.get('campaign'));
  return q;
}

function controls(params) {
  const field = (name, attrs) => h('input', { name, value: params.get(name) || '', ...attrs });
  const select = (name, values) => h('select', { name }, h('option', { value: '' }, 'any'),
    values.map((v) => h('option', { value: v, selected: params.get(name) === v }, label(v))));
  const form = h('form', { class: 'filters', id: 'call-filters' },
    h('label', {}, 'Outcome', select('outcome', OUTCOMES)),
    h('label', {}, 'State', select('state', STATES)),
    h('label', {}, 'Source', select('source', SOURCES)),
    h('label', {}, 'Campaign', field('campaign', { size: 12, placeholder: 'metadata.campaign' })),
    h('label', {}, 'Conversation id starts with', field('q', { size: 16 })),
    h('label', {}, 'Min duration (s)', field('min_duration', { type: 'number', min: 0, size: 5 })),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) next.set(k, String(v).trim());
    for (const k of ['since', 'until', 'reason_code']) if (params.get(k)) next.set(k, params.get(k));
    setRouteParams(next);
  });
  return form;
}

function metadataText(dialout) {
  if (!dialout || !dialout.metadata) return '';
  return Object.entries(dialout.metadata).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

function row(call, tz) {
  const id = call.conversation_id;
  const reason = call.sip_code ? `${call.sip_code} ${call.sip_reason || ''}` : (call.reason_code || '');
  return h('tr', { 'data-id': id },
    h('td', { class: 'mono' }, time(call.occurred_at, tz)),
    h('td', { class: 'mono' }, h('a', { href: `#/call/${encodeURIComponent(id)}` }, id)),
    h('td', {}, badge(call.outcome)),
    h('td', { class: 'hide-narrow' }, label(call.state)),
    h('td', { class: 'hide-narrow' }, reason),
    h('td', { class: 'num' }, seconds(call.duration_s)),
    h('td', { class: 'hide-narrow' }, label((call.amd_result || '').replace('amd_', '')) || '–'),
    h('td', { class: 'mono hide-narrow' }, call.dialout ? maskTarget(call.dialout.target) : '–'),
    h('td', { class: 'hide-narrow' }, metadataText(call.dialout)));
}

export async function render(root) {
  const params = routeParams();
  const tz = currentZone();
  const q = filters(params);
  // The cursors of the pages before this one, so "Previous" can go back.
  const trail = params.get('trail') ? params.get('trail').split(' ') : [];
  const query = new URLSearchParams(q);
  query.set('limit', String(PAGE));
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  const page = await get('calls', query);

  const exportButton = h('button', { type: 'button', id: 'export-csv' }, 'Export CSV');
  const exportNote = h('span', { class: 'muted' });
  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    exportNote.textContent = 'Exporting…';
    try {
      await download('calls/export', q, 'calls.csv');
      exportNote.textContent = '';
    } catch (err) {
      exportNote.textContent = `Export failed: ${err.message}`;
    } finally {
      exportButton.disabled = false;
    }
  });
  const scope = [];
  if (params.get('since')) scope.push(`from ${time(params.get('since'), tz)}`);
  if (params.get('until')) scope.push(`until ${time(params.get('until'), tz)}`);
  if (params.get('reason_code')) scope.push(`reason ${params.get('reason_code')}`);

  root.append(h('h1', {}, 'Calls'), controls(params),
    h('div', { class: 'status-line' }, scope.length ? `${scope.join(', ')} · ` : '',
      `times in ${tz} · newest first · `, exportButton, ' ', exportNote));
  if (!page.data.length) {
    root.append(empty(params.get('cursor') ? 'No more calls.' : 'No calls match these filters.'));
  } else {
    root.append(h('div', { class: 'table-wrap' }, h('table', { id: 'calls' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'Occurred'), h('th', {}, 'Conversation id'), h('th', {}, 'Outcome'),
        h('th', { class: 'hide-narrow' }, 'State'), h('th', { class: 'hide-narrow' }, 'Reason'),
        h('th', { class: 'num' }, 'Duration'), h('th', { class: 'hide-narrow' }, 'AMD'),
        h('th', { class: 'hide-narrow' }, 'Target'), h('th', { class: 'hide-narrow' }, 'Metadata'))),
      h('tbody', {}, page.data.map((c) => row(c, tz))))));
  }
  const go = (cursor, nextTrail) => {
    const next = new URLSearchParams(params);
    next.delete('cursor');
    next.delete('trail');
    if (cursor) next.set('cursor', cursor);
    if (nextTrail.length) next.set('trail', nextTrail.join(' '));
    setRouteParams(next);
  };
  const previous = h('button', { type: 'button', disabled: !params.get('cursor') }, '← Newer');
  previous.addEventListener('click', () => go(trail[trail.length - 1] || '', trail.slice(0, -1)));
  const more = h('button', { type: 'button', id: 'next-page', disabled: !page.next_cursor }, 'Older →');
  more.addEventListener('click', () => go(page.next_cursor, [...trail, params.get('cursor') || '']));
  root.append(h('div', { class: 'pager' }, previous, more));
}
