// The dashboard as a person sees it, in headless Chromium (docs/development.md#browser-tests).

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { API_KEY, notification, startCalltrail } from './server.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SHOTS = process.env.SHOTS_DIR || resolve(HERE, '../../target/browser-shots');
const FLAGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

let app, browser, page;
const foreign = []; // requests to any other host
let consoleErrors = [];

const minutesAgo = (n) => new Date(Date.now() - n * 60_000);
/** The seeded calls: conversation id → kind. */
const SEEDED = {
  'c-human-1': 'human', 'c-human-2': 'human', 'c-human-3': 'human',
  'c-machine-1': 'machine', 'c-machine-2': 'machine',
  'c-connected-1': 'connected',
  'c-busy-1': 'busy', 'c-busy-2': 'busy',
  'c-unavailable-1': 'unavailable', 'c-declined-1': 'declined',
};

async function shot(name, { fullPage = false } = {}) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

async function ready(pageName) {
  await page.waitForSelector(`main[data-state="ready"][data-page="${pageName}"]`);
}

/** Console errors seen since the last call, then forgotten. */
function takeConsoleErrors() {
  const seen = consoleErrors;
  consoleErrors = [];
  return seen;
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  app = await startCalltrail({ rejectedBody: notification('c-fixed-1', 'human', minutesAgo(10)) });
  let n = 0;
  const sentBodies = {};
  for (const [id, kind] of Object.entries(SEEDED)) {
    n += 1;
    const at = minutesAgo(5 + n);
    if (kind === 'connected') {
      assert.equal((await app.notify(notification(id, kind, at, 'answered'))).status, 200);
    }
    sentBodies[id] = notification(id, kind, at);
    const sent = await app.notify(sentBodies[id]);
    assert.equal(sent.body.result, 'accepted', JSON.stringify(sent.body));
  }
  // The same notification again (a gateway retry), and a body missing its conversationId.
  const again = await app.notify(sentBodies['c-connected-1']);
  assert.equal(again.body.result, 'duplicate');
  assert.equal((await app.notify({ status: 'completed' })).status, 422);

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, timezoneId: 'UTC' });
  page = await context.newPage();
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== app.base) foreign.push(request.url());
  });
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('asks for the API key and keeps it out of URLs', async () => {
  const requests = [];
  const record = (request) => requests.push(request.url());
  page.on('request', record);
  await page.goto(`${app.base}/`);
  assert.equal(new URL(page.url()).pathname, '/dashboard', 'the root redirects to the dashboard');
  await page.waitForSelector('#key-dialog[open]');
  await page.fill('#key-input', 'not-the-key');
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#key-dialog[open] #key-error:not([hidden])');
  await page.fill('#key-input', API_KEY);
  await page.click('#key-form button[type=submit]');
  await ready('overview');
  page.off('request', record);
  assert.ok(requests.length > 5);
  assert.deepEqual(requests.filter((url) => url.includes(API_KEY)), []);
  // Without a key /v1 answers 401 and the browser logs those two failed loads.
  const errors = takeConsoleErrors();
  assert.ok(errors.length > 0 && errors.every((e) => e.includes('401')), errors.join('\n'));
});

