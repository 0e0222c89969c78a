"""Configured limits: message size, events per session, guilds per session,
handshake size and time, connections per address, and the per-connection
write ring (slow consumers)."""

import asyncio
import socket
import struct
import threading
import time

import pytest
import websockets

from gwtest import (Client, KeepAlivePublisher, RawConn, T, socket_from,
                    uniq, wait_until)


# -- events per session (4008) -----------------------------------------------

HEARTBEAT = {"event": "heartbeat", "data": {}}


async def test_event_flood_is_closed_4008(gateway_factory):
    """SPEC 5: a token bucket per session. A flood past it is closed 4008
    with a log line; a session sending below the rate for longer than its
    burst lasts, and a bystander, are untouched."""
    gw = gateway_factory(session={"event_rate": 5, "event_burst": 10})
    bystander = await Client.session(gw, guilds=["g1"])
    steady = await Client.session(gw, guilds=["g1"])
    flood = await Client.session(gw, guilds=["g1"])

    async def keep_steady():
        # 14 events at 4 a second: more than the 9 tokens identify left.
        for _ in range(14):
            await steady.heartbeat_roundtrip()
            await asyncio.sleep(0.25)

    async def flood_it():
        # Far more than the bucket refills in the time the daemon takes to
        # read them, even under a sanitizer; the close may come mid-way.
        try:
            for _ in range(100):
                await flood.send(HEARTBEAT)
        except websockets.ConnectionClosed:
            pass
        await flood.expect_close(4008, allow=("heartbeat_ack",))

    await asyncio.gather(keep_steady(), flood_it())
    await bystander.heartbeat_roundtrip()
    await gw.apublish({"event": "message.create", "guildId": "g1",
                       "data": {"n": 1}})
    for c in (bystander, steady):
        await c.expect_dispatch("message.create", "g1")
    assert (await gw.totals())["rate_limited_closes"] == 1
    assert "closed 4008" in gw.stderr_text(), gw.tail()


async def test_event_limit_zero_is_off(gateway_factory):
    gw = gateway_factory(session={"event_rate": 0, "event_burst": 1})
    c = await Client.session(gw, guilds=["g1"])
    for _ in range(50):
        await c.send(HEARTBEAT)
    for _ in range(50):
        await c.expect("heartbeat_ack")
    assert (await gw.totals())["rate_limited_closes"] == 0


# -- message size (1009) ---------------------------------------------------

@pytest.fixture
def small_gw(gateway_factory):
    return gateway_factory(websocket={"max_message_size": 1024})


def _heartbeat_of_size(n):
    """A valid heartbeat envelope exactly n bytes long."""
    head, tail = '{"event":"heartbeat","data":{"pad":"', '"}}'
    text = head + "x" * (n - len(head) - len(tail)) + tail
    assert len(text) == n
    return text


async def test_message_over_limit_closes_1009(small_gw):
    c = await Client.session(small_gw)
    await c.send_text(_heartbeat_of_size(2000))
    await c.expect_close(1009)


async def test_message_at_limit_is_accepted(small_gw):
    c = await Client.session(small_gw)
    await c.send_text(_heartbeat_of_size(1024))
    await c.expect("heartbeat_ack")
    await c.send_text(_heartbeat_of_size(1025))
    await c.expect_close(1009)


async def test_fragmented_message_over_limit_closes_1009(small_gw):
    c = await Client.session(small_gw)
    text = _heartbeat_of_size(1800)
    pieces = [text[i:i + 600] for i in range(0, len(text), 600)]
    await asyncio.wait_for(c.ws.send(pieces), T(5))
    await c.expect_close(1009)


async def test_huge_frame_header_closes_1009(small_gw):
    # A frame announcing 1 GiB: refused from the header alone, without the
    # server buffering (or waiting for) the payload.
    r = await RawConn.open(small_gw.ws_port)
    await r.handshake(small_gw.ws_port)
    assert (await r.read_json())["event"] == "ready"
    await r.send(struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 30) + b"\0" * 4)
    await r.expect_close(1009)


