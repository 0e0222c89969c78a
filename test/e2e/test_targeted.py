"""Targeted Redis channels (README "Redis"): each instance subscribes to the
channels of the guilds, users and sessions it holds, so that an event
reaches the instances of its recipients and no other. Three instances on
one Redis; what each received is read from its /stats, and who is
subscribed to what from Redis itself (PUBSUB NUMSUB, PUBSUB CHANNELS).

"Nothing else arrived" is proved as in test_redis.py: a marker broadcast
on the plain channel afterwards must be each client's next dispatch.
"""

import asyncio
import json
import signal
import time

import pytest

from gwtest import Client, T, uniq, wait_until
from redisserver import redis_server, redis_server_factory  # noqa: F401
from test_redis import (CHANNEL, MARKER, broker_stats, expect_dispatches,
                        health, redis_gateway, wait_link)

COUNTERS = ("events_redis", "events_redis_plain", "events_redis_guild",
            "events_redis_user", "events_redis_session",
            "redis_target_mismatches", "own_echoes", "events_http")


def ch(kind, target):
    return "%s:%s:%s" % (CHANNEL, kind, target)


def envelope(ev, **target):
    """An envelope for (event, guildId or None, data); guildId is the
    target when set, else `target` says it."""
    env = {"event": ev[0], "data": ev[2]}
    if ev[1] is not None:
        env["guildId"] = ev[1]
    env.update(target)
    return env


