"""Host devices (``nodedev-list``, ``nodedev-dumpxml``) in libvirt's node device XML format.

Discovery is :mod:`pyvirt.host.nodedev` (sysfs); this module names the devices, filters them
by capability, arranges them as a tree under ``computer`` and renders their XML::

    <device>
      <name>pci_0000_03_00_0</name>
      <path>/sys/devices/pci0000:00/0000:00:02.0/0000:03:00.0</path>
      <parent>pci_0000_00_02_0</parent>
      <driver><name>igb</name></driver>
      <capability type='pci'>
        <class>0x020000</class>
        <domain>0</domain><bus>3</bus><slot>0</slot><function>0</function>
        <product id='0x10c9'/><vendor id='0x8086'/>
        <capability type='virt_functions' maxCount='7'><address .../></capability>
        <iommuGroup number='15'><address .../></iommuGroup>
        <numa node='0'/>
      </capability>
    </device>
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from pyvirt.errors import InvalidConfigError, NotFoundError
from pyvirt.host import nodedev as hw
from pyvirt.host.nodedev import NetDevice, PciAddress, PciDevice
from pyvirt.model.xmltree import to_string

#: ``--cap`` values: libvirt's names plus ``sriov`` (PFs and VFs)
CAPS = ("system", "pci", "net", "sriov", "virt_functions", "phys_function")


@dataclass
class NodeDevice:
    """One node device: name, parent name, capability kinds and what sysfs said."""

    name: str
    parent: str | None
    caps: tuple[str, ...]
    pci: PciDevice | None = None
    net: NetDevice | None = None
    children: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (what ``nodedev-list --json`` prints for one device)."""
        return {
            "name": self.name,
            "parent": self.parent,
            "caps": list(self.caps),
            "driver": self.pci.driver if self.pci else None,
            "iommu_group": self.pci.iommu_group if self.pci else None,
            "vfs": [str(v) for v in self.pci.virtfns] if self.pci else [],
            "physfn": str(self.pci.physfn) if self.pci and self.pci.physfn else None,
            "interface": self.net.ifname if self.net else None,
        }


def default_root() -> Path:
    """Where sysfs is read from: ``/``, or ``$PYVIRT_HOST_ROOT`` (a copied or fake tree)."""
    return Path(os.environ.get("PYVIRT_HOST_ROOT") or "/")


class NodeDeviceManager:
    """Host devices seen through sysfs under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_root()

    def devices(self) -> dict[str, NodeDevice]:
        """Every device by name (``computer`` first), with parent/child links."""
        out: dict[str, NodeDevice] = {hw.ROOT_NAME: NodeDevice(hw.ROOT_NAME, None, ("system",))}
        pcis = hw.pci_devices(self.root)
        known = {p.address for p in pcis}
        for p in pcis:
            caps = ["pci"]
            if p.is_pf:
                caps.append("virt_functions")
            if p.is_vf:
                caps.append("phys_function")
            parent = p.parent.nodedev_name if p.parent in known and p.parent else hw.ROOT_NAME
            out[p.address.nodedev_name] = NodeDevice(
                p.address.nodedev_name, parent, tuple(caps), pci=p
            )
        for n in hw.net_devices(self.root):
            parent = n.pci.nodedev_name if n.pci is not None and n.pci in known else hw.ROOT_NAME
            out[n.nodedev_name] = NodeDevice(n.nodedev_name, parent, ("net",), net=n)
        for dev in out.values():
            if dev.parent is not None and dev.parent in out:
                out[dev.parent].children.append(dev.name)
        return out

    def list(self, caps: tuple[str, ...] = ()) -> list[NodeDevice]:
        """Devices having any of ``caps`` (all when empty), sorted by name.

        :raises InvalidConfigError: for an unknown capability name
        """
        wanted: set[str] = set()
        for cap in caps:
            for part in cap.split(","):
                part = part.strip()
                if part not in CAPS:
                    raise InvalidConfigError(
                        f"node device capability '{part}' is not known",
                        hint=f"use one of: {', '.join(CAPS)}",
                    )
                wanted.update(("virt_functions", "phys_function") if part == "sriov" else (part,))
        found = self.devices().values()
        return sorted(
            (d for d in found if not wanted or wanted.intersection(d.caps)), key=lambda d: d.name
        )

    def get(self, name: str) -> NodeDevice:
        """One device by name.

        :raises NotFoundError: no such device
        """
        dev = self.devices().get(name)
        if dev is None:
            raise NotFoundError(
                f"node device '{name}' not found", hint="list devices with 'nodedev-list'"
            )
        return dev

    def tree(self) -> str:
        """The device tree as ``nodedev-list --tree`` prints it."""
        devs = self.devices()
        lines: list[str] = []

        def walk(name: str, prefix: str) -> None:
            kids = sorted(devs[name].children)
            if kids:
                lines.append(f"{prefix}  |")
            for i, kid in enumerate(kids):
                last = i == len(kids) - 1
                lines.append(f"{prefix}  +- {kid}")
                walk(kid, prefix + ("     " if last else "  |  "))

        lines.append(hw.ROOT_NAME)
        walk(hw.ROOT_NAME, "")
        return "\n".join(lines)

    def dumpxml(self, name: str) -> str:
        """The device's XML, like ``virsh nodedev-dumpxml``."""
        return to_xml(self.get(name))


