// In real headless Chromium (Debian's chromium, driven by puppeteer-core;
// nothing is downloaded): the example page against the real daemon, and
// the daemon's dashboard. node --test sdk/js/test/browser.test.js
// Screenshots go to $SDK_TEST_OUT (default: a temporary directory), named
// in the test's output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, extname } from 'node:path';
import puppeteer from 'puppeteer-core';
import WebSocket from 'ws';
import { connect, State } from '../src/index.js';
import { Gateway, jwt, waitFor, freePort, T, ROOT, API_KEY } from './gateway.js';

const CHROMIUM = process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync);
const OUT = process.env.SDK_TEST_OUT || mkdtempSync(join(tmpdir(), 'gw-sdk-out-'));
const SDK = join(ROOT, 'sdk/js');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

let browser, files, filesUrl;
const cleanup = [];

/** A static file server of sdk/js: the example needs nothing more. */
function staticServer(root) {
  return createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(root) || file.includes('node_modules')) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
}

/** A page whose console errors and uncaught exceptions are collected. */
async function page() {
  const p = await browser.newPage();
  p.problems = [];
  p.on('console', (m) => m.type() === 'error' && p.problems.push(`console: ${m.text()}`));
  p.on('pageerror', (e) => p.problems.push(`pageerror: ${e.message}`));
  p.on('requestfailed', (r) => p.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  return p;
}

const text = (p, sel) => p.$eval(sel, (e) => e.textContent);

before(async () => {
  assert.ok(CHROMIUM, 'chromium is not installed (make test-deps installs it)');
  await mkdir(OUT, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: T(30000),
  });
  files = staticServer(SDK);
  await new Promise((r) => files.listen(0, '127.0.0.1', r));
  filesUrl = `http://127.0.0.1:${files.address().port}`;
});

after(async () => {
  for (const fn of cleanup.reverse()) await fn();
  if (browser) await browser.close();
  if (files) files.close();
  console.log(`# screenshots in ${OUT}`);
});

test('the example page connects, receives a published event, survives a restart', async () => {
  const gw = await new Gateway().start();
  cleanup.push(() => gw.stop());
  const p = await page();
  const q = new URLSearchParams({ url: gw.wsUrl, token: jwt('browser-user'), guild: 'g1' });
  await p.goto(`${filesUrl}/example/?${q}`, { timeout: T(15000) });
  await p.waitForFunction(() => document.getElementById('state').textContent === 'identified', { timeout: T(10000) });

  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'from the backend' } });
  await p.waitForFunction(() => document.getElementById('log').textContent.includes('from the backend'), {
    timeout: T(5000),
  });
  assert.equal(await text(p, '#count'), '1');

  await gw.kill();
  await p.waitForFunction(() => document.getElementById('state').textContent === 'reconnecting', { timeout: T(5000) });
  await gw.start();
  await p.waitForFunction(() => document.getElementById('state').textContent === 'identified', { timeout: T(15000) });
  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'after the restart' } });
  await p.waitForFunction(() => document.getElementById('log').textContent.includes('after the restart'), {
    timeout: T(5000),
  });
  await p.screenshot({ path: join(OUT, 'example.png') });
  // Refused connections while the daemon was down are the browser's own
  // console lines, not the page's errors.
  const problems = p.problems.filter((l) => !/WebSocket connection to .* failed/.test(l));
  assert.deepEqual(problems, []);
  await p.close();
});

