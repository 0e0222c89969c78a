"""Fan-out of published events: guilds, users, broadcast, exclusion, seq.

"Nobody else got it" is checked with a marker published afterwards: events
reach each connection in publish order, so a non-member's next dispatch must
be the marker.
"""

import asyncio
import ctypes
import os
import socket

import pytest

from gwtest import IO_URING, Client, T, check_dispatch, uniq, wait_until

# The main cases of the protocol: run again over wss:// (conftest.py).
pytestmark = pytest.mark.each_transport

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_PIDFD_GETFD = 438  # x86-64 and the generic table alike


async def _expect_sequence(c, expected, first_seq=1):
    """expected: list of (event, guildId or None, data)."""
    for i, (event, guild, data) in enumerate(expected):
        msg = await c.recv()
        assert "seq" in msg, "expected dispatch %r, got %r" % (event, msg)
        assert (msg["event"], msg.get("guildId"), msg["data"]) == \
            (event, guild, data), (
            "session %s (user %s, guilds %s): dispatch #%d should be %r, got %r"
            % (c.session_id, c.user, c.guilds, i + 1, (event, guild, data),
               msg))
        check_dispatch(msg, guild)
        assert msg["seq"] == first_seq + i, (
            "seq %d, expected %d: %r" % (msg["seq"], first_seq + i, msg))


@pytest.mark.time_limit(60)
async def test_guild_events_reach_exactly_their_members_on_every_worker(
        gateway_factory):
    gw = gateway_factory()
    memberships = [["g1"], ["g2"], ["g1", "g2"], []]
    clients = []
    for i in range(40):
        guilds = memberships[i % len(memberships)]
        c = await Client.session(gw, "user%d" % i, guilds)
        assert c.guilds == guilds
        clients.append(c)

    def spread():
        stats = gw.get_json("/stats")
        per = [w["sessions"] for w in stats["workers"]]
        return len(per) == 4 and min(per) >= 1 and sum(per) == 40 and per
    await wait_until(spread, T(5), "40 sessions spread over all 4 workers "
                     "(GET /stats workers[].sessions)")

    events = [("message.create", "g1", {"n": 1}),
              ("message.update", "g2", {"n": 2}),
              ("message.delete", "g1", {"n": 3, "nested": {"a": [1, 2]}})]
    for event, guild, data in events:
        r = await gw.apublish({"event": event, "guildId": guild, "data": data})
        assert isinstance(r.get("workers"), int) and 0 <= r["workers"] <= 4, r
    r = await gw.apublish({"event": "marker", "broadcast": True,
                           "data": {"end": True}})
    assert r["workers"] == 4, "broadcast handed to %r of 4 workers" % r

    async def check(c):
        want = [e for e in events if e[1] in c.guilds]
        want.append(("marker", None, {"end": True}))
        await _expect_sequence(c, want)
    await asyncio.gather(*(check(c) for c in clients))


async def test_seq_counts_each_sessions_dispatches(gw):
    guild = uniq("g")
    a = await Client.session(gw, guilds=[guild])
    b = await Client.session(gw, guilds=[guild])
    data = [{"i": 1, "s": "caf\u00e9 \"quoted\" \\ /", "u": "\U0001F600"},
            {"i": 2, "t": True, "f": False, "n": None, "x": -1.5},
            {"i": 3, "list": [1, "two", {"three": 3}], "empty": {}}]
    for d in data:
        await gw.apublish({"event": "message.create", "guildId": guild,
                           "data": d})
    for c in (a, b):
        await _expect_sequence(c, [("message.create", guild, d) for d in data])
    # b alone gets a user event; its seq moves on, a's does not.
    await gw.apublish({"event": "user.update", "userId": b.user, "data": {}})
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"i": 4}})
    await _expect_sequence(a, [("message.create", guild, {"i": 4})], 4)
    await _expect_sequence(b, [("user.update", None, {}),
                               ("message.create", guild, {"i": 4})], 4)


async def test_many_events_arrive_in_order(gw):
    guild = uniq("g")
    clients = [await Client.session(gw, guilds=[guild]) for _ in range(8)]
    n = 200
    for i in range(n):
        await gw.apublish({"event": "typing.start", "guildId": guild,
                           "data": {"i": i}})
    want = [("typing.start", guild, {"i": i}) for i in range(n)]
    await asyncio.gather(*(_expect_sequence(c, want) for c in clients))


