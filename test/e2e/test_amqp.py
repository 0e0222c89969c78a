"""The RabbitMQ link: events from the discord_events exchange.

One private RabbitMQ node serves the module (rabbitserver.py). Each test
binds its gateway's queue to routing keys of its own prefix, so tests never
see each other's events. As in test_fanout.py, "nobody else got it" is
proved by a marker published last: each connection gets dispatches in
publish order, so its next dispatch must be the marker.
"""

import asyncio
import json
import os

import pytest

from gwtest import Client, Gateway, T, check_dispatch, uniq, wait_until
from rabbitserver import DLQ, rabbit_fixture  # noqa: F401 (fixture)

BIN = os.path.abspath(os.environ.get("GATEWAYD_BIN", "./gatewayd"))
MARKER = {"event": "marker", "broadcast": True, "data": {"end": True}}


def overrides(rabbit, instance, keys, port=None, **amqp):
    conf = {"enabled": True, "port": port or rabbit.port,
            "binding_keys": keys}
    conf.update(amqp)
    # A short backoff cap, so that the link is back soon after an outage.
    return {"amqp": conf,
            "broker": {"instance_id": instance, "reconnect_min_ms": 50,
                       "reconnect_max_ms": 300}}


def health(gw):
    h = gw.get_json("/health")
    return h["status"], h["links"]["amqp"]


async def wait_link(gw, state, timeout=10):
    want = ("ok" if state == "up" else "degraded", state)
    await wait_until(lambda: health(gw) == want, T(timeout),
                     "/health status and links.amqp to be %r" % (want,))


