"""Host device discovery from sysfs: PCI functions, network interfaces, SR-IOV PFs and VFs.

Readers take a ``root`` path (``/`` on a real host, a fake tree in tests) and read only
files, never write. What is read, per PCI function ``ROOT/sys/bus/pci/devices/DDDD:BB:SS.F``:

- ``vendor``, ``device``, ``class``, ``numa_node``, the ``driver`` link, the ``iommu_group`` link
- SR-IOV physical functions: ``sriov_totalvfs``, ``sriov_numvfs`` and ``virtfnN`` links
- SR-IOV virtual functions: the ``physfn`` link
- network interfaces under ``net/IFNAME`` (``address``, ``operstate``, ``speed``)

Network interfaces without a PCI parent (``lo``, bridges, taps) come from
``ROOT/sys/class/net``. Names follow libvirt's node device names: ``pci_0000_03_00_0``,
``net_eth0_52_54_00_12_34_56``, and ``computer`` for the root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PCI_ADDR_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
ROOT_NAME = "computer"


@dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI function address: domain, bus, slot, function."""

    domain: int
    bus: int
    slot: int
    function: int

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Parse ``0000:03:00.1``.

        :raises ValueError: when the text is not a PCI address
        """
        m = PCI_ADDR_RE.match(text.strip())
        if m is None:
            raise ValueError(f"'{text}' is not a PCI address like 0000:03:00.1")
        return cls(int(m[1], 16), int(m[2], 16), int(m[3], 16), int(m[4], 16))

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function}"

    @property
    def nodedev_name(self) -> str:
        """libvirt's node device name, ``pci_0000_03_00_1``."""
        return f"pci_{self.domain:04x}_{self.bus:02x}_{self.slot:02x}_{self.function}"


@dataclass
class NetDevice:
    """A network interface as the kernel shows it in sysfs."""

    ifname: str
    mac: str | None
    state: str | None
    speed: int | None
    pci: PciAddress | None
    path: str

    @property
    def nodedev_name(self) -> str:
        """libvirt's node device name, ``net_eth0_52_54_00_12_34_56``."""
        mac = (self.mac or "00:00:00:00:00:00").replace(":", "_")
        return f"net_{self.ifname}_{mac}"


@dataclass
class PciDevice:
    """One PCI function with its driver, IOMMU group and SR-IOV relations."""

    address: PciAddress
    path: str
    vendor_id: int | None = None
    product_id: int | None = None
    class_code: int | None = None
    driver: str | None = None
    iommu_group: int | None = None
    numa_node: int | None = None
    parent: PciAddress | None = None
    sriov_totalvfs: int | None = None
    sriov_numvfs: int | None = None
    virtfns: list[PciAddress] = field(default_factory=list)
    physfn: PciAddress | None = None
    net: list[str] = field(default_factory=list)
    iommu_members: list[PciAddress] = field(default_factory=list)

    @property
    def is_pf(self) -> bool:
        """Whether this function can have SR-IOV virtual functions."""
        return self.sriov_totalvfs is not None and self.sriov_totalvfs > 0

    @property
    def is_vf(self) -> bool:
        """Whether this function is an SR-IOV virtual function."""
        return self.physfn is not None


def sysfs(root: Path) -> Path:
    """``ROOT/sys``."""
    return root / "sys"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path, base: int = 10) -> int | None:
    text = _read(path)
    if text is None or text == "":
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _link_name(path: Path) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _pci_link(path: Path) -> PciAddress | None:
    name = _link_name(path)
    if name is None:
        return None
    try:
        return PciAddress.parse(name)
    except ValueError:
        return None


def _virtfns(dev_dir: Path) -> list[PciAddress]:
    found: list[tuple[int, PciAddress]] = []
    for entry in dev_dir.glob("virtfn*"):
        suffix = entry.name[len("virtfn") :]
        addr = _pci_link(entry)
        if suffix.isdigit() and addr is not None:
            found.append((int(suffix), addr))
    return [addr for _, addr in sorted(found)]


def _parent_pci(dev_dir: Path) -> PciAddress | None:
    """The PCI function above ``dev_dir`` in the device tree (a bridge), if any."""
    try:
        real = dev_dir.resolve()
    except OSError:
        return None
    try:
        return PciAddress.parse(real.parent.name)
    except ValueError:
        return None


