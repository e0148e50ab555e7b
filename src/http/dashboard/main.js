// The dashboard's shell: hash routes, the API-key prompt and the error banner
// (docs/dashboard.md).

import { ApiError, apiKey, setApiKey } from './api.js';
import { currentZone, empty, h } from './format.js';
import * as overview from './overview.js';
import * as calls from './calls.js';
import * as call from './call.js';
import * as deliveries from './deliveries.js';
import * as live from './live.js';

const PAGES = { overview, calls, call, deliveries, live };

const main = document.getElementById('page');
const banner = document.getElementById('banner');
const dialog = document.getElementById('key-dialog');
let cleanup = null;
let generation = 0;

function route() {
  const hash = location.hash.slice(1) || '/overview';
  const [path] = hash.split('?');
  const [, name, ...rest] = path.split('/');
  const id = rest.length ? decodeURIComponent(rest.join('/')) : null;
  return { name: PAGES[name] ? name : 'overview', id };
}

function showError(err) {
  let text;
  if (err instanceof ApiError && err.status === 503) {
    text = `The store is unavailable: ${err.message}. Figures will show again once it answers.`;
  } else if (err instanceof ApiError && err.status === 0) {
    text = `${err.problem.title}: ${err.message}`;
  } else if (err instanceof ApiError) {
    text = `${err.problem.title || 'Request failed'} (${err.status})${err.problem.detail ? `: ${err.problem.detail}` : ''}`;
  } else {
    text = String(err && err.message ? err.message : err);
  }
  banner.textContent = text;
  banner.hidden = false;
}

function askForKey(rejected) {
  document.getElementById('key-error').hidden = !rejected;
  const input = document.getElementById('key-input');
  input.value = '';
  if (!dialog.open) dialog.showModal();
  input.focus();
}

document.getElementById('key-form').addEventListener('submit', (event) => {
  const key = document.getElementById('key-input').value.trim();
  if (!key) {
    event.preventDefault();
    return;
  }
  setApiKey(key);
  render();
});

document.getElementById('forget-key').addEventListener('click', () => {
  setApiKey(null);
  render();
});

async function render() {
  const mine = ++generation;
  if (cleanup) cleanup();
  cleanup = null;
  banner.hidden = true;
  const { name, id } = route();
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.page === name || (name === 'call' && a.dataset.page === 'calls'));
  }
  document.getElementById('forget-key').hidden = !apiKey();
  main.dataset.state = 'loading';
  main.dataset.page = name;
  const ctx = {
    id,
    tz: currentZone(),
    stale: () => mine !== generation,
    onError: showError,
  };
  try {
    const content = h('div');
    const stop = await PAGES[name].render(content, ctx);
    if (mine !== generation) {
      if (stop) stop();
      return;
    }
    cleanup = stop || null;
    main.replaceChildren(content);
    main.dataset.state = 'ready';
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401) {
      main.replaceChildren(empty('An API key is needed to see this calltrail.'));
      main.dataset.state = 'auth';
      askForKey(Boolean(apiKey()));
      return;
    }
    main.replaceChildren(empty('Nothing to show: the data could not be loaded.'));
    main.dataset.state = 'error';
    showError(err);
  }
}

window.addEventListener('hashchange', render);
render();
