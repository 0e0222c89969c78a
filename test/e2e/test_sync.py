"""sync_request (seed 000): the copy cached in Redis comes back as a
sync-data dispatch with the request's nonce; a miss goes up to RabbitMQ
(routing key sync_request) and the sync service's answer comes back by
sessionId; a cached value that is not a JSON object, or a Redis that is
down, is answered unavailable, and the session goes on."""

import json

import pytest

from gwtest import Client, T, uniq, wait_until
from rabbitserver import rabbit_fixture  # noqa: F401 (fixture)
from redisserver import redis_server, redis_server_factory  # noqa: F401
from test_amqp import overrides as amqp_overrides
from test_amqp import wait_link as wait_amqp
from test_amqp_upstream import Consumer
from test_redis import redis_gateway, rpublish, wait_link


async def expect_error(c, code, nonce):
    msg = await c.expect("error")
    assert msg["data"].get("code") == code, msg
    assert msg.get("nonce") == nonce, msg


def rset(server, key, value):
    with server.client() as r:
        r.set(key, value)


def broker_stats(gw):
    return gw.get_json("/stats")["broker"]


@pytest.mark.time_limit(30)
async def test_hit_comes_back_as_sync_data(redis_server, gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, uniq("gw"),
                       sync={"key_template": "sync:{userId}{scope}"})
    await wait_link(gw, "up", "ok")
    c = await Client.session(gw)
    rset(redis_server, "sync:" + c.user, '{"profile": {"name": "Ada"}}')
    rset(redis_server, "sync:" + c.user + "settings", '{"theme": "dark"}')
    await c.send({"event": "sync_request", "nonce": "s1", "data": {}})
    msg = await c.recv()
    assert msg == {"seq": 1, "event": "sync-data", "nonce": "s1",
                   "data": {"profile": {"name": "Ada"}}}, msg
    await c.send({"event": "sync_request", "data": {"scope": "settings"}})
    msg = await c.recv()
    assert msg == {"seq": 2, "event": "sync-data",
                   "data": {"theme": "dark"}}, msg
    assert broker_stats(gw)["sync_hits"] == 2


@pytest.mark.time_limit(30)
@pytest.mark.parametrize("value", ["not json", "[1, 2]", '{"a": 1'],
                         ids=["text", "array", "truncated"])
async def test_a_value_that_is_not_an_object_is_never_sent(
        redis_server, gateway_factory, value):
    gw = redis_gateway(gateway_factory, redis_server, uniq("gw"))
    await wait_link(gw, "up", "ok")
    c = await Client.session(gw)
    rset(redis_server, "sync:" + c.user, value)
    await c.send({"event": "sync_request", "nonce": "bad", "data": {}})
    await expect_error(c, "unavailable", "bad")
    await c.heartbeat_roundtrip()
    assert "not a JSON object" in gw.stderr_text()


@pytest.mark.time_limit(30)
async def test_redis_down_is_unavailable(redis_server, gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, uniq("gw"))
    await wait_link(gw, "up", "ok")
    c = await Client.session(gw)
    redis_server.stop()
    await wait_link(gw, "down", "degraded")
    await c.send({"event": "sync_request", "nonce": "down", "data": {}})
    await expect_error(c, "unavailable", "down")
    await c.heartbeat_roundtrip()


@pytest.mark.time_limit(30)
async def test_sync_requests_are_limited_per_session(redis_server,
                                                     gateway_factory):
    gw = redis_gateway(gateway_factory, redis_server, uniq("gw"),
                       sync={"limit": 2, "window_ms": 600000})
    await wait_link(gw, "up", "ok")
    c = await Client.session(gw)
    rset(redis_server, "sync:" + c.user, "{}")
    for i in range(2):
        await c.send({"event": "sync_request", "data": {}})
        await c.expect("sync-data")
    await c.send({"event": "sync_request", "nonce": "3rd", "data": {}})
    await expect_error(c, "rate_limited", "3rd")


@pytest.mark.time_limit(60)
async def test_miss_goes_up_and_the_reply_comes_back(
        redis_server, gateway_factory, rabbit):
    instance = uniq("gw-sync")
    conf = amqp_overrides(rabbit, instance, uniq("none") + ".#")
    conf["redis"] = {"enabled": True, "port": redis_server.port}
    gw = gateway_factory(**conf)
    await wait_link(gw, "up", "ok")
    await wait_amqp(gw, "up")
    consumer = await Consumer.bind(rabbit, "sync_request")
    c = await Client.session(gw)
    await c.send({"event": "sync_request", "nonce": "miss",
                  "data": {"scope": "profile"}})
    method, props, body = await consumer.next()
    assert method.routing_key == "sync_request"
    env = json.loads(body)
    assert env["event"] == "sync_request" and env["nonce"] == "miss", env
    assert env["userId"] == c.user and env["sessionId"] == c.session_id, env
    assert env["data"] == {"scope": "profile"}, env
    assert props.correlation_id == "miss"

    # The sync service fills the cache and answers the session by id,
    # echoing the nonce, through the Redis channel.
    rset(redis_server, "sync:" + c.user, '{"fresh": true}')
    assert await rpublish(redis_server, {
        "event": "sync-data", "sessionId": env["sessionId"],
        "nonce": env["nonce"], "data": {"fresh": True}}) == 1
    msg = await c.recv()
    assert msg == {"seq": 1, "event": "sync-data", "nonce": "miss",
                   "data": {"fresh": True}}, msg
    # The next request is a hit.
    await c.send({"event": "sync_request", "data": {}})
    msg = await c.expect("sync-data")
    assert msg["data"] == {"fresh": True}, msg

    def counted():
        s = broker_stats(gw)
        return s["sync_misses"] == 1 and s["sync_hits"] == 1
    await wait_until(counted, T(5), "one miss and one hit counted")
    await consumer.close()
