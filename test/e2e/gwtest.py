"""Helpers for the gatewayd end-to-end suite.

Everything here drives the real daemon over 127.0.0.1: a Gateway object that
starts ./gatewayd with a generated TOML config and talks to its HTTP port, a
WebSocket client (websockets 10.4, legacy asyncio API) that speaks the
gateway protocol, and a raw-socket client for what a well-behaved library
refuses to send (bad handshakes, invalid UTF-8, protocol violations, stalls).

Every wait is bounded, and every bound is multiplied by
GATEWAYD_TIMEOUT_SCALE (default 1; the sanitizer runs set it to 3).
"""

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.parse
import uuid

import websockets

SCALE = float(os.environ.get("GATEWAYD_TIMEOUT_SCALE", "1") or "1")
# The write path every generated config asks for (server.io_uring): run-all
# runs the suite as it is (auto: io_uring where the kernel allows it) and
# its fan-out, flood, slow-consumer and drain tests again with "off".
IO_URING = os.environ.get("GATEWAYD_IO_URING") or "auto"

SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"
API_KEY = "e2e-publish-key-0123456789abcdef"

SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")

# Strings whose presence in the daemon's stderr fails the test.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "LeakSanitizer",
)

STAT_KEYS = (
    "connections", "sessions", "guilds", "frames_in", "frames_out",
    "bytes_in", "bytes_out", "ring_drops", "slow_consumer_closes",
    "handshake_failures", "auth_failures",
)


def T(seconds):
    """A timeout of `seconds`, scaled for slow (sanitizer) builds."""
    return seconds * SCALE


