#!/usr/bin/python3
"""What a pub/sub subscription costs Redis, in memory and CPU.

    bench/subcost.py [N [OUT.json]]          (100000, stdout)

Starts a private redis-server (no persistence, a scratch directory, a free
loopback port), opens three connections to it, and measures with INFO
memory (used_memory) and the server's CPU time (schedstat of its threads,
nanoseconds) around each step:

1. the first connection SUBSCRIBEs N channels named as gatewayd names a
   user's and a session's (half `gateway_events:user:<18-digit id>`, half
   `gateway_events:session:<32 hex>`), 1024 a command as gatewayd sends
   them: a new channel with its first subscriber;
2. the second connection SUBSCRIBEs the same N: one more subscriber on a
   channel that exists (a guild held by several instances);
3. the second connection UNSUBSCRIBEs them, 1024 a command;
4. the first connection closes with all N held: what Redis does when an
   instance dies (or its connection drops) and it drops the instance's
   subscriptions at once.

Every step waits for Redis's answer to its last command (or, for the
close, until INFO counts one client fewer), bounded by 60 s. Prints one
JSON object: bytes and microseconds of Redis CPU per channel for each
step, and the mean channel name length.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
OUT = sys.argv[2] if len(sys.argv) > 2 else None
BATCH = 1024  # channels per SUBSCRIBE, as gatewayd's broker sends them
TIMEOUT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_until(sock, marker):
    """Reads until the data received ends with marker."""
    data = b""
    deadline = time.monotonic() + TIMEOUT_S
    while not data.endswith(marker):
        if time.monotonic() > deadline:
            raise TimeoutError("no %r from Redis" % marker)
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        data += chunk
    return data


def info(sock, field):
    """The number of field in Redis's INFO (all sections)."""
    sock.sendall(b"INFO\r\n")
    data = b""
    while b"\r\n" not in data:
        data += sock.recv(65536)
    head, data = data.split(b"\r\n", 1)
    size = int(head[1:])
    while len(data) < size + 2:
        data += sock.recv(65536)
    for line in data[:size].decode().split("\r\n"):
        if line.startswith(field + ":"):
            return float(line.split(":", 1)[1])
    raise ValueError("INFO has no " + field)


def cpu_s(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def channels(n):
    names = []
    for i in range(n):
        if i % 2 == 0:
            names.append(b"gateway_events:user:%d" % (100000000000000000 + i))
        else:
            names.append(b"gateway_events:session:%032x" % (i * 2654435761))
    return names


def subscribe(sock, verb, names, expect_last):
    for i in range(0, len(names), BATCH):
        sock.sendall(resp(verb, *names[i:i + BATCH]))
    read_until(sock, b":%d\r\n" % expect_last)


def step(probe, pid, fn):
    mem, cpu = info(probe, "used_memory"), cpu_s(pid)
    fn()
    return info(probe, "used_memory") - mem, cpu_s(pid) - cpu


def wait_clients(probe, want):
    deadline = time.monotonic() + TIMEOUT_S
    while info(probe, "connected_clients") != want:
        if time.monotonic() > deadline:
            raise TimeoutError("Redis still counts the closed connection")
        time.sleep(0.01)


def measure(port, pid):
    names = channels(N)
    a, b, probe = (socket.create_connection(("127.0.0.1", port))
                   for _ in range(3))
    for s in (a, b, probe):
        s.settimeout(TIMEOUT_S)
    res = {"channels": N, "batch": BATCH,
           "name_bytes_mean": sum(map(len, names)) / N}
    steps = [
        ("first_subscriber", lambda: subscribe(a, "SUBSCRIBE", names, N)),
        ("second_subscriber", lambda: subscribe(b, "SUBSCRIBE", names, N)),
        ("unsubscribe", lambda: subscribe(b, "UNSUBSCRIBE", names, 0)),
        ("dropped_with_connection",
         lambda: (a.close(), wait_clients(probe, 2))),
    ]
    for name, fn in steps:
        mem, cpu = step(probe, pid, fn)
        res[name] = {"bytes_per_channel": mem / N,
                     "redis_us_per_channel": cpu * 1e6 / N}
    b.close()
    probe.close()
    return res


def main():
    d = tempfile.mkdtemp(prefix="gwsubcost.")
    port = free_port()
    log = open(os.path.join(d, "redis.log"), "w")
    p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port",
                          str(port), "--save", "", "--appendonly", "no",
                          "--dir", d], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port)) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or p.poll() is not None:
                sys.exit("redis-server did not start (%s/redis.log)" % d)
            time.sleep(0.02)
        res = measure(port, p.pid)
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    shutil.rmtree(d, ignore_errors=True)
    text = json.dumps(res, indent=1)
    if OUT:
        with open(OUT, "w") as f:
            f.write(text + "\n")
    print(text)


main()