async def test_fragments_within_limit_are_reassembled(small_gw):
    c = await Client.session(small_gw)
    text = _heartbeat_of_size(1000)
    await asyncio.wait_for(c.ws.send([text[i:i + 100]
                                      for i in range(0, 1000, 100)]), T(5))
    await c.expect("heartbeat_ack")


# -- guilds per session ------------------------------------------------------

async def test_guilds_per_session_limit(gateway_factory):
    gw = gateway_factory(session={"max_guilds_per_session": 3})
    c = await Client.session(gw, guilds=["g1", "g2"])
    await c.subscribe("g3")
    await c.send({"event": "guild_subscribe", "data": {"guildId": "g4"}})
    await c.expect_error("limit_exceeded")
    # Still usable, and leaving a guild makes room.
    await c.unsubscribe("g1")
    await c.subscribe("g4")
    await gw.apublish({"event": "message.create", "guildId": "g4", "data": {}})
    msg = await c.expect_dispatch("message.create", "g4")
    assert msg["seq"] == 1


async def test_identify_beyond_guild_limit_joins_at_most_the_limit(
        gateway_factory):
    gw = gateway_factory(session={"max_guilds_per_session": 3})
    c = await Client.connect(gw)
    await c.ready()
    await c.send_identify(uniq("u"), ["g1", "g2", "g3", "g4", "g5"])
    msg = await c.recv()
    # Either the extra guilds are left out, or the request is refused; the
    # session never holds more than the limit.
    if msg["event"] == "identified":
        assert msg["data"]["guildIds"] == ["g1", "g2", "g3"], msg
    else:
        assert msg["event"] == "error" and \
            msg["data"]["code"] == "limit_exceeded", msg


# -- the upgrade request -----------------------------------------------------

async def _rejected(gw, request, want_status):
    r = await RawConn.open(gw.ws_port)
    await r.send(request)
    status, headers = await r.read_http_response()
    assert status == want_status, "expected HTTP %d, got %d %r" % (
        want_status, status, headers)
    await r.wait_closed(T(5))
    return headers


async def test_wrong_websocket_version_is_426(gw):
    for version in ("8", "12", "14", "abc"):
        req = RawConn.upgrade_request(
            gw.ws_port, headers={"Sec-WebSocket-Version": version})
        headers = await _rejected(gw, req, 426)
        assert headers.get("sec-websocket-version") == "13", headers


async def test_missing_version_is_rejected(gw):
    r = await RawConn.open(gw.ws_port)
    await r.send(RawConn.upgrade_request(
        gw.ws_port, headers={"Sec-WebSocket-Version": None}))
    status, _ = await r.read_http_response()
    assert status in (400, 426), status


@pytest.mark.parametrize("headers", [
    {"Sec-WebSocket-Key": None},
    {"Sec-WebSocket-Key": ""},
    {"Sec-WebSocket-Key": "dG9vIHNob3J0"},  # decodes to 9 bytes, not 16
], ids=["missing", "empty", "short"])
async def test_bad_key_is_400(gw, headers):
    await _rejected(gw, RawConn.upgrade_request(gw.ws_port, headers=headers),
                    400)


async def test_upgrade_without_host_is_400(gw):
    # RFC 7230 5.4, RFC 6455 4.1: an HTTP/1.1 request has exactly one Host.
    await _rejected(gw, RawConn.upgrade_request(
        gw.ws_port, headers={"Host": None}), 400)
    req = RawConn.upgrade_request(gw.ws_port)
    req = req[:-2] + b"Host: other.example\r\n\r\n"
    await _rejected(gw, req, 400)


async def test_not_an_upgrade_is_rejected(gw):
    r = await RawConn.open(gw.ws_port)
    await r.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _ = await r.read_http_response()
    assert status in (400, 426), status


async def test_garbage_instead_of_http_is_400(gw):
    r = await RawConn.open(gw.ws_port)
    await r.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64
                 + b"\r\n\r\n")
    data = await r.wait_closed(T(5))
    assert data == b"" or data.startswith(b"HTTP/1.1 400"), data[:100]


