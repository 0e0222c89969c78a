"""deploy/haproxy.cfg, tested: two gateways behind a real HAProxy. WebSockets
pass through it, sessions stick to their instance by cookie, an instance
that drains leaves the rotation through its /health check, and connections
per client address are limited in number and rate; with GW_SEND_PROXY the
gateways (server.proxy_protocol) see each client's own address. The first
two and the last run again with HAProxy terminating TLS (GW_TLS_LISTEN
alone) in front of plain gateways."""
import asyncio
import copy
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
import websockets

from gwtest import (Client, T, free_port, make_pair, socket_from, token_for,
                    uniq, verifying_ctx, wait_until)

CFG = os.path.join(os.path.dirname(__file__), "..", "..", "deploy",
                   "haproxy.cfg")


@pytest.fixture
def haproxy(tmp_path):
    """Starts HAProxy with deploy/haproxy.cfg in front of two gateways."""
    procs = []

    def start(gw1, gw2, tls=None, **limits):
        """tls: the PEM of a certificate and its key, to listen on
        GW_TLS_LISTEN with it instead of GW_LISTEN."""
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("GW_LISTEN", "GW_TLS_LISTEN", "GW_TLS_CERT")}
        if tls is None:
            env["GW_LISTEN"] = "127.0.0.1:%d" % port
        else:
            env.update(GW_TLS_LISTEN="127.0.0.1:%d" % port, GW_TLS_CERT=tls)
        env = dict(env, **limits, GW_MAXCONN="4000",
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


def _via(gw, port, ctx=None):
    """The gateway as a client sees it through the proxy (ctx: over TLS)."""
    view = copy.copy(gw)
    view.ws_url = "%s://127.0.0.1:%d" % ("wss" if ctx else "ws", port)
    view.client_ssl = ctx
    return view


@pytest.fixture(params=["ws", "wss"])
def proxy_tls(request, tmp_path):
    """None, or (the PEM HAProxy serves, a client context that trusts it)."""
    if request.param == "ws":
        return None
    cert, key = make_pair(tmp_path, "proxy")
    pem = tmp_path / "proxy.pem"
    pem.write_text(open(cert).read() + open(key).read())
    return str(pem), verifying_ctx(cert)


def _start_proxy(haproxy, gw1, gw2, proxy_tls, **env):
    """The proxy's port, and the client context for it (None: ws://)."""
    if proxy_tls is None:
        return haproxy(gw1, gw2, **env), None
    return haproxy(gw1, gw2, tls=proxy_tls[0], **env), proxy_tls[1]


def _sessions(gw):
    return gw.get_json("/health")["sessions"]


@pytest.mark.time_limit(60)
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_websockets_pass_and_stick_to_their_instance(gateway_factory,
                                                           haproxy, proxy_tls):
    gw1, gw2 = gateway_factory(), gateway_factory()
    port, ctx = _start_proxy(haproxy, gw1, gw2, proxy_tls)
    first = await Client.session(_via(gw1, port, ctx), uniq("u"), ["g1"])
    cookie = first.ws.response_headers.get("Set-Cookie", "")
    assert cookie.startswith("GWID=gw"), first.ws.response_headers
    home = gw1 if cookie.startswith("GWID=gw1") else gw2
    assert _sessions(home) == 1
    # Reconnecting with the cookie returns to the same instance, every time.
    again = [await Client.session(_via(gw1, port, ctx), uniq("u"), ["g1"],
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
    if ctx is not None:
        _check_proxy_tls(port, ctx, first)


def _check_proxy_tls(port, ctx, client):
    """The proxy's TLS: 1.2 or 1.3, AEAD; 1.1 and CBC suites refused."""
    tls = client.ws.transport.get_extra_info("ssl_object")
    assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
    assert "GCM" in tls.cipher()[0] or "CHACHA20" in tls.cipher()[0], (
        tls.cipher())
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    cbc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cbc.check_hostname, cbc.verify_mode = False, ssl.CERT_NONE
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA")
    for refused in (old, cbc):
        raw = socket.create_connection(("127.0.0.1", port), timeout=T(5))
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            refused.wrap_socket(raw, server_hostname="127.0.0.1")
        raw.close()


@pytest.mark.time_limit(60)
async def test_draining_instance_leaves_the_rotation(gateway_factory, haproxy,
                                                    proxy_tls):
    gw1 = gateway_factory(server={"drain_ms": 3000})
    gw2 = gateway_factory()
    port, ctx = _start_proxy(haproxy, gw1, gw2, proxy_tls)
    sticky = await Client.session(_via(gw1, port, ctx), uniq("u"), [],
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
    back = await Client.session(_via(gw1, port, ctx), uniq("u"), [],
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


@pytest.mark.time_limit(60)
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_gateways_see_each_clients_address(gateway_factory, haproxy,
                                                 proxy_tls):
    """With GW_SEND_PROXY HAProxy opens each connection to a gateway with a
    PROXY v2 header: gateways that expect it audit each client under its
    own address, not HAProxy's, and their health checks, which carry no
    header, keep them in the rotation."""
    opts = {"server": {"proxy_protocol": True}}
    gw1, gw2 = gateway_factory(**opts), gateway_factory(**opts)
    port, ctx = _start_proxy(haproxy, gw1, gw2, proxy_tls, GW_SEND_PROXY="1")
    users = {}
    for src in ("127.0.0.7", "127.0.0.8"):
        users[src] = uniq("u")
        c = await Client.session(_via(gw1, port, ctx), users[src], ["g1"],
                                 sock=await socket_from(src, port),
                                 server_hostname="127.0.0.1" if ctx else None)
        await c.heartbeat_roundtrip()

    def audited():
        lines = gw1.stderr_text() + gw2.stderr_text()
        return all(any("peer=%s " % src in l and "user=%s" % user in l
                       for l in lines.splitlines()
                       if "audit: auth ok" in l)
                   for src, user in users.items())
    await wait_until(audited, T(5), "audit lines with the clients' addresses")
    for gw in (gw1, gw2):
        assert (await gw.totals())["proxy_header_failures"] == 0
