"""Client events up to the backends through RabbitMQ (the broker's side of
the relay; test_relay.py has the client's side without a RabbitMQ).

One private RabbitMQ node serves the module (rabbitserver.py). A pika
consumer binds a queue of its own to the gateway_upstream exchange, which
the gateway declares, and takes what the gateway publishes. Each test
binds a new queue, and all but the first use event names of their own
prefix, so tests never see each other's messages. TcpGate (test_amqp.py)
holds the bytes between the gateway and RabbitMQ, so that confirms wait.
"""

import json
import subprocess
import time

import pytest

from gwtest import Client, T, uniq, wait_until
from rabbitserver import EXCHANGE, rabbit_fixture  # noqa: F401 (fixture)
from test_amqp import (TcpGate, health, in_thread, overrides, standalone,
                       stop_clean, wait_link)

UPSTREAM = "gateway_upstream"
# Not /usr/sbin/rabbitmqctl, which runs as the rabbitmq user with its cookie.
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class Consumer:
    """A queue bound to the upstream exchange; pika blocks, so every call
    runs in a thread (one at a time)."""

    def __init__(self, rabbit, pattern):
        self.conn = rabbit.connection()
        self.ch = self.conn.channel()
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, UPSTREAM, pattern)
        self.got = []

    @classmethod
    async def bind(cls, rabbit, pattern):
        return await in_thread(cls, rabbit, pattern)

    def _take(self):
        while True:
            method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return
            self.got.append((method, props, body))

    async def next(self, timeout=10):
        """The next message: (method, properties, body)."""
        async def arrived():
            if not self.got:
                await in_thread(self._take)
            return bool(self.got)
        await wait_until(arrived, T(timeout),
                         "a message in %s" % self.queue)
        return self.got.pop(0)

    async def close(self):
        await in_thread(self.conn.close)


async def expect_error(c, code, nonce, timeout=5):
    msg = await c.expect("error", timeout)
    assert msg["data"].get("code") == code, msg
    assert msg.get("nonce") == nonce, msg
    return msg


def broker_stats(gw):
    return gw.get_json("/stats")["broker"]


async def wait_stats(gw, want, timeout=10):
    def matches():
        stats = broker_stats(gw)
        return all(stats[k] == v for k, v in want.items())
    await wait_until(matches, T(timeout), "broker stats %r (now %r)" % (
        want, {k: broker_stats(gw)[k] for k in want}))


@pytest.mark.time_limit(40)
async def test_event_goes_up_with_its_envelope(gateway_factory, rabbit):
    instance = uniq("gw-up")
    gw = gateway_factory(**overrides(rabbit, instance, uniq("a") + ".#"))
    await wait_link(gw, "up")
    # The only test of the module that sends chat.*; its queue is new.
    consumer = await Consumer.bind(rabbit, "chat.*")
    c = await Client.session(gw)
    # The data is passed on as the client wrote it, spaces and a forged
    # userId included; the envelope's userId is the authenticated one.
    data = '{"text": "hi",  "userId":"forged", "n": [1.50, true]}'
    nonce = 'n1 "q" \\ \u00e9'
    before = time.time()
    await c.send_text('{"event":"chat.send","data":%s,"nonce":%s}'
                      % (data, json.dumps(nonce)))
    method, props, body = await consumer.next()
    after = time.time()

    assert method.routing_key == "chat.send"
    assert method.exchange == UPSTREAM
    assert ('"data":' + data + ',').encode() in body, body
    env = json.loads(body)
    assert set(env) == {"event", "data", "userId", "sessionId", "instanceId",
                        "nonce", "receivedAt"}, env
    assert env["event"] == "chat.send"
    assert env["data"] == {"text": "hi", "userId": "forged", "n": [1.5, True]}
    assert env["userId"] == c.user
    assert env["sessionId"] == c.session_id
    assert env["instanceId"] == instance
    assert env["nonce"] == nonce
    assert isinstance(env["receivedAt"], int)
    assert int(before * 1000) - 1 <= env["receivedAt"] <= after * 1000 + 1

    assert props.correlation_id == nonce
    assert props.delivery_mode == 2
    assert props.content_type == "application/json"
    assert props.app_id == "gatewayd"
    assert props.reply_to == EXCHANGE
    assert isinstance(props.message_id, str) and len(props.message_id) >= 16
    assert int(before) - 1 <= props.timestamp <= after + 1

    # Without a nonce: none in the envelope, no correlation id, and a
    # message id of its own.
    await c.send({"event": "chat.edit", "data": {}})
    method, props2, body = await consumer.next()
    env = json.loads(body)
    assert method.routing_key == "chat.edit"
    assert "nonce" not in env and env["data"] == {}, env
    assert props2.correlation_id is None
    assert props2.message_id != props.message_id

    # A confirmed event needs no answer: the next thing the client hears is
    # its heartbeat's ack.
    await c.heartbeat_roundtrip()
    await wait_stats(gw, {"relay_published": 2, "relay_confirmed": 2,
                          "relay_unconfirmed": 0, "relay_nacked": 0,
                          "relay_lost": 0})
    await consumer.close()


