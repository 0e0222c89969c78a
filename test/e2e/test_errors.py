"""Bad input: fatal close codes, recoverable error events, RFC 6455 errors.

After every test the `gw` fixture checks that the daemon is alive, has
written no sanitizer report, and still takes a fresh client through
connect -> ready -> identify -> identified.
"""

import json
import struct
import time

import pytest

from gwtest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                    Client, RawConn, T, make_jwt, token_for, uniq, wait_until)

# The main cases of the protocol: run again over wss:// (conftest.py).
pytestmark = pytest.mark.each_transport


# -- authentication (4004) ----------------------------------------------

def _bad_tokens(user):
    now = int(time.time())
    good = token_for(user)
    head, payload, sig = good.split(".")
    other = token_for(uniq("other"))
    return {
        "wrong_secret": token_for(user, secret="not-the-secret"),
        "expired": token_for(user, exp_in=-3600),
        "not_yet_valid": token_for(user, nbf=now + 3600),
        "alg_none": make_jwt({"sub": user, "exp": now + 3600}, alg="none"),
        "alg_none_with_signature": make_jwt({"sub": user, "exp": now + 3600},
                                            alg="none") + sig,
        "alg_hs384": token_for(user, alg="HS384"),
        "sub_is_another_user": other,
        "no_sub": make_jwt({"exp": now + 3600}),
        "payload_swapped": head + "." + other.split(".")[1] + "." + sig,
        "signature_truncated": good[:-4],
        "garbage": "garbage",
        "empty": "",
        "three_empty_parts": "..",
        "not_base64": "@@@.###.$$$",
        "payload_not_object": make_jwt([user, now + 3600]),
        "exp_not_number": make_jwt({"sub": user, "exp": "tomorrow"}),
    }


BAD_TOKEN_CASES = sorted(_bad_tokens("x"))


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_bad_token_closes_4004(gw, case):
    user = uniq("u")
    token = _bad_tokens(user)[case]
    c = await Client.connect(gw)
    await c.ready()
    await c.send_identify(user, ["g1"], token=token)
    await c.expect_close(4004)


async def test_auth_is_audited(gw, gateway_factory):
    """SPEC 5: one audit line per identify, with the peer, and a counter of
    rejected tokens. Audit lines do not follow log.level: at level error
    both are written; log.audit = false leaves the successes out (and the
    failures, which the counter still counts)."""
    ok_user, bad_user = uniq("u"), uniq("u")
    before = (await gw.totals())["auth_failures"]
    await Client.session(gw, ok_user, ["g1"])
    c = await Client.connect(gw)
    await c.ready()
    expired = _bad_tokens(bad_user)["expired"]
    await c.send_identify(bad_user, ["g1"], token=expired)
    await c.expect_close(4004)
    ok = "peer=127.0.0.1 user=%s" % ok_user
    bad = "peer=127.0.0.1 user=%s reason=" % bad_user
    await wait_until(lambda: ok in gw.stderr_text()
                     and bad in gw.stderr_text(), T(5), "both audit lines")
    assert "audit: auth ok" in gw.stderr_text()
    assert (await gw.totals())["auth_failures"] == before + 1

    terse = gateway_factory(log={"level": "error"})
    await Client.session(terse, ok_user, ["g1"])
    c = await Client.connect(terse)
    await c.ready()
    await c.send_identify(bad_user, ["g1"], token=expired)
    await c.expect_close(4004)
    await wait_until(lambda: bad in terse.stderr_text()
                     and ok in terse.stderr_text(), T(5), "both at error")

    quiet = gateway_factory(log={"audit": False})
    await Client.session(quiet, ok_user, ["g1"])
    c = await Client.connect(quiet)
    await c.ready()
    await c.send_identify(bad_user, ["g1"], token=expired)
    await c.expect_close(4004)
    assert (await quiet.totals())["auth_failures"] == 1
    assert "audit:" not in quiet.stderr_text()


async def test_token_bound_to_guilds_claim(gw):
    user = uniq("u")
    c = await Client.connect(gw)
    await c.ready()
    data = await c.identify(user, ["g3", "g1", "g9", "g2", "g1"],
                            token_guilds=["g1", "g2", "g3"])
    assert data["guildIds"] == ["g3", "g1", "g2"]


