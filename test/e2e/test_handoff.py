"""Drain handoff across instances (docs/continuity.md section 3): two
gateways on one Redis behind the real HAProxy of deploy/; one is drained
with SIGTERM while events flow to its guild at a steady rate, and every
client it closes with 4011 resumes on the other with every dispatch once,
in order, seq contiguous. And the failures: Redis down during the drain,
a SIGKILLed instance, a second resume of the same session, another user's
token: each gets invalid_session, never a wrong replay."""

import asyncio
import json
import signal
import threading
import time

import pytest
import websockets

from gwtest import Client, T, token_for, uniq, wait_until
from rabbitserver import rabbit_fixture  # noqa: F401 (fixture)
from redisserver import redis_server, redis_server_factory  # noqa: F401
from test_haproxy import _via, haproxy  # noqa: F401

RATE_HZ = 50  # events per second to the guild while the drain runs


def handoff_gateway(gateway_factory, redis, channel, instance, **overrides):
    sections = {"server": {"workers": 2, "drain_ms": 1500},
                "redis": {"enabled": True, "port": redis.port,
                          "channel": channel},
                "broker": {"instance_id": instance, "reconnect_min_ms": 50,
                           "reconnect_max_ms": 300},
                "presence": {"enabled": False},
                "session": {"resume_window_ms": 30000,
                            "handoff_margin_ms": 200,
                            "handoff_wait_ms": int(T(10) * 1000)}}
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    return gateway_factory(**sections)


async def redis_up(gw):
    async def up():
        return gw.get_json("/health")["links"]["redis"] == "up"
    await wait_until(up, T(10), "redis up on %s" % gw.ws_url)


async def pair(gateway_factory, redis, **overrides):
    channel = uniq("ev")
    a = handoff_gateway(gateway_factory, redis, channel, uniq("gwa"),
                        **overrides)
    b = handoff_gateway(gateway_factory, redis, channel, uniq("gwb"),
                        **overrides)
    for gw in (a, b):
        await redis_up(gw)
    return a, b, channel


class Flow:
    """Publishes {"i": n} to a guild at a steady rate, on a thread, as a
    backend would, until stopped (bounded by `limit`): through Redis, or
    through RabbitMQ when `rabbit` is given (each publish confirmed)."""

    def __init__(self, redis, channel, guild, limit=2000, rabbit=None):
        self.redis, self.channel, self.guild = redis, channel, guild
        self.rabbit = rabbit
        self.limit = limit
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _envelopes(self):
        while not self._stop.is_set() and self.sent < self.limit:
            yield json.dumps({"event": "tick", "guildId": self.guild,
                              "data": {"i": self.sent}})
            self.sent += 1
            time.sleep(1 / RATE_HZ)

    def _run(self):
        if self.rabbit is not None:
            # One confirmed publish at a time, so that `sent` is exact.
            for env in self._envelopes():
                self.rabbit.publish([env], routing_key="tick")
            return
        with self.redis.client() as r:
            for env in self._envelopes():
                r.publish(self.channel, env)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(T(10))


class Follower:
    """A client that records every tick it receives, and resumes through
    the proxy whenever its connection is closed 4011."""

    def __init__(self, client, via, secret):
        self.c, self.via, self.secret = client, via, secret
        self.cur = client  # the connection it reads now
        self.ticks = []  # (seq, i)
        self.seq = 0
        self.resumes = []  # the answers: "resumed" or "invalid_session"
        self.session_id = client.session_id

    async def _read(self, c):
        """Reads c until it closes; returns the close code (None = open
        when stopped)."""
        while True:
            try:
                raw = await c.ws.recv()
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else -1
            msg = json.loads(raw)
            if msg.get("event") == "tick":
                assert msg["seq"] == self.seq + 1, (msg, self.seq)
                self.seq = msg["seq"]
                self.ticks.append((msg["seq"], msg["data"]["i"]))
            elif msg.get("event") in ("resumed", "invalid_session"):
                self.resumes.append(msg["event"])
                if msg["event"] == "resumed":
                    self.session_id = msg["data"]["sessionId"]

    async def _resume(self):
        """Connects through the proxy until an instance that is not
        draining takes the resume."""
        for _ in range(int(T(100))):
            try:
                r = await Client.connect(self.via)
                await r.ready()
            except (websockets.WebSocketException, OSError, AssertionError,
                    asyncio.TimeoutError):
                # The drained instance refuses (4011 before ready, or its
                # port closed) until the proxy has taken it out.
                await asyncio.sleep(0.1)
                continue
            await r.send({"event": "resume",
                          "data": {"sessionId": self.session_id,
                                   "seq": self.seq,
                                   "token": token_for(self.c.user,
                                                      secret=self.secret)}})
            return r
        raise AssertionError("no instance took the resume")

    async def run(self):
        c = self.c
        while True:
            code = await self._read(c)
            if code != 4011:
                return code
            c = self.cur = await self._resume()

    def abort(self):
        self.cur.abort()


