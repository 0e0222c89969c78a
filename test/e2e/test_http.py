"""The HTTP API: /health, /stats, /metrics, /publish."""

import http.client
import re

import pytest

from gwtest import (STAT_KEYS, Client, RawConn, T, token_for, uniq,
                    wait_until)


def _health_counts(gw, connections, sessions):
    def check():
        h = gw.get_json("/health")
        return h["connections"] == connections and h["sessions"] == sessions
    return check


async def test_health_shape_and_counts(gateway_factory):
    gw = gateway_factory()
    r = gw.http("GET", "/health")
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("application/json"), \
        r.headers
    h = r.json()
    assert h["status"] == "ok", h
    assert isinstance(h["uptime"], (int, float)) and h["uptime"] >= 0, h
    assert h["connections"] == 0 and h["sessions"] == 0, h
    # Both links disabled since the start, on the gateway's wall clock.
    assert h["links"] == {"redis": "disabled", "amqp": "disabled"}, h
    for since in h["links_since"].values():
        assert h["time"] - 1000 * (h["uptime"] + 2) <= since <= h["time"], h

    identified = [await Client.session(gw) for _ in range(3)]
    pending = [await Client.connect(gw) for _ in range(2)]
    for c in pending:
        await c.ready()
    await wait_until(_health_counts(gw, 5, 3), T(5),
                     "/health connections=5 sessions=3")
    for c in identified[:2] + pending[:1]:
        await c.close()
    identified[2].abort()
    await wait_until(_health_counts(gw, 1, 0), T(5),
                     "/health connections=1 sessions=0 after closes")


def _check_counters(obj, where):
    for k in STAT_KEYS:
        assert k in obj, "%s lacks %r: %r" % (where, k, obj)
        assert isinstance(obj[k], int) and not isinstance(obj[k], bool) \
            and obj[k] >= 0, "%s[%r] = %r" % (where, k, obj[k])


async def test_stats_shape_and_totals(gateway_factory):
    gw = gateway_factory()
    clients = [await Client.session(gw, guilds=["g%d" % (i % 3)])
               for i in range(8)]
    await clients[0].heartbeat_roundtrip()
    await wait_until(_health_counts(gw, 8, 8), T(5), "8 sessions")
    stats = gw.get_json("/stats")
    workers = stats["workers"]
    assert [w["id"] for w in workers] == [0, 1, 2, 3], workers
    for w in workers:
        _check_counters(w, "worker %d" % w["id"])
    _check_counters(stats["totals"], "totals")
    for k in STAT_KEYS:
        assert stats["totals"][k] == sum(w[k] for w in workers), (
            "totals[%r] = %r, sum over workers = %r"
            % (k, stats["totals"][k], sum(w[k] for w in workers)))
    t = stats["totals"]
    assert t["connections"] == 8 and t["sessions"] == 8, t
    assert t["guilds"] >= 3, t  # g0..g2, counted once per worker holding them
    assert t["frames_in"] >= 9 and t["frames_out"] >= 17, t
    assert t["bytes_in"] > t["frames_in"] and t["bytes_out"] > t["frames_out"], t


async def test_stats_counters_move(gw):
    before = await gw.totals()
    c = await Client.session(gw)
    for _ in range(10):
        await c.heartbeat_roundtrip()

    async def moved():
        t = await gw.totals()
        return (t["frames_in"] >= before["frames_in"] + 11
                and t["frames_out"] >= before["frames_out"] + 12
                and t["bytes_in"] >= before["bytes_in"] + 300
                and t["bytes_out"] >= before["bytes_out"] + 300) and t
    await wait_until(moved, T(5), "frames/bytes in/out to grow")


async def test_auth_failures_counter(gw):
    before = (await gw.totals())["auth_failures"]
    for secret in ("wrong-1", "wrong-2"):
        c = await Client.connect(gw)
        await c.ready()
        user = uniq("u")
        await c.send_identify(user, [], token=token_for(user, secret=secret))
        await c.expect_close(4004)

    async def moved():
        return (await gw.totals())["auth_failures"] >= before + 2
    await wait_until(moved, T(5), "auth_failures to grow by 2")


