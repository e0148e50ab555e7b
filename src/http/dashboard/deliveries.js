// Deliveries: every body received, rejected ones first, with their errors and a button that
// reprocesses one and shows what became of it (docs/dashboard.md#deliveries).

import { ApiError, get, post } from './api.js';
import { currentZone, empty, h, resultBadge, routeParams, setRouteParams, time } from './format.js';

const RESULTS = ['rejected', 'accepted', 'duplicate', 'all'];

function bodyText(d) {
  return d.body_encoding === 'json' ? JSON.stringify(d.body, null, 2) : String(d.body);
}

function outcomeOf(receipt) {
  const parts = [`Reprocessed: ${receipt.result}`];
  if (receipt.conversation_id) parts.push(`call ${receipt.conversation_id}`);
  if (receipt.event_id) parts.push(`event ${receipt.event_id}`);
  return parts.join(' · ');
}

function reprocessButton(d, cell, badgeCell) {
  const button = h('button', { type: 'button', class: 'reprocess' }, 'Reprocess');
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.textContent = 'Reprocessing…';
    result.className = 'result';
    try {
      const receipt = await post(`deliveries/${d.id}/reprocess`);
      result.replaceChildren(outcomeOf(receipt), ' ',
        receipt.conversation_id ? h('a', { href: `#/call/${encodeURIComponent(receipt.conversation_id)}` }, 'open the call') : '',
        ...(receipt.warnings || []).map((w) => h('span', { class: 'warning' }, `⚠ ${w}`)));
      result.dataset.result = receipt.result;
      badgeCell.replaceChildren(resultBadge(receipt.result));
    } catch (err) {
      result.className = 'result error';
      result.dataset.result = 'rejected';
      const fields = err instanceof ApiError && err.problem.errors ? err.problem.errors.map((e) => `${e.field}: ${e.message}`) : [];
      result.textContent = `Still rejected: ${err.message}${fields.length ? ` (${fields.join('; ')})` : ''}`;
      button.disabled = false;
    }
  });
  cell.append(button, result);
}

function row(d, tz) {
  const badgeCell = h('td', {}, resultBadge(d.result));
  const action = h('td', {});
  reprocessButton(d, action, badgeCell);
  const errors = [
    d.error ? h('div', {}, d.error) : null,
    ...(d.errors || []).map((e) => h('div', {}, h('code', {}, e.field), `: ${e.message}`)),
  ];
  return h('tr', { 'data-id': String(d.id) },
    h('td', { class: 'mono' }, String(d.id)),
    h('td', { class: 'mono' }, time(d.received_at, tz)),
    badgeCell,
    h('td', {},
      d.conversation_id ? h('div', { class: 'mono' }, h('a', { href: `#/call/${encodeURIComponent(d.conversation_id)}` }, d.conversation_id)) : null,
      errors.some(Boolean) ? h('div', { class: 'error' }, errors) : null,
      h('details', {}, h('summary', {}, `Body (${d.body_encoding}${d.content_type ? `, ${d.content_type}` : ''})`), h('pre', { class: 'body' }, bodyText(d)))),
    action);
}

export async function render(root) {
  const params = routeParams();
  const tz = currentZone();
  const result = RESULTS.includes(params.get('result')) ? params.get('result') : 'rejected';
  const query = new URLSearchParams({ limit: '50' });
  if (result !== 'all') query.set('result', result);
  if (params.get('cursor')) query.set('cursor', params.get('cursor'));
  const page = await get('deliveries', query);

  const select = h('select', { name: 'result' }, RESULTS.map((r) => h('option', { value: r, selected: r === result }, r)));
  select.addEventListener('change', () => setRouteParams(new URLSearchParams({ result: select.value })));
  root.append(h('h1', {}, 'Deliveries'),
    h('div', { class: 'filters' }, h('label', {}, 'Result', select),
      h('span', { class: 'muted' }, 'Every body received at /notify, newest first. Reprocessing runs a body through today’s rules again.')));
  if (!page.data.length) {
    root.append(empty(result === 'rejected' ? 'No rejected deliveries: every body received was usable.' : 'No deliveries.'));
  } else {
    root.append(h('div', { class: 'table-wrap' }, h('table', { id: 'deliveries' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Received'), h('th', {}, 'Result'), h('th', {}, 'Call, errors and body'), h('th', {}, ''))),
      h('tbody', {}, page.data.map((d) => row(d, tz))))));
  }
  if (page.next_cursor) {
    const older = h('button', { type: 'button' }, 'Older →');
    older.addEventListener('click', () => setRouteParams(new URLSearchParams({ result, cursor: page.next_cursor })));
    root.append(h('div', { class: 'pager' }, older));
  }
}
