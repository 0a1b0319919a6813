"""Order ids, the live orders of connected users, and requests in flight (specs/ws-api.md 5, 6).

Nothing here survives a restart, by design: live orders are rebuilt from the
engine streams and, at a user's first connection, from risk's open-order
answer; a client whose request was in flight retries with the same client id.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field

from ..codes import Status
from ..risk.ids import uuid7

__all__ = ["OrderIds", "LiveOrder", "UserOrders", "Pending", "PendingTable"]

_GATEWAY_ID_BASE = 0x8000  # the id's 16-bit source field: risk shards use small numbers, gateways 0x8000 + g


class OrderIds:
    """UUIDv7 order ids (RFC 9562): time-sortable, unique across gateways and restarts.

    The 58-bit counter starts at a random value per process, so a restarted
    gateway minting in the same millisecond does not repeat an id.
    """

    def __init__(self, instance: int) -> None:
        self.source = _GATEWAY_ID_BASE | instance
        self.counter = secrets.randbits(40)

    def mint(self, ts_ns: int | None = None) -> bytes:
        self.counter = (self.counter + 1) & ((1 << 58) - 1)
        return uuid7(time.time_ns() if ts_ns is None else ts_ns, self.source, self.counter)

    @staticmethod
    def of_client(user: int, symbol: int, cid: str) -> bytes:
        """The order id of a new order: a function of (user, symbol, client order id), the same at every gateway
        and after every restart, so a client's retry carries the id of its first try and the engine's dedup
        window (by user and order id, rebuilt from its WAL) refuses it instead of executing it twice
        (specs/ws-api.md 5.1). A UUIDv8 (RFC 9562: custom): BLAKE2b-128 of the three, version and variant set."""
        key = user.to_bytes(4, "little") + symbol.to_bytes(4, "little") + cid.encode()
        h = bytearray(hashlib.blake2b(key, digest_size=16, person=b"rsx-order-id").digest())
        h[6] = (h[6] & 0x0F) | 0x80
        h[8] = (h[8] & 0x3F) | 0x80
        return bytes(h)


@dataclass(slots=True)
class LiveOrder:
    oid: bytes
    sym: int
    side: int
    cid: str
    px: int
    qty: int
    filled: int = 0
    remaining: int = 0
    status: int = Status.PENDING
    tif: int = 0
    flags: int = 0
    ts_ns: int = 0

    @property
    def hex(self) -> str:
        return self.oid.hex()


class UserOrders:
    """A connected user's live orders, by order id and by client id."""

    __slots__ = ("by_oid", "by_cid", "done")

    def __init__(self) -> None:
        self.by_oid: dict[bytes, LiveOrder] = {}
        self.by_cid: dict[str, bytes] = {}
        # recently ended order ids: a second terminal record is counted, never sent
        self.done: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    def add(self, o: LiveOrder) -> None:
        self.by_oid[o.oid] = o
        if o.cid:
            self.by_cid[o.cid] = o.oid

    def get(self, oid: bytes) -> LiveOrder | None:
        return self.by_oid.get(oid)

    def resolve(self, ident: str) -> LiveOrder | None:
        """An order id (32 hex) or a client id -> the live order, or None."""
        if len(ident) == 32:
            try:
                o = self.by_oid.get(bytes.fromhex(ident))
            except ValueError:
                o = None
            if o is not None:
                return o
        oid = self.by_cid.get(ident)
        return None if oid is None else self.by_oid.get(oid)

    def forget(self, oid: bytes) -> LiveOrder | None:
        """Drop an entry without ending the order (its later records may add it again)."""
        o = self.by_oid.pop(oid, None)
        if o is not None and o.cid and self.by_cid.get(o.cid) == oid:
            del self.by_cid[o.cid]
        return o

    def end(self, oid: bytes) -> LiveOrder | None:
        o = self.forget(oid)
        self.done[oid] = None
        if len(self.done) > 4096:
            self.done.popitem(last=False)
        return o

    def ended(self, oid: bytes) -> bool:
        return oid in self.done


@dataclass(slots=True)
class Pending:
    """A request sent to risk that waits for its answer."""

    kind: str            # "N", "C", "AM", "Q" (query), "SEED"
    user: int
    shard: int
    deadline: float
    session: object = None   # the requesting session (may have closed since)
    oid: bytes = b""
    probe: bool = False
    query: str = ""          # "O", "P", "A" for queries
    sym: int = 0
    rows: list = field(default_factory=list)


class PendingTable:
    """Requests in flight, keyed by (kind, id), expiring in order of their deadlines."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_key: dict[tuple, Pending] = {}
        self._expiry: collections.deque[tuple[float, tuple]] = collections.deque()

    def __len__(self) -> int:
        return len(self._by_key)

    def full(self) -> bool:
        return len(self._by_key) >= self.capacity

    def add(self, key: tuple, p: Pending) -> None:
        self._by_key[key] = p
        self._expiry.append((p.deadline, key))

    def get(self, key: tuple) -> Pending | None:
        return self._by_key.get(key)

    def pop(self, key: tuple) -> Pending | None:
        return self._by_key.pop(key, None)

    def expired(self, now: float) -> list[tuple[tuple, Pending]]:
        """Remove and return the entries whose deadline passed (timeouts differ by kind: scan all due)."""
        out = []
        q = self._expiry
        # deadlines of one kind are increasing; kinds differ, so keep the queue roughly ordered
        while q and q[0][0] <= now:
            _, key = q.popleft()
            p = self._by_key.get(key)
            if p is not None and p.deadline <= now:
                del self._by_key[key]
                out.append((key, p))
        if len(q) > 4 * max(len(self._by_key), 1024):  # answered entries pile up behind a long deadline
            self._expiry = collections.deque(sorted((p.deadline, k) for k, p in self._by_key.items()))
        return out


def oid_hex(oid: bytes) -> str:
    return oid.hex()


def new_request_id() -> bytes:
    return uuid.uuid4().bytes
