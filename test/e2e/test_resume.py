"""Resume on the same instance (SPEC 3 item 7, docs/continuity.md): a
session whose connection drops is parked with its recent dispatches, and a
`resume` on a new connection replays what the client missed, in order,
with its original seq, then `resumed`, then live delivery: nothing
missing, nothing twice. And every way a resume is refused."""

import asyncio
import threading
import time

import pytest

from gwtest import (Client, KeepAlivePublisher, T, token_for, uniq,
                    wait_until)


def resume_gateway(gateway_factory, **overrides):
    # Four workers: a resume lands on any of them, and one that does not
    # hold the session hands the connection over.
    sections = {"server": {"workers": 4},
                "session": {"resume_window_ms": 30000}}
    for name, keys in overrides.items():
        sections.setdefault(name, {}).update(keys)
    return gateway_factory(**sections)


async def publish(gw, guild, n, start=0):
    for i in range(start, start + n):
        await gw.apublish({"event": "tick", "guildId": guild,
                           "data": {"i": i}})


async def resume(gw, c, seq, token=None, session=None, **kw):
    """A new connection that resumes c's session from seq (kw: wss://)."""
    r = await Client.connect(gw, **kw)
    await r.ready()
    await r.send({"event": "resume",
                  "data": {"sessionId": session or c.session_id,
                           "token": token or token_for(c.user,
                                                       secret=gw.secret),
                           "seq": seq}})
    return r


async def expect_ticks(c, first_seq, first_i, n):
    for k in range(n):
        msg = await c.recv()
        assert msg.get("event") == "tick", msg
        assert msg["seq"] == first_seq + k, msg
        assert msg["data"] == {"i": first_i + k}, msg


async def expect_invalid(r):
    """invalid_session, then a new ready naming the session to identify."""
    msg = await r.expect("invalid_session")
    assert msg["data"] == {"resumable": False}, msg
    await r.ready()


async def parked(gw, n):
    async def check():
        return (await gw.totals())["parked"] == n
    await wait_until(check, T(5), "%d parked" % n)


async def dropped_after(gw, n):
    """A session in a new guild that received ticks 0..n-1 (seq 1..n),
    then lost its connection without a close frame, and is parked:
    (client, guild)."""
    guild = uniq("g")
    c = await Client.session(gw, uniq("u"), [guild])
    await publish(gw, guild, n)
    await expect_ticks(c, 1, 0, n)
    c.abort()  # the network goes away: no close frame
    await parked(gw, 1)
    return c, guild


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_a_dropped_connection_resumes_with_nothing_lost(gateway_factory):
    gw = resume_gateway(gateway_factory)
    c, guild = await dropped_after(gw, 3)
    await publish(gw, guild, 5, start=3)  # the gap
    r = await resume(gw, c, 3)
    await expect_ticks(r, 4, 3, 5)
    msg = await r.expect("resumed")
    assert msg["data"] == {"sessionId": c.session_id, "replayed": 5}, msg
    await publish(gw, guild, 2, start=8)  # live again, seq goes on
    await expect_ticks(r, 9, 8, 2)
    await r.heartbeat_roundtrip()
    totals = await gw.totals()
    assert totals["resumed"] == 1 and totals["replayed"] == 5, totals
    assert totals["parked"] == 0, totals


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_resume_from_an_older_seq_and_twice(gateway_factory):
    gw = resume_gateway(gateway_factory)
    c, guild = await dropped_after(gw, 4)
    # The client lost the last two it was sent as well: they come again.
    r = await resume(gw, c, 2)
    await expect_ticks(r, 3, 2, 2)
    await r.expect("resumed")
    # A second resume of the live session takes it over; the first
    # connection is closed 4012 and does not park.
    r2 = await resume(gw, c, 4)
    msg = await r2.expect("resumed")
    assert msg["data"]["replayed"] == 0, msg
    await r.expect_close(4012)
    await publish(gw, guild, 1, start=4)
    await expect_ticks(r2, 5, 4, 1)
    assert (await gw.totals())["parked"] == 0


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_resume_while_the_old_connection_lives(gateway_factory):
    gw = resume_gateway(gateway_factory)
    guild = uniq("g")
    c = await Client.session(gw, uniq("u"), [guild])
    await publish(gw, guild, 2)
    await expect_ticks(c, 1, 0, 2)
    r = await resume(gw, c, 1)
    await expect_ticks(r, 2, 1, 1)
    await r.expect("resumed")
    await c.expect_close(4012)
    await publish(gw, guild, 1, start=2)
    await expect_ticks(r, 3, 2, 1)


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_refused_resumes(gateway_factory):
    gw = resume_gateway(gateway_factory)
    c, guild = await dropped_after(gw, 2)

    # Another user's valid token: as if the session did not exist.
    r = await resume(gw, c, 2, token=token_for(uniq("other"),
                                               secret=gw.secret))
    await expect_invalid(r)
    await r.identify(uniq("x"))  # the connection stays usable
    # An unknown session, and one that is not even an id.
    for sid in ("0" * 32, "not-an-id"):
        r = await resume(gw, c, 0, session=sid)
        await expect_invalid(r)
    # A seq ahead of what the session sent closes 4007.
    r = await resume(gw, c, 3)
    await r.expect_close(4007)
    # A forged token fails authentication.
    r = await resume(gw, c, 2, token=token_for(c.user, secret="wrong"))
    await r.expect_close(4004)
    # Fields missing or of the wrong type.
    r = await Client.connect(gw)
    await r.ready()
    await r.send({"event": "resume", "data": {"sessionId": c.session_id,
                                              "seq": "2"}})
    await r.expect_close(4001)
    # None of that touched the session: it still resumes.
    r = await resume(gw, c, 2)
    msg = await r.expect("resumed")
    assert msg["data"]["replayed"] == 0, msg
    totals = await gw.totals()
    assert totals["resume_invalid"] == 3, totals


