"""wss://: TLS beneath the WebSocket layer (tls.* options).

Certificates are made here with `openssl` (ECDSA P-256 and RSA-2048,
self-signed for 127.0.0.1), and clients verify them as a browser would.
Handshakes are driven with Python's ssl module on plain sockets, each with
a timeout; the protocol runs over websockets with ssl=.
"""

import asyncio
import os
import socket
import ssl
import subprocess
import time

import pytest

from gwtest import Client, Gateway, T, make_pair, uniq, wait_until
from test_resume import expect_ticks, parked, publish, resume
import conftest


def tls_section(cert, key, **more):
    sec = {"enabled": True, "cert_file": cert, "key_file": key}
    sec.update(more)
    return sec


def client_ctx(cafile, version=ssl.TLSVersion.TLSv1_2, ciphers=None):
    """A verifying client context pinned to one protocol version."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def handshake(port, ctx, session=None, timeout=5):
    """A TLS handshake to port; the connected SSLSocket (caller closes)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=T(timeout))
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                               session=session)
    except BaseException:
        raw.close()
        raise


def refused(port, ctx):
    """True when the server refuses ctx's handshake (an alert or a close)."""
    try:
        handshake(port, ctx).close()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    return False


def served_cert(port, cafile):
    """The DER certificate the server presents now."""
    s = handshake(port, client_ctx(cafile))
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def der_of(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


async def wss_session(gw, cafile, user, guilds):
    return await Client.session(gw, user, guilds, url=gw.wss_url,
                                ssl=client_ctx(cafile))


async def test_protocol_over_wss_ecdsa_and_rsa(gateway_factory, tmp_path):
    for kind in ("ec", "rsa"):
        cert, key = make_pair(tmp_path, "gw-" + kind, kind)
        gw = gateway_factory(tls=tls_section(cert, key))
        user, guild = uniq("u"), uniq("g")
        c = await wss_session(gw, cert, user, [guild])
        plain = await Client.session(gw, uniq("u"), [guild])
        await gw.apublish({"event": "message.create", "guildId": guild,
                           "data": {"kind": kind}})
        for cl in (c, plain):
            msg = await cl.expect_dispatch("message.create", guild)
            assert msg["data"] == {"kind": kind}, msg
        # Larger than one record each way: a message of 100 KB out.
        big = "x" * 100000
        await gw.apublish({"event": "message.create", "guildId": guild,
                           "data": {"big": big}})
        msg = await c.expect_dispatch("message.create", guild)
        assert msg["data"] == {"big": big}
        s = handshake(gw.tls_port, client_ctx(cert))
        try:
            assert s.version() == "TLSv1.2"
            name = s.cipher()[0]
            assert name.startswith("ECDHE-" + ("ECDSA" if kind == "ec"
                                               else "RSA")), name
            assert "GCM" in name or "CHACHA20" in name, name
        finally:
            s.close()
        await c.close()
        await plain.close()


async def test_alpn_http11(gateway_factory, tmp_path):
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key))
    ctx = client_ctx(cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    s = handshake(gw.tls_port, ctx)
    try:
        assert s.selected_alpn_protocol() == "http/1.1"
    finally:
        s.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_old_versions_and_non_aead_suites_refused(gateway_factory,
                                                        tmp_path):
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key))
    before = (await gw.totals())["tls_handshake_failures"]
    # OpenSSL 3 offers TLS 1.0 and 1.1 only at security level 0.
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = client_ctx(cert, version, "DEFAULT:@SECLEVEL=0")
        assert refused(gw.tls_port, ctx), version
    # CBC with an ECDHE key exchange, and a static RSA key exchange.
    for suite in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA",
                  "AES128-GCM-SHA256"):
        assert refused(gw.tls_port, client_ctx(cert, ciphers=suite)), suite
    # The same client is served with an AEAD suite of TLS 1.2.
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256",
                  "ECDHE-ECDSA-AES256-GCM-SHA384",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"):
        s = handshake(gw.tls_port, client_ctx(cert, ciphers=suite))
        assert s.cipher()[0] == suite
        s.close()

    async def counted():
        return (await gw.totals())["tls_handshake_failures"] >= before + 5
    await wait_until(counted, T(5), "tls_handshake_failures to count 5")
    assert "handshake refused" in gw.stderr_text()