def uniq(prefix):
    """A name no other test uses, so tests sharing a daemon never collide."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# JWT (HS256 signed here with hmac; no third-party library)

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jdump(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def make_jwt(payload, secret=SECRET, alg="HS256", header=None):
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing = b64url(_jdump(head)) + "." + b64url(_jdump(payload))
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return signing + "." + b64url(sig)


def token_for(user, guilds=None, secret=SECRET, exp_in=3600, alg="HS256",
              **claims):
    now = int(time.time())
    payload = {"sub": user, "iat": now, "exp": now + exp_in}
    if guilds is not None:
        payload["guilds"] = list(guilds)
    payload.update(claims)
    return make_jwt(payload, secret=secret, alg=alg)


# --------------------------------------------------------------------------
# TLS certificates (made with openssl, as an operator would)

def make_pair(dirpath, name, kind="ec", password=None,
              san="IP:127.0.0.1"):
    """A self-signed certificate for san and its key, as files."""
    cert = os.path.join(str(dirpath), name + ".crt")
    key = os.path.join(str(dirpath), name + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
              if kind == "ec" else ["-newkey", "rsa:2048"])
    keyopt = (["-passout", "pass:" + password] if password else ["-nodes"])
    subprocess.run(["openssl", "req", "-x509", *newkey, *keyopt,
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=" + san],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def verifying_ctx(cafile):
    """A client context that trusts cafile alone, as a browser would its
    roots: the name and the chain are checked."""
    return ssl.create_default_context(cafile=cafile)


# --------------------------------------------------------------------------
# The daemon

class HttpResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError("HTTP %d body is not JSON (%s): %r"
                                 % (self.status, e, self.body[:300]))

    def __repr__(self):
        return "<HTTP %d %r>" % (self.status, self.body[:200])


def default_config(ws_port, http_port):
    return {
        "server": {"bind": "127.0.0.1", "ws_port": ws_port,
                   "http_port": http_port, "workers": 4, "drain_ms": 300,
                   "io_uring": IO_URING},
        "websocket": {"max_message_size": 65536, "max_header_size": 8192,
                      "handshake_timeout_ms": 2000, "write_ring_size": 1024},
        # Sessions end with their connection unless a test parks them
        # for a resume (test_resume.py).
        "session": {"heartbeat_interval_ms": 60000,
                    "max_guilds_per_session": 100, "resume_window_ms": 0},
        # The abuse limits of authentication are off but where a test
        # turns them on (test_abuse.py): every client comes from loopback.
        "auth": {"jwt_secret": SECRET, "jwt_algorithms": "HS256",
                 "identify_rate": 0, "identify_user_rate": 0,
                 "fail_delay_ms": 0, "fail_limit": 0},
        "http": {"publish_api_key": API_KEY},
        "log": {"level": "info"},
        # Broker links are off unless a test starts a server for them.
        "redis": {"enabled": False},
        "amqp": {"enabled": False},
        # Announcements would interleave with what the tests expect; the
        # presence tests turn it on.
        "presence": {"enabled": False},
    }


def to_toml(cfg):
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        return json.dumps(str(v))  # a TOML basic string is JSON-compatible
    out = []
    for section, keys in cfg.items():
        out.append("[%s]" % section)
        out.extend("%s = %s" % (k, val(v)) for k, v in keys.items())
        out.append("")
    return "\n".join(out)


class Gateway:
    """One gatewayd process with its own config, ports and log files."""

    def __init__(self, binary, workdir, overrides=None, wss=None):
        """wss: a (cert, key) pair to serve clients over wss:// with; the
        clients of this gateway (Client, RawConn.to) then connect there."""
        self.binary = binary
        self.workdir = str(workdir)
        self.overrides = overrides or {}
        self.wss = wss
        self.proc = None
        self.secret = SECRET
        self.api_key = API_KEY
        self._seen = 0  # stderr bytes already scanned for sanitizer reports
        self.stopped_by_test = False
        self.killed = False  # by the test, with SIGKILL
        # Run in the child before exec (subprocess's preexec_fn), or None.
        self.preexec = None

    # -- lifecycle

    def start(self, attempts=3):
        for attempt in range(attempts):
            self._configure()
            err = self._spawn()
            if err is None:
                return self
            in_use = "in use" in self.tail().lower()
            self.stop()
            if not in_use or attempt == attempts - 1:
                raise RuntimeError("gatewayd did not start: %s\n--- stderr tail "
                                   "(%s) ---\n%s" % (err, self.stderr_path,
                                                     self.tail()))
        raise AssertionError("unreachable")

    def _configure(self):
        self.ws_port, self.http_port = free_port(), free_port()
        while self.http_port == self.ws_port:
            self.http_port = free_port()
        cfg = default_config(self.ws_port, self.http_port)
        if self.wss:
            cfg["tls"] = {"enabled": True, "cert_file": self.wss[0],
                          "key_file": self.wss[1]}
        for section, keys in self.overrides.items():
            cfg.setdefault(section, {}).update(keys)
        self.tls_port = None
        if cfg.get("tls", {}).get("enabled"):
            self.tls_port = free_port()
            while self.tls_port in (self.ws_port, self.http_port):
                self.tls_port = free_port()
            cfg["tls"]["port"] = self.tls_port
            self.wss_url = "wss://127.0.0.1:%d" % self.tls_port
        self.config = cfg
        # What a client of this gateway connects to unless told otherwise.
        if self.wss:
            self.client_port, self.ws_url = self.tls_port, self.wss_url
            self.client_ssl = verifying_ctx(self.wss[0])
        else:
            self.client_port, self.client_ssl = self.ws_port, None
            self.ws_url = "ws://127.0.0.1:%d" % self.ws_port
        self.http_url = "http://127.0.0.1:%d" % self.http_port
        self.config_path = os.path.join(self.workdir, "gateway.toml")
        with open(self.config_path, "w") as f:
            f.write(to_toml(cfg))

    def _spawn(self):
        self.stderr_path = os.path.join(self.workdir, "stderr.log")
        self.stdout_path = os.path.join(self.workdir, "stdout.log")
        env = dict(os.environ)
        # These would override the config file (see include/gw/config.h).
        env.pop("GATEWAYD_JWT_SECRET", None)
        env.pop("GATEWAYD_API_KEY", None)
        self._seen = 0
        with open(self.stderr_path, "wb") as err, \
                open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.config_path], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                preexec_fn=self.preexec)
        deadline = time.monotonic() + T(10)
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited with status %s before /health answered" % (
                    self.proc.returncode)
            try:
                r = self.http("GET", "/health", timeout=0.5)
                if r.status == 200:
                    return None
                last = "GET /health -> %d" % r.status
            except OSError as e:
                last = "GET /health: %s" % e
            time.sleep(0.02)  # polling the health endpoint, bounded above
        return "GET /health not 200 within %.1fs (%s)" % (T(10), last)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def expects_proxy(self, port):
        """Whether connections to this port must begin with a PROXY
        protocol header (server.proxy_protocol, tls.proxy_protocol)."""
        if port == self.ws_port:
            return self.config["server"].get("proxy_protocol", False)
        return (port == self.tls_port
                and self.config["tls"].get("proxy_protocol", False))

    def kill(self):
        """SIGKILL, as a crash or an OOM kill would; stop() then expects
        the signal."""
        self.stopped_by_test = self.killed = True
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM, wait (kill -9 after 10 s); returns a list of problems."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(T(10))
            except subprocess.TimeoutExpired:
                problems.append("did not exit within %.0fs of SIGTERM; killed "
                                "with SIGKILL" % T(10))
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if self.killed and rc == -signal.SIGKILL:
            rc = None
        if rc is not None and rc < 0 and not problems:
            problems.append("exited with signal %d (%s)" % (
                -rc, signal.Signals(-rc).name))
        elif rc and rc > 0:
            problems.append("exited with status %d" % rc)
        problems.extend(self.new_findings())
        return problems

    # -- stderr

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines=60):
        return "\n".join(self.stderr_text().splitlines()[-lines:])

    def new_findings(self):
        """Sanitizer reports written to stderr since the last call."""
        text = self.stderr_text()
        fresh, self._seen = text[self._seen:], len(text)
        return ["stderr contains %r" % m for m in SANITIZER_MARKERS
                if m in fresh]

    def health_problems(self):
        """Problems visible while the test runs: a crash or a report."""
        problems = self.new_findings()
        # A test that stopped the daemon itself (a drain) checks its exit.
        if self.proc is not None and self.proc.poll() is not None \
                and not self.stopped_by_test:
            rc = self.proc.returncode
            problems.insert(0, "daemon died during the test (%s)" % (
                "signal %d" % -rc if rc < 0 else "status %d" % rc))
        return problems

    # -- HTTP

    def http(self, method, path, body=None, headers=None, timeout=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=timeout or T(10))
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            hdrs = dict(headers or {})
            if body is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return HttpResponse(r.status, {k.lower(): v for k, v in
                                           r.getheaders()}, data)
        finally:
            conn.close()

    def get_json(self, path):
        r = self.http("GET", path)
        assert r.status == 200, "GET %s -> %r" % (path, r)
        return r.json()

    async def reload(self, **overrides):
        """Writes these changes into the config file and sends SIGHUP;
        returns once the daemon has logged the outcome."""
        for section, keys in overrides.items():
            self.config.setdefault(section, {}).update(keys)
        with open(self.config_path, "w") as f:
            f.write(to_toml(self.config))
        await self.sighup()

    async def sighup(self):
        def outcomes():
            text = self.stderr_text()
            return (text.count("SIGHUP: configuration reloaded")
                    + text.count("the configuration is unchanged"))
        before = outcomes()
        self.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: outcomes() > before, T(5),
                         "the daemon's answer to SIGHUP")

    def publish(self, envelope, key="default", bearer=False):
        """POST /publish; returns the HttpResponse (not checked)."""
        key = self.api_key if key == "default" else key
        headers = {}
        if key is not None:
            if bearer:
                headers["Authorization"] = "Bearer " + key
            else:
                headers["X-API-Key"] = key
        return self.http("POST", "/publish", body=envelope, headers=headers)

    def publish_ok(self, envelope):
        r = self.publish(envelope)
        assert r.status == 202, "POST /publish %r -> %r" % (envelope, r)
        body = r.json()
        assert body.get("accepted") is True, body
        return body

    async def apublish(self, envelope):
        """publish_ok run off the event loop, so clients keep reading."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.publish_ok, envelope)

    async def aget_json(self, path):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.get_json, path)

    async def totals(self):
        return (await self.aget_json("/stats"))["totals"]