test('the dashboard shows the instance live: connections, sessions, deliveries, latency', async () => {
  const gw = await new Gateway({ broker: { instance_id: 'sdk-dash-1' } }).start();
  cleanup.push(() => gw.stop());
  const p = await page();
  await p.setViewport({ width: 1280, height: 1000 });
  const res = await p.goto(`${gw.httpUrl}/`, { timeout: T(15000) });
  assert.equal(res.status(), 200);
  assert.equal(p.url(), `${gw.httpUrl}/dashboard`, 'GET / redirects to the dashboard');
  const value = (id) => p.$eval(`#${id}`, (e) => e.textContent);
  await p.waitForFunction(() => document.getElementById('instance').textContent === 'sdk-dash-1', {
    timeout: T(5000),
  });
  assert.equal(await value('version'), (await gw.json('/health')).version);
  assert.equal(await value('connections'), '0');
  assert.equal(await value('status'), 'ok');

  const clients = [];
  for (let i = 0; i < 3; i++) {
    clients.push(connect({ url: gw.wsUrl, token: jwt(`dash-${i}`), guildIds: ['gd'], WebSocket }));
  }
  cleanup.push(() => clients.forEach((c) => c.close()));
  await waitFor(() => clients.every((c) => c.state === State.IDENTIFIED), 5000, 'three identified clients');
  await p.waitForFunction(
    () => document.getElementById('connections').textContent === '3' &&
      document.getElementById('sessions').textContent === '3',
    { timeout: T(5000) },
  );
  const rows = await p.$$eval('#worker-rows tr', (trs) => trs.length);
  assert.equal(rows, 2, 'one row per worker');

  for (let i = 0; i < 20; i++) await gw.publish({ event: 'message.create', guildId: 'gd', data: { i } });
  await p.waitForFunction(
    () => document.getElementById('p50').textContent !== '-' &&
      Number(document.getElementById('connects').textContent) >= 3,
    { timeout: T(5000) },
  );
  await p.waitForFunction(() => parseFloat(document.getElementById('events-rate').textContent) > 0, {
    timeout: T(5000),
  });
  assert.match(await value('p99'), /^[0-9.]+ (µs|ms)$/);
  assert.deepEqual(
    await p.$$eval('#links tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent)),
    ['disabled', 'disabled'],
  );

  // Closes by code: the clients' own (1000), one the server sends (4002),
  // and one without a close frame (1006).
  const raw = (fn) =>
    new Promise((resolve) => {
      const ws = new WebSocket(gw.wsUrl);
      ws.on('open', () => fn(ws));
      ws.on('close', resolve);
      ws.on('error', () => {});
    });
  clients.forEach((c) => c.close());
  await raw((ws) => ws.send('not json'));
  await raw((ws) => ws.terminate());
  const closeRows = () =>
    p.$$eval('#close-codes tr[data-code]', (trs) =>
      Object.fromEntries(trs.map((tr) => [tr.dataset.code, [...tr.cells].map((td) => td.textContent)])),
    );
  await p.waitForFunction(
    () => {
      const total = (code) => document.querySelector(`#close-codes tr[data-code="${code}"] td:nth-child(4)`)?.textContent;
      return total('1000') === '3' && total('4002') === '1' && total('1006') === '1';
    },
    { timeout: T(5000) },
  );
  const rowsByCode = await closeRows();
  assert.deepEqual(Object.keys(rowsByCode).sort(), ['1000', '1006', '4002']);
  assert.equal(rowsByCode['4002'][1], 'decode error');
  assert.ok(parseFloat(rowsByCode['1000'][2]) > 0, `a rate over the last 10 s: ${rowsByCode['1000']}`);
  await p.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });
  assert.deepEqual(p.problems, []);
  await p.close();
});

test("the dashboard shows how long each link has been in its state, by the gateway's clock", async () => {
  // A Redis that is not there: the link is down from the first failure on,
  // however many retries follow.
  const gw = await new Gateway({
    redis: { enabled: true, host: '127.0.0.1', port: await freePort() },
    broker: { reconnect_min_ms: 50, reconnect_max_ms: 200 },
  }).start();
  cleanup.push(() => gw.stop());
  await waitFor(
    async () => {
      const h = await gw.json('/health');
      return h.links.redis === 'down' && h.time - h.links_since.redis >= 2000;
    },
    10000,
    'the Redis link down for 2 s',
  );
  const p = await page();
  await p.goto(`${gw.httpUrl}/dashboard`, { timeout: T(15000) });
  await p.waitForSelector('#links tr[data-link="redis"]', { timeout: T(5000) });
  // The first sample already knows: the link went down before the page opened.
  const [state, age] = await p.$eval('#links tr[data-link="redis"]', (tr) =>
    [tr.cells[1].textContent, tr.cells[2].textContent],
  );
  assert.equal(state, 'down');
  const secs = Number(/^(\d+)s$/.exec(age)?.[1]);
  assert.ok(secs >= 2 && secs < 60, `down for ${age}`);
  assert.equal(await p.$eval('#links tr[data-link="amqp"] td:nth-child(2)', (e) => e.textContent), 'disabled');
  assert.deepEqual(p.problems, []);
  await p.close();
});

test('dashboard_auth: the page asks for the API key; /stats stays readable', async () => {
  const gw = await new Gateway({ http: { dashboard_auth: true } }).start();
  cleanup.push(() => gw.stop());
  const refused = await fetch(`${gw.httpUrl}/dashboard`);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /^Basic /);
  assert.equal((await fetch(`${gw.httpUrl}/stats`)).status, 200);
  const p = await page();
  await p.authenticate({ username: 'ops', password: API_KEY });
  const ok = await p.goto(`${gw.httpUrl}/dashboard`, { timeout: T(15000) });
  assert.equal(ok.status(), 200);
  await p.waitForFunction(() => document.getElementById('status').textContent === 'ok', { timeout: T(5000) });
  assert.deepEqual(p.problems, []);
  await p.close();
});
