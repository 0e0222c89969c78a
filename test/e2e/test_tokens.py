"""Tokens (SPEC section 5): RS256 and ES256 keys from PEM files and a JWKS
file, made with `openssl` by each test and signed here with Python's
cryptography package; selection by kid, rotation by SIGHUP, algorithm
confusion, tokens on the upgrade, aud and iss, and live sessions that
follow their token: warned before exp, refreshed in band, closed 4013."""

import asyncio
import base64
import json
import os
import subprocess
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature

from conftest import BIN
from gwtest import (SECRET, Client, Gateway, _jdump, b64url, make_jwt,
                    token_for, uniq)


class Key:
    """A private key made by openssl in dir, its public PEM beside it."""

    def __init__(self, directory, name, kind):
        self.path = os.path.join(str(directory), name + ".key")
        self.pem = os.path.join(str(directory), name + ".pem")
        opt = ("rsa_keygen_bits:2048" if kind == "rsa"
               else "ec_paramgen_curve:P-256")
        subprocess.run(["openssl", "genpkey", "-algorithm",
                        "RSA" if kind == "rsa" else "EC", "-pkeyopt", opt,
                        "-out", self.path], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout",
                        "-out", self.pem], check=True, capture_output=True)
        with open(self.path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        self.alg = "RS256" if kind == "rsa" else "ES256"

    def sign(self, data):
        if self.alg == "RS256":
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(
            self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def jwk(self, kid):
        pub = self.key.public_key().public_numbers()
        if self.alg == "RS256":
            n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
            return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": b64url(n), "e": b64url(pub.e.to_bytes(3, "big"))}
        return {"kty": "EC", "kid": kid, "crv": "P-256",
                "x": b64url(pub.x.to_bytes(32, "big")),
                "y": b64url(pub.y.to_bytes(32, "big"))}

    def token(self, user, kid=None, exp_in=3600, alg=None, **claims):
        now = int(time.time())
        head = {"alg": alg or self.alg, "typ": "JWT"}
        if kid is not None:
            head["kid"] = kid
        payload = {"sub": user, "iat": now, "exp": now + exp_in}
        payload.update(claims)
        signing = b64url(_jdump(head)) + "." + b64url(_jdump(payload))
        return signing + "." + b64url(self.sign(signing.encode()))


def write_jwks(path, keys):
    """keys: (Key, kid) pairs, written as a JWKS file."""
    with open(path, "w") as f:
        json.dump({"keys": [k.jwk(kid) for k, kid in keys]}, f)


def hmac_with_pem(key, user, kid):
    """An HS256 token keyed with the PEM text of a public key: the classic
    algorithm confusion."""
    with open(key.pem) as f:
        pem = f.read()
    return make_jwt({"sub": user, "exp": int(time.time()) + 3600},
                    secret=pem, header={"kid": kid})


ALL_ALGS = "HS256, RS256, ES256"


async def identifies(gw, token, user):
    c = await Client.connect(gw)
    await c.ready()
    await c.identify(user, ["g1"], token=token)
    return c


async def refused(gw, token, user):
    c = await Client.connect(gw)
    await c.ready()
    await c.send_identify(user, ["g1"], token=token)
    await c.expect_close(4004)


async def test_tokens_rs256_es256_and_confusion(gateway_factory, tmp_path):
    rsa = Key(tmp_path, "rsa-2026", "rsa")
    eck = Key(tmp_path, "ec", "ec")
    jwks = os.path.join(str(tmp_path), "jwks.json")
    write_jwks(jwks, [(eck, "ec-1")])
    gw = gateway_factory(auth={"jwt_algorithms": ALL_ALGS,
                               "jwt_public_keys": rsa.pem,
                               "jwks_file": jwks})
    user = uniq("u")
    a = await identifies(gw, rsa.token(user, kid="rsa-2026"), user)
    b = await identifies(gw, eck.token(user, kid="ec-1"), user)
    # HMAC tokens keep working beside the keys, without a kid.
    c = await identifies(gw, token_for(user), user)
    for bad in (
            rsa.token(user, kid="rsa-2025"),   # kid not in the set
            rsa.token(user),                   # no kid, two public keys
            hmac_with_pem(rsa, user, "rsa-2026"),
            hmac_with_pem(rsa, user, None),
            eck.token(user, kid="rsa-2026"),   # ES256 for an RSA key
            rsa.token(user, kid="ec-1"),       # RS256 for an EC key
            make_jwt({"sub": user, "exp": int(time.time()) + 60},
                     alg="none", header={"kid": "ec-1"}),
            token_for(user, secret=SECRET + "x")):
        await refused(gw, bad, user)
    assert "reason=no key for the token" in gw.stderr_text()
    assert "reason=algorithm not accepted" in gw.stderr_text()
    for s in (a, b, c):
        await s.heartbeat_roundtrip()
        await s.close()


async def test_tokens_sole_key_without_kid(gateway_factory, tmp_path):
    eck = Key(tmp_path, "only", "ec")
    gw = gateway_factory(auth={"jwt_algorithms": "ES256",
                               "jwt_public_keys": eck.pem})
    user = uniq("u")
    c = await identifies(gw, eck.token(user), user)
    await c.close()
    # The configuration accepts no HMAC: the secret is not a key.
    await refused(gw, token_for(user), user)
    await gw.reload(auth={"jwt_algorithms": ALL_ALGS})
    c = await identifies(gw, token_for(user), user)
    await c.close()


async def test_tokens_jwks_rotation_by_sighup(gateway_factory, tmp_path):
    old, new = Key(tmp_path, "old", "ec"), Key(tmp_path, "new", "rsa")
    jwks = os.path.join(str(tmp_path), "jwks.json")
    write_jwks(jwks, [(old, "k1")])
    gw = gateway_factory(auth={"jwt_algorithms": ALL_ALGS,
                               "jwks_file": jwks})
    user = uniq("u")
    held = await identifies(gw, old.token(user, kid="k1"), user)
    await refused(gw, new.token(user, kid="k2"), user)

    # The provider rotates: the file is replaced, then SIGHUP.
    write_jwks(jwks + ".tmp", [(new, "k2")])
    os.replace(jwks + ".tmp", jwks)
    await gw.sighup()
    await refused(gw, old.token(user, kid="k1"), user)
    c = await identifies(gw, new.token(user, kid="k2"), user)
    await held.heartbeat_roundtrip()  # open sessions stay

    # A file that does not load changes nothing.
    with open(jwks, "w") as f:
        f.write('{"keys":[{"kty":"EC","kid":"k3","crv":"P-256","x":"AA"}]}')
    await gw.sighup()
    assert "auth.jwks_file: %s: a signing key is malformed" % jwks in \
        gw.stderr_text()
    d = await identifies(gw, new.token(user, kid="k2"), user)
    for s in (held, c, d):
        await s.close()


def start_fails(tmp_path, auth):
    """Starts gatewayd with these auth settings; returns why it did not."""
    workdir = tmp_path / uniq("gw")
    workdir.mkdir()
    try:
        Gateway(BIN, workdir, {"auth": auth}).start(attempts=1)
    except RuntimeError as e:
        return str(e)
    raise AssertionError("gatewayd started with auth %r" % auth)


def test_tokens_bad_key_file_at_start(tmp_path):
    jwks = os.path.join(str(tmp_path), "jwks.json")
    with open(jwks, "w") as f:
        f.write("not json")
    assert "auth.jwks_file: %s: not a JSON Web Key Set" % jwks in \
        start_fails(tmp_path, {"jwks_file": jwks})
    missing = os.path.join(str(tmp_path), "absent.pem")
    assert "auth.jwt_public_keys: %s: No such file" % missing in \
        start_fails(tmp_path, {"jwt_public_keys": missing})


async def test_tokens_on_the_upgrade(gateway_factory, tmp_path):
    rsa = Key(tmp_path, "up", "rsa")
    gw = gateway_factory(auth={"jwt_algorithms": ALL_ALGS,
                               "jwt_public_keys": rsa.pem})
    user = uniq("u")
    for kw in ({"path": "/?token=" + rsa.token(user, kid="up",
                                               guilds=["g7"])},
               {"extra_headers": {"Authorization": "Bearer " +
                                  rsa.token(user, guilds=["g7"])}}):
        c = await Client.connect(gw, **kw)
        await c.ready()
        msg = await c.expect("identified")
        assert msg["data"]["userId"] == user, msg
        assert msg["data"]["guildIds"] == ["g7"], msg
        await c.close()
    for kw in ({"path": "/?token=" + rsa.token(user, kid="nope")},
               {"extra_headers": {"Authorization": "Bearer " +
                                  hmac_with_pem(rsa, user, "up")}}):
        c = await Client.connect(gw, **kw)
        await c.ready()
        await c.expect_close(4004)


async def test_tokens_aud_and_iss(gateway_factory, tmp_path):
    eck = Key(tmp_path, "aud", "ec")
    gw = gateway_factory(auth={"jwt_algorithms": ALL_ALGS,
                               "jwt_public_keys": eck.pem,
                               "jwt_audience": "gatewayd",
                               "jwt_issuer": "https://idp.test"})
    user = uniq("u")
    good = {"aud": ["other", "gatewayd"], "iss": "https://idp.test"}
    c = await identifies(gw, eck.token(user, **good), user)
    await c.close()
    c = await identifies(gw, token_for(user, aud="gatewayd",
                                       iss="https://idp.test"), user)
    await c.close()
    for claims in ({"aud": "other", "iss": "https://idp.test"},
                   {"iss": "https://idp.test"},
                   {"aud": "gatewayd"},
                   {"aud": "gatewayd", "iss": "https://evil.test"}):
        await refused(gw, eck.token(user, **claims), user)
    # Unset again by a reload, for tokens that carry neither.
    await gw.reload(auth={"jwt_audience": "", "jwt_issuer": ""})
    c = await identifies(gw, eck.token(user), user)
    await c.close()


def short_lived(tmp_path, factory, **auth):
    eck = Key(tmp_path, "short", "ec")
    conf = {"jwt_algorithms": ALL_ALGS, "jwt_public_keys": eck.pem,
            "expiry_warning_s": 2}
    conf.update(auth)
    return eck, factory(auth=conf)


async def test_tokens_refresh_keeps_the_session(gateway_factory, tmp_path):
    eck, gw = short_lived(tmp_path, gateway_factory)
    user = uniq("u")
    c = await Client.connect(gw)
    await c.ready()
    token = eck.token(user, exp_in=4, guilds=["g1", "g2"])
    exp = json.loads(base64.urlsafe_b64decode(
        token.split(".")[1] + "==="))["exp"]
    await c.identify(user, ["g1", "g2"], token=token)
    warned = await c.expect("token_expiring", timeout=5)
    assert warned["data"] == {"exp": exp}, warned
    assert time.time() >= exp - 2 - 0.5, "warned too early"

    # Another user's token, a bad one: answered, the session stays.
    await c.send({"event": "refresh",
                  "data": {"token": eck.token(uniq("v"), exp_in=600)}})
    await c.expect_error("invalid_token")
    # With a nonce, the answer carries it, refused or not.
    await c.send({"event": "refresh", "nonce": "r1",
                  "data": {"token": "garbage"}})
    err = await c.expect("error")
    assert err["nonce"] == "r1", err
    assert err["data"]["code"] == "invalid_token", err
    await c.send({"event": "refresh", "data": {}})
    await c.expect_error("invalid_request")

    # A new token for the same user, allowing only g2: g1 is left.
    fresh = eck.token(user, exp_in=600, guilds=["g2"])
    await c.send({"event": "refresh", "nonce": "r2", "data": {"token": fresh}})
    got = await c.expect("refreshed")
    assert got["nonce"] == "r2", got
    assert got["data"]["exp"] > exp + 500, got
    left = await c.expect("guild_unsubscribed")
    assert left["data"] == {"guildId": "g1"}, left
    # Past the old exp and its close, the session is still served.
    while time.time() < exp + 2:
        await c.heartbeat_roundtrip()
        await asyncio.sleep(0.2)
    await c.send({"event": "guild_subscribe", "data": {"guildId": "g1"}})
    await c.expect_error("forbidden")
    await c.close()


async def test_tokens_expiry_closes_4013(gateway_factory, tmp_path):
    eck, gw = short_lived(tmp_path, gateway_factory, expiry_warning_s=1)
    user = uniq("u")
    c = await Client.connect(gw)
    await c.ready()
    exp = int(time.time()) + 3
    await c.identify(user, token=eck.token(user, exp_in=exp - int(time.time())))
    seen = await c.expect_close(4013, timeout=8,
                                allow=("error", "token_expiring"))
    assert [m["event"] for m in seen] == ["token_expiring"], seen
    assert time.time() >= exp + 1, "closed before exp passed"


async def test_tokens_leeway_delays_the_close(gateway_factory, tmp_path):
    eck, gw = short_lived(tmp_path, gateway_factory, expiry_warning_s=0,
                          leeway_s=2)
    user = uniq("u")
    c = await Client.connect(gw)
    await c.ready()
    exp = int(time.time()) + 2
    await c.identify(user, token=eck.token(user, exp_in=exp - int(time.time())))
    await c.expect_close(4013, timeout=8)
    assert time.time() >= exp + 2 + 1, "closed inside the leeway"