class KeepAlivePublisher:
    """POST /publish over one persistent connection (for many events)."""

    def __init__(self, gw):
        self.gw = gw
        self.conn = None

    def publish(self, envelope):
        body = json.dumps(envelope).encode()
        headers = {"Content-Type": "application/json",
                   "X-API-Key": self.gw.api_key}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.gw.http_port, timeout=T(10))
            try:
                self.conn.request("POST", "/publish", body=body,
                                  headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                assert r.status == 202, "POST /publish -> %d %r" % (
                    r.status, data[:200])
                return
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                # The server dropped an idle keep-alive connection before
                # reading this request; send it again on a fresh one.
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --------------------------------------------------------------------------
# The PROXY protocol, as HAProxy's send-proxy (v1) and send-proxy-v2 write it

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, sport=40000, dport=443):
    """A version 1 line naming client src:sport."""
    fam, dst = ("TCP6", "::1") if ":" in src else ("TCP4", "127.0.0.1")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def proxy_v2(src=None, sport=40000, dport=443, tlvs=b""):
    """A version 2 header naming client src:sport over TCP, with the TLVs
    given; without src, LOCAL (the proxy's own health check)."""
    if src is None:
        return PROXY_V2_SIG + b"\x20\x00\x00\x00"
    af, fam, dst = ((socket.AF_INET6, 0x21, "::1") if ":" in src
                    else (socket.AF_INET, 0x11, "127.0.0.1"))
    body = (socket.inet_pton(af, src) + socket.inet_pton(af, dst)
            + struct.pack("!HH", sport, dport) + tlvs)
    return PROXY_V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) \
        + body