async def test_empty_guilds_claim_joins_nothing(gw):
    c = await Client.connect(gw)
    await c.ready()
    data = await c.identify(uniq("u"), ["g1", "g2"], token_guilds=[])
    assert data["guildIds"] == []
    await c.send({"event": "guild_subscribe", "data": {"guildId": "g1"}})
    await c.expect_error("forbidden")


# -- protocol state (4003, 4005) ------------------------------------------

@pytest.mark.parametrize("event", ["guild_subscribe", "guild_unsubscribe",
                                   "typing.start", "no_such_event"])
async def test_event_before_identify_closes_4003(gw, event):
    c = await Client.connect(gw)
    await c.ready()
    await c.send({"event": event, "data": {"guildId": "g1"}})
    await c.expect_close(4003)


async def test_second_identify_closes_4005(gw):
    user = uniq("u")
    c = await Client.session(gw, user, ["g1"])
    await c.send_identify(user, ["g2"])
    await c.expect_close(4005)


# -- envelopes (4002, 4001) -----------------------------------------------

NOT_JSON = ["hello", "", "{", '{"event":"heartbeat","data":{}', "{event:1}",
            '{"event":"heartbeat","data":{}}garbage', "\u00e9\u20ac"]


@pytest.mark.parametrize("text", NOT_JSON, ids=range(len(NOT_JSON)))
async def test_not_json_closes_4002(gw, text):
    c = await Client.session(gw)
    await c.send_text(text)
    await c.expect_close(4002)


async def test_not_json_before_identify_closes_4002(gw):
    c = await Client.connect(gw)
    await c.ready()
    await c.send_text("not json at all")
    await c.expect_close(4002)


BAD_ENVELOPES = [
    '{"data":{}}',
    '{"event":5,"data":{}}',
    '{"event":null,"data":{}}',
    '{"event":["heartbeat"],"data":{}}',
    '{"event":"heartbeat","data":[]}',
    '{"event":"heartbeat","data":"x"}',
    '{"event":"heartbeat","data":7}',
    '[{"event":"heartbeat","data":{}}]',
    '"heartbeat"',
    "42",
    "null",
]


@pytest.mark.parametrize("text", BAD_ENVELOPES, ids=range(len(BAD_ENVELOPES)))
async def test_bad_envelope_closes_4001(gw, text):
    c = await Client.session(gw)
    await c.send_text(text)
    await c.expect_close(4001)


async def test_envelope_without_data_is_accepted(gw):
    c = await Client.session(gw)
    await c.send({"event": "heartbeat"})
    await c.expect("heartbeat_ack")


# -- recoverable errors ---------------------------------------------------

@pytest.mark.parametrize("data", [{}, {"guildId": 5}, {"guildId": ""},
                                  {"guildId": None}, {"guildId": ["g1"]},
                                  {"guild": "g1"}],
                         ids=["missing", "number", "empty", "null", "list",
                              "misnamed"])
@pytest.mark.parametrize("event", ["guild_subscribe", "guild_unsubscribe"])
async def test_invalid_guild_request_is_an_error_event(gw, event, data):
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    await c.send({"event": event, "data": data})
    await c.expect_error("invalid_request")
    await _still_usable(gw, c, guild)


async def test_subscribe_outside_guilds_claim_is_forbidden(gw):
    allowed, denied = uniq("g"), uniq("g")
    c = await Client.session(gw, guilds=[], token_guilds=[allowed])
    await c.send({"event": "guild_subscribe", "data": {"guildId": denied}})
    await c.expect_error("forbidden")
    await c.subscribe(allowed)
    await _still_usable(gw, c, allowed)
    # The refused guild was not joined.
    await gw.apublish({"event": "message.create", "guildId": denied,
                       "data": {}})
    await gw.apublish({"event": "marker", "userId": c.user, "data": {}})
    msg = await c.recv()
    assert msg["event"] == "marker", "forbidden guild's event arrived: %r" % msg


