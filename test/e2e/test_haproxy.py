"""deploy/haproxy.cfg, tested: two gateways behind a real HAProxy. WebSockets
pass through it, sessions stick to their instance by cookie, an instance
that drains leaves the rotation through its /health check, and connections
per client address are limited in number and rate."""
import asyncio
import copy
import os
import signal
import socket
import subprocess
import time

import pytest
import websockets

from gwtest import Client, T, free_port, socket_from, token_for, uniq

CFG = os.path.join(os.path.dirname(__file__), "..", "..", "deploy",
                   "haproxy.cfg")


@pytest.fixture
def haproxy(tmp_path):
    """Starts HAProxy with deploy/haproxy.cfg in front of two gateways."""
    procs = []

    def start(gw1, gw2, **limits):
        port = free_port()
        env = dict(os.environ, **limits, GW_MAXCONN="4000",
                   GW_LISTEN="127.0.0.1:%d" % port,
                   GW1_ADDR="127.0.0.1:%d" % gw1.ws_port,
                   GW1_HEALTH=str(gw1.http_port),
                   GW2_ADDR="127.0.0.1:%d" % gw2.ws_port,
                   GW2_HEALTH=str(gw2.http_port))
        log = open(tmp_path / "haproxy.log", "wb")
        p = subprocess.Popen(["haproxy", "-db", "-f", CFG], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        deadline = time.monotonic() + T(10)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), T(1)).close()
                return port
            except OSError:
                assert p.poll() is None, "haproxy exited: %s" % (
                    (tmp_path / "haproxy.log").read_text()[-2000:])
                assert time.monotonic() < deadline, "haproxy not listening"
                time.sleep(0.05)  # polling its port, bounded above

    yield start
    for p in procs:
        p.terminate()
        p.wait(T(10))


def _via(gw, port):
    """The gateway as a client sees it through the proxy."""
    view = copy.copy(gw)
    view.ws_url = "ws://127.0.0.1:%d" % port
    return view


def _sessions(gw):
    return gw.get_json("/health")["sessions"]


@pytest.mark.time_limit(60)
async def test_websockets_pass_and_stick_to_their_instance(gateway_factory,
                                                           haproxy):
    gw1, gw2 = gateway_factory(), gateway_factory()
    port = haproxy(gw1, gw2)
    first = await Client.session(_via(gw1, port), uniq("u"), ["g1"])
    cookie = first.ws.response_headers.get("Set-Cookie", "")
    assert cookie.startswith("GWID=gw"), first.ws.response_headers
    home = gw1 if cookie.startswith("GWID=gw1") else gw2
    assert _sessions(home) == 1
    # Reconnecting with the cookie returns to the same instance, every time.
    again = [await Client.session(_via(gw1, port), uniq("u"), ["g1"],
                                  extra_headers={"Cookie": cookie.split(";")[0]})
             for _ in range(6)]
    assert _sessions(home) == 7, (_sessions(gw1), _sessions(gw2))
    # Events flow through the proxy, framing intact.
    r = home.publish_ok({"event": "message.create", "guildId": "g1",
                         "data": {"text": "x" * 5000}})
    assert r["workers"] == 4
    for c in [first] + again:
        msg = await c.recv()
        assert msg["event"] == "message.create" and len(
            msg["data"]["text"]) == 5000, msg
    await first.heartbeat_roundtrip()


@pytest.mark.time_limit(60)
async def test_draining_instance_leaves_the_rotation(gateway_factory, haproxy):
    gw1 = gateway_factory(server={"drain_ms": 3000})
    gw2 = gateway_factory()
    port = haproxy(gw1, gw2)
    sticky = await Client.session(_via(gw1, port), uniq("u"), [],
                                  extra_headers={"Cookie": "GWID=gw1"})
    assert _sessions(gw1) == 1
    gw1.stopped_by_test = True
    gw1.proc.send_signal(signal.SIGTERM)
    # Its client is told to reconnect elsewhere ...
    with pytest.raises(websockets.ConnectionClosed) as e:
        while True:
            await asyncio.wait_for(sticky.ws.recv(), T(15))
    assert e.value.rcvd is not None and e.value.rcvd.code == 4011, e.value
    # ... and, reconnecting with the same cookie, lands on the other one.
    back = await Client.session(_via(gw1, port), uniq("u"), [],
                                extra_headers={"Cookie": "GWID=gw1"})
    assert _sessions(gw2) == 1
    await back.heartbeat_roundtrip()
    gw1.proc.wait(T(15))
    assert gw1.proc.returncode == 0