@pytest.mark.time_limit(60)
async def test_what_does_not_park(gateway_factory):
    gw = resume_gateway(gateway_factory)
    c = await Client.session(gw, uniq("u"))
    await c.close(1000)  # done: the session ends
    d = await Client.session(gw, uniq("u"))
    await d.send_text("not json")  # closed 4002 by the server: ends
    await d.expect_close(4002)
    await asyncio.sleep(T(0.2))
    assert (await gw.totals())["parked"] == 0
    for gone in (c, d):
        r = await resume(gw, gone, 0)
        await expect_invalid(r)
    # A client closing with another code may come back.
    e = await Client.session(gw, uniq("u"))
    await e.close(4000)
    await parked(gw, 1)
    r = await resume(gw, e, 0)
    await r.expect("resumed")


@pytest.mark.time_limit(60)
async def test_the_window_and_the_buffer_bound(gateway_factory):
    gw = resume_gateway(gateway_factory,
                        session={"resume_window_ms": 600, "replay_size": 4})
    guild = uniq("g")
    late = await Client.session(gw, uniq("u"), [guild])
    late.abort()
    full = await Client.session(gw, uniq("u"), [guild])
    full.abort()
    await parked(gw, 2)
    await publish(gw, guild, 5)  # one more than the buffer keeps

    async def overflowed():
        t = await gw.totals()
        return t["resume_overflows"] == 2 and t["parked"] == 0
    await wait_until(overflowed, T(5), "both overflowed and freed")
    r = await resume(gw, full, 0)
    await expect_invalid(r)

    # Within the bound, but past the window.
    slow = await Client.session(gw, uniq("u"), [guild])
    slow.abort()
    await parked(gw, 1)
    await asyncio.sleep(T(1.2))
    r = await resume(gw, slow, 0)
    await expect_invalid(r)
    assert (await gw.totals())["resume_expired"] == 1


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_resumes_across_workers(gateway_factory):
    gw = resume_gateway(gateway_factory)
    guild = uniq("g")
    clients = [await Client.session(gw, uniq("u"), [guild]) for _ in range(8)]
    await publish(gw, guild, 2)
    for c in clients:
        await expect_ticks(c, 1, 0, 2)
        c.abort()
    await parked(gw, 8)
    await publish(gw, guild, 3, start=2)
    resumed = []
    for c in clients:
        r = await resume(gw, c, 2)
        await expect_ticks(r, 3, 2, 3)
        msg = await r.expect("resumed")
        assert msg["data"]["replayed"] == 3, msg
        resumed.append(r)
    await publish(gw, guild, 1, start=5)
    for r in resumed:
        await expect_ticks(r, 6, 5, 1)
        await r.heartbeat_roundtrip()  # the adopting worker reads it
    totals = await gw.totals()
    # Eight resumes over four workers: some landed elsewhere (3/4 of them
    # expected; all eight on the right worker has odds of 1 in 65,536).
    assert totals["resume_handed_over"] >= 1, totals
    assert totals["resumed"] == 8 and totals["parked"] == 0, totals
    assert totals["connections"] == 8, totals


