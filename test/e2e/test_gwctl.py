"""gwctl, the command-line client, against the real daemon: the README's
quick start run as written, tokens that identify (and that a gateway with
another secret refuses), check-token's verdicts, publish through HTTP,
Redis and RabbitMQ, stats/health/presence/disconnect with the daemon up
and down, tail across a daemon restart, and tail over wss:// with the
certificate checked.

The gwctl under test sits beside the daemon under test: ./gwctl for
./gatewayd, ./gwctl-asan for ./gatewayd-asan (GWCTL_BIN overrides). Its
stderr must hold no sanitizer report, as the daemon's.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tomllib

import pytest

from conftest import BIN
from gwtest import (SANITIZER_MARKERS, Client, Gateway, T, free_port,
                    token_for, uniq, wait_until)
from rabbitserver import rabbit_fixture  # noqa: F401 (fixture)
from redisserver import redis_server, redis_server_factory  # noqa: F401
from test_tokens import Key

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GWCTL = os.environ.get("GWCTL_BIN") or os.path.join(
    os.path.dirname(BIN), os.path.basename(BIN).replace("gatewayd", "gwctl"))

# gwctl takes these over the config file, as the daemon does; the tests'
# gateways never see them (gwtest.Gateway drops them), nor does gwctl here.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("GATEWAYD_JWT_SECRET", "GATEWAYD_API_KEY")}

with open(os.path.join(ROOT, "conf", "gateway.toml"), "rb") as _f:
    DEV_SECRET = tomllib.load(_f)["auth"]["jwt_secret"]
HINT = "development secret in use"


def no_reports(text):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, "gwctl's stderr has %r:\n%s" % (marker,
                                                                   text)


def run(*args, rc=0, stdin=None):
    """gwctl args; asserts its exit status; returns (stdout, stderr)."""
    if not os.access(GWCTL, os.X_OK):
        pytest.fail("%s not found (make gwctl, or make asan for gwctl-asan)"
                    % GWCTL, pytrace=False)
    p = subprocess.run([GWCTL, *args], capture_output=True, text=True,
                       input=stdin, env=ENV, timeout=T(30))
    no_reports(p.stderr)
    assert p.returncode == rc, "gwctl %s: exit %d, expected %d\n--- stdout\n" \
        "%s--- stderr\n%s" % (" ".join(args), p.returncode, rc, p.stdout,
                              p.stderr)
    return p.stdout, p.stderr


async def gwctl(*args, **kw):
    """run() off the event loop, so that clients keep reading."""
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: run(*args, **kw))


class Proc:
    """A process (gwctl tail, or a shell) whose output lines are gathered
    as they come."""

    def __init__(self, proc):
        self.proc = proc
        self.out, self.err = [], []
        self.readers = [asyncio.ensure_future(self._read(proc.stdout,
                                                         self.out)),
                        asyncio.ensure_future(self._read(proc.stderr,
                                                         self.err))]

    @classmethod
    async def start(cls, argv, **kw):
        return cls(await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=ENV, **kw))

    @staticmethod
    async def _read(stream, lines):
        while True:
            line = await stream.readline()
            if not line:
                return
            lines.append(line.decode("utf-8", "replace"))

    def text(self):
        return "--- stdout\n%s--- stderr\n%s" % ("".join(self.out),
                                                 "".join(self.err))

    async def wait_line(self, lines, needle, count=1, timeout=10):
        """Until count lines hold needle; returns the last of them."""
        def seen():
            hits = [ln for ln in lines if needle in ln]
            return hits[count - 1] if len(hits) >= count else None
        try:
            return await wait_until(seen, T(timeout), repr(needle))
        except AssertionError as e:
            raise AssertionError("%s; gwctl said:\n%s" % (e, self.text()))

    async def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self, timeout=10):
        """Its exit status, once it has ended and been read to the end."""
        rc = await asyncio.wait_for(self.proc.wait(), T(timeout))
        await asyncio.gather(*self.readers)
        no_reports("".join(self.err))
        return rc

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()


def quick_start():
    """The README's quick start: its three lines, and the line tail prints."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?:^    \S.*\n)+", section, re.M)
    return [ln[4:] for ln in blocks[0].splitlines()], blocks[1].strip()