async def test_session_ticket_resumption(gateway_factory, tmp_path):
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key))
    ctx = client_ctx(cert)
    first = handshake(gw.tls_port, ctx)
    # TLS 1.2 sends the ticket during the handshake.
    sess = first.session
    assert not first.session_reused
    assert sess is not None and sess.has_ticket
    first.close()
    # Four workers: every second connection may land on another one, and
    # the ticket keys are the process's.
    for _ in range(4):
        again = handshake(gw.tls_port, ctx, session=sess)
        try:
            assert again.session_reused
        finally:
            again.close()


async def test_record_buffers_released_only_for_sessions_that_stay(
        gateway_factory, tmp_path):
    """tls.buffer_release_ms: a connection that closes sooner releases
    nothing; one that stays open has its buffers released after it."""
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key, buffer_release_ms=400))
    ctx = client_ctx(cert)
    for _ in range(3):
        handshake(gw.tls_port, ctx).close()
    time.sleep(T(1.0))  # past their due time, had they stayed
    assert (await gw.totals())["tls_buffers_released"] == 0
    opened = time.monotonic()
    stays = handshake(gw.tls_port, ctx)
    try:
        await wait_until(
            lambda: gw.get_json("/stats")["totals"]["tls_buffers_released"]
            == 1, T(5), "the open session's buffers released")
        assert time.monotonic() - opened >= 0.4
        # And records still go through it: an upgrade answered in full.
        stays.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stays.recv(64).startswith(b"HTTP/1.1 ")
    finally:
        stays.close()


async def test_sighup_swaps_the_certificate_and_keeps_sessions(
        gateway_factory, tmp_path):
    cert1, key1 = make_pair(tmp_path, "one", "ec")
    cert2, key2 = make_pair(tmp_path, "two", "rsa")
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n"
                   "-----END PRIVATE KEY-----\n")
    gw = gateway_factory(tls=tls_section(cert1, key1))
    ca = tmp_path / "both.pem"
    ca.write_text(open(cert1).read() + open(cert2).read())
    user, guild = uniq("u"), uniq("g")
    c = await wss_session(gw, str(ca), user, [guild])
    assert served_cert(gw.tls_port, str(ca)) == der_of(cert1)

    await gw.reload(tls={"cert_file": cert2, "key_file": key2})
    assert "TLS certificate %s loaded" % cert2 in gw.stderr_text()
    assert served_cert(gw.tls_port, str(ca)) == der_of(cert2)
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 1}})
    await c.expect_dispatch("message.create", guild)

    # A key that does not load, then one that does not match: each
    # logged, nothing changed, nobody dropped.
    for key, why in ((str(bad), "cannot be read as a private key"),
                     (key1, "does not match")):
        await gw.reload(tls={"cert_file": cert2, "key_file": key})
        text = gw.stderr_text()
        assert why in text and "TLS certificate and key are unchanged" in text
        assert served_cert(gw.tls_port, str(ca)) == der_of(cert2)
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 2}})
    msg = await c.expect_dispatch("message.create", guild)
    assert msg["data"] == {"n": 2}
    fresh = await wss_session(gw, str(ca), uniq("u"), [guild])
    await fresh.close()
    await c.close()