async def test_unknown_event_is_an_error_event(gw):
    # Any other well-formed name goes up to the backends (test_relay.py);
    # one that cannot be a routing key is unknown.
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    await c.send({"event": "No Such Event", "data": {}})
    await c.expect_error("unknown_event")
    await _still_usable(gw, c, guild)


async def test_errors_do_not_accumulate(gw):
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    for _ in range(20):
        await c.send({"event": "guild_subscribe", "data": {}})
    for _ in range(20):
        await c.expect_error("invalid_request")
    await _still_usable(gw, c, guild)


async def _still_usable(gw, c, guild):
    await c.heartbeat_roundtrip()
    await gw.apublish({"event": "message.create", "guildId": guild,
                       "data": {"ok": True}})
    msg = await c.expect_dispatch("message.create", guild)
    assert msg["data"] == {"ok": True}


# -- RFC 6455 errors, written by hand -------------------------------------

async def _raw_session(gw):
    r = await RawConn.to(gw)
    await r.handshake(gw.client_port)
    msg = await r.read_json()
    assert msg["event"] == "ready", msg
    return r


HEARTBEAT = b'{"event":"heartbeat","data":{}}'

INVALID_UTF8 = {
    "bad_byte": b'{"event":"heartbeat","data":{"x":"\xff"}}',
    "lone_continuation": b'{"event":"heartbeat","data":{"x":"\x80"}}',
    "overlong": b'{"event":"heartbeat","data":{"x":"\xc0\xaf"}}',
    "surrogate": b'{"event":"heartbeat","data":{"x":"\xed\xa0\x80"}}',
    "above_max": b'{"event":"heartbeat","data":{"x":"\xf4\x90\x80\x80"}}',
    "truncated_at_end": b'{"event":"heartbeat","data":{}}\xe2\x82',
}


@pytest.mark.parametrize("case", sorted(INVALID_UTF8))
async def test_invalid_utf8_closes_1007(gw, case):
    r = await _raw_session(gw)
    await r.send_frame(OP_TEXT, INVALID_UTF8[case])
    await r.expect_close(1007)


async def test_invalid_utf8_in_a_fragment_closes_1007(gw):
    r = await _raw_session(gw)
    await r.send_frame(OP_TEXT, b'{"event":"heartbeat",', fin=False)
    await r.send_frame(OP_CONT, b'"data":{"x":"\xfe"}}', fin=True)
    await r.expect_close(1007)


async def test_utf8_split_across_fragments_is_valid(gw):
    r = await _raw_session(gw)
    text = '{"event":"heartbeat","data":{"x":"\u20ac\U0001F600"}}'.encode()
    cut = text.index(b"\xe2") + 1  # inside the euro sign
    await r.send_frame(OP_TEXT, text[:cut], fin=False)
    await r.send_frame(OP_CONT, text[cut:cut + 3], fin=False)
    await r.send_frame(OP_CONT, text[cut + 3:], fin=True)
    msg = await r.read_json()
    assert msg == {"event": "heartbeat_ack", "data": {}}, msg


async def test_ping_between_fragments(gw):
    r = await _raw_session(gw)
    await r.send_frame(OP_TEXT, HEARTBEAT[:10], fin=False)
    await r.send_frame(OP_PING, b"mid")
    await r.send_frame(OP_CONT, HEARTBEAT[10:], fin=True)
    # Both the pong and the message's answer arrive, in either order.
    frames = {}
    for _ in range(2):
        fin, op, payload = await r.read_frame()
        assert fin and op in (OP_TEXT, OP_PONG) and op not in frames, (
            fin, op, payload)
        frames[op] = payload
    assert frames[OP_PONG] == b"mid", frames
    assert json.loads(frames[OP_TEXT]) == {"event": "heartbeat_ack",
                                           "data": {}}, frames


async def test_raw_frames_work(gw):
    # Sanity check of the raw client itself: a well-formed session.
    r = await _raw_session(gw)
    await r.send_frame(OP_TEXT, HEARTBEAT)
    assert await r.read_json() == {"event": "heartbeat_ack", "data": {}}
    await r.send_frame(OP_PING, b"p")
    assert await r.read_frame() == (True, OP_PONG, b"p")
    await r.send_frame(0x8, b"\x03\xe8")
    fin, op, payload = await r.read_frame()
    assert (op, payload[:2]) == (0x8, b"\x03\xe8")


