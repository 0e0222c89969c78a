// The real daemon for the SDK's end-to-end and browser tests: starts
// ./gatewayd (GATEWAYD_BIN) with a config of its own on free loopback
// ports in a temporary directory, as test/e2e/gwtest.py does, and talks
// to its HTTP port. Every wait is bounded.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SECRET = 'sdk-e2e-jwt-secret-0123456789abcdef0123';
export const API_KEY = 'sdk-e2e-publish-key-0123456789abcdef';
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = resolve(process.env.GATEWAYD_BIN || join(ROOT, 'gatewayd'));
const SCALE = Number(process.env.GATEWAYD_TIMEOUT_SCALE || 1);

/** A timeout of ms, scaled for slow builds as the Python suite does. */
export const T = (ms) => ms * SCALE;

export function jwt(sub, { secret = SECRET, expIn = 3600, ...claims } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + expIn, ...claims })}`;
  return `${signing}.${createHmac('sha256', secret).update(signing).digest('base64url')}`;
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls check() (sync or async) until truthy; throws after ms. */
export async function waitFor(check, ms, what) {
  const end = Date.now() + T(ms);
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${T(ms)} ms waiting for ${what}`);
    await sleep(20);
  }
}

function toml(cfg) {
  const val = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  return Object.entries(cfg)
    .map(([sec, keys]) => `[${sec}]\n${Object.entries(keys).map(([k, v]) => `${k} = ${val(v)}`).join('\n')}\n`)
    .join('\n');
}

export class Gateway {
  constructor(overrides = {}) {
    this.overrides = overrides;
    this.dir = mkdtempSync(join(tmpdir(), 'gw-sdk-'));
    this.proc = null;
  }

  async start() {
    if (!this.wsPort) {
      this.wsPort = await freePort();
      do this.httpPort = await freePort();
      while (this.httpPort === this.wsPort);
    }
    const cfg = {
      server: { bind: '127.0.0.1', ws_port: this.wsPort, http_port: this.httpPort, workers: 2, drain_ms: 300 },
      session: { heartbeat_interval_ms: 30000, resume_window_ms: 10000 },
      auth: { jwt_secret: SECRET, jwt_algorithms: 'HS256' },
      http: { publish_api_key: API_KEY },
      log: { level: 'info' },
      redis: { enabled: false },
      amqp: { enabled: false },
      presence: { enabled: false },
    };
    for (const [sec, keys] of Object.entries(this.overrides)) cfg[sec] = { ...(cfg[sec] || {}), ...keys };
    this.configPath = join(this.dir, 'gateway.toml');
    writeFileSync(this.configPath, toml(cfg));
    this.stderrPath = join(this.dir, 'stderr.log');
    const err = openSync(this.stderrPath, 'a');
    const env = { ...process.env };
    delete env.GATEWAYD_JWT_SECRET;
    delete env.GATEWAYD_API_KEY;
    this.proc = spawn(BIN, ['-c', this.configPath], { cwd: this.dir, stdio: ['ignore', 'ignore', err], env });
    closeSync(err);
    const proc = this.proc;
    this.exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
    await waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`gatewayd exited before /health answered:\n${this.tail()}`);
        try {
          return (await fetch(`${this.httpUrl}/health`)).status === 200;
        } catch {
          return false;
        }
      },
      10000,
      'gatewayd /health',
    );
    return this;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.wsPort}/`;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  tail() {
    try {
      return readFileSync(this.stderrPath, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGKILL, as a crash would. */
  async kill() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a drain), then SIGKILL if it has not exited in time. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), T(10000));
    await this.exited;
    clearTimeout(t);
  }

  async json(path) {
    const r = await fetch(this.httpUrl + path);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    return r.json();
  }

  async post(path, body) {
    const r = await fetch(this.httpUrl + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
      body: JSON.stringify(body),
    });
    if (r.status !== 202) throw new Error(`POST ${path} ${JSON.stringify(body)}: ${r.status} ${await r.text()}`);
    return r.json();
  }

  publish(envelope) {
    return this.post('/publish', envelope);
  }
}
