"""The exchange configuration: one TOML file for every process (specs/config.md).

A superset of the tuning topology file: the topology keys are handed to
:func:`rsx_appliance.tune.topology.parse_topology` (so both readings of one file
agree), everything else is parsed here, strictly: an unknown key, a wrong type
or an inconsistent value is one :class:`ConfigError` naming the file and the
dotted key. Without a file, :data:`DEFAULT_TOML` is the configuration.

Each role table has one small parse function; the issues that build a process
add that process's keys there (and to specs/config.md).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import ConfigError, Rejected
from .numbers import SymbolConfig
from .tune import _toml
from .tune.errors import TuneInputError

__all__ = ["Config", "GatewayConfig", "SymbolSpec", "ProcessSpec", "HostSpec", "Account", "MarketdataConfig",
           "MarkConfig", "MarkSourceConfig", "ConsoleConfig", "StoreConfig", "SupervisorConfig", "load_config",
           "default_config", "parse_config", "streams", "DEFAULT_TOML", "with_overrides", "toml_value",
           "WAIT_MODES", "ROLE_ORDER", "PROCESS_ORDER"]

WAIT_MODES = ("auto", "spin", "backoff", "block")
# start order: a consumer starts after what it consumes (specs/config.md 5)
ROLE_ORDER = ("mark", "me", "risk", "marketdata", "gateway", "recorder")
# roles outside the tuning topology (no hot loop to place) start after it, in this order; the console
# last: it reads what the others publish (specs/console.md 2)
PROCESS_ORDER = ROLE_ORDER + ("store", "console")
_TABLE_OF = {"me": "engines", "risk": "risk", "gateway": "gateway", "marketdata": "marketdata",
             "mark": "mark", "recorder": "recorder"}
# the keys of each role table that belong to the topology (specs/tuning.md 5)
_TOPOLOGY_KEYS = {"me": {"symbols", "slab_mib", "buffers_mib", "isolate", "node"},
                  "risk": {"shards", "buffers_mib", "isolate", "node"}}
_INSTANCE_KEYS = {"instances", "buffers_mib", "isolate", "node"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
LOCAL_HOST = "local"  # the one host of a configuration without [hosts]
_MAX_PER_ROLE = 100  # ports are base + role offset + index (specs/config.md 5)
_PORT_OFFSET = {"me": (0, 100), "risk": (200, 300), "gateway": (400, None),
                "marketdata": (500, None), "mark": (600, 700), "recorder": (None, None),
                "store": (None, None), "console": (None, None)}

DEFAULT_TOML = """\
# rsx-appliance: the embedded default configuration (specs/config.md section 7).
# Print it with `rsx config default`, edit, and start with `rsx up --config rsx.toml`.
version = 1
profile = "balanced"

# demo accounts, deposited once (collateral in USD)
accounts = [
  { user_id = 1, deposit = "1000000" }, { user_id = 2, deposit = "1000000" },
  { user_id = 3, deposit = "1000000" }, { user_id = 4, deposit = "1000000" },
  { user_id = 5, deposit = "1000000" }, { user_id = 6, deposit = "1000000" },
  { user_id = 7, deposit = "1000000" }, { user_id = 8, deposit = "1000000" },
  { user_id = 9, deposit = "1000000" }, { user_id = 10, deposit = "1000000" },
  { user_id = 1000, deposit = "100000000" },
]

[engines]
durability = "fsync"            # fills leave only after their batch is fsynced

[risk]
shards = 1

[gateway]
listen = "127.0.0.1"
port = 8080

[marketdata]
listen = "127.0.0.1"
port = 8180

[console]
listen = "127.0.0.1"
port = 8280                     # the web console: http://127.0.0.1:8280/

[network]
cmp_backend = "auto"
host = "127.0.0.1"
base_port = 7400

[auth]
algorithm = "HS256"
secret_file = "auth/jwt.secret"

[store]
url = "sqlite:store/history.db"  # history database; a venue uses postgresql://user@host/dbname

[[symbols]]
id = 1
name = "BTC-PERP"
price_decimals = 2
qty_decimals = 6
tick = "0.5"
lot = "0.001"
max_qty = "100"
maker_fee_bps = 2
taker_fee_bps = 5
initial_margin_bps = 1000
maintenance_margin_bps = 500
reference_price = "60000"

[[symbols]]
id = 2
name = "ETH-PERP"
price_decimals = 2
qty_decimals = 5
tick = "0.05"
lot = "0.01"
max_qty = "2000"
maker_fee_bps = 2
taker_fee_bps = 5
initial_margin_bps = 1000
maintenance_margin_bps = 500
reference_price = "3000"

"""


def toml_value(v: Any) -> str:
    """One TOML value of a bool, number, string or list of those."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def with_overrides(text: str, tables: dict[str, dict[str, Any]]) -> str:
    """A configuration text with ``{table: {key: value}}`` set: keys of an existing top-level table are replaced
    in place (TOML forbids a table twice), missing tables are appended. For tools and tests that derive a file
    from :data:`DEFAULT_TOML`."""
    for name, keys in tables.items():
        head = f"[{name}]\n"
        body = "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
        if text.count(head) != 1:
            text += f"\n{head}{body}"
            continue
        start = text.index(head) + len(head)
        end = text.find("\n[", start)
        end = len(text) if end < 0 else end
        kept = "".join(line + "\n" for line in text[start:end].splitlines() if line.split("=")[0].strip() not in keys)
        text = text[:start] + body + kept + text[end:]
    return text


