"""pyvirt.libvirt on an embedded connection to a temporary state directory: URIs, lookups,
list filters, the definition calls of domains, networks and pools, volumes, error codes and
read-only connections. No QEMU (nothing is started)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyvirt import libvirt
from pyvirt.cli.commands.shim import shim_dir
from tests.conftest import Pyvirt

XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""
NET_XML = """<network><name>lab</name><forward mode='nat'/><bridge name='virbr9'/>
<ip address='192.168.150.1' netmask='255.255.255.0'/></network>"""


@pytest.fixture
def conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> libvirt.virConnect:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    c = libvirt.open("qemu:///system")
    yield c
    c.close()


def code(fn: object, *args: object) -> int | None:
    """The libvirt error code ``fn(*args)`` raises."""
    with pytest.raises(libvirt.libvirtError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.get_error_code()


def test_constants_are_libvirts_values() -> None:
    # a sample of each header's numbers (libvirt's public headers)
    assert (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTOFF) == (
        1,
        3,
        5,
    )
    assert (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID) == (42, 55)
    assert (libvirt.VIR_ERR_NO_NETWORK, libvirt.VIR_ERR_NO_STORAGE_POOL) == (43, 49)
    assert (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_XML_ERROR) == (50, 27)
    assert libvirt.VIR_ERR_CONFIG_UNSUPPORTED == 67
    assert libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED == 19
    assert libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED == 1
    assert libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART == 1024
    assert libvirt.VIR_DOMAIN_XML_INACTIVE == 2
    assert libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA == 2
    assert libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST == 4
    assert libvirt.VIR_STORAGE_POOL_RUNNING == 2


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu:///session", None])
def test_local_uris_reach_the_local_pyvirt(
    uri: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    conn = libvirt.open(uri)
    conn.defineXML(XML.format(name="u1"))
    # the same state directory, whichever local URI
    again = libvirt.openReadOnly("qemu:///system")
    assert again.listDefinedDomains() == ["u1"]
    assert conn.getURI() == (uri or "qemu:///system")
    assert conn.isAlive() == 1 and conn.close() == 0 and conn.isAlive() == 0


def test_libvirt_default_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "qemu:///session")
    assert libvirt.open().getURI() == "qemu:///session"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "xen:///")
    assert code(libvirt.open) == libvirt.VIR_ERR_NO_CONNECT


def test_pyvirt_uris_pass_through_and_others_are_refused(tmp_path: Path) -> None:
    conn = libvirt.open(f"pyvirt:///embed?root={tmp_path / 'r'}")
    conn.defineXML(XML.format(name="p1"))
    assert (tmp_path / "r").is_dir()
    assert code(libvirt.open, "xen:///system") == libvirt.VIR_ERR_NO_CONNECT
    assert code(libvirt.open, "qemu+ssh://host/system") == libvirt.VIR_ERR_NO_CONNECT


def test_host_calls(conn: libvirt.virConnect) -> None:
    info = conn.getInfo()
    assert len(info) == 8 and info[2] >= 1 and info[1] > 0
    assert conn.getType() == "QEMU"
    assert conn.getLibVersion() == libvirt.getVersion() == 9_000_000
    assert conn.getVersion() >= 0
    assert conn.getFreeMemory() > 0
    assert conn.getHostname()
    assert "<capabilities>" in conn.getCapabilities()


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed")
def test_qemu_capabilities(conn: libvirt.virConnect) -> None:
    assert "<domainCapabilities>" in conn.getDomainCapabilities(None, "x86_64", None, "qemu", 0)
    assert "qemu64" in conn.getCPUModelNames("x86_64", 0)


def test_domain_definition_calls(conn: libvirt.virConnect, tmp_path: Path) -> None:
    dom = conn.defineXML(XML.format(name="d1"))
    assert dom.name() == "d1" and dom.ID() == -1
    assert conn.lookupByName("d1") == dom
    assert conn.lookupByUUIDString(dom.UUIDString()).name() == "d1"
    assert conn.lookupByUUID(dom.UUID()).name() == "d1"
    assert dom.info() == [libvirt.VIR_DOMAIN_SHUTOFF, 65536, 65536, 1, 0]
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert (dom.isActive(), dom.isPersistent(), dom.autostart()) == (0, 1, 0)
    assert (dom.maxMemory(), dom.maxVcpus(), dom.OSType()) == (65536, 1, "hvm")
    assert "<name>d1</name>" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert dom.hasManagedSaveImage(0) == 0
    dom.setAutostart(1)
    assert dom.autostart() == 1
    dom.setMemoryFlags(32768, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    dom.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    dom.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    assert dom.info()[2:4] == [32768, 2]
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2
    (tmp_path / "x.img").write_bytes(b"\0" * 65536)
    disk = (
        f"<disk type='file' device='disk'><source file='{tmp_path}/x.img'/>"
        "<target dev='vdb'/></disk>"
    )
    dom.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    assert "vdb" in dom.XMLDesc(0)
    dom.detachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    assert "vdb" not in dom.XMLDesc(0)
    assert dom.undefine() == 0
    assert conn.listAllDomains() == []


def test_list_filters(conn: libvirt.virConnect) -> None:
    a = conn.defineXML(XML.format(name="a"))
    conn.defineXML(XML.format(name="b"))
    a.setAutostart(1)
    names = lambda flags: sorted(d.name() for d in conn.listAllDomains(flags))  # noqa: E731
    assert names(0) == ["a", "b"]
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE) == ["a", "b"]
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE) == []
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART) == ["a"]
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART) == ["b"]
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_SHUTOFF) == ["a", "b"]
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING) == []
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT) == []
    assert names(libvirt.VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT) == ["a", "b"]
    assert conn.listDefinedDomains() == ["a", "b"]
    assert conn.listDomainsID() == [] and conn.numOfDomains() == 0
    assert conn.numOfDefinedDomains() == 2


def test_error_codes(conn: libvirt.virConnect) -> None:
    dom = conn.defineXML(XML.format(name="e1"))
    assert code(conn.lookupByName, "nosuch") == libvirt.VIR_ERR_NO_DOMAIN
    assert code(conn.lookupByID, 7) == libvirt.VIR_ERR_NO_DOMAIN
    assert code(conn.lookupByUUIDString, "not-a-uuid") == libvirt.VIR_ERR_NO_DOMAIN
    assert code(dom.destroy) == libvirt.VIR_ERR_OPERATION_INVALID
    assert code(dom.suspend) == libvirt.VIR_ERR_OPERATION_INVALID
    assert code(conn.defineXML, "<domain>") == libvirt.VIR_ERR_XML_ERROR
    with pytest.raises(libvirt.libvirtError) as info:
        conn.lookupByName("nosuch")
    err = info.value
    assert err.get_error_domain() == libvirt.VIR_FROM_QEMU
    assert err.get_error_level() == libvirt.VIR_ERR_ERROR
    assert str(err) == err.get_error_message()
    assert str(err).startswith("Domain not found: ")
    assert libvirt.virGetLastErrorCode() == libvirt.VIR_ERR_NO_DOMAIN
    missing = "<disk type='file' device='disk'><target dev='vdz'/></disk>"
    assert code(dom.detachDeviceFlags, missing, 2) == libvirt.VIR_ERR_DEVICE_MISSING
    gone = conn.lookupByName("e1")
    dom.undefine()
    assert code(gone.info) == libvirt.VIR_ERR_NO_DOMAIN

    assert code(conn.networkLookupByName, "nosuch") == libvirt.VIR_ERR_NO_NETWORK
    assert code(conn.storagePoolLookupByName, "nosuch") == libvirt.VIR_ERR_NO_STORAGE_POOL
    assert code(conn.storageVolLookupByPath, "/no/such") == libvirt.VIR_ERR_NO_STORAGE_VOL


def test_error_handler_and_own_errors() -> None:
    seen: list[object] = []
    libvirt.registerErrorHandler(lambda ctx, err: seen.append((ctx, err[0])), "ctx")
    try:
        with pytest.raises(libvirt.libvirtError):
            libvirt.open("xen:///")
    finally:
        libvirt.registerErrorHandler(None, None)
    assert seen == [("ctx", libvirt.VIR_ERR_NO_CONNECT)]
    own = libvirt.libvirtError("mine")
    assert own.get_error_code() is None and str(own) == "mine"


def test_read_only_connection_refuses_changes(
    conn: libvirt.virConnect, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.defineXML(XML.format(name="r1"))
    ro = libvirt.openReadOnly("qemu:///system")
    dom = ro.lookupByName("r1")
    assert dom.info()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert code(dom.undefine) == libvirt.VIR_ERR_OPERATION_DENIED
    assert code(dom.create) == libvirt.VIR_ERR_OPERATION_DENIED
    assert code(ro.defineXML, XML.format(name="r2")) == libvirt.VIR_ERR_OPERATION_DENIED
    assert conn.listDefinedDomains() == ["r1"]


def test_networks(conn: libvirt.virConnect) -> None:
    net = conn.networkDefineXML(NET_XML)
    assert net.name() == "lab"
    assert (net.isActive(), net.isPersistent(), net.autostart()) == (0, 1, 0)
    assert net.bridgeName() == "virbr9"
    assert net.DHCPLeases() == []
    assert "lab" in conn.listDefinedNetworks() and "lab" not in conn.listNetworks()
    inactive = conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_INACTIVE)
    assert "lab" in [n.name() for n in inactive]
    assert conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE) == []
    assert conn.networkLookupByUUIDString(net.UUIDString()).name() == "lab"
    net.setAutostart(1)
    assert net.autostart() == 1
    assert "<name>lab</name>" in net.XMLDesc(0)
    assert code(net.destroy) == libvirt.VIR_ERR_OPERATION_INVALID
    net.undefine()
    assert code(conn.networkLookupByName, "lab") == libvirt.VIR_ERR_NO_NETWORK


def test_pools_and_volumes(conn: libvirt.virConnect, tmp_path: Path) -> None:
    xml = f"<pool type='dir'><name>p1</name><target><path>{tmp_path / 'p1'}</path></target></pool>"
    pool = conn.storagePoolDefineXML(xml, 0)
    assert pool.isActive() == 0 and pool.info()[0] == libvirt.VIR_STORAGE_POOL_INACTIVE
    assert "p1" in conn.listDefinedStoragePools()
    pool.build(0)
    pool.create(0)
    assert pool.isActive() == 1 and "p1" in conn.listStoragePools()
    state, capacity, _, available = pool.info()
    assert state == libvirt.VIR_STORAGE_POOL_RUNNING and capacity >= available > 0
    vol_xml = "<volume><name>v1</name><capacity>1048576</capacity></volume>"
    vol = pool.createXML(vol_xml, 0)
    assert vol.name() == "v1" and vol.path() == str(tmp_path / "p1" / "v1")
    assert vol.key() == vol.path()
    assert vol.info()[:2] == [libvirt.VIR_STORAGE_VOL_FILE, 1048576]
    assert pool.listVolumes() == ["v1"] and pool.numOfVolumes() == 1
    assert [v.name() for v in pool.listAllVolumes()] == ["v1"]
    same = conn.storageVolLookupByPath(vol.path())
    assert same.name() == "v1" and same.storagePoolLookupByVolume().name() == "p1"
    vol.resize(2 * 1048576)
    assert pool.storageVolLookupByName("v1").info()[1] == 2 * 1048576
    assert "<name>v1</name>" in vol.XMLDesc(0)
    with open(vol.path(), "r+b") as f:
        f.write(b"data")
    assert vol.wipe(0) == 0
    assert Path(vol.path()).read_bytes()[:4] == b"\0\0\0\0"
    assert code(pool.storageVolLookupByName, "nosuch") == libvirt.VIR_ERR_NO_STORAGE_VOL
    vol.delete(0)
    assert pool.listVolumes() == []
    pool.refresh(0)
    pool.destroy()
    pool.undefine()
    assert code(conn.storagePoolLookupByName, "p1") == libvirt.VIR_ERR_NO_STORAGE_POOL


def test_cli_prints_the_shim_directory(pyvirt: Pyvirt) -> None:
    assert pyvirt("libvirt-shim-path").out == f"{shim_dir()}\n"
    assert "libvirt-shim-path" in pyvirt("help", "tools").out


def test_shim_makes_import_libvirt_pyvirts(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import libvirt; print(libvirt.__name__, libvirt.VIR_ERR_NO_DOMAIN)",
        ],
        env={
            "PYTHONPATH": f"{shim_dir()}:{Path(__file__).resolve().parents[3] / 'src'}",
            "PYVIRT_STATE_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "pyvirt.libvirt 42\n"
    assert (shim_dir() / "libvirt.py").is_file()


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_snapshots_of_a_shut_off_domain(conn: libvirt.virConnect, tmp_path: Path) -> None:
    xml = f"<pool type='dir'><name>sp</name><target><path>{tmp_path / 'sp'}</path></target></pool>"
    pool = conn.storagePoolCreateXML(xml, libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
    vol = pool.createXML(
        "<volume><name>s1.qcow2</name><capacity>1048576</capacity>"
        "<target><format type='qcow2'/></target></volume>",
        0,
    )
    dom = conn.defineXML(
        XML.format(name="s1").replace(
            "</os>",
            "</os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{vol.path()}'/><target dev='vda' bus='virtio'/></disk></devices>",
        )
    )
    one = dom.snapshotCreateXML("<domainsnapshot><name>one</name></domainsnapshot>", 0)
    assert (one.getName(), one.isCurrent(), dom.hasCurrentSnapshot()) == ("one", 1, 1)
    two = dom.snapshotCreateXML(None, 0)
    assert two.getParent().getName() == "one"
    assert [s.getName() for s in one.listAllChildren()] == [two.getName()]
    assert sorted(dom.snapshotListNames()) == sorted(["one", two.getName()])
    assert [s.getName() for s in dom.listAllSnapshots()] == dom.snapshotListNames()
    assert "<name>one</name>" in dom.snapshotLookupByName("one").getXMLDesc()
    has = libvirt.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT
    assert [d.name() for d in conn.listAllDomains(has)] == ["s1"]
    assert dom.revertToSnapshot(one) == 0 and dom.snapshotCurrent().getName() == "one"
    assert code(dom.undefine) == libvirt.VIR_ERR_OPERATION_INVALID  # it has snapshots
    assert code(dom.snapshotLookupByName, "nope") == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT
    assert one.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN) == 0
    assert dom.snapshotNum() == 0
    dom.undefine()
    vol.delete(0)
    pool.destroy()
