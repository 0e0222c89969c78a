"""Keyed RabbitMQ bindings (amqp.routing = "targeted", README "RabbitMQ:
keyed bindings"): each instance binds its queue to the routing keys of the
guilds, users and sessions it holds, so that an event reaches the instances
of its recipients and no other. What each instance received is read from its
/stats; what RabbitMQ has bound, from the node itself (rabbitmqctl
list_bindings).

Each test publishes to an exchange of its own, so that a broadcast of one
test never reaches the queues another left behind. "Nothing else arrived"
is proved as in test_amqp.py: a broadcast marker published last must be
each client's next dispatch.
"""

import asyncio
import json
import os

import pytest

from gwtest import Client, Gateway, T, uniq, wait_until
from rabbitserver import rabbit_fixture  # noqa: F401 (fixture)
from test_amqp import expect_dispatches, health, in_thread, wait_link

BIN = os.path.abspath(os.environ.get("GATEWAYD_BIN", "./gatewayd"))
MARKER = ("marker", None, {"end": True})
COUNTERS = ("events_amqp", "dead_lettered", "amqp_key_mismatches")


def targeted(rabbit, exchange, instance, linger_ms=3000, **amqp):
    """Overrides for an instance of two workers whose queue follows its
    targets; the linger is redis.unsubscribe_linger_ms, shared by both
    links' targets (Redis itself stays off)."""
    conf = {"enabled": True, "port": rabbit.port, "exchange": exchange,
            "routing": "targeted"}
    conf.update(amqp)
    return {"amqp": conf, "server": {"workers": 2},
            "redis": {"unsubscribe_linger_ms": linger_ms},
            "broker": {"instance_id": instance, "reconnect_min_ms": 50,
                       "reconnect_max_ms": 300}}


def envelope(ev, **target):
    """The envelope of (event, guildId or None, data); guildId targets it
    when set, else `target` does."""
    env = {"event": ev[0], "data": ev[2]}
    if ev[1] is not None:
        env["guildId"] = ev[1]
    env.update(target)
    return env


def publish_keyed(rabbit, exchange, messages):
    """Publishes each (routing key, envelope) in order, confirmed."""
    conn = rabbit.connection()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for key, env in messages:
            ch.basic_publish(exchange, key, json.dumps(env).encode())
    finally:
        conn.close()


def stats(gw):
    return gw.get_json("/stats")["broker"]


async def settled(gw, wanted, timeout=10, since=None):
    """Until every binding change is answered and `wanted` targets are
    bound on the connection that was up `since` (stats taken while it was
    the link's; the first by default); the broker stats then."""
    def check():
        s = stats(gw)
        bound = s["amqp_binds"] - s["amqp_unbinds"]
        if since is not None:
            bound -= since["amqp_binds"] - since["amqp_unbinds"]
        return s if s["amqp_bind_pending"] == 0 and bound == wanted else None
    return await wait_until(check, T(timeout), "the bindings of %s to settle"
                            % gw.config_path)


async def patterns(rabbit, exchange, instance):
    """What RabbitMQ has bound for the instance: {generation exchange:
    {patterns from `exchange`}}, and its queue's other bindings."""
    queue = "gatewayd." + instance
    gens, direct = {}, set()
    for src, dst, kind, key in await in_thread(rabbit.bindings):
        if kind == "exchange" and dst.startswith(queue + ".targets.") \
                and src == exchange:
            gens.setdefault(dst, set()).add(key)
        elif kind == "queue" and dst == queue:
            direct.add((src, key))
    return gens, direct


def own(c):
    """The patterns of a session's own targets: its user and itself."""
    return {"user.%s.#" % c.user, "session.%s.#" % c.session_id}


def moved(before, after):
    return [{k: a[k] - b[k] for k in COUNTERS if a[k] != b[k]}
            for b, a in zip(before, after)]


