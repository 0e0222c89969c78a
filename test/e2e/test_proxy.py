"""The PROXY protocol on the WebSocket ports (server.proxy_protocol,
tls.proxy_protocol): headers written by hand as HAProxy's send-proxy and
send-proxy-v2 write them, then a normal upgrade; the address a header names
is the one the per-address limits and audit lines use. Malformed headers,
untrusted sources and headers that never end are closed; over TLS the
header comes before the ClientHello. Behind a real HAProxy:
test_haproxy.py."""

import asyncio
import socket
import ssl

import pytest
import websockets

from gwtest import (Client, T, proxied_socket, proxy_v1, proxy_v2,
                    socket_from, uniq, verifying_ctx, wait_until)

# TLVs as HAProxy may add them: ALPN, the SNI authority, a NOOP.
TLVS = (b"\x01\x00\x08http/1.1" + b"\x02\x00\x10chat.example.com"
        + b"\x04\x00\x02\x00\x00")


def _proxied(**sections):
    """Options of a gateway whose ports both expect the PROXY protocol
    from 127.0.0.1 alone."""
    sections.setdefault("server", {}).update(
        proxy_protocol=True, proxy_trusted="127.0.0.1/32")
    sections.setdefault("tls", {})["proxy_protocol"] = True
    return sections


async def _via(gw, header, pieces=1, port=None, **kw):
    """A connection through a 'proxy' that wrote header, ready."""
    s = await proxied_socket(port or gw.ws_port, header, pieces)
    c = await Client.connect(gw, sock=s, **kw)
    await c.ready()
    return c


def _audited(gw, event, peer, user):
    return ("audit: %s " % event in gw.stderr_text()
            and any(("peer=%s " % peer) in l and ("user=%s" % user) in l
                    for l in gw.stderr_text().splitlines()
                    if "audit: %s " % event in l))


async def test_forwarded_addresses_have_their_own_identify_buckets(
        gateway_factory):
    """Two clients the headers say are one address share its identify
    bucket, whether v1 or v2 said it; another address (IPv6, its header in
    pieces with TLVs) has its own; a LOCAL header is the proxy itself. The
    audit lines name the forwarded addresses."""
    gw = gateway_factory(**_proxied(
        auth={"identify_rate": 1, "identify_burst": 2}))
    a, b = "203.0.113.7", "2001:db8::7"
    users = [uniq("u") for _ in range(5)]
    for i, header in enumerate((proxy_v1(a), proxy_v2(a, 40001))):
        c = await _via(gw, header)
        await c.identify(users[i], ["g1"])
    c = await _via(gw, proxy_v1(a, 40002))
    await c.send_identify(users[2], ["g1"])
    await c.expect_close(4008)
    c = await _via(gw, proxy_v2(b, 40003, tlvs=TLVS), pieces=5)
    await c.identify(users[3], ["g1"])
    c = await _via(gw, proxy_v2())
    await c.identify(users[4], ["g1"])

    await wait_until(lambda: _audited(gw, "auth ok", "127.0.0.1", users[4]),
                     T(5), "the audit lines")
    assert _audited(gw, "auth ok", a, users[0])
    assert _audited(gw, "auth ok", a, users[1])
    assert _audited(gw, "auth refused", a, users[2])
    assert _audited(gw, "auth ok", b, users[3])
    totals = await gw.totals()
    assert totals["auth_rate_limited"] == 1
    assert totals["proxy_header_failures"] == 0


async def test_connections_counted_per_forwarded_address(gateway_factory):
    """server.max_connections_per_ip counts the address the header names,
    not the proxy's."""
    gw = gateway_factory(**_proxied(server={"max_connections_per_ip": 1}))
    held = await _via(gw, proxy_v1("198.51.100.1"))
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
        await _via(gw, proxy_v2("198.51.100.1"))
    assert e.value.status_code == 429, e.value
    other = await _via(gw, proxy_v2("198.51.100.2"))
    await held.heartbeat_roundtrip()
    await other.heartbeat_roundtrip()
    assert "198.51.100.1 has 1 connections open" in gw.stderr_text()


