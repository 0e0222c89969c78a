"""SIGHUP (SPEC section 6) reloads what can change at run time: secrets and
limits take effect at their next use, sessions stay, a broken file changes
nothing, and options that need a restart are held back and named."""

import asyncio

import websockets

from gwtest import (API_KEY, SECRET, Client, T, token_for, uniq,
                    wait_until)

NEW_SECRET = "e2e-rotated-jwt-secret-9876543210fedcba"
NEW_KEY = "e2e-rotated-publish-key-9876543210"


async def _identify_with(gw, secret):
    """A new session whose token is signed with `secret`; the client, or
    the close code when it was refused."""
    user = uniq("u")
    c = await Client.connect(gw)
    await c.ready()
    await c.send_identify(user, ["g1"], token=token_for(user, secret=secret))
    try:
        msg = await c.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    assert msg.get("event") == "identified", msg
    c.user = user
    return c


async def test_sighup_rotates_the_secrets(gateway_factory):
    gw = gateway_factory()
    before = await Client.session(gw, uniq("u"), ["g1"])
    await gw.reload(auth={"jwt_secret": NEW_SECRET},
                    http={"publish_api_key": NEW_KEY})
    gw.secret, gw.api_key = NEW_SECRET, NEW_KEY  # for the fixture's checks
    assert await _identify_with(gw, SECRET) == 4004
    after = await _identify_with(gw, NEW_SECRET)
    assert after != 4004
    # The broker takes the new key on its own loop: wait for it, then the
    # old key is refused.
    envelope = {"event": "message.create", "guildId": "g1", "data": {"n": 1}}
    await wait_until(lambda: gw.publish(envelope, key=NEW_KEY).status == 202,
                     T(5), "the new publish key")
    assert gw.publish(envelope, key=API_KEY).status == 401
    # The session identified before the rotation stayed, and both get it.
    for c in (before, after):
        await c.expect_dispatch("message.create", "g1")
    await before.heartbeat_roundtrip()


async def test_sighup_applies_limits_and_holds_back_the_rest(gateway_factory):
    gw = gateway_factory()
    c = await Client.session(gw, uniq("u"), ["g1"])
    await gw.reload(session={"event_rate": 1, "event_burst": 3},
                    server={"workers": 2}, log={"audit": False})
    assert ("SIGHUP: server.workers changed; that takes a restart"
            in gw.stderr_text()), gw.tail()
    assert len(gw.get_json("/stats")["workers"]) == 4
    # The new log switch: an identify no longer writes its audit line.
    audits = gw.stderr_text().count("audit: auth ok")
    await Client.session(gw, uniq("u"), ["g1"])
    assert gw.stderr_text().count("audit: auth ok") == audits
    # The new event limit applies to a session opened before it.
    try:
        for _ in range(20):
            await c.send({"event": "heartbeat", "data": {}})
    except websockets.ConnectionClosed:
        pass
    await c.expect_close(4008, allow=("heartbeat_ack",))


async def test_sighup_with_a_broken_file_changes_nothing(gateway_factory):
    gw = gateway_factory()
    with open(gw.config_path, "a") as f:
        f.write("\n[auth]\njwt_secret = \n")
    await gw.sighup()
    assert "the configuration is unchanged" in gw.stderr_text()
    c = await _identify_with(gw, SECRET)
    assert c != 4004
    await c.heartbeat_roundtrip()


async def test_reloads_under_traffic(gateway_factory):
    """Reloads while sessions identify and events flow: every thread takes
    the snapshots as they come (the sanitizer builds check the hand-over),
    and nothing is lost or refused."""
    gw = gateway_factory()
    listener = await Client.session(gw, uniq("u"), ["g1"])

    async def identify_many():
        for _ in range(20):
            c = await Client.session(gw, uniq("u"), ["g1"])
            await c.heartbeat_roundtrip()
            await c.close()

    async def reload_many():
        for i in range(10):
            await gw.reload(session={"typing_limit": 5 + i},
                            log={"level": "info"})

    await asyncio.gather(identify_many(), reload_many())
    for n in range(20):
        await gw.apublish({"event": "message.create", "guildId": "g1",
                           "data": {"n": n}})
    for n in range(20):
        msg = await listener.expect_dispatch("message.create", "g1")
        assert msg["data"] == {"n": n}
    assert gw.stderr_text().count("SIGHUP: configuration reloaded") == 10