@pytest.mark.time_limit(60)
async def test_events_reach_only_the_instances_of_their_targets(
        gateway_factory, rabbit):
    ex, names = uniq("ev"), [uniq("gw-" + n) for n in "abc"]
    a, b, c = [gateway_factory(**targeted(rabbit, ex, n)) for n in names]
    for gw in (a, b, c):
        await wait_link(gw, "up")
    g_a, g_ac, g_dot = uniq("ga"), uniq("gac"), uniq("g") + ".x*#%"
    u_a, u_ac = uniq("ua"), uniq("uac")
    a1 = await Client.session(a, u_a, [g_a, g_ac, g_dot])
    a2 = await Client.session(a, u_ac, [])
    c1 = await Client.session(c, u_ac, [g_ac])
    c2 = await Client.session(c, uniq("uc"), [g_ac])
    b1 = await Client.session(b, uniq("ub"), [uniq("gb")])
    everyone = (a1, a2, c1, c2, b1)
    start = [await settled(gw, n) for gw, n in ((a, 7), (b, 3), (c, 5))]
    gens, direct = await patterns(rabbit, ex, names[0])
    dot = g_dot.replace("%", "%25").replace(".", "%2E").replace(
        "*", "%2A").replace("#", "%23")
    gen = "gatewayd.%s.targets.0" % names[0]
    assert gens == {gen: {
        "broadcast.#", "guild.%s.#" % g_a, "guild.%s.#" % g_ac,
        "guild.%s.#" % dot} | own(a1) | own(a2)}, gens
    assert direct == {(gen, "")}, direct

    ev = [("message.create", g_a, {"n": 1}),
          ("message.create", g_ac, {"n": 2}),
          ("user.update", None, {"n": 3}),
          ("chat.reply", None, {"n": 4}),
          ("message.create", g_dot, {"n": 5})]
    await in_thread(publish_keyed, rabbit, ex, [
        ("guild." + g_a, envelope(ev[0])),
        ("guild.%s.message.create" % g_ac, envelope(ev[1])),
        ("user." + u_ac, envelope(ev[2], userId=u_ac)),
        ("session.%s.reply" % a1.session_id,
         envelope(ev[3], sessionId=a1.session_id)),
        ("guild." + dot, envelope(ev[4])),
        # For a guild, on a user's key: A dead-letters it.
        ("user." + u_a, envelope(("wrong", g_a, {}))),
        ("broadcast.marker", envelope(MARKER, broadcast=True)),
    ])
    await expect_dispatches(a1, [ev[0], ev[1], ev[3], ev[4], MARKER])
    await expect_dispatches(a2, [ev[2], MARKER])
    await expect_dispatches(c1, [ev[1], ev[2], MARKER])
    await expect_dispatches(c2, [ev[1], MARKER])
    await expect_dispatches(b1, [MARKER])
    end = [stats(gw) for gw in (a, b, c)]
    assert moved(start, end) == [
        {"events_amqp": 6, "dead_lettered": 1, "amqp_key_mismatches": 1},
        {"events_amqp": 1},
        {"events_amqp": 3},
    ], end
    assert "not for the user its channel names" in a.stderr_text()
    for cl in everyone:
        await cl.heartbeat_roundtrip()


@pytest.mark.time_limit(40)
async def test_bindings_follow_sessions_with_a_linger(gateway_factory, rabbit):
    ex, inst, linger = uniq("ev"), uniq("gw-l"), T(1)
    # An exclusive queue: its generation is auto-deleted with it.
    gw = gateway_factory(**targeted(rabbit, ex, inst, durable=False,
                                    linger_ms=int(linger * 1000)))
    await wait_link(gw, "up")
    gen = "gatewayd.%s.targets.0" % inst
    g, h = uniq("g"), uniq("h")
    c = await Client.session(gw, uniq("u"), [g])
    await settled(gw, 3)
    assert (await patterns(rabbit, ex, inst))[0] == {
        gen: {"broadcast.#", "guild.%s.#" % g} | own(c)}
    await c.subscribe(h)
    before = await settled(gw, 4)

    # Left, then back inside the linger: nothing unbound or bound again.
    await c.unsubscribe(h)
    await wait_until(lambda: stats(gw)["targets_lingering"] == 1, T(5),
                     "h lingering")
    await c.subscribe(h)
    await wait_until(lambda: stats(gw)["targets_lingering"] == 0, T(5),
                     "h held again")
    after = await settled(gw, 4)
    for k in ("amqp_binds", "amqp_unbinds"):
        assert after[k] == before[k], (k, before, after)

    # Left for good: unbound once the linger is over, not before.
    left = asyncio.get_running_loop().time()
    await c.unsubscribe(h)
    await settled(gw, 3, timeout=10)
    assert asyncio.get_running_loop().time() - left >= 0.9 * linger

    # The session ends: its key goes at once, its user's and guild's after
    # the linger.
    await c.close()
    await settled(gw, 2)
    await settled(gw, 0, timeout=10)
    end = stats(gw)
    assert end["targets_wanted"] == 0 and end["amqp_bind_failures"] == 0, end
    assert (await patterns(rabbit, ex, inst))[0] == {gen: {"broadcast.#"}}


