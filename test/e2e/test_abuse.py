"""Abuse limits (issue 11, seed 003 layer 4): allowed origins, audit lines
whatever the level and JSON logs, identify and failed-authentication
limits per address and per user, and the cap of open connections."""

import asyncio
import json
import socket
import time

import pytest
import websockets

from gwtest import Client, T, socket_from, uniq, wait_until


# -- websocket.allowed_origins (403) ----------------------------------------

ORIGINS = "https://app.example.com, https://*.example.org"


async def test_origin_allowed_refused_and_absent(gateway_factory):
    """A browser page of a listed origin connects; one of another site gets
    403 with an audit line and a counter; a client without Origin (not a
    browser) connects."""
    gw = gateway_factory(websocket={"allowed_origins": ORIGINS})
    for origin in ("https://app.example.com", "https://chat.example.org",
                   "HTTPS://APP.EXAMPLE.COM"):
        c = await Client.session(gw, origin=origin)
        await c.heartbeat_roundtrip()
    await Client.session(gw)
    for origin in ("https://evil.example", "http://app.example.com",
                   "https://example.org", "null"):
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await Client.connect(gw, origin=origin)
        assert e.value.status_code == 403, e.value
    await wait_until(lambda: gw.stderr_text().count(
        "audit: origin refused") == 4, T(5), "four audit lines")
    assert "origin=https://evil.example" in gw.stderr_text()
    assert (await gw.totals())["origin_refused"] == 4


async def test_origin_list_reloads(gateway_factory):
    gw = gateway_factory()
    await Client.session(gw, origin="https://evil.example")
    await gw.reload(websocket={"allowed_origins": ORIGINS})
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await Client.connect(gw, origin="https://evil.example")
    assert e.value.status_code == 403, e.value


# -- audit lines and JSON logs ----------------------------------------------

async def test_audit_lines_at_level_error_as_json(gateway_factory):
    """log.level = error hides info and warn lines but not audit lines;
    log.format = json makes every line one JSON object, audit lines with
    their fields."""
    gw = gateway_factory(log={"level": "error", "format": "json"},
                         websocket={"allowed_origins": ORIGINS})
    user = uniq("u")
    await Client.session(gw, user)
    with pytest.raises(websockets.exceptions.InvalidStatusCode):
        await Client.connect(gw, origin="https://evil.example")
    await wait_until(lambda: "origin refused" in gw.stderr_text(), T(5),
                     "the refusal's audit line")
    docs = []
    for line in gw.stderr_text().splitlines():
        if not line.startswith("{"):
            continue  # a sanitizer's report, say
        docs.append(json.loads(line))
    for d in docs:
        assert set(d) >= {"ts", "level", "msg"}, d
    audits = {d["audit"]: d for d in docs if "audit" in d}
    ok = audits["auth ok"]
    assert ok["user"] == user and ok["peer"] == "127.0.0.1", ok
    assert ok["msg"].startswith("audit: auth ok conn="), ok
    assert audits["origin refused"]["origin"] == "https://evil.example"
    # Nothing below error but the audit lines.
    assert all(d["level"] == "error" or "audit" in d for d in docs), docs


# -- server.max_connections (503, then closed at accept) -------------------

def _answer(sock):
    """What a raw socket hears within the timeout: the status line's bytes,
    b"" for a close, or None when nothing came (a hang)."""
    sock.settimeout(T(5))
    try:
        return sock.recv(64)
    except ConnectionResetError:
        return b""
    except socket.timeout:
        return None


async def test_connection_cap(gateway_factory):
    """At the cap a new client is answered 503 at once; past the refusals
    in progress a socket is closed as accepted; nobody hangs, the sessions
    held keep receiving, /health and /metrics answer, and the warnings are
    rate-limited."""
    gw = gateway_factory(server={"max_connections": 20})
    held = [await Client.session(gw, guilds=["g1"]) for _ in range(20)]
    start = time.monotonic()
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await Client.connect(gw)
    assert e.value.status_code == 503, e.value
    assert time.monotonic() - start < T(2)

    # A storm of clients that neither send nor close: the first 64 past the
    # cap hold their 503 while it lingers, the rest are closed at accept.
    storm = [socket.create_connection(("127.0.0.1", gw.ws_port))
             for _ in range(150)]
    try:
        assert gw.http("GET", "/health").status == 200
        assert gw.http("GET", "/metrics").status == 200
        answers = [_answer(s) for s in storm]
    finally:
        for s in storm:
            s.close()
    assert None not in answers, "a client hung"
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    closed = [a for a in answers if a == b""]
    assert len(refused) + len(closed) == len(storm), answers
    assert refused and closed, (len(refused), len(closed))

    await gw.apublish({"event": "message.create", "guildId": "g1",
                       "data": {"n": 1}})
    for c in held:
        await c.expect_dispatch("message.create", "g1")
    totals = await gw.totals()
    assert totals["capacity_refused"] >= len(refused)
    assert totals["accept_refused"] == len(closed)
    # One line a second per logger, not one per socket.
    lines = [l for l in gw.stderr_text().splitlines()
             if "server.max_connections" in l and "open" in l]
    assert len(lines) <= 10 < len(storm), lines

    # A place freed is taken again.
    await held.pop().close()
    await wait_until(lambda: gw.get_json("/stats")["totals"]["connections"]
                     <= 19, T(5), "the close counted")
    await Client.session(gw)


