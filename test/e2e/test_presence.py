"""Presence across instances (SPEC section 3, seed 003), with a real Redis
and two or three gateways: online when a user's first session anywhere
identifies, offline after the grace when the last one anywhere is gone, and
nothing for a reconnect inside the grace; the survivors mark the users of a
SIGKILLed instance offline within the TTL; the HTTP routes; and presence
within one instance when Redis is away, rebuilt in Redis when it returns."""

import asyncio
import time
import urllib.parse

import pytest

from gwtest import Client, T, token_for, uniq, wait_until
from redisserver import redis_server, redis_server_factory  # noqa: F401

# The grace is the server's, so it is scaled like the tests' timeouts: a
# reconnect under a sanitizer must still fit inside it.
GRACE_MS = int(T(0.8) * 1000)
TTL_MS = 2000


def presence_gateway(gateway_factory, redis, instance, **overrides):
    sections = {"redis": {"enabled": True, "port": redis.port},
                "broker": {"instance_id": instance, "reconnect_min_ms": 50,
                           "reconnect_max_ms": 300},
                "presence": {"enabled": True, "offline_grace_ms": GRACE_MS,
                             "instance_ttl_ms": TTL_MS,
                             "key_prefix": uniq("p") + ":"}}
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    return gateway_factory(**sections)


async def cluster(gateway_factory, redis, n, **overrides):
    """n gateways on one Redis, sharing the presence key prefix."""
    prefix = uniq("p") + ":"
    gws = []
    for i in range(n):
        over = {k: dict(v) for k, v in overrides.items()}
        over.setdefault("presence", {})["key_prefix"] = prefix
        gws.append(presence_gateway(gateway_factory, redis, uniq("gw%d" % i),
                                    **over))
    for gw in gws:
        await wait_redis_up(gw)
    return gws


async def wait_redis_up(gw):
    async def up():
        h = await gw.aget_json("/health")
        return h["links"]["redis"] == "up"
    await wait_until(up, T(10), "redis link up on %s" % gw.http_url)


async def api(gw, path, key="default"):
    headers = {}
    if key is not None:
        headers["X-API-Key"] = gw.api_key if key == "default" else key
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: gw.http("GET", path, headers=headers))


async def users(gw, *ids):
    r = await api(gw, "/presence?userIds=" + ",".join(
        urllib.parse.quote(i, safe="") for i in ids))
    assert r.status == 200, r
    return r.json()


async def expect_presence(c, user, status, guild, timeout=5):
    msg = await c.recv(timeout)
    assert msg.get("event") == "presence.update", (
        "expected presence.update %s of %s, got %r" % (status, user, msg))
    assert msg["guildId"] == guild, msg
    assert msg["data"] == {"userId": user, "status": status}, msg
    return msg


async def expect_quiet(c, gw, guild, seconds):
    """Nothing reaches c for `seconds` (already scaled): a marker published
    afterwards is the next message it reads."""
    await asyncio.sleep(seconds)
    await gw.apublish({"event": "marker", "guildId": guild, "data": {}})
    msg = await c.recv()
    assert msg.get("event") == "marker", "expected silence, got %r" % msg


@pytest.mark.time_limit(60)
async def test_online_then_offline_after_the_last_session_anywhere(
        redis_server, gateway_factory):
    a, b = await cluster(gateway_factory, redis_server, 2)
    guild, user = uniq("g"), uniq("u")
    watcher = await Client.session(a, uniq("w"), [guild])

    first = await Client.session(b, user, [guild])
    await expect_presence(watcher, user, "online", guild)
    second = await Client.session(a, user, [guild])
    status = await users(b, user)
    assert status["users"] == [{"userId": user, "status": "online",
                                "sessions": 2}], status
    assert status["scope"] == "cluster"

    await first.close()
    await expect_quiet(watcher, a, guild, GRACE_MS * 2 / 1000)
    await second.close()
    closed = time.monotonic()
    await expect_presence(watcher, user, "offline", guild)
    waited = time.monotonic() - closed
    assert waited >= GRACE_MS / 1000 * 0.9, "offline after %.2fs" % waited
    status = await users(a, user)
    assert status["users"] == [{"userId": user, "status": "offline",
                                "sessions": 0}], status
    totals = await b.totals()
    assert totals["presence_online"] >= 1, totals


