"""Abuse limits (issue 11, seed 003 layer 4): allowed origins, audit lines
whatever the level and JSON logs, identify and failed-authentication
limits per address and per user, and the cap of open connections."""

import json
import socket
import time

import pytest
import websockets

from gwtest import Client, T, uniq, wait_until


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
