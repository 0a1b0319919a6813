"""`rsx history fills|orders|funding|liquidations|pnl --user U`: what happened, from the store
(specs/store.md 8)."""

from __future__ import annotations

import argparse

from ._common import add_config_args

KINDS = ("fills", "orders", "funding", "liquidations", "pnl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="a user's fills, orders, funding, liquidations or PnL from the store",
                       description="Read the history store's database (specs/store.md): rows newest first, "
                                   "prices and quantities in the symbol's units. Exit 2 on a bad argument, "
                                   "3 if the database cannot be opened.")
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.add_argument("--user", type=int, required=True, help="user id")
    p.add_argument("--symbol", help="symbol name or id (default: every symbol)")
    p.add_argument("--since", help="UTC time (2026-05-01, 2026-05-01T12:00:00+02:00), epoch ns, "
                                   "or an age (90s, 15m, 4h, 7d)")
    p.add_argument("--limit", type=int, default=100, help="rows, 1..100000 (default 100)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    add_config_args(p)
    p.add_argument("--url", help="database URL (default: [store] url of the configuration)")
    p.set_defaults(func=run)


def parse_since(text: str | None, now_ns: int | None = None) -> int | None:
    """--since as UTC ns; ValueError with the accepted forms."""
    import datetime as dt
    import re
    import time

    if text is None:
        return None
    now_ns = now_ns if now_ns is not None else time.time_ns()
    t = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h|d)", t)
    if m:
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return now_ns - int(float(m.group(1)) * mult * 1_000_000_000)
    if re.fullmatch(r"\d{12,}", t):
        return int(t)
    try:
        d = dt.datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a UTC time (2026-05-01T12:00:00), epoch ns, "
                         f"or an age (90s, 15m, 4h, 7d)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000


def _time(ns: int | None) -> str:
    import datetime as dt

    if ns is None:
        return ""
    d = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}Z"


def _money(raw: int | None, cd: int) -> str:
    from ..numbers import _format

    return "" if raw is None else _format(int(raw), cd)


def rows_of(kind: str, page, cfg) -> list[dict]:
    """Each row as a dict: raw integers plus decimal strings (`*_dec`) and names."""
    from ..codes import LiqKind, Reason, Side, Status

    cd = cfg.risk.collateral_decimals
    names = {s.id: s for s in cfg.symbols}

    def sym(sid):
        return names[sid].name if sid in names else str(sid)

    def px(sid, raw):
        return "" if raw is None else (names[sid].numbers.format_price(raw) if sid in names else str(raw))

    def qty(sid, raw):
        return "" if raw is None else (names[sid].numbers.format_qty(raw) if sid in names else str(raw))

    def enum(e, v):
        try:
            return e(v).name
        except (ValueError, TypeError):
            return "" if v is None else str(v)

    out = []
    for r in (page if kind == "pnl" else page.rows):
        if kind == "fills":
            out.append({"time": _time(r.ts_ns), "ts_ns": r.ts_ns, "symbol": sym(r.symbol_id),
                        "symbol_id": r.symbol_id, "seq": r.seq, "order_id": str(r.order_id),
                        "side": enum(Side, r.side), "price": r.price, "price_dec": px(r.symbol_id, r.price),
                        "qty": r.qty, "qty_dec": qty(r.symbol_id, r.qty), "fee": r.fee,
                        "fee_dec": _money(r.fee, cd), "role": "maker" if r.is_maker else "taker",
                        "liquidation": r.liquidation, "counterparty": r.counterparty_user_id})
        elif kind == "orders":
            out.append({"time": _time(r.created_ns), "created_ns": r.created_ns, "symbol": sym(r.symbol_id),
                        "symbol_id": r.symbol_id, "order_id": str(r.order_id), "client_id": r.client_id,
                        "side": enum(Side, r.side), "price": r.price, "price_dec": px(r.symbol_id, r.price),
                        "qty": r.qty, "qty_dec": qty(r.symbol_id, r.qty), "filled": r.filled_qty,
                        "filled_dec": qty(r.symbol_id, r.filled_qty), "remaining": r.remaining_qty,
                        "status": enum(Status, r.status), "reason": enum(Reason, r.reason),
                        "updated": _time(r.updated_ns)})
        elif kind == "funding":
            out.append({"time": _time(r.ts_ns), "ts_ns": r.ts_ns, "symbol": sym(r.symbol_id),
                        "symbol_id": r.symbol_id, "interval_id": r.interval_id, "amount": r.amount,
                        "amount_dec": _money(r.amount, cd), "rate_e8": r.rate_e8, "position": r.position,
                        "position_dec": qty(r.symbol_id, r.position), "mark_px": r.mark_px,
                        "mark_dec": px(r.symbol_id, r.mark_px)})
        elif kind == "liquidations":
            out.append({"time": _time(r.ts_ns), "ts_ns": r.ts_ns, "symbol": sym(r.symbol_id),
                        "symbol_id": r.symbol_id, "user_id": r.user_id, "kind": enum(LiqKind, r.kind),
                        "round": r.round, "side": enum(Side, r.side), "qty": r.qty,
                        "qty_dec": qty(r.symbol_id, r.qty), "price": r.price,
                        "price_dec": px(r.symbol_id, r.price), "shortfall": r.shortfall,
                        "shortfall_dec": _money(r.shortfall, cd), "counterparty": r.counterparty_user_id})
        else:
            out.append({"symbol": sym(r.symbol_id), "symbol_id": r.symbol_id, "realised_pnl": r.realised_pnl,
                        "realised_pnl_dec": _money(r.realised_pnl, cd), "fees": r.fees,
                        "fees_dec": _money(r.fees, cd), "funding": r.funding,
                        "funding_dec": _money(r.funding, cd), "net": r.net, "net_dec": _money(r.net, cd),
                        "position": r.position, "position_dec": qty(r.symbol_id, r.position),
                        "fills": r.fills})
    return out


