"""Every token attack is refused with HTTP 401 (or 429 / 503) before the WebSocket upgrade."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gwharness import Harness, make_config
from rsx_appliance.gateway.auth import ensure_secret, mint_token, signing_key
from rsx_appliance.gateway.protocol import E


def claims(**over):
    now = int(time.time())
    c = {"sub": "5", "iat": now, "nbf": now, "exp": now + 300, "aud": "rsx", "iss": "rsx", "jti": uuid.uuid4().hex}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


async def refused(url: str, headers: dict) -> tuple[int, list]:
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(url, additional_headers=headers, open_timeout=5)
    r = exc.value.response
    return r.status_code, json.loads(r.body)["E"]


@pytest.fixture(scope="module")
def hs(tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("auth"), {"max_connections_per_user": 2})
    ensure_secret(cfg.resolve(cfg.auth.secret_file))
    h = Harness(cfg).start()
    yield h
    h.stop()


def test_hs256_attacks_are_refused_before_the_upgrade(hs):
    key = signing_key(hs.cfg)
    other = b"x" * 32
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "no header": None,
        "not bearer": "Basic dXNlcjpwYXNz",
        "garbage": "Bearer not.a.token",
        "alg none": "Bearer " + b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".",
        "wrong key": "Bearer " + jwt.encode(claims(), other, "HS256"),
        "RS256 token": "Bearer " + jwt.encode(claims(), rsa_key, "RS256"),
        "HS512 same key": "Bearer " + jwt.encode(claims(), key, "HS512"),
        "expired": "Bearer " + jwt.encode(claims(exp=int(time.time()) - 60), key, "HS256"),
        "nbf in the future": "Bearer " + jwt.encode(claims(nbf=int(time.time()) + 600), key, "HS256"),
        "iat in the future": "Bearer " + jwt.encode(claims(iat=int(time.time()) + 600), key, "HS256"),
        "wrong aud": "Bearer " + jwt.encode(claims(aud="other"), key, "HS256"),
        "no aud": "Bearer " + jwt.encode(claims(aud=None), key, "HS256"),
        "wrong iss": "Bearer " + jwt.encode(claims(iss="evil"), key, "HS256"),
        "no exp": "Bearer " + jwt.encode(claims(exp=None), key, "HS256"),
        "no sub": "Bearer " + jwt.encode(claims(sub=None), key, "HS256"),
        "sub not numeric": "Bearer " + jwt.encode(claims(sub="alice"), key, "HS256"),
        "sub zero": "Bearer " + jwt.encode(claims(sub="0"), key, "HS256"),
        "sub negative": "Bearer " + jwt.encode(claims(sub="-5"), key, "HS256"),
        "sub too big": "Bearer " + jwt.encode(claims(sub="4294967296"), key, "HS256"),
        "sub leading zero": "Bearer " + jwt.encode(claims(sub="05"), key, "HS256"),
        "no jti": "Bearer " + jwt.encode(claims(jti=None), key, "HS256"),
        "lives too long": "Bearer " + jwt.encode(claims(exp=int(time.time()) + 10 * 86400), key, "HS256"),
        "tampered payload": None,
    }
    good = jwt.encode(claims(), key, "HS256")
    h_, p_, s_ = good.split(".")
    cases["tampered payload"] = "Bearer " + ".".join((h_, b64(claims(sub="1")), s_))

    async def go():
        for name, value in cases.items():
            headers = {} if value is None else {"Authorization": value}
            status, e = await refused(hs.url, headers)
            assert (status, e[0]) == (401, E.UNAUTHORIZED), name
        # a good token works once; the same token again is a replay
        tok = hs.token(5)
        ws = await hs.connect(5, token=tok)
        status, e = await refused(hs.url, {"Authorization": f"Bearer {tok}"})
        assert (status, e[0]) == (401, E.REPLAYED)
        # two connections per user here; the third is refused, and a slot frees on close
        ws2 = await hs.connect(5)
        status, e = await refused(hs.url, {"Authorization": f"Bearer {hs.token(5)}"})
        assert (status, e[0]) == (429, E.TOO_MANY_CONNECTIONS)
        await ws2.close()
        await asyncio.sleep(0.2)
        ws3 = await hs.connect(5)
        await ws.close(), await ws3.close()
    asyncio.run(go())
    assert hs.server.refusals[str(E.UNAUTHORIZED)] == len(cases)


def test_paths_and_health(hs):
    import urllib.error
    import urllib.request

    port = hs.server.port
    body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read())
    assert body["status"] == "ok" and "connections" in body

    async def go():
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(f"ws://127.0.0.1:{port}/other",
                                     additional_headers={"Authorization": f"Bearer {hs.token(6)}"})
        assert exc.value.response.status_code == 404
    asyncio.run(go())


def test_browser_credential_in_the_subprotocol(hs):
    """specs/ws-api.md 1.2: the token as a bearer. subprotocol beside rsx.v1; rsx.v1 selected, never the token."""
    key = signing_key(hs.cfg)

    async def offer(protocols, headers=None):
        return await websockets.connect(hs.url, subprotocols=protocols, additional_headers=headers or {},
                                        open_timeout=5)

    async def refused_offer(protocols, headers=None):
        with pytest.raises(websockets.InvalidStatus) as exc:
            await offer(protocols, headers)
        r = exc.value.response
        return r.status_code, json.loads(r.body)["E"]

    async def go():
        tok = hs.token(8)
        ws = await offer(["rsx.v1", "bearer." + tok])
        assert ws.subprotocol == "rsx.v1"
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "rsx.v1"
        assert "H" in json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(json.dumps({"M": []}))
        kind, rows = await _next(ws)
        assert kind == "M" and {r[1] for r in rows} == {"BTC-PERP", "ETH-PERP"}
        # the same token again is a replay, whichever way it comes
        assert await refused_offer(["rsx.v1", "bearer." + tok]) == (401, [E.REPLAYED, "token already used (jti replay)"])
        await ws.close()
        bad = {
            "both credentials": (["rsx.v1", "bearer." + hs.token(8)], {"Authorization": f"Bearer {hs.token(8)}"}),
            "two tokens": (["rsx.v1", "bearer." + hs.token(8), "bearer." + hs.token(8)], None),
            "token without rsx.v1": (["bearer." + hs.token(8)], None),
            "expired token": (["rsx.v1", "bearer." + jwt.encode(claims(sub="8", exp=int(time.time()) - 60),
                                                                 key, "HS256")], None),
            "empty token": (["rsx.v1", "bearer."], None),
            "only rsx.v1": (["rsx.v1"], None),
        }
        for name, (protocols, headers) in bad.items():
            status, e = await refused_offer(protocols, headers)
            assert (status, e[0]) == (401, E.UNAUTHORIZED), name
        # programs: Authorization as before; rsx.v1 selected when offered, other offers ignored
        ws = await offer(["rsx.v1"], {"Authorization": f"Bearer {hs.token(8)}"})
        assert ws.subprotocol == "rsx.v1"
        await ws.close()
        ws = await offer(["chat"], {"Authorization": f"Bearer {hs.token(8)}"})
        assert ws.subprotocol is None and "Sec-WebSocket-Protocol" not in ws.response.headers
        await ws.close()
    asyncio.run(go())


async def _next(ws):
    while True:
        (k, v), = json.loads(await asyncio.wait_for(ws.recv(), 5)).items()
        if k != "H":
            return k, v


def _pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_public_key_algorithms_and_algorithm_confusion(tmp_path, algorithm):
    priv = ed25519.Ed25519PrivateKey.generate() if algorithm == "EdDSA" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub_pem = _pem_public(priv)
    (tmp_path / "pub.pem").write_bytes(pub_pem)
    cfg = make_config(tmp_path, auth={"algorithm": algorithm, "public_key_file": str(tmp_path / "pub.pem")})
    h = Harness(cfg).start()
    try:
        async def go():
            tok, _, _ = mint_token(priv, algorithm, 9)
            ws = await h.connect(9, token=tok)
            await ws.close()
            # HS/RS confusion: an HS256 token whose HMAC key is the public key's PEM
            forged = (b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims(sub="9")))
            import hashlib
            import hmac
            sig = base64.urlsafe_b64encode(hmac.new(pub_pem, forged.encode(), hashlib.sha256).digest())
            forged += "." + sig.rstrip(b"=").decode()
            status, e = await refused(h.url, {"Authorization": f"Bearer {forged}"})
            assert (status, e[0]) == (401, E.UNAUTHORIZED)
            other = ed25519.Ed25519PrivateKey.generate() if algorithm == "EdDSA" else \
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
            status, e = await refused(h.url, {"Authorization": f"Bearer {mint_token(other, algorithm, 9)[0]}"})
            assert (status, e[0]) == (401, E.UNAUTHORIZED)
            status, e = await refused(h.url, {"Authorization": "Bearer " + jwt.encode(claims(), b"k" * 32, "HS256")})
            assert status == 401 and "algorithm" in e[1]
        asyncio.run(go())
    finally:
        h.stop()
