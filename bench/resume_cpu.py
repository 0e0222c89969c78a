#!/usr/bin/env python3
"""Server CPU per resumed TLS connection that runs its handshake to the end.

    bench/resume_cpu.py GATEWAYD CERT KEY [N] [SETTINGS]

Each connection resumes the session of the first one (a TLS 1.2 ticket),
sends an HTTP request over TLS and reads the answer, so that the server's
side of the handshake is done before the client closes (openssl s_time,
bench/handshake.sh, closes at once, and most resumed handshakes then end
on the server as failures, before the server's work after it). The client
sets TCP_NODELAY: without it, its Finished and its request are two
segments and Nagle holds the second for the server's delayed ACK (40 ms).

SETTINGS is a comma-separated list of `-s key=value` settings for the
daemon, `;`-separated per variant, run in turn, three rounds (default:
"tls.buffer_release_ms=0;tls.buffer_release_ms=2000"). Each run starts a
fresh daemon (2 workers, no broker, wss:// on a free port), makes 200
connections to warm up, then N (default 5000), and reads the daemon's
user + system CPU from /proc before and after. Prints one line per run.
Loopback only; the client is Python's ssl (OpenSSL) on the same machine.
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(path, cert, key, tport):
    with open(path, "w") as f:
        f.write(f"""[server]
bind = "127.0.0.1"
ws_port = {free_port()}
http_port = {free_port()}
workers = 2
[auth]
jwt_secret = "bench-resume-cpu-secret-0123456789abcdef"
[redis]
enabled = false
[amqp]
enabled = false
[presence]
enabled = false
[tls]
enabled = true
port = {tport}
cert_file = "{cert}"
key_file = "{key}"
[log]
level = "warn"
""")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def connect(port, ctx, session):
    """One connection: the handshake, a request answered, the close."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    try:
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(64)
        return s.session_reused, s.session
    finally:
        s.close()


def wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the daemon did not listen")


def run(gatewayd, cert, key, n, settings):
    tport = free_port()
    with tempfile.TemporaryDirectory() as d:
        config(d + "/gw.toml", cert, key, tport)
        args = [gatewayd, "-c", d + "/gw.toml"]
        for s in filter(None, settings.split(",")):
            args += ["-s", s]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_listening(tport, time.monotonic() + 10)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            _, session = connect(tport, ctx, None)
            for _ in range(200):
                connect(tport, ctx, session)
            c0, t0, resumed = cpu_ticks(p.pid), time.monotonic(), 0
            for _ in range(n):
                resumed += connect(tport, ctx, session)[0]
            c1, t1 = cpu_ticks(p.pid), time.monotonic()
        finally:
            p.terminate()
            p.wait(timeout=10)
    us = (c1 - c0) / os.sysconf("SC_CLK_TCK") * 1e6 / n
    print(f"{settings or '(defaults)'}: {n} connections ({resumed} resumed)"
          f" in {t1 - t0:.1f} s, server CPU {us:.0f} us per connection",
          flush=True)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    gatewayd, cert, key = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    variants = (sys.argv[5] if len(sys.argv) > 5 else
                "tls.buffer_release_ms=0;tls.buffer_release_ms=2000")
    for _ in range(3):
        for settings in variants.split(";"):
            run(gatewayd, cert, key, n, settings)


if __name__ == "__main__":
    main()