async def test_user_events_reach_every_session_of_the_user_only(gw):
    ua, ub, uc = uniq("ua"), uniq("ub"), uniq("uc")
    a1 = await Client.session(gw, ua, ["shared"])
    a2 = await Client.session(gw, ua, [])
    b = await Client.session(gw, ub, ["shared"])
    c = await Client.session(gw, uc, ["shared"])
    await gw.apublish({"event": "presence.update", "userId": ua,
                       "data": {"to": "a"}})
    await gw.apublish({"event": "user.update", "userIds": [ua, ub],
                       "data": {"to": "ab"}})
    await gw.apublish({"event": "marker", "userIds": [ua, ub, uc],
                       "data": {}})
    ev_a = ("presence.update", None, {"to": "a"})
    ev_ab = ("user.update", None, {"to": "ab"})
    mark = ("marker", None, {})
    await _expect_sequence(a1, [ev_a, ev_ab, mark])
    await _expect_sequence(a2, [ev_a, ev_ab, mark])
    await _expect_sequence(b, [ev_ab, mark])
    await _expect_sequence(c, [mark])


async def test_user_ids_with_unknown_and_repeated_users(gw):
    ua = uniq("ua")
    a = await Client.session(gw, ua, [])
    await gw.apublish({"event": "user.update",
                       "userIds": [uniq("nobody"), ua, ua], "data": {"k": 1}})
    await gw.apublish({"event": "marker", "userId": ua, "data": {}})
    # Listed twice, delivered once.
    await _expect_sequence(a, [("user.update", None, {"k": 1}),
                               ("marker", None, {})])


async def test_broadcast_reaches_everyone(gw):
    clients = [await Client.session(gw, guilds=[uniq("g")] if i % 2 else [])
               for i in range(12)]
    tag = uniq("b")
    r = await gw.apublish({"event": "announcement", "broadcast": True,
                           "data": {"tag": tag}})
    assert isinstance(r.get("workers"), int) and 1 <= r["workers"] <= 4, r

    async def check(c):
        # Other tests' broadcasts may not interleave (tests run one at a
        # time), so the next dispatch is ours.
        msg = await c.recv()
        assert msg.get("event") == "announcement", msg
        assert msg["data"] == {"tag": tag}, msg
        check_dispatch(msg, None)
    await asyncio.gather(*(check(c) for c in clients))


def _write_path(gw):
    """The write path the gateway said it took at start (server.io_uring)."""
    log = gw.stderr_text()
    said = ["io_uring" if "write path: io_uring" in log else
            "sendmsg" if "write path: sendmsg" in log else None]
    assert said[0] is not None, "no 'write path:' line at start:\n" + \
        gw.tail()
    if IO_URING == "on":
        assert said[0] == "io_uring", "asked for io_uring: " + gw.tail()
    if IO_URING == "off":
        assert said[0] == "sendmsg", "asked for sendmsg: " + gw.tail()
    return said[0]


async def test_write_path_is_the_one_asked(gw):
    """The counters show which path wrote the fan-out: io_uring's sends, one
    per connection, several to a submission (one per worker and turn); or
    none at all on the sendmsg path. Over wss:// the records take the same
    path as plain output."""
    path = _write_path(gw)
    clients = [await Client.session(gw, guilds=[]) for _ in range(16)]
    before = await gw.totals()
    tag = uniq("w")
    await gw.apublish({"event": "path", "broadcast": True,
                       "data": {"tag": tag}})
    for c in clients:
        msg = await c.recv()
        assert (msg.get("event"), msg.get("data")) == ("path", {"tag": tag})
    after = await gw.totals()
    sends = after["uring_sends"] - before["uring_sends"]
    submits = after["uring_submits"] - before["uring_submits"]
    assert after["bytes_out"] - before["bytes_out"] >= 16 * 30, (before, after)
    if path == "sendmsg":
        assert (sends, submits, after["uring_sends"]) == (0, 0, 0), after
        return
    assert sends >= 16, "16 deliveries, %d io_uring sends" % sends
    assert 1 <= submits < sends, (
        "%d sends in %d submissions: not batched" % (sends, submits))


async def test_exclude_session_id(gw):
    user, guild = uniq("u"), uniq("g")
    s1 = await Client.session(gw, user, [guild])
    s2 = await Client.session(gw, user, [guild])
    other = await Client.session(gw, guilds=[guild])
    await gw.apublish({"event": "typing.start", "guildId": guild,
                       "data": {"k": "guild"}, "excludeSessionId": s1.session_id})
    await gw.apublish({"event": "user.update", "userId": user,
                       "data": {"k": "user"}, "excludeSessionId": s2.session_id})
    await gw.apublish({"event": "marker", "guildId": guild, "data": {},
                       "excludeSessionId": "0" * 32})
    g_ev = ("typing.start", guild, {"k": "guild"})
    u_ev = ("user.update", None, {"k": "user"})
    mark = ("marker", guild, {})
    await _expect_sequence(s1, [u_ev, mark])
    await _expect_sequence(s2, [g_ev, mark])
    await _expect_sequence(other, [g_ev, mark])