def contiguous(ticks, sent):
    """Every i from the first received to the last sent, once, in order."""
    got = [i for _, i in ticks]
    return got == list(range(got[0], sent)) if got else False


async def drain_under_flow(a, b, port, flow):
    """SIGTERMs a while flow runs: every client of a resumes on b with
    nothing lost, nothing twice."""
    guild = flow.guild
    via = _via(a, port)
    clients = [await Client.session(via, uniq("u"), [guild]) for _ in range(8)]
    followers = [Follower(c, via, a.secret) for c in clients]
    tasks = [asyncio.ensure_future(f.run()) for f in followers]
    flow.start()
    await asyncio.sleep(T(0.5))
    on_a = a.get_json("/stats")["totals"]["connections"]
    assert 0 < on_a < len(clients), on_a
    a.stopped_by_test = True
    a.proc.send_signal(signal.SIGTERM)
    await wait_until(lambda: a.proc.poll() is not None, T(30),
                     "the drained instance to exit")
    await asyncio.sleep(T(0.5))
    flow.stop()
    await asyncio.sleep(T(0.5))
    for f in followers:
        f.abort()
    ends = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(e == -1 for e in ends), ends  # each read until aborted
    moved = [f for f in followers if f.resumes]
    assert len(moved) == on_a, [f.resumes for f in followers]
    for f in followers:
        assert f.resumes in ([], ["resumed"]), f.resumes
        assert contiguous(f.ticks, flow.sent), (f.ticks[:3], f.ticks[-3:],
                                                flow.sent)
        assert f.ticks[0][0] == 1, f.ticks[:3]
    stats = b.get_json("/stats")["totals"]
    assert stats["handoffs_restored"] == on_a, stats
    assert stats["handoffs_failed"] == 0, stats


@pytest.mark.time_limit(120)
async def test_a_drained_instance_hands_its_sessions_over(
        redis_server, gateway_factory, haproxy):
    """Events through Redis pub/sub: exact even without a margin."""
    a, b, channel = await pair(gateway_factory, redis_server,
                               session={"handoff_margin_ms": 0})
    await drain_under_flow(a, b, haproxy(a, b),
                           Flow(redis_server, channel, uniq("g")))


@pytest.mark.time_limit(180)
async def test_a_drain_with_events_from_rabbitmq(redis_server, rabbit,
                                                 gateway_factory, haproxy):
    """Events through RabbitMQ, each instance's own queue: the margin
    covers what reaches the two instances at different times."""
    a, b, channel = await pair(
        gateway_factory, redis_server,
        amqp={"enabled": True, "port": rabbit.port, "binding_keys": "#"})
    for gw in (a, b):
        await wait_until(lambda: gw.get_json("/health")["links"]["amqp"]
                         == "up", T(15), "the AMQP link up")
    await drain_under_flow(a, b, haproxy(a, b),
                           Flow(redis_server, channel, uniq("g"),
                                rabbit=rabbit))


async def drained(a, clients, read=None):
    """SIGTERMs a and reads each client to its 4011; returns the last seq
    each received (read: the seq each had read before)."""
    a.stopped_by_test = True
    a.proc.send_signal(signal.SIGTERM)
    seqs = []
    for c, last in zip(clients, read or [0] * len(clients)):
        seen = await c.expect_close(4011, timeout=10, allow_dispatches=True)
        seqs.append(max([m["seq"] for m in seen if "seq" in m], default=last))
    return seqs


async def exited(gw):
    """The drained instance exits once nothing it handed off waits."""
    await wait_until(lambda: gw.proc.poll() is not None, T(15),
                     "the drained instance to exit")
    assert gw.proc.returncode == 0, gw.tail()


async def resume_on(gw, session_id, seq, user, secret):
    r = await Client.connect(gw)
    await r.ready()
    await r.send({"event": "resume",
                  "data": {"sessionId": session_id, "seq": seq,
                           "token": token_for(user, secret=secret)}})
    return r


async def expect_invalid(r):
    msg = await r.expect("invalid_session", timeout=10)
    assert msg["data"] == {"resumable": False}, msg
    await r.ready()


async def _events_redis_past(gw, seen):
    return (await gw.totals())["events_redis"] > seen


async def tick(redis, channel, guild, i):
    redis.publish(channel, json.dumps({"event": "tick", "guildId": guild,
                                       "data": {"i": i}}))


