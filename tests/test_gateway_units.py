"""Gateway parts without sockets: frame parsing, token buckets, the circuit breaker, tokens, config keys."""

from __future__ import annotations

import time
import tomllib

import jwt
import pytest

from rsx_appliance.config import DEFAULT_TOML, parse_config
from rsx_appliance.errors import ConfigError
from rsx_appliance.gateway.auth import AuthError, ReplayStore, TokenVerifier, mint_token
from rsx_appliance.gateway.breaker import Breaker, BreakerState
from rsx_appliance.gateway.limits import ConnectionCounts, TokenBucket
from rsx_appliance.gateway.protocol import E, FrameError, parse

SECRET = b"k" * 32


@pytest.mark.parametrize("frame, fields", [
    (b'{"N":[1,0,6000000,1000,"a1"]}', [1, 0, 6000000, 1000, "a1", 0, 0, 0, 0]),
    (b'{"N":[1,1,5,1000,"x.y:z-_",2,1,0,3]}', [1, 1, 5, 1000, "x.y:z-_", 2, 1, 0, 3]),
    (b'{"C":["0123456789abcdef0123456789abcdef"]}', ["0123456789abcdef0123456789abcdef"]),
    (b'{"AM":["a1",0,500]}', ["a1", 0, 500]),
    (b'{"CA":[]}', [0]),
    (b'{"H":[17]}', [17]),
    (b'{"FL":[1]}', [1, 50, 0]),
    (b'{"FN":[0,10,99]}', [0, 10, 99]),
    (b'{"M":[]}', []),
])
def test_parse_accepts_every_client_message(frame, fields):
    kind, got = parse(frame)
    assert got == fields


@pytest.mark.parametrize("frame, code, needle", [
    (b'not json', E.BAD_FRAME, "not JSON"),
    (b'[1,2]', E.BAD_FRAME, "exactly one key"),
    (b'{}', E.BAD_FRAME, "exactly one key"),
    (b'{"N":[1,0,1,1,"a"],"C":["a"]}', E.BAD_FRAME, "exactly one key"),
    (b'{"ZZ":[]}', E.UNSUPPORTED, "unknown"),
    (b'{"U":[]}', E.UNSUPPORTED, "server message"),
    (b'{"N":{}}', E.BAD_FRAME, "array"),
    (b'{"N":[1,0,1,1]}', E.BAD_FRAME, "expected 5..9 fields"),
    (b'{"N":[1,0,1,1,"a",0,0,0,0,0]}', E.BAD_FRAME, "expected 5..9 fields"),
    (b'{"N":[1,2,1,1,"a"]}', E.BAD_FRAME, "N.side: 2 is out of range"),
    (b'{"N":[1,0,1,1,"a",3]}', E.BAD_FRAME, "N.tif"),
    (b'{"N":[1,0,1,1,"a",0,0,0,4]}', E.BAD_FRAME, "N.stp"),
    (b'{"N":[1,0,1.5,1,"a"]}', E.BAD_FRAME, "N.px: expected an integer, got a number"),
    (b'{"N":[1,0,1e3,1,"a"]}', E.BAD_FRAME, "N.px: expected an integer"),
    (b'{"N":[1,0,"1",1,"a"]}', E.BAD_FRAME, "N.px: expected an integer, got a string"),
    (b'{"N":[1,true,1,1,"a"]}', E.BAD_FRAME, "N.side: expected an integer, got a boolean"),
    (b'{"N":[1,0,99999999999999999999999,1,"a"]}', E.BAD_FRAME, "N.px"),
    (b'{"N":[1,0,1,1,"' + b"a" * 21 + b'"]}', E.BAD_FRAME, "N.cid"),
    (b'{"N":[1,0,1,1,"a\\"b"]}', E.BAD_FRAME, "N.cid"),
    (b'{"N":[1,0,1,1,null]}', E.BAD_FRAME, "N.cid: expected a string, got null"),
    (b'{"N":[-1,0,1,1,"a"]}', E.BAD_FRAME, "N.sym"),
    (b'{"C":["0123456789ABCDEF0123456789ABCDEF"]}', E.BAD_FRAME, "C.id"),
    (b'{"DM":[600001]}', E.BAD_FRAME, "DM.timeout_ms"),
    (b'{"FL":[0,501]}', E.BAD_FRAME, "FL.limit"),
    (b'[' * 5000 + b']' * 5000, E.BAD_FRAME, "not JSON"),
    (b'{"N":' + b'[' * 3000 + b']' * 3000 + b'}', E.BAD_FRAME, ""),
])
def test_parse_refuses_malformed_frames_naming_the_field(frame, code, needle):
    with pytest.raises(FrameError) as exc:
        parse(frame)
    assert exc.value.code == code
    assert needle in exc.value.message


