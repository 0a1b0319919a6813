"""Auto-deleveraging, the last step of a liquidation (specs/risk.md 7, step 3).

Entry, rounds, the fund gate and settlement are decided and applied in C
(``rsx_risk_liq_decide``, driven by :meth:`RiskShard.liquidate`); when the book
and the fund cannot absorb an account, the engine stops at it and
:meth:`Liquidator.adl` decides here: which eligible counterparties close the
remaining positions (ranked by the C core), and who carries the shortfall the
fund cannot pay, capped so that no counterparty's equity goes below zero. The
decision is journaled as its own batch and applied by the same C code recovery
runs (``rsx_risk_liq_apply``), so a counterparty charged here is ranked again,
on its new state, before it can be charged again.

Record usage (LIQUIDATION.kind): ADL, one per (symbol, counterparty): the
liquidated user's closing side, qty, price (the mark), counterparty_user_id,
shortfall = the counterparty's charge; INSURANCE: shortfall = what the fund
paid; DONE: shortfall = the bad debt left on the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..records import RecordType, codec
from ._core import liq_id
from .enums import LiqKind, Side

if TYPE_CHECKING:
    from .shard import RiskShard

__all__ = ["Liquidator"]

_LIQ = codec(RecordType.LIQUIDATION)


class _Piece:
    __slots__ = ("symbol", "cp", "qty", "mark", "side", "value", "charge")

    def __init__(self, symbol: int, cp: int, qty: int, mark: int, side: int, value: int) -> None:
        self.symbol, self.cp, self.qty, self.mark, self.side, self.value = symbol, cp, qty, mark, side, value
        self.charge = 0


class Liquidator:
    """ADL decisions for the shard (its public interface only)."""

    def __init__(self, shard: "RiskShard") -> None:
        self.s = shard

    def _positions(self, acct: int) -> list[tuple[int, int]]:
        core = self.s.core
        out = []
        p = int(core.accounts["pos_head"][acct])
        while p >= 0:
            row = core.positions[p]
            if int(row["net"]) != 0:
                out.append((int(row["symbol_id"]), int(row["net"])))
            p = int(row["next"])
        return sorted(out)

    def adl(self, acct: int) -> bool:
        """Close acct's remaining positions against eligible counterparties; False when there is none at
        all (the caller then sends the user to the book at the largest slippage)."""
        s = self.s
        core = s.core
        pieces: list[_Piece] = []
        full = True
        for sym, net in self._positions(acct):
            mark = int(core.symbols["mark"][sym])
            if mark <= 0:
                full = False
                continue
            cpos, score = core.adl_candidates(sym, -1 if net > 0 else 1, s.symbol_positions(sym))
            if len(cpos) == 0:
                full = False
                continue
            cacct = core.positions["acct"][cpos]
            uids = core.accounts["user_id"][cacct]
            order = np.lexsort((uids, -score))          # score descending, then user id
            cpos, cacct = cpos[order], cacct[order]
            avail = np.abs(core.positions["net"][cpos])
            need = abs(net)
            before = np.concatenate(([0], np.cumsum(avail)[:-1]))
            take = np.clip(need - before, 0, avail)
            side = int(Side.SELL if net > 0 else Side.BUY)
            for a, q in zip(cacct[take > 0].tolist(), take[take > 0].tolist()):
                pieces.append(_Piece(sym, a, q, mark, side, core.value(sym, mark, q)))
            if int(take.sum()) < need:
                full = False
        if not pieces:
            return False
        pay, bad = 0, 0
        if full:
            after = int(core.accounts["collateral"][acct])
            for sym in sorted({pc.symbol for pc in pieces}):
                mark = next(pc.mark for pc in pieces if pc.symbol == sym)
                after += core.preview_close(acct, sym, [pc.qty for pc in pieces if pc.symbol == sym], mark)
            short = max(0, -after)
            pay = min(short, max(core.fund_available(acct), 0))
            bad = self._charge(pieces, short - pay)
        self._commit(acct, pieces, pay, bad, full)
        return True

    def _equity_after(self, pieces: list[_Piece]) -> dict[int, int]:
        """Each counterparty's equity after its closes at the mark (exact: value rounding included)."""
        core = self.s.core
        eq: dict[int, int] = {}
        for pc in pieces:
            if pc.cp not in eq:
                eq[pc.cp] = core.margin(pc.cp)["equity"]
            p = core.find_position(pc.cp, pc.symbol)
            net, cost, value = (int(core.positions[f][p]) for f in ("net", "cost", "value"))
            realised = core.preview_close(pc.cp, pc.symbol, [pc.qty], pc.mark)
            close_cost = pc.value - realised if net > 0 else realised + pc.value
            cost_after = cost - close_cost if net > 0 else cost + close_cost
            net_after = net - pc.qty if net > 0 else net + pc.qty
            div = int(core.symbols["divisor"][pc.symbol])
            value_after = net_after * pc.mark // div
            eq[pc.cp] += realised + (value_after - cost_after) - (value - cost)
        return eq

    def _charge(self, pieces: list[_Piece], rest: int) -> int:
        """Spread `rest` over the pieces pro rata of their closed value, each counterparty capped at its
        equity after the closes; returns what nobody could carry (bad debt)."""
        if rest <= 0:
            return 0
        room = {cp: max(0, e) for cp, e in self._equity_after(pieces).items()}
        while rest > 0:
            active = [pc for pc in pieces if room[pc.cp] > 0]
            total = sum(pc.value for pc in active)
            if not active or total <= 0:
                break
            shares = [rest * pc.value // total for pc in active]
            shares[0] += rest - sum(shares)          # the remainder to the top-ranked one
            placed = 0
            for pc, share in zip(active, shares):
                take = min(share, room[pc.cp])
                pc.charge += take
                room[pc.cp] -= take
                placed += take
            rest -= placed
            if placed == 0:
                break
        return rest

    def _commit(self, acct: int, pieces: list[_Piece], pay: int, bad: int, full: bool) -> None:
        s = self.s
        core = s.core
        user = int(core.accounts["user_id"][acct])
        m = core.margin(acct)
        rnd = int(core.accounts["liq_round"][acct]) + 1
        common = dict(ts_ns=s.clock, stream_id=s.stream_id, user_id=user, equity=m["equity"],
                      maintenance_margin=m["mm"])
        recs = bytearray()
        for pc in pieces:
            core.r.liq_id_counter += 1
            recs += _LIQ.encode(kind=int(LiqKind.ADL), symbol_id=pc.symbol, side=pc.side, round=rnd,
                                order_id=liq_id(s.clock, s.shard_id, int(core.r.liq_id_counter)), qty=pc.qty,
                                price=pc.mark, mark_px=pc.mark, shortfall=pc.charge,
                                counterparty_user_id=int(core.accounts["user_id"][pc.cp]), **common)
        if pay:
            recs += _LIQ.encode(kind=int(LiqKind.INSURANCE), shortfall=pay, **common)
        if full:
            recs += _LIQ.encode(kind=int(LiqKind.DONE), shortfall=bad, **common)
        s.commit(recs, symbols=[pc.symbol for pc in pieces], notify=True)