class streams:
    """Stream ids of every stream of the exchange (specs/config.md 5)."""

    RISK, MARK = 0x80000000, 0x40000000
    GATEWAY_TO_RISK, RISK_TO_ME, RISK_TO_GATEWAY = 0x10000000, 0x20000000, 0x30000000

    @staticmethod
    def me(symbol_id: int) -> int:
        return symbol_id

    @staticmethod
    def risk(shard: int) -> int:
        return streams.RISK | shard

    @staticmethod
    def mark(instance: int) -> int:
        return streams.MARK | instance

    @staticmethod
    def gateway_to_risk(gateway: int, shard: int) -> int:
        return streams.GATEWAY_TO_RISK | gateway << 8 | shard

    @staticmethod
    def risk_to_me(shard: int, symbol_id: int) -> int:
        return streams.RISK_TO_ME | shard << 16 | symbol_id

    @staticmethod
    def risk_to_gateway(shard: int, gateway: int) -> int:
        return streams.RISK_TO_GATEWAY | shard << 8 | gateway

    @staticmethod
    def is_link(stream_id: int) -> bool:
        """True for the CMP links (not journaled), False for journaled streams."""
        return stream_id >> 28 in (1, 2, 3)

    @staticmethod
    def describe(stream_id: int) -> str:
        """A stream id in words: 'me 1', 'risk 0', 'risk 0 -> me 1', ..."""
        top, low = stream_id >> 28, stream_id & 0x0FFFFFFF
        if stream_id & streams.RISK:
            return f"risk {stream_id & 0x7FFFFFFF}"
        if top == 4:
            return f"mark {low}"
        if top == 1:
            return f"gateway {low >> 8} -> risk {low & 0xFF}"
        if top == 2:
            return f"risk {low >> 16} -> me {low & 0xFFFF}"
        if top == 3:
            return f"risk {low >> 8} -> gateway {low & 0xFF}"
        return f"me {stream_id}"


@dataclass(frozen=True)
class SymbolSpec:
    id: int
    name: str
    numbers: SymbolConfig  # exact conversions and the C core's checks
    tiers: tuple = ()  # rsx_appliance.risk.params.Tier, raw collateral units
    funding_interval_s: int = 28800
    max_funding_rate_bps: int = 75
    reference_price: int | None = None  # raw price

    def to_dict(self) -> dict[str, Any]:
        n = self.numbers
        return {"id": self.id, "name": self.name, "price_decimals": n.price_decimals,
                "qty_decimals": n.qty_decimals, "tick": n.format_price(n.tick_size),
                "lot": n.format_qty(n.lot_size), "min_qty": n.format_qty(n.min_qty),
                "max_qty": n.format_qty(n.max_qty), "maker_fee_bps": n.maker_fee_bps,
                "taker_fee_bps": n.taker_fee_bps, "initial_margin_bps": n.initial_margin_bps,
                "maintenance_margin_bps": n.maintenance_margin_bps,
                "tiers": [{"max_notional": t.max_notional, "imr_bps": t.imr_bps, "mmr_bps": t.mmr_bps}
                          for t in self.tiers],
                "funding_interval_s": self.funding_interval_s,
                "max_funding_rate_bps": self.max_funding_rate_bps,
                "reference_price": None if self.reference_price is None
                else n.format_price(self.reference_price)}


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the exchange: its name, ports, stream and directory."""

    name: str  # me.BTC-PERP, risk.0, ...
    role: str  # me, risk, gateway, marketdata, mark, recorder
    index: int  # symbol index, shard, or instance
    data_dir: Path
    cmp: tuple[str, int] | None = None  # CMP endpoint (UDP)
    dxs: tuple[str, int] | None = None  # DXS server of its journaled stream (TCP)
    ws: tuple[str, int] | None = None  # public WebSocket
    stream_id: int | None = None  # the journaled stream it owns
    symbol_id: int | None = None  # me only
    host: str = LOCAL_HOST  # the [hosts] entry it runs on (specs/config.md 4.1)

    def to_dict(self) -> dict[str, Any]:
        def addr(a):
            return None if a is None else f"{a[0]}:{a[1]}"
        return {"name": self.name, "role": self.role, "index": self.index, "host": self.host,
                "data_dir": str(self.data_dir),
                "cmp": addr(self.cmp), "dxs": addr(self.dxs), "ws": addr(self.ws),
                "stream_id": self.stream_id,
                "stream": None if self.stream_id is None else streams.describe(self.stream_id)}


@dataclass(frozen=True)
class HostSpec:
    """One host of the exchange: its name and the private address its CMP endpoints and DXS servers bind."""

    name: str
    address: str
    nic: str | None = None  # the host's NIC for the tuning plan (else the file's [nic])


@dataclass(frozen=True)
class Account:
    user_id: int
    deposit: int  # raw collateral units


@dataclass(frozen=True)
class EngineConfig:
    durability: str = "fsync"
    batch_records: int = 1  # N = 1, T = 0: a batch is what was appended during the previous sync
    batch_us: int = 0
    snapshot_records: int = 1_000_000
    snapshot_seconds: int = 60
    snapshots_kept: int = 3
    dedup_window_s: int = 3600
    dedup_capacity: int = 1 << 22  # dedup entries, a power of two (specs/me.md 4)
    order_timeout_ms: int = 5000  # refuse orders risk released longer ago (specs/risk.md 11)
    max_orders: int = 1_000_000
    wait: str = "auto"


@dataclass(frozen=True)
class RiskConfig:
    shards: int = 1
    collateral_decimals: int = 6
    snapshot_seconds: int = 60
    max_accounts: int = 1_000_000
    max_positions: int = 2_000_000
    max_orders: int = 1_000_000
    push_ms: int = 100
    scan_slice: int = 10_000
    wait: str = "auto"


@dataclass(frozen=True)
class ListenConfig:
    """A role with a public WebSocket: gateway, marketdata."""

    instances: int = 1
    listen: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class GatewayConfig:
    """`[gateway]`: the public WebSocket and its limits (specs/ws-api.md 8, 9)."""

    instances: int = 1
    listen: str = "127.0.0.1"
    port: int = 8080
    order_rate_user: int = 50          # orders (N, AM) per second; 0 = no limit
    order_rate_ip: int = 200
    order_rate_instance: int = 20_000
    cancel_rate_user: int = 100        # cancels (C, CA) per second
    cancel_rate_ip: int = 400
    cancel_rate_instance: int = 40_000
    frame_rate_connection: int = 1_000  # frames of any type per connection per second
    max_connections_per_user: int = 5
    max_connections_per_ip: int = 50
    max_connections: int = 10_000
    max_frame_bytes: int = 4096
    max_pending: int = 10_000
    max_queries_in_flight: int = 16
    order_timeout_ms: int = 10_000
    query_timeout_ms: int = 5_000
    idle_timeout_s: int = 15
    heartbeat_s: int = 5
    write_limit_bytes: int = 1 << 20
    breaker_failures: int = 10
    breaker_window_s: int = 60
    breaker_cooldown_s: int = 5
    token_leeway_s: int = 5
    token_max_lifetime_s: int = 86_400


@dataclass(frozen=True)
class MarketdataConfig(ListenConfig):
    """`[marketdata]`: the public feed (specs/marketdata.md 5)."""

    depth: int = 20
    max_queue_bytes: int = 1 << 20
    max_connections: int = 10_000
    max_subscriptions: int = 64
    heartbeat_s: int = 5
    idle_timeout_s: int = 0


MARK_SOURCE_KINDS = ("sim", "file", "binance", "okx")
# keys each source kind accepts besides `kind` (specs/mark.md 7)
_SOURCE_KEYS = {"sim": {"interval_ms", "step_bps", "revert_bps", "noise_bps", "seed"},
                "file": {"path", "speed", "loop"},
                "binance": {"url", "symbols", "field", "reconnect_min_ms", "reconnect_max_ms"},
                "okx": {"url", "symbols", "reconnect_min_ms", "reconnect_max_ms"}}


@dataclass(frozen=True)
class MarkSourceConfig:
    """One `[[mark.sources]]` table; `id` is its position from 1 (specs/mark.md 1)."""

    id: int
    kind: str
    url: str | None = None
    symbols: tuple[tuple[str, str], ...] = ()  # (our symbol name, the venue's instrument)
    field: str = "p"
    path: str | None = None
    speed: float = 1.0
    loop: bool = True
    interval_ms: int = 200
    step_bps: int = 5
    revert_bps: int = 1
    noise_bps: int = 2
    seed: int | None = None
    reconnect_min_ms: int = 1000
    reconnect_max_ms: int = 30_000


@dataclass(frozen=True)
class MarkConfig:
    """`[mark]`: index, mark and funding rules (specs/mark.md 7)."""

    stale_ms: int = 10_000
    min_sources: int = 2
    band_bps: int = 500
    sweep_ms: int = 100
    publish_ms: int = 1000
    premium_sample_ms: int = 1000
    ema_bps: int = 1000
    mark_band_bps: int = 500
    impact_notional: int = 0  # raw collateral units
    funding_interest_e8: int = 10_000
    funding_clamp_e8: int = 50_000
    bbo_lookback: int = 10_000
    sources: tuple[MarkSourceConfig, ...] = ()  # empty: three simulated sources

    @property
    def effective_sources(self) -> tuple[MarkSourceConfig, ...]:
        """The configured sources, or the three simulated ones of the default."""
        return self.sources or tuple(MarkSourceConfig(id=i, kind="sim") for i in (1, 2, 3))


@dataclass(frozen=True)
class ConsoleConfig:
    """`[console]`: the web console (specs/console.md 2)."""

    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = 8280
    refresh_s: int = 2
    latency_window_s: int = 30
    tune_check_s: int = 60
    operator_audience: str = "rsx-operator"


@dataclass(frozen=True)
class NetworkConfig:
    cmp_backend: str = "auto"
    host: str = "127.0.0.1"
    base_port: int = 7400


@dataclass(frozen=True)
class AuthConfig:
    algorithm: str = "HS256"
    secret_file: str = "auth/jwt.secret"
    public_key_file: str | None = None
    audience: str = "rsx"
    issuer: str = "rsx"


@dataclass(frozen=True)
class StoreConfig:
    """The history store (specs/store.md 1). ``url`` is resolved: a SQLite path is absolute."""

    url: str = "sqlite:store/history.db"
    batch_records: int = 50_000
    batch_ms: int = 50
    queue_mb: int = 64
    consumer: str = "store"
    instances: int = 1


@dataclass(frozen=True)
class SupervisorConfig:
    """`rsx up`'s timers (specs/operations.md 3-4), in seconds."""

    restart_min_s: float = 1.0     # restart delay after the first exit ...
    restart_max_s: float = 30.0    # ... doubling per consecutive exit up to this
    stable_s: float = 60.0         # ready this long: the delay starts over
    ready_timeout_s: float = 120.0
    stop_timeout_s: float = 30.0


