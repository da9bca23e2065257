"""The domain half of pyvirt.api on a temporary state root, without QEMU: definitions, lookups,
config-only changes, errors and the JSON form of every result type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.domain_devices import DiskOptions, disk_xml
from pyvirt.api.domain_tuning import IOThreadInfo, MemTune, NumaTune, VcpuCount, VcpuInfo
from pyvirt.api.domains import Domain, DomainInfo, Reason, State, VncDisplay
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
)

UUID = "8d1f1c53-8f47-4c25-9a0e-3c1c4d2f7a10"


def domain_xml(name: str = "web1", *, uuid: str | None = UUID, extra: str = "") -> str:
    uuid_el = f"<uuid>{uuid}</uuid>" if uuid else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>{uuid_el}
  <title>the web server</title>
  <memory unit='MiB'>256</memory>
  <vcpu placement='static' current='1'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>{extra}</devices>
</domain>
"""


@pytest.fixture
def conn(state_root: Path) -> pyvirt.api.Connection:
    return pyvirt.api.open(f"pyvirt:///embed?root={state_root}")


@pytest.fixture
def dom(conn: pyvirt.api.Connection) -> Domain:
    dom, warnings = conn.domains.define(domain_xml())
    assert warnings == []
    return dom


def test_define_get_and_list(conn: pyvirt.api.Connection, dom: Domain) -> None:
    assert dom.name == "web1"
    assert conn.domains.get("web1") == dom
    assert conn.domains.get(UUID).name == "web1"
    [st] = conn.domains.list()
    assert (st.name, st.uuid, st.state, st.persistent, st.id) == (
        "web1", UUID, State.SHUTOFF, True, None,
    )  # fmt: skip
    assert conn.domains.list(states=[State.RUNNING]) == []
    assert conn.domains.list(persistent=False) == []
    assert [s.name for s in conn.domains.list(states={State.SHUTOFF})] == ["web1"]


def test_list_without_uuids_leaves_shut_off_uuids_empty(
    conn: pyvirt.api.Connection, dom: Domain
) -> None:
    [st] = conn.domains.list(with_uuids=False)
    assert st.name == dom.name and st.uuid in ("", UUID)


def test_unknown_names_raise_not_found(conn: pyvirt.api.Connection) -> None:
    with pytest.raises(NotFoundError, match="domain 'nosuch' not found"):
        conn.domains.get("nosuch")
    with pytest.raises(NotFoundError):
        conn.domains.get("../etc")


def test_a_handle_to_a_domain_that_went_away(conn: pyvirt.api.Connection, dom: Domain) -> None:
    dom.undefine()
    with pytest.raises(NotFoundError):
        dom.status()


def test_status_state_and_info(dom: Domain) -> None:
    st = dom.status()
    assert dom.state() == (State.SHUTOFF, st.reason)
    assert not dom.is_active()
    info = dom.info()
    assert info == DomainInfo(st, "hvm", 1, None, 256 * 1024, 256 * 1024, "the web server")
    assert info.to_json() == {
        **st.to_json(),
        "os_type": "hvm",
        "vcpus": 1,
        "cpu_time": None,
        "max_memory_kib": 262144,
        "used_memory_kib": 262144,
        "title": "the web server",
        "managed_save": False,
    }
    assert st.to_json()["state"] == "shut off"
    json.dumps(info.to_json())


def test_xml_desc_and_xpath(dom: Domain) -> None:
    xml = dom.xml_desc()
    assert "<name>web1</name>" in xml and UUID in xml
    assert dom.xml_desc(inactive=True) == xml
    assert dom.xpath("string(/domain/vcpu/@current)") == ["1"]
    assert dom.xpath("/domain/name") == ["<name>web1</name>"]
    with pytest.raises(InvalidConfigError, match="invalid xpath"):
        dom.xpath("/domain/[")


def test_redefine_keeps_the_name(dom: Domain) -> None:
    assert dom.redefine(domain_xml().replace("256", "512")) == []
    assert dom.info().max_memory_kib == 512 * 1024
    with pytest.raises(InvalidConfigError, match="must not change the name"):
        dom.redefine(domain_xml("other"))


