"""What `rsx wal` does, as functions: list, verify, stats, filter, JSON (specs/wal.md section 7).

Every per-record step is vectorised (C scan, numpy masks); only the records
that are printed are decoded one by one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..codes import ErrorCode
from ..records import FIELDS, HEADER_SIZE, RecordType
from .block import Block
from .reader import Break, WalFile, WalSet, read_file, read_tip, tip_durable_bytes

__all__ = [
    "StreamFile", "stream_files", "Filter", "parse_time", "VerifyReport", "verify",
    "stats", "to_json_dict",
]

_RANGED = re.compile(r"^(\d+)_(\d+)_(\d+)\.wal$")
_ACTIVE = re.compile(r"^(\d+)_(\d+)_active\.wal$")
USER_FIELDS = ("user_id", "taker_user_id", "maker_user_id", "counterparty_user_id")


@dataclass(frozen=True)
class StreamFile:
    path: Path
    first_seq: int        # from the name or the first record (0 = empty)
    limit: int | None     # readable bytes (the writer's durable size), None = the whole file
    newest: bool
    name_range: tuple[int, int] | None   # (first, last) a rotated file's name promises
    name_first: int = 0                  # first seq a WAL file's name promises (0 = none)
    durable: int | None = None           # bytes its writer's tip reported durable (None = unknown)


def stream_files(path: str | os.PathLike, stream_id: int = 0) -> tuple[list[StreamFile], int]:
    """The files to read for PATH (a file, or a stream directory), oldest first, and the stream id."""
    path = Path(path)
    if path.is_file():
        m = _RANGED.match(path.name) or _ACTIVE.match(path.name)
        sid = int(path.name.split("_", 1)[0]) if "_" in path.name and path.name.split("_", 1)[0].isdigit() else 0
        nr = (int(m.group(2)), int(m.group(3))) if m and m.re is _RANGED else None
        return [StreamFile(path, 0, _limit(path, sid), True, nr, int(m.group(2)) if m else 0,
                           tip_durable_bytes(path, sid))], sid
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    with WalSet(path, stream_id) as s:
        sid = s.stream_id
        listed = s.files()
    out = []
    for i, (name, first) in enumerate(listed):
        p = path / name
        m = _RANGED.match(name)
        a = _ACTIVE.match(name)
        out.append(StreamFile(p, first, _limit(p, sid), i == len(listed) - 1,
                              (int(m.group(2)), int(m.group(3))) if m else None,
                              int((m or a).group(2)) if (m or a) else 0, tip_durable_bytes(p, sid)))
    return out, sid


def _limit(p: Path, sid: int) -> int | None:
    """The durable size of an active file whose writer's tip describes it."""
    m = _ACTIVE.match(p.name)
    if not m or not sid:
        return None
    tip = read_tip(p.parent, sid)
    if tip is None or tip.state == "closed" or tip.active_first_seq != int(m.group(2)):
        return None
    return tip.active_durable_bytes


def _open(f: StreamFile, next_seq: int = 0, check_seq: bool = True, stream_id: int = 0) -> WalFile:
    wf = read_file(f.path, next_seq=next_seq, check_seq=check_seq, stream_id=stream_id,
                   newest=f.newest, limit=f.limit, durable=f.durable)
    return wf


# ---------------------------------------------------------------- verify