@dataclass(frozen=True)
class Config:
    path: str  # the file, or "<default>"
    data_dir: Path
    profile: str
    symbols: tuple[SymbolSpec, ...]
    engines: EngineConfig
    risk: RiskConfig
    gateway: GatewayConfig
    marketdata: MarketdataConfig
    mark_instances: int
    recorder_instances: int
    network: NetworkConfig
    auth: AuthConfig
    accounts: tuple[Account, ...]
    topology: Any  # rsx_appliance.tune.topology.Topology
    engine_symbols: tuple[str, ...] = ()  # names of the symbols with an ME on this host
    processes: tuple[ProcessSpec, ...] = field(default=())
    mark: MarkConfig = field(default=MarkConfig())
    console: ConsoleConfig = field(default=ConsoleConfig())
    hosts: tuple[HostSpec, ...] = ()  # one "local" host without [hosts]
    role_hosts: dict = field(default_factory=dict)  # role -> host name per process index
    store: StoreConfig = StoreConfig()
    supervisor: SupervisorConfig = SupervisorConfig()

    # -- lookups -------------------------------------------------------------

    def symbol(self, key: str | int) -> SymbolSpec:
        for s in self.symbols:
            if s.name == key or s.id == key:
                return s
        raise ConfigError(f"{self.path}: no symbol {key!r} (known: {', '.join(s.name for s in self.symbols)})")

    def process(self, name: str) -> ProcessSpec:
        for p in self.processes:
            if p.name == name:
                return p
        raise ConfigError(f"{self.path}: no process {name!r} (known: {', '.join(p.name for p in self.processes)})")

    def role(self, role: str) -> tuple[ProcessSpec, ...]:
        return tuple(p for p in self.processes if p.role == role)

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise ConfigError(f"{self.path}: no host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    def processes_on(self, host: str) -> tuple[ProcessSpec, ...]:
        """The processes of one host, in start order."""
        self.host(host)
        return tuple(p for p in self.processes if p.host == host)

    def topology_for(self, host: str):
        """The tuning topology of one host: only its processes, and its NIC (specs/config.md 4.1)."""
        names = {p.name for p in self.processes_on(host)}
        roles = tuple(replace(r, names=tuple(n for n in r.names if n in names)) for r in self.topology.roles)
        own = self.host(host).nic
        return replace(self.topology, roles=tuple(r for r in roles if r.names), nic=own or self.topology.nic,
                       nic_node=None if own else self.topology.nic_node, profile=self.profile,
                       path=self.topology.path if len(self.hosts) == 1 else f"{self.topology.path} [host {host}]")

    def cmp_consumers(self, name: str) -> list[tuple[str, int]]:
        """CMP endpoints that receive the journaled stream of process `name`."""
        role = self.process(name).role
        if role == "me":
            return [p.cmp for p in self.processes if p.role in ("risk", "marketdata", "gateway")]
        if role == "mark":
            return [p.cmp for p in self.processes if p.role == "risk"]
        return []

    def shard_of(self, user_id: int) -> int:
        from .risk import vshard_of
        return vshard_of(user_id) % self.risk.shards

    def resolve(self, relative: str) -> Path:
        """A path of the file relative to the data directory (absolute paths are kept)."""
        p = Path(relative)
        return p if p.is_absolute() else self.data_dir / p

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "data_dir": str(self.data_dir), "profile": self.profile,
                "symbols": [s.to_dict() for s in self.symbols],
                "engines": asdict(self.engines), "risk": asdict(self.risk),
                "gateway": asdict(self.gateway), "marketdata": asdict(self.marketdata),
                "mark": asdict(self.mark), "console": asdict(self.console),
                "network": asdict(self.network), "auth": asdict(self.auth), "store": asdict(self.store),
                "supervisor": asdict(self.supervisor),
                "hosts": [asdict(h) for h in self.hosts],
                "accounts": [{"user_id": a.user_id, "deposit": a.deposit} for a in self.accounts],
                "processes": [p.to_dict() for p in self.processes]}