@pytest.mark.time_limit(30)
async def test_event_no_queue_takes_is_answered_unavailable(gateway_factory,
                                                            rabbit):
    p = uniq("b")
    gw = gateway_factory(**overrides(rabbit, uniq("gw-up"), p + ".#"))
    await wait_link(gw, "up")
    c = await Client.session(gw)
    # Nothing is bound for this name: RabbitMQ returns the message.
    await c.send({"event": p + ".nobody", "nonce": "r1", "data": {"x": 1}})
    await expect_error(c, "unavailable", "r1")
    await c.heartbeat_roundtrip()
    await wait_stats(gw, {"relay_published": 1, "relay_nacked": 1,
                          "relay_confirmed": 0, "relay_unconfirmed": 0})


@pytest.mark.time_limit(40)
async def test_unconfirmed_publishes_are_bounded_then_lost(gateway_factory,
                                                           rabbit):
    p = uniq("c")
    gate = TcpGate(rabbit.port)
    gate.opened = True
    await gate.start()
    try:
        conf = overrides(rabbit, uniq("gw-up"), p + ".#", port=gate.port)
        conf["relay"] = {"max_unconfirmed": 2}
        gw = gateway_factory(**conf)
        await wait_link(gw, "up")
        c = await Client.session(gw)
        # Held in the gate, the publishes get no confirm: two may wait,
        # the third is refused at once.
        gate.flowing.clear()
        for n in ("h1", "h2"):
            await c.send({"event": p + ".held", "nonce": n, "data": {}})
        await wait_stats(gw, {"relay_published": 2, "relay_unconfirmed": 2})
        await c.send({"event": p + ".held", "nonce": "h3", "data": {}})
        await expect_error(c, "overloaded", "h3")
        # The connection drops with both unconfirmed: each client hears.
        await gate.close()
        got = set()
        for _ in range(2):
            msg = await c.expect("error", 10)
            assert msg["data"]["code"] == "unavailable", msg
            got.add(msg.get("nonce"))
        assert got == {"h1", "h2"}
        await wait_stats(gw, {"relay_lost": 2, "relay_unconfirmed": 0,
                              "relay_confirmed": 0})
        assert health(gw)[1] != "up"
    finally:
        await gate.close()