async def proxied_socket(port, header, pieces=1, src="127.0.0.1"):
    """A TCP connection to 127.0.0.1:port from src that has sent header, in
    `pieces` writes a little apart, for websockets' sock=."""
    s = await socket_from(src, port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    loop = asyncio.get_running_loop()
    step = -(-len(header) // pieces)
    for i in range(0, len(header), step):
        if i > 0:
            await asyncio.sleep(0.02)  # so that each piece is a segment
        await asyncio.wait_for(loop.sock_sendall(s, header[i:i + step]), T(5))
    return s


# --------------------------------------------------------------------------
# Polling helper (for state that is only observable by asking, like /stats)

async def socket_from(src, port):
    """A TCP connection to 127.0.0.1:port from loopback address src, for
    websockets' sock= (per-address limits see the source address)."""
    s = socket.socket()
    s.bind((src, 0))
    s.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
        s, ("127.0.0.1", port)), T(5))
    return s


async def wait_until(check, timeout, what):
    """Calls check() (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------
# Clients opened by a test; the runner aborts whatever is left afterwards.

_open = []


async def abort_all():
    while _open:
        c = _open.pop()
        try:
            c.abort()
        except Exception:
            pass
    await asyncio.sleep(0)


class Client:
    """A gateway protocol client over websockets' legacy asyncio API."""

    def __init__(self, ws, gw):
        self.ws = ws
        self.gw = gw
        self.session_id = None
        self.user = None
        self.guilds = None
        _open.append(self)

    @classmethod
    async def connect(cls, gw, path="/", url=None, **kw):
        """url: the base, gw.ws_url unless given (gw.wss_url with ssl=);
        gw.ws_url is wss:// when the gateway serves its clients over TLS,
        and then gw.client_ssl is the context."""
        opts = dict(ping_interval=None, close_timeout=T(3),
                    open_timeout=T(10), compression=None, max_size=2 ** 24)
        if url is None and gw.client_ssl is not None:
            opts["ssl"] = gw.client_ssl
        opts.update(kw)
        port = urllib.parse.urlsplit(url or gw.ws_url).port
        if "sock" not in opts and gw.expects_proxy(port):
            # As the proxy's own connection would: a LOCAL header.
            opts["sock"] = await proxied_socket(port, proxy_v2())
        ws = await asyncio.wait_for(
            websockets.connect((url or gw.ws_url) + path, **opts), T(15))
        return cls(ws, gw)

    @classmethod
    async def session(cls, gw, user=None, guilds=(), token_guilds=None, **kw):
        """connect + ready + identify + identified."""
        c = await cls.connect(gw, **kw)
        await c.ready()
        await c.identify(user or uniq("u"), guilds, token_guilds=token_guilds)
        return c

    def abort(self):
        if self.ws.transport is not None:
            self.ws.transport.abort()

    # -- receive

    async def recv_raw(self, timeout=5):
        try:
            return await asyncio.wait_for(self.ws.recv(), T(timeout))
        except asyncio.TimeoutError:
            raise AssertionError("no message within %.1fs (session %s)"
                                 % (T(timeout), self.session_id)) from None

    async def recv(self, timeout=5, skip_heartbeats=True):
        """The next message as a dict; server heartbeats skipped."""
        while True:
            raw = await self.recv_raw(timeout)
            assert isinstance(raw, str), "binary frame from server: %r" % (
                raw[:100],)
            try:
                msg = json.loads(raw)
            except ValueError:
                raise AssertionError("server sent non-JSON: %r" % raw[:300])
            assert isinstance(msg, dict), "server sent non-object: %r" % msg
            if skip_heartbeats and msg.get("event") == "heartbeat" \
                    and "seq" not in msg:
                continue
            return msg

    async def expect(self, event, timeout=5):
        msg = await self.recv(timeout)
        assert msg.get("event") == event, "expected %r, got %r" % (event, msg)
        assert isinstance(msg.get("data"), dict), msg
        return msg

    async def expect_dispatch(self, event, guild=None, timeout=5):
        msg = await self.recv(timeout)
        assert "seq" in msg, "expected dispatch %r, got %r" % (event, msg)
        assert msg.get("event") == event, "expected %r, got %r" % (event, msg)
        check_dispatch(msg, guild)
        return msg

    async def expect_close(self, code, timeout=5, allow=("error",),
                           allow_dispatches=False):
        """Reads until the server closes; asserts its close code."""
        seen = []
        deadline = time.monotonic() + T(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection not closed within %.1fs "
                                     "(expected %d); got %s"
                                     % (T(timeout), code, _summary(seen)))
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            except websockets.ConnectionClosed as e:
                assert e.rcvd is not None, (
                    "expected close code %d, but the connection ended without "
                    "a close frame (%s)" % (code, e))
                assert e.rcvd.code == code, "expected close code %d, got %s" % (
                    code, e)
                return seen
            try:
                msg = json.loads(raw)
            except (ValueError, TypeError):
                raise AssertionError("server sent %r before closing" % raw[:200])
            ok = (msg.get("event") == "heartbeat"
                  or msg.get("event") in allow
                  or (allow_dispatches and "seq" in msg))
            assert ok, "expected close %d, got message %s" % (
                code, _summary([msg]))
            seen.append(msg)

    # -- send

    async def send(self, obj):
        await asyncio.wait_for(self.ws.send(json.dumps(obj)), T(5))

    async def send_text(self, text):
        await asyncio.wait_for(self.ws.send(text), T(5))

    async def ready(self):
        msg = await self.expect("ready")
        data = msg["data"]
        sid = data.get("sessionId")
        assert isinstance(sid, str) and SESSION_ID_RE.match(sid), (
            "bad sessionId in %r" % msg)
        assert data.get("heartbeatInterval") == \
            self.gw.config["session"]["heartbeat_interval_ms"], msg
        self.session_id = sid
        return data

    async def identify(self, user, guilds=(), token=None, token_guilds=None):
        """Sends identify and returns the identified data."""
        await self.send_identify(user, guilds, token, token_guilds)
        msg = await self.expect("identified")
        data = msg["data"]
        assert data.get("userId") == user, msg
        assert data.get("sessionId") == self.session_id, (
            "identified sessionId %r != ready sessionId %r"
            % (data.get("sessionId"), self.session_id))
        assert isinstance(data.get("guildIds"), list), msg
        self.user = user
        self.guilds = data["guildIds"]
        return data

    async def send_identify(self, user, guilds=(), token=None,
                            token_guilds=None):
        if token is None:
            token = token_for(user, guilds=token_guilds,
                              secret=self.gw.secret)
        await self.send({"event": "identify",
                         "data": {"userId": user, "token": token,
                                  "guildIds": list(guilds)}})

    async def heartbeat_roundtrip(self, timeout=5):
        await self.send({"event": "heartbeat", "data": {}})
        return await self.expect("heartbeat_ack", timeout)

    async def subscribe(self, guild):
        await self.send({"event": "guild_subscribe", "data": {"guildId": guild}})
        msg = await self.expect("guild_subscribed")
        assert msg["data"] == {"guildId": guild}, msg

    async def unsubscribe(self, guild):
        await self.send({"event": "guild_unsubscribe",
                         "data": {"guildId": guild}})
        msg = await self.expect("guild_unsubscribed")
        assert msg["data"] == {"guildId": guild}, msg

    async def expect_error(self, code):
        msg = await self.expect("error")
        assert msg["data"].get("code") == code, "expected error %r, got %r" % (
            code, msg)
        assert isinstance(msg["data"].get("message"), str), msg
        return msg

    async def close(self, code=1000):
        await asyncio.wait_for(self.ws.close(code), T(10))