PROTOCOL_ERRORS = {
    "unmasked": [dict(opcode=OP_TEXT, payload=HEARTBEAT, mask=False)],
    "reserved_opcode": [dict(opcode=0x3, payload=b"x")],
    "reserved_control_opcode": [dict(opcode=0xB, payload=b"x")],
    "rsv2_set": [dict(opcode=OP_TEXT, payload=HEARTBEAT, rsv=2)],
    "continuation_without_start": [dict(opcode=OP_CONT, payload=b"x")],
    "text_inside_fragmented_message": [
        dict(opcode=OP_TEXT, payload=b'{"event":', fin=False),
        dict(opcode=OP_TEXT, payload=HEARTBEAT)],
    "fragmented_ping": [dict(opcode=OP_PING, payload=b"x", fin=False)],
    "ping_over_125_bytes": [dict(opcode=OP_PING, payload=b"x" * 126)],
}


@pytest.mark.parametrize("case", sorted(PROTOCOL_ERRORS))
async def test_protocol_error_closes_1002(gw, case):
    r = await _raw_session(gw)
    for frame in PROTOCOL_ERRORS[case]:
        await r.send_frame(**frame)
    await r.expect_close(1002)


# -- the closing handshake after a fatal error ----------------------------

FATAL = {
    "not_json_4002": (4002, [dict(opcode=OP_TEXT, payload=b"nope")]),
    "bad_envelope_4001": (4001, [dict(opcode=OP_TEXT, payload=b"[]")]),
    "invalid_utf8_1007": (1007, [dict(opcode=OP_TEXT,
                                      payload=INVALID_UTF8["bad_byte"])]),
    "unmasked_1002": (1002, [dict(opcode=OP_TEXT, payload=HEARTBEAT,
                                  mask=False)]),
    "too_big_1009": (1009, [dict(opcode=OP_TEXT, payload=b"x" * 70000)]),
    "too_big_fragmented_1009": (1009, [
        dict(opcode=OP_TEXT, payload=b"x" * 30000, fin=False),
        dict(opcode=OP_CONT, payload=b"x" * 30000, fin=False),
        dict(opcode=OP_CONT, payload=b"x" * 30000, fin=True)]),
}


@pytest.mark.parametrize("case", sorted(FATAL))
async def test_close_handshake_after_fatal_error_completes_promptly(gw, case):
    # The server sends its close frame; once the client answers, the server
    # closes the TCP connection at once (RFC 6455 5.5.1, 7.1.1) instead of
    # waiting out a timer.
    code, frames = FATAL[case]
    r = await _raw_session(gw)
    for frame in frames:
        await r.send_frame(**frame)
    await r.expect_close(code)
    try:
        await r.send_frame(OP_CLOSE, struct.pack("!H", code))
    except OSError:
        pass  # already closed: fine
    # Closing a socket is quick even under sanitizers: cap the scaled bound
    # well below any multi-second lingering timer.
    await r.wait_closed(min(T(1), 2.0))


# -- edges found with an RFC 6455 test client ------------------------------

async def test_close_with_one_byte_payload_closes_1002(gw):
    # RFC 6455 5.5.1: a close body is empty or begins with a 2-byte code.
    r = await _raw_session(gw)
    await r.send_frame(OP_CLOSE, b"\x03")
    await r.expect_close(1002)


async def test_binary_identify_closes_1003_unidentified(gw):
    # The protocol is text: a binary frame must never act, identify least
    # of all. The close comes before any "identified".
    user = uniq("binary")
    identify = json.dumps({"event": "identify", "data": {
        "userId": user, "token": token_for(user)}}).encode()
    r = await _raw_session(gw)
    await r.send_frame(OP_BINARY, identify)
    await r.expect_close(1003)
    assert (await gw.totals())["sessions"] == 0


async def test_binary_message_from_a_library_client_closes_1003(gw):
    c = await Client.connect(gw)
    await c.ready()
    await c.ws.send(b'{"event":"heartbeat","data":{}}')
    await c.expect_close(1003)
