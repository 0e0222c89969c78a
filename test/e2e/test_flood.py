"""A client that floods requests without reading the answers is a slow
consumer: its replies and pongs are bounded by the write ring, and it is
closed 4010 while everyone else is served."""
import time

import pytest

from gwtest import Client, RawConn, T, assert_serving, encode_frame

OP_TEXT, OP_PING = 0x1, 0x9
HEARTBEAT = b'{"event":"heartbeat","data":{}}'


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("kind", ["heartbeat", "ping"])
async def test_flooding_without_reading_is_closed_4010(gateway_factory, kind):
    # No event limit: this is about the ring, not the 4008 token bucket.
    gw = gateway_factory(websocket={"write_ring_size": 64},
                         session={"event_rate": 0})
    bystander = await Client.session(gw, guilds=["g1"])
    r = await RawConn.open(gw.ws_port, rcvbuf=4096)
    await r.handshake(gw.ws_port)
    frame = (encode_frame(OP_TEXT, HEARTBEAT) if kind == "heartbeat"
             else encode_frame(OP_PING, b"p" * 125))
    # The kernel buffers take the first answers (the server's send buffer
    # grows to a few MB), then the ring fills and the server gives up. A
    # slower (sanitizer) build needs more frames for that, so the flood is
    # bounded by time and by count: at most 2,000 batches of 500 frames.
    deadline = time.monotonic() + T(30)
    for i in range(2000):
        try:
            await r.send(frame * 500)
        except (ConnectionError, OSError):
            break
        if i % 4 == 3 and (
                gw.get_json("/stats")["totals"]["slow_consumer_closes"]
                or time.monotonic() > deadline):
            break
    r.abort()
    totals = gw.get_json("/stats")["totals"]
    assert totals["slow_consumer_closes"] == 1, {k: totals[k] for k in ("frames_in", "frames_out", "bytes_in", "bytes_out", "connections", "ring_drops")}
    # The daemon is fine and the bystander was never disturbed.
    await bystander.heartbeat_roundtrip()
    await assert_serving(gw)