@pytest.mark.time_limit(40)
async def test_refusals_are_counted_and_the_link_goes_on(gateway_factory,
                                                          rabbit):
    ex, inst = uniq("ev"), uniq("gw-r")
    gw = gateway_factory(**targeted(rabbit, ex, inst))
    await wait_link(gw, "up")
    c = await Client.session(gw, uniq("u"), [])
    await settled(gw, 2)

    # A guild id of 100 dots is 300 bytes escaped: no pattern for it.
    await c.subscribe("." * 100)
    await wait_until(lambda: stats(gw)["amqp_bind_failures"] == 1, T(5),
                     "the long pattern counted")
    assert "pattern would pass 255 bytes" in gw.stderr_text()

    # Without its source exchange RabbitMQ refuses a bind (404) by closing
    # the binding channel; it opens again and the next bind goes through.
    def delete_exchange(declare):
        conn = rabbit.connection()
        try:
            ch = conn.channel()
            if declare:
                ch.exchange_declare(ex, "topic", durable=True)
            else:
                ch.exchange_delete(ex)
        finally:
            conn.close()
    await in_thread(delete_exchange, False)
    g1, g2 = uniq("g"), uniq("g")
    await c.subscribe(g1)
    await wait_until(lambda: stats(gw)["amqp_bind_failures"] == 2, T(5),
                     "the refused bind counted")
    assert "RabbitMQ refused to bind guild.%s.#" % g1 in gw.stderr_text()
    await in_thread(delete_exchange, True)
    await c.subscribe(g2)
    s = await settled(gw, 3)  # the refused one is not bound
    assert s["amqp_bind_pending"] == 0
    ev = ("message.create", g2, {"n": 1})
    await in_thread(publish_keyed, rabbit, ex, [("guild." + g2, envelope(ev))])
    await expect_dispatches(c, [ev])
    assert health(gw) == ("ok", "up")
    assert "link down" not in gw.stderr_text()


def standalone(tmp_path, name, conf):
    workdir = tmp_path / name
    workdir.mkdir()
    return Gateway(BIN, str(workdir), conf).start()


async def run_once(tmp_path, name, conf, guilds, wanted):
    """Runs an instance until a session holding `guilds` is bound, and
    stops it: its durable queue and bindings stay."""
    gw = standalone(tmp_path, name, conf)
    try:
        await wait_link(gw, "up")
        if guilds:
            await Client.session(gw, uniq("u"), guilds)
        if wanted is not None:
            await settled(gw, wanted)
    finally:
        problems = gw.stop()
    assert not problems, "gatewayd: %s\n%s" % ("; ".join(problems), gw.tail())


@pytest.mark.time_limit(60)
async def test_a_new_run_removes_what_the_last_one_bound(rabbit, tmp_path):
    ex, inst = uniq("ev"), uniq("gw-s")
    queue = "gatewayd." + inst
    g = uniq("g")
    # A run with amqp.routing = "all" bound the queue with "#".
    all_conf = targeted(rabbit, ex, inst, routing="all", binding_keys="#")
    await run_once(tmp_path, "all", all_conf, [], None)
    assert (await patterns(rabbit, ex, inst))[1] == {(ex, "#")}
    # A targeted run unbinds it and binds its guild through generation 0;
    # the queue keeps it while nobody runs.
    await run_once(tmp_path, "first", targeted(rabbit, ex, inst), [g], 3)
    gens, direct = await patterns(rabbit, ex, inst)
    assert direct == {(queue + ".targets.0", "")}, direct
    assert "guild.%s.#" % g in gens[queue + ".targets.0"], gens
    # The next run builds generation 1 and deletes 0 with its stale keys.
    gw = standalone(tmp_path, "second", targeted(rabbit, ex, inst))
    try:
        await wait_link(gw, "up")

        async def rebuilt():
            return await patterns(rabbit, ex, inst) == (
                {queue + ".targets.1": {"broadcast.#"}},
                {(queue + ".targets.1", "")})
        await wait_until(rebuilt, T(10), "generation 1 alone")
        assert "replacing %s.targets.0" % queue in gw.stderr_text()
    finally:
        problems = gw.stop()
    assert not problems, problems


