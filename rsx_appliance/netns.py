"""Two network namespaces joined by a veth pair, for CMP tests and benchmarks.

Tests and benchmarks never touch the machine's real interfaces: traffic that
must cross a (virtual) wire goes between two namespaces this module creates,
each holding one end of a veth pair, and removes afterwards (removing a
namespace removes its veth end, and with it the pair)::

    with VethPair() as vp:
        vp.a.netns      # "/var/run/netns/rsx1234x0a": give it to cmp.Endpoint(netns=...)
        vp.a.ifname, vp.a.ip, vp.a.mac, and the same for vp.b

Names carry the process id and a counter, so parallel runs never collide.
Each side has a permanent neighbour entry for the other (no ARP needed), one
rx/tx queue (so AF_XDP's queue 0 sees every frame), and tx checksum offload
switched off through the SIOCETHTOOL ioctl (no ethtool binary needed).
Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and pyroute2.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

__all__ = ["Side", "VethPair", "available"]

_counter = itertools.count()


@dataclass(frozen=True)
class Side:
    """One end of the pair: its namespace, interface and addresses."""

    name: str      # namespace name
    netns: str     # namespace path, for cmp.Endpoint(netns=...)
    ifname: str
    ip: str
    mac: str


def available() -> tuple[bool, str]:
    """Whether a VethPair can be made here, and if not, why."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces, veth)"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return False, "pyroute2 is not installed"
    return True, ""


class VethPair:
    """Context manager: create the namespaces and the pair on enter, remove them on exit."""

    def __init__(self, subnet: int = 77, tx_checksum: bool = False) -> None:
        n = next(_counter)
        pid = os.getpid()
        self._names = (f"rsx{pid}x{n}a", f"rsx{pid}x{n}b")
        ifs = (f"r{pid}x{n}a", f"r{pid}x{n}b")
        ips = (f"10.{subnet}.{n % 250}.1", f"10.{subnet}.{n % 250}.2")
        macs = ("02:72:73:78:00:01", "02:72:73:78:00:02")
        self.a = Side(self._names[0], f"/var/run/netns/{self._names[0]}", ifs[0], ips[0], macs[0])
        self.b = Side(self._names[1], f"/var/run/netns/{self._names[1]}", ifs[1], ips[1], macs[1])
        self._tx_checksum = tx_checksum
        self._created: list[str] = []

    def __enter__(self) -> "VethPair":
        from pyroute2 import IPRoute, NetNS, netns

        try:
            for name in self._names:
                netns.create(name)
                self._created.append(name)
            with IPRoute() as ipr:
                ipr.link("add", ifname=self.a.ifname, kind="veth", num_rx_queues=1, num_tx_queues=1,
                         net_ns_fd=self.a.name,
                         peer={"ifname": self.b.ifname, "net_ns_fd": self.b.name,
                               "num_rx_queues": 1, "num_tx_queues": 1})
            for me, peer in ((self.a, self.b), (self.b, self.a)):
                with NetNS(me.name) as ns:
                    idx = ns.link_lookup(ifname=me.ifname)[0]
                    ns.link("set", index=idx, address=me.mac)
                    ns.addr("add", index=idx, address=me.ip, prefixlen=24)
                    ns.link("set", index=idx, state="up")
                    ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
                    ns.neigh("add", dst=peer.ip, lladdr=peer.mac, ifindex=idx, state="permanent")
                self.set_tx_checksum(me, self._tx_checksum)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def set_tx_checksum(side: Side, on: bool) -> None:
        """Switch tx checksum offload of one end (SIOCETHTOOL, ETHTOOL_STXCSUM)."""
        from ._native import lib
        from .errors import check

        check(lib.rsx_cmp_netdev_set_tx_csum(side.netns.encode(), side.ifname.encode(), int(on)),
              f"tx checksum offload of {side.ifname}")

    @staticmethod
    def tx_checksum(side: Side) -> bool:
        """Read tx checksum offload of one end back."""
        from ._native import lib
        from .errors import check

        return bool(check(lib.rsx_cmp_netdev_get_tx_csum(side.netns.encode(), side.ifname.encode()),
                          f"tx checksum offload of {side.ifname}"))

    def __exit__(self, *exc) -> None:
        from pyroute2 import netns

        while self._created:
            name = self._created.pop()
            try:
                netns.remove(name)
            except OSError:
                pass
