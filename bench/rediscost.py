#!/usr/bin/python3
"""What pub/sub costs Redis: a subscription, a PUBLISH, a copy.

    bench/rediscost.py [N [OUT.json]]          (100000, stdout)

Starts a private redis-server (no persistence, a scratch directory, a free
loopback port, no output buffer limit for subscribers) and measures, with
INFO used_memory and the server's CPU time (schedstat of its threads,
nanoseconds) around each step:

Subscriptions, on two connections:
1. the first SUBSCRIBEs N channels named as gatewayd names a user's and a
   session's (half `gateway_events:user:<18-digit id>`, half
   `gateway_events:session:<32 hex>`), 1024 a command as gatewayd sends
   them: a new channel with its first subscriber;
2. the second SUBSCRIBEs the same N: one more subscriber on a channel that
   exists (a guild several instances hold);
3. the second UNSUBSCRIBEs them, 1024 a command;
4. the first closes holding all N: what Redis does when an instance dies
   or its connection drops.

Publishes, at load (pipelined, as many backends publishing at once would
be): N / 2 messages of 230 bytes on one channel, 100 a write, with 1 and
then 8 subscriber connections drained by threads; CPU per PUBLISH with
one subscriber, and per extra copy from the difference.

Every step waits for Redis's answers (for the close, until INFO counts one
client fewer; for the publishes, until every subscriber has every
message), each bounded by 60 s. Prints one JSON object.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
OUT = sys.argv[2] if len(sys.argv) > 2 else None
BATCH = 1024  # channels per SUBSCRIBE, as gatewayd's broker sends them
PIPELINE = 100  # PUBLISHes per write
PAYLOAD = 230  # bytes of a published envelope, a typical dispatch's
COPIES = 8  # subscribers of the second publish step
TIMEOUT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(TIMEOUT_S)
    return s


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


def read_replies(sock, n):
    """Reads n one-line replies (an integer each)."""
    data = b""
    while data.count(b"\r\n") < n:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        data += chunk


def info(sock, field):
    """The number of field in Redis's INFO."""
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


def wait_clients(probe, want):
    deadline = time.monotonic() + TIMEOUT_S
    while info(probe, "connected_clients") != want:
        if time.monotonic() > deadline:
            raise TimeoutError("Redis still counts the closed connection")
        time.sleep(0.01)


def subscriptions(port, pid, res):
    names = channels(N)
    a, b, probe = connect(port), connect(port), connect(port)
    res["channels"] = N
    res["batch"] = BATCH
    res["name_bytes_mean"] = sum(map(len, names)) / N
    steps = [
        ("first_subscriber", lambda: subscribe(a, "SUBSCRIBE", names, N)),
        ("second_subscriber", lambda: subscribe(b, "SUBSCRIBE", names, N)),
        ("unsubscribe", lambda: subscribe(b, "UNSUBSCRIBE", names, 0)),
        ("dropped_with_connection",
         lambda: (a.close(), wait_clients(probe, 2))),
    ]
    for name, fn in steps:
        mem, cpu = info(probe, "used_memory"), cpu_s(pid)
        fn()
        res[name] = {
            "bytes_per_channel": (info(probe, "used_memory") - mem) / N,
            "redis_us_per_channel": (cpu_s(pid) - cpu) * 1e6 / N}
    b.close()
    probe.close()


def drain(sock, want, done):
    """A subscriber: reads until want bytes came, then says so."""
    have = 0
    while have < want:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        have += len(chunk)
    done.append(have >= want)


def publish(port, pid, copies, count):
    """Redis CPU seconds for count PUBLISHes reaching copies subscribers."""
    channel, body = b"gateway_events:guild:g1", b"x" * PAYLOAD
    msg = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(channel), channel, len(body), body)
    subs, done, threads = [connect(port) for _ in range(copies)], [], []
    for s in subs:
        s.sendall(resp("SUBSCRIBE", channel))
        read_until(s, b":1\r\n")
    pub = connect(port)
    for s in subs:
        threads.append(threading.Thread(
            target=drain, args=(s, count * len(msg), done)))
        threads[-1].start()
    batch = resp("PUBLISH", channel, body) * PIPELINE
    cpu = cpu_s(pid)
    for _ in range(count // PIPELINE):
        pub.sendall(batch)
        read_replies(pub, PIPELINE)
    for t in threads:
        t.join(TIMEOUT_S)
    cpu = cpu_s(pid) - cpu
    for s in subs + [pub]:
        s.close()
    if len(done) != copies or not all(done):
        raise TimeoutError("a subscriber did not get every message")
    return cpu


def publishes(port, pid, res):
    count = max(PIPELINE, N // 2 // PIPELINE * PIPELINE)
    one = publish(port, pid, 1, count)
    many = publish(port, pid, COPIES, count)
    res["publish"] = {
        "messages": count, "payload": PAYLOAD, "pipeline": PIPELINE,
        "redis_us_per_publish_1_subscriber": one * 1e6 / count,
        "redis_us_per_publish_%d_subscribers" % COPIES: many * 1e6 / count,
        "redis_us_per_extra_copy": (many - one) * 1e6 / count / (COPIES - 1)}


def start_redis(d):
    port = free_port()
    log = open(os.path.join(d, "redis.log"), "w")
    p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port",
                          str(port), "--save", "", "--appendonly", "no",
                          "--client-output-buffer-limit", "pubsub 0 0 0",
                          "--dir", d], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return p, port
        except OSError:
            pass
        if time.monotonic() > deadline or p.poll() is not None:
            p.kill()
            sys.exit("redis-server did not start (%s/redis.log)" % d)
        time.sleep(0.02)


def main():
    d = tempfile.mkdtemp(prefix="gwrediscost.")
    p, port = start_redis(d)
    res = {}
    try:
        subscriptions(port, p.pid, res)
        publishes(port, p.pid, res)
    finally:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    shutil.rmtree(d, ignore_errors=True)
    text = json.dumps(res, indent=1)
    if OUT:
        with open(OUT, "w") as f:
            f.write(text + "\n")
    print(text)


main()