async def test_subscribe_then_receive_unsubscribe_then_not(gw):
    guild, home = uniq("g"), uniq("home")
    c = await Client.session(gw, guilds=[home])
    await c.subscribe(guild)
    await gw.apublish({"event": "guild.update", "guildId": guild,
                       "data": {"n": 1}})
    await _expect_sequence(c, [("guild.update", guild, {"n": 1})])
    await c.unsubscribe(guild)
    await c.unsubscribe(guild)  # idempotent
    await c.unsubscribe(uniq("never"))  # never joined: still answered
    await gw.apublish({"event": "guild.update", "guildId": guild,
                       "data": {"n": 2}})
    await gw.apublish({"event": "marker", "guildId": home, "data": {}})
    await _expect_sequence(c, [("marker", home, {})], 2)
    # Subscribing twice joins once.
    await c.subscribe(guild)
    await c.subscribe(guild)
    await gw.apublish({"event": "guild.update", "guildId": guild,
                       "data": {"n": 3}})
    await gw.apublish({"event": "marker", "guildId": home, "data": {}})
    await _expect_sequence(c, [("guild.update", guild, {"n": 3}),
                               ("marker", home, {})], 3)


async def test_identify_guilds_are_unsubscribable(gw):
    g1, g2 = uniq("g"), uniq("g")
    c = await Client.session(gw, guilds=[g1, g2])
    await c.unsubscribe(g1)
    await gw.apublish({"event": "message.create", "guildId": g1, "data": {}})
    await gw.apublish({"event": "marker", "guildId": g2, "data": {}})
    await _expect_sequence(c, [("marker", g2, {})])


async def test_any_event_name_is_forwarded(gw):
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    names = ["sync-data", "exp.updated", "achievement.unlocked",
             "voice.server.update", "custom_" + uniq("evt")]
    for name in names:
        await gw.apublish({"event": name, "guildId": guild, "data": {}})
    await _expect_sequence(c, [(n, guild, {}) for n in names])


async def test_publish_to_guild_without_members(gw):
    r = await gw.apublish({"event": "message.create", "guildId": uniq("empty"),
                           "data": {}})
    assert isinstance(r.get("workers"), int) and 0 <= r["workers"] <= 4, r
    r = await gw.apublish({"event": "user.update", "userId": uniq("nobody"),
                           "data": {}})
    assert isinstance(r.get("workers"), int), r


async def test_disconnected_members_do_not_break_fanout(gw):
    guild = uniq("g")
    stay = [await Client.session(gw, guilds=[guild]) for _ in range(4)]
    gone = [await Client.session(gw, guilds=[guild]) for _ in range(8)]
    for i, c in enumerate(gone):
        if i % 2:
            await c.close()
        else:
            c.abort()  # vanish without a close frame
    for i in range(5):
        await gw.apublish({"event": "message.create", "guildId": guild,
                           "data": {"i": i}})
    want = [("message.create", guild, {"i": i}) for i in range(5)]
    await asyncio.gather(*(_expect_sequence(c, want) for c in stay))


def _server_socket_of(pid, client_addr):
    """The gateway's end of a client's connection, duplicated into this
    process (pidfd_getfd: we may, as the gateway's parent), or None."""
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)) \
                        .startswith("socket:"):
                    continue
            except OSError:  # closed meanwhile
                continue
            fd = _libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_STREAM and \
                        s.getpeername() == client_addr:
                    return s
            except OSError:  # a listening or unconnected socket
                pass
            s.close()
        return None
    finally:
        os.close(pidfd)


async def test_accepted_sockets_have_nagle_off(gw):
    """A frame goes out when it is written: the sockets the gateway
    accepted (plain or TLS) have TCP_NODELAY, which they inherit from the
    listener, with no setsockopt of their own."""
    c = await Client.session(gw, uniq("u"), [])
    s = _server_socket_of(gw.proc.pid,
                          c.ws.transport.get_extra_info("sockname"))
    assert s is not None, "no socket of the gateway is this client's peer"
    with s:
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    await c.close()
