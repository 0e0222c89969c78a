"""typing.start on one instance, with no Redis: the relay goes through the
broker thread and back to the local workers, skipping every session of the
sender (the cross-instance path is in test_redis.py)."""
import pytest

from gwtest import Client, uniq


@pytest.mark.time_limit(60)
async def test_typing_reaches_members_once_and_skips_the_sender(gw):
    guild = uniq("g")
    sender = uniq("typist")
    mine = [await Client.session(gw, sender, [guild]) for _ in range(3)]
    members = [await Client.session(gw, uniq("m"), [guild]) for _ in range(8)]
    outsider = await Client.session(gw, uniq("out"), [uniq("other")])

    await mine[0].send({"event": "typing.start",
                        "data": {"guildId": guild, "channelId": "c1"}})
    for c in members:
        msg = await c.recv()
        assert msg == {"seq": 1, "event": "typing.start", "guildId": guild,
                       "data": {"userId": sender, "channelId": "c1"}}, msg
    # A marker proves absence: sender's sessions and the outsider get only it.
    r = await gw.apublish({"event": "marker", "broadcast": True, "data": {}})
    assert r["workers"] == 4
    for c in mine + [outsider]:
        msg = await c.recv()
        assert msg["event"] == "marker" and msg["seq"] == 1, msg
    for c in members:
        msg = await c.recv()
        assert msg["event"] == "marker" and msg["seq"] == 2, msg


async def test_typing_needs_a_joined_guild_and_both_ids(gw):
    c = await Client.session(gw, uniq("u"), ["g1"])
    cases = [({"guildId": "g2", "channelId": "c"}, "forbidden"),
             ({"guildId": "g1"}, "invalid_request"),
             ({"guildId": "", "channelId": "c"}, "invalid_request"),
             ({"guildId": "g1", "channelId": 5}, "invalid_request")]
    for data, code in cases:
        await c.send({"event": "typing.start", "data": data})
        msg = await c.recv()
        assert msg["event"] == "error" and msg["data"]["code"] == code, (
            data, msg)


async def test_typing_is_rate_limited_per_session(gateway_factory):
    gw = gateway_factory(session={"typing_limit": 3,
                                  "typing_window_ms": 60000})
    c = await Client.session(gw, uniq("u"), ["g1"])
    peer = await Client.session(gw, uniq("p"), ["g1"])
    for _ in range(5):
        await c.send({"event": "typing.start",
                      "data": {"guildId": "g1", "channelId": "c"}})
    errors = [await c.recv() for _ in range(2)]
    assert all(e["event"] == "error" and e["data"]["code"] == "rate_limited"
               for e in errors), errors
    got = [await peer.recv() for _ in range(3)]
    assert [m["seq"] for m in got] == [1, 2, 3]
    assert all(m["event"] == "typing.start" for m in got), got
    stats = gw.get_json("/stats")
    assert stats["totals"]["typing_rate_limited"] == 2, stats["totals"]
    assert stats["broker"]["typing_relayed"] == 3, stats["broker"]
    # The session is still usable: an error, not a close.
    await c.heartbeat_roundtrip()
