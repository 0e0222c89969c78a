"""The Redis link: events from the gateway_events channel, typing.start
across two instances, a Redis that dies and comes back, AUTH.

Each test starts its own redis-server (redisserver.py) before its gateways,
so that the gateways are stopped first.

"Nobody else got it" is proved with a marker broadcast afterwards: events
reach each connection in order, and each gateway reads the channel on one
connection, so a client's next dispatch must be the marker.
"""

import asyncio
import json

import pytest

from gwtest import Client, T, uniq, wait_until
from redisserver import redis_server, redis_server_factory  # noqa: F401

CHANNEL = "gateway_events"
MARKER = ("marker", None, {"end": True})


def redis_gateway(gateway_factory, server, instance, **overrides):
    """A gateway on `server` that retries fast, so recovery is quick."""
    sections = {"redis": {"enabled": True, "port": server.port},
                "broker": {"instance_id": instance, "reconnect_min_ms": 50,
                           "reconnect_max_ms": 500}}
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    return gateway_factory(**sections)


async def health(gw):
    r = await asyncio.get_running_loop().run_in_executor(
        None, gw.http, "GET", "/health")
    assert r.status == 200, "GET /health -> %r" % r
    return r.json()


async def wait_link(gw, state, status):
    async def check():
        h = await health(gw)
        return h["links"]["redis"] == state and h["status"] == status and h
    return await wait_until(check, T(10), "/health links.redis %r, status %r "
                            "on %s" % (state, status, gw.http_url))


async def broker_stats(gw):
    return (await gw.aget_json("/stats"))["broker"]


async def rpublish(server, message):
    """PUBLISH to the channel; a dict is sent as JSON."""
    if isinstance(message, dict):
        message = json.dumps(message)
    return await asyncio.get_running_loop().run_in_executor(
        None, server.publish, CHANNEL, message)


async def expect_dispatches(c, expected):
    """expected: (event, guildId or None, data) in order, nothing between."""
    for i, (event, guild, data) in enumerate(expected):
        msg = await c.recv()
        got = (msg.get("event"), msg.get("guildId"), msg.get("data"))
        assert "seq" in msg and got == (event, guild, data), (
            "session %s (user %s, guilds %s): dispatch #%d should be %r, "
            "got %r" % (c.session_id, c.user, c.guilds, i + 1,
                        (event, guild, data), msg))
        want = {"seq", "event", "data"} | ({"guildId"} if guild else set())
        assert set(msg) == want, msg


async def send_typing(c, guild, channel="c1"):
    await c.send({"event": "typing.start",
                  "data": {"guildId": guild, "channelId": channel}})


@pytest.mark.time_limit(30)
async def test_channel_events_reach_exactly_their_targets(redis_server,
                                                          gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, "gw-a")
    await wait_link(gw, "up", "ok")
    g1, g2 = uniq("g1"), uniq("g2")
    memberships = [[g1], [g2], [g1, g2], []]
    clients = [await Client.session(gw, uniq("u%d" % i),
                                    memberships[i % 4]) for i in range(36)]
    ua, ub = uniq("ua"), uniq("ub")
    a1 = await Client.session(gw, ua, [g2])
    a2 = await Client.session(gw, ua, [])
    b = await Client.session(gw, ub, [g1])
    clients += [a1, a2, b]

    def spread():
        per = [w["sessions"] for w in gw.get_json("/stats")["workers"]]
        return len(per) == 4 and min(per) >= 1 and sum(per) == 39
    await wait_until(spread, T(5), "39 sessions on all 4 workers")
    before = await broker_stats(gw)

    guild_ev = ("message.create", g1, {"n": 1, "s": "caf\u00e9"})
    user_ev = ("presence.update", None, {"to": "ua"})
    users_ev = ("user.update", None, {"to": "ua+ub"})
    foreign_ev = ("message.update", g2, {"from": "gw-b"})
    for msg in ({"event": guild_ev[0], "guildId": g1, "data": guild_ev[2]},
                {"event": user_ev[0], "userId": ua, "data": user_ev[2]},
                {"event": users_ev[0], "userIds": [ua, ub],
                 "data": users_ev[2]},
                # Published by this instance: it has delivered it already.
                {"event": "message.delete", "guildId": g1, "data": {},
                 "origin": "gw-a"},
                "{not json",
                {"event": foreign_ev[0], "guildId": g2,
                 "data": foreign_ev[2], "origin": "gw-b"},
                {"event": "marker", "broadcast": True, "data": {"end": True}}):
        assert await rpublish(redis_server, msg) == 1, "gateway not subscribed"

    async def check(c):
        want = [e for e in (guild_ev, user_ev, users_ev, foreign_ev)
                if e[1] in c.guilds
                or (e is user_ev and c.user == ua)
                or (e is users_ev and c.user in (ua, ub))]
        await expect_dispatches(c, want + [MARKER])
    await asyncio.gather(*(check(c) for c in clients))

    after = await broker_stats(gw)
    assert after["events_redis"] - before["events_redis"] == 5, after
    assert after["parse_failures"] - before["parse_failures"] == 1, after
    assert after["events_http"] == before["events_http"], after


