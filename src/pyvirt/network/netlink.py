"""Links, addresses, routes and neighbours over netlink: the only module importing pyroute2.

Every function opens a short-lived ``IPRoute`` socket in the caller's network namespace (tests
run pyvirt inside ``ip netns exec``), so nothing here keeps state. Errors from the kernel become
:class:`~pyvirt.errors.HostCommandError` naming the link and the operation.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError, PyvirtError

SYS_NET = Path("/sys/class/net")


@dataclass(frozen=True)
class Link:
    """One host network interface."""

    name: str
    index: int
    kind: str | None
    master: str | None
    mac: str
    up: bool


@dataclass(frozen=True)
class Route:
    """One IPv4/IPv6 route of the main table."""

    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    dev: str | None


@dataclass(frozen=True)
class Neighbour:
    """One neighbour-table (ARP/NDP) entry."""

    ip: str
    mac: str
    dev: str


@contextmanager
def _ipr(what: str) -> Iterator[Any]:
    try:
        with IPRoute() as ipr:
            yield ipr
    except NetlinkError as err:
        raise HostCommandError(f"netlink: {what} failed: {err.args[-1]}") from err


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def links() -> list[Link]:
    """Every link of the current network namespace."""
    with _ipr("listing links") as ipr:
        raw = list(ipr.get_links())
        names = {int(m["index"]): str(m.get("ifname")) for m in raw}
        out = []
        for m in raw:
            master = m.get("master")
            out.append(
                Link(
                    name=str(m.get("ifname")),
                    index=int(m["index"]),
                    kind=m.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                    master=names.get(int(master)) if master else None,
                    mac=str(m.get("address") or ""),
                    up=bool(m["flags"] & 1),
                )
            )
        return out


def link(name: str) -> Link | None:
    """The link called ``name``, or None."""
    return next((lk for lk in links() if lk.name == name), None)


def exists(name: str) -> bool:
    """True when a link called ``name`` exists (cheap: a /sys lookup)."""
    return (SYS_NET / name).exists()


def create_bridge(name: str, *, stp: bool, delay: int, mtu: int | None, mac: str | None) -> None:
    """Create a bridge (down, no addresses)."""
    opts: dict[str, Any] = {"br_stp_state": 1 if stp else 0, "br_forward_delay": delay * 100}
    if mtu:
        opts["mtu"] = mtu
    if mac:
        opts["address"] = mac
    with _ipr(f"creating bridge '{name}'") as ipr:
        ipr.link("add", ifname=name, kind="bridge", **opts)


def create_tap(
    name: str, *, mtu: int | None = None, uid: int | None = None, gid: int | None = None
) -> None:
    """Create a persistent tap device QEMU opens by name.

    :param uid: owner of the tap (the QEMU user: an unprivileged QEMU may attach to it, as a
        hot-plugged NIC's ``netdev_add`` does, only if it owns it)
    :param gid: its group
    """
    owner: dict[str, int] = {}
    if uid is not None:
        owner["uid"] = uid
    if gid is not None:
        owner["gid"] = gid
    with _ipr(f"creating tap '{name}'") as ipr:
        ipr.link("add", ifname=name, kind="tuntap", mode="tap", **owner)
        if mtu:
            idx = _index(ipr, name)
            ipr.link("set", index=idx, mtu=mtu)


#: ``TUNSETIFF`` and its flags (linux/if_tun.h)
_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI, _IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def open_tap(name: str) -> int:
    """Open existing tap ``name`` as QEMU would (``IFF_TAP | IFF_NO_PI | IFF_VNET_HDR``, close on
    exec); returns the fd, for a QEMU that may not open ``/dev/net/tun`` itself.

    :raises HostCommandError: the tap cannot be opened
    """
    import fcntl
    import struct

    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI | _IFF_VNET_HDR)
        fcntl.ioctl(fd, _TUNSETIFF, ifr)
    except OSError as err:
        os.close(fd)
        raise HostCommandError(f"cannot open tap '{name}': {err.strerror}") from err
    return fd


def create_macvtap(name: str, parent: str, *, mode: str, mac: str) -> int:
    """Create a macvtap on ``parent``; returns its ifindex (``/dev/tapN``)."""
    with _ipr(f"creating macvtap '{name}' on '{parent}'") as ipr:
        parent_idx = _index(ipr, parent)
        if parent_idx is None:
            raise HostCommandError(f"host interface '{parent}' does not exist")
        ipr.link(
            "add", ifname=name, kind="macvtap", link=parent_idx, macvtap_mode=mode, address=mac
        )
        idx = _index(ipr, name)
        assert idx is not None
        ipr.link("set", index=idx, state="up")
        return idx


def macvtap_available() -> bool:
    """True when the kernel has macvtap (``CONFIG_MACVTAP``), loading the module if needed.

    The ``macvtap`` character device region in ``/proc/devices`` is the test: it is there when
    macvtap is built in (no ``/sys/module/macvtap`` then) or its module is loaded.
    """

    def registered() -> bool:
        with open("/proc/devices") as f:
            return any(line.split()[1:] == ["macvtap"] for line in f)

    if registered():
        return True
    try:
        hostcmd.run(["modprobe", "-q", "macvtap"], what="cannot load macvtap", timeout=30)
    except PyvirtError:  # not installed, or the module is not there: the test below decides
        return False
    return registered()


def open_macvtap(name: str, scratch: Path) -> int:
    """Open the character device of macvtap ``name`` read-write (``O_CLOEXEC``); returns the fd.

    The device is ``/dev/tapIFINDEX``; its numbers are read from sysfs and checked against the
    node, since devtmpfs names collide for equal ifindexes in different network namespaces.
    When the node is missing or another device, a private node is made in ``scratch``, opened
    and unlinked.
    """
    base = SYS_NET / name
    try:
        index = int((base / "ifindex").read_text())
        major, minor = (
            int(x) for x in (base / "macvtap" / f"tap{index}" / "dev").read_text().split(":")
        )
    except (OSError, ValueError) as err:
        raise HostCommandError(f"macvtap '{name}' has no character device: {err}") from err
    rdev = os.makedev(major, minor)
    flags = os.O_RDWR | os.O_CLOEXEC
    node = Path(f"/dev/tap{index}")
    try:
        if node.stat().st_rdev == rdev:
            return os.open(node, flags)
    except OSError:
        pass
    private = scratch / f"tap{index}"
    try:
        private.unlink(missing_ok=True)
        os.mknod(private, 0o600 | stat.S_IFCHR, rdev)
        try:
            return os.open(private, flags)
        finally:
            private.unlink(missing_ok=True)
    except OSError as err:
        raise HostCommandError(
            f"cannot open the character device of macvtap '{name}': {err}"
        ) from err


def set_master(name: str, bridge: str, *, up: bool = True) -> None:
    """Enslave ``name`` to ``bridge`` and bring it up."""
    with _ipr(f"adding '{name}' to bridge '{bridge}'") as ipr:
        idx, br = _index(ipr, name), _index(ipr, bridge)
        if idx is None or br is None:
            missing = name if idx is None else bridge
            raise HostCommandError(f"netlink: link '{missing}' does not exist")
        ipr.link("set", index=idx, master=br, **({"state": "up"} if up else {}))


def set_up(name: str) -> None:
    """Bring a link up."""
    with _ipr(f"bringing '{name}' up") as ipr:
        ipr.link("set", index=_index(ipr, name), state="up")


def add_address(name: str, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    """Add ``iface`` (address/prefix) to link ``name``."""
    with _ipr(f"adding {iface} to '{name}'") as ipr:
        family = 10 if iface.version == 6 else 2
        kw: dict[str, Any] = {"family": family}
        if iface.version == 4:
            kw["broadcast"] = str(iface.network.broadcast_address)
        ipr.addr(
            "add",
            index=_index(ipr, name),
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            **kw,
        )


def delete(name: str) -> bool:
    """Delete link ``name``; False when it was already gone."""
    with _ipr(f"deleting '{name}'") as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as err:
            if err.code == 19:  # ENODEV: raced with another delete
                return False
            raise
        return True


def routes() -> list[Route]:
    """Routes of the main table (IPv4 and IPv6), default routes excluded."""
    out = []
    with _ipr("listing routes") as ipr:
        names = {int(m["index"]): str(m.get("ifname")) for m in ipr.get_links()}
        for family in (2, 10):
            for r in ipr.get_routes(family=family, table=254):
                dst, plen = r.get("dst"), int(r["dst_len"])
                if dst is None or plen == 0:
                    continue
                oif = r.get("oif")
                net = ipaddress.ip_network(f"{dst}/{plen}", strict=False)
                out.append(Route(net, names.get(int(oif)) if oif else None))
    return out


def neighbours() -> list[Neighbour]:
    """The IPv4 neighbour table (entries with a MAC)."""
    out = []
    with _ipr("listing neighbours") as ipr:
        names = {int(m["index"]): str(m.get("ifname")) for m in ipr.get_links()}
        for n in ipr.get_neighbours(family=2):
            mac = n.get("lladdr")
            if mac:
                out.append(Neighbour(str(n.get("dst")), str(mac), names.get(n["ifindex"], "")))
    return out


def stats(name: str) -> dict[str, int]:
    """``/sys/class/net/NAME/statistics`` counters."""
    base = SYS_NET / name / "statistics"
    rx = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
    keys = (*rx, "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")
    try:
        return {k: int((base / k).read_text()) for k in keys}
    except FileNotFoundError:
        raise HostCommandError(f"interface '{name}' does not exist") from None


def set_ip_forward(enabled: bool = True) -> None:
    """Turn on ``net.ipv4.ip_forward`` in this namespace (never turned off: shared)."""
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n" if enabled else "0\n")


def vhost_net_available() -> bool:
    """True when the kernel offers ``/dev/vhost-net`` (vhost_net module)."""
    return Path("/dev/vhost-net").exists()