# -- identify and resume attempts, failed authentications (4008) -----------

async def _from(gw, src):
    """A connection from loopback address src, ready."""
    c = await Client.connect(gw, sock=await socket_from(src, gw.ws_port))
    await c.ready()
    return c


async def _identify_from(gw, src, user=None, token=None):
    c = await _from(gw, src)
    await c.send_identify(user or uniq("u"), ["g1"], token=token)
    return c


async def test_identify_flood_from_one_address(gateway_factory):
    """Past its burst an address's identifies are closed 4008, audited and
    counted; another address, and the sessions it opened before, are
    untouched."""
    gw = gateway_factory(auth={"identify_rate": 1, "identify_burst": 3})
    flood, other = "127.0.11.1", "127.0.11.2"
    held = []
    for _ in range(3):
        c = await _identify_from(gw, flood)
        await c.expect("identified")
        held.append(c)
    c = await _identify_from(gw, flood)
    await c.expect_close(4008)
    c = await _identify_from(gw, other)
    await c.expect("identified")
    for c in held:
        await c.heartbeat_roundtrip()
    assert (await gw.totals())["auth_rate_limited"] == 1
    await wait_until(lambda: "audit: auth refused" in gw.stderr_text(),
                     T(5), "the audit line")
    assert ("peer=127.0.11.1" in gw.stderr_text()
            and "reason=address over identify_rate" in gw.stderr_text())


async def test_identify_per_user(gateway_factory):
    """A user's verified identifies past their burst are closed 4008;
    another user, from the same address, is not."""
    gw = gateway_factory(auth={"identify_user_rate": 1,
                               "identify_user_burst": 2})
    user = uniq("u")
    for _ in range(2):
        await Client.session(gw, user)
    c = await Client.connect(gw)
    await c.ready()
    await c.send_identify(user, ["g1"])
    await c.expect_close(4008)
    await Client.session(gw, uniq("u"))


async def test_failed_auth_backs_off_then_refuses(gateway_factory):
    """Two free failures, then a growing delay (an attempt inside it is
    closed 4008 without its token being looked at), then the refusal at
    fail_limit, lifted after fail_block_ms; another address is untouched."""
    gw = gateway_factory(auth={"fail_delay_ms": int(T(0.5) * 1000),
                               "fail_limit": 4,
                               "fail_block_ms": int(T(3) * 1000)})
    bad, good = "127.0.12.1", "127.0.12.2"
    for _ in range(2):
        c = await _identify_from(gw, bad, token="not.a.token")
        await c.expect_close(4004)
    c = await _identify_from(gw, bad, token="not.a.token")
    await c.expect_close(4004)  # the third failure: a delay starts
    c = await _identify_from(gw, bad)  # inside it, even a good token
    await c.expect_close(4008)
    await asyncio.sleep(T(0.6))
    c = await _identify_from(gw, bad, token="not.a.token")
    await c.expect_close(4004)  # the fourth: fail_limit, refused
    await asyncio.sleep(T(1.2))  # past any delay, inside the refusal
    c = await _identify_from(gw, bad)
    await c.expect_close(4008)
    c = await _identify_from(gw, good)
    await c.expect("identified")
    # After fail_block_ms the address is heard again.
    await asyncio.sleep(T(2.2))
    c = await _identify_from(gw, bad)
    await c.expect("identified")
    totals = await gw.totals()
    assert totals["auth_failures"] == 4
    assert totals["auth_rate_limited"] == 2
    assert "reason=address backing off after failures" in gw.stderr_text()
