"""The matching engine process of one symbol (specs/me.md).

    from rsx_appliance.me import MatchingEngine, MeOptions, MeStats
    opts = MeOptions.from_config(load_config(), "BTC-PERP")
    with MatchingEngine(opts) as me:       # recovers from opts.directory
        me.attach(cmp.Endpoint("udp", opts.cmp, mode="sleep"))
        me.run()                           # the C loop, GIL released, until me.stop()
    MeStats(opts.directory).read()         # from any process: state, counters, config
    MeStats(opts.directory).histograms()   # per-stage latency

`rsx me` (rsx_appliance.me.process) runs it as a process.
"""

from .engine import Durability, Info, MatchingEngine, Recovery, State, Wait, config_payload
from .options import MeOptions
from .stats import ControlError, MeStats, StatsFileError

__all__ = ["MatchingEngine", "MeOptions", "MeStats", "State", "Durability", "Wait", "Recovery", "Info",
           "ControlError", "StatsFileError", "config_payload", "verify"]


def verify(opts: MeOptions) -> dict:
    """Replay the ME's directory from seq 1 and from its newest snapshot (rsx_me_verify).

    Returns {ok, result (0 or the C code), tip_seq, oldest_seq, full_records, full_requests, full_result,
    snapshot_seq, tail_records, tail_result, books_equal (None: not compared), open_at_end (the WAL ends
    inside a request, which a restart completes), diverged_seq, message}.
    """
    from .._native import ffi, lib
    from .engine import _fields

    eng_cfg = ffi.new("struct rsx_me_config *")
    lib.rsx_me_config_init(eng_cfg)
    d = ffi.new("char[]", str(opts.directory).encode())
    eng_cfg.dir = d
    payload = config_payload(opts)
    ffi.memmove(ffi.addressof(eng_cfg, "symbol"), payload, len(payload))
    eng_cfg.capacity, eng_cfg.max_users, eng_cfg.ref_price = opts.capacity, opts.max_users, opts.ref_price
    rep = ffi.new("struct rsx_me_verify_report *")
    rc = lib.rsx_me_verify(eng_cfg, rep)
    f = _fields(rep, "struct rsx_me_verify_report")
    return {"ok": rc == 0, "result": int(rc), "tip_seq": f["tip"], "oldest_seq": f["oldest"],
            "full_records": f["full_records"], "full_requests": f["full_requests"], "full_result": f["full_result"],
            "snapshot_seq": f["snapshot_seq"], "tail_records": f["tail_records"], "tail_result": f["tail_result"],
            "books_equal": {1: True, 0: False}.get(f["books_equal"]), "open_at_end": bool(f["open_at_end"]),
            "diverged_seq": f["diverged_seq"], "message": f["message"]}