async def in_thread(fn, *args):
    """pika blocks: run it off the loop, so that clients keep reading."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def publish(rabbit, messages, routing_key, persistent=True):
    await in_thread(rabbit.publish, messages, routing_key, persistent)


def broker_stat(gw, name):
    return gw.get_json("/stats")["broker"][name]


async def expect_dispatches(c, expected):
    """expected: [(event, guildId or None, data)], seq from 1 on."""
    for i, (event, guild, data) in enumerate(expected):
        msg = await c.recv()
        assert "seq" in msg, "expected dispatch %r, got %r" % (event, msg)
        assert (msg["event"], msg.get("guildId"), msg["data"]) == \
            (event, guild, data), (
            "session %s (user %s, guilds %s): dispatch #%d should be %r, got "
            "%r" % (c.session_id, c.user, c.guilds, i + 1,
                    (event, guild, data), msg))
        check_dispatch(msg, guild)
        assert msg["seq"] == i + 1, msg


def standalone(tmp_path, name, conf):
    """A gateway this test stops itself (the factory's would count that as
    a crash)."""
    workdir = tmp_path / name
    workdir.mkdir()
    return Gateway(BIN, str(workdir), conf).start()


def stop_clean(gw):
    problems = gw.stop()
    assert not problems, "gatewayd: %s\n%s" % ("; ".join(problems), gw.tail())


@pytest.mark.time_limit(40)
async def test_events_reach_exactly_their_targets(gateway_factory, rabbit):
    p = uniq("a")
    gw = gateway_factory(**overrides(
        rabbit, uniq("gw-a"), " %s.guild.* , %s.user.#,%s.all " % (p, p, p)))
    await wait_link(gw, "up")
    guild, other = uniq("g"), uniq("g")
    ua, ub, lone = uniq("ua"), uniq("ub"), uniq("lone")
    clients = []
    for i in range(24):
        user = {0: ua, 1: ub}.get(i % 4, lone if i == 2 else uniq("u"))
        guilds = ([guild], [guild, other], [])[i % 3]
        clients.append(await Client.session(gw, user, guilds))

    def guild_on_every_worker():
        # Every member of `other` is in `guild` too, so a worker with any
        # guild has a member of `guild`.
        workers = gw.get_json("/stats")["workers"]
        return len(workers) == 4 and min(w["guilds"] for w in workers) >= 1
    # Sockets are hashed onto workers; add members until each has one.
    while not guild_on_every_worker():
        assert len(clients) < 64, "64 sessions and a worker has no guild"
        clients.append(await Client.session(gw, uniq("u"), [guild]))

    skip = clients[1].session_id
    events = [  # (routing key, envelope)
        ("guild.create", {"event": "message.create", "guildId": guild,
                          "data": {"n": 1}}),
        ("user.update", {"event": "user.update", "userId": ua,
                         "data": {"n": 2}}),
        ("user.presence.x", {"event": "presence.update",
                             "userIds": [ub, lone], "data": {"n": 3}}),
        ("all", {"event": "announcement", "broadcast": True,
                 "data": {"n": 4}}),
        ("guild.other", {"event": "guild.update", "guildId": other,
                         "data": {"n": 5}}),
        # Matches no binding pattern: must reach nobody.
        ("nobody.x", {"event": "unbound", "broadcast": True,
                      "data": {"n": 6}}),
        ("guild.skip", {"event": "message.create", "guildId": guild,
                        "excludeSessionId": skip, "data": {"n": 7}}),
        ("all", MARKER),
    ]
    for key, env in events:
        await publish(rabbit, [env], "%s.%s" % (p, key))

    def wanted(c, env):
        if env["event"] == "unbound":
            return False
        if env.get("excludeSessionId") == c.session_id:
            return False
        if "guildId" in env:
            return env["guildId"] in c.guilds
        if "userId" in env:
            return env["userId"] == c.user
        if "userIds" in env:
            return c.user in env["userIds"]
        return True

    async def check(c):
        await expect_dispatches(c, [
            (env["event"], env.get("guildId"), env["data"])
            for _, env in events if wanted(c, env)])
    await asyncio.gather(*(check(c) for c in clients))
    assert broker_stat(gw, "events_amqp") == 7
    assert broker_stat(gw, "dead_lettered") == 0


@pytest.mark.time_limit(40)
async def test_malformed_messages_are_dead_lettered(gateway_factory, rabbit):
    p, instance = uniq("b"), uniq("gw-b")
    max_body = 400000  # http.max_body_size bounds AMQP messages too
    conf = overrides(rabbit, instance, p + ".#")
    conf["http"] = {"max_body_size": max_body}
    gw = gateway_factory(**conf)
    await wait_link(gw, "up")
    c = await Client.session(gw)
    token = uniq("bad")
    bad = [
        ("not json " + token).encode(),
        json.dumps({"event": "no.target", "data": {"token": token}}).encode(),
        b"",
        # cJSON reads it; RFC 8259 does not, nor would a client's parser.
        b'{"event":"x","broadcast":true,"data":{"v":"\xff"}}',
        # Over the size limit: dead-lettered without being parsed. Several
        # body frames (frame_max is 128 KiB) are read and dropped.
        b" " * (max_body + 1),
    ]
    # Spans several body frames too, and arrives intact.
    good = {"event": "user.update", "userId": c.user,
            "data": {"token": token, "pad": "x" * 300000}}
    await publish(rabbit, bad + [good], p + ".x")
    msg = await c.expect_dispatch("user.update")
    assert msg["seq"] == 1 and msg["data"] == good["data"]

    seen = []

    def dead_letters():
        seen.extend(rabbit.get_all(DLQ))
        return len(seen) >= len(bad)
    await wait_until(lambda: in_thread(dead_letters), T(10),
                     "%d messages in %s" % (len(bad), DLQ))
    assert sorted(body for body, _ in seen) == sorted(bad)
    for body, props in seen:
        death = props.headers["x-death"][0]
        assert death["reason"] == "rejected", props.headers
        assert death["queue"] == "gatewayd." + instance, props.headers
    # Every one is counted, the oversized one included.
    assert broker_stat(gw, "dead_lettered") == len(bad)
    assert broker_stat(gw, "events_amqp") == 1


@pytest.mark.time_limit(40)
async def test_backlog_published_while_stopped_is_delivered_once(
        gateway_factory, rabbit, tmp_path):
    p, instance, user = uniq("d"), uniq("gw-d"), uniq("u")
    conf = overrides(rabbit, instance, p + ".#")
    first = standalone(tmp_path, "first", conf)
    try:
        await wait_link(first, "up")
    finally:
        stop_clean(first)
    queue = "gatewayd." + instance
    assert await in_thread(rabbit.queue_info, queue) == (0, 0)

    backlog = [{"event": "message.create", "userId": user,
                "data": {"i": i, "id": uniq("ev")}} for i in range(20)]
    await publish(rabbit, backlog, p + ".backlog")
    assert await in_thread(rabbit.queue_info, queue) == (20, 0)

    # The restarted gateway reaches RabbitMQ through a gate that stays shut
    # until the user's sessions are connected, so none of the backlog is
    # fanned out to nobody.
    gate = TcpGate(rabbit.port)
    await gate.start()
    try:
        gw = gateway_factory(**overrides(rabbit, instance, p + ".#",
                                         port=gate.port))
        assert health(gw)[1] != "up"
        sessions = [await Client.session(gw, user) for _ in range(2)]
        gate.opened = True
        await wait_link(gw, "up")
        await publish(rabbit, [MARKER], p + ".marker")
        want = [("message.create", None, e["data"]) for e in backlog]
        want.append(("marker", None, MARKER["data"]))
        await asyncio.gather(*(expect_dispatches(c, want) for c in sessions))
        assert await in_thread(rabbit.queue_info, queue) == (0, 1)
        assert broker_stat(gw, "events_amqp") == 21
    finally:
        await gate.close()


@pytest.mark.time_limit(30)
async def test_ephemeral_queue_goes_with_the_gateway(rabbit, tmp_path):
    p, instance = uniq("e"), uniq("gw-e")
    gw = standalone(tmp_path, "gw",
                    overrides(rabbit, instance, p + ".#", durable=False))
    try:
        await wait_link(gw, "up")
        c = await Client.session(gw)
        env = {"event": "user.update", "userId": c.user, "data": {"e": 1}}
        await publish(rabbit, [env], p + ".x")
        await expect_dispatches(c, [("user.update", None, env["data"])])
        queue = "gatewayd." + instance
        assert await in_thread(rabbit.queue_info, queue) == "exclusive"
    finally:
        stop_clean(gw)

    async def gone():
        return await in_thread(rabbit.queue_info, queue) is None
    await wait_until(gone, T(10), "queue %s to be deleted" % queue)


@pytest.mark.time_limit(40)
async def test_full_worker_queues_hold_deliveries(gateway_factory, rabbit):
    p = uniq("f")
    gate = TcpGate(rabbit.port)
    gate.opened = True
    await gate.start()
    try:
        conf = overrides(rabbit, uniq("gw-f"), p + ".#", port=gate.port)
        # Two-entry worker queues fill at once: the link must hold the
        # delivery it could not hand over, offer it again, and lose or repeat
        # nothing.
        conf.update(queues={"queue_size": 2}, log={"level": "debug"},
                    websocket={"write_ring_size": 4096})
        gw = gateway_factory(**conf)
        await wait_link(gw, "up")
        clients = [await Client.session(gw) for _ in range(8)]
        events = [{"event": "burst", "broadcast": True, "data": {"i": i}}
                  for i in range(200)]
        # Held back at the gate, the deliveries reach the gateway in one
        # burst of a prefetch window.
        gate.flowing.clear()
        await publish(rabbit, events, p + ".burst")
        gate.flowing.set()
        await asyncio.gather(*(expect_dispatches(
            c, [("burst", None, e["data"]) for e in events])
            for c in clients))
        assert "delivery held" in gw.stderr_text(), (
            "the worker queues never filled; the test proved nothing")
        assert broker_stat(gw, "events_amqp") == 200
        assert broker_stat(gw, "dead_lettered") == 0
    finally:
        await gate.close()


# Last: it restarts the module's RabbitMQ node.
@pytest.mark.time_limit(70)
async def test_rabbitmq_outage_and_return(gateway_factory, rabbit):
    p, guild = uniq("c"), uniq("g")
    gw = gateway_factory(**overrides(rabbit, uniq("gw-c"), p + ".#"))
    await wait_link(gw, "up")
    clients = [await Client.session(gw, guilds=[guild]) for _ in range(4)]
    got = []

    async def deliver_all(env, via_http=False):
        if via_http:
            await gw.apublish(env)
        else:
            # Transient: RabbitMQ killed with SIGKILL may not have written
            # the ack of a persistent message and would deliver it again
            # (AMQP is at-least-once); that is not what this test is about.
            await publish(rabbit, [env], p + ".x", persistent=False)
        for c in clients:
            msg = await c.expect_dispatch(env["event"], guild)
            assert msg["data"] == env["data"] and msg["seq"] == len(got) + 1
        got.append(env)

    def event(n):
        return {"event": "message.create", "guildId": guild, "data": {"n": n}}

    await deliver_all(event(1))
    await in_thread(rabbit.stop)
    await wait_link(gw, "down")
    down = gw.get_json("/health")["links_since"]["amqp"]
    for c in clients:
        await c.heartbeat_roundtrip()
    await deliver_all(event(2), via_http=True)
    # Retries (every 50 to 300 ms) leave it down since the failure.
    assert health(gw) == ("degraded", "down")
    assert gw.get_json("/health")["links_since"]["amqp"] == down

    await in_thread(rabbit.start)
    await wait_link(gw, "up")
    assert gw.get_json("/health")["links_since"]["amqp"] > down
    await deliver_all(event(3))
    await deliver_all(event(4), via_http=True)


class TcpGate:
    """A TCP relay to RabbitMQ that stays shut until `opened`: until then it
    accepts each connection and closes it at once. While `flowing` is clear
    the relayed bytes wait in the gate."""

    def __init__(self, target_port):
        self.target = target_port
        self.opened = False
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.writers = set()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        self.writers.add(writer)
        if not self.opened:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self.writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer),
                             self._pipe(up_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def close(self):
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()
