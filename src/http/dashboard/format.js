// Formatting and small DOM helpers shared by the pages.

/** Outcomes in the order charts stack them (reached a person first, failures last). */
export const OUTCOMES = [
  'human', 'machine', 'no_speech', 'amd_undetermined', 'connected',
  'busy', 'declined', 'no_answer', 'unavailable', 'failed', 'unknown',
];
export const STATES = ['completed', 'failed', 'in_progress', 'unknown'];
/** The gateways calls come from (docs/api.md#sources). */
export const SOURCES = ['kore', 'jambonz', 'twilio'];
export const AMD_RESULTS = [
  'amd_human_detected', 'amd_machine_detected', 'amd_machine_stopped_speaking', 'amd_tone_detected',
  'amd_no_speech_detected', 'amd_decision_timeout', 'amd_error', 'amd_stopped',
];
/** The outcome colour class each AMD result lands in (docs/api.md, the outcome table). */
export const AMD_OUTCOME = {
  amd_human_detected: 'human',
  amd_machine_detected: 'machine',
  amd_machine_stopped_speaking: 'machine',
  amd_tone_detected: 'machine',
  amd_no_speech_detected: 'no_speech',
  amd_decision_timeout: 'amd_undetermined',
  amd_error: 'amd_undetermined',
  amd_stopped: 'amd_undetermined',
};

export const label = (name) => (name ?? '').replaceAll('_', ' ');

/** Creates an element: h('td', {class: 'num'}, 'text', childNode, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function badge(outcome) {
  return h('span', { class: `badge o-${outcome}`, 'data-outcome': outcome }, label(outcome));
}

export function resultBadge(result) {
  return h('span', { class: `badge r-${result}` }, result);
}

const number = new Intl.NumberFormat('en');
export const count = (n) => (n === null || n === undefined ? '–' : number.format(n));
export const percent = (rate) => (rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)} %`);

export function seconds(s) {
  if (s === null || s === undefined) return '–';
  const total = Math.round(s);
  if (total < 60) return `${total} s`;
  const m = Math.floor(total / 60);
  if (m < 60) return `${m} m ${String(total % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

/** An instant in `tz`, e.g. "2026-03-01 14:05:09". */
export function time(iso, tz) {
  if (!iso) return '–';
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** The date (YYYY-MM-DD) of `date` in `tz`, `offsetDays` later. */
export function dateIn(tz, date = new Date(), offsetDays = 0) {
  const d = new Date(date.getTime() + offsetDays * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

/** A phone number or SIP URI with all but its last four digits hidden. */
export function maskTarget(target) {
  if (!target) return '–';
  const digits = [...target].filter((c) => c >= '0' && c <= '9').length;
  let seen = 0;
  return [...target].map((c) => {
    if (c < '0' || c > '9') return c;
    seen += 1;
    return seen > digits - 4 ? c : '•';
  }).join('');
}

/** The browser's zone, falling back to UTC. */
export function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

const TZ_KEY = 'calltrail.tz';

/** The zone times are shown in: the user's choice, else the browser's. */
export function currentZone() {
  return localStorage.getItem(TZ_KEY) || localZone();
}

export function setZone(tz) {
  localStorage.setItem(TZ_KEY, tz);
}

/** Every IANA zone the browser knows, UTC first. */
export function zones() {
  const all = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return ['UTC', ...all.filter((z) => z !== 'UTC')];
}

/** A message for an empty result or a failure, instead of a blank area. */
export function empty(text) {
  return h('div', { class: 'empty' }, text);
}

/** Reads the hash route's query (`#/calls?outcome=busy`) into URLSearchParams. */
export function routeParams() {
  const hash = location.hash.slice(1);
  const i = hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : hash.slice(i + 1));
}

/** Replaces the current route's query, keeping its page. */
export function setRouteParams(params) {
  const hash = location.hash.slice(1);
  const path = hash.split('?')[0] || '/overview';
  const query = params.toString();
  location.hash = query ? `${path}?${query}` : path;
}

/** Minutes `tz` is ahead of UTC at the instant `ms`. */
function offsetMs(ms, tz) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** The first instant of the local day `date` (YYYY-MM-DD) in `tz`, as RFC 3339 UTC. */
export function startOfDay(date, tz) {
  const [y, m, d] = date.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let at = guess - offsetMs(guess, tz);
  const second = offsetMs(at, tz);
  if (second !== offsetMs(guess, tz)) at = guess - second;
  return new Date(at).toISOString();
}

/** `date` (YYYY-MM-DD) plus `days`. */
export function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}