@pytest.mark.time_limit(90)
async def test_a_handoff_is_restored_once_and_only_for_its_user(
        redis_server, gateway_factory):
    """Another user's token is refused without using the handoff up; the
    owner's resume restores it; a second resume of the same session is
    invalid_session; the restored session resumes again on its new
    instance."""
    a, b, channel = await pair(gateway_factory, redis_server)
    guild = uniq("g")
    c = await Client.session(a, uniq("u"), [guild])
    await tick(redis_server, channel, guild, 0)
    assert (await c.recv())["data"] == {"i": 0}
    [seq] = await drained(a, [c], [1])
    await tick(redis_server, channel, guild, 1)  # reaches both instances

    thief = await resume_on(b, c.session_id, seq, uniq("u"), b.secret)
    await expect_invalid(thief)

    r = await resume_on(b, c.session_id, seq, c.user, b.secret)
    got = [await r.recv(timeout=10) for _ in range(2)]
    assert [(m.get("seq"), m["event"]) for m in got] == [
        (2, "tick"), (None, "resumed")], got
    new_id = got[1]["data"]["sessionId"]
    assert new_id != c.session_id
    await tick(redis_server, channel, guild, 2)
    msg = await r.recv()
    assert (msg["seq"], msg["data"]) == (3, {"i": 2}), msg

    again = await resume_on(b, c.session_id, seq, c.user, b.secret)
    await expect_invalid(again)

    r.abort()
    await asyncio.sleep(T(0.2))
    seen = (await b.totals())["events_redis"]
    await tick(redis_server, channel, guild, 3)
    # The tick is b's before the resume asks for it (else it may come
    # live, after `resumed`, which is right too but not this test's case).
    await wait_until(lambda: _events_redis_past(b, seen), T(5),
                     "b to read the tick from Redis")
    back = await resume_on(b, new_id, 3, c.user, b.secret)
    got = [await back.recv() for _ in range(2)]
    assert [(m.get("seq"), m["event"]) for m in got] == [
        (4, "tick"), (None, "resumed")], got
    stats = b.get_json("/stats")["totals"]
    assert (stats["handoffs_restored"], stats["handoffs_failed"]) == (1, 2), \
        stats
    await exited(a)


@pytest.mark.time_limit(60)
async def test_a_seq_ahead_of_the_handoff_closes_4007(redis_server,
                                                      gateway_factory):
    a, b, channel = await pair(gateway_factory, redis_server)
    c = await Client.session(a, uniq("u"), [uniq("g")])
    [seq] = await drained(a, [c])
    r = await resume_on(b, c.session_id, seq + 5, c.user, b.secret)
    await r.expect_close(4007, timeout=10)
    await exited(a)


@pytest.mark.time_limit(60)
async def test_redis_down_during_the_drain_means_invalid_session(
        redis_server, gateway_factory):
    """A cannot offer, B cannot look up: invalid_session, and the client
    identifies afresh on B."""
    a, b, channel = await pair(gateway_factory, redis_server)
    clients = [await Client.session(a, uniq("u"), [uniq("g")])
               for _ in range(3)]
    redis_server.stop()  # SIGKILL
    seqs = await drained(a, clients)
    for c, seq in zip(clients, seqs):
        r = await resume_on(b, c.session_id, seq, c.user, b.secret)
        await expect_invalid(r)
        await r.identify(c.user, [uniq("g")])
    await exited(a)


@pytest.mark.time_limit(60)
async def test_a_killed_instance_hands_nothing_off(redis_server,
                                                   gateway_factory):
    """SIGKILL: nothing was offered, so the resume on the survivor is
    invalid_session (crash recovery is not built: docs/continuity.md
    section 4)."""
    a, b, channel = await pair(gateway_factory, redis_server)
    c = await Client.session(a, uniq("u"), [uniq("g")])
    a.kill()
    with pytest.raises(websockets.ConnectionClosed):
        await c.ws.recv()
    r = await resume_on(b, c.session_id, 0, c.user, b.secret)
    await expect_invalid(r)


def broker(gw):
    return gw.get_json("/stats")["broker"]


@pytest.mark.time_limit(90)
async def test_control_messages_reach_only_their_instances(redis_server,
                                                           gateway_factory):
    """With targeted channels each instance has a control channel of its
    own (README, Redis): the claim goes to the owner's, the snapshot's
    word to the claimer's, and a third instance reads none of it, its
    counters still."""
    a, b, channel = await pair(gateway_factory, redis_server)
    c = handoff_gateway(gateway_factory, redis_server, channel, uniq("gwc"))
    await redis_up(c)
    ids = [gw.config["broker"]["instance_id"] for gw in (a, b, c)]

    def control_channels():
        with redis_server.client() as conn:
            return {k.decode() for k in conn.pubsub_channels(
                channel + ":handoff*")}
    assert await asyncio.get_running_loop().run_in_executor(
        None, control_channels) == {
        "%s:handoff:%s" % (channel, i) for i in ids}

    guild = uniq("g")
    s = await Client.session(a, uniq("u"), [guild])
    before = [broker(gw) for gw in (a, b, c)]
    assert [x["handoff_control_messages"] for x in before] == [0, 0, 0]
    [seq] = await drained(a, [s])
    r = await resume_on(b, s.session_id, seq, s.user, b.secret)
    msg = await r.expect("resumed", timeout=10)
    assert msg["data"]["sessionId"] != s.session_id, msg
    await exited(a)

    # B read one message (the snapshot is stored), C nothing at all.
    after_b, after_c = broker(b), broker(c)
    assert after_b["handoff_control_messages"] == 1, after_b
    moved_c = {k: (before[2][k], v) for k, v in after_c.items()
               if v != before[2][k]}
    assert moved_c == {}, moved_c
