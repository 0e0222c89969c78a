"""Redis Cluster (README "Redis Cluster"): gatewayd instances on a real
cluster of three masters (redisserver.RedisCluster), every channel a
sharded one on the master of its slot. Guilds are picked so that their
channels live on different masters; events are published as a backend
would (SPUBLISH on the channel's master) and through POST /publish on
another instance. What each instance received is read from its /stats,
who holds which channel from the masters themselves (PUBSUB SHARDNUMSUB).

"Nothing else arrived" is proved as in test_targeted.py: a marker
broadcast on the plain channel (a sharded channel too) afterwards must be
each client's next dispatch.
"""

import asyncio
import json

import pytest
from redis.crc import key_slot

from conftest import BIN
from gwtest import Client, Gateway, T, uniq, wait_until
from redisserver import redis_cluster  # noqa: F401 (fixture)
from test_redis import CHANNEL, MARKER, broker_stats, expect_dispatches
from test_targeted import envelope

COUNTERS = ("events_redis", "events_redis_plain", "events_redis_guild",
            "events_http", "redis_publish_failures", "redis_cluster_lost")


def guild_ch(guild):
    return "%s:guild:%s" % (CHANNEL, guild)


async def in_executor(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def cluster_gateway(gateway_factory, cluster, name):
    """A gateway of two workers on the cluster, that retries fast."""
    return gateway_factory(
        server={"workers": 2},
        redis={"enabled": True, "cluster": True,
               "cluster_nodes": ",".join(cluster.seeds)},
        session={"handoff": False},
        broker={"instance_id": uniq(name), "reconnect_min_ms": 50,
                "reconnect_max_ms": 500})


async def health(gw):
    return await in_executor(gw.get_json, "/health")


def address(node):
    return "127.0.0.1:%d" % node.port


async def wait_shards(gw, status, down=()):
    """Until /health says status, with the shards of `down` down and the
    others up."""
    async def check():
        h = await health(gw)
        states = {s["address"]: s["state"] for s in h.get("redis_shards", [])}
        want = {a: ("down" if a in down else "up") for a in states}
        return (h["status"] == status and len(states) == 3
                and states == want and h)
    return await wait_until(check, T(10), "/health %s, shards %r down on %s"
                            % (status, down, gw.http_url))


def slot_owner(cluster):
    """slot -> the node (of cluster.nodes) that serves it, as a live node
    says."""
    with cluster._live().client() as c:
        ranges = c.execute_command("CLUSTER", "SLOTS")
    by_port = {n.port: n for n in cluster.nodes}
    return lambda slot: next(by_port[m[1]] for start, end, m, *_ in ranges
                             if start <= slot <= end)


def guild_on(owner, node, prefix):
    """A guild id whose channel lives on node."""
    for i in range(10000):
        g = uniq("%s%d-" % (prefix, i))
        if owner(key_slot(guild_ch(g).encode())) is node:
            return g
    raise AssertionError("no guild found for node %d" % node.port)


async def numsub(node, channels):
    def ask():
        with node.client() as c:
            r = c.execute_command("PUBSUB", "SHARDNUMSUB", *channels)
        return {r[i].decode(): r[i + 1] for i in range(0, len(r), 2)}
    return await in_executor(ask)


async def wait_numsub(node, want):
    async def check():
        return await numsub(node, list(want)) == want
    await wait_until(check, T(10), "SHARDNUMSUB %r on %d" % (want, node.port))


async def spublish(cluster, channel, message):
    """SPUBLISH as a backend does: the receivers it reached."""
    return await in_executor(cluster.spublish, channel, json.dumps(message))


async def counters(gws):
    return [{k: s[k] for k in COUNTERS}
            for s in [await broker_stats(gw) for gw in gws]]


def moved(before, after):
    """What moved on each instance, counters that did not left out."""
    return [{k: a[k] - b[k] for k in COUNTERS if a[k] != b[k]}
            for b, a in zip(before, after)]


@pytest.mark.time_limit(90)
async def test_events_follow_the_shards_and_a_master_that_comes_back(
        redis_cluster, gateway_factory):
    cluster = redis_cluster
    gws = [cluster_gateway(gateway_factory, cluster, n) for n in "abc"]
    for gw in gws:
        await wait_shards(gw, "ok")
    a, b, c = gws
    owner = slot_owner(cluster)
    plain = owner(key_slot(CHANNEL.encode()))
    x, y = [n for n in cluster.nodes if n is not plain]
    # g_a on x, held on A; g_bc on y (the master killed below), on B and
    # C; g_c on the plain channel's master, on C.
    g_a, g_bc, g_c = (guild_on(owner, x, "ga"), guild_on(owner, y, "gbc"),
                      guild_on(owner, plain, "gc"))
    a1 = await Client.session(a, uniq("ua"), [g_a])
    b1 = await Client.session(b, uniq("ub"), [g_bc])
    c1 = await Client.session(c, uniq("uc"), [g_bc, g_c])
    everyone = (a1, b1, c1)
    await wait_numsub(x, {guild_ch(g_a): 1})
    await wait_numsub(y, {guild_ch(g_bc): 2})
    await wait_numsub(plain, {guild_ch(g_c): 1, CHANNEL: 3})
    start = await counters(gws)

    # A backend's SPUBLISH on each master reaches the instance of its
    # guild alone; POST /publish entering A reaches B and C through y.
    ev1 = ("message.create", g_a, {"n": 1})
    assert await spublish(cluster, guild_ch(g_a), envelope(ev1)) == 1
    ev2 = ("message.create", g_c, {"n": 2})
    assert await spublish(cluster, guild_ch(g_c), envelope(ev2)) == 1
    ev3 = ("message.create", g_bc, {"n": 3})
    r = await a.apublish(envelope(ev3))
    assert r["scope"] == "cluster", r
    await expect_dispatches(a1, [ev1])
    await expect_dispatches(b1, [ev3])
    await expect_dispatches(c1, [ev2, ev3])
    assert await spublish(cluster, CHANNEL, envelope(MARKER,
                                                     broadcast=True)) == 3
    for cl in everyone:
        await expect_dispatches(cl, [MARKER])
    now = await counters(gws)
    assert moved(start, now) == [
        {"events_redis": 2, "events_redis_guild": 1, "events_redis_plain": 1,
         "events_http": 1},
        {"events_redis": 2, "events_redis_guild": 1, "events_redis_plain": 1},
        {"events_redis": 3, "events_redis_guild": 2, "events_redis_plain": 1},
    ], now

    # The sync cache is read from the master of the key's slot.
    with owner(key_slot(("sync:" + a1.user).encode())).client() as r:
        r.set("sync:" + a1.user, '{"theme": "dark"}')
    await a1.send({"event": "sync_request", "nonce": "s1", "data": {}})
    msg = await a1.recv()
    assert msg == {"seq": 3, "event": "sync-data", "nonce": "s1",
                   "data": {"theme": "dark"}}, msg

    # y dies: every instance says which shard is down; what A publishes
    # for y's slots is lost, counted and logged; x still delivers.
    y.stop()
    for gw in gws:
        await wait_shards(gw, "degraded", down=(address(y),))
    before = await counters(gws)
    r = await a.apublish(envelope(("message.create", g_bc, {"lost": 1})))
    assert r == {"accepted": True, "workers": 2, "scope": "instance"}, r
    shard = next(s for s in (await health(a))["redis_shards"]
                 if s["address"] == address(y))
    assert shard["lost"] == 1, shard
    assert "SPUBLISH on %s lost" % guild_ch(g_bc) in a.stderr_text()
    ev4 = ("message.create", g_a, {"n": 4})
    assert await spublish(cluster, guild_ch(g_a), envelope(ev4)) == 1
    await expect_dispatches(a1, [ev4])
    assert moved(before, await counters(gws))[0] == {
        "events_http": 1, "redis_publish_failures": 1,
        "redis_cluster_lost": 1, "events_redis": 1, "events_redis_guild": 1}

    # y comes back on its port: B and C subscribe there again by
    # themselves, and its slots deliver as before.
    await in_executor(y.start)
    for gw in gws:
        await wait_shards(gw, "ok")
    await wait_numsub(y, {guild_ch(g_bc): 2})
    ev5 = ("message.create", g_bc, {"n": 5})
    assert await spublish(cluster, guild_ch(g_bc), envelope(ev5)) == 2
    ev6 = ("message.create", g_bc, {"n": 6})
    r = await c.apublish(envelope(ev6))
    assert r["scope"] == "cluster", r
    await expect_dispatches(b1, [ev5, ev6])
    await expect_dispatches(c1, [ev5, ev6])
    assert await spublish(cluster, CHANNEL, envelope(MARKER,
                                                     broadcast=True)) == 3
    for cl in everyone:
        await expect_dispatches(cl, [MARKER])


def node_id(node):
    with node.client() as c:
        i = c.execute_command("CLUSTER", "MYID")
    return i.decode() if isinstance(i, bytes) else i


def migrate(cluster, slot, src, dst):
    """Moves an empty slot from src to dst, the way redis-cli --cluster
    reshard does, and tells every node its new master (src last: its
    SUNSUBSCRIBEs go out once the others know)."""
    src_id, dst_id = node_id(src), node_id(dst)
    with dst.client() as c:
        c.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    with src.client() as c:
        c.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    for n in [n for n in cluster.nodes if n is not src] + [src]:
        with n.client() as c:
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


@pytest.mark.time_limit(60)
async def test_a_migrated_slot_is_subscribed_on_its_new_master(
        redis_cluster, gateway_factory):
    cluster = redis_cluster
    gw = cluster_gateway(gateway_factory, cluster, "m")
    await wait_shards(gw, "ok")
    owner = slot_owner(cluster)
    src = cluster.nodes[0]
    dst = cluster.nodes[1]
    g = guild_on(owner, src, "gm")
    cl = await Client.session(gw, uniq("u"), [g])
    await wait_numsub(src, {guild_ch(g): 1})
    before = await broker_stats(gw)

    await in_executor(migrate, cluster, key_slot(guild_ch(g).encode()), src,
                      dst)
    # src let the channel go unasked; gatewayd asked for the map again
    # and subscribed the channel on dst.
    await wait_numsub(dst, {guild_ch(g): 1})
    await wait_numsub(src, {guild_ch(g): 0})
    ev = ("message.create", g, {"moved": True})
    assert await spublish(cluster, guild_ch(g), envelope(ev)) == 1
    await expect_dispatches(cl, [ev])
    after = await broker_stats(gw)
    assert after["redis_cluster_moved"] > before["redis_cluster_moved"]
    assert after["redis_cluster_discoveries"] > \
        before["redis_cluster_discoveries"]
    await wait_shards(gw, "ok")


async def test_presence_and_the_handoff_are_refused_on_a_cluster(tmp_path):
    """Their scripts need one Redis: gatewayd says so and does not start,
    rather than half-serve them."""
    gw = Gateway(BIN, tmp_path, {"redis": {"enabled": True, "cluster": True},
                                 "presence": {"enabled": True}})
    with pytest.raises(RuntimeError) as e:
        gw.start(attempts=1)
    assert "exited with status 1" in str(e.value), e.value
    assert ("presence (presence.enabled) and the drain handoff "
            "(session.handoff) need a single Redis node; set both to false"
            in gw.stderr_text()), gw.stderr_text()


@pytest.mark.time_limit(90)
async def test_identified_means_the_new_guild_is_ssubscribed(
        redis_cluster, gateway_factory):
    """The subscription window on a cluster (README, Targeted channels):
    identified for a guild new to the instance comes once its shard has
    confirmed the SSUBSCRIBE, so an SPUBLISH right after it, and a
    /publish on another instance, arrive. No wait in between; guilds on
    every master."""
    cluster = redis_cluster
    a, b = [cluster_gateway(gateway_factory, cluster, n) for n in "ab"]
    for gw in (a, b):
        await wait_shards(gw, "ok")
    owner = slot_owner(cluster)
    # One open connection per master, so that nothing waits on a connect.
    conns = [node.client() for node in cluster.nodes]
    try:
        for n in range(12):
            node = n % 3
            guild = guild_on(owner, cluster.nodes[node], "new%d-" % n)
            c = await Client.session(a, uniq("u"), [guild])
            ev_r = ("message.create", guild, {"n": n, "via": "redis"})
            ev_b = ("message.create", guild, {"n": n, "via": "b"})
            got = conns[node].execute_command(
                "SPUBLISH", guild_ch(guild), json.dumps(envelope(ev_r)))
            assert got == 1, "round %d: SPUBLISH reached %d" % (n, got)
            r = await b.apublish(envelope(ev_b))
            assert r["scope"] == "cluster", r
            await expect_dispatches(c, [ev_r, ev_b])
            await c.close()
    finally:
        for conn in conns:
            conn.close()