async def test_handshake_failures_counter(gw):
    before = (await gw.totals())["handshake_failures"]
    r = await RawConn.open(gw.ws_port)
    await r.send(RawConn.upgrade_request(
        gw.ws_port, headers={"Sec-WebSocket-Version": "8"}))
    status, _ = await r.read_http_response()
    assert status == 426

    async def moved():
        return (await gw.totals())["handshake_failures"] >= before + 1
    await wait_until(moved, T(5), "handshake_failures to grow")


async def test_closes_by_code(gateway_factory):
    """Each WebSocket close counts once, under the code of the side that
    closed first: the client's, the server's, 1006 without a close frame,
    "other" for a code without a slot of its own."""
    gw = gateway_factory()
    for code in (1001, 3000):
        await (await Client.session(gw)).close(code)
    (await Client.session(gw)).abort()
    c = await Client.connect(gw)
    await c.ready()
    user = uniq("u")
    await c.send_identify(user, [], token=token_for(user, secret="wrong"))
    await c.expect_close(4004)
    want = {"1001": 1, "other": 1, "1006": 1, "4004": 1}

    async def counted():
        t = await gw.totals()
        return t["closes"] == 4 and t["closes_by_code"]
    by_code = await wait_until(counted, T(5), "4 closes")
    assert {k: v for k, v in by_code.items() if v} == want, by_code
    assert "1000" in by_code and "4013" in by_code, by_code
    stats = gw.get_json("/stats")
    for code in by_code:
        assert sum(w["closes_by_code"][code] for w in stats["workers"]) == \
            by_code[code], (code, stats)
    samples, typed, _ = parse_metrics(gw.http("GET", "/metrics").body.decode())
    assert typed["gatewayd_closes_by_code_total"] == "counter"
    for code, n in want.items():
        got = sum(v for (name, labels), v in samples.items()
                  if name == "gatewayd_closes_by_code_total"
                  and 'code="%s"' % code in labels)
        assert got == n, (code, got)


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)'
    r'( -?[0-9]+)?$')


