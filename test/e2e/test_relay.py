"""Client events for the backends, as the client sees them without a
RabbitMQ to publish to (test_amqp_upstream.py has the broker's side): which
names go up, the nonce, the per-session limit, and the answer at once when
the way up is closed. The session stays usable after each."""

import pytest

from gwtest import Client, T, uniq, wait_until

# The main cases of the protocol: run again over wss:// (conftest.py).
pytestmark = pytest.mark.each_transport


async def expect_error(c, code, nonce=None):
    msg = await c.expect("error")
    assert msg["data"].get("code") == code, msg
    assert msg.get("nonce") == nonce, msg
    return msg


async def test_no_rabbitmq_is_unavailable_at_once_with_the_nonce(gw):
    c = await Client.session(gw)
    before = (await gw.totals())["relay_refused_unavailable"]
    await c.send({"event": "chat.send", "nonce": "n-1\"\\",
                  "data": {"text": "hi"}})
    await expect_error(c, "unavailable", "n-1\"\\")
    await c.send({"event": "chat.send", "data": {}})  # no nonce: none back
    await expect_error(c, "unavailable")
    await c.heartbeat_roundtrip()

    async def counted():
        return (await gw.totals())["relay_refused_unavailable"] - before == 2
    await wait_until(counted, T(5), "relay_refused_unavailable counted 2")


async def test_events_go_up_only_once_identified(gw):
    c = await Client.connect(gw)
    await c.ready()
    await c.send({"event": "chat.send", "data": {}})
    await c.expect_close(4003)


@pytest.mark.parametrize("nonce", [7, "n" * 65, None],
                         ids=["number", "too_long", "null"])
async def test_a_bad_nonce_is_invalid_request(gw, nonce):
    c = await Client.session(gw)
    await c.send({"event": "chat.send", "nonce": nonce, "data": {}})
    await expect_error(c, "invalid_request")


async def test_relay_events_patterns_and_limit(gateway_factory):
    gw = gateway_factory(relay={"events": "chat.*, location.update",
                                "limit": 2, "window_ms": 600000})
    c = await Client.session(gw)
    for name in ("presence.update", "chatx", "Chat.send"):
        await c.send({"event": name, "data": {}})
        await expect_error(c, "unknown_event")
    for name in ("chat.send", "location.update"):
        await c.send({"event": name, "nonce": name, "data": {}})
        await expect_error(c, "unavailable", name)
    await c.send({"event": "chat.send", "nonce": "third", "data": {}})
    await expect_error(c, "rate_limited", "third")
    assert (await gw.totals())["relay_rate_limited"] == 1
    # Another session has a window of its own.
    d = await Client.session(gw)
    await d.send({"event": "chat.send", "data": {}})
    await expect_error(d, "unavailable")
