// Calls to calltrail's /v1 API with the API key kept for this tab (sessionStorage), sent as
// a header and never put in a URL. See docs/dashboard.md#api-key.

const KEY = 'calltrail.apiKey';

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** A failed call: an RFC 9457 problem, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function headers() {
  const key = apiKey();
  const h = { Accept: 'application/json' };
  if (key) h['X-Api-Key'] = key;
  return h;
}

async function request(method, path, params) {
  const query = params ? `?${params}` : '';
  let response;
  try {
    response = await fetch(`v1/${path}${query}`, { method, headers: headers(), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { title: 'calltrail is not reachable', detail: String(err.message || err) });
  }
  if (response.ok) return response;
  let problem;
  try {
    problem = await response.json();
  } catch {
    problem = { title: response.statusText };
  }
  throw new ApiError(response.status, problem);
}

/** GET v1/PATH?PARAMS as JSON. */
export async function get(path, params) {
  return (await request('GET', path, params)).json();
}

/** POST v1/PATH, answered with JSON (problem documents are thrown). */
export async function post(path, params) {
  return (await request('POST', path, params)).json();
}

/** GET v1/PATH?PARAMS as a file download, through a blob so the key stays in a header. */
export async function download(path, params, filename) {
  const blob = await (await request('GET', path, params)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
