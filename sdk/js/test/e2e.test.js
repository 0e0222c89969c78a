// The client against the real daemon (./gatewayd, or GATEWAYD_BIN), in Node
// with the ws package: node --test sdk/js/test/e2e.test.js
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect, State } from '../src/index.js';
import { Gateway, jwt, waitFor, sleep, T } from './gateway.js';

const gateways = [];
const clients = [];

async function gateway(overrides) {
  const gw = await new Gateway(overrides).start();
  gateways.push(gw);
  return gw;
}

function client(gw, opts = {}) {
  const user = opts.user || `u-${Math.random().toString(36).slice(2, 8)}`;
  const c = connect({
    url: gw.wsUrl,
    getToken: () => jwt(user),
    WebSocket,
    minDelay: 100,
    maxDelay: 1000,
    ...opts,
  });
  c.user = user;
  c.states = [];
  c.on('state', (s) => c.states.push(s));
  clients.push(c);
  return c;
}

/** Resolves with the next dispatch of that name. */
function next(c, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} within ${T(ms)} ms`)), T(ms));
    c.once(event, (d) => {
      clearTimeout(t);
      resolve(d);
    });
  });
}

const identified = (c, ms = 5000) => waitFor(() => c.state === State.IDENTIFIED, ms, `identified (now ${c.state})`);

after(async () => {
  for (const c of clients) c.close();
  for (const gw of gateways) await gw.stop();
});

test('identifies, gets guild and user dispatches, subscribes and unsubscribes', async () => {
  const gw = await gateway();
  const c = client(gw, { guildIds: ['g1'] });
  await identified(c);
  assert.deepEqual(
    c.states.map((s) => s.state),
    ['ready', 'identified'],
  );
  assert.match(c.sessionId, /^[0-9a-f]{32}$/);

  const guild = next(c, 'message.create');
  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'hello' } });
  const d = await guild;
  assert.equal(d.guildId, 'g1');
  assert.equal(d.seq, 1);
  assert.deepEqual(d.data, { text: 'hello' });

  const mine = next(c, 'user.update');
  await gw.publish({ event: 'user.update', userId: c.user, data: { name: 'x' } });
  assert.equal((await mine).seq, 2);

  assert.equal(await c.subscribe('g2'), 'g2');
  const g2 = next(c, 'guild.update');
  await gw.publish({ event: 'guild.update', guildId: 'g2', data: { n: 1 } });
  assert.equal((await g2).guildId, 'g2');

  assert.equal(await c.unsubscribe('g2'), 'g2');
  let leaked = 0;
  c.on('guild.delete', () => leaked++);
  await gw.publish({ event: 'guild.delete', guildId: 'g2', data: {} });
  const after = next(c, 'message.create');
  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'after' } });
  await after;
  assert.equal(leaked, 0, 'a dispatch of a guild left');

  await assert.rejects(c.request('chat.send', { text: 'up' }, { timeout: 3000 }), (e) => e.code === 'unavailable');
});

test('heartbeats on a short interval keep one session alive', async () => {
  const gw = await gateway({ session: { heartbeat_interval_ms: 250 } });
  const c = client(gw);
  await identified(c);
  const sid = c.sessionId;
  const before = (await gw.json('/stats')).totals.frames_in;
  await sleep(T(1500)); // six intervals: the server closes 4009 after two without a beat
  assert.equal(c.heartbeatInterval, 250);
  assert.equal(c.state, State.IDENTIFIED);
  assert.equal(c.sessionId, sid);
  assert.equal(c.states.length, 2, JSON.stringify(c.states));
  const frames = (await gw.json('/stats')).totals.frames_in - before;
  assert.ok(frames >= 4, `${frames} client frames in 1.5 s: heartbeats and acks`);
});

test('the daemon killed and restarted: the client comes back by itself', async () => {
  const gw = await gateway();
  const c = client(gw, { guildIds: ['g1'] });
  await identified(c);
  await gw.kill();
  await waitFor(() => c.state === State.RECONNECTING, 3000, 'reconnecting');
  await sleep(300); // a few refused attempts, backing off
  await gw.start();
  await identified(c, 10000);
  const d = next(c, 'message.create');
  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'back' } });
  assert.equal((await d).data.text, 'back');
});

test('4011 (drain) reconnects at once, where other closes back off', async () => {
  const gw = await gateway();
  // A long backoff: a reconnect within it can only be the immediate one.
  const c = client(gw, { minDelay: 3000, maxDelay: 3000 });
  await identified(c);
  const t0 = Date.now();
  await gw.post('/sessions/disconnect', { sessionId: c.sessionId, code: 4011, reason: 'draining' });
  await waitFor(() => c.states.some((s) => s.code === 4011), 3000, 'the 4011 close');
  await identified(c);
  assert.ok(Date.now() - t0 < T(1000), `reconnected after ${Date.now() - t0} ms`);
  const d = next(c, 'user.update');
  await gw.publish({ event: 'user.update', userId: c.user, data: {} });
  await d;
});

test('SIGTERM drains with 4011; the client identifies on the next instance', async () => {
  const gw = await gateway({ server: { drain_ms: 200 } });
  const c = client(gw, { guildIds: ['g1'] });
  await identified(c);
  await gw.stop();
  assert.ok(c.states.some((s) => s.code === 4011), JSON.stringify(c.states));
  await gw.start();
  await identified(c, 10000);
});

test('4004: the token asked for once more, then the client stops', async () => {
  const gw = await gateway();
  let calls = 0;
  const errors = [];
  const c = client(gw, { getToken: () => (calls++, jwt('u-bad', { secret: 'not-the-secret-0123456789abcdef' })) });
  c.on('error', (e) => errors.push(e.code));
  await waitFor(() => c.state === State.CLOSED, 5000, 'closed');
  await sleep(T(1000));
  assert.equal(calls, 2);
  assert.deepEqual(errors, ['close_4004']);
  const h = await gw.json('/health');
  assert.equal(h.connections, 0);
});

test('a dropped connection resumes: what was published meanwhile is replayed', async () => {
  const gw = await gateway();
  const c = client(gw, { guildIds: ['g1'], minDelay: 400, maxDelay: 400 });
  await identified(c);
  const sid = c.sessionId;
  c._ws.terminate(); // the TCP connection lost, no close frame
  await waitFor(() => c.state === State.RECONNECTING, 3000, 'reconnecting');
  await waitFor(async () => (await gw.json('/stats')).totals.parked === 1, 3000, 'the session parked');
  const missed = next(c, 'message.create');
  await gw.publish({ event: 'message.create', guildId: 'g1', data: { text: 'meanwhile' } });
  const d = await missed;
  assert.equal(d.data.text, 'meanwhile');
  assert.equal(d.seq, 1);
  assert.equal(c.sessionId, sid);
  await identified(c);
  assert.ok(c.states.some((s) => s.state === State.RESUMING), JSON.stringify(c.states));
});
