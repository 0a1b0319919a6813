"""Liquidation, insurance fund and auto-deleveraging (specs/risk.md 7).

Decisions are taken here, from numbers the C core computes (margin, round
plans, worst-case shortfall, ADL candidates, close previews); their effects
happen only by applying journaled LIQUIDATION records (:meth:`Liquidator.apply`),
the same code recovery runs, so a decision is taken once and replayed exactly.

Record usage (LIQUIDATION.kind):
  ROUND      one per order of a round: side, qty, price, round, slippage_bps,
             order_id (fresh), mark_px, equity, maintenance_margin,
             shortfall = the insurance fund reserved for this round.
  ADL        one per counterparty: the liquidated user's closing side, qty, price
             (the mark), counterparty_user_id, shortfall = the counterparty's charge.
  INSURANCE  shortfall = what the fund paid to the user.
  DONE       the user left liquidation; shortfall = bad debt left on the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..records import RecordType
from ..records import codec
from ._core import ACCT_LIQ
from .enums import LiqKind, OrderFlag, Side, Stp, Tif
from .ids import uuid7

if TYPE_CHECKING:
    from .shard import Outputs, RiskShard

__all__ = ["Liquidator"]

_LIQ = codec(RecordType.LIQUIDATION)
_NEW_ORDER = codec(RecordType.NEW_ORDER)
_CANCEL_ALL = codec(RecordType.CANCEL_ALL)


class _Batch:
    """Decisions of one pass, journaled together (one fsync)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.after: list = []          # callables(outputs) run after the commit
        self.reserved: dict[int, int] = {}
        self.symbols: set[int] = set()  # barriers: symbols the decisions name
        self.orders = 0                  # liquidation orders the batch will track
        self.reserved_sum = 0