@dataclass
class VerifyReport:
    files: int = 0
    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)    # facts that are not failures (accepted losses)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: str | os.PathLike, stream_id: int = 0) -> VerifyReport:
    """Check every record, the seq continuity within and across files, and that the files
    reach every seq the stream reported durable (a lost tail, specs/wal.md 2.7)."""
    from . import published

    # read before the files: the published seq only grows, so a live writer cannot look like a loss
    pub = published(path, stream_id) if Path(path).is_dir() and stream_id else None
    files, sid = stream_files(path, stream_id)
    if pub is None and Path(path).is_dir() and sid:
        pub = published(path, sid)
    rep = VerifyReport()
    expect = 0
    lost: list[tuple[int, int, int]] = []        # (first_lost, last_lost, tombstones)
    for f in files:
        rep.files += 1
        wf = _open(f, next_seq=expect, stream_id=sid)
        tomb = wf.types == RecordType.SEQ_LOST
        if tomb.any():
            t = wf.view(RecordType.SEQ_LOST)["payload"]
            for a, b in sorted(set(zip(t["first_lost"].tolist(), t["last_lost"].tolist()))):
                n = int(((t["first_lost"] == a) & (t["last_lost"] == b)).sum())
                if lost and lost[-1][:2] == (a, b):
                    lost[-1] = (a, b, lost[-1][2] + n)
                else:
                    lost.append((a, b, n))
        if len(wf):
            if not rep.first_seq:
                rep.first_seq = wf.first_seq
            rep.last_seq = wf.last_seq
            rep.records += len(wf)
        if wf.brk is not None:
            rep.breaks.append(wf.brk)
            if wf.brk.tail:
                note = " (bytes a crashed writer never synced; the writer cuts them at its next start)"
            elif _ACTIVE.match(f.path.name) and wf.brk.error not in (ErrorCode.SEQ, ErrorCode.STREAM):
                note = (" (corrupt inside data reported durable: the writer will refuse to open; "
                        "restore the file from a replica or archive)")
            elif wf.brk.error == ErrorCode.SEQ:
                note = " (a gap: replays stop here)"
            else:
                note = " (corrupt: replays stop here)"
            rep.problems.append(f"{wf.brk}{note}")
            # seqs after a break cannot be trusted to chain; restart the chain at the next file
            expect = 0
            continue
        if f.name_first and len(wf) and wf.first_seq != f.name_first:
            rep.problems.append(f"{f.path}: name says first seq {f.name_first} but the file "
                                f"starts at seq {wf.first_seq}")
        elif f.name_range and len(wf) and (wf.first_seq, wf.last_seq) != f.name_range:
            rep.problems.append(f"{f.path}: name says seqs {f.name_range[0]}..{f.name_range[1]} "
                                f"but the file holds {wf.first_seq}..{wf.last_seq}")
        if f.name_range and not len(wf):
            rep.problems.append(f"{f.path}: empty, but its name says {f.name_range[0]}..{f.name_range[1]}")
        expect = wf.last_seq + 1 if len(wf) else expect
    if not files:
        rep.problems.append(f"{path}: no WAL files")
    if pub is not None and pub.seq > rep.last_seq and not rep.breaks:
        rep.problems.append(
            f"{path}: the files end at seq {rep.last_seq} but seq {pub.seq} was reported durable "
            f"({pub.evidence}): seqs {rep.last_seq + 1}..{pub.seq} are lost; the writer will refuse "
            f"to open (restore them, or accept the loss: rsx wal accept-loss)")
    for a, b, n in lost:
        rep.notes.append(f"seqs {a}..{b} were lost and the loss accepted by an operator "
                         f"({n} SEQ_LOST tombstones)")
    return rep


# ---------------------------------------------------------------- stats

def stats(path: str | os.PathLike, stream_id: int = 0) -> dict:
    """Counts per type, seq range, gaps, bytes, breaks, tip, consumers (JSON-ready)."""
    from . import consumers

    files, sid = stream_files(path, stream_id)
    per_type: dict[str, int] = {}
    out_files = []
    gaps: list[dict] = []
    breaks = []
    total = nbytes = 0
    first = last = 0
    prev_last = 0
    for f in files:
        wf = _open(f, check_seq=False, stream_id=sid)
        seqs = wf.seqs
        for t, c in wf.counts().items():
            per_type[t.name] = per_type.get(t.name, 0) + c
        if len(seqs):
            candidates = []
            if prev_last and seqs[0] != prev_last + 1:
                candidates.append((prev_last, int(seqs[0])))
            d = np.flatnonzero(np.diff(seqs.astype(np.int64)) != 1)
            candidates += [(int(seqs[i]), int(seqs[i + 1])) for i in d]
            gaps += [{"after": a, "next": b, "missing": max(b - a - 1, 0),
                      "file": str(f.path)} for a, b in candidates]
            first = first or int(seqs[0])
            last = int(seqs[-1])
            prev_last = last
        total += len(wf)
        nbytes += wf.nbytes
        if wf.brk is not None:
            breaks.append(wf.brk.to_dict())
        out_files.append({"file": str(f.path), "records": len(wf), "bytes": wf.nbytes,
                          "first_seq": wf.first_seq, "last_seq": wf.last_seq,
                          "size": wf.size})
    res = {"stream_id": sid, "files": len(files), "records": total, "bytes": nbytes,
           "first_seq": first, "last_seq": last, "types": dict(sorted(per_type.items())),
           "gaps": gaps, "breaks": breaks, "per_file": out_files}
    d = Path(path)
    if d.is_dir() and sid:
        tip = read_tip(d, sid)
        res["writer"] = None if tip is None else {
            "pid": tip.writer_pid, "state": tip.state, "error": tip.error,
            "durable_seq": tip.durable_seq, "appended_seq": tip.appended_seq,
            "batches": tip.batches, "records": tip.records, "stalls": tip.stalls,
            "stall_ns": tip.stall_ns, "sync_ns_last": tip.sync_ns_last,
            "sync_ns_max": tip.sync_ns_max, "retention_blocked_seq": tip.retention_blocked_seq,
            "alive": WalSet(d, sid).info().writer_alive,
        }
        res["consumers"] = consumers(d)
    return res


