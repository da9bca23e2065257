"""SR-IOV virtual function pools: which VFs a hostdev network owns and who uses each one.

A network ``<forward mode='hostdev' managed='yes'><pf dev='eth0'/></forward>`` owns every VF of
the PF behind ``eth0`` (its ``virtfnN`` links in sysfs); a network with ``<forward
mode='hostdev'><address type='pci' .../>...</forward>`` owns exactly the listed functions.

Allocations are files ``RUN/sriov/DDDD:BB:SS.F.json`` (``{"domain", "network", "nic",
"mac"}``) written under ``RUN/locks/sriov.lock``. A record whose domain is neither running nor
being started (its domain lock is free) is stale and reclaimed, so a crash never leaks a VF.

Host side of a VF (all real sysfs/netlink operations, run only once VFIO was found usable):
:func:`bind_vfio` moves a function to ``vfio-pci`` through ``driver_override`` and
:func:`unbind_vfio` gives it back to its previous driver; :func:`set_vf_mac_vlan` programs
the VF's MAC and VLAN through its PF (netlink ``IFLA_VF_MAC``/``IFLA_VF_VLAN``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyvirt.errors import HostCommandError, InvalidConfigError, OperationFailedError
from pyvirt.host import nodedev
from pyvirt.host.nodedev import PciAddress
from pyvirt.state.atomic import atomic_write
from pyvirt.state.locks import file_lock

VFIO_DEVICE = Path("/dev/vfio/vfio")


@dataclass(frozen=True)
class Allocation:
    """One VF given to one NIC of one domain."""

    address: str
    domain: str
    network: str
    nic: int
    mac: str | None = None


def pool_addresses(
    root: Path, pf_devs: Iterable[str], addresses: Iterable[PciAddress], *, network: str
) -> list[PciAddress]:
    """The VFs a hostdev network may hand out, in order.

    :raises InvalidConfigError: a ``<pf dev>`` names no interface, or one that is not an
        SR-IOV physical function, or a PF without enabled VFs
    """
    found: list[PciAddress] = list(addresses)
    for dev in pf_devs:
        pf = nodedev.pf_of_netdev(root, dev)
        if pf is None:
            raise InvalidConfigError(
                f"network '{network}': <pf dev='{dev}'> is not a PCI network interface",
                hint="list SR-IOV capable devices with 'nodedev-list --cap sriov'",
            )
        if not pf.is_pf:
            raise InvalidConfigError(
                f"network '{network}': interface '{dev}' ({pf.address}) is not an SR-IOV "
                "physical function (no sriov_totalvfs)",
                hint="list SR-IOV capable devices with 'nodedev-list --cap sriov'",
            )
        if not pf.virtfns:
            raise InvalidConfigError(
                f"network '{network}': physical function '{dev}' has no virtual functions "
                "enabled (sriov_numvfs is 0)",
                hint=f"enable them: echo N > /sys/bus/pci/devices/{pf.address}/sriov_numvfs",
            )
        found.extend(pf.virtfns)
    return list(dict.fromkeys(found))


class VfPool:
    """Allocation records of VFs under one state root (``RUN/sriov``)."""

    def __init__(
        self, run_dir: Path, lock_dir: Path, *, busy: Callable[[str], bool] | None = None
    ) -> None:
        """:param busy: tells whether a domain is running or being started (its records are
        kept); ``None`` treats every recorded domain as busy."""
        self.run_dir = run_dir
        self.lock_dir = lock_dir
        self._busy = busy

    def _path(self, address: PciAddress | str) -> Path:
        return self.run_dir / f"{address}.json"

    def _read(self, path: Path) -> Allocation | None:
        try:
            data = json.loads(path.read_text())
            return Allocation(**data)
        except (OSError, ValueError, TypeError):
            return None

    def allocations(self) -> list[Allocation]:
        """Every allocation record, stale or not."""
        if not self.run_dir.is_dir():
            return []
        found = (self._read(p) for p in sorted(self.run_dir.glob("*.json")))
        return [a for a in found if a is not None]

    def owner(self, address: PciAddress) -> Allocation | None:
        """Who holds ``address`` (``None`` when it is free)."""
        return self._read(self._path(address))

    def allocate(
        self,
        candidates: list[PciAddress],
        *,
        domain: str,
        network: str,
        nic: int,
        mac: str | None = None,
    ) -> PciAddress:
        """Give the first free VF of ``candidates`` to NIC ``nic`` of ``domain``.

        A VF already recorded for the same domain and NIC is returned again (idempotent).

        :raises OperationFailedError: every VF of the pool is in use
        """
        with file_lock(self.lock_dir / "sriov.lock", what="the SR-IOV VF pool"):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            free: PciAddress | None = None
            for addr in candidates:
                held = self.owner(addr)
                if held is not None and held.domain == domain and held.nic == nic:
                    return addr
                if held is not None and held.domain != domain and self._is_busy(held.domain):
                    continue
                if held is not None and held.domain == domain:
                    continue  # another NIC of the same domain
                if free is None:
                    free = addr
            if free is None:
                users = sorted({a.domain for a in map(self.owner, candidates) if a is not None})
                raise OperationFailedError(
                    f"network '{network}' has no free virtual function: all {len(candidates)} "
                    f"are in use (by {', '.join(repr(u) for u in users) or 'nobody'})",
                    hint="stop a domain using the network or enable more VFs on its PF",
                )
            record = Allocation(str(free), domain, network, nic, mac)
            atomic_write(self._path(free), json.dumps(asdict(record)).encode(), sync=False)
            return free

    def release(self, domain: str, addresses: Iterable[str] | None = None) -> list[str]:
        """Free the VFs held by ``domain`` (only ``addresses`` when given); returns them."""
        wanted = set(addresses) if addresses is not None else None
        freed: list[str] = []
        with file_lock(self.lock_dir / "sriov.lock", what="the SR-IOV VF pool"):
            for alloc in self.allocations():
                if alloc.domain != domain:
                    continue
                if wanted is not None and alloc.address not in wanted:
                    continue
                self._path(alloc.address).unlink(missing_ok=True)
                freed.append(alloc.address)
        return freed

    def _is_busy(self, domain: str) -> bool:
        return True if self._busy is None else self._busy(domain)


# -- host side ----------------------------------------------------------------------------
def vfio_problem(root: Path = Path("/")) -> str | None:
    """Why VFIO passthrough cannot work on this host, or ``None`` when it can."""
    if not (root / str(VFIO_DEVICE).lstrip("/")).exists():
        return (
            "VFIO is not available: /dev/vfio/vfio does not exist "
            "(kernel without CONFIG_VFIO / CONFIG_VFIO_PCI, or module vfio-pci not loaded)"
        )
    if not (nodedev.sysfs(root) / "bus" / "pci" / "drivers" / "vfio-pci").is_dir():
        return "VFIO is not available: driver vfio-pci is not loaded (CONFIG_VFIO_PCI)"
    return None


def iommu_problem(root: Path, address: PciAddress) -> str | None:
    """Why ``address`` cannot be assigned (no IOMMU group), or ``None``."""
    dev = nodedev.read_pci_device(root, address)
    if dev is None:
        return f"PCI device {address} does not exist on this host"
    if dev.iommu_group is None:
        return (
            f"PCI device {address} is in no IOMMU group: the IOMMU is off "
            "(boot with intel_iommu=on or amd_iommu=on; kernel CONFIG_IOMMU_SUPPORT)"
        )
    return None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:
        raise HostCommandError(f"writing '{text}' to {path} failed: {err.strerror}") from err


def bind_vfio(root: Path, address: PciAddress) -> str | None:
    """Detach ``address`` from its host driver and bind it to ``vfio-pci``.

    :returns: the driver it had before (to give it back in :func:`unbind_vfio`)
    """
    dev_dir = nodedev.sysfs(root) / "bus" / "pci" / "devices" / str(address)
    dev = nodedev.read_pci_device(root, address)
    previous = dev.driver if dev is not None else None
    if previous == "vfio-pci":
        return previous
    _write(dev_dir / "driver_override", "vfio-pci")
    if previous is not None:
        _write(dev_dir / "driver" / "unbind", str(address))
    _write(nodedev.sysfs(root) / "bus" / "pci" / "drivers_probe", str(address))
    return previous


def unbind_vfio(root: Path, address: PciAddress, previous: str | None) -> None:
    """Give ``address`` back to ``previous`` (its driver before :func:`bind_vfio`)."""
    dev_dir = nodedev.sysfs(root) / "bus" / "pci" / "devices" / str(address)
    if not dev_dir.exists() or previous == "vfio-pci":
        return
    if os.path.basename(os.path.realpath(dev_dir / "driver")) == "vfio-pci":
        _write(dev_dir / "driver" / "unbind", str(address))
    _write(dev_dir / "driver_override", "\n")
    if previous is not None:
        _write(nodedev.sysfs(root) / "bus" / "pci" / "drivers_probe", str(address))


def set_vf_mac_vlan(pf_ifname: str, vf: int, mac: str | None, vlan: int | None) -> None:
    """Program VF ``vf`` of ``pf_ifname``: its MAC and VLAN (0 clears the VLAN).

    :raises HostCommandError: the PF driver refused
    """
    import importlib

    # pyroute2 is otherwise imported only by pyvirt.network.netlink; loaded lazily (untyped)
    pyroute2: Any = importlib.import_module("pyroute2")
    NetlinkError: Any = importlib.import_module("pyroute2.netlink.exceptions").NetlinkError
    settings: dict[str, object] = {"vf": vf}
    if mac is not None:
        settings["mac"] = mac
    if vlan is not None:
        settings["vlan"] = vlan
    try:
        with pyroute2.IPRoute() as ipr:
            found = ipr.link_lookup(ifname=pf_ifname)
            if not found:
                raise HostCommandError(f"physical function '{pf_ifname}' not found")
            ipr.link("set", index=found[0], vf=settings)
    except NetlinkError as err:
        raise HostCommandError(
            f"setting MAC/VLAN of VF {vf} on '{pf_ifname}' failed: {err.args[-1]}"
        ) from err