async def _session_from(gw, port, src):
    """A session through the proxy from source address src (loopback)."""
    return await Client.session(_via(gw, port), uniq("u"), ["g1"],
                                sock=await socket_from(src, port))


async def _refused_from(gw, port, src):
    """The proxy closes a connection over the limits before any upgrade."""
    try:
        c = await _session_from(gw, port, src)
    except (OSError, EOFError, asyncio.IncompleteReadError,
            websockets.WebSocketException):
        return True
    c.abort()
    return False


@pytest.mark.time_limit(60)
async def test_open_connections_per_address_are_limited(gateway_factory,
                                                        haproxy):
    gw1, gw2 = gateway_factory(), gateway_factory()
    port = haproxy(gw1, gw2, GW_CONN_PER_IP="3")
    held = [await _session_from(gw1, port, "127.0.0.7") for _ in range(3)]
    assert await _refused_from(gw1, port, "127.0.0.7")
    # Another address is not affected, and a closed connection frees a place.
    other = await _session_from(gw1, port, "127.0.0.8")
    await held.pop().close()
    deadline = time.monotonic() + T(5)
    while await _refused_from(gw1, port, "127.0.0.7"):
        assert time.monotonic() < deadline, "the closed place never freed"
        await asyncio.sleep(0.05)
    for c in held + [other]:
        await c.close()
    assert _sessions(gw1) + _sessions(gw2) <= 1


@pytest.mark.time_limit(60)
async def test_new_connections_per_address_are_rate_limited(gateway_factory,
                                                           haproxy):
    gw1, gw2 = gateway_factory(), gateway_factory()
    port = haproxy(gw1, gw2, GW_CONN_RATE_PER_IP="4")
    for _ in range(4):
        c = await _session_from(gw1, port, "127.0.0.9")
        await c.close()
    # The fifth within 10 s is refused; another address is not.
    assert await _refused_from(gw1, port, "127.0.0.9")
    c = await _session_from(gw1, port, "127.0.0.10")
    await c.close()


@pytest.mark.time_limit(60)
async def test_a_dropped_client_resumes_through_the_proxy(gateway_factory,
                                                         haproxy):
    """The cookie brings a reconnecting client back to the instance that
    parked its session, and the resume replays what it missed."""
    resume = {"session": {"resume_window_ms": 30000}}
    gw1, gw2 = gateway_factory(**resume), gateway_factory(**resume)
    port = haproxy(gw1, gw2)
    guild = uniq("g")
    c = await Client.session(_via(gw1, port), uniq("u"), [guild])
    cookie = c.ws.response_headers.get("Set-Cookie", "").split(";")[0]
    home = gw1 if cookie.startswith("GWID=gw1") else gw2
    home.publish_ok({"event": "tick", "guildId": guild, "data": {"i": 0}})
    assert (await c.recv())["seq"] == 1
    c.abort()  # the client's network goes away
    await asyncio.sleep(T(0.2))
    for i in (1, 2):
        home.publish_ok({"event": "tick", "guildId": guild, "data": {"i": i}})
    r = await Client.connect(_via(gw1, port), extra_headers={"Cookie": cookie})
    await r.ready()
    await r.send({"event": "resume",
                  "data": {"sessionId": c.session_id, "seq": 1,
                           "token": token_for(c.user, secret=home.secret)}})
    got = [await r.recv() for _ in range(3)]
    assert [(m.get("seq"), m["event"]) for m in got] == [
        (2, "tick"), (3, "tick"), (None, "resumed")], got
    assert [m["data"]["i"] for m in got[:2]] == [1, 2]