def parse_metrics(text):
    """{(name, labels-string): value}, and the names with # TYPE lines."""
    samples, typed, helped = {}, {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
            continue
        if line.startswith("# HELP "):
            helped.add(line.split(" ", 3)[2])
            continue
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        samples[(m.group(1), m.group(3) or "")] = float(m.group(5))
    return samples, typed, helped


async def test_metrics_exposition(gateway_factory):
    gw = gateway_factory()
    for _ in range(6):
        await Client.session(gw)
    await wait_until(_health_counts(gw, 6, 6), T(5), "6 sessions")
    r = gw.http("GET", "/metrics")
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    samples, typed, helped = parse_metrics(r.body.decode())
    for name, _ in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "%s has no # TYPE line" % name
        assert name in helped or base in helped, "%s has no # HELP line" % name
    for w in range(4):
        for name in ("gatewayd_connections",
                     "gatewayd_slow_consumer_closes_total"):
            assert (name, 'worker="%d"' % w) in samples, (
                "no %s{worker=\"%d\"} in:\n%s" % (name, w, r.body.decode()))
    assert typed["gatewayd_slow_consumer_closes_total"] == "counter"
    assert typed["gatewayd_connections"] == "gauge"
    conns = sum(v for (n, _), v in samples.items()
                if n == "gatewayd_connections")
    assert conns == 6, "gatewayd_connections sums to %r, 6 are open" % conns
    for (name, _), v in samples.items():
        if name.endswith("_total"):
            assert typed.get(name) == "counter", (name, typed.get(name))
            assert v >= 0, (name, v)


async def test_unknown_path_is_404(gw):
    assert gw.http("GET", "/nope").status == 404
    assert gw.http("GET", "/health/extra").status == 404


async def test_publish_requires_the_api_key(gw):
    env = {"event": "message.create", "guildId": "g1", "data": {}}
    for key, bearer in ((None, False), ("wrong", False), ("wrong", True),
                        ("", False), (gw.api_key + "x", False),
                        (gw.api_key[:-1], True)):
        r = gw.publish(env, key=key, bearer=bearer)
        assert r.status == 401, "key %r (bearer=%s) -> %r" % (key, bearer, r)
    # Authentication is checked before the body.
    r = gw.publish("not json", key=None)
    assert r.status == 401, r
    for bearer in (False, True):
        r = gw.publish(env, bearer=bearer)
        assert r.status == 202, r
        body = r.json()
        assert body["accepted"] is True, body
        assert isinstance(body["workers"], int) and 0 <= body["workers"] <= 4
        # Redis is off here: this instance alone (test_targeted: the
        # cluster).
        assert body["scope"] == "instance", body


BAD_PUBLISH = {
    "not_json": "this is not json",
    "truncated_json": '{"event":"x","guildId":"g1"',
    "array": '[{"event":"x","guildId":"g1","data":{}}]',
    "no_event": {"guildId": "g1", "data": {}},
    "event_not_string": {"event": 5, "guildId": "g1", "data": {}},
    "empty_event": {"event": "", "guildId": "g1", "data": {}},
    "no_target": {"event": "x", "data": {}},
    "guild_and_user": {"event": "x", "guildId": "g1", "userId": "u1",
                       "data": {}},
    "guild_and_broadcast": {"event": "x", "guildId": "g1", "broadcast": True,
                            "data": {}},
    "user_and_user_ids": {"event": "x", "userId": "u1", "userIds": ["u2"],
                          "data": {}},
    "data_array": {"event": "x", "guildId": "g1", "data": [1]},
    "data_string": {"event": "x", "guildId": "g1", "data": "s"},
    "guild_not_string": {"event": "x", "guildId": 7, "data": {}},
    "user_ids_not_list": {"event": "x", "userIds": "u1", "data": {}},
    "user_ids_with_number": {"event": "x", "userIds": ["u1", 2], "data": {}},
    "empty_body": "",
}


@pytest.mark.parametrize("case", sorted(BAD_PUBLISH))
async def test_publish_rejects_bad_envelopes(gw, case):
    r = gw.publish(BAD_PUBLISH[case])
    assert r.status == 400, "%s -> %r" % (case, r)
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body


# JSON that cJSON reads but RFC 8259 does not allow. Event bodies go to
# clients as they came, so each would reach a whole guild as a frame that
# its JSON parser refuses, or (bad UTF-8) as a text frame that closes the
# connection with 1007.
NOT_RFC8259 = {
    "bad_utf8": b'"a\xff\xfe"',
    "overlong_utf8": b'"\xc0\xaf"',
    "raw_tab": b'"a\tb"',
    "bad_hex_escape": b'"\\uZZZZ"',
    "lone_surrogate": b'"\\ud800"',
    "leading_zero": b'01',
    "bare_fraction": b'-.5',
    "trailing_point": b'1.',
}


@pytest.mark.parametrize("case", sorted(NOT_RFC8259))
async def test_publish_refuses_what_only_cjson_reads(gw, case):
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    env = (b'{"event":"x","guildId":"%s","data":{"v":%s}}'
           % (guild.encode(), NOT_RFC8259[case]))
    r = gw.publish(env)
    assert r.status == 400, "%s -> %r" % (case, r)
    assert r.json()["error"] == "body is not a JSON object", r
    # The member saw nothing of it and is still there for the next event.
    gw.publish_ok({"event": "after", "guildId": guild, "data": {}})
    msg = await c.expect_dispatch("after", guild)
    assert msg["seq"] == 1, msg


async def test_publish_without_data_defaults_to_empty_object(gw):
    guild = uniq("g")
    c = await Client.session(gw, guilds=[guild])
    r = gw.publish({"event": "guild.delete", "guildId": guild})
    assert r.status == 202, r
    msg = await c.expect_dispatch("guild.delete", guild)
    assert msg["data"] == {}, msg


async def test_publish_keep_alive(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.http_port,
                                      timeout=T(10))
    try:
        for i in range(20):
            conn.request("POST", "/publish",
                         body='{"event":"x","broadcast":true,"data":{}}',
                         headers={"X-API-Key": gw.api_key,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 202, (i, r.status)
            conn.request("GET", "/health")
            r = conn.getresponse()
            r.read()
            assert r.status == 200, (i, r.status)
    finally:
        conn.close()