async def test_gwctl_quick_start_as_written(gateway_factory, tmp_path):
    """The three lines in a shell, in a directory laid out as the repo
    (./gwctl, conf/gateway.toml) whose config is a test gateway's, on the
    shipped development secret as `make run` is."""
    lines, expected = quick_start()
    assert len(lines) == 3 and lines[0].endswith("&"), lines
    gw = gateway_factory(auth={"jwt_secret": DEV_SECRET})
    gw.secret = DEV_SECRET  # for the checks after the test
    # Its start-up ended pointing here (the line follows the ports'
    # opening, so it may come just after the gateway answers); a gateway
    # with its own secret's does not
    # (test_gwctl_token_identifies_and_another_secret_refuses).
    await wait_until(lambda: HINT in gw.stderr_text(), T(5), "the hint")
    assert "/dashboard" in gw.stderr_text()
    (tmp_path / "conf").mkdir()
    shutil.copy(gw.config_path, tmp_path / "conf" / "gateway.toml")
    os.symlink(GWCTL, tmp_path / "gwctl")
    sh = await Proc.start(["bash"], cwd=str(tmp_path))
    try:
        await sh.send(lines[0])
        await sh.wait_line(sh.err, "connected to")
        await sh.send(lines[1])
        await sh.wait_line(sh.out, expected)
        assert expected + "\n" in sh.out, sh.text()
        await sh.send(lines[2])
        sh.proc.stdin.close()
        assert await sh.finish() == 0, sh.text()
    finally:
        sh.kill()


async def test_gwctl_token_identifies_and_another_secret_refuses(
        gw, gateway_factory):
    user, guild = uniq("u"), uniq("g")
    out, _ = await gwctl("token", "-c", gw.config_path, "--user", user,
                         "--guilds", guild + ",g-other", "--ttl", "10m")
    token = out.strip()
    c = await Client.connect(gw)
    await c.ready()
    data = await c.identify(user, [guild, uniq("g")], token=token)
    assert data["guildIds"] == [guild], data  # the guilds claim bounds it
    other = gateway_factory(auth={"jwt_secret": "another-e2e-secret-0123456"})
    other.secret = other.config["auth"]["jwt_secret"]  # for the checks after
    c2 = await Client.connect(other)
    await c2.ready()
    await c2.send_identify(user, [guild], token=token)
    await c2.expect_close(4004)
    assert HINT not in other.stderr_text()
    # tail signs its own the same way, hears 4004, and gives up saying why.
    _, err = await gwctl("tail", "-c", gw.config_path, "--url", other.ws_url,
                         "--user", user, rc=1)
    assert "refused the token (close 4004" in err, err
    # The shipped development secret only with --dev.
    conf = os.path.join(ROOT, "conf", "gateway.toml")
    _, err = await gwctl("token", "-c", conf, "--user", "u1", rc=1)
    assert "development secret" in err and "--dev" in err, err
    out, _ = await gwctl("token", "-c", conf, "--user", "u1", "--dev")
    assert out.count(".") == 2, out


