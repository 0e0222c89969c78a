#!/usr/bin/python3
"""What keyed RabbitMQ bindings (amqp.routing = "targeted") cost RabbitMQ:
binding changes per second, and memory per binding.

    bench/amqp_bindings.py [GATEWAYD [SESSIONS [GUILDS [durable|exclusive]]]]
                                       (./gatewayd, 1000, 100, durable)

Run from a checkout's root. Starts a private RabbitMQ node
(test/e2e/rabbitserver.py) and GATEWAYD (2 workers, targeted routing, no
linger, the queue durable or exclusive), opens SESSIONS sessions, 100 at
a time, each of a user and GUILDS guilds of its own, so that the queue
is bound with SESSIONS x (GUILDS + 2) target patterns, and measures:

- bind: from the first identify until RabbitMQ has answered every bind
  (the clients' connects are part of it);
- rebind: RabbitMQ closes the gateway's connection (rabbitmqctl
  close_all_connections); from the first bind the new connection has
  answered until every binding is in the next generation and the previous
  one, with as many, is deleted: the rate at which one node takes one
  instance's pipelined exchange.bind;
- memory: RabbitMQ's memory breakdown (mnesia, ETS) before the sessions
  and with every binding, per binding;
- unbind: every session closed, until every binding is removed.

/stats is read every 50 ms; each wait is bounded by 300 s.
"""
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, "test/e2e")
import gwtest  # noqa: E402
from gwtest import Client, Gateway  # noqa: E402
from rabbitserver import RabbitServer, server_script  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "./gatewayd")
SESSIONS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
GUILDS = int(sys.argv[3]) if len(sys.argv) > 3 else 100
DURABLE = (sys.argv[4] if len(sys.argv) > 4 else "durable") == "durable"
WAIT_S = 300


def memory(rabbit):
    """RabbitMQ's bytes in Mnesia and in other ETS tables."""
    tool = os.path.join(os.path.dirname(server_script()),
                        "rabbitmq-diagnostics")
    out = subprocess.run([tool, "-q", "-n", rabbit.node, "memory_breakdown",
                          "--unit", "bytes", "--formatter", "json"],
                         env=rabbit._env(), capture_output=True, text=True,
                         check=True, timeout=60)
    m = json.loads(out.stdout)
    return m["mnesia"]["bytes"] + m["other_ets"]["bytes"]


def stats(gw):
    return gw.get_json("/stats")["broker"]


async def until(gw, done, what):
    """Polls /stats until done(stats); (seconds since the call, stats)."""
    start = time.monotonic()
    while True:
        s = stats(gw)
        if done(s):
            return time.monotonic() - start, s
        if time.monotonic() - start > WAIT_S:
            raise RuntimeError("%s: not done after %d s: %r" % (what, WAIT_S,
                                                               s))
        await asyncio.sleep(0.05)


def bound(s):
    return s["amqp_binds"] - s["amqp_unbinds"]


async def connect_all(gw):
    clients = []
    for first in range(0, SESSIONS, 100):
        batch = range(first, min(first + 100, SESSIONS))
        clients += await asyncio.gather(*(Client.session(
            gw, "u%d" % i, ["g%d.%d" % (i, j) for j in range(GUILDS)])
            for i in batch))
    return clients


async def main(workdir):
    rabbit = RabbitServer(os.path.join(workdir, "rabbitmq"))
    rabbit.start()
    gw = None
    try:
        gw = Gateway(BIN, workdir, {
            "server": {"workers": 2},
            # Clients that send no heartbeat for the whole run.
            "session": {"max_guilds_per_session": max(GUILDS, 1),
                        "heartbeat_interval_ms": 1 << 29},
            "redis": {"unsubscribe_linger_ms": 0},
            "amqp": {"enabled": True, "port": rabbit.port,
                     "routing": "targeted", "durable": DURABLE},
            "broker": {"instance_id": "bench", "reconnect_min_ms": 50,
                       "reconnect_max_ms": 300},
            "log": {"level": "warn"},
        }).start()
        while gw.get_json("/health")["links"]["amqp"] != "up":
            await asyncio.sleep(0.05)
        before = memory(rabbit)
        total = SESSIONS * (GUILDS + 2)
        start = time.monotonic()
        clients = await connect_all(gw)
        _, s = await until(gw, lambda s: s["amqp_bind_pending"] == 0 and
                           bound(s) == total, "bind")
        t = time.monotonic() - start
        print("bind: %d bindings in %.2f s, %.0f/s (with the connects)"
              % (total, t, total / t))
        used = memory(rabbit) - before
        print("memory: %d bytes in Mnesia and ETS, %.0f per binding"
              % (used, used / total))

        base = s
        rabbit.ctl("close_all_connections", "bench")
        _, s = await until(gw, lambda s: s["amqp_binds"] > base["amqp_binds"],
                           "reconnect")
        t, s = await until(gw, lambda s: s["amqp_bind_pending"] == 0 and
                           s["amqp_binds"] - base["amqp_binds"] == total,
                           "rebind")
        print("rebind: %d bindings and the old generation deleted in "
              "%.2f s, %.0f/s" % (total, t, total / t))

        base = s
        start = time.monotonic()
        await asyncio.gather(*(c.close() for c in clients))
        t, s = await until(gw, lambda s: s["amqp_bind_pending"] == 0 and
                           s["amqp_unbinds"] - base["amqp_unbinds"] == total,
                           "unbind")
        t = time.monotonic() - start
        print("unbind: %d bindings in %.2f s, %.0f/s (with the closes)"
              % (total, t, total / t))
        assert s["amqp_bind_failures"] == 0, s
    finally:
        await gwtest.abort_all()
        if gw is not None:
            gw.stop()
        rabbit.close()


if __name__ == "__main__":
    print("%d sessions x %d guilds, %s queue" % (
        SESSIONS, GUILDS, "durable" if DURABLE else "exclusive"))
    with tempfile.TemporaryDirectory(prefix="amqpbind.") as d:
        asyncio.run(main(d))
