"""The resource half of pyvirt.api: unknown names, handles, to_json shapes, lazy loading and
the CLI import rule for the converted command modules. No root, no QEMU."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.connection import Connection
from pyvirt.errors import InvalidConfigError, NotFoundError

REPO = Path(__file__).resolve().parents[3]
SEED_HOST = REPO / "tests" / "data" / "host" / "seed-2x8"
NET_XML = """<network><name>lab</name><forward mode='nat'/>
<ip address='192.168.150.1' netmask='255.255.255.0'/></network>"""


@pytest.fixture
def conn(tmp_path: Path) -> Connection:
    return pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")


@pytest.fixture
def dir_pool(conn: Connection, tmp_path: Path) -> pyvirt.api.pools.Pool:
    pool, warnings = conn.pools.define_as("p1", "dir", target=str(tmp_path / "p1"))
    assert warnings == []
    pool.start(build=True)
    return pool


@pytest.mark.parametrize(
    "lookup, message",
    [
        (lambda c: c.pools.get("nosuch"), "storage pool 'nosuch' not found"),
        (lambda c: c.pools.volume("/no/such/vol"), "storage volume '/no/such/vol' not found"),
        (lambda c: c.networks.get("nosuch"), "network 'nosuch' not found"),
        (lambda c: c.host.numa_advice("nosuch"), "domain 'nosuch' not found"),
    ],
)
def test_unknown_names_raise_not_found(conn: Connection, lookup: object, message: str) -> None:
    with pytest.raises(NotFoundError) as err:
        lookup(conn)  # type: ignore[operator]
    assert err.value.message == message
    assert err.value.hint


def test_unknown_volume_in_pool(dir_pool: pyvirt.api.pools.Pool) -> None:
    with pytest.raises(NotFoundError, match="storage volume 'nosuch' not found in pool 'p1'"):
        dir_pool.volume("nosuch")


def test_unknown_node_device(monkeypatch: pytest.MonkeyPatch, conn: Connection) -> None:
    monkeypatch.setenv("PYVIRT_HOST_ROOT", str(SEED_HOST))
    with pytest.raises(NotFoundError, match="node device 'pci_nosuch' not found"):
        conn.nodedevs.get("pci_nosuch")
    with pytest.raises(InvalidConfigError, match="capability 'gpu' is not known"):
        conn.nodedevs.list(["gpu"])


def test_pool_and_volume_handles(conn: Connection, dir_pool: pyvirt.api.pools.Pool) -> None:
    assert conn.pools.get(dir_pool.uuid).name == "p1"
    st = dir_pool.info()
    assert set(st.to_json()) == {
        "name", "uuid", "type", "state", "persistent", "autostart",
        "capacity", "allocation", "available", "target",
    }  # fmt: skip
    assert st.to_json()["state"] == "running"
    json.dumps(st.to_json())
    vol = dir_pool.create_volume("v1", 1024 * 1024)
    assert (vol.pool_name, vol.name, vol.pool.name) == ("p1", "v1", "p1")
    assert conn.pools.volume(vol.key).path == vol.path
    info = vol.info()
    assert info.to_json() == {
        "name": "v1", "key": vol.key, "path": vol.path, "type": "file", "format": "raw",
        "capacity": 1024 * 1024, "allocation": info.allocation, "physical": info.physical,
        "backing_path": None, "backing_format": None,
    }  # fmt: skip
    assert "<volume" in vol.xml_desc() and "<pool" in dir_pool.xml_desc()
    assert "<name>v1</name>" in conn.pools.volume_xml("v1", 1024)
    assert [v.name for v in dir_pool.volumes()] == ["v1"]
    assert "<storagepoolCapabilities>" in conn.pools.capabilities()
    vol.delete()
    assert dir_pool.volumes() == []
    dir_pool.set_autostart(True)
    assert dir_pool.info().autostart


def test_pool_definition_xml_checks(conn: Connection) -> None:
    assert "<name>x</name>" in conn.pools.definition_xml("x", "dir", target="/srv/x")
    with pytest.raises(InvalidConfigError):
        conn.pools.definition_xml("x", "netfs", source_host="h:port")


def test_network_handle_without_root(conn: Connection) -> None:
    net, warnings = conn.networks.define(NET_XML)
    assert warnings == []
    assert conn.networks.get(net.uuid).name == "lab"
    info = net.info()
    assert info.to_json() == {
        "name": "lab", "uuid": net.uuid, "active": False, "persistent": True,
        "autostart": False, "bridge": info.bridge, "forward_mode": "nat",
    }  # fmt: skip
    net.set_autostart(True)
    assert net.info().autostart
    assert "<network" in net.xml_desc(inactive=True)
    assert "lab" in [n.name for n in conn.networks.list(active=False)]
    net.undefine()
    with pytest.raises(NotFoundError):
        conn.networks.get("lab")


def test_node_devices_on_a_captured_host(monkeypatch: pytest.MonkeyPatch, conn: Connection) -> None:
    monkeypatch.setenv("PYVIRT_HOST_ROOT", str(SEED_HOST))
    devices = conn.nodedevs.list()
    assert devices and devices[0].name == "computer"
    shape = devices[0].to_json()
    assert set(shape) == {
        "name", "parent", "caps", "driver", "iommu_group", "vfs", "physfn", "interface"
    }  # fmt: skip
    json.dumps([d.to_json() for d in devices])
    dev = conn.nodedevs.get("computer")
    assert dev.parent is None and "<device>" in dev.xml_desc()
    assert conn.nodedevs.tree().startswith("computer")


def test_host_values_on_a_captured_host(monkeypatch: pytest.MonkeyPatch, conn: Connection) -> None:
    monkeypatch.setenv("PYVIRT_HOST_ROOT", str(SEED_HOST))
    host = conn.host
    node = host.nodeinfo()
    assert node.to_json()["numa_cells"] == 2
    cells = host.freecell()
    assert [c.to_json() for c in cells] == [{"cell": c.cell, "free_kib": c.free_kib} for c in cells]
    assert host.freecell(cells[0].cell) == [cells[0]]
    assert set(host.memstats().to_json()) >= {"total", "free"}
    ksm = host.memory_tune()
    data = ksm.to_json()
    assert list(data)[:2] == ["shm_pages_to_scan", "shm_sleep_millisecs"]
    assert list(data)[-2:] == ["shm_run", "saved_kib"]
    plan = host.plan(["name=web,count=2,vcpus=2,memory=2G"])
    assert len(plan.vms) == 2 and plan.to_json()["host"]["cpus"] == host.shape().cpus
    assert pyvirt.api.host.format_page_size(2048) == "2M"


def test_value_types_json() -> None:
    from pyvirt.api.host import (
        BuiltImage,
        DiskBenchReport,
        ImageInfo,
        KvmVerdict,
        NetBenchReport,
        NumaAdvice,
    )
    from pyvirt.host.validate import Check, CheckStatus
    from pyvirt.netbench.scenarios import Result
    from pyvirt.service.disk.bench import Cell
    from pyvirt.service.tuning.advisor import Advice

    assert Check("x", CheckStatus.WARN, "d").to_json() == {
        "name": "x", "status": "WARN", "detail": "d", "hint": None
    }  # fmt: skip
    assert BuiltImage("tiny", Path("/k"), Path("/i")).to_json() == {
        "kind": "tiny", "kernel": "/k", "initrd": "/i", "disk": None, "domain_xml": None
    }  # fmt: skip
    assert ImageInfo("debian", "/d", 4, 2).to_json()["disk_size"] == 4
    assert KvmVerdict("slow", True, "why", 3.0).to_json()["fast"] is False
    advice = Advice("warning", "c", "m", "h")
    assert NumaAdvice("d", (advice,)).to_json() == {"domain": "d", "advice": [advice.to_json()]}
    cell = Cell("none", "raw", 1, 2.0, 3.0, 4096)
    report = DiskBenchReport("m", Path("/x"), "ext4 on /dev/x", 1.26, (cell,))
    assert report.to_json()["seconds"] == 1.3
    assert report.to_json()["cells"][0]["cache"] == "none"
    net = NetBenchReport(3, None, (Result(1, 100.0, 3.0),)).to_json()
    assert net["scenarios"][0]["mbits"] == 100.0  # type: ignore[index]


def test_opening_does_not_import_resources() -> None:
    code = (
        "import sys, pyvirt.api; c = pyvirt.api.open(); "
        "print(any(m.startswith(('pyvirt.service.storage', 'pyvirt.service.network', "
        "'pyvirt.api.pools', 'pyvirt.api.host')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


CLI_MODULES = (
    "pool", "vol", "net", "nodedev", "node", "host", "plan", "image", "bench", "bench_disk",
    "bench_net",
)  # fmt: skip


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_module_imports_only_the_api(module: str) -> None:
    path = REPO / "src" / "pyvirt" / "cli" / "commands" / f"{module}.py"
    allowed = ("pyvirt.api", "pyvirt.errors", "pyvirt.cli")
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "pyvirt" or name.startswith("pyvirt."):
                assert name.startswith(allowed), f"{module}.py imports {name}"