async def test_oversized_headers_are_431(gw):
    filler = "".join("X-Filler-%d: %s\r\n" % (i, "v" * 200) for i in range(50))
    req = RawConn.upgrade_request(gw.ws_port)
    req = req[:-2] + filler.encode() + b"\r\n"  # > 8192 bytes of headers
    assert len(req) > 10000
    await _rejected(gw, req, 431)


async def test_headers_split_in_pieces_are_accepted(gw):
    r = await RawConn.open(gw.ws_port)
    req = RawConn.upgrade_request(gw.ws_port, "/split")
    # Feed the request a few bytes at a time, waiting for each to be sent.
    for i in range(0, len(req), 7):
        await r.send(req[i:i + 7])
    status, headers = await r.read_http_response()
    assert status == 101, (status, headers)
    assert (await r.read_json())["event"] == "ready"


# -- handshake time (slowloris) ----------------------------------------------

HS_MS = 500


@pytest.fixture
def hs_gw(gateway_factory):
    return gateway_factory(websocket={"handshake_timeout_ms": HS_MS})


async def _closed_in_time(r, started):
    await r.wait_closed(T(HS_MS / 1000 + 2))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.8 * HS_MS / 1000, (
        "closed after %.2fs, before handshake_timeout_ms=%d" % (elapsed, HS_MS))


async def test_stalled_upgrade_is_closed(hs_gw):
    started = time.monotonic()
    r = await RawConn.open(hs_gw.ws_port)
    await r.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    await _closed_in_time(r, started)


async def test_silent_connection_is_closed(hs_gw):
    started = time.monotonic()
    r = await RawConn.open(hs_gw.ws_port)
    await _closed_in_time(r, started)


async def test_dribbling_upgrade_is_closed(hs_gw):
    # One byte every 50 ms never completes the request: the deadline covers
    # the whole handshake, not the gap between reads.
    started = time.monotonic()
    r = await RawConn.open(hs_gw.ws_port)
    req = RawConn.upgrade_request(hs_gw.ws_port)
    deadline = started + T(HS_MS / 1000 + 2)

    async def dribble():
        for i in range(len(req) - 2):  # never the final CRLF
            try:
                await r.send(req[i:i + 1])
            except OSError:
                return
            await asyncio.sleep(0.05)  # the client's pace, not a wait
    task = asyncio.ensure_future(dribble())
    try:
        await r.wait_closed(deadline - time.monotonic())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.8 * HS_MS / 1000, elapsed


async def test_prompt_handshake_is_not_affected(hs_gw):
    c = await Client.session(hs_gw)
    # Well past the handshake deadline the session is still open.
    start = time.monotonic()
    while time.monotonic() - start < 2 * HS_MS / 1000:
        await c.heartbeat_roundtrip()
        try:
            await asyncio.wait_for(c.ws.recv(), 0.1)
            raise AssertionError("unexpected message")
        except asyncio.TimeoutError:
            pass


# -- connections per address (429) ------------------------------------------

async def _session_from(gw, src):
    """A session from loopback source address src."""
    return await Client.session(gw, sock=await socket_from(src, gw.ws_port))


async def _refused_from(gw, src):
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await _session_from(gw, src)
    assert e.value.status_code == 429, e.value


async def _connections(gw, n):
    await wait_until(lambda: gw.get_json("/stats")["totals"]["connections"]
                     == n, T(5), "%d connections open" % n)


async def test_connections_per_address(gateway_factory):
    gw = gateway_factory(server={"max_connections_per_ip": 3})
    a, b = "127.0.9.1", "127.0.9.2"
    held = [await _session_from(gw, a) for _ in range(3)]
    await _refused_from(gw, a)
    # Another address has its own count, and the held sessions are served.
    other = await _session_from(gw, b)
    for c in held:
        await c.heartbeat_roundtrip()
    # One closes: its address may open one more, and no more.
    await held.pop().close()
    await _connections(gw, 3)
    held.append(await _session_from(gw, a))
    await _refused_from(gw, a)
    t = gw.get_json("/stats")["totals"]
    assert t["address_limited"] == 2, t
    assert "127.0.9.1 has 3 connections open" in gw.stderr_text(), gw.tail()
    # Gone from the count when they close: the address starts afresh.
    for c in held + [other]:
        await c.close()
    await _connections(gw, 0)
    again = [await _session_from(gw, a) for _ in range(3)]
    await _refused_from(gw, a)
    for c in again:
        await c.close()