def _address(parent: etree._Element, addr: PciAddress) -> None:
    etree.SubElement(
        parent,
        "address",
        domain=f"0x{addr.domain:04x}",
        bus=f"0x{addr.bus:02x}",
        slot=f"0x{addr.slot:02x}",
        function=f"0x{addr.function:x}",
    )


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = text
    return el


def _pci_capability(root: etree._Element, p: PciDevice) -> None:
    cap = etree.SubElement(root, "capability", type="pci")
    if p.class_code is not None:
        _text(cap, "class", f"0x{p.class_code:06x}")
    for tag, value in (
        ("domain", p.address.domain),
        ("bus", p.address.bus),
        ("slot", p.address.slot),
        ("function", p.address.function),
    ):
        _text(cap, tag, str(value))
    if p.product_id is not None:
        etree.SubElement(cap, "product", id=f"0x{p.product_id:04x}")
    if p.vendor_id is not None:
        etree.SubElement(cap, "vendor", id=f"0x{p.vendor_id:04x}")
    if p.physfn is not None:
        _address(etree.SubElement(cap, "capability", type="phys_function"), p.physfn)
    if p.is_pf:
        vfs = etree.SubElement(
            cap, "capability", type="virt_functions", maxCount=str(p.sriov_totalvfs)
        )
        for vf in p.virtfns:
            _address(vfs, vf)
    if p.iommu_group is not None:
        group = etree.SubElement(cap, "iommuGroup", number=str(p.iommu_group))
        for member in p.iommu_members or [p.address]:
            _address(group, member)
    if p.numa_node is not None:
        etree.SubElement(cap, "numa", node=str(p.numa_node))


def _net_capability(root: etree._Element, n: NetDevice) -> None:
    cap = etree.SubElement(root, "capability", type="net")
    _text(cap, "interface", n.ifname)
    if n.mac:
        _text(cap, "address", n.mac)
    link = etree.SubElement(cap, "link", state=n.state or "unknown")
    if n.speed is not None:
        link.set("speed", str(n.speed))
    etree.SubElement(cap, "capability", type="80203")


def to_xml(dev: NodeDevice) -> str:
    """libvirt's ``<device>`` XML of one node device."""
    root = etree.Element("device")
    _text(root, "name", dev.name)
    path = dev.pci.path if dev.pci else dev.net.path if dev.net else None
    if path:
        _text(root, "path", path)
    if dev.parent:
        _text(root, "parent", dev.parent)
    if dev.pci is not None:
        if dev.pci.driver:
            _text(etree.SubElement(root, "driver"), "name", dev.pci.driver)
        _pci_capability(root, dev.pci)
    elif dev.net is not None:
        _net_capability(root, dev.net)
    else:
        etree.SubElement(root, "capability", type="system")
    return to_string(root) + "\n"