@pytest.mark.time_limit(120)
async def test_resume_moves_the_tls_session_to_its_worker(gateway_factory,
                                                          tmp_path):
    """A wss:// resume that lands on a worker other than the session's
    goes there with its TLS session: the replay, resumed, then live both
    ways over the moved connection, for every one of them."""
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key), server={"workers": 4},
                         session={"resume_window_ms": 30000})
    n, guild = 16, uniq("g")
    clients = [await wss_session(gw, cert, uniq("u"), [guild])
               for _ in range(n)]
    await publish(gw, guild, 2)
    for c in clients:
        await expect_ticks(c, 1, 0, 2)
        c.abort()
    await parked(gw, n)
    await publish(gw, guild, 3, start=2)
    resumed = []
    for i, c in enumerate(clients):
        r = await resume(gw, c, 2, url=gw.wss_url, ssl=client_ctx(cert))
        if i % 2:
            # Sent right behind the resume, it is often read with it: it
            # then travels as plaintext beside the TLS session.
            await r.send({"event": "heartbeat", "data": {}})
        await expect_ticks(r, 3, 2, 3)
        msg = await r.expect("resumed")
        assert msg["data"] == {"sessionId": c.session_id, "replayed": 3}, msg
        if i % 2:
            await r.expect("heartbeat_ack")
        resumed.append(r)
    await publish(gw, guild, 1, start=5)
    for r in resumed:
        await expect_ticks(r, 6, 5, 1)
        await r.heartbeat_roundtrip()
    totals = await gw.totals()
    # Sixteen resumes over four workers: all on the session's own worker
    # has odds of 1 in 4**16.
    assert totals["resume_handed_over"] >= 1, totals
    assert totals["resume_hand_off_failures"] == 0, totals
    assert totals["resumed"] == n and totals["parked"] == 0, totals
    assert totals["connections"] == n, totals
    assert totals["tls_handshake_failures"] == 0, totals
    for r in resumed:
        await r.close()


def start_expecting_failure(workdir, tls, env=None):
    """Runs the daemon with this [tls]; returns (exited, stderr)."""
    gw = Gateway(conftest.BIN, workdir, {"tls": tls})
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        gw._configure()
        err = gw._spawn()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = gw.tail()
    problems = gw.stop()
    return err, text, problems


async def test_bad_pair_refused_at_start(tmp_path):
    cert1, key1 = make_pair(tmp_path, "one", "ec")
    cert2, _ = make_pair(tmp_path, "two", "ec")
    enc_cert, enc_key = make_pair(tmp_path, "enc", "rsa", password="s3cret")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("garbage\n")
    cases = [
        (tls_section(cert1, str(garbage)), {}, "tls.key_file"),
        (tls_section(cert1, str(tmp_path / "missing.key")), {},
         "No such file"),
        (tls_section(cert2, key1), {}, "does not match tls.cert_file"),
        (tls_section(str(garbage), key1), {}, "tls.cert_file"),
        (tls_section(enc_cert, enc_key), {}, "GATEWAYD_TLS_KEY_PASSWORD"),
        (tls_section(enc_cert, enc_key),
         {"GATEWAYD_TLS_KEY_PASSWORD": "wrong"}, "tls.key_file"),
        ({"enabled": True}, {}, "needs tls.cert_file and tls.key_file"),
    ]
    for i, (tls, env, why) in enumerate(cases):
        d = tmp_path / ("case%d" % i)
        d.mkdir()
        err, text, _ = start_expecting_failure(d, tls, env)
        assert err is not None and "exited with status 1" in err, (tls, err)
        assert why in text, (why, text)
    # The encrypted key with its password from the environment starts.
    d = tmp_path / "good"
    d.mkdir()
    err, text, problems = start_expecting_failure(
        d, tls_section(enc_cert, enc_key),
        {"GATEWAYD_TLS_KEY_PASSWORD": "s3cret"})
    assert err is None, (err, text)
    assert not problems, problems


