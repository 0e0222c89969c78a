// Unit tests of the client against the scripted fake server of fake.js,
// on a fake clock: node --test sdk/js/test/unit.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, State, GatewayError } from '../src/index.js';
import { FakeClock, fakeWebSocket, fakeToken, settle } from './fake.js';

const TOKEN = fakeToken({ sub: 'u1' });

/** A client on a fake clock and fake sockets; random() fixed at 0.5. */
async function setup(opts = {}) {
  const clock = new FakeClock();
  const WS = fakeWebSocket();
  const states = [];
  const client = connect({
    url: 'ws://gw.test/',
    token: opts.getToken ? undefined : TOKEN,
    WebSocket: WS,
    clock,
    random: () => 0.5,
    ...opts,
  });
  client.on('state', (s) => states.push(s.state));
  await settle();
  return { client, clock, WS, states, ws: () => WS.sockets[WS.sockets.length - 1] };
}

/** Plays ready + identified on the client's newest socket. */
async function identify(t, sessionId = 'sess-1', guildIds = []) {
  const ws = t.ws();
  ws.ready(sessionId);
  const id = ws.last();
  assert.equal(id.event, 'identify');
  ws.push('identified', { userId: id.data.userId, sessionId, guildIds });
  await settle();
  return ws;
}

test('identifies with the token, its sub and the guilds; states in order', async () => {
  const t = await setup({ guildIds: ['g1', 'g2'] });
  assert.equal(t.client.state, State.CONNECTING);
  t.ws().ready('sess-1');
  assert.deepEqual(t.ws().last(), {
    event: 'identify',
    data: { userId: 'u1', token: TOKEN, guildIds: ['g1', 'g2'] },
  });
  t.ws().push('identified', { userId: 'u1', sessionId: 'sess-1', guildIds: ['g1'] });
  assert.deepEqual(t.states, ['ready', 'identified']);
  assert.equal(t.client.sessionId, 'sess-1');
  t.client.close();
  assert.equal(t.client.state, State.CLOSED);
  assert.equal(t.ws().closedWith.code, 1000);
});

test('dispatches reach on/once/* with seq, guildId and data; off stops them', async () => {
  const t = await setup();
  const ws = await identify(t);
  const seen = [];
  const onMsg = (d) => seen.push(['on', d.seq, d.guildId, d.data.text]);
  t.client.on('message.create', onMsg);
  t.client.once('message.create', (d) => seen.push(['once', d.seq]));
  t.client.on('*', (d) => seen.push(['*', d.event]));
  ws.push('message.create', { text: 'hi' }, { seq: 1, guildId: 'g1' });
  ws.push('message.create', { text: 'again' }, { seq: 2, guildId: 'g1' });
  t.client.off('message.create', onMsg);
  ws.push('message.create', { text: 'gone' }, { seq: 3 });
  assert.deepEqual(seen, [
    ['on', 1, 'g1', 'hi'],
    ['once', 1],
    ['*', 'message.create'],
    ['on', 2, 'g1', 'again'],
    ['*', 'message.create'],
    ['*', 'message.create'],
  ]);
  assert.equal(t.client.seq, 3);
  t.client.close();
});

test('answers server heartbeats and beats on the interval', async () => {
  const t = await setup();
  const ws = t.ws();
  ws.ready('sess-1', 1000);
  ws.push('identified', { userId: 'u1', sessionId: 'sess-1', guildIds: [] });
  ws.push('heartbeat');
  assert.deepEqual(ws.last(), { event: 'heartbeat_ack', data: {} });
  // The first beat falls at a random point of the interval (here 3/4).
  await t.clock.advance(749);
  assert.equal(ws.sentOf('heartbeat').length, 0);
  await t.clock.advance(1);
  assert.equal(ws.sentOf('heartbeat').length, 1);
  ws.push('heartbeat_ack');
  await t.clock.advance(1000);
  assert.equal(ws.sentOf('heartbeat').length, 2);
  assert.equal(t.WS.sockets.length, 1);
  t.client.close();
});

test('a missed heartbeat_ack replaces the zombie and resumes where it was', async () => {
  const t = await setup();
  const ws = t.ws();
  ws.ready('sess-1', 1000);
  ws.push('identified', { userId: 'u1', sessionId: 'sess-1', guildIds: [] });
  ws.push('x.y', {}, { seq: 1 });
  ws.push('x.y', {}, { seq: 2 });
  await t.clock.advance(750); // beat, never acked
  await t.clock.advance(1000); // the next beat finds it missing
  assert.equal(ws.closedWith.code, 4000);
  assert.equal(t.client.state, State.RECONNECTING);
  await t.clock.advance(t.client.backoffDelay(0));
  assert.equal(t.WS.sockets.length, 2);
  t.ws().ready('sess-9', 1000);
  assert.equal(t.client.state, State.RESUMING);
  assert.deepEqual(t.ws().last(), { event: 'resume', data: { sessionId: 'sess-1', token: TOKEN, seq: 2 } });
  t.ws().push('x.y', {}, { seq: 3 });
  t.ws().push('resumed', { sessionId: 'sess-1', replayed: 1 });
  assert.equal(t.client.state, State.IDENTIFIED);
  assert.equal(t.client.seq, 3);
  t.client.close();
});

