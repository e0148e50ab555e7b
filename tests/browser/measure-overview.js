// Times the dashboard's overview in headless Chromium: from navigation to every figure drawn
// (the page marks itself ready). Used by bench/dashboard.sh; prints one JSON line.
//
//   node measure-overview.js BASE_URL API_KEY [LOADS]

import { chromium } from 'playwright-core';

const [base, key, loads = '10'] = process.argv.slice(2);
const FLAGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
const zone = process.env.ZONE || 'UTC';
const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, timezoneId: zone });
await context.addInitScript((k) => {
  try { sessionStorage.setItem('calltrail.apiKey', k); } catch { /* about:blank has no storage */ }
}, key);
const page = await context.newPage();
const url = `${base}/dashboard#/overview?range=30d`;
const times = [];
let calls = null;
for (let i = 0; i <= Number(loads); i += 1) {
  await page.goto('about:blank');
  const started = Date.now();
  await page.goto(url);
  await page.waitForSelector('main[data-state="ready"][data-page="overview"]', { timeout: 60_000 });
  const elapsed = Date.now() - started;
  calls = await page.getAttribute('#calls-over-time svg', 'data-total');
  if (i > 0) times.push(elapsed); // the first load warms the caches
}
await browser.close();
times.sort((a, b) => a - b);
console.log(JSON.stringify({
  zone,
  calls: Number(calls), loads: times.length,
  median_ms: times[Math.floor(times.length / 2)], max_ms: times[times.length - 1], min_ms: times[0],
}));
