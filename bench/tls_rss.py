#!/usr/bin/python3
"""Server RSS per idle session, plain ws:// and wss://, side by side.

    bench/tls_rss.py [GATEWAYD [SESSIONS]]     (./gatewayd, 2000)

Run from a checkout's root. Makes a P-256 certificate with openssl in a
temporary directory, starts GATEWAYD there (2 workers, no brokers) on
fixed loopback ports 13005/13006/13443, and for plain then TLS opens
SESSIONS identified sessions, 100 at a time, each step bounded by a
20 s timeout; prints VmRSS before and after, and the difference per
session. Plain runs first, so the TLS run starts from warm arenas.
"""
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, "test/e2e")
import gwtest  # noqa: E402
import websockets  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else "./gatewayd"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
CONFIG = """[server]
bind = "127.0.0.1"
ws_port = 13005
http_port = 13006
workers = 2
[tls]
enabled = true
port = 13443
cert_file = "%s/cert.pem"
key_file = "%s/key.pem"
[auth]
jwt_secret = "s"
[redis]
enabled = false
[amqp]
enabled = false
"""


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def one(url, ctx, i, keep):
    ws = await asyncio.wait_for(websockets.connect(
        url, ssl=ctx, ping_interval=None, compression=None), 20)
    keep.append(ws)
    await asyncio.wait_for(ws.recv(), 20)
    user = "u%d" % i
    await ws.send(json.dumps({"event": "identify", "data": {
        "userId": user, "token": gwtest.token_for(user, secret="s"),
        "guildIds": ["g"]}}))
    await asyncio.wait_for(ws.recv(), 20)


async def run(url, ctx, pid):
    keep = []
    base = rss(pid)
    for k in range(0, N, 100):
        await asyncio.gather(*(one(url, ctx, k + i, keep)
                               for i in range(min(100, N - k))))
    await asyncio.sleep(1)
    top = rss(pid)
    for ws in keep:
        ws.transport.abort()
    return base, top


async def main(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    d + "/key.pem", "-out", d + "/cert.pem", "-days", "1",
                    "-subj", "/CN=127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    with open(d + "/gw.toml", "w") as f:
        f.write(CONFIG % (d, d))
    with open(d + "/stderr.log", "w") as err:
        p = subprocess.Popen([BIN, "-c", d + "/gw.toml"], stderr=err)
    try:
        time.sleep(1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for url, c, name in (("ws://127.0.0.1:13005/", None, "plain"),
                             ("wss://127.0.0.1:13443/", ctx, "tls")):
            b, t = await run(url, c, p.pid)
            await asyncio.sleep(1)
            print("%s: %d sessions, RSS %.1f MiB -> %.1f MiB, %.0f bytes per "
                  "session" % (name, N, b / 2**20, t / 2**20, (t - b) / N))
    finally:
        p.kill()
        p.wait()


soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(tmp))