async def test_connections_per_address_by_sighup(gateway_factory):
    gw = gateway_factory()
    a = "127.0.9.3"
    before = [await _session_from(gw, a) for _ in range(2)]
    await gw.reload(server={"max_connections_per_ip": 1})
    # It counts the connections accepted after the reload.
    late = await _session_from(gw, a)
    await _refused_from(gw, a)
    for c in before + [late]:
        await c.heartbeat_roundtrip()
    # Off again: the counted one still gives its count back on closing.
    await gw.reload(server={"max_connections_per_ip": 0})
    more = [await _session_from(gw, a) for _ in range(3)]
    for c in before + [late] + more:
        await c.close()
    await _connections(gw, 0)
    assert gw.get_json("/stats")["totals"]["address_limited"] == 1


# -- slow consumers (4010) ---------------------------------------------------

N_EVENTS = 5000
PAD = "p" * 2000


async def _stalled_client(gw, guild):
    """A client whose reads stop after identify: websockets keeps at most one
    message queued and pauses the transport, the socket buffer is small."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
        s, ("127.0.0.1", gw.ws_port)), T(5))
    c = await Client.connect(gw, sock=s, max_queue=1, read_limit=2 ** 10)
    await c.ready()
    await c.identify(uniq("slow"), [guild])
    return c


@pytest.mark.time_limit(90)
async def test_slow_consumer_is_closed_4010_and_others_keep_up(
        gateway_factory):
    gw = gateway_factory(websocket={"write_ring_size": 16})
    guild = "busy"
    slow = await _stalled_client(gw, guild)
    fast = [await Client.session(gw, guilds=[guild]) for _ in range(2)]
    before = gw.get_json("/stats")["totals"]

    publisher = KeepAlivePublisher(gw)
    stop = threading.Event()

    def publish_all():
        try:
            for i in range(N_EVENTS):
                if stop.is_set():
                    return
                publisher.publish({"event": "message.create", "guildId": guild,
                                   "data": {"i": i, "pad": PAD}})
        finally:
            publisher.close()
    publishing = asyncio.get_running_loop().run_in_executor(None, publish_all)

    async def read_all(n, c):
        for i in range(N_EVENTS):
            try:
                msg = await c.recv(timeout=10)
            except websockets.ConnectionClosed as e:
                raise AssertionError(
                    "reading client %d was closed after %d of %d events (%s)"
                    % (n, i, N_EVENTS, e)) from None
            assert msg.get("seq") == i + 1 and msg["data"]["i"] == i, (
                "reading client %d: expected event %d, got %r"
                % (n, i, {k: v for k, v in msg.items() if k != "data"}))

    async def drain_slow():
        # Start reading once the daemon has given up on the stalled client
        # (or publishing is over): what was already in flight arrives, then
        # a close frame with 4010.
        async def gave_up():
            t = await gw.totals()
            return t["slow_consumer_closes"] > before["slow_consumer_closes"]
        await wait_until(lambda: publishing.done() or gave_up(), T(60),
                         "publishing or a slow consumer close")
        got = await slow.expect_close(4010, timeout=30, allow_dispatches=True)
        assert len(got) < N_EVENTS, "the stalled client got every event"
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(1, len(got) + 1)), (
            "the stalled client's dispatches are not a prefix: %r..."
            % seqs[:20])

    readers = [asyncio.ensure_future(read_all(n, c))
               for n, c in enumerate(fast)]
    tasks = readers + [asyncio.ensure_future(drain_slow()), publishing]
    try:
        # Fail as soon as any part fails; the reading clients' failures are
        # reported first: they must never suffer from the stalled one.
        done, _ = await asyncio.wait(tasks,
                                     return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:
            if t in done and t.exception() is not None:
                raise t.exception()
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    t = await gw.totals()
    assert t["slow_consumer_closes"] == before["slow_consumer_closes"] + 1, t
    assert t["ring_drops"] > before["ring_drops"], t
    # The reading clients are still connected and served.
    for c in fast:
        await c.heartbeat_roundtrip()