@pytest.mark.time_limit(40)
async def test_shutdown_with_publishes_awaiting_confirm(rabbit, tmp_path):
    """What awaits a confirm at shutdown is freed (the sanitizer builds
    report a leak otherwise) and answered by nobody: the workers stop."""
    p = uniq("e")
    gate = TcpGate(rabbit.port)
    gate.opened = True
    await gate.start()
    try:
        gw = standalone(tmp_path, "gw", overrides(rabbit, uniq("gw-up"),
                                                  p + ".#", port=gate.port))
        try:
            await wait_link(gw, "up")
            c = await Client.session(gw)
            gate.flowing.clear()
            await c.send({"event": p + ".held", "nonce": "s1", "data": {}})
            await wait_stats(gw, {"relay_published": 1,
                                  "relay_unconfirmed": 1})
        finally:
            # The polite close waits in the gate, within its 5 s timeout.
            stop_clean(gw)
    finally:
        await gate.close()


def memory_alarm(rabbit, on):
    """A watermark of 0 sets RabbitMQ's memory alarm at once."""
    subprocess.run([CTL, "-n", rabbit.node, "-q",
                    "set_vm_memory_high_watermark", "0" if on else "0.4"],
                   env=rabbit._env(), check=True, timeout=T(30),
                   stdout=subprocess.DEVNULL)


@pytest.mark.time_limit(60)
async def test_memory_alarm_blocks_publishing(gateway_factory, rabbit):
    p = uniq("f")
    gw = gateway_factory(**overrides(rabbit, uniq("gw-up"), p + ".#"))
    await wait_link(gw, "up")
    consumer = await Consumer.bind(rabbit, p + ".*")
    c = await Client.session(gw)
    try:
        await in_thread(memory_alarm, rabbit, True)
        # RabbitMQ blocks a connection at its first publish under the
        # alarm, and says so: that publish waits, the next is refused.
        await c.send({"event": p + ".send", "nonce": "b1", "data": {}})
        await wait_until(lambda: "RabbitMQ blocks publishing" in
                         gw.stderr_text(), T(10), "connection.blocked")
        await c.send({"event": p + ".send", "nonce": "b2", "data": {}})
        await expect_error(c, "unavailable", "b2")
        assert broker_stats(gw)["relay_unconfirmed"] == 1
    finally:
        await in_thread(memory_alarm, rabbit, False)
    await wait_until(lambda: "RabbitMQ takes publishes again" in
                     gw.stderr_text(), T(10), "connection.unblocked")
    await c.send({"event": p + ".send", "nonce": "b3", "data": {}})
    for nonce in ("b1", "b3"):
        _, props, _ = await consumer.next()
        assert props.correlation_id == nonce
    await wait_stats(gw, {"relay_published": 2, "relay_confirmed": 2,
                          "relay_unconfirmed": 0})
    assert health(gw)[1] == "up"
    await consumer.close()


# Last: it restarts the module's RabbitMQ node.
@pytest.mark.time_limit(90)
async def test_rabbitmq_outage_and_return(gateway_factory, rabbit):
    p = uniq("d")
    gw = gateway_factory(**overrides(rabbit, uniq("gw-up"), p + ".#"))
    await wait_link(gw, "up")
    consumer = await Consumer.bind(rabbit, p + ".*")
    c = await Client.session(gw)
    await c.send({"event": p + ".send", "nonce": "n1", "data": {"i": 1}})
    _, props, _ = await consumer.next()
    assert props.correlation_id == "n1"
    await consumer.close()

    await in_thread(rabbit.stop)
    await wait_link(gw, "down")
    start = time.monotonic()
    await c.send({"event": p + ".send", "nonce": "n2", "data": {"i": 2}})
    await expect_error(c, "unavailable", "n2", timeout=2)
    assert time.monotonic() - start < T(2)

    await in_thread(rabbit.start)
    await wait_link(gw, "up")
    consumer = await Consumer.bind(rabbit, p + ".*")
    await c.send({"event": p + ".send", "nonce": "n3", "data": {"i": 3}})
    _, props, body = await consumer.next()
    assert props.correlation_id == "n3"
    assert json.loads(body)["data"] == {"i": 3}
    await consumer.close()
    await wait_stats(gw, {"relay_published": 2, "relay_confirmed": 2,
                          "relay_unconfirmed": 0})