def test_define_conflicts(conn: pyvirt.api.Connection, dom: Domain) -> None:
    with pytest.raises(AlreadyExistsError, match="already exists with uuid"):
        conn.domains.define(domain_xml("web2"))
    with pytest.raises(InvalidConfigError):
        conn.domains.define("<domain><name>x</name>")


def test_validate_defines_nothing(conn: pyvirt.api.Connection) -> None:
    assert conn.domains.validate(domain_xml("draft")) == "draft"
    assert conn.domains.list() == []


def test_rename_and_autostart(conn: pyvirt.api.Connection, dom: Domain) -> None:
    dom.set_autostart(True)
    assert dom.status().autostart
    dom.rename("web2")
    assert dom.name == "web2"
    assert conn.domains.get("web2").status().autostart
    with pytest.raises(NotFoundError):
        conn.domains.get("web1")
    conn.domains.define(domain_xml("web3", uuid=None))
    with pytest.raises(AlreadyExistsError):
        dom.rename("web3")
    dom.set_autostart(False)
    assert not dom.status().autostart


def test_undefine_with_storage(conn: pyvirt.api.Connection, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 1024)
    disk = f"<disk type='file' device='disk'><source file='{image}'/><target dev='vda'/></disk>"
    dom, _ = conn.domains.define(domain_xml(extra=disk))
    with pytest.raises(InvalidConfigError, match="no disk 'vdz'"):
        dom.undefine(storage=["vdz"])
    assert dom.undefine(storage=["vda"]) == [str(image)]
    assert not image.exists()
    assert conn.domains.list() == []


def test_lifecycle_verbs_of_a_shut_off_domain(dom: Domain) -> None:
    for verb in (dom.destroy, dom.suspend, dom.resume, dom.reset, dom.shutdown):
        with pytest.raises(InvalidStateError, match="not running"):
            verb()
    with pytest.raises(InvalidStateError, match="not running"):
        dom.vnc_display()
    with pytest.raises(InvalidStateError, match="not running"):
        dom.console_socket()
    with pytest.raises(InvalidStateError, match="not running"):
        dom.guest_time()


def test_wait_for_state(dom: Domain) -> None:
    assert dom.wait_for_state(State.SHUTOFF, timeout=1).state is State.SHUTOFF
    with pytest.raises(OperationFailedError, match="still 'shut off'"):
        dom.wait_for_state(State.RUNNING, State.PAUSED, timeout=0.2, interval=0.05)
    with pytest.raises(InvalidConfigError):
        dom.wait_for_state()


def test_native_argv(conn: pyvirt.api.Connection, dom: Domain) -> None:
    argv = dom.native_argv()
    # define stored libvirt's defaults: its XML gives the same argv
    assert argv == conn.domains.native_argv(dom.xml_desc(inactive=True))
    assert "-uuid" in argv and argv[argv.index("-uuid") + 1] == UUID


def test_tuning_in_the_definition(dom: Domain) -> None:
    assert dom.vcpu_count() == VcpuCount(2, None, 1, None)
    assert dom.vcpu_count().to_json() == {"maximum": {"config": 2}, "current": {"config": 1}}
    dom.set_vcpus(2)
    assert dom.vcpu_count().current_config == 2
    with pytest.raises(InvalidConfigError, match="at most 2 vCPUs"):
        dom.set_vcpus(3, config=True)
    with pytest.raises(InvalidStateError, match="not running"):
        dom.set_vcpus(1, live=True)
    dom.set_memory(128 * 1024)
    assert dom.info().used_memory_kib == 128 * 1024
    dom.set_max_memory(192 * 1024, config=True)
    assert (dom.info().max_memory_kib, dom.info().used_memory_kib) == (192 * 1024, 128 * 1024)
    assert dom.set_memory_tune(hard_limit=1024 * 1024) == MemTune(1024 * 1024, None, None)
    assert dom.memory_tune().to_json() == {
        "hard_limit": 1048576, "soft_limit": None, "swap_hard_limit": None,
    }  # fmt: skip
    assert dom.numa_tune() == NumaTune("strict", "")
    assert dom.set_sched_params({"cpu_shares": 512})["cpu_shares"] == 512
    assert dom.sched_info()["cpu_shares"] == 512
    with pytest.raises(InvalidConfigError, match="unknown scheduler parameter"):
        dom.set_sched_params({"nope": 1})