@pytest.mark.time_limit(60)
async def test_a_reconnect_inside_the_grace_announces_nothing(
        redis_server, gateway_factory):
    a, b = await cluster(gateway_factory, redis_server, 2)
    guild, user = uniq("g"), uniq("u")
    watcher = await Client.session(a, uniq("w"), [guild])
    c = await Client.session(a, user, [guild])
    await expect_presence(watcher, user, "online", guild)

    c.abort()  # the network goes away, as a phone's would
    await asyncio.sleep(GRACE_MS / 4000)
    back = await Client.session(b, user, [guild])  # and comes back elsewhere
    await expect_quiet(watcher, a, guild, GRACE_MS * 2 / 1000)
    assert (await users(a, user))["users"][0]["sessions"] == 1
    await back.close()
    await expect_presence(watcher, user, "offline", guild)


@pytest.mark.time_limit(90)
async def test_sigkilled_instance_users_go_offline_within_the_ttl(
        redis_server, gateway_factory):
    a, b, c = await cluster(gateway_factory, redis_server, 3)
    guild = uniq("g")
    doomed, spread = uniq("doomed"), uniq("spread")
    watchers = [await Client.session(gw, uniq("w"), [guild]) for gw in (a, c)]
    await Client.session(b, doomed, [guild])
    await Client.session(b, spread, [guild])
    await Client.session(c, spread, [guild])
    # The first watcher hears the second come online too (maybe after the
    # others: each instance announces when Redis has answered it); the
    # second may hear the first, whose online went out before the others.
    for w, must in zip(watchers, ({doomed, spread, watchers[1].user},
                                  {doomed, spread})):
        got = set()
        while not must <= got:
            msg = await w.recv()
            assert msg["event"] == "presence.update", msg
            got.add(msg["data"]["userId"])
        assert got - {doomed, spread} <= {v.user for v in watchers}, got

    b.kill()
    killed = time.monotonic()
    for w in watchers:
        await expect_presence(w, doomed, "offline", guild,
                              timeout=TTL_MS / 1000 + 3)
    took = time.monotonic() - killed
    assert took <= T(TTL_MS / 1000 + 1), "reaped after %.2fs" % took
    # The user with a session on a survivor stays online, and nobody heard
    # anything else: exactly one survivor reaped, and announced once.
    for w, gw in zip(watchers, (a, c)):
        await expect_quiet(w, gw, guild, T(0.2))
    status = await users(a, doomed, spread)
    assert status["users"] == [
        {"userId": doomed, "status": "offline", "sessions": 0},
        {"userId": spread, "status": "online", "sessions": 1}], status
    reaped = sum([(await gw.totals())["presence_reaped"] for gw in (a, c)])
    assert reaped == 1


@pytest.mark.time_limit(60)
async def test_the_presence_routes(redis_server, gateway_factory):
    # Eight workers: eight holders in each liveness call.
    a, b = await cluster(gateway_factory, redis_server, 2,
                         presence={"guild_limit": 2}, server={"workers": 8})
    guild, other = uniq("g"), uniq("g")
    members = [uniq("m") for _ in range(3)]
    for i, m in enumerate(members):
        await Client.session(a if i % 2 else b, m, [guild])
    lone = await Client.session(a, uniq("lone"), [other])

    async def counted():
        r = await api(a, "/guilds/%s/presence" % guild)
        return r.status == 200 and r.json()["online"] == 3 and r.json()
    body = await wait_until(counted, T(5), "3 online in the guild")
    assert body["guildId"] == guild
    assert len(body["userIds"]) == 2 and set(body["userIds"]) <= set(members)

    # Unsubscribing takes the user out of the guild's count.
    await lone.subscribe(guild)
    await wait_until(counted_is(a, guild, 4), T(5), "4 online")
    await lone.unsubscribe(guild)
    await wait_until(counted_is(a, guild, 3), T(5), "3 online again")

    status = await users(b, members[0], "nobody")
    assert [u["status"] for u in status["users"]] == ["online", "offline"]
    for path in ("/presence?userIds=x", "/guilds/%s/presence" % guild):
        r = await api(a, path, key=None)
        assert r.status == 401, r
        r = await api(a, path, key="wrong")
        assert r.status == 401, r
    for path in ("/presence", "/presence?userIds=", "/presence?other=1",
                 "/presence?userIds=" + ",".join(["x"] * 101)):
        r = await api(a, path)
        assert r.status == 400, (path, r)
    r = await api(a, "/guilds//presence")
    assert r.status == 404, r


