"""Node device discovery on a fake sysfs tree: a PF with 4 VFs, VF->PF links, IOMMU groups."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from pyvirt.errors import InvalidConfigError, NotFoundError
from pyvirt.host import nodedev
from pyvirt.host.nodedev import PciAddress
from pyvirt.service.host.nodedev import NodeDeviceManager

BRIDGE = "0000:00:02.0"
PF = "0000:03:00.0"
VFS = ("0000:03:10.0", "0000:03:10.2", "0000:03:10.4", "0000:03:10.6")
PF_MAC = "a0:36:9f:00:00:01"


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


def _files(directory: Path, **values: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(value + "\n")


def _pci(sys: Path, parent: Path, addr: str, driver: str, group: int, **values: str) -> Path:
    dev = parent / addr
    _files(dev, numa_node="0", **values)
    _link(sys / "bus" / "pci" / "devices" / addr, dev)
    drv = sys / "bus" / "pci" / "drivers" / driver
    drv.mkdir(parents=True, exist_ok=True)
    _link(dev / "driver", drv)
    grp = sys / "kernel" / "iommu_groups" / str(group)
    _link(dev / "iommu_group", grp)
    _link(grp / "devices" / addr, dev)
    return dev


def _net(sys: Path, dev: Path, ifname: str, mac: str) -> None:
    net = dev / "net" / ifname
    _files(net, address=mac, operstate="up", speed="10000")
    _link(sys / "class" / "net" / ifname, net)


def make_sysfs(root: Path, *, numvfs: int = 4) -> Path:
    """A fake ``root/sys``: bridge 00:02.0 -> PF 03:00.0 (eth0, 7 VFs max) -> ``numvfs`` VFs."""
    sys = root / "sys"
    top = sys / "devices" / "pci0000:00"
    bridge = _pci(sys, top, BRIDGE, "pcieport", 1, vendor="0x8086", device="0x3c04",
                  **{"class": "0x060400"})  # fmt: skip
    pf = _pci(sys, bridge, PF, "igb", 15, vendor="0x8086", device="0x10c9",
              sriov_totalvfs="7", sriov_numvfs=str(numvfs), **{"class": "0x020000"})  # fmt: skip
    _net(sys, pf, "eth0", PF_MAC)
    for i, addr in enumerate(VFS[:numvfs]):
        vf = _pci(sys, bridge, addr, "igbvf", 20 + i, vendor="0x8086", device="0x10ca",
                  **{"class": "0x020000"})  # fmt: skip
        _link(vf / "physfn", pf)
        _link(pf / f"virtfn{i}", vf)
        _net(sys, vf, f"eth{i + 1}", f"52:54:00:00:00:0{i + 1}")
    lo = sys / "devices" / "virtual" / "net" / "lo"
    _files(lo, address="00:00:00:00:00:00", operstate="unknown")
    _link(sys / "class" / "net" / "lo", lo)
    return root


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path)


def test_pci_address_parse_and_names() -> None:
    addr = PciAddress.parse("0000:03:10.2")
    assert (addr.domain, addr.bus, addr.slot, addr.function) == (0, 3, 0x10, 2)
    assert str(addr) == "0000:03:10.2" and addr.nodedev_name == "pci_0000_03_10_2"
    with pytest.raises(ValueError, match="not a PCI address"):
        PciAddress.parse("03:10.2")


def test_pf_with_four_vfs(host: Path) -> None:
    pf = nodedev.read_pci_device(host, PciAddress.parse(PF))
    assert pf is not None and pf.is_pf and not pf.is_vf
    assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (7, 4)
    assert [str(v) for v in pf.virtfns] == list(VFS)
    assert pf.driver == "igb" and pf.iommu_group == 15 and pf.net == ["eth0"]
    assert (pf.vendor_id, pf.product_id, pf.class_code) == (0x8086, 0x10C9, 0x020000)
    assert pf.parent == PciAddress.parse(BRIDGE)
    assert pf.path == "/sys/devices/pci0000:00/0000:00:02.0/0000:03:00.0"


def test_vf_links_back_to_pf(host: Path) -> None:
    vf = nodedev.read_pci_device(host, PciAddress.parse(VFS[2]))
    assert vf is not None and vf.is_vf and not vf.is_pf
    assert vf.physfn == PciAddress.parse(PF)
    assert vf.iommu_group == 22 and vf.iommu_members == [PciAddress.parse(VFS[2])]
    assert nodedev.vf_index(host, PciAddress.parse(VFS[2])) == (PciAddress.parse(PF), 2)
    assert nodedev.vf_index(host, PciAddress.parse(PF)) is None
    pf = nodedev.pf_of_netdev(host, "eth0")
    assert pf is not None and pf.address == PciAddress.parse(PF)
    assert nodedev.pf_of_netdev(host, "lo") is None


def test_net_devices(host: Path) -> None:
    nets = {n.ifname: n for n in nodedev.net_devices(host)}
    assert set(nets) == {"eth0", "eth1", "eth2", "eth3", "eth4", "lo"}
    assert nets["eth0"].pci == PciAddress.parse(PF) and nets["eth0"].speed == 10000
    assert nets["lo"].pci is None
    assert nets["eth0"].nodedev_name == "net_eth0_a0_36_9f_00_00_01"


def test_list_by_capability(host: Path) -> None:
    mgr = NodeDeviceManager(host)
    names = [d.name for d in mgr.list(("sriov",))]
    assert names == ["pci_0000_03_00_0"] + [PciAddress.parse(v).nodedev_name for v in VFS]
    assert [d.name for d in mgr.list(("virt_functions",))] == ["pci_0000_03_00_0"]
    assert len(mgr.list(("pci",))) == 6
    assert len(mgr.list(("net",))) == 6
    assert [d.name for d in mgr.list(("system",))] == ["computer"]
    assert len(mgr.list()) == 13
    with pytest.raises(InvalidConfigError, match="capability 'usb' is not known"):
        mgr.list(("usb",))


def test_tree(host: Path) -> None:
    text = NodeDeviceManager(host).tree()
    lines = text.splitlines()
    assert lines[0] == "computer"
    bridge = next(i for i, line in enumerate(lines) if line.endswith("pci_0000_00_02_0"))
    pf = next(i for i, line in enumerate(lines) if line.endswith("pci_0000_03_00_0"))
    eth0 = next(i for i, line in enumerate(lines) if "net_eth0_" in line)
    indent = [len(lines[i]) - len(lines[i].lstrip(" |+-")) for i in (bridge, pf, eth0)]
    assert bridge < pf < eth0 and indent[0] < indent[1] < indent[2]


def test_dumpxml_pf_and_vf(host: Path) -> None:
    mgr = NodeDeviceManager(host)
    pf = etree.fromstring(mgr.dumpxml("pci_0000_03_00_0"))
    assert pf.findtext("name") == "pci_0000_03_00_0"
    assert pf.findtext("parent") == "pci_0000_00_02_0"
    assert pf.findtext("driver/name") == "igb"
    cap = pf.find("capability[@type='pci']")
    assert cap is not None and cap.findtext("class") == "0x020000"
    assert [cap.findtext(t) for t in ("domain", "bus", "slot", "function")] == ["0", "3", "0", "0"]
    vfs = cap.find("capability[@type='virt_functions']")
    assert vfs is not None and vfs.get("maxCount") == "7"
    assert [a.get("slot") + "." + a.get("function") for a in vfs.findall("address")] == [
        "0x10.0x0", "0x10.0x2", "0x10.0x4", "0x10.0x6",
    ]  # fmt: skip
    assert cap.find("iommuGroup").get("number") == "15"  # type: ignore[union-attr]
    vf = etree.fromstring(mgr.dumpxml("pci_0000_03_10_4"))
    phys = vf.find("capability/capability[@type='phys_function']/address")
    assert phys is not None and (phys.get("bus"), phys.get("slot")) == ("0x03", "0x00")
    net = etree.fromstring(mgr.dumpxml("net_eth0_a0_36_9f_00_00_01"))
    assert net.findtext("parent") == "pci_0000_03_00_0"
    assert net.findtext("capability/interface") == "eth0"
    assert net.find("capability/link").get("speed") == "10000"  # type: ignore[union-attr]
    with pytest.raises(NotFoundError, match="node device 'pci_9' not found"):
        mgr.dumpxml("pci_9")


def test_missing_sysfs_is_empty(tmp_path: Path) -> None:
    assert nodedev.pci_devices(tmp_path) == [] and nodedev.net_devices(tmp_path) == []
    assert [d.name for d in NodeDeviceManager(tmp_path).list()] == ["computer"]