class Liquidator:
    def __init__(self, shard: "RiskShard") -> None:
        self.s = shard
        self._batch: _Batch | None = None
        self._deferred: list[int] = []
        self._reserved = 0

    # -- fund ---------------------------------------------------------------

    def recount(self) -> None:
        """Recompute the reserved total from the states (after loading a snapshot)."""
        self._reserved = sum(st.reserved for st in self.s.liq.values())

    def reserved_total(self, exclude_user: int | None = None) -> int:
        """Insurance fund reserved by users in liquidation (O(1): kept as a running sum)."""
        tot = self._reserved
        if exclude_user is not None and exclude_user in self.s.liq:
            tot -= self.s.liq[exclude_user].reserved
        if self._batch:
            tot += self._batch.reserved_sum - self._batch.reserved.get(exclude_user, 0)
        return tot

    def fund_available(self, user: int) -> int:
        return int(self.s.core.r.insurance_fund) - self.reserved_total(exclude_user=user)

    # -- entry points -------------------------------------------------------

    def enter(self, accts, out: "Outputs") -> None:
        """Accounts found liquidatable (mark scan, fills, funding, pre-trade): one journal batch."""
        s = self.s
        if s._replaying:
            return
        users = []
        seen = set()
        for acct in ([accts] if isinstance(accts, int) else accts):
            user = int(s.core.accounts["user_id"][acct])
            if user in s.liq or user in seen or s.core.accounts["flags"][acct] & ACCT_LIQ:
                continue
            seen.add(user)
            users.append((user, int(acct)))
        if users:
            self._run(sorted(users), out)   # by user id: independent of table slots

    def tick(self, out: "Outputs") -> None:
        """Rounds that are due."""
        s = self.s
        due = []
        for user in sorted(s.liq):
            st = s.liq[user]
            if st.in_flight or s.clock < st.next_at:
                continue
            due.append((user, s.core.find_account(user)))
        if due:
            self._run(due, out)

    def defer(self, accts: list[int]) -> None:
        """Accounts to check once the current decision is journaled (funding, ADL counterparties)."""
        if not self.s._replaying:
            self._deferred.extend(accts)

    def run_deferred(self, out: "Outputs") -> None:
        while self._deferred and self._batch is None:
            accts, self._deferred = self._deferred, []
            core = self.s.core
            found = core.check_accounts(np.asarray(sorted(set(accts)), dtype=np.int32))
            users = [(int(core.accounts["user_id"][a]), int(a)) for a in found.tolist()
                     if int(core.accounts["user_id"][a]) not in self.s.liq]
            if users:
                self._run(users, out)

    def order_done(self, user: int, oid: bytes, reason: int, symbol_id: int) -> None:
        """A liquidation order ended (its terminal event, or reconciliation)."""
        st = self.s.liq.get(user)
        if st is not None:
            st.in_flight.discard(oid)

    # -- deciding -----------------------------------------------------------

    def _run(self, users: list[tuple[int, int]], out: "Outputs") -> None:
        if self._batch is not None:      # re-entered from an apply: decide after this pass
            self.defer([acct for _, acct in users])
            return
        self._batch = _Batch()
        try:
            for user, acct in users:
                self._decide(user, acct, out)
            self._flush(out)
        finally:
            self._batch = None
        self.run_deferred(out)

    def _flush(self, out: "Outputs") -> None:
        b = self._batch
        if b and b.records:
            recs, after = b.records, b.after
            b.records, b.after, b.reserved, b.orders, b.reserved_sum = [], [], {}, 0, 0
            s = self.s
            first = s._commit(recs, barriers=b.symbols)
            b.symbols = set()
            out.to_gateway += b"".join(s.journal_record_range(first, len(recs)))  # users see each step
            for fn in after:
                fn(out)

    def _rec(self, kind: int, user: int, **fields) -> bytes:
        s = self.s
        return _LIQ.encode(ts_ns=s.clock, stream_id=s.stream_id, user_id=user, kind=int(kind), **fields)

    def _next_id(self) -> bytes:
        s = self.s
        s.id_counter += 1
        return uuid7(s.clock, s.shard_id, s.id_counter)

    def _decide(self, user: int, acct: int, out: "Outputs") -> None:
        s = self.s
        st = s.liq.get(user)
        m = s.core.margin(acct)
        in_liq = st is not None
        if m["positions"] == 0:
            if in_liq or m["collateral"] < 0:   # flat: settle a debt, leave liquidation
                self._settle(user, acct, m)
            return
        if not m["liquidatable"]:
            if in_liq:
                self._batch.records.append(self._rec(LiqKind.DONE, user, equity=m["equity"],
                                                     maintenance_margin=m["mm"]))
            return
        rnd = (st.round if st else 0) + 1
        p = s.params
        slip = min(rnd * rnd * p.liq_base_slip_bps, p.liq_max_slip_bps)
        plan, worst = s.core.liq_plan(acct, slip)
        avail = self.fund_available(user)
        if rnd > p.liq_max_rounds or worst > avail:
            if self._adl(user, acct, m, rnd, out):
                return
            # no counterparty in this shard: keep closing in the book at the largest slippage
            slip = p.liq_max_slip_bps
            plan, worst = s.core.liq_plan(acct, slip)
        if len(plan) == 0:
            return  # nothing closable now (unpriced or halted symbols): re-detected later
        if s.core.r.n_orders + self._batch.orders + len(plan) > s.core.capacity.max_orders:
            return  # no room to track the orders: this user waits for the next pass (counted)
        self._batch.orders += len(plan)
        reserve = min(worst, max(avail, 0))
        self._batch.reserved_sum += reserve - self._batch.reserved.get(user, 0)
        self._batch.reserved[user] = reserve
        recs = []
        for o in plan:
            recs.append(self._rec(LiqKind.ROUND, user, symbol_id=int(o["symbol_id"]), side=int(o["side"]),
                                  round=rnd, slippage_bps=slip, order_id=self._next_id(), qty=int(o["qty"]),
                                  price=int(o["price"]), mark_px=int(o["mark"]), equity=m["equity"],
                                  maintenance_margin=m["mm"], shortfall=reserve))
        self._batch.records += recs
        self._batch.symbols.update(int(o["symbol_id"]) for o in plan)
        cancels = self._cancel_symbols(acct)
        self._batch.after.append(lambda o, recs=recs, user=user, cancels=cancels:
                                 self._emit_round(o, user, recs, cancels))

    def _cancel_symbols(self, acct: int) -> list[int]:
        core = self.s.core
        syms = []
        p = int(core.accounts["pos_head"][acct])
        while p >= 0:
            row = core.positions[p]
            if int(row["n_orders"]) > 0 or int(row["net"]) != 0:
                syms.append(int(row["symbol_id"]))
            p = int(row["next"])
        return sorted(syms)

    def _emit_round(self, out: "Outputs", user: int, recs: list[bytes], cancels: list[int]) -> None:
        s = self.s
        for sym in cancels:
            out.to_me += _CANCEL_ALL.encode(ts_ns=s.clock, stream_id=s.stream_id, symbol_id=sym, user_id=user,
                                            request_id=self._next_id_nojournal(sym, user))
        for raw in recs:
            r = _LIQ.unpack(raw)
            out.to_me += _NEW_ORDER.encode(ts_ns=s.clock, stream_id=s.stream_id,
                                symbol_id=r.symbol_id, user_id=user, side=r.side, tif=int(Tif.IOC),
                                flags=int(OrderFlag.REDUCE_ONLY | OrderFlag.LIQUIDATION),
                                stp=int(Stp.CANCEL_MAKER), order_id=r.order_id, price=r.price, qty=r.qty,
                                risk_in_ts_ns=s.clock, risk_out_ts_ns=s.clock)

    def _next_id_nojournal(self, sym: int, user: int) -> bytes:
        # request ids of CANCEL_ALLs only correlate answers; they need not replay
        return uuid7(self.s.clock, self.s.shard_id, (1 << 57) | (sym << 32) | user)

    def _settle(self, user: int, acct: int, m: dict) -> None:
        """Flat: the fund pays a negative balance (what it can), then DONE."""
        c = int(self.s.core.accounts["collateral"][acct])
        pay, bad = 0, 0
        if c < 0:
            pay = min(-c, max(self.fund_available(user), 0))
            bad = -c - pay
        if pay:
            self._batch.records.append(self._rec(LiqKind.INSURANCE, user, shortfall=pay, equity=m["equity"]))
        self._batch.records.append(self._rec(LiqKind.DONE, user, shortfall=bad, equity=m["equity"]))

    def _adl(self, user: int, acct: int, m: dict, rnd: int, out: "Outputs") -> bool:
        """Close the remaining positions against ranked opposite positions (committed on its own
        batch, with fill barriers). Returns False when there is no counterparty at all."""
        s = self.s
        core = s.core
        self._flush(out)  # earlier decisions first: ADL changes positions others are ranked on
        pieces: list[tuple[int, int, int, int, int]] = []   # (sym, cp_acct, qty, mark, side)
        full = True
        p = int(core.accounts["pos_head"][acct])
        positions = []
        while p >= 0:
            row = core.positions[p]
            if int(row["net"]) != 0:
                positions.append((int(row["symbol_id"]), int(row["net"])))
            p = int(row["next"])
        for sym, net in sorted(positions):
            mark = int(core.symbols["mark"][sym])
            if mark <= 0:
                full = False
                continue
            cpos, prof, score = core.adl_candidates(sym, -1 if net > 0 else 1, s._index.get(sym))
            if len(cpos) == 0:
                full = False
                continue
            cacct = core.positions["acct"][cpos]
            uids = core.accounts["user_id"][cacct]
            order = np.lexsort((uids, -score, -prof.astype(np.int64)))
            cpos, cacct = cpos[order], cacct[order]
            avail = np.abs(core.positions["net"][cpos])
            need = abs(net)
            before = np.concatenate(([0], np.cumsum(avail)[:-1]))
            take = np.clip(need - before, 0, avail)
            k = take > 0
            side = int(Side.SELL if net > 0 else Side.BUY)
            for a, q in zip(cacct[k].tolist(), take[k].tolist()):
                pieces.append((sym, a, q, mark, side))
            if int(take.sum()) < need:
                full = False
        if not pieces:
            return False
        charges = [0] * len(pieces)
        pay = 0
        if full:
            delta = 0
            for sym in sorted({pc[0] for pc in pieces}):
                qtys = [pc[2] for pc in pieces if pc[0] == sym]
                mark = next(pc[3] for pc in pieces if pc[0] == sym)
                delta += core.preview_close(acct, sym, qtys, mark)
            after = int(core.accounts["collateral"][acct]) + delta
            short = max(0, -after)
            pay = min(short, max(self.fund_available(user), 0))
            rest = short - pay
            if rest:
                vals = [core.value(pc[0], pc[3], pc[2]) for pc in pieces]
                tot = sum(vals)
                if tot > 0:
                    charges = [rest * v // tot for v in vals]
                charges[0] += rest - sum(charges)
        recs = []
        for (sym, cp, q, mark, side), charge in zip(pieces, charges):
            recs.append(self._rec(LiqKind.ADL, user, symbol_id=sym, side=side, round=rnd,
                                  order_id=self._next_id(), qty=q, price=mark, mark_px=mark,
                                  equity=m["equity"], maintenance_margin=m["mm"], shortfall=charge,
                                  counterparty_user_id=int(core.accounts["user_id"][cp])))
        if pay:
            recs.append(self._rec(LiqKind.INSURANCE, user, shortfall=pay, equity=m["equity"]))
        if full:
            recs.append(self._rec(LiqKind.DONE, user, shortfall=0, equity=m["equity"]))
        first = s._commit(recs, barriers=[pc[0] for pc in pieces])
        out.to_gateway += b"".join(s.journal_record_range(first, len(recs)))
        return True

    # -- applying journaled decisions (live and recovery) -------------------

    def apply(self, r) -> None:
        from .shard import LiqState

        s = self.s
        core = s.core
        user = r.user_id
        kind = r.kind
        acct = core.find_account(user)
        if acct < 0:
            acct = core.open_account(user)
        if kind == LiqKind.ROUND:
            st = s.liq.setdefault(user, LiqState())
            core.accounts["flags"][acct] |= ACCT_LIQ
            st.round = r.round
            st.next_at = r.ts_ns + r.round * s.params.liq_base_delay_ns
            self._reserved += r.shortfall - st.reserved
            st.reserved = r.shortfall
            oid = r.order_id
            st.in_flight.add(oid)
            core.track_order(oid, acct, r.symbol_id, r.side, r.price, r.qty, r.ts_ns)
        elif kind == LiqKind.ADL:
            st = s.liq.setdefault(user, LiqState())
            core.accounts["flags"][acct] |= ACCT_LIQ
            st.round = r.round
            st.next_at = r.ts_ns + s.params.liq_base_delay_ns
            cp = core.find_account(r.counterparty_user_id)
            buyer, seller = (cp, acct) if r.side == Side.SELL else (acct, cp)
            core.synthetic_fill(r.symbol_id, buyer, seller, r.price, r.qty)
            if r.shortfall:
                core.move(cp, acct, r.shortfall)
            s._index.sync(core.positions, core.r.n_positions)
            self.defer([cp])   # a counterparty closed at the bankruptcy price may now be short
        elif kind == LiqKind.INSURANCE:
            from ._core import FUND

            core.move(FUND, acct, r.shortfall)
        elif kind == LiqKind.DONE:
            core.accounts["flags"][acct] &= ~np.uint32(ACCT_LIQ)
            st = s.liq.pop(user, None)
            if st is not None:
                self._reserved -= st.reserved
            s.bad_debt += r.shortfall
        else:
            raise ValueError(f"unknown liquidation kind {kind}")