# -- parsing -------------------------------------------------------------------

def _decimal_raw(t: _toml.Table, key: str, decimals: int, default: Any = ...) -> int:
    """A decimal string in human units -> raw int, exactly, or ConfigError."""
    text = t.get(key, str, default)
    if text is default and default is not ...:
        return default
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise t.fail(key, f"{text!r} is not a decimal number") from None
    if not d.is_finite():
        raise t.fail(key, f"{text!r} is not a finite decimal number")
    raw = d.scaleb(decimals)
    if raw != raw.to_integral_value():
        raise t.fail(key, f"{text} has more than {decimals} decimals")
    value = int(raw)
    if not 0 < value < 2**63:
        raise t.fail(key, f"{text} must be positive and fit in int64 raw units")
    return value


def _wait(t: _toml.Table) -> str:
    w = t.get("wait", str, "auto")
    if w not in WAIT_MODES:
        raise t.fail("wait", f"must be one of {', '.join(WAIT_MODES)}, not {w!r}")
    return w


def _symbol(t: _toml.Table, collateral_decimals: int) -> SymbolSpec:
    from .risk.params import SymbolRiskParams, Tier

    sid = t.get("id", int, required=True)
    if not 1 <= sid <= 0xFFFF:
        raise t.fail("id", f"must be in 1..65535, not {sid}")
    name = t.get("name", str, required=True)
    if not _NAME.fullmatch(name):
        raise t.fail("name", f"{name!r} is not a symbol name (1-32 of A-Z a-z 0-9 . _ -)")
    pd, qd = t.get("price_decimals", int, required=True), t.get("qty_decimals", int, required=True)
    for key, v in (("price_decimals", pd), ("qty_decimals", qd)):
        if not 0 <= v <= 18:
            raise t.fail(key, f"must be in 0..18, not {v}")
    tick = _decimal_raw(t, "tick", pd)
    lot = _decimal_raw(t, "lot", qd)
    kw = dict(min_qty=_decimal_raw(t, "min_qty", qd, 0), max_qty=_decimal_raw(t, "max_qty", qd, 0))
    for key, default in (("maker_fee_bps", 0), ("taker_fee_bps", 0), ("initial_margin_bps", 1000),
                         ("maintenance_margin_bps", 500)):
        kw[key] = t.get(key, int, default)
    try:
        numbers = SymbolConfig(symbol_id=sid, price_decimals=pd, qty_decimals=qd, tick_size=tick,
                               lot_size=lot, **kw)
    except (ConfigError, Rejected) as exc:
        raise t.fail("", f"symbol {name}: {exc}") from None
    tiers = ()
    raw_tiers = t.get("tiers", list, None)
    if raw_tiers is not None:
        parsed = []
        for k, item in enumerate(raw_tiers):
            tt = _toml.Table(item, f"{t.where}.tiers[{k}]", ConfigError)
            parsed.append(Tier(_decimal_raw(tt, "max_notional", collateral_decimals),
                               tt.get("imr_bps", int, required=True), tt.get("mmr_bps", int, required=True)))
            tt.done()
        try:
            tiers = SymbolRiskParams(tiers=tuple(parsed)).tiers
        except ConfigError as exc:
            raise t.fail("tiers", str(exc)) from None
    interval = t.get("funding_interval_s", int, 28800)
    if not 60 <= interval <= 7 * 86400 or 86400 % interval and interval % 86400:
        raise t.fail("funding_interval_s", f"must divide a day or be whole days (60 s .. 7 days), not {interval}")
    cap = t.get("max_funding_rate_bps", int, 75)
    if not 0 <= cap <= 10_000:
        raise t.fail("max_funding_rate_bps", f"must be in 0..10000, not {cap}")
    ref = _decimal_raw(t, "reference_price", pd, None)
    if ref is not None and ref % tick:
        raise t.fail("reference_price", "is not a multiple of the tick")
    t.done()
    return SymbolSpec(sid, name, numbers, tiers, interval, cap, ref)