async def _closed_unanswered(sock):
    """The gateway closes sock without a byte of answer."""
    loop = asyncio.get_running_loop()
    try:
        data = await asyncio.wait_for(loop.sock_recv(sock, 64), T(5))
    except ConnectionResetError:
        data = b""
    finally:
        sock.close()
    assert data == b"", data


async def test_malformed_or_unfinished_headers_are_closed(gateway_factory):
    """A connection without a header (an upgrade request where the header
    belongs), a header with a bad address and one whose length lies are
    closed at once and counted, their log lines rate-limited; a header
    that never ends is closed at the upgrade deadline."""
    gw = gateway_factory(**_proxied(
        websocket={"handshake_timeout_ms": int(T(0.5) * 1000)}))
    lying = bytearray(proxy_v2("203.0.113.7"))
    lying[15] = 8  # addresses of TCP over IPv4 take 12 bytes
    bad = [b"PROXY TCP4 203.0.113.300 127.0.0.1 1 2\r\n", bytes(lying[:24])]
    bad += [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"] * 8
    for header in bad:
        await _closed_unanswered(await proxied_socket(gw.ws_port, header))
    await wait_until(lambda: gw.get_json("/stats")["totals"][
        "proxy_header_failures"] == 10, T(5), "ten failures counted")
    lines = [l for l in gw.stderr_text().splitlines()
             if "PROXY protocol header refused" in l]
    # At most a line a second per worker, not one per connection.
    assert 1 <= len(lines) <= gw.config["server"]["workers"], lines
    assert "(from 127.0.0.1): PROXY protocol header refused: malformed" in (
        lines[0])

    slow = await proxied_socket(gw.ws_port, b"PROXY TCP4 203.0.113.7 ")
    await _closed_unanswered(slow)
    totals = await gw.totals()
    assert totals["handshake_failures"] == 1
    assert totals["proxy_header_failures"] == 10
    await Client.session(gw)  # and the gateway serves on


async def test_untrusted_source_is_refused(gateway_factory):
    """A source outside server.proxy_trusted is closed as accepted, with or
    without a header, counted and logged; the proxy's clients are not."""
    gw = gateway_factory(**_proxied())
    for header in (proxy_v1("203.0.113.7"), b""):
        s = await socket_from("127.0.0.2", gw.ws_port)
        if header:
            await asyncio.get_running_loop().sock_sendall(s, header)
        await _closed_unanswered(s)
    assert (await gw.totals())["proxy_untrusted"] == 2
    assert "127.0.0.2 is not in server.proxy_trusted" in gw.stderr_text()
    await Client.session(gw)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_header_before_the_tls_handshake(gateway_factory, wss_pair):
    """On tls.port the header comes first, then the ClientHello; the
    session's address is the header's."""
    gw = gateway_factory(**_proxied(tls={
        "enabled": True, "cert_file": wss_pair[0], "key_file": wss_pair[1]}))
    user = uniq("u")
    c = await _via(gw, proxy_v2("192.0.2.55", tlvs=TLVS), pieces=3,
                   port=gw.tls_port, url=gw.wss_url,
                   ssl=verifying_ctx(wss_pair[0]), server_hostname="127.0.0.1")
    await c.identify(user, ["g1"])
    await c.heartbeat_roundtrip()
    assert isinstance(c.ws.transport.get_extra_info("ssl_object"),
                      ssl.SSLObject)
    await wait_until(lambda: _audited(gw, "auth ok", "192.0.2.55", user),
                     T(5), "the audit line")
    # Without the header, the ClientHello is not one.
    raw = await socket_from("127.0.0.1", gw.tls_port)
    ctx = verifying_ctx(wss_pair[0])
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        await asyncio.wait_for(asyncio.open_connection(
            sock=raw, ssl=ctx, server_hostname="127.0.0.1"), T(5))
    raw.close()
    await wait_until(lambda: gw.get_json("/stats")["totals"][
        "proxy_header_failures"] == 1, T(5), "the failure counted")