async def test_gwctl_check_token_says_why(gw, tmp_path):
    cfg = ["-c", gw.config_path]
    user = uniq("u")
    valid = token_for(user)
    for token, rc, verdict in (
            (valid, 0, "valid: the gateway takes it for user " + user),
            (token_for(user, exp_in=-120), 1, "refused: it has expired"),
            (token_for(user, secret="another-secret"), 1,
             "refused: the signature does not match"),
            ("abc.def", 1, "refused: malformed: 2 parts")):
        out, _ = await gwctl("check-token", *cfg, token, rc=rc)
        assert verdict in out, out
    out, _ = await gwctl("check-token", *cfg, "-", stdin=valid + "\n")
    assert "valid" in out, out
    out, _ = await gwctl("check-token", *cfg, "-s", "auth.jwt_audience=app",
                         valid, rc=1)
    assert "its aud is missing, the gateway wants \"app\"" in out, out
    # An ES256 key in auth.jwt_public_keys: its kid is the file's name.
    key, stranger = Key(tmp_path, "k1", "ec"), Key(tmp_path, "k2", "ec")
    keys = [*cfg, "-s", "auth.jwt_public_keys=" + key.pem,
            "-s", "auth.jwt_algorithms=HS256, ES256"]
    out, _ = await gwctl("check-token", *keys, key.token(user, kid="k1"))
    assert "valid" in out, out
    out, _ = await gwctl("check-token", *keys,
                         stranger.token(user, kid="k1"), rc=1)
    assert "signature does not match" in out, out
    out, _ = await gwctl("check-token", *keys, key.token(user, kid="k9"),
                         rc=1)
    assert "no key has its kid \"k9\"" in out, out


@pytest.mark.time_limit(60)
async def test_gwctl_publish_through_http_redis_and_amqp(
        gateway_factory, redis_server, rabbit, tmp_path):
    keys = uniq("gwctl")
    gw = gateway_factory(
        redis={"enabled": True, "port": redis_server.port},
        amqp={"enabled": True, "port": rabbit.port,
              "binding_keys": keys + ".#"},
        broker={"instance_id": uniq("gw"), "reconnect_min_ms": 50,
                "reconnect_max_ms": 300})
    await wait_until(lambda: gw.get_json("/health")["status"] == "ok",
                     T(20), "both broker links up")
    user, guild = uniq("u"), uniq("g")
    c = await Client.session(gw, user, [guild])
    cfg = ["-c", gw.config_path]
    data = tmp_path / "data.json"
    data.write_text('{"n": 3}')
    for how, printed, n in ((["--data", '{"n": 1}'], '"accepted":true', 1),
                            (["--redis", "--data", '{"n": 2}'], "1 gateway", 2),
                            (["--amqp", "--routing-key", keys + ".x",
                              "--data", "@%s" % data], "confirmed", 3)):
        out, _ = await gwctl("publish", *cfg, *how, "--guild", guild,
                             "--event", "gwctl.test")
        assert printed in out, out
        msg = await c.expect_dispatch("gwctl.test", guild)
        assert msg["data"] == {"n": n}, msg
    # Nobody takes these: gwctl says so rather than pretend.
    _, err = await gwctl("publish", *cfg, "--amqp", "--user", user,
                         "--event", "not.bound", rc=1)
    assert "no queue is bound" in err, err
    _, err = await gwctl("publish", *cfg, "--redis", "-s",
                         "redis.channel=" + uniq("nobody"), "--broadcast",
                         "--event", "e", rc=1)
    assert "no gateway listens" in err, err
    _, err = await gwctl("publish", *cfg, "--guild", guild, "--event", "e",
                         "--api-key", "wrong", rc=1)
    assert "refused the API key (401)" in err, err
    _, err = await gwctl("publish", *cfg, "--event", "e", rc=2)
    assert "give one target" in err, err


async def test_gwctl_stats_health_presence_disconnect(gateway_factory):
    gw = gateway_factory(presence={"enabled": True})
    cfg = ["-c", gw.config_path]
    user = uniq("u")
    c = await Client.session(gw, user, [uniq("g")])
    out, _ = await gwctl("health", *cfg)
    assert re.search(r"^status +ok$", out, re.M), out
    out, _ = await gwctl("stats", *cfg)
    assert out.splitlines()[0].split()[-1] == "total", out
    # Four workers, one session in all.
    assert re.search(r"^sessions( +\d+){4} +1$", out, re.M), out
    out, _ = await gwctl("stats", *cfg, "--json")
    assert json.loads(out)["totals"]["sessions"] == 1, out
    out, _ = await gwctl("presence", *cfg, "--user", user)
    assert out.startswith(user + " online, 1 session\n"), out
    out, _ = await gwctl("disconnect", *cfg, "--user", user, "--code", "4321",
                         "--reason", "by gwctl")
    assert '"accepted":true' in out, out
    await c.expect_close(4321)
    # Nothing listening where the config says: a clear message, exit 1.
    port = "-s", "server.http_port=%d" % free_port()
    for cmd in ("health", "stats"):
        _, err = await gwctl(cmd, *cfg, *port, rc=1)
        assert "connection refused. Is gatewayd running?" in err, err