@pytest.mark.time_limit(40)
async def test_typing_crosses_instances_once(redis_server, gateway_factory):
    limit = {"session": {"typing_limit": 3, "typing_window_ms": 600000}}
    gwa = redis_gateway(gateway_factory, redis_server, "gw-a", **limit)
    gwb = redis_gateway(gateway_factory, redis_server, "gw-b", **limit)
    await wait_link(gwa, "up", "ok")
    await wait_link(gwb, "up", "ok")
    assert (await health(gwa))["instance"] == "gw-a"
    g, other = uniq("g"), uniq("h")
    sender = uniq("sender")
    sa = await Client.session(gwa, sender, [g])
    sb = await Client.session(gwb, sender, [g])
    ma = await Client.session(gwa, uniq("ma"), [g])
    mb = await Client.session(gwb, uniq("mb"), [g])
    na = await Client.session(gwa, uniq("na"), [other])
    nb = await Client.session(gwb, uniq("nb"), [other])
    everyone = (sa, sb, ma, mb, na, nb)
    typing = ("typing.start", g, {"userId": sender, "channelId": "c1"})

    async def marker():
        assert await rpublish(redis_server, {
            "event": "marker", "broadcast": True, "data": {"end": True}}) == 2

    # A member on each instance gets it once (A ignores its own echo, which
    # reaches A before the marker); the sender's sessions and non-members
    # get nothing but the marker.
    await send_typing(sa, g)
    await expect_dispatches(ma, [typing])
    await expect_dispatches(mb, [typing])
    await marker()
    await asyncio.gather(*(expect_dispatches(c, [MARKER]) for c in everyone))

    # Only for a joined guild.
    await send_typing(na, g)
    await na.expect_error("forbidden")

    # Three per window: two more pass, the fourth is refused, not closed.
    # The marker waits until B has the relayed ones, that is until Redis has
    # taken A's PUBLISHes: the error reaches sa before they are sent.
    await send_typing(sa, g, "c2")
    await send_typing(sa, g, "c3")
    await send_typing(sa, g, "c4")
    await sa.expect_error("rate_limited")
    await sa.heartbeat_roundtrip()
    relayed = [("typing.start", g, {"userId": sender, "channelId": ch})
               for ch in ("c2", "c3")]
    await expect_dispatches(ma, relayed)
    await expect_dispatches(mb, relayed)
    await marker()
    await asyncio.gather(*(expect_dispatches(c, [MARKER]) for c in everyone))


@pytest.mark.time_limit(40)
async def test_gateway_survives_redis_restart(redis_server, gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, "gw-a")
    up = (await wait_link(gw, "up", "ok"))["links_since"]["redis"]
    g = uniq("g")
    c1 = await Client.session(gw, uniq("u1"), [g])
    c2 = await Client.session(gw, uniq("u2"), [g])
    ev = [("message.create", g, {"n": i}) for i in range(4)]

    def envelope(e):
        return {"event": e[0], "guildId": e[1], "data": e[2]}

    await rpublish(redis_server, envelope(ev[0]))
    for c in (c1, c2):
        await expect_dispatches(c, [ev[0]])

    # Redis dies: clients stay, /health says which link is down, /publish
    # and local typing still deliver.
    redis_server.stop()
    down = (await wait_link(gw, "down", "degraded"))["links_since"]["redis"]
    assert down > up, (up, down)
    for c in (c1, c2):
        await c.heartbeat_roundtrip()
    await gw.apublish(envelope(ev[1]))
    await send_typing(c1, g)
    typing = ("typing.start", g, {"userId": c1.user, "channelId": "c1"})
    await expect_dispatches(c1, [ev[1]])
    await expect_dispatches(c2, [ev[1], typing])
    # Not a wait for an event: Redis stays down long enough for reconnect
    # attempts (backoff up to 500 ms) to be refused, a path of its own.
    await asyncio.sleep(1)
    h = await health(gw)
    # Down since the failure, not since the last retry; the clock moved.
    assert h["links_since"]["redis"] == down, (down, h)
    assert h["time"] >= down + 1000, (down, h)
    assert h["links_since"]["amqp"] <= h["time"], h  # disabled since start

    # Redis is back on the same port: the link recovers by itself.
    redis_server.start()
    h = await wait_link(gw, "up", "ok")
    assert h["links_since"]["redis"] >= down + 1000, (down, h)
    await rpublish(redis_server, envelope(ev[2]))
    for c in (c1, c2):
        await expect_dispatches(c, [ev[2]])
    await gw.apublish(envelope(ev[3]))
    for c in (c1, c2):
        await expect_dispatches(c, [ev[3]])

    # One log line per state change, however many retries there were.
    log = gw.stderr_text()
    prefix = "redis 127.0.0.1:%d: " % redis_server.port
    assert log.count(prefix + "down") == 1, gw.tail()
    assert log.count(prefix + "up") == 2, gw.tail()


async def test_auth_with_the_configured_password(redis_server_factory,
                                                 gateway_factory):
    server = redis_server_factory(password="s3cret pass")
    good = redis_gateway(gateway_factory, server, "gw-a",
                         redis={"password": "s3cret pass"})
    # bad retries only after the test: a socket that hiredis opens while
    # the daemon shuts down may reuse a descriptor that libuv closed on
    # another thread with a raw close(2) syscall, which ThreadSanitizer does
    # not see, and it then reports a false race on the descriptor.
    bad = redis_gateway(gateway_factory, server, "gw-b",
                        redis={"password": "wrong"},
                        broker={"reconnect_min_ms": 60000,
                                "reconnect_max_ms": 60000})
    await wait_link(good, "up", "ok")
    await wait_link(bad, "down", "degraded")
    g = uniq("g")
    c = await Client.session(good, uniq("u"), [g])
    assert await rpublish(server, {"event": "message.create", "guildId": g,
                                   "data": {}}) == 1
    await expect_dispatches(c, [("message.create", g, {})])
    prefix = "redis 127.0.0.1:%d: down (" % server.port
    assert bad.stderr_text().count(prefix) == 1, bad.tail()