_TABLE = {
    "fills": ("time", "symbol", "side", "price_dec", "qty_dec", "fee_dec", "role", "order_id"),
    "orders": ("time", "symbol", "side", "price_dec", "qty_dec", "filled_dec", "status", "reason", "order_id"),
    "funding": ("time", "symbol", "amount_dec", "rate_e8", "position_dec", "mark_dec"),
    "liquidations": ("time", "symbol", "user_id", "kind", "round", "side", "qty_dec", "price_dec",
                     "shortfall_dec", "counterparty"),
    "pnl": ("symbol", "realised_pnl_dec", "fees_dec", "funding_dec", "net_dec", "position_dec", "fills"),
}


def run(args: argparse.Namespace) -> int:
    import csv
    import sys

    from ..config import load_config
    from ..store import open_store
    from ..store.db import parse_url
    from ._common import CliError, print_json

    cfg = load_config(args.config, args.data)
    symbol = None
    if args.symbol is not None:
        symbol = cfg.symbol(int(args.symbol) if args.symbol.isdigit() else args.symbol).id
    try:
        since = parse_since(args.since)
        url = parse_url(args.url or cfg.store.url, cfg.data_dir)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    divisors = {}
    for s in cfg.symbols:
        e = s.numbers.price_decimals + s.numbers.qty_decimals - cfg.risk.collateral_decimals
        divisors[s.id] = 10 ** e if 0 <= e <= 18 else 0
    with open_store(url.url, collateral_decimals=cfg.risk.collateral_decimals, divisors=divisors) as st:
        if args.kind == "pnl":
            result = st.pnl(args.user, symbol)
        else:
            result = getattr(st, args.kind)(args.user, symbol, limit=args.limit, since=since)
    rows = rows_of(args.kind, result, cfg)
    if args.json:
        print_json({"kind": args.kind, "user": args.user, "rows": rows})
    elif args.csv:
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        cols = _TABLE[args.kind]
        cells = [[str(r[c]) for c in cols] for r in rows]
        heads = [c.removesuffix("_dec") for c in cols]
        widths = [max([len(h)] + [len(x[i]) for x in cells]) for i, h in enumerate(heads)]
        print("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
        for x in cells:
            print("  ".join(v.ljust(w) for v, w in zip(x, widths)).rstrip())
        if not rows:
            print(f"(no {args.kind} for user {args.user})")
    return 0