@pytest.mark.time_limit(60)
async def test_resume_takes_the_new_tokens_guild_bound(gateway_factory):
    """The resume's token is the session's from then on: guilds it no
    longer allows are left (guild_unsubscribed after resumed), on the
    worker that held the session and on the one a resume is handed to."""
    gw = resume_gateway(gateway_factory)
    kept, dropped = uniq("g"), uniq("g")
    clients = [await Client.session(gw, uniq("u"), [kept, dropped],
                                    token_guilds=[kept, dropped])
               for _ in range(8)]
    for c in clients:
        c.abort()
    await parked(gw, 8)
    resumed = []
    for c in clients:
        r = await resume(gw, c, 0, token=token_for(c.user, guilds=[kept],
                                                   secret=gw.secret))
        await r.expect("resumed")
        left = await r.expect("guild_unsubscribed")
        assert left["data"] == {"guildId": dropped}, left
        resumed.append(r)
    await publish(gw, dropped, 1)
    await publish(gw, kept, 1, start=1)
    for r in resumed:
        await expect_ticks(r, 1, 1, 1)  # the dropped guild's never came
    totals = await gw.totals()
    assert totals["resume_handed_over"] >= 1, totals
    for r in resumed:
        await r.close()


class SteadyPublisher:
    """Publishes tick i to a guild every `interval` seconds from a thread,
    so that events keep flowing while a client is away."""

    def __init__(self, gw, guild, interval):
        self.pub = KeepAlivePublisher(gw)
        self.guild, self.interval = guild, interval
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        deadline = time.monotonic() + T(120)  # bounded, whatever happens
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.pub.publish({"event": "tick", "guildId": self.guild,
                              "data": {"i": self.sent}})
            self.sent += 1
            self.stop.wait(self.interval)

    def finish(self):
        self.stop.set()
        self.thread.join(T(10))
        self.pub.close()
        return self.sent


async def drop_and_resume_under_flow(gw, away_s):
    """Events flow at about 50/s; the client's TCP connection is reset,
    it comes back after away_s and resumes: every tick arrives once, in
    order, seq contiguous, across both connections."""
    guild = uniq("g")
    c = await Client.session(gw, uniq("u"), [guild])
    flow = SteadyPublisher(gw, guild, 0.02)
    flow.thread.start()
    got = []
    while len(got) < 20:
        got.append(await c.recv())
    c.abort()
    await asyncio.sleep(away_s)  # real time: the window is the server's
    r = await resume(gw, c, got[-1]["seq"])
    while True:
        msg = await r.recv(timeout=10)
        assert msg.get("event") != "invalid_session", msg
        if msg.get("event") == "resumed":
            break
        got.append(msg)
    # Some live ticks after the resume, then the flow stops and the rest
    # arrives.
    while len(got) < 20 + 10:
        got.append(await r.recv(timeout=10))
    sent = await asyncio.get_running_loop().run_in_executor(None, flow.finish)
    while len(got) < sent:
        got.append(await r.recv(timeout=10))
    assert [m["data"]["i"] for m in got] == list(range(sent)), (
        "ticks out of order, missing or twice")
    assert [m["seq"] for m in got] == list(range(1, sent + 1))
    return sent


@pytest.mark.each_transport
@pytest.mark.time_limit(60)
async def test_a_drop_under_steady_flow_loses_nothing(gateway_factory):
    gw = resume_gateway(gateway_factory)
    assert await drop_and_resume_under_flow(gw, 1.0) > 50


@pytest.mark.time_limit(120)
async def test_thirty_seconds_away_under_steady_flow(gateway_factory):
    # About 1,500 ticks arrive while the client is away: the buffer keeps
    # them all.
    gw = resume_gateway(gateway_factory, session={"replay_size": 4096,
                                                  "resume_window_ms": 60000})
    assert await drop_and_resume_under_flow(gw, 30.0) > 1000


@pytest.mark.time_limit(60)
async def test_a_backend_disconnect_ends_a_parked_session(gateway_factory):
    gw = resume_gateway(gateway_factory)
    user = uniq("u")
    c = await Client.session(gw, user)
    c.abort()
    await parked(gw, 1)
    await gw.apublish({"action": "disconnect", "userId": user, "code": 4321,
                       "reason": "account suspended"})
    await parked(gw, 0)
    r = await resume(gw, c, 0)
    await expect_invalid(r)


@pytest.mark.time_limit(60)
async def test_a_session_past_its_buffer_still_resumes(gateway_factory):
    """Its buffer full before it parked (found by gwbench resume): what
    counts is how many arrive while it is away."""
    gw = resume_gateway(gateway_factory, session={"replay_size": 4})
    c, guild = await dropped_after(gw, 6)
    await publish(gw, guild, 4, start=6)  # as many as it keeps
    r = await resume(gw, c, 6)
    await expect_ticks(r, 7, 6, 4)
    msg = await r.expect("resumed")
    assert msg["data"]["replayed"] == 4, msg
    assert (await gw.totals())["resume_overflows"] == 0