def counted_is(gw, guild, n):
    async def check():
        r = await api(gw, "/guilds/%s/presence" % guild)
        return r.status == 200 and r.json()["online"] == n
    return check


@pytest.mark.time_limit(60)
async def test_presence_within_one_instance_without_redis(gateway_factory):
    gw = gateway_factory(presence={"enabled": True,
                                   "offline_grace_ms": GRACE_MS})
    guild, user = uniq("g"), uniq("u")
    watcher = await Client.session(gw, uniq("w"), [guild])
    # Four workers: the user's sessions land on different ones.
    mine = [await Client.session(gw, user, [guild]) for _ in range(4)]
    await expect_presence(watcher, user, "online", guild)
    status = await users(gw, user)
    assert status == {"users": [{"userId": user, "status": "online",
                                 "sessions": 4}], "scope": "instance"}
    for c in mine[:3]:
        await c.close()
    await expect_quiet(watcher, gw, guild, GRACE_MS * 1.5 / 1000)
    await mine[3].close()
    await expect_presence(watcher, user, "offline", guild)
    r = await api(gw, "/guilds/%s/presence" % guild)
    assert r.status == 503, r
    assert "needs Redis" in r.json()["error"], r


@pytest.mark.time_limit(90)
async def test_redis_restart_registers_everyone_again(redis_server,
                                                      gateway_factory):
    a, b = await cluster(gateway_factory, redis_server, 2)
    guild, user, late = uniq("g"), uniq("u"), uniq("late")
    # identified comes once B's subscription of the guild is confirmed
    # (README, Targeted channels): A's announcement reaches the watcher.
    watcher = await Client.session(b, uniq("w"), [guild])
    await Client.session(a, user, [guild])
    await expect_presence(watcher, user, "online", guild)

    redis_server.stop()  # SIGKILL
    await wait_until(link_is(a, "down"), T(10), "redis down on a")
    # Without Redis the instance still decides for its own users.
    local_watch = await Client.session(a, uniq("w"), [guild])
    await Client.session(a, late, [guild])
    await expect_presence(local_watch, late, "online", guild)
    assert (await users(a, user))["scope"] == "instance"

    redis_server.start()  # empty: everything must be registered again
    for gw in (a, b):
        await wait_redis_up(gw)

    async def registered():
        s = await users(b, user, late)
        return s["scope"] == "cluster" and [
            u["sessions"] for u in s["users"]] == [1, 1]
    await wait_until(registered, T(10), "both users registered again")
    r = await api(b, "/guilds/%s/presence" % guild)
    assert r.status == 200 and r.json()["online"] == 4, r
    # Nobody was announced offline, so registering again announces nothing.
    await expect_quiet(watcher, b, guild, T(0.3))


def link_is(gw, state):
    async def check():
        return (await gw.aget_json("/health"))["links"]["redis"] == state
    return check


@pytest.mark.time_limit(60)
async def test_a_parked_session_is_away_and_a_resume_is_back(gateway_factory):
    gw = gateway_factory(presence={"enabled": True,
                                   "offline_grace_ms": GRACE_MS},
                         session={"resume_window_ms": 30000})
    guild, user = uniq("g"), uniq("u")
    watcher = await Client.session(gw, uniq("w"), [guild])
    c = await Client.session(gw, user, [guild])
    await expect_presence(watcher, user, "online", guild)
    c.abort()  # parked: resumable, but not online
    await expect_presence(watcher, user, "offline", guild)
    status = await users(gw, user)
    assert status["users"][0]["sessions"] == 0, status
    r = await Client.connect(gw)
    await r.ready()
    await r.send({"event": "resume",
                  "data": {"sessionId": c.session_id, "seq": 0,
                           "token": token_for(user, secret=gw.secret)}})
    await r.expect("resumed")
    await expect_presence(watcher, user, "online", guild)
    assert (await users(gw, user))["users"][0]["sessions"] == 1