# Last: it restarts the module's RabbitMQ node.
@pytest.mark.time_limit(90)
async def test_a_rabbitmq_restart_rebinds_everything(gateway_factory, rabbit):
    ex, inst = uniq("ev"), uniq("gw-c")
    queue = "gatewayd." + inst
    gw = gateway_factory(**targeted(rabbit, ex, inst, linger_ms=200))
    await wait_link(gw, "up")
    g1, g2, g3 = uniq("g1"), uniq("g2"), uniq("g3")
    c1 = await Client.session(gw, uniq("u"), [g1])
    c2 = await Client.session(gw, uniq("u"), [g2])
    await settled(gw, 6)

    await in_thread(rabbit.stop)
    await wait_link(gw, "down")
    down = stats(gw)
    # While RabbitMQ is away: g2's session leaves, g3's arrives.
    await c2.close()
    c3 = await Client.session(gw, uniq("u"), [g3])
    await wait_until(lambda: stats(gw)["targets_wanted"] == 6, T(5),
                     "g2's targets gone, g3's wanted")
    await in_thread(rabbit.start)
    await wait_link(gw, "up")
    await settled(gw, 6, since=down)

    # The durable bindings survived the restart; the new connection built
    # generation 1 from what is wanted now, and deleted 0 with g2's keys.
    async def rebuilt():
        return await patterns(rabbit, ex, inst) == (
            {queue + ".targets.1": {"broadcast.#", "guild.%s.#" % g1,
                                    "guild.%s.#" % g3} | own(c1) | own(c3)},
            {(queue + ".targets.1", "")})
    await wait_until(rebuilt, T(10), "generation 1 with what is wanted")
    ev = ("message.create", g3, {"n": 1})
    await in_thread(publish_keyed, rabbit, ex, [
        ("guild." + g2, envelope(("gone", g2, {}))),
        ("guild." + g3, envelope(ev)),
        ("broadcast", envelope(MARKER, broadcast=True))])
    await expect_dispatches(c3, [ev, MARKER])
    await expect_dispatches(c1, [MARKER])
    assert stats(gw)["amqp_bind_failures"] == 0


@pytest.mark.time_limit(90)
async def test_identified_means_the_new_guild_is_bound(gateway_factory,
                                                      rabbit):
    """The subscription window with keyed bindings (README, Targeted
    channels): identified and guild_subscribed for a guild new to the
    instance come once RabbitMQ answered its exchange.bind, so that what
    a backend publishes with the guild's key right after arrives. No wait
    in between; a guild with special bytes among them."""
    ex = uniq("win")
    gw = gateway_factory(**targeted(rabbit, ex, uniq("gw-w")))
    await wait_link(gw, "up")
    conn = await in_thread(rabbit.connection)
    ch = conn.channel()
    ch.confirm_delivery()
    later = await Client.session(gw, uniq("u"), [])
    try:
        for n in range(12):
            guild = uniq("new%d-" % n) + (".x*#%" if n == 5 else "")
            c = await Client.session(gw, uniq("u"), [guild])
            await later.subscribe(guild + "-l")
            key = guild.replace("%", "%25").replace(".", "%2E").replace(
                "*", "%2A").replace("#", "%23")
            evs = [("message.create", guild, {"n": n}),
                   ("message.create", guild + "-l", {"n": n})]
            for k, ev in zip((key, key + "-l"), evs):
                ch.basic_publish(ex, "guild.%s.message" % k,
                                 json.dumps(envelope(ev)).encode())
            await expect_dispatches(c, [evs[0]])
            msg = await later.recv()
            assert (msg["event"], msg["guildId"], msg["data"], msg["seq"]) \
                == evs[1] + (n + 1,), msg
            await c.close()
    finally:
        conn.close()
