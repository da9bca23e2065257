"""SR-IOV through the real CLI: nodedev commands on a fake sysfs, start refused without VFIO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import Pyvirt
from tests.unit.host.test_nodedev import VFS, make_sysfs

VF_DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>
      </source>
    </interface>
  </devices>
</domain>
"""


def test_nodedev_cli_on_fake_sysfs(pyvirt: Pyvirt, tmp_path: Path) -> None:
    pyvirt.env["PYVIRT_HOST_ROOT"] = str(make_sysfs(tmp_path / "host"))
    out = pyvirt("nodedev-list", "--cap", "sriov").out.split()
    assert out == ["pci_0000_03_00_0", "pci_0000_03_10_0", "pci_0000_03_10_2",
                   "pci_0000_03_10_4", "pci_0000_03_10_6"]  # fmt: skip
    xml = etree.fromstring(pyvirt("nodedev-dumpxml", "pci_0000_03_00_0").out.encode())
    vfs = xml.findall("capability/capability[@type='virt_functions']/address")
    assert len(vfs) == 4
    tree = pyvirt("nodedev-list", "--tree").out
    assert tree.startswith("computer\n") and "+- pci_0000_03_10_6" in tree
    bad = pyvirt("nodedev-dumpxml", "pci_0000_09_00_0", check=False)
    assert bad.rc == 1 and "error: node device 'pci_0000_09_00_0' not found" in bad.err


def test_real_host_nodedev_list(pyvirt: Pyvirt) -> None:
    names = pyvirt("nodedev-list", "--cap", "pci").out.split()
    expected = sorted(os.listdir("/sys/bus/pci/devices")) if os.path.isdir("/sys/bus/pci") else []
    assert names == ["pci_" + a.replace(":", "_").replace(".", "_") for a in expected]


@pytest.mark.skipif(os.path.exists("/dev/vfio/vfio"), reason="this host has VFIO")
def test_start_refused_without_vfio(pyvirt: Pyvirt) -> None:
    path = pyvirt.root / "vf.xml"
    path.write_text(VF_DOMAIN.format(name="vf1"))
    pyvirt("define", str(path))
    native = pyvirt("domxml-to-native", "qemu-argv", str(path)).out
    assert '"driver":"vfio-pci","host":"0000:03:10.2"' in native
    res = pyvirt("start", "vf1", check=False)
    assert res.rc == 1
    assert "error: domain 'vf1' needs PCI passthrough: VFIO is not available" in res.err
    assert "/dev/vfio/vfio" in res.err and "CONFIG_VFIO_PCI" in res.err
    assert "hint:" in res.err and "Traceback" not in res.err
    assert "shut off" in pyvirt("domstate", "vf1").out
    assert not (pyvirt.root / "run" / "sriov").exists() or not any(
        (pyvirt.root / "run" / "sriov").iterdir()
    )
    assert VFS[1] == "0000:03:10.2"


def test_hostdev_network_start_checks_pool(state_root: Path, tmp_path: Path) -> None:
    from pyvirt.errors import InvalidConfigError
    from pyvirt.model.network import Network
    from pyvirt.network.backends.hostdev import pool_of
    from pyvirt.service.connection import open_connection

    nets = open_connection(f"pyvirt:///embed?root={state_root}").networks
    nets.define_xml(
        "<network><name>vfs</name><forward mode='hostdev' managed='yes'>"
        "<pf dev='lo'/></forward></network>"
    )
    with pytest.raises(InvalidConfigError, match="<pf dev='lo'> is not a PCI network interface"):
        nets.start("vfs")
    assert not nets.is_active("vfs")
    fake = make_sysfs(tmp_path / "host")
    net = Network.from_xml(
        "<network><name>v</name><forward mode='hostdev'><pf dev='eth0'/></forward></network>"
    )
    assert [str(a) for a in pool_of(net, fake)] == list(VFS)


@pytest.mark.skipif(os.path.exists("/dev/vfio/vfio"), reason="this host has VFIO")
def test_nic_on_hostdev_network_refused_without_vfio(pyvirt: Pyvirt) -> None:
    net = pyvirt.root / "vfs.xml"
    net.write_text(
        "<network><name>vfs</name><forward mode='hostdev' managed='yes'>"
        "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>"
        "</forward></network>"
    )
    pyvirt("net-define", str(net))
    dom = pyvirt.root / "d.xml"
    dom.write_text(
        VF_DOMAIN.format(name="vf2")
        .replace("<interface type='hostdev' managed='yes'>", "<interface type='network'>")
        .replace(
            "<source>\n        <address type='pci' domain='0x0000' bus='0x03' slot='0x10' "
            "function='0x2'/>\n      </source>",
            "<source network='vfs'/>",
        )
    )
    assert "<source network='vfs'/>" in dom.read_text()
    pyvirt("define", str(dom))
    res = pyvirt("start", "vf2", check=False)
    assert res.rc == 1 and "error: domain 'vf2' needs PCI passthrough" in res.err
    assert "CONFIG_VFIO_PCI" in res.err
    assert not list((pyvirt.root / "run").glob("sriov/*.json"))