def slow_client_hello(port):
    """A socket that has sent the first bytes of a TLS record only."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    s.sendall(b"\x16\x03\x01\x02")
    return s


@pytest.mark.time_limit(40)
async def test_garbage_and_slow_hellos_do_not_stall_others(gateway_factory,
                                                           tmp_path):
    cert, key = make_pair(tmp_path, "gw", "ec")
    gw = gateway_factory(tls=tls_section(cert, key),
                         websocket={"handshake_timeout_ms": 1500})
    before = (await gw.totals())["tls_handshake_failures"]
    garbage = []
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 64,
                    os.urandom(2048)):
        s = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=T(5))
        s.sendall(payload)
        garbage.append(s)
    # Slow ones, on every worker: a partial record header, then silence;
    # and some that never send a byte.
    slow = [slow_client_hello(gw.tls_port) for _ in range(8)]
    silent = [socket.create_connection(("127.0.0.1", gw.tls_port),
                                       timeout=T(5)) for _ in range(8)]
    t0 = time.monotonic()
    user, guild = uniq("u"), uniq("g")
    c = await wss_session(gw, cert, user, [guild])
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {}})
    await c.expect_dispatch("message.create", guild)
    assert time.monotonic() - t0 < T(3), "a client waited behind the others"

    # Garbage is refused at once; the slow and the silent are closed at
    # the upgrade deadline. Reads are bounded by the sockets' timeouts.
    def closed(s):
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            return False
        return True

    loop = asyncio.get_running_loop()
    for s in garbage + slow + silent:
        s.settimeout(T(5))
        assert await loop.run_in_executor(None, closed, s)
        s.close()

    async def counted():
        return ((await gw.totals())["tls_handshake_failures"]
                >= before + len(garbage) + len(slow) + len(silent))
    await wait_until(counted, T(5), "every refused handshake counted")
    # The established session lived through all of it.
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 2}})
    await c.expect_dispatch("message.create", guild)
    await c.close()


def cert_for_host(port, host):
    """The DER certificate the server presents to a client naming host
    in its SNI (none checked here: the test compares them)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    s = ctx.wrap_socket(raw, server_hostname=host)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


async def test_sni_chooses_the_certificate_and_reloads(gateway_factory,
                                                       tmp_path):
    default = make_pair(tmp_path, "default", "ec")
    chat = make_pair(tmp_path, "chat", "ec", san="DNS:chat.test")
    api = make_pair(tmp_path, "api", "rsa", san="DNS:*.api.test,DNS:api.test")
    sni = "%s:%s, %s:%s" % (*chat, *api)
    gw = gateway_factory(tls=tls_section(*default, sni_certs=sni))
    port = gw.tls_port
    for host, pair in (("chat.test", chat), ("CHAT.test", chat),
                       ("v1.api.test", api), ("api.test", api),
                       ("a.v1.api.test", default), ("other.test", default),
                       (None, default)):
        assert cert_for_host(port, host) == der_of(pair[0]), host
    # A browser-grade client, verifying the name it asked for.
    ctx = ssl.create_default_context(cafile=chat[0])
    c = await Client.session(gw, uniq("u"), [], url=gw.wss_url, ssl=ctx,
                             server_hostname="chat.test")
    await c.heartbeat_roundtrip()

    # SIGHUP loads the SNI pairs again with the default one.
    chat2 = make_pair(tmp_path, "chat2", "ec", san="DNS:chat.test")
    await gw.reload(tls={"sni_certs": "%s:%s" % chat2})
    assert cert_for_host(port, "chat.test") == der_of(chat2[0])
    assert cert_for_host(port, "v1.api.test") == der_of(default[0])
    # A pair that does not load, or a certificate that names no host,
    # changes nothing, and nobody is dropped.
    for bad, why in (("%s:%s" % (chat2[0], api[1]), "does not match"),
                     ("%s:%s" % default, "names no host")):
        await gw.reload(tls={"sni_certs": bad})
        text = gw.stderr_text()
        assert why in text and "TLS certificate and key are unchanged" in text
        assert cert_for_host(port, "chat.test") == der_of(chat2[0])
    await c.heartbeat_roundtrip()
    await c.close()


async def test_sni_pair_that_does_not_load_stops_the_start(tmp_path):
    default = make_pair(tmp_path, "default", "ec")
    chat = make_pair(tmp_path, "chat", "ec", san="DNS:chat.test")
    cases = [("%s:%s" % default, "names no host"),
             ("%s:%s" % (chat[0], default[1]), "does not match"),
             (chat[0], "is not a list of cert_file:key_file pairs")]
    for i, (sni, why) in enumerate(cases):
        d = tmp_path / ("case%d" % i)
        d.mkdir()
        err, text, _ = start_expecting_failure(
            d, tls_section(*default, sni_certs=sni))
        assert err is not None and "exited with status 1" in err, (sni, err)
        assert why in text, (why, text)