# ---------------------------------------------------------------- filters

def parse_time(text: str) -> int:
    """ns since the epoch: an integer, or ISO 8601 (UTC when no zone is given)."""
    t = text.strip()
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ns since the epoch or ISO 8601)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def parse_types(text: str) -> set[int]:
    out = set()
    for name in text.split(","):
        name = name.strip().upper()
        if not name:
            continue
        try:
            out.add(int(RecordType[name]))
        except KeyError:
            raise ValueError(f"unknown record type {name!r} (known: "
                             f"{', '.join(t.name for t in RecordType)})") from None
    return out


@dataclass
class Filter:
    """Selects records of a block with numpy masks."""

    types: set[int] | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    symbol: int | None = None
    user: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def mask(self, block: Block) -> np.ndarray:
        idx = block.index
        m = np.ones(len(idx), dtype=bool)
        if self.types is not None:
            m &= np.isin(idx["type"], list(self.types))
        if self.from_seq is not None:
            m &= idx["seq"] >= self.from_seq
        if self.to_seq is not None:
            m &= idx["seq"] <= self.to_seq
        if self.since_ns is not None or self.until_ns is not None:
            raw = np.frombuffer(block.raw, dtype=np.uint8)
            offs = idx["offset"].astype(np.int64)
            ts = raw[offs[:, None] + HEADER_SIZE + 8 + np.arange(8)].copy().view("<u8").ravel()
            if self.since_ns is not None:
                m &= ts >= self.since_ns
            if self.until_ns is not None:
                m &= ts <= self.until_ns
        if self.symbol is not None or self.user is not None:
            for t in np.unique(idx["type"]):
                rows = np.flatnonzero(idx["type"] == t)
                names = {f.name for f in FIELDS[RecordType(int(t))]}
                payload = block.view(int(t))["payload"]
                keep = np.ones(len(rows), dtype=bool)
                if self.symbol is not None:
                    keep &= (payload["symbol_id"] == self.symbol) if "symbol_id" in names else False
                if self.user is not None:
                    hit = np.zeros(len(rows), dtype=bool)
                    for uf in USER_FIELDS:
                        if uf in names:
                            hit |= payload[uf] == self.user
                    keep &= hit
                m[rows] &= keep
        return m


def to_json_dict(rec) -> dict:
    out = {"seq": rec.fields.get("seq"), "type": rec.type.name}
    for k, v in rec.fields.items():
        if k == "seq":
            continue
        if isinstance(v, uuid.UUID):
            v = str(v)
        elif isinstance(v, bytes):
            v = v.rstrip(b"\0").decode("ascii", errors="replace")
        out[k] = v
    return out


def filtered_records(block: Block, flt: Filter) -> Iterator[dict]:
    """The selected records of a block, decoded, as JSON-ready dicts."""
    from ..records import decode

    raw = memoryview(block.raw)
    for i in np.flatnonzero(flt.mask(block)):
        yield to_json_dict(decode(raw, int(block.index["offset"][i])))


def code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)