def _split(top: _toml.Table, role: str) -> tuple[dict, _toml.Table]:
    """(the topology part of a role table, a Table of the rest)."""
    table = _TABLE_OF[role]
    raw = top.data.get(table, {})
    top.seen.add(table)
    if not isinstance(raw, dict):
        raise top.fail(table, "must be a table")
    keys = _TOPOLOGY_KEYS.get(role, _INSTANCE_KEYS)
    return ({k: v for k, v in raw.items() if k in keys},
            _toml.Table({k: v for k, v in raw.items() if k not in keys}, f"{top.where}.{table}", ConfigError))


def _engines(t: _toml.Table) -> EngineConfig:
    d = EngineConfig()
    durability = t.get("durability", str, d.durability)
    if durability not in ("fsync", "async"):
        raise t.fail("durability", f"must be \"fsync\" or \"async\", not {durability!r}")
    out = EngineConfig(durability=durability,
                       batch_records=t.count("batch_records", d.batch_records, minimum=1),
                       batch_us=t.count("batch_us", d.batch_us, minimum=0),
                       snapshot_records=t.count("snapshot_records", d.snapshot_records, minimum=1),
                       snapshot_seconds=t.count("snapshot_seconds", d.snapshot_seconds, minimum=1),
                       snapshots_kept=t.count("snapshots_kept", d.snapshots_kept, minimum=1),
                       dedup_window_s=t.count("dedup_window_s", d.dedup_window_s, minimum=1),
                       dedup_capacity=t.count("dedup_capacity", d.dedup_capacity, minimum=64),
                       order_timeout_ms=t.count("order_timeout_ms", d.order_timeout_ms, minimum=0),
                       max_orders=t.count("max_orders", d.max_orders, minimum=1),
                       wait=_wait(t))
    if out.dedup_capacity & (out.dedup_capacity - 1):
        raise t.fail("dedup_capacity", f"must be a power of two, not {out.dedup_capacity}")
    t.done()
    return out


def _risk(t: _toml.Table, shards: int) -> RiskConfig:
    d = RiskConfig()
    cd = t.count("collateral_decimals", d.collateral_decimals)
    if cd > 18:
        raise t.fail("collateral_decimals", f"must be in 0..18, not {cd}")
    accounts = t.count("max_accounts", d.max_accounts, minimum=1)
    out = RiskConfig(shards=shards, collateral_decimals=cd,
                     snapshot_seconds=t.count("snapshot_seconds", d.snapshot_seconds, minimum=1),
                     max_accounts=accounts,
                     max_positions=t.count("max_positions", 2 * accounts, minimum=1),
                     max_orders=t.count("max_orders", d.max_orders, minimum=1),
                     push_ms=t.count("push_ms", d.push_ms),
                     scan_slice=t.count("scan_slice", d.scan_slice, minimum=1), wait=_wait(t))
    for key in ("max_accounts", "max_positions", "max_orders"):
        if getattr(out, key) > 1 << 30:
            raise t.fail(key, f"must be at most 2^30, not {getattr(out, key)}")
    t.done()
    return out


def _listen(t: _toml.Table, instances: int, default_port: int) -> ListenConfig:
    listen = t.get("listen", str, "127.0.0.1")
    port = t.count("port", default_port, minimum=1)
    if port + max(instances - 1, 0) > 65535:
        raise t.fail("port", f"{port} + instances does not fit in a port number")
    t.done()
    return ListenConfig(instances, listen, port)


def _gateway(t: _toml.Table, instances: int) -> GatewayConfig:
    d = GatewayConfig()
    values: dict[str, Any] = {"instances": instances, "listen": t.get("listen", str, d.listen)}
    minimum = {"port": 1, "max_connections_per_user": 1, "max_connections_per_ip": 1, "max_connections": 1,
               "max_frame_bytes": 256, "max_pending": 1, "max_queries_in_flight": 1,
               "order_timeout_ms": 10, "query_timeout_ms": 10, "idle_timeout_s": 1, "heartbeat_s": 1,
               "write_limit_bytes": 4096, "breaker_failures": 1, "breaker_window_s": 1,
               "breaker_cooldown_s": 1, "token_max_lifetime_s": 60}
    for name in GatewayConfig.__dataclass_fields__:
        if name not in ("instances", "listen"):
            values[name] = t.count(name, getattr(d, name), minimum=minimum.get(name, 0))
    out = GatewayConfig(**values)
    if out.port + max(instances - 1, 0) > 65535:
        raise t.fail("port", f"{out.port} + instances does not fit in a port number")
    if out.max_frame_bytes > 1 << 20:
        raise t.fail("max_frame_bytes", f"must be <= 1048576, not {out.max_frame_bytes}")
    if out.heartbeat_s >= out.idle_timeout_s:
        raise t.fail("heartbeat_s", f"must be below idle_timeout_s ({out.idle_timeout_s}), not {out.heartbeat_s}")
    t.done()
    return out


def _marketdata(t: _toml.Table, instances: int) -> MarketdataConfig:
    d = MarketdataConfig()
    kw = {}
    for key, lo, hi in (("depth", 1, 1000), ("max_queue_bytes", 4096, 1 << 30),
                        ("max_connections", 1, 1_000_000), ("max_subscriptions", 1, 10_000),
                        ("heartbeat_s", 1, 3600), ("idle_timeout_s", 0, 86400)):
        v = t.count(key, getattr(d, key), minimum=lo)
        if v > hi:
            raise t.fail(key, f"must be at most {hi}, not {v}")
        kw[key] = v
    lc = _listen(t, instances, 8180)  # reads listen/port and checks the table is done
    return MarketdataConfig(instances=lc.instances, listen=lc.listen, port=lc.port, **kw)