def test_token_bucket_refills_continuously_and_caps_at_one_second():
    b = TokenBucket(10, now=0.0)
    assert sum(b.take(0.0) for _ in range(20)) == 10
    assert not b.take(0.05)
    assert b.take(0.1)                     # one token per 100 ms
    assert sum(b.take(100.0) for _ in range(20)) == 10   # never more than one second's worth
    assert TokenBucket(0, 0.0).take(0.0)   # rate 0: no limit


def test_connection_counts_refuse_the_sixth_and_free_on_close():
    c = ConnectionCounts(per_user=5, per_ip=7, total=100)
    for _ in range(5):
        assert c.refusal(1, "a") is None
        c.add(1, "a")
    assert c.refusal(1, "a")[:2] == (429, E.TOO_MANY_CONNECTIONS)
    assert c.refusal(2, "a") is None and c.refusal(2, "b") is None
    c.add(2, "a"), c.add(2, "a")
    assert c.refusal(3, "a")[:2] == (429, E.TOO_MANY_CONNECTIONS)   # per IP
    c.remove(1, "a")
    assert c.refusal(1, "b") is None


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_breaker_every_transition_and_exit():
    clk = Clock()
    b = Breaker("risk.0", failures=3, window_s=10, cooldown_s=5, clock=clk)
    b.failure(), b.failure()
    clk.t = 11                                  # the first two fell out of the window
    b.failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.failure(), b.failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clk.t = 15.9
    assert not b.allow() and 0 < b.retry_in() <= 5
    clk.t = 16.1
    assert b.allow()                            # the probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow() and not b.allow()      # only one probe
    b.failure()                                 # probe failed: open again, new cooldown
    assert b.state is BreakerState.OPEN and not b.allow()
    clk.t = 21.2
    assert b.allow() and b.state is BreakerState.HALF_OPEN
    b.success()                                 # probe answered: closed
    assert b.state is BreakerState.CLOSED and b.allow() and b.allow()
    assert b.opens == 2


def verifier(**kw):
    return TokenVerifier("HS256", SECRET, "rsx", "rsx", **kw)


def test_tokens_verify_once_and_replay_is_refused():
    v = verifier()
    tok, jti, _ = mint_token(SECRET, "HS256", 42)
    ident = v.verify(f"Bearer {tok}")
    assert ident.user_id == 42 and ident.jti == jti
    with pytest.raises(AuthError) as exc:
        v.verify(f"Bearer {tok}")
    assert (exc.value.http, exc.value.code) == (401, E.REPLAYED)
    v.replay.release(jti)                       # an upgrade that did not complete gives it back
    assert v.verify(f"bearer {tok}").user_id == 42


def test_replay_store_forgets_expired_ids_and_refuses_when_full():
    r = ReplayStore(capacity=2)
    r.reserve("a", exp=10, now=0)
    r.reserve("b", exp=10, now=0)
    with pytest.raises(AuthError) as exc:
        r.reserve("c", exp=10, now=1)
    assert exc.value.http == 503
    r.reserve("c", exp=30, now=11)             # a and b expired: room again
    with pytest.raises(AuthError):
        r.reserve("c", exp=30, now=12)