test('reconnects with jittered exponential backoff, reset once identified', async () => {
  const t = await setup({ minDelay: 100, maxDelay: 1000 });
  const delays = [];
  for (let i = 0; i < 6; i++) {
    t.ws().drop(1006);
    delays.push(t.clock.pending()[0]);
    await t.clock.advance(delays[i] - 1);
    assert.equal(t.WS.sockets.length, i + 1, 'no reconnect before the delay');
    await t.clock.advance(1);
    assert.equal(t.WS.sockets.length, i + 2);
  }
  // random() = 0.5: three quarters of min(max, min * 2^n).
  assert.deepEqual(delays, [75, 150, 300, 600, 750, 750]);
  await identify(t);
  t.ws().drop(1006);
  assert.equal(t.clock.pending()[0], 75);
  t.client.close();
});

test('4011 (drain) reconnects at once and resumes with the new sessionId after', async () => {
  const t = await setup();
  const ws = await identify(t, 'old');
  ws.push('a', {}, { seq: 1 });
  ws.drop(4011, 'draining');
  assert.equal(t.client.state, State.RECONNECTING);
  assert.deepEqual(t.clock.pending(), [0]);
  await t.clock.advance(0);
  t.ws().ready('x');
  assert.deepEqual(t.ws().last().data, { sessionId: 'old', token: TOKEN, seq: 1 });
  t.ws().push('resumed', { sessionId: 'moved', replayed: 0 });
  assert.equal(t.client.sessionId, 'moved');
  t.ws().drop(1006);
  await t.clock.advance(t.clock.pending()[0]);
  t.ws().ready('y');
  assert.equal(t.ws().last().data.sessionId, 'moved');
  t.client.close();
});

test('invalid_session: identifies afresh on the same connection', async () => {
  const t = await setup();
  const ws = await identify(t, 'old', ['g1']);
  ws.push('a', {}, { seq: 4 });
  ws.drop(1006);
  await t.clock.advance(t.clock.pending()[0]);
  t.ws().ready('x');
  assert.equal(t.ws().last().event, 'resume');
  t.ws().push('invalid_session', { resumable: false });
  t.ws().ready('fresh');
  assert.equal(t.client.state, State.READY);
  assert.equal(t.ws().last().event, 'identify');
  t.ws().push('identified', { userId: 'u1', sessionId: 'fresh', guildIds: [] });
  assert.equal(t.client.seq, 0);
  assert.equal(t.client.sessionId, 'fresh');
  t.client.close();
});

test('4004: getToken() once more, then closed with an error, no loop', async () => {
  let calls = 0;
  const t = await setup({ getToken: async () => (++calls, TOKEN) });
  const errors = [];
  t.client.on('error', (e) => errors.push(e.code));
  t.ws().ready();
  t.ws().drop(4004, 'authentication failed');
  await t.clock.advance(0);
  assert.equal(calls, 2);
  assert.equal(t.WS.sockets.length, 2);
  t.ws().ready();
  t.ws().drop(4004, 'authentication failed');
  await t.clock.advance(600000);
  assert.equal(t.WS.sockets.length, 2);
  assert.equal(calls, 2);
  assert.equal(t.client.state, State.CLOSED);
  assert.deepEqual(errors, ['close_4004']);
});

test('4004 with a fixed token stops at once', async () => {
  const t = await setup();
  t.ws().ready();
  t.ws().drop(4004);
  await t.clock.advance(600000);
  assert.equal(t.WS.sockets.length, 1);
  assert.equal(t.client.state, State.CLOSED);
});

test('4008 backs off at least rateLimitDelay; 4012 stops', async () => {
  const t = await setup({ rateLimitDelay: 5000 });
  await identify(t);
  t.ws().drop(4008);
  assert.deepEqual(t.clock.pending(), [5000]);
  await t.clock.advance(5000);
  t.ws().ready('s');
  assert.equal(t.ws().last().event, 'resume');
  t.ws().push('resumed', { sessionId: 'sess-1', replayed: 0 });
  t.ws().drop(4012);
  assert.equal(t.client.state, State.CLOSED);
});