def test_pinning_in_the_definition(dom: Domain) -> None:
    from pyvirt.api.domain_tuning import host_cpu_count

    pins = dom.vcpu_pins()
    assert set(pins) == {0, 1} and pins[0] == pins[1] and 0 in pins[0]
    assert max(pins[0]) < host_cpu_count()
    pins = dom.pin_vcpu(1, "0", config=True)
    assert pins[1] == frozenset({0})
    assert dom.vcpu_pins(1) == {1: frozenset({0})}
    assert dom.pin_emulator("0") == frozenset({0})
    assert dom.emulator_affinity() == frozenset({0})
    if host_cpu_count() > 1:  # pinning to every host CPU is stored as no pinning
        assert dom.xpath("string(/domain/cputune/vcpupin[@vcpu='1']/@cpuset)") == ["0"]


def test_disks_and_nics_in_the_definition(dom: Domain, tmp_path: Path) -> None:
    image = tmp_path / "data.img"
    image.write_bytes(b"\0" * 4096)
    spec = DiskOptions(source=str(image), target="vdb", subdriver="raw")
    xml = disk_xml(spec)
    assert xml.startswith("<disk") and str(image) in xml and "vdb" in xml
    dom.attach_disk(spec)
    [entry] = dom.blklist()
    assert entry.to_json() == {
        "target": "vdb", "source": str(image), "type": "file", "device": "disk", "bus": "virtio",
        "format": "raw",
    }  # fmt: skip
    with pytest.raises(AlreadyExistsError):
        dom.attach_disk(spec, config=True)
    [info] = dom.blkinfo("vdb")
    assert info.to_json()["capacity"] == 4096
    dom.detach_disk("vdb")
    assert dom.blklist() == []
    with pytest.raises(NotFoundError):
        dom.detach_disk("vdb")

    mac = dom.attach_interface("bridge", "br0", model="virtio", config=True)
    [nic] = dom.iflist(inactive=True)
    assert nic.to_json() == {"target": "-", "type": "bridge", "source": "br0", "model": "virtio",
                             "mac": mac}  # fmt: skip
    dom.detach_interface("bridge", mac=mac)
    assert dom.iflist() == []


def test_value_types_to_json() -> None:
    assert VcpuInfo(0, 42, 1, "running", 1.5, frozenset({0, 1, 2})).to_json() == {
        "vcpu": 0, "thread": 42, "cpu": 1, "state": "running", "cpu_time": 1.5,
        "affinity": "0-2",
    }  # fmt: skip
    assert IOThreadInfo(1, 7, frozenset({3})).to_json() == {"id": 1, "thread": 7, "affinity": "3"}
    vnc = VncDisplay("0.0.0.0", 2)
    assert (vnc.port, vnc.uri) == (5902, "vnc://localhost:2")
    assert vnc.to_json() == {"listen": "0.0.0.0", "display": 2, "port": 5902}
    assert VncDisplay("192.0.2.1", 0).uri == "vnc://192.0.2.1:0"
    assert str(Reason.DESTROYED) == "destroyed"


def test_listing_domains_loads_no_storage_network_or_qemu_code(state_root: Path) -> None:
    code = (
        "import sys, pyvirt.api\n"
        f"conn = pyvirt.api.open('pyvirt:///embed?root={state_root}')\n"
        "conn.domains.list()\n"
        "bad = [m for m in sys.modules if m.startswith(('pyvirt.service.storage',"
        " 'pyvirt.service.network', 'pyvirt.drivers.qemu.argv', 'pyvirt.service.tuning',"
        " 'pyvirt.service.disk', 'pyvirt.install'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
