// Live: call outcomes as notifications arrive, without a reload. Polls the delivery log
// (newest first, by received time) every few seconds and shows each new notification's call
// as it now stands (docs/dashboard.md#live).

import { get } from './api.js';
import { badge, currentZone, empty, h, label, seconds, time } from './format.js';

export const POLL_MS = 2000;
const SHOWN = 100;

export async function render(root, ctx) {
  const tz = currentZone();
  const first = await get('deliveries', new URLSearchParams({ limit: '1' }));
  // Everything received after the newest delivery seen when the page opened is new.
  let since = first.data[0] ? first.data[0].received_at : null;
  // Deliveries already shown (or there before the page opened), by id: `since` is inclusive.
  const seen = new Set(first.data.map((d) => d.id));
  const status = h('div', { class: 'status-line', id: 'live-status' }, `Watching for new notifications (every ${POLL_MS / 1000} s)…`);
  const placeholder = empty('No new call outcomes yet. They appear here as notifications arrive.');
  const feed = h('ol', { class: 'feed', id: 'live-feed' });
  root.append(h('h1', {}, 'Live'), status, placeholder, feed);

  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      const query = new URLSearchParams({ limit: '200', result: 'accepted' });
      if (since) query.set('since', since);
      const page = await get('deliveries', query);
      const fresh = page.data.filter((d) => !seen.has(d.id));
      if (fresh.length) {
        // Newest first: the first one's time is where the next poll starts.
        since = fresh[0].received_at;
        seen.clear();
        for (const d of page.data) if (d.received_at === since) seen.add(d.id);
      }
      const ids = [...new Set(fresh.map((d) => d.conversation_id).filter(Boolean))].slice(0, 20);
      const calls = await Promise.all(ids.map((id) => get(`calls/${encodeURIComponent(id)}`).catch(() => null)));
      for (const call of calls.filter(Boolean).reverse()) {
        feed.querySelector(`li[data-id="${CSS.escape(call.conversation_id)}"]`)?.remove();
        feed.prepend(h('li', { class: 'fresh', 'data-id': call.conversation_id, 'data-outcome': call.outcome },
          h('span', { class: 'mono muted' }, time(call.last_seen_at, tz)),
          badge(call.outcome),
          h('a', { class: 'mono', href: `#/call/${encodeURIComponent(call.conversation_id)}` }, call.conversation_id),
          h('span', { class: 'muted' }, [label(call.state), call.sip_code ? `SIP ${call.sip_code}` : null, call.duration_s !== null ? seconds(call.duration_s) : null].filter(Boolean).join(' · '))));
      }
      while (feed.children.length > SHOWN) feed.lastChild.remove();
      placeholder.hidden = feed.children.length > 0;
      status.textContent = `Watching for new notifications (every ${POLL_MS / 1000} s) · last checked ${time(new Date().toISOString(), tz)}`;
      status.classList.remove('error');
    } catch (err) {
      status.textContent = `Could not check for new notifications: ${err.message}. Retrying.`;
      status.classList.add('error');
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