def _mark_source(t: _toml.Table, k: int, symbol_names: set[str]) -> MarkSourceConfig:
    kind = t.get("kind", str, required=True)
    if kind not in MARK_SOURCE_KINDS:
        raise t.fail("kind", f"must be one of {', '.join(MARK_SOURCE_KINDS)}, not {kind!r}")
    allowed = _SOURCE_KEYS[kind] | {"kind"}
    extra = sorted(set(t.data) - allowed)
    if extra:
        raise t.fail(extra[0], f"is not a key of a {kind!r} source (known: {', '.join(sorted(allowed))})")
    d = MarkSourceConfig(id=k, kind=kind)
    kw: dict[str, Any] = {}
    if kind in ("binance", "okx"):
        url = t.get("url", str, required=True)
        if not re.fullmatch(r"wss?://\S+", url):
            raise t.fail("url", f"{url!r} is not a ws:// or wss:// URL")
        kw["url"] = url
        table = t.get("symbols", dict, required=True)
        pairs = []
        for name, inst in table.items():
            if name not in symbol_names:
                raise t.fail(f"symbols.{name}", "is not a symbol of [[symbols]]")
            if not isinstance(inst, str) or not inst:
                raise t.fail(f"symbols.{name}", "must be the venue's instrument name (a string)")
            pairs.append((name, inst))
        if not pairs:
            raise t.fail("symbols", "must map at least one symbol")
        kw["symbols"] = tuple(pairs)
        lo = t.count("reconnect_min_ms", d.reconnect_min_ms, minimum=1)
        hi = t.count("reconnect_max_ms", d.reconnect_max_ms, minimum=lo)
        kw.update(reconnect_min_ms=lo, reconnect_max_ms=hi)
        if kind == "binance":
            f = t.get("field", str, "p")
            if f not in ("p", "i"):
                raise t.fail("field", f"must be \"p\" (mark) or \"i\" (index), not {f!r}")
            kw["field"] = f
    elif kind == "file":
        kw["path"] = t.get("path", str, required=True)
        speed = t.get("speed", (int, float), 1.0)
        if not 0 < speed <= 1e6:
            raise t.fail("speed", f"must be > 0, not {speed}")
        kw.update(speed=float(speed), loop=t.get("loop", bool, True))
    else:
        kw["interval_ms"] = t.count("interval_ms", d.interval_ms, minimum=1)
        for key in ("step_bps", "revert_bps", "noise_bps"):
            v = t.count(key, getattr(d, key))
            if v > 1000:
                raise t.fail(key, f"must be at most 1000, not {v}")
            kw[key] = v
        kw["seed"] = t.get("seed", int, None)
    return MarkSourceConfig(id=k, kind=kind, **kw)


def _mark(t: _toml.Table, symbol_names: set[str], collateral_decimals: int) -> MarkConfig:
    d = MarkConfig()
    kw: dict[str, Any] = {}
    for key in ("stale_ms", "sweep_ms", "publish_ms", "premium_sample_ms", "min_sources"):
        kw[key] = t.count(key, getattr(d, key), minimum=1)
    for key, hi in (("band_bps", 10_000), ("ema_bps", 10_000), ("mark_band_bps", 10_000),
                    ("funding_interest_e8", 10**8), ("funding_clamp_e8", 10**8)):
        v = t.count(key, getattr(d, key))
        if v > hi:
            raise t.fail(key, f"must be at most {hi}, not {v}")
        kw[key] = v
    kw["bbo_lookback"] = t.count("bbo_lookback", d.bbo_lookback)
    kw["impact_notional"] = _decimal_raw(t, "impact_notional", collateral_decimals, 0)
    raw_sources = t.get("sources", list, [])
    if len(raw_sources) > 8:
        raise t.fail("sources", f"at most 8 sources (source ids 1..8), not {len(raw_sources)}")
    kw["sources"] = tuple(_mark_source(_toml.Table(item, f"{t.where}.sources[{k}]", ConfigError), k + 1,
                                       symbol_names) for k, item in enumerate(raw_sources))
    n = len(kw["sources"]) or 3
    if kw["min_sources"] > n:
        raise t.fail("min_sources", f"{kw['min_sources']} is more than the {n} sources configured")
    t.done()
    return MarkConfig(**kw)


def _console(t: _toml.Table | None, audience: str) -> ConsoleConfig:
    if t is None:
        return ConsoleConfig()
    d = ConsoleConfig()
    kw: dict[str, Any] = {"enabled": t.get("enabled", bool, d.enabled), "listen": t.get("listen", str, d.listen)}
    for key, lo, hi in (("port", 1, 65535), ("refresh_s", 1, 60), ("tune_check_s", 10, 86400)):
        v = t.count(key, getattr(d, key), minimum=lo)
        if v > hi:
            raise t.fail(key, f"must be at most {hi}, not {v}")
        kw[key] = v
    window = t.count("latency_window_s", d.latency_window_s, minimum=kw["refresh_s"])
    if window > 3600:
        raise t.fail("latency_window_s", f"must be at most 3600, not {window}")
    kw["latency_window_s"] = window
    aud = t.get("operator_audience", str, d.operator_audience)
    if not aud or aud == audience:
        raise t.fail("operator_audience", f"must be a non-empty audience other than auth.audience ({audience!r}): "
                     "a trading token must never act as an operator's")
    kw["operator_audience"] = aud
    t.done()
    return ConsoleConfig(**kw)


def _ipv4(t: _toml.Table, key: str, default: str) -> str:
    value = t.get(key, str, default)
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value) or any(int(x) > 255 for x in value.split(".")):
        raise t.fail(key, f"{value!r} is not an IPv4 address")
    return value


def _network(t: _toml.Table | None, where: str, multi_host: bool) -> NetworkConfig:
    if t is None:
        return NetworkConfig()
    backend = t.get("cmp_backend", str, "auto")
    if backend not in ("auto", "udp", "uring", "xdp"):
        raise t.fail("cmp_backend", f"must be auto, udp, uring or xdp, not {backend!r}")
    if multi_host and "host" in t.data:
        raise t.fail("host", "cannot be used with [hosts]: each host's address is hosts.<name>.address")
    host = _ipv4(t, "host", "127.0.0.1")
    base = t.count("base_port", 7400, minimum=1024)
    if base + 800 > 65535:
        raise t.fail("base_port", f"{base} leaves no room for the 800 derived ports below 65536")
    t.done()
    return NetworkConfig(backend, host, base)