test('overview: calls over time by outcome, with the totals of /v1/stats', async () => {
  const statsResponse = page.waitForResponse((r) => r.url().includes('/v1/stats') && r.url().includes('bucket='));
  await page.goto(`${app.base}/dashboard#/overview?range=7d`);
  const shown = await (await statsResponse).json();
  await ready('overview');
  const query = new URL((await statsResponse).url()).search.slice(1);
  const direct = await app.api(`stats?${query}`);
  assert.equal(direct.calls, 10);
  assert.equal(shown.calls, direct.calls);

  assert.equal(await page.textContent('[data-kpi=calls] .value'), '10');
  assert.equal(await page.getAttribute('#calls-over-time svg', 'data-total'), '10');
  // Human rate: 3 humans of 5 calls with an AMD result; answer rate: 6 of 10 connected.
  assert.equal(await page.textContent('[data-kpi=human_rate] .value'), '60.0 %');
  assert.equal(await page.textContent('[data-kpi=answer_rate] .value'), `${(direct.answer_rate * 100).toFixed(1)} %`);
  const segments = await page.$$eval('#calls-over-time rect.seg', (rects) => rects.map((r) => r.dataset.outcome));
  assert.ok(segments.includes('human') && segments.includes('busy'), segments.join());
  const legend = await page.textContent('#calls-over-time .legend');
  assert.match(legend, /human 3/);
  assert.match(legend, /busy 2/);
  const failures = await page.textContent('#failures');
  assert.match(failures, /busy-here SIP 486 Busy Here\s*2/);
  assert.match(failures, /4 failed calls/);
  assert.equal(await page.locator('#durations svg rect.bar').count(), direct.duration_histogram.length);
  await shot('overview');
  await shot('overview-full-page', { fullPage: true });
  assert.deepEqual(takeConsoleErrors(), []);
});

test('overview: an empty range says so', async () => {
  await page.goto(`${app.base}/dashboard#/overview?range=custom&since=2001-01-01&until=2001-01-31`);
  await ready('overview');
  assert.match(await page.textContent('#calls-over-time'), /No calls in this range/);
  assert.equal(await page.textContent('[data-kpi=calls] .value'), '0');
  assert.deepEqual(takeConsoleErrors(), []);
});

test('calls: a filter narrows the list, and the export follows it', async () => {
  await page.goto(`${app.base}/dashboard#/calls`);
  await ready('calls');
  assert.equal(await page.locator('#calls tbody tr').count(), 10);
  await shot('calls');
  await page.selectOption('#call-filters select[name=outcome]', 'busy');
  await page.click('#call-filters button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#calls tbody tr').length === 2);
  await ready('calls');
  const outcomes = await page.$$eval('#calls tbody .badge', (b) => b.map((x) => x.dataset.outcome));
  assert.deepEqual(outcomes, ['busy', 'busy']);
  assert.match(page.url(), /outcome=busy/);
  // The export is the same filter, as a file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.equal(download.suggestedFilename(), 'calls.csv');
  const rows = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(rows.length, 3, rows.join('\n'));
  assert.ok(rows[0].startsWith('conversation_id,state,status,outcome'));
  assert.ok(rows.slice(1).every((r) => r.split(',')[3] === 'busy'), rows.join('\n'));
  assert.deepEqual(takeConsoleErrors(), []);
});

test("call: the timeline shows the call's events in the order received, and its duplicate", async () => {
  await page.goto(`${app.base}/dashboard#/calls?q=c-connected`);
  await ready('calls');
  await page.click('#calls a[href="#/call/c-connected-1"]');
  await ready('call');
  const statuses = await page.$$eval('#timeline li', (items) => items.map((li) => li.dataset.status));
  assert.deepEqual(statuses, ['answered', 'completed']);
  const results = await page.$$eval('#call-deliveries tbody tr', (rows) => rows.map((r) => r.dataset.result));
  assert.deepEqual(results, ['duplicate', 'accepted', 'accepted']);
  assert.match(await page.textContent('#deliveries h2'), /1 duplicate/);
  await page.click('#timeline li:last-child summary');
  assert.match(await page.textContent('#timeline li:last-child pre'), /"callDisconnectTime"/);
  await shot('call');
  assert.deepEqual(takeConsoleErrors(), []);
});

test('deliveries: reprocessing a body that today’s rules accept stores it', async () => {
  await page.goto(`${app.base}/dashboard#/deliveries`);
  await ready('deliveries');
  assert.equal(await page.locator('#deliveries tbody tr').count(), 2, 'the planted body and the 422 one');
  const row = page.locator(`#deliveries tr[data-id="${app.planted}"]`);
  await row.locator('button.reprocess').click();
  await row.locator('.result[data-result]').waitFor();
  assert.match(await row.locator('.result').textContent(), /Reprocessed: accepted · call c-fixed-1/);
  assert.equal(await row.locator('.badge').textContent(), 'accepted');
  const call = await app.api('calls/c-fixed-1');
  assert.equal(call.outcome, 'human');
  await shot('deliveries');
  assert.deepEqual(takeConsoleErrors(), []);
});

