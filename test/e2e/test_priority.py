"""Priorities (seed 002): under write-ring pressure the low priorities are
shed first, counted per priority in /stats; the slow-consumer close comes
only after."""
import asyncio

import pytest

from gwtest import Client, KeepAlivePublisher, T, wait_until
from test_limits import _stalled_client

PAD = "p" * 2000


def _publish_until(gw, pub, guild, priority, stat, before, limit):
    """Publishes events of one priority until /stats totals[stat] moves past
    before[stat]; returns how many it took (None if it never moved)."""
    for i in range(limit):
        pub.publish({"event": "message.create", "guildId": guild,
                     "priority": priority, "data": {"i": i, "pad": PAD}})
        if i % 8 == 7 and gw.get_json("/stats")["totals"][stat] > before[stat]:
            return i + 1
    return None


@pytest.mark.time_limit(120)
async def test_low_priority_is_shed_before_the_slow_consumer_close(
        gateway_factory):
    gw = gateway_factory(websocket={"write_ring_size": 64})
    guild = "prio"
    slow = await _stalled_client(gw, guild)
    reader = await Client.session(gw, guilds=[guild])
    before = gw.get_json("/stats")["totals"]
    pub = KeepAlivePublisher(gw)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def keep_reading():
        while not stop.is_set():
            try:
                await asyncio.wait_for(reader.ws.recv(), 0.2)
            except asyncio.TimeoutError:
                pass
    draining = asyncio.ensure_future(keep_reading())
    try:
        # Priority 4 fills the stalled client's socket, then half its ring,
        # then is shed, and nobody has been closed for it.
        n = await loop.run_in_executor(None, _publish_until, gw, pub, guild, 4,
                                       "shed_priority_4", before, 20000)
        assert n is not None, "priority-4 events were never shed"
        mid = gw.get_json("/stats")["totals"]
        assert mid["slow_consumer_closes"] == before["slow_consumer_closes"], (
            "closed before shedding low priorities: %r" % mid)
        assert mid["shed_priority_3"] == before["shed_priority_3"]
        # Priority 1 is never shed: it fills the ring to the limit, and only
        # then does the stalled client meet the 4010 close.
        n = await loop.run_in_executor(None, _publish_until, gw, pub, guild, 1,
                                       "slow_consumer_closes", mid, 2000)
        assert n is not None, "critical events never closed the slow consumer"
        after = gw.get_json("/stats")["totals"]
        assert after["slow_consumer_closes"] == mid["slow_consumer_closes"] + 1
    finally:
        stop.set()
        await draining
        await loop.run_in_executor(None, pub.close)
    got = await slow.expect_close(4010, timeout=30, allow_dispatches=True)
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(1, len(seqs) + 1)), "gap in %r" % seqs[:20]
    # The reading client was not closed by any of it: its heartbeat is
    # answered behind whatever dispatches it still has queued.
    await reader.send({"event": "heartbeat", "data": {}})
    for _ in range(20000):
        msg = await reader.recv(timeout=10)
        if msg.get("event") == "heartbeat_ack" and "seq" not in msg:
            break
    else:
        raise AssertionError("no heartbeat_ack behind the dispatches")