def _hosts(top: _toml.Table, network: NetworkConfig) -> tuple[HostSpec, ...]:
    """``[hosts]`` (specs/config.md 4.1), or the one host "local" at ``network.host``."""
    t = top.table("hosts")
    if t is None:
        return (HostSpec(LOCAL_HOST, network.host),)
    out: list[HostSpec] = []
    for name in t.data:
        if not _HOST_NAME.fullmatch(name):
            raise t.fail(name, f"{name!r} is not a host name (1-32 of A-Z a-z 0-9 _ -)")
        h = t.table(name)
        address = _ipv4(h, "address", ...)
        nic = h.get("nic", str, None)
        h.done()
        dup = next((o for o in out if o.address == address), None)
        if dup is not None:
            raise h.fail("address", f"{address} is already the address of host {dup.name!r}")
        out.append(HostSpec(name, address, nic))
    if not out:
        raise top.fail("hosts", "must define at least one host (or leave [hosts] out for one host)")
    return tuple(out)


def _role_hosts(raw: dict[str, tuple[Any, str]], counts: dict[str, int],
                hosts: tuple[HostSpec, ...]) -> dict[str, tuple[str, ...]]:
    """Each role's ``host`` key: one host name for all its processes, or a list with one per process."""
    names = [h.name for h in hosts]
    out = {}
    for role, (value, where) in raw.items():
        n = counts.get(role, 0)
        if isinstance(value, str):
            value = [value] * n
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a host name or a list of host names, not {value!r}")
        elif len(value) != n:
            raise ConfigError(f"{where}: lists {len(value)} hosts for {n} {role} processes (one per process, "
                              "in order)")
        for v in value:
            if v not in names:
                raise ConfigError(f"{where}: {v!r} is not a host of [hosts] (hosts: {', '.join(names)})")
        out[role] = tuple(value)
    return out


def _auth(t: _toml.Table | None) -> AuthConfig:
    if t is None:
        return AuthConfig()
    alg = t.get("algorithm", str, "HS256")
    if alg not in ("HS256", "EdDSA", "RS256"):
        raise t.fail("algorithm", f"must be HS256, EdDSA or RS256, not {alg!r}")
    out = AuthConfig(alg, t.get("secret_file", str, "auth/jwt.secret"),
                     t.get("public_key_file", str, None), t.get("audience", str, "rsx"),
                     t.get("issuer", str, "rsx"))
    if alg != "HS256" and out.public_key_file is None:
        raise t.fail("public_key_file", f"is required with algorithm {alg}")
    t.done()
    return out


_STORE_SCHEMES = ("sqlite:", "postgresql://", "postgres://")


def _store(t: _toml.Table | None, data_dir: Path) -> StoreConfig:
    if t is None:
        t = _toml.Table({}, "store", ConfigError)
    d = StoreConfig()
    url = t.get("url", str, d.url)
    if not url.startswith(_STORE_SCHEMES):
        raise t.fail("url", f"{url!r}: expected sqlite:PATH, sqlite:///ABS/PATH or postgresql://...")
    if url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
        path = path[2:] if path.startswith("///") else path  # sqlite:///abs -> /abs
        if not path or path.startswith("//"):
            raise t.fail("url", f"{url!r}: no database file")
        url = "sqlite:" + str(path if Path(path).is_absolute() else data_dir / path)
    consumer = t.get("consumer", str, d.consumer)
    if not 1 <= len(consumer.encode()) <= 16 or not consumer.isascii() or not consumer.isprintable():
        raise t.fail("consumer", f"{consumer!r} must be 1-16 printable ASCII characters")
    instances = t.count("instances", d.instances)
    if instances > 1:
        raise t.fail("instances", f"must be 0 or 1 (one writer per database), not {instances}")
    out = StoreConfig(url=url, batch_records=t.count("batch_records", d.batch_records, minimum=1),
                      batch_ms=t.count("batch_ms", d.batch_ms, minimum=1),
                      queue_mb=t.count("queue_mb", d.queue_mb, minimum=1), consumer=consumer,
                      instances=instances)
    t.done()
    return out


def _supervisor(t: _toml.Table | None) -> SupervisorConfig:
    if t is None:
        return SupervisorConfig()
    d = SupervisorConfig()
    values = {}
    for key in ("restart_min_s", "restart_max_s", "stable_s", "ready_timeout_s", "stop_timeout_s"):
        v = t.get(key, (int, float), getattr(d, key))
        if not 0 < v <= 86_400:
            raise t.fail(key, f"must be > 0 and at most 86400 (seconds), not {v!r}")
        values[key] = float(v)
    if values["restart_max_s"] < values["restart_min_s"]:
        raise t.fail("restart_max_s", f"must be >= restart_min_s ({values['restart_min_s']:g}), "
                                      f"not {values['restart_max_s']:g}")
    t.done()
    return SupervisorConfig(**values)


def _accounts(top: _toml.Table, collateral_decimals: int) -> tuple[Account, ...]:
    out, seen = [], set()
    for k, item in enumerate(top.get("accounts", list, [])):
        t = _toml.Table(item, f"{top.where}.accounts[{k}]", ConfigError)
        uid = t.get("user_id", int, required=True)
        if not 1 <= uid < 2**32:
            raise t.fail("user_id", f"must be in 1..4294967295, not {uid}")
        if uid in seen:
            raise t.fail("user_id", f"user {uid} listed twice")
        seen.add(uid)
        out.append(Account(uid, _decimal_raw(t, "deposit", collateral_decimals)))
        t.done()
    return tuple(out)


