"""Backends that answer one session and steer live sessions: envelopes that
target a sessionId and echo a nonce, and the subscribe / unsubscribe /
disconnect actions, through POST /publish, the /sessions routes and Redis
across two instances.

"Nobody else got it" is proved as in test_redis.py: a marker broadcast
afterwards must be each other client's next dispatch.
"""

import asyncio
import json

import pytest

from gwtest import Client, T, uniq
from redisserver import redis_server, redis_server_factory  # noqa: F401
from test_redis import redis_gateway, rpublish, wait_link

MARKER = {"event": "marker", "broadcast": True, "data": {"end": True}}


async def expect_marker(c):
    msg = await c.recv()
    assert msg.get("event") == "marker" and "seq" in msg, (
        "session %s: expected only the marker, got %r" % (c.session_id, msg))


def session_action(gw, action, body, key="default"):
    key = gw.api_key if key == "default" else key
    headers = {"X-API-Key": key} if key is not None else {}
    return gw.http("POST", "/sessions/" + action, body=body, headers=headers)


async def asession_action(gw, action, body):
    r = await asyncio.get_running_loop().run_in_executor(
        None, session_action, gw, action, body)
    assert r.status == 202, "POST /sessions/%s %r -> %r" % (action, body, r)
    return r.json()


# -- replies: one session, with the nonce -----------------------------------

async def test_reply_reaches_exactly_its_session_with_the_nonce(gw):
    user = uniq("u")
    a = await Client.session(gw, user)
    b = await Client.session(gw, user)  # the same user, another session
    other = await Client.session(gw)
    body = await gw.apublish({"event": "chat.sent",
                              "sessionId": a.session_id, "nonce": "req-17",
                              "data": {"id": 42}})
    # The id names the worker that holds the session: only it is asked.
    assert body["workers"] == 1, body
    msg = await a.recv()
    assert msg == {"seq": 1, "event": "chat.sent", "nonce": "req-17",
                   "data": {"id": 42}}, msg
    await gw.apublish(MARKER)
    for c in (a, b, other):
        await expect_marker(c)


async def test_reply_to_an_unknown_session_reaches_nobody(gw):
    c = await Client.session(gw)
    await gw.apublish({"event": "e", "sessionId": "0" * 32, "data": {}})
    await gw.apublish({"event": "e", "sessionId": c.session_id.upper(),
                       "data": {"upper": True}})
    assert (await c.recv())["data"] == {"upper": True}  # hex in any case
    await gw.apublish(MARKER)
    await expect_marker(c)


@pytest.mark.parametrize("envelope", [
    {"event": "e", "sessionId": "abc", "data": {}},
    {"event": "e", "sessionId": "0" * 32, "userId": "u", "data": {}},
    {"event": "e", "userId": "u", "nonce": "n" * 65, "data": {}},
    {"event": "e", "userId": "u", "nonce": 7, "data": {}},
    {"action": "subscribe", "userId": "u"},
    {"action": "subscribe", "broadcast": True, "guildId": "g"},
    {"action": "kick", "userId": "u"},
    {"action": "disconnect", "userId": "u", "code": 1000},
], ids=["short_id", "two_targets", "long_nonce", "number_nonce",
        "subscribe_without_guild", "subscribe_everyone", "unknown_action",
        "disconnect_1000"])
async def test_bad_envelopes_are_400(gw, envelope):
    r = await asyncio.get_running_loop().run_in_executor(
        None, gw.publish, envelope)
    assert r.status == 400, r
    assert "error" in r.json(), r


# -- actions on one instance -------------------------------------------------

