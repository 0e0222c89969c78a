"""Connection flow: ready, identify, sessions, heartbeats, framing basics."""

import asyncio
import json
import time

import pytest

from gwtest import Client, T, token_for, uniq

# The main cases of the protocol: run again over wss:// (conftest.py).
pytestmark = pytest.mark.each_transport

HB = 300  # heartbeat_interval_ms of the heartbeat gateways


async def test_ready_then_identify(gw):
    c = await Client.connect(gw)
    ready = await c.ready()
    assert set(ready) >= {"sessionId", "heartbeatInterval"}, ready
    assert ready["heartbeatInterval"] == 60000
    user = uniq("u")
    data = await c.identify(user, ["g1", "g2"])
    assert data == {"userId": user, "sessionId": ready["sessionId"],
                    "guildIds": ["g1", "g2"]}


async def test_any_url_path_is_accepted(gw):
    for path in ("/gateway", "/ws?v=1&encoding=json", "/a/b/c/"):
        c = await Client.connect(gw, path)
        await c.ready()
        await c.identify(uniq("u"), [])


async def test_session_ids_are_unique(gw):
    clients = [await Client.connect(gw) for _ in range(20)]
    ids = [(await c.ready())["sessionId"] for c in clients]
    assert len(set(ids)) == len(ids), ids


async def test_two_sessions_of_one_user(gw):
    user, guild = uniq("u"), uniq("g")
    a = await Client.session(gw, user, [guild])
    b = await Client.session(gw, user, [guild])
    assert a.session_id != b.session_id
    await gw.apublish({"event": "user.update", "userId": user,
                       "data": {"n": 1}})
    for c in (a, b):
        msg = await c.expect_dispatch("user.update")
        assert msg["seq"] == 1 and msg["data"] == {"n": 1}, msg
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 2}})
    for c in (a, b):
        msg = await c.expect_dispatch("message.create", guild)
        assert msg["seq"] == 2 and msg["data"] == {"n": 2}, msg


async def test_identify_joins_each_guild_once_in_request_order(gw):
    c = await Client.connect(gw)
    await c.ready()
    data = await c.identify(uniq("u"), ["g3", "g1", "g3", "g2", "g1"])
    assert data["guildIds"] == ["g3", "g1", "g2"]


async def test_identify_with_no_guilds(gw):
    c = await Client.connect(gw)
    await c.ready()
    data = await c.identify(uniq("u"), [])
    assert data["guildIds"] == []


async def test_client_heartbeat_gets_ack_before_and_after_identify(gw):
    c = await Client.connect(gw)
    await c.ready()
    msg = await c.heartbeat_roundtrip()
    assert msg == {"event": "heartbeat_ack", "data": {}}
    await c.identify(uniq("u"), [])
    for _ in range(3):
        msg = await c.heartbeat_roundtrip()
        assert msg == {"event": "heartbeat_ack", "data": {}}


async def test_clean_close_is_echoed(gw):
    c = await Client.session(gw)
    await c.close(1000)
    assert c.ws.close_code == 1000, (
        "server did not echo the close frame (close_code %s)" % c.ws.close_code)


async def test_client_close_with_application_code(gw):
    c = await Client.session(gw)
    await c.close(4321)
    # RFC 6455 5.5.1: the endpoint echoes the status code it received.
    assert c.ws.close_code in (4321, 1000), c.ws.close_code


async def test_ping_gets_pong(gw):
    c = await Client.session(gw)
    for payload in (b"", b"abc", bytes(range(125))):
        waiter = await c.ws.ping(payload)
        await asyncio.wait_for(waiter, T(5))
    # Still a working session afterwards.
    await c.heartbeat_roundtrip()