async def in_executor(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def rpublish_to(server, channel, message):
    """PUBLISH to one channel; the number of instances that got it."""
    return await in_executor(server.publish, channel, json.dumps(message))


async def subscribers(server, channels):
    def ask():
        with server.client() as c:
            return {k.decode(): n for k, n in c.pubsub_numsub(*channels)}
    return await in_executor(ask)


async def wait_subscribers(server, want, timeout=5):
    """Until Redis counts want[channel] subscribers of each channel."""
    async def check():
        got = await subscribers(server, list(want))
        return got if got == want else None
    return await wait_until(check, T(timeout), "subscribers %r" % want)


async def channels(server):
    """The targeted and control channels Redis holds (not the plain one)."""
    def ask():
        with server.client() as c:
            return {k.decode() for k in c.pubsub_channels(CHANNEL + ":*")}
    return await in_executor(ask)


async def counters(gws):
    return [{k: s[k] for k in COUNTERS}
            for s in [await broker_stats(gw) for gw in gws]]


def moved(before, after):
    """What moved on each instance, counters that did not left out."""
    return [{k: a[k] - b[k] for k in COUNTERS if a[k] != b[k]}
            for b, a in zip(before, after)]


async def instances(gateway_factory, redis, names):
    """Gateways of two workers each on redis, with their links up."""
    gws = [gateway_factory(server={"workers": 2},
                           redis={"enabled": True, "port": redis.port},
                           broker={"instance_id": uniq(n)}) for n in names]
    for gw in gws:
        await wait_link(gw, "up", "ok")
    return gws


@pytest.mark.time_limit(60)
async def test_events_reach_only_the_instances_of_their_targets(
        redis_server, gateway_factory):
    a, b, c = await instances(gateway_factory, redis_server, "abc")
    g_a, g_ac = uniq("ga"), uniq("gac")
    u_a, u_ac = uniq("ua"), uniq("uac")
    a1 = await Client.session(a, u_a, [g_a, g_ac])
    a2 = await Client.session(a, u_ac, [])
    c1 = await Client.session(c, u_ac, [g_ac])
    c2 = await Client.session(c, uniq("uc"), [g_ac])
    b1 = await Client.session(b, uniq("ub"), [uniq("gb")])
    everyone = (a1, a2, c1, c2, b1)
    await wait_subscribers(redis_server, {
        ch("guild", g_a): 1, ch("guild", g_ac): 2, ch("user", u_a): 1,
        ch("user", u_ac): 2, ch("session", a1.session_id): 1})
    start = await counters((a, b, c))

    # A backend publishes to a guild held on A alone: Redis hands it to
    # A, and B and C read nothing.
    ev1 = ("message.create", g_a, {"n": 1})
    assert await rpublish_to(redis_server, ch("guild", g_a),
                             envelope(ev1)) == 1
    await expect_dispatches(a1, [ev1])
    now = await counters((a, b, c))
    assert moved(start, now) == [
        {"events_redis": 1, "events_redis_guild": 1}, {}, {}], now

    # POST /publish on B, for a guild on A and C: each gets it once, and
    # B, which holds none of it, reads nothing back.
    ev2 = ("message.create", g_ac, {"n": 2})
    r = await b.apublish(envelope(ev2))
    assert r["scope"] == "cluster" and r["workers"] == 2, r
    for cl in (a1, c1, c2):
        await expect_dispatches(cl, [ev2])

    # Users entering C: u_a is on A, u_ac on A and C. Each user's copy
    # goes on its own channel; C delivers its own at once and skips the
    # echo.
    ev3 = ("user.update", None, {"n": 3})
    r = await c.apublish(envelope(ev3, userIds=[u_a, u_ac]))
    assert r["scope"] == "cluster", r
    for cl in (a1, a2, c1):
        await expect_dispatches(cl, [ev3])

    # A reply to a session of A, entering B: its session's channel.
    ev4 = ("chat.reply", None, {"n": 4})
    r = await b.apublish(envelope(ev4, sessionId=a1.session_id))
    assert r["scope"] == "cluster", r
    await expect_dispatches(a1, [ev4])

    # An envelope that is not for its channel's target: refused.
    assert await rpublish_to(redis_server, ch("user", u_a), envelope(
        ("wrong", g_a, {}))) == 1
    await wait_until(lambda: a.get_json("/stats")["broker"]
                     ["redis_target_mismatches"] > 0, T(5),
                     "the mismatch counted on A")
    assert "not for the user its channel names" in a.stderr_text()

    assert await rpublish_to(redis_server, CHANNEL, envelope(
        MARKER, broadcast=True)) == 3
    for cl in everyone:
        await expect_dispatches(cl, [MARKER])
    end = await counters((a, b, c))
    assert moved(start, end) == [
        # ev1, ev2, ev3 twice (u_a's copy and u_ac's), ev4, the marker
        {"events_redis": 6, "events_redis_guild": 2, "events_redis_user": 3,
         "events_redis_session": 1, "events_redis_plain": 1,
         "redis_target_mismatches": 1},
        {"events_redis": 1, "events_redis_plain": 1, "events_http": 2},
        {"events_redis": 2, "events_redis_guild": 1, "events_redis_user": 1,
         "events_redis_plain": 1, "own_echoes": 1, "events_http": 1},
    ], end


@pytest.mark.time_limit(40)
async def test_subscriptions_follow_sessions_with_a_linger(
        redis_server, gateway_factory):
    linger = T(1)
    gw = redis_gateway(gateway_factory, redis_server, "gw-a",
                       redis={"unsubscribe_linger_ms": int(linger * 1000)})
    await wait_link(gw, "up", "ok")
    g, h, user = uniq("g"), uniq("h"), uniq("u")
    c = await Client.session(gw, user, [g])
    mine = {ch("guild", g): 1, ch("user", user): 1,
            ch("session", c.session_id): 1}
    await wait_subscribers(redis_server, mine)
    await c.subscribe(h)
    await wait_subscribers(redis_server, {ch("guild", h): 1})
    before = await broker_stats(gw)
    assert before["targets_wanted"] == 3 + 1, before

    # Left, then back inside the linger: no UNSUBSCRIBE, no SUBSCRIBE.
    await c.unsubscribe(h)
    await wait_until(lambda: gw.get_json("/stats")["broker"]
                     ["targets_lingering"] == 1, T(5), "h lingering")
    assert await subscribers(redis_server, [ch("guild", h)]) == {
        ch("guild", h): 1}
    await c.subscribe(h)
    await wait_until(lambda: gw.get_json("/stats")["broker"]
                     ["targets_lingering"] == 0, T(5), "h held again")
    after = await broker_stats(gw)
    for k in ("redis_subscribe_commands", "redis_unsubscribe_commands"):
        assert after[k] == before[k], (k, before, after)

    # Left for good: unsubscribed once the linger is over, not before.
    left = time.monotonic()
    await c.unsubscribe(h)
    await wait_subscribers(redis_server, {ch("guild", h): 0}, timeout=10)
    assert time.monotonic() - left >= 0.9 * linger

    # The session ends: its channel goes at once, its user's and guild's
    # after the linger.
    await c.close()
    await wait_subscribers(redis_server, {
        ch("guild", g): 1, ch("user", user): 1,
        ch("session", c.session_id): 0})
    await wait_subscribers(redis_server, {k: 0 for k in mine}, timeout=10)
    end = await broker_stats(gw)
    assert end["targets_wanted"] == 0 and end["targets_lingering"] == 0, end
    # What is left: the plain channel and the handoff's control channel.
    assert end["redis_channels"] == 2, end
    assert (await health(gw))["redis_channels"] == 2


@pytest.mark.time_limit(60)
async def test_a_redis_restart_resubscribes_everything(redis_server,
                                                       gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, "gw-a")
    # An instance that keeps to the plain channel, as before targeting.
    old = redis_gateway(gateway_factory, redis_server, "gw-old",
                        redis={"targeted": False})
    for g in (gw, old):
        await wait_link(g, "up", "ok")
    guilds = [uniq("g%d" % i) for i in range(5)]
    clients = [await Client.session(gw, uniq("u"), guilds[i:i + 2])
               for i in range(4)]
    o = await Client.session(old, uniq("o"), [guilds[0]])
    want = ({ch("guild", g) for g in guilds}
            | {ch("user", cl.user) for cl in clients}
            | {ch("session", cl.session_id) for cl in clients}
            | {CHANNEL + ":handoff:gw-a"})
    # gw-old, which does not target, shares the one control channel.
    shared = CHANNEL + ":handoff"

    async def subscribed():
        return await channels(redis_server) - {shared} == want
    await wait_until(subscribed, T(5), "the targeted channels of gw-a only")

    # Without targeting, /publish is this instance's alone.
    ev = ("message.create", guilds[0], {"n": 0})
    r = await old.apublish(envelope(ev))
    assert r == {"accepted": True, "workers": 4, "scope": "instance"}, r
    await expect_dispatches(o, [ev])

    # While Redis is away /publish delivers here, and says so.
    redis_server.stop()
    await wait_link(gw, "down", "degraded")
    assert (await broker_stats(gw))["redis_channels"] == 0
    ev = ("message.create", guilds[1], {"n": 1})
    r = await gw.apublish(envelope(ev))
    assert r["scope"] == "instance" and r["workers"] >= 1, r
    for cl in clients[:2]:
        await expect_dispatches(cl, [ev])

    # Back: every channel is subscribed again before the link is up.
    redis_server.start()
    h = await wait_link(gw, "up", "ok")
    assert await channels(redis_server) - {shared} == want
    assert h["redis_channels"] == len(want) + 1, h
    ev = ("message.create", guilds[4], {"n": 2})
    assert await rpublish_to(redis_server, ch("guild", guilds[4]),
                             envelope(ev)) == 1
    await expect_dispatches(clients[3], [ev])
    assert "(%d channels)" % (len(want) + 1) in gw.stderr_text()


ROUNDS = 20


async def publish_at_once(redis_conn, b, guild, n):
    """The moment a client has heard it is in `guild`: one event PUBLISHed
    straight to the guild's channel (on a connection already open, so
    nothing waits on a connect) and one through /publish on instance B.
    Returns the two events, in the order they were sent."""
    ev_r = ("message.create", guild, {"n": n, "via": "redis"})
    ev_b = ("message.create", guild, {"n": n, "via": "b"})
    got = redis_conn.publish(ch("guild", guild), json.dumps(envelope(ev_r)))
    assert got == 1, "round %d: PUBLISH to %s reached %d instances" % (
        n, guild, got)
    r = await b.apublish(envelope(ev_b))
    assert r["scope"] == "cluster", r
    return [ev_r, ev_b]


@pytest.mark.time_limit(90)
async def test_identified_means_the_new_guild_is_subscribed(redis_server,
                                                           gateway_factory):
    """`identified` for a guild new to the instance is sent once Redis has
    confirmed its SUBSCRIBE (README, Targeted channels): what is published
    to the guild right after it, on Redis or through another instance,
    arrives. No wait and no polling in between, round after round."""
    a, b = await instances(gateway_factory, redis_server, "ab")
    with redis_server.client() as conn:
        for n in range(ROUNDS):
            guild = uniq("new%d" % n)
            c = await Client.session(a, uniq("u"), [guild])
            await expect_dispatches(c, await publish_at_once(conn, b, guild,
                                                             n))
            await c.close()


@pytest.mark.time_limit(90)
async def test_guild_subscribed_means_the_new_guild_is_subscribed(
        redis_server, gateway_factory):
    """The same for a guild joined later: `guild_subscribed`, whether the
    client asked or a backend's subscribe action did."""
    a, b = await instances(gateway_factory, redis_server, "ab")
    c = await Client.session(a, uniq("u"), [])
    with redis_server.client() as conn:
        for n in range(ROUNDS):
            guild = uniq("later%d" % n)
            await c.subscribe(guild)
            await expect_dispatches(c, await publish_at_once(conn, b, guild,
                                                             n))
            guild = uniq("action%d" % n)
            r = await b.apublish({"action": "subscribe", "userId": c.user,
                                  "guildId": guild})
            assert r["scope"] == "cluster", r
            msg = await c.expect("guild_subscribed")
            assert msg["data"] == {"guildId": guild}, msg
            await expect_dispatches(c, await publish_at_once(conn, b, guild,
                                                             n))


@pytest.mark.time_limit(60)
async def test_a_stalled_redis_delays_identified_by_the_bound_only(
        redis_server, gateway_factory):
    """Redis that does not answer the SUBSCRIBE (stopped, its connections
    open): identified comes redis.subscribe_wait_ms late, counted and
    logged, and a dispatch made meanwhile on the instance comes after it;
    once Redis answers, a new guild is answered without the bound."""
    wait = T(0.5)
    gw = redis_gateway(gateway_factory, redis_server, "gw-a",
                       redis={"subscribe_wait_ms": int(wait * 1000)})
    await wait_link(gw, "up", "ok")
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        guild = uniq("g")
        began = time.monotonic()
        c = await Client.connect(gw)
        await c.ready()
        await c.send_identify(uniq("u"), [guild])
        # A dispatch for the session while its answer is held comes after
        # identified, not before.
        await asyncio.sleep(wait / 4)
        ev = ("message.create", guild, {"n": "held"})
        r = await gw.apublish(envelope(ev))
        assert r["accepted"], r
        msg = await c.expect("identified")
        took = time.monotonic() - began
        assert msg["data"]["guildIds"] == [guild], msg
        await expect_dispatches(c, [ev])
        t = await gw.totals()
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    assert took >= 0.9 * wait, took
    assert t["subscribe_waits"] == 1 and t["subscribe_waits_late"] == 1, t
    assert "not confirmed within redis.subscribe_wait_ms" in gw.stderr_text()

    await wait_subscribers(redis_server, {ch("guild", guild): 1})
    began = time.monotonic()
    fresh = await Client.session(gw, uniq("u"), [uniq("g")])
    assert time.monotonic() - began < 0.9 * wait
    t = await gw.totals()
    assert t["subscribe_waits"] == 2 and t["subscribe_waits_late"] == 1, t
    for cl in (c, fresh):
        await cl.close()