@pytest.mark.time_limit(40)
async def test_gwctl_tail_survives_a_restart(tmp_path):
    # Heartbeats every 300 ms: two unanswered would close the session 4009.
    gw = Gateway(BIN, str(tmp_path),
                 {"session": {"heartbeat_interval_ms": 300}}).start()
    user, guild = uniq("u"), uniq("g")
    tail = await Proc.start([GWCTL, "tail", "-c", gw.config_path, "--user",
                             user, "--guild", guild, "--json"])
    try:
        await tail.wait_line(tail.err, "connected to")
        # identify, then three heartbeat_acks, and still the one session.
        await wait_until(lambda: gw.get_json("/stats")["totals"]["frames_in"]
                         >= 4, T(5), "tail's answers to heartbeats")
        assert not any("disconnected" in ln for ln in tail.err), tail.text()
        assert gw.stop() == []  # SIGTERM: the session is closed 4011
        await tail.wait_line(tail.err, "disconnected (close 4011")
        _, err = await gwctl("health", "-c", gw.config_path, rc=1)
        assert "Is gatewayd running?" in err, err
        assert gw._spawn() is None, gw.tail()  # the same ports again
        await tail.wait_line(tail.err, "connected to", count=2, timeout=15)
        await gw.apublish({"guildId": guild, "event": "after.restart",
                           "data": {"n": 1}})
        line = await tail.wait_line(tail.out, "after.restart")
        assert json.loads(line) == {"seq": 1, "event": "after.restart",
                                    "guildId": guild, "data": {"n": 1}}
        tail.proc.send_signal(signal.SIGINT)
        assert await tail.finish() == 0, tail.text()
    finally:
        tail.kill()
        problems = gw.stop()
    assert not problems, "%s\n%s" % (problems, gw.tail())


async def test_gwctl_tail_over_wss_checks_the_certificate(tmp_path,
                                                          wss_pair):
    gw = Gateway(BIN, str(tmp_path), wss=wss_pair).start()
    user, guild = uniq("u"), uniq("g")

    def tail(host, *extra):
        return ["tail", "-c", gw.config_path, "--url",
                "wss://%s:%d/" % (host, gw.tls_port), "--user", user,
                "--guild", guild, "--count", "1", *extra]
    try:
        # The system's CAs do not know the test's: refused, and how to go on.
        _, err = await gwctl(*tail("127.0.0.1"), rc=1)
        assert "certificate is refused" in err and "--ca-file" in err, err
        # Its CA, but a name the certificate (IP:127.0.0.1) does not hold.
        _, err = await gwctl(*tail("localhost", "--ca-file", wss_pair[0]),
                             rc=1)
        assert "certificate is refused" in err, err
        for extra in (["--ca-file", wss_pair[0]], ["--insecure"]):
            t = await Proc.start([GWCTL, *tail("127.0.0.1", *extra)])
            try:
                await t.wait_line(t.err, "connected to wss://")
                await gw.apublish({"guildId": guild, "event": "over.tls"})
                assert await t.finish() == 0, t.text()  # --count 1
                assert t.out == ["1 over.tls %s {}\n" % guild], t.text()
            finally:
                t.kill()
    finally:
        problems = gw.stop()
    assert not problems, "%s\n%s" % (problems, gw.tail())