def _summary(msgs, keep=5):
    """A short description of received messages (payloads left out)."""
    brief = [{k: v for k, v in m.items() if k != "data" or len(str(v)) < 80}
             for m in msgs[-keep:]]
    return "%d message(s), last: %r" % (len(msgs), brief)


def check_dispatch(msg, guild=None):
    """Shape of a dispatch: seq, event, guildId only when guild-targeted."""
    assert isinstance(msg.get("seq"), int) and msg["seq"] >= 1, msg
    assert isinstance(msg.get("event"), str), msg
    assert isinstance(msg.get("data"), dict), msg
    if guild is None:
        assert "guildId" not in msg, "guildId in a non-guild dispatch: %r" % msg
        assert set(msg) == {"seq", "event", "data"}, msg
    else:
        assert msg.get("guildId") == guild, msg
        assert set(msg) == {"seq", "event", "guildId", "data"}, msg


async def assert_serving(gw):
    """The daemon still takes a fresh client through the whole flow."""
    c = await Client.connect(gw)
    try:
        await c.ready()
        user = uniq("probe")
        data = await c.identify(user, ["probe-guild"])
        assert data["guildIds"] == ["probe-guild"], data
    finally:
        c.abort()
        if c in _open:
            _open.remove(c)


# --------------------------------------------------------------------------
# Raw sockets: handshakes and frames written by hand

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def encode_frame(opcode, payload, fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


class RawConn:
    """A TCP client that writes exactly the bytes it is told to."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False
        _open.append(self)

    @classmethod
    async def open(cls, port, rcvbuf=None, ssl=None):
        """ssl: a client context to speak TLS with (TlsRawConn)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)),
                                   T(5))
            if ssl is not None:
                return await TlsRawConn.over(s, ssl)
        except BaseException:
            s.close()
            raise
        return cls(s)

    @classmethod
    async def to(cls, gw, rcvbuf=None):
        """A connection to the port gw's clients use, over TLS if theirs is."""
        return await cls.open(gw.client_port, rcvbuf, gw.client_ssl)

    def abort(self):
        self.sock.close()

    async def send(self, data):
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_sendall(self.sock, data), T(5))

    async def _recv(self, left):
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), left)

    async def _fill(self, deadline):
        """Reads more into self.buf; False at EOF or reset."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        try:
            data = await self._recv(left)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def _need(self, n, deadline, what):
        while len(self.buf) < n:
            try:
                if not await self._fill(deadline):
                    raise AssertionError("connection closed while reading %s "
                                         "(have %r)" % (what, self.buf[:200]))
            except asyncio.TimeoutError:
                raise AssertionError("timed out reading %s (have %r)"
                                     % (what, self.buf[:200])) from None

    async def read_http_response(self, timeout=5):
        """(status, {lower-case header: value}); the body stays in buf."""
        deadline = time.monotonic() + T(timeout)
        while b"\r\n\r\n" not in self.buf:
            try:
                if not await self._fill(deadline):
                    raise AssertionError("connection closed before a complete "
                                         "HTTP response (have %r)"
                                         % self.buf[:300])
            except asyncio.TimeoutError:
                raise AssertionError("no HTTP response within %.1fs (have %r)"
                                     % (T(timeout), self.buf[:300])) from None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0].startswith("HTTP/1."), "bad status line %r" % lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    @staticmethod
    def upgrade_request(port, path="/", headers=None, key=None):
        hdrs = {
            "Host": "127.0.0.1:%d" % port,
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        }
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        req = "GET %s HTTP/1.1\r\n" % path
        req += "".join("%s: %s\r\n" % kv for kv in hdrs.items())
        return (req + "\r\n").encode()

    async def handshake(self, port, path="/"):
        key = base64.b64encode(os.urandom(16)).decode()
        await self.send(self.upgrade_request(port, path, key=key))
        status, headers = await self.read_http_response()
        assert status == 101, "handshake answered %d %r" % (status, headers)
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode())
                                .digest()).decode()
        assert headers.get("sec-websocket-accept") == want, headers
        assert headers.get("upgrade", "").lower() == "websocket", headers
        assert "upgrade" in headers.get("connection", "").lower(), headers

    async def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        await self.send(encode_frame(opcode, payload, fin, mask, rsv))

    async def read_frame(self, timeout=5):
        """(fin, opcode, payload) of the next server frame."""
        deadline = time.monotonic() + T(timeout)
        await self._need(2, deadline, "frame header")
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frame is masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            await self._need(4, deadline, "frame length")
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            await self._need(10, deadline, "frame length")
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        await self._need(off + n, deadline, "frame payload")
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def read_json(self, timeout=5):
        """The next text message (server heartbeats skipped) as a dict."""
        while True:
            fin, op, payload = await self.read_frame(timeout)
            assert op == OP_TEXT and fin, "expected a text frame, got op %d %r" % (
                op, payload[:100])
            msg = json.loads(payload)
            if msg.get("event") != "heartbeat":
                return msg

    async def expect_close(self, code, timeout=5):
        """Reads frames until a close frame; asserts its status code."""
        seen = []
        while True:
            try:
                fin, op, payload = await self.read_frame(timeout)
            except AssertionError as e:
                raise AssertionError("expected close frame %d: %s; frames "
                                     "before: %r" % (code, e, seen[-5:]))
            if op == OP_CLOSE:
                assert len(payload) >= 2, "close frame without a status code"
                got = struct.unpack("!H", payload[:2])[0]
                assert got == code, "expected close code %d, got %d (%r)" % (
                    code, got, payload[2:])
                return seen
            seen.append((op, payload[:100]))
            assert op in (OP_TEXT, OP_PONG), "unexpected frame op %d" % op
            if op == OP_TEXT:
                msg = json.loads(payload)
                assert msg.get("event") in ("heartbeat", "error"), (
                    "expected close %d, got %r" % (code, msg))

    async def wait_closed(self, timeout):
        """Reads until the server closes the TCP connection; returns what
        arrived in between. Fails if it stays open past `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                await self._fill(deadline)
            except asyncio.TimeoutError:
                raise AssertionError("server kept the connection open for "
                                     "%.1fs (received %r)"
                                     % (timeout, self.buf[:200])) from None
        return self.buf


class TlsRawConn(RawConn):
    """RawConn over TLS: the bytes it is told to send go out encrypted.
    asyncio's sock_* calls take no SSLSocket, so this one reads and writes
    through a stream."""

    def __init__(self, reader, writer):
        super().__init__(None)
        self.reader, self.writer = reader, writer

    @classmethod
    async def over(cls, sock, ctx):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            sock=sock, ssl=ctx, server_hostname="127.0.0.1"), T(5))
        return cls(reader, writer)

    def abort(self):
        self.writer.transport.abort()

    async def send(self, data):
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), T(5))

    async def _recv(self, left):
        return await asyncio.wait_for(self.reader.read(65536), left)