test('live: a new outcome appears without a reload', async () => {
  await page.goto(`${app.base}/dashboard#/live`);
  await ready('live');
  assert.equal(await page.locator('#live-feed li').count(), 0);
  const sent = await app.notify(notification('c-live-1', 'busy', minutesAgo(1)));
  assert.equal(sent.body.result, 'accepted');
  const item = page.locator('#live-feed li[data-id="c-live-1"]');
  await item.waitFor({ timeout: 15_000 });
  assert.equal(await item.getAttribute('data-outcome'), 'busy');
  await shot('live');
  assert.deepEqual(takeConsoleErrors(), []);
});

test('source: a jambonz call is told apart from the Kore.ai ones', async () => {
  const busy = JSON.parse(readFileSync(resolve(HERE, '../data/jambonz/06-busy.json'), 'utf8'));
  const sent = await app.notify(busy, '/jambonz/notify');
  assert.equal(sent.body.result, 'accepted', JSON.stringify(sent.body));
  const id = busy.call_sid;

  await page.goto(`${app.base}/dashboard#/calls`);
  await ready('calls');
  await page.selectOption('#call-filters select[name=source]', 'jambonz');
  await page.click('#call-filters button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#calls tbody tr').length === 1);
  await ready('calls');
  assert.equal(await page.getAttribute('#calls tbody tr', 'data-id'), id);
  assert.match(page.url(), /source=jambonz/);

  const statsResponse = page.waitForResponse((r) => r.url().includes('/v1/stats') && r.url().includes('bucket='));
  await page.goto(`${app.base}/dashboard#/overview?range=7d&source=kore`);
  assert.match((await statsResponse).url(), /source=kore/);
  await ready('overview');
  const query = new URLSearchParams(new URL((await statsResponse).url()).search);
  const kore = await app.api(`stats?${query}`);
  query.delete('source');
  const all = await app.api(`stats?${query}`);
  // Every call but the jambonz one, and the page shows that count.
  assert.equal(kore.calls, all.calls - 1);
  assert.ok(kore.calls >= 10, JSON.stringify(kore));
  assert.equal(await page.textContent('[data-kpi=calls] .value'), String(kore.calls));
  assert.equal(await page.inputValue('form.filters select[name=source]'), 'kore');
  assert.match(await page.getAttribute('#calls-over-time p a', 'href'), /source=kore/);
  await shot('overview-source');
  assert.deepEqual(takeConsoleErrors(), []);
});

test('the store being unavailable is shown, not a blank page', async () => {
  await page.route('**/v1/stats**', (route) => route.fulfill({
    status: 503,
    contentType: 'application/problem+json',
    body: JSON.stringify({ type: 'urn:calltrail:problem:unavailable', title: 'Service Unavailable', status: 503, detail: 'the store is not answering' }),
  }));
  await page.goto(`${app.base}/dashboard#/overview`);
  await page.waitForSelector('main[data-state="error"]');
  assert.match(await page.textContent('#banner'), /store is unavailable: the store is not answering/);
  await shot('overview-unavailable');
  await page.unroute('**/v1/stats**');
  const errors = takeConsoleErrors();
  assert.ok(errors.every((e) => e.includes('503')), errors.join('\n'));
});

test('usable at phone width', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const name of ['calls', 'overview']) {
    await page.goto(`${app.base}/dashboard#/${name}`);
    await ready(name);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} is ${overflow}px wider than the screen`);
    await shot(`${name}-phone`);
  }
  await page.setViewportSize({ width: 1366, height: 768 });
  assert.deepEqual(takeConsoleErrors(), []);
});

test('no request left for another host', () => {
  assert.deepEqual(foreign, []);
});