test('4013 (token expired) takes a new token and a new session', async () => {
  let n = 0;
  const t = await setup({ getToken: async () => fakeToken({ sub: 'u1', n: ++n }) });
  await identify(t, 's1');
  t.ws().drop(4013);
  await t.clock.advance(0);
  t.ws().ready('s2');
  assert.equal(t.ws().last().event, 'identify');
  assert.equal(t.ws().last().data.token, fakeToken({ sub: 'u1', n: 2 }));
  t.client.close();
});

test('subscribe/unsubscribe resolve on the answer, reject on an error, wait for a session', async () => {
  const t = await setup();
  const early = t.client.subscribe('g0'); // before identified: buffered
  const ws = await identify(t);
  assert.deepEqual(ws.last(), { event: 'guild_subscribe', data: { guildId: 'g0' } });
  ws.push('guild_subscribed', { guildId: 'g0' });
  assert.equal(await early, 'g0');
  const ok = t.client.subscribe('g1');
  const bad = t.client.subscribe('g2');
  ws.push('guild_subscribed', { guildId: 'g1' });
  ws.push('error', { code: 'forbidden', message: 'no' });
  assert.equal(await ok, 'g1');
  await assert.rejects(bad, (e) => e instanceof GatewayError && e.code === 'forbidden');
  const off = t.client.unsubscribe('g1');
  ws.push('guild_unsubscribed', { guildId: 'g1' });
  assert.equal(await off, 'g1');
  assert.deepEqual([...t.client.guilds], ['g0', 'g2']);
  t.client.close();
});

test('request: the reply with its nonce, an error, a timeout', async () => {
  const t = await setup();
  const ws = await identify(t);
  const r1 = t.client.request('chat.send', { text: 'a' });
  const r2 = t.client.request('chat.send', { text: 'b' });
  const r3 = t.client.request('chat.send', { text: 'c' }, { timeout: 500 });
  const [m1, m2] = ws.sentOf('chat.send');
  assert.ok(m1.nonce && m2.nonce && m1.nonce !== m2.nonce);
  ws.push('chat.sent', { id: 7 }, { seq: 1, nonce: m1.nonce });
  ws.push('error', { code: 'unavailable', message: 'RabbitMQ is down' }, { nonce: m2.nonce });
  assert.deepEqual((await r1).data, { id: 7 });
  await assert.rejects(r2, (e) => e.code === 'unavailable');
  const timedOut = assert.rejects(r3, (e) => e.code === 'timeout');
  await t.clock.advance(500);
  await timedOut;
  t.client.close();
});

test('sync() sends sync_request and resolves with sync-data', async () => {
  const t = await setup();
  const ws = await identify(t);
  const p = t.client.sync('profile');
  const m = ws.last();
  assert.equal(m.event, 'sync_request');
  assert.deepEqual(m.data, { scope: 'profile' });
  ws.push('sync-data', { level: 3 }, { seq: 1, nonce: m.nonce });
  assert.deepEqual((await p).data, { level: 3 });
  t.client.close();
});

test('while disconnected: a bounded buffer, sent in order once identified', async () => {
  const t = await setup({ maxBuffer: 3 });
  await identify(t);
  t.ws().drop(1006);
  t.client.send('typing.start', { guildId: 'g', channelId: 'c' });
  const r = t.client.request('a.b', {});
  const s = t.client.subscribe('g9');
  assert.throws(() => t.client.send('x.y', {}), (e) => e.code === 'buffer_full');
  await assert.rejects(t.client.request('c.d', {}), (e) => e.code === 'buffer_full');
  await t.clock.advance(t.clock.pending()[0]);
  t.ws().ready('s');
  t.ws().push('resumed', { sessionId: 'sess-1', replayed: 0 });
  assert.deepEqual(
    t.ws().sent.slice(1).map((m) => m.event),
    ['guild_subscribe', 'typing.start', 'a.b'],
  );
  t.client.close();
  await assert.rejects(r, (e) => e.code === 'closed');
  await assert.rejects(s, (e) => e.code === 'closed');
});

test('token_expiring: a new token from getToken() goes up as refresh', async () => {
  let n = 0;
  const t = await setup({ getToken: async () => fakeToken({ sub: 'u1', n: n++ }) });
  const ws = await identify(t);
  ws.push('token_expiring', { exp: 123 });
  await settle();
  assert.deepEqual(ws.last(), { event: 'refresh', data: { token: fakeToken({ sub: 'u1', n: 1 }) } });
  ws.push('refreshed', { exp: 999 });
  await settle();
  assert.equal(t.client.token, fakeToken({ sub: 'u1', n: 1 }));
  t.client.close();
});

test('no ready within connectTimeout: the socket is replaced', async () => {
  const t = await setup({ connectTimeout: 2000 });
  t.ws().open();
  await t.clock.advance(2000);
  assert.equal(t.WS.sockets[0].closedWith.code, 4000);
  assert.equal(t.client.state, State.RECONNECTING);
  t.client.close();
});