def test_hs256_secret_shorter_than_32_bytes_is_refused(tmp_path):
    from rsx_appliance.gateway.auth import load_verifier

    cfg = parse_config(tomllib.loads(DEFAULT_TOML), "<t>", tmp_path)
    p = cfg.resolve(cfg.auth.secret_file)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"short")
    with pytest.raises(ConfigError, match="at least 32"):
        load_verifier(cfg)


def test_gateway_config_keys_parse_strictly(tmp_path):
    doc = tomllib.loads(DEFAULT_TOML)
    doc["gateway"].update(order_rate_user=7, max_frame_bytes=8192, breaker_failures=3)
    cfg = parse_config(doc, "<t>", tmp_path)
    assert (cfg.gateway.order_rate_user, cfg.gateway.max_frame_bytes, cfg.gateway.breaker_failures) == (7, 8192, 3)
    for bad in ({"order_rate_usr": 1}, {"max_frame_bytes": 10}, {"heartbeat_s": 20, "idle_timeout_s": 10},
                {"order_rate_ip": -1}, {"max_pending": "x"}):
        doc = tomllib.loads(DEFAULT_TOML)
        doc["gateway"].update(bad)
        with pytest.raises(ConfigError):
            parse_config(doc, "<t>", tmp_path)


def test_minted_token_claims():
    tok, jti, exp_ns = mint_token(SECRET, "HS256", 7, ttl_s=60)
    claims = jwt.decode(tok, SECRET, algorithms=["HS256"], audience="rsx")
    assert claims["sub"] == "7" and claims["jti"] == jti and claims["iss"] == "rsx"
    assert abs(claims["exp"] - time.time() - 60) < 5 and exp_ns == claims["exp"] * 10**9


def test_a_new_orders_id_is_a_function_of_user_symbol_and_client_id():
    """So a retry carries its first try's id and the engine's dedup refuses it (specs/ws-api.md 5.1)."""
    import uuid

    from rsx_appliance.gateway.orders import OrderIds

    a = OrderIds.of_client(7, 1, "c-1")
    assert a == OrderIds.of_client(7, 1, "c-1") == OrderIds(3).of_client(7, 1, "c-1")   # any gateway, any restart
    others = {OrderIds.of_client(8, 1, "c-1"), OrderIds.of_client(7, 2, "c-1"), OrderIds.of_client(7, 1, "c-2"),
              OrderIds.of_client(71, 1, "c-1"), OrderIds.of_client(7, 11, "-1")}
    assert a not in others and len(others) == 5
    u = uuid.UUID(bytes=a)
    assert u.version == 8 and u.variant == uuid.RFC_4122 and len(a) == 16
    assert uuid.UUID(bytes=OrderIds(0).mint()).version == 7     # other ids (requests, queries) stay UUIDv7


def test_links_poll_soon_after_a_sub_millisecond_timer():
    """uvloop runs a delay under its 1 ms resolution as call_soon and returns a plain Handle (no when()):
    the links' busy poll (0.5 ms) followed by a send's _poll_soon must not raise (it did, in rsx bench
    gateway: AttributeError in the send path's callback)."""
    import uvloop

    from rsx_appliance.config import load_config
    from rsx_appliance.gateway import links as L

    cfg = load_config()
    loop = uvloop.new_event_loop()
    try:
        links = L.Links(cfg, 0, lambda src, batch: None, local=("127.0.0.1", 0),
                        risk_endpoints={0: ("127.0.0.1", 9)}, me_streams={1: None})
        links.start(loop)
        links._arm(L.POLL_BUSY_S)                  # a recovering stream's poll
        links._poll_soon()                          # after a send
        assert links._timer_due <= loop.time() + L.POLL_BUSY_S
        links._arm(L.POLL_IDLE_S)
        links._poll_soon()                          # an idle timer is brought forward to the heartbeat
        assert links._timer_due <= loop.time() + L.HEARTBEAT_S
        links.close()
    finally:
        loop.close()
