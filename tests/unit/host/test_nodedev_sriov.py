"""SR-IOV: VF pools of hostdev networks, allocation/release, exhaustion, and the QEMU args."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from tests.unit.host.test_nodedev import PF, VFS, make_sysfs

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError
from pyvirt.host.nodedev import PciAddress
from pyvirt.model.domain import Domain
from pyvirt.network import sriov
from pyvirt.service.domain.manager import DomainManager
from pyvirt.service.nic import hostdev
from pyvirt.state.paths import StatePaths

HOSTDEV_NET = """<network>
  <name>sriov-net</name>
  <uuid>4a9b2c3d-1e2f-4a5b-8c7d-0e1f2a3b4c5d</uuid>
  <forward mode='hostdev' managed='yes'>
    <pf dev='eth0'/>
  </forward>
</network>
"""

ADDRESS_NET = """<network>
  <name>vf-list</name>
  <uuid>5a9b2c3d-1e2f-4a5b-8c7d-0e1f2a3b4c5d</uuid>
  <forward mode='hostdev' managed='yes'>
    <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>
    <address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x4'/>
  </forward>
</network>
"""


def domain(name: str, nics: str) -> Domain:
    return Domain.from_xml(
        f"""<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>
        <devices>{nics}</devices></domain>"""
    )


NET_NIC = "<interface type='network'><mac address='52:54:00:aa:bb:{n:02x}'/>" \
    "<source network='sriov-net'/><vlan><tag id='42'/></vlan></interface>"  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "host")


@pytest.fixture
def pool(tmp_path: Path) -> sriov.VfPool:
    return sriov.VfPool(tmp_path / "run" / "sriov", tmp_path / "locks", busy=lambda d: True)


def test_pool_of_pf(root: Path) -> None:
    vfs = sriov.pool_addresses(root, ["eth0"], [], network="n")
    assert [str(v) for v in vfs] == list(VFS)
    with pytest.raises(InvalidConfigError, match="<pf dev='eth9'> is not a PCI network"):
        sriov.pool_addresses(root, ["eth9"], [], network="n")
    with pytest.raises(InvalidConfigError, match=r"'eth1' .* is not an SR-IOV physical function"):
        sriov.pool_addresses(root, ["eth1"], [], network="n")


def test_pf_without_vfs(tmp_path: Path) -> None:
    root = make_sysfs(tmp_path, numvfs=0)
    with pytest.raises(InvalidConfigError, match="has no virtual functions enabled") as err:
        sriov.pool_addresses(root, ["eth0"], [], network="n")
    assert err.value.hint is not None and f"{PF}/sriov_numvfs" in err.value.hint


def test_allocate_release_exhaust(root: Path, pool: sriov.VfPool) -> None:
    vfs = sriov.pool_addresses(root, ["eth0"], [], network="n")
    got = [pool.allocate(vfs, domain=f"vm{i}", network="n", nic=0) for i in range(4)]
    assert got == vfs  # first free, in order
    assert pool.allocate(vfs, domain="vm1", network="n", nic=0) == vfs[1]  # idempotent
    with pytest.raises(OperationFailedError, match="no free virtual function: all 4 are in use"):
        pool.allocate(vfs, domain="vm9", network="n", nic=0)
    assert pool.release("vm2") == [str(vfs[2])]
    assert pool.owner(vfs[2]) is None
    assert pool.allocate(vfs, domain="vm9", network="n", nic=0) == vfs[2]
    assert {a.domain for a in pool.allocations()} == {"vm0", "vm1", "vm3", "vm9"}
    # a second NIC of the same domain gets its own VF
    pool.release("vm3")
    assert pool.allocate(vfs, domain="vm9", network="n", nic=1) == vfs[3]


def test_stale_records_are_reclaimed(root: Path, tmp_path: Path) -> None:
    running = {"alive"}
    pool = sriov.VfPool(tmp_path / "r", tmp_path / "l", busy=lambda d: d in running)
    vfs = sriov.pool_addresses(root, [], [PciAddress.parse(VFS[0])], network="n")
    pool.allocate(vfs, domain="crashed", network="n", nic=0)
    assert pool.allocate(vfs, domain="alive", network="n", nic=0) == vfs[0]
    with pytest.raises(OperationFailedError, match=r"in use \(by 'alive'\)"):
        pool.allocate(vfs, domain="other", network="n", nic=0)


def _canon(xml: str) -> bytes:
    return etree.tostring(etree.fromstring(xml.encode()), method="c14n")


def test_hostdev_network_round_trip() -> None:
    network = pytest.importorskip("pyvirt.model.network")
    for xml in (HOSTDEV_NET, ADDRESS_NET):
        net = network.Network.from_xml(xml)
        assert _canon(net.to_xml()) == _canon(xml)
        assert net.forward_mode == "hostdev" and net.forward_managed == "yes"
    net = network.Network.from_xml(HOSTDEV_NET)
    assert [pf.dev for pf in net.forward_pfs] == ["eth0"]
    assert len(network.Network.from_xml(ADDRESS_NET).forward_addresses) == 2


def _mgr(tmp_path: Path) -> DomainManager:
    return DomainManager(StatePaths.from_root(tmp_path / "state"))


def test_network_nics_get_vfs_and_vfio_args(root: Path, tmp_path: Path) -> None:
    network = pytest.importorskip("pyvirt.model.network")
    nets = {"sriov-net": network.Network.from_xml(HOSTDEV_NET)}
    mgr = _mgr(tmp_path)
    dom = domain("vm1", NET_NIC.format(n=1) + NET_NIC.format(n=2))
    entries = hostdev.allocate_vfs(mgr, dom, root=root, networks=nets.get)
    assert [e["address"] for e in entries] == [VFS[0], VFS[1]]
    assert [(e["pf"], e["vf"], e["vlan"]) for e in entries] == [("eth0", 0, 42), ("eth0", 1, 42)]
    assert entries[0]["mac"] == "52:54:00:aa:bb:01" and entries[0]["managed"] is True
    nic = dom.devices.interfaces[0]
    assert nic.type == "hostdev" and nic.source_network is None and nic.managed
    src = etree.fromstring(dom.to_xml().encode()).find("devices/interface/source/address")
    assert src is not None and (src.get("bus"), src.get("slot"), src.get("function")) == (
        "0x03", "0x10", "0x0",
    )  # fmt: skip
    argv = " ".join(build_argv(dom, ArgvContext.for_domain("vm1")))
    assert '"driver":"vfio-pci","host":"0000:03:10.0"' in argv
    assert '"driver":"vfio-pci","host":"0000:03:10.2"' in argv
    assert "-netdev" not in argv
    # allocations are recorded; a second domain gets the next VFs, then the pool runs dry
    pool = hostdev.vf_pool(mgr)
    assert {a.address for a in pool.allocations()} == {VFS[0], VFS[1]}
    dom2 = domain("vm2", NET_NIC.format(n=3) + NET_NIC.format(n=4))
    with mgr.locked("vm1"), mgr.locked("vm2"):  # being started: their VFs are not stale
        hostdev.allocate_vfs(mgr, dom2, root=root, networks=nets.get)
        assert {a.address for a in pool.allocations() if a.domain == "vm2"} == {VFS[2], VFS[3]}
        with pytest.raises(OperationFailedError, match="network 'sriov-net' has no free"):
            hostdev.allocate_vfs(mgr, domain("vm3", NET_NIC.format(n=5)), root=root,
                                 networks=nets.get)  # fmt: skip
    # vm1 never ran and nobody holds its lock: its records are stale and reclaimed
    assert hostdev.allocate_vfs(mgr, domain("vm3", NET_NIC.format(n=5)), root=root,
                                networks=nets.get)[0]["address"] == VFS[0]  # fmt: skip


def test_static_hostdev_interface_args() -> None:
    dom = domain(
        "vm3",
        "<interface type='hostdev' managed='yes'><mac address='52:54:00:01:02:03'/>"
        "<source><address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x6'/>"
        "</source></interface>"
        "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0x03' slot='0x10' function='0x4'/></source></hostdev>",
    )
    argv = build_argv(dom, ArgvContext.for_domain("vm3"))
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device" and "vfio" in argv[i + 1]]
    assert len(devices) == 2
    assert '"host":"0000:03:10.6"' in devices[0] and '"host":"0000:03:10.4"' in devices[1]


def test_refusal_names_vfio(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError) as err:
        hostdev.refuse_without_vfio("vm1", tmp_path)
    assert "domain 'vm1' needs PCI passthrough" in err.value.message
    assert "/dev/vfio/vfio" in err.value.message and "CONFIG_VFIO_PCI" in err.value.message
    (tmp_path / "dev" / "vfio").mkdir(parents=True)
    (tmp_path / "dev" / "vfio" / "vfio").write_text("")
    (tmp_path / "sys" / "bus" / "pci" / "drivers" / "vfio-pci").mkdir(parents=True)
    hostdev.refuse_without_vfio("vm1", tmp_path)  # no error once both exist


def test_iommu_problem(root: Path, tmp_path: Path) -> None:
    assert sriov.iommu_problem(root, PciAddress.parse(VFS[0])) is None
    (root / "sys" / "bus" / "pci" / "devices" / VFS[0]).resolve().joinpath("iommu_group").unlink()
    problem = sriov.iommu_problem(root, PciAddress.parse(VFS[0]))
    assert problem is not None and "IOMMU" in problem and "intel_iommu=on" in problem
