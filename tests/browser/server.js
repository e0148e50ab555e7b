// Starts calltrail for the browser tests: a fresh SQLite file, API keys and a notification
// token, and notifications posted through /notify as the gateway would send them.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const API_KEY = 'browser-test-key';
export const TOKEN = 'browser-test-token';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '../..');
const BIN = process.env.CALLTRAIL_BIN || join(ROOT, 'target/debug/calltrail');

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

/** A delivery rejected by the rules of an older calltrail, which today's rules accept. */
function plantRejectedDelivery(file, body) {
  const script = `
import sqlite3, sys, datetime
db = sqlite3.connect(sys.argv[1])
at = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
cur = db.execute("insert into deliveries (received_at, content_type, body, result, error, errors, conversation_id) values (?, 'application/json', ?, 'rejected', 'refused by an older version', '[{\\"field\\":\\"duration\\",\\"message\\":\\"was not a number\\"}]', ?)", (at, sys.argv[2].encode(), sys.argv[3]))
db.commit()
print(cur.lastrowid)
`;
  const run = spawnSync('python3', ['-c', script, file, JSON.stringify(body), body.conversationId], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`planting a delivery failed: ${run.stderr}`);
  return Number(run.stdout.trim());
}

/** Starts calltrail; `planted` is the id of the rejected delivery planted before start. */
export async function startCalltrail({ rejectedBody }) {
  const dir = mkdtempSync(join(tmpdir(), 'calltrail-browser-'));
  const file = join(dir, 'calltrail.db');
  const port = await freePort();
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${file}`,
    CALLTRAIL__SERVER__BIND: `127.0.0.1:${port}`,
    CALLTRAIL__API__KEYS: API_KEY,
    CALLTRAIL__NOTIFY__TOKENS: TOKEN,
    CALLTRAIL__LOG__LEVEL: 'warn',
  };
  delete env.RUST_LOG;
  const migrate = spawnSync(BIN, ['migrate'], { env, encoding: 'utf8' });
  if (migrate.status !== 0) throw new Error(`calltrail migrate failed: ${migrate.stderr}`);
  const planted = plantRejectedDelivery(file, rejectedBody);
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    planted,
    /** Posts `body` to `/notify`, or to a source's own endpoint (`/jambonz/notify`). */
    async notify(body, endpoint = '/notify') {
      const response = await fetch(`${base}${endpoint}`, {
        method: 'POST',
        headers: { 'X-Calltrail-Token': TOKEN, 'Content-Type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    },
    async api(path) {
      const response = await fetch(`${base}/v1/${path}`, { headers: { 'X-Api-Key': API_KEY } });
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      return response.json();
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The gateway's time format, `M/D/YYYY,h:mm:ssAM`, in UTC. */
export function gatewayTime(date) {
  const h = date.getUTCHours();
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getUTCMonth() + 1}/${date.getUTCDate()}/${date.getUTCFullYear()},`
    + `${h % 12 || 12}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}${h < 12 ? 'AM' : 'PM'}`;
}

/**
 * A notification shaped like the gateway's samples: `kind` is human, machine, connected
 * (AMD disabled), busy (486), unavailable (503) or declined (480).
 */
export function notification(id, kind, at, status) {
  const connect = gatewayTime(at);
  const failed = { busy: '486 Busy Here', unavailable: '503 Service Unavailable', declined: '480 Temporarily Unavailable' };
  if (failed[kind]) {
    return {
      conversationId: id, status: 'failed', reason: failed[kind], machinedetection: 'disconnect',
      callconnecttime: connect, reasonCode: failed[kind].slice(4), callDisconnectTime: connect,
    };
  }
  const end = gatewayTime(new Date(at.getTime() + 14_000));
  const amd = { human: 'amd_human_detected', machine: 'amd_machine_detected', connected: 'disabled' }[kind];
  if (status === 'answered') {
    return { conversationId: id, status: 'answered', machinedetection: amd, callconnecttime: connect };
  }
  return {
    conversationId: id, reasonCode: 'caller-disconnected', status: 'completed', reason: '200 OK',
    duration: 14, machinedetection: amd, callconnecttime: connect, callDisconnectTime: end,
  };
}