def _processes(cfg: Config) -> tuple[ProcessSpec, ...]:
    base, out = cfg.network.base_port, []
    address = {h.name: h.address for h in cfg.hosts}
    counts = {"me": len(cfg.engine_symbols), "risk": cfg.risk.shards,
              "gateway": cfg.gateway.instances, "marketdata": cfg.marketdata.instances,
              "mark": cfg.mark_instances, "recorder": cfg.recorder_instances,
              "store": cfg.store.instances, "console": int(cfg.console.enabled)}
    for role in PROCESS_ORDER:
        n = counts[role]
        if n > _MAX_PER_ROLE:
            raise ConfigError(f"{cfg.path}: at most {_MAX_PER_ROLE} {role} processes, not {n}")
        cmp_off, dxs_off = _PORT_OFFSET[role]
        for i in range(n):
            sym = cfg.symbol(cfg.engine_symbols[i]) if role == "me" else None
            suffix = sym.name if sym else str(i)
            stream = {"me": sym.id if sym else None, "risk": streams.risk(i),
                      "mark": streams.mark(i)}.get(role)
            ws = None
            if role in ("gateway", "marketdata", "console"):
                lc = getattr(cfg, role)
                ws = (lc.listen, lc.port + i)
            on = cfg.role_hosts[role][i] if role in cfg.role_hosts else cfg.hosts[0].name
            host = address[on]
            out.append(ProcessSpec(
                name=f"{role}.{suffix}", role=role, index=i, data_dir=cfg.data_dir / role / suffix, host=on,
                cmp=None if cmp_off is None else (host, base + cmp_off + i),
                dxs=None if dxs_off is None else (host, base + dxs_off + i),
                ws=ws, stream_id=stream, symbol_id=sym.id if sym else None))
    seen: dict[tuple, str] = {}
    for p in out:
        for kind, addr in (("udp", p.cmp), ("tcp", p.dxs), ("tcp", p.ws)):
            if addr is None:
                continue
            key = (kind, addr[1])
            if key in seen:
                raise ConfigError(f"{cfg.path}: {p.name} and {seen[key]} both use {kind} port {addr[1]}")
            seen[key] = p.name
    return tuple(out)


def parse_config(data: dict, where: str, data_dir: str | os.PathLike | None = None,
                 file_dir: Path | None = None) -> Config:
    """Parse a configuration mapping (a loaded TOML document)."""
    from .tune.topology import parse_topology

    top = _toml.Table(data, where, ConfigError)
    version = top.get("version", int, required=True)
    if version != 1:
        raise top.fail("version", f"must be 1, not {version}")
    profile = top.get("profile", str, "balanced")
    file_data = top.get("data_dir", str, None)
    if data_dir is not None:
        ddir = Path(data_dir)
    elif file_data is not None:
        ddir = (file_dir or Path.cwd()) / file_data
    else:
        ddir = Path(os.environ.get("RSX_DATA") or "rsx-data")
    ddir = ddir.absolute()

    risk_part, risk_t = _split(top, "risk")
    cd = risk_t.data.get("collateral_decimals", 6)
    if isinstance(cd, bool) or not isinstance(cd, int) or not 0 <= cd <= 18:
        raise risk_t.fail("collateral_decimals", f"must be an integer in 0..18, not {cd!r}")
    symbols = tuple(_symbol(_toml.Table(s, f"{where}.symbols[{k}]", ConfigError), cd)
                    for k, s in enumerate(top.get("symbols", list, required=True)))
    if not symbols:
        raise top.fail("symbols", "must define at least one symbol")
    for attr in ("id", "name"):
        values = [getattr(s, attr) for s in symbols]
        dup = next((v for v in values if values.count(v) > 1), None)
        if dup is not None:
            raise top.fail("symbols", f"duplicate symbol {attr} {dup!r}")

    # the topology keys, read by the topology parser itself
    topo: dict[str, Any] = {"version": 1}
    if "profile" in data:
        topo["profile"] = profile
    parts = {}
    raw_hosts: dict[str, tuple[Any, str]] = {}
    for role in ROLE_ORDER:
        parts[role] = _split(top, role)
        rest = parts[role][1]
        if "host" in rest.data:
            raw_hosts[role] = (rest.data.pop("host"), f"{rest.where}.host")
        if parts[role][0] or role == "me":
            topo[_TABLE_OF[role]] = dict(parts[role][0])
    topo["engines"].setdefault("symbols", [s.name for s in symbols])
    for key in ("nic", "knobs"):
        top.seen.add(key)
        if key in data:
            topo[key] = data[key]
    try:
        topology = parse_topology(topo, where)
    except TuneInputError as exc:
        raise ConfigError(str(exc)) from None
    names = {s.name for s in symbols}
    engine_symbols = tuple(topo["engines"]["symbols"])
    unknown = [s for s in engine_symbols if s not in names]
    if unknown:
        raise ConfigError(f"{where}.engines.symbols: {unknown[0]!r} is not defined in [[symbols]]")
    count = {r.role: len(r.names) for r in topology.roles}

    engines = _engines(parts["me"][1])
    risk = _risk(parts["risk"][1], count.get("risk", 0))
    if risk.shards < 1:
        raise ConfigError(f"{where}.risk.shards: must be >= 1")
    gateway = _gateway(parts["gateway"][1], count.get("gateway", 0))
    marketdata = _marketdata(parts["marketdata"][1], count.get("marketdata", 0))
    mark = _mark(parts["mark"][1], {s.name for s in symbols}, cd)
    parts["recorder"][1].done()
    network = _network(top.table("network"), where, "hosts" in data)
    hosts = _hosts(top, network)
    role_hosts = _role_hosts(raw_hosts, {"me": len(engine_symbols), **count}, hosts)
    auth = _auth(top.table("auth"))
    console = _console(top.table("console"), auth.audience)
    store = _store(top.table("store"), ddir)
    supervisor = _supervisor(top.table("supervisor"))
    accounts = _accounts(top, cd)
    top.done()
    cfg = Config(path=where, data_dir=ddir, profile=profile, symbols=symbols, engines=engines, risk=risk,
                 gateway=gateway, marketdata=marketdata, mark_instances=count.get("mark", 0),
                 recorder_instances=count.get("recorder", 0), network=network, auth=auth,
                 accounts=accounts, topology=topology, engine_symbols=engine_symbols, mark=mark,
                 hosts=hosts, role_hosts=role_hosts, store=store, console=console, supervisor=supervisor)
    return replace(cfg, processes=_processes(cfg))


def load_config(path: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> Config:
    """The configuration in `path`, or the embedded default when path is None."""
    if path is None:
        return default_config(data_dir)
    p = Path(path)
    return parse_config(_toml.load(p, ConfigError), str(p), data_dir, p.absolute().parent)


def default_config(data_dir: str | os.PathLike | None = None) -> Config:
    return parse_config(tomllib.loads(DEFAULT_TOML), "<default>", data_dir)