async def test_fragmented_messages_are_reassembled(gw):
    c = await Client.connect(gw)
    await c.ready()
    user, guild = uniq("u"), uniq("g")
    token = token_for(user, secret=gw.secret)
    text = ('{"event":"identify","data":{"userId":"%s","token":"%s",'
            '"guildIds":["%s"]}}' % (user, token, guild))
    # websockets sends an iterable of str as one fragmented text message.
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    await asyncio.wait_for(c.ws.send(pieces), T(5))
    msg = await c.expect("identified")
    assert msg["data"]["guildIds"] == [guild]
    # A multi-byte character split by the fragmentation is still valid.
    await asyncio.wait_for(c.ws.send(['{"event":"heartbeat","data":{"x":"\u00e9',
                                      '\u20ac"}}']), T(5))
    await c.expect("heartbeat_ack")


async def test_compression_offer_is_harmless(gw):
    # The server may or may not negotiate permessage-deflate; either way the
    # protocol works the same.
    user, guild = uniq("u"), uniq("g")
    c = await Client.session(gw, user, [guild], compression="deflate")
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"text": "x" * 3000}})
    msg = await c.expect_dispatch("message.create", guild)
    assert msg["data"] == {"text": "x" * 3000}


# -- heartbeats ----------------------------------------------------------

@pytest.fixture
def hb_gw(gateway_factory):
    return gateway_factory(session={"heartbeat_interval_ms": HB})


async def test_server_heartbeats_arrive_and_acks_keep_the_session(hb_gw):
    c = await Client.connect(hb_gw)
    ready = await c.ready()
    assert ready["heartbeatInterval"] == HB
    await c.identify(uniq("u"), [])
    start = time.monotonic()
    beats = 0
    while beats < 5:  # five intervals: well past the two-interval timeout
        msg = await c.recv(timeout=2 * HB / 1000 + 0.5, skip_heartbeats=False)
        assert msg == {"event": "heartbeat", "data": {}}, msg
        beats += 1
        await c.send({"event": "heartbeat_ack", "data": {}})
    elapsed = time.monotonic() - start
    assert elapsed >= 3 * HB / 1000, (
        "5 heartbeats in %.2fs: faster than the %d ms interval" % (elapsed, HB))
    # Still open and answering.
    await c.send({"event": "heartbeat", "data": {}})
    while True:
        msg = await c.recv(timeout=2, skip_heartbeats=False)
        if msg["event"] == "heartbeat":
            await c.send({"event": "heartbeat_ack", "data": {}})
            continue
        assert msg == {"event": "heartbeat_ack", "data": {}}, msg
        break


async def test_client_heartbeats_alone_keep_the_session(hb_gw):
    c = await Client.session(hb_gw)
    # Send our own heartbeat every interval for five intervals and never ack
    # the server's heartbeats.
    for _ in range(6):
        sent = time.monotonic()
        await c.send({"event": "heartbeat", "data": {}})
        while True:
            msg = await c.recv(timeout=2, skip_heartbeats=False)
            if msg["event"] == "heartbeat_ack":
                break
            assert msg == {"event": "heartbeat", "data": {}}, msg
        # Pace the client: read (server heartbeats only) until the interval
        # has passed.
        while (left := sent + HB / 1000 - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(c.ws.recv(), left)
            except asyncio.TimeoutError:
                break
            assert json.loads(raw) == {"event": "heartbeat", "data": {}}, raw
    await c.heartbeat_roundtrip()


async def test_silent_client_is_closed_4009(hb_gw):
    c = await Client.connect(hb_gw)
    opened = time.monotonic()
    await c.ready()
    await c.identify(uniq("u"), [])
    beats = await c.expect_close(4009, timeout=3 * HB / 1000 + 1.5)
    elapsed = time.monotonic() - opened
    assert elapsed >= 1.6 * HB / 1000, (
        "closed 4009 after %.2fs, before two %d ms intervals" % (elapsed, HB))
    assert elapsed <= T(3 * HB / 1000 + 0.4), (
        "closed 4009 only after %.2fs (interval %d ms)" % (elapsed, HB))
    assert any(m["event"] == "heartbeat" for m in beats), (
        "closed without ever sending a heartbeat")


async def test_unidentified_silent_client_is_closed_4009(hb_gw):
    c = await Client.connect(hb_gw)
    await c.ready()
    await c.expect_close(4009, timeout=3 * HB / 1000 + 1.5)