async def test_subscribe_and_unsubscribe_a_users_sessions(gw):
    user, guild = uniq("u"), uniq("g")
    # The token bounds the client to another guild: the backend's word is
    # what lets it into this one.
    a = await Client.session(gw, user, token_guilds=["other"])
    b = await Client.session(gw, user, token_guilds=["other"])
    bystander = await Client.session(gw)
    await asession_action(gw, "subscribe", {"userId": user, "guildId": guild})
    for c in (a, b):
        msg = await c.expect("guild_subscribed")
        assert msg["data"] == {"guildId": guild}, msg
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 1}})
    for c in (a, b):
        await c.expect_dispatch("message.create", guild)
    await asession_action(gw, "unsubscribe",
                          {"sessionId": b.session_id, "guildId": guild})
    msg = await b.expect("guild_unsubscribed")
    assert msg["data"] == {"guildId": guild}, msg
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"n": 2}})
    msg = await a.expect_dispatch("message.create", guild)
    assert msg["data"] == {"n": 2}, msg
    await gw.apublish(MARKER)
    for c in (a, b, bystander):
        await expect_marker(c)


async def test_disconnect_closes_with_the_code_and_reason(gw):
    user = uniq("u")
    a = await Client.session(gw, user)
    b = await Client.session(gw, user)
    keep = await Client.session(gw)
    await asession_action(gw, "disconnect", {"userId": user, "code": 4321,
                                             "reason": "account suspended"})
    for c in (a, b):
        await c.expect_close(4321)
        assert c.ws.close_reason == "account suspended", c.ws.close_reason
    await keep.heartbeat_roundtrip()


async def test_session_routes_need_the_key_and_an_object(gw):
    r = await asyncio.get_running_loop().run_in_executor(
        None, lambda: session_action(gw, "disconnect", {"userId": "u"},
                                     key="wrong"))
    assert r.status == 401, r
    for body in ("[1]", "nope", json.dumps({"userId": "u",
                                            "action": "subscribe"})):
        r = await asyncio.get_running_loop().run_in_executor(
            None, session_action, gw, "disconnect", body)
        assert r.status == 400, (body, r)
    r = await asyncio.get_running_loop().run_in_executor(
        None, session_action, gw, "subscribe", {"userId": "u"})
    assert r.status == 400 and "guildId" in r.json()["error"], r
    r = await asyncio.get_running_loop().run_in_executor(
        None, lambda: gw.http("GET", "/sessions/subscribe"))
    assert r.status == 405, r


# -- across two instances, through Redis -----------------------------------

@pytest.mark.time_limit(40)
async def test_reply_and_actions_cross_instances(redis_server,
                                                 gateway_factory):
    gwa = redis_gateway(gateway_factory, redis_server, "gw-a")
    gwb = redis_gateway(gateway_factory, redis_server, "gw-b")
    for g in (gwa, gwb):
        await wait_link(g, "up", "ok")
    user, guild = uniq("u"), uniq("g")
    on_a = await Client.session(gwa, user)
    on_b = await Client.session(gwb, user)
    other_b = await Client.session(gwb)

    # A reply for the session on A, published to the channel every
    # instance reads: A delivers it, B finds no such session.
    assert await rpublish(redis_server, {
        "event": "chat.sent", "sessionId": on_a.session_id, "nonce": "n1",
        "data": {"ok": True}}) == 2
    msg = await on_a.recv()
    assert msg["event"] == "chat.sent" and msg["nonce"] == "n1", msg

    # One action reaches the user's sessions on both instances.
    await rpublish(redis_server, {"action": "subscribe", "userId": user,
                                  "guildId": guild})
    for c in (on_a, on_b):
        await c.expect("guild_subscribed")
    await rpublish(redis_server, {"event": "m", "guildId": guild,
                                  "data": {}})
    for c in (on_a, on_b):
        await c.expect_dispatch("m", guild)

    await rpublish(redis_server, json.dumps(MARKER))
    for c in (on_a, on_b, other_b):
        await expect_marker(c)

    await rpublish(redis_server, {"action": "disconnect", "userId": user,
                                  "code": 4100})
    for c in (on_a, on_b):
        await c.expect_close(4100)
    await other_b.heartbeat_roundtrip()
