// One call: its record, its events in the order they were received, its deliveries
// (duplicates included) and the dial-out that placed it (docs/dashboard.md#call).

import { get } from './api.js';
import { badge, currentZone, empty, h, label, maskTarget, resultBadge, seconds, time } from './format.js';

function record(call, tz) {
  const rows = [
    ['Outcome', badge(call.outcome)],
    ['State', `${label(call.state)}${call.status ? ` (status ${call.status})` : ''}`],
    ['Reason', call.reason ? `${call.reason}${call.reason_code ? ` · ${call.reason_code}` : ''}` : (call.reason_code || '–')],
    ['SIP code', call.sip_code ? `${call.sip_code} ${call.sip_reason || ''}` : '–'],
    ['Duration', seconds(call.duration_s)],
    ['AMD', call.amd_result ? `${call.amd_result}${call.amd_mode ? ` (mode ${call.amd_mode})` : ''}` : (call.amd_mode ? `mode ${call.amd_mode}, no result` : '–')],
    ['Connected', time(call.connected_at, tz)],
    ['Ended', time(call.ended_at, tz)],
    ['First seen', time(call.first_seen_at, tz)],
    ['Last seen', time(call.last_seen_at, tz)],
    ['Events', String(call.event_count)],
  ];
  return h('dl', { class: 'record' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function event(e, index, tz) {
  const facts = [
    e.reason ? `reason ${e.reason}` : null,
    e.sip_code ? `SIP ${e.sip_code}` : null,
    e.reason_code ? `code ${e.reason_code}` : null,
    e.amd_result ? `AMD ${e.amd_result}` : (e.amd_mode ? `AMD mode ${e.amd_mode}` : null),
    e.duration_s !== null && e.duration_s !== undefined ? `duration ${seconds(e.duration_s)}` : null,
    e.connect_time ? `connected ${time(e.connect_time, tz)}` : null,
    e.disconnect_time ? `disconnected ${time(e.disconnect_time, tz)}` : null,
  ].filter(Boolean);
  return h('li', { 'data-event-id': String(e.id), 'data-status': e.status },
    h('div', { class: 'when' }, `#${index + 1} · received ${time(e.received_at, tz)} · event ${e.id}`),
    h('div', {}, h('strong', { class: 'status' }, e.status), facts.length ? ` — ${facts.join(' · ')}` : ''),
    (e.warnings || []).map((w) => h('span', { class: 'warning' }, `⚠ ${w}`)),
    h('details', {}, h('summary', {}, 'Raw payload'), h('pre', {}, JSON.stringify(e.payload, null, 2))));
}

function deliveriesTable(deliveries, tz) {
  if (!deliveries.length) return empty('No deliveries found for this call.');
  return h('div', { class: 'table-wrap' }, h('table', { id: 'call-deliveries' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Delivery'), h('th', {}, 'Received'), h('th', {}, 'Result'), h('th', {}, 'Event'))),
    h('tbody', {}, deliveries.map((d) => h('tr', { 'data-result': d.result },
      h('td', { class: 'mono' }, String(d.id)), h('td', { class: 'mono' }, time(d.received_at, tz)),
      h('td', {}, resultBadge(d.result)), h('td', { class: 'mono' }, d.event_id ? String(d.event_id) : '–'))))));
}

function dialoutSection(dialout, tz) {
  const rows = [
    ['Dial-out', `#${dialout.id} · ${label(dialout.state)}`],
    ['Target', maskTarget(dialout.target)],
    ['Caller', dialout.caller],
    ['Requested', time(dialout.requested_at, tz)],
    ['Gateway answer', dialout.gateway_status ? String(dialout.gateway_status) : '–'],
    ['Attempts', String(dialout.attempts)],
  ];
  if (dialout.error) rows.push(['Error', dialout.error]);
  return [
    h('dl', { class: 'record' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('details', {}, h('summary', {}, 'The request as placed'), h('pre', {}, JSON.stringify(dialout, null, 2))),
  ];
}

export async function render(root, ctx) {
  const tz = currentZone();
  const id = ctx.id || '';
  const call = await get(`calls/${encodeURIComponent(id)}`);
  const deliveryQuery = new URLSearchParams({ conversation_id: id, since: call.first_seen_at, limit: '200' });
  const [deliveries, dialout] = await Promise.all([
    get('deliveries', deliveryQuery),
    call.dialout ? get(`dialouts/${call.dialout.id}`) : null,
  ]);
  const duplicates = deliveries.data.filter((d) => d.result === 'duplicate').length;
  root.append(
    h('p', {}, h('a', { href: '#/calls' }, '← Calls')),
    h('h1', { class: 'mono' }, id),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Record'), record(call, tz)),
      h('section', { class: 'card', id: 'dialout' }, h('h2', {}, 'Dial-out'),
        dialout ? dialoutSection(dialout, tz) : empty('calltrail did not place this call.')),
      h('section', { class: 'card wide', id: 'timeline' },
        h('h2', {}, `Timeline: ${call.events.length} events in the order received `, h('span', { class: 'muted' }, `(${tz})`)),
        h('ol', { class: 'timeline' }, call.events.map((e, i) => event(e, i, tz)))),
      h('section', { class: 'card wide', id: 'deliveries' },
        h('h2', {}, `Deliveries: ${deliveries.data.length}${duplicates ? `, ${duplicates} duplicate${duplicates > 1 ? 's' : ''}` : ''}`),
        deliveriesTable(deliveries.data, tz))));
}
