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
    """Replay the ME's directory from seq 1 and from its newest snapshot (rsx_me_verify); a dict report."""
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
    out = _fields(rep, "struct rsx_me_verify_report")
    out["ok"] = rc == 0
    out["result"] = int(rc)
    return out
