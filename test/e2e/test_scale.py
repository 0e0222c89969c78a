"""1,000 concurrent sessions in 10 guilds: each gets exactly its guild's
event."""

import asyncio
import time

import pytest

from gwtest import Client, T, check_dispatch, wait_until

N_CLIENTS = 1000
N_GUILDS = 10
BATCH = 100


def _counts(gw, connections, sessions):
    def check():
        h = gw.get_json("/health")
        return h["connections"] == connections and h["sessions"] == sessions
    return check


@pytest.mark.time_limit(60)
async def test_thousand_clients_each_get_their_guilds_event(gateway_factory):
    gw = gateway_factory()
    clients = []
    started = time.monotonic()
    for base in range(0, N_CLIENTS, BATCH):
        batch = await asyncio.gather(*(
            Client.session(gw, "user%d" % i, ["guild%d" % (i % N_GUILDS)])
            for i in range(base, base + BATCH)))
        clients.extend(batch)
    connect_s = time.monotonic() - started
    await wait_until(_counts(gw, N_CLIENTS, N_CLIENTS), T(10),
                     "/health to count %d sessions" % N_CLIENTS)
    stats = gw.get_json("/stats")
    assert all(w["sessions"] > 0 for w in stats["workers"]), stats["workers"]

    for g in range(N_GUILDS):
        await gw.apublish({"event": "message.create", "guildId": "guild%d" % g,
                           "data": {"guild": g}})
    await gw.apublish({"event": "marker", "broadcast": True, "data": {}})

    async def check(i, c):
        msg = await c.recv(timeout=20)
        g = i % N_GUILDS
        assert msg.get("event") == "message.create" and \
            msg.get("data") == {"guild": g}, (
                "client %d (guild%d) got %r" % (i, g, msg))
        check_dispatch(msg, "guild%d" % g)
        assert msg["seq"] == 1, msg
        msg = await c.recv(timeout=20)
        assert msg.get("event") == "marker" and msg["seq"] == 2, (
            "client %d got a second guild event: %r" % (i, msg))
    await asyncio.gather(*(check(i, c) for i, c in enumerate(clients)))

    # Half leave cleanly, half vanish; the daemon forgets them all.
    for base in range(0, N_CLIENTS, BATCH):
        batch = clients[base:base + BATCH]
        await asyncio.gather(*(c.close() for c in batch[::2]))
        for c in batch[1::2]:
            c.abort()
    await wait_until(_counts(gw, 0, 0), T(15),
                     "/health to drop to 0 connections")
    print("connected and identified %d clients in %.2fs"
          % (N_CLIENTS, connect_s))