def read_pci_device(root: Path, address: PciAddress) -> PciDevice | None:
    """Everything sysfs says about one PCI function; ``None`` when it does not exist."""
    dev_dir = sysfs(root) / "bus" / "pci" / "devices" / str(address)
    if not dev_dir.exists():
        return None
    try:
        path = str(dev_dir.resolve().relative_to(root.resolve()))
    except (OSError, ValueError):
        path = str(dev_dir)
    dev = PciDevice(address=address, path="/" + path.lstrip("/"))
    dev.vendor_id = _read_int(dev_dir / "vendor", 16)
    dev.product_id = _read_int(dev_dir / "device", 16)
    dev.class_code = _read_int(dev_dir / "class", 16)
    dev.driver = _link_name(dev_dir / "driver")
    group = _link_name(dev_dir / "iommu_group")
    dev.iommu_group = int(group) if group is not None and group.isdigit() else None
    if dev.iommu_group is not None:
        dev.iommu_members = iommu_group_members(root, dev.iommu_group)
    numa = _read_int(dev_dir / "numa_node")
    dev.numa_node = numa if numa is not None and numa >= 0 else None
    dev.parent = _parent_pci(dev_dir)
    dev.sriov_totalvfs = _read_int(dev_dir / "sriov_totalvfs")
    dev.sriov_numvfs = _read_int(dev_dir / "sriov_numvfs")
    dev.virtfns = _virtfns(dev_dir)
    dev.physfn = _pci_link(dev_dir / "physfn")
    net_dir = dev_dir / "net"
    dev.net = sorted(p.name for p in net_dir.iterdir()) if net_dir.is_dir() else []
    return dev


def iommu_group_members(root: Path, group: int) -> list[PciAddress]:
    """The PCI functions of IOMMU group ``group`` (``/sys/kernel/iommu_groups/N/devices``)."""
    members: list[PciAddress] = []
    group_dir = sysfs(root) / "kernel" / "iommu_groups" / str(group) / "devices"
    if group_dir.is_dir():
        for entry in group_dir.iterdir():
            try:
                members.append(PciAddress.parse(entry.name))
            except ValueError:
                continue
    return sorted(members)


def pci_devices(root: Path) -> list[PciDevice]:
    """All PCI functions of the host, sorted by address."""
    base = sysfs(root) / "bus" / "pci" / "devices"
    if not base.is_dir():
        return []
    found: list[PciDevice] = []
    for entry in sorted(base.iterdir()):
        try:
            addr = PciAddress.parse(entry.name)
        except ValueError:
            continue
        dev = read_pci_device(root, addr)
        if dev is not None:
            found.append(dev)
    return found


def _nearest_pci(net_dir: Path) -> PciAddress | None:
    """The PCI function an interface sits on (possibly via a virtio bus device)."""
    try:
        real = net_dir.resolve()
    except OSError:
        return None
    for part in reversed(real.parts[:-1]):
        try:
            return PciAddress.parse(part)
        except ValueError:
            continue
    return None


def read_net_device(root: Path, ifname: str) -> NetDevice | None:
    """One network interface; ``None`` when ``ROOT/sys/class/net/IFNAME`` does not exist."""
    net_dir = sysfs(root) / "class" / "net" / ifname
    if not net_dir.exists():
        return None
    pci = _nearest_pci(net_dir)
    speed = _read_int(net_dir / "speed")
    try:
        path = "/" + str(net_dir.resolve().relative_to(root.resolve())).lstrip("/")
    except (OSError, ValueError):
        path = str(net_dir)
    return NetDevice(
        ifname=ifname,
        mac=_read(net_dir / "address"),
        state=_read(net_dir / "operstate"),
        speed=speed if speed is not None and speed > 0 else None,
        pci=pci,
        path=path,
    )


def net_devices(root: Path) -> list[NetDevice]:
    """All network interfaces of the host (as seen from the current network namespace)."""
    base = sysfs(root) / "class" / "net"
    if not base.is_dir():
        return []
    found = (read_net_device(root, entry.name) for entry in sorted(base.iterdir()))
    return [dev for dev in found if dev is not None]


def pf_of_netdev(root: Path, ifname: str) -> PciDevice | None:
    """The PCI function behind interface ``ifname`` (a PF when it has ``sriov_totalvfs``)."""
    net = read_net_device(root, ifname)
    if net is None or net.pci is None:
        return None
    return read_pci_device(root, net.pci)


def vf_index(root: Path, vf: PciAddress) -> tuple[PciAddress, int] | None:
    """The PF of virtual function ``vf`` and the VF's index on it (``virtfnN``)."""
    dev = read_pci_device(root, vf)
    if dev is None or dev.physfn is None:
        return None
    pf = read_pci_device(root, dev.physfn)
    if pf is None:
        return None
    for index, addr in enumerate(pf.virtfns):
        if addr == vf:
            return pf.address, index
    return None
