"""Live migration on shared NFS storage: two "hosts" (network namespaces joined by a veth
pair, a pyvirtd in each) both have a native netfs pool on the same nfs-ganesha export (the
kernel here has no NFS client: QEMU opens the volume as ``nfs://`` through its own driver).
The guest's disk is a volume of that pool; it migrates live without ``--copy-storage-*``,
counts on at the destination and reads there, from the disk itself, what it wrote before and
during the migration; what it writes at the destination lands in the export."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemonhelp import free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt
from tests.integration.storage_servers import need, nfs_server
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
    wait_marker,
)
from tests.integration.test_migrate_hosts import ADDR_A, ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_migrate_live import TICKER
from tests.integration.test_storage_netfs import native_pool_xml

pytestmark = pytest.mark.qemu

MIB = 1 << 20


def _pool(pv: NsPyvirt, export: Path) -> None:
    """The native netfs pool ``shared`` on the export A serves (the same on both hosts)."""
    xml = pv.root / "pool.xml"
    text = native_pool_xml("shared", export, pv.root / "shared")
    xml.write_text(text.replace("<host name='127.0.0.1'/>", f"<host name='{ADDR_A}'/>"))
    pv("pool-define", str(xml))
    pv("pool-build", "shared")
    pv("pool-start", "shared")


def _write(pv: NsPyvirt, sector: int, text: str) -> None:
    guest(pv, "t1", f"echo {text} | dd of=/dev/vda bs=512 seek={sector} conv=fsync 2>/dev/null")


def _read(pv: NsPyvirt, sector: int) -> str:
    """What the guest reads from its disk at *sector*, its page cache dropped first (the
    bytes come from the NFS server, not from the memory that migrated)."""
    out = guest(pv, "t1", "sync; echo 3 > /proc/sys/vm/drop_caches; echo READ:$(dd if=/dev/vda "
                          f"bs=512 skip={sector} count=1 2>/dev/null | head -1):END")  # fmt: skip
    found = re.search(r"READ:(.*?):END", out)  # the ticker's lines come in between
    assert found, out
    return found[1]


def _last_tick(log: Path) -> int:
    ticks = re.findall(r"TICK (\d+) ", log.read_text(errors="replace")) if log.exists() else []
    return max(map(int, ticks), default=-1)


def _at(image: Path, sector: int, size: int) -> bytes:
    with image.open("rb") as f:
        f.seek(sector * 512)
        return f.read(size)


def test_live_migration_on_an_nfs_pool(
    hosts: tuple[str, str],  # noqa: F811  (test_migrate_hosts' fixtures)
    roots: tuple[Path, Path],  # noqa: F811
    tiny_image: Any,
) -> None:
    need("qemu-img")
    ns_a, ns_b = hosts
    root_a, root_b = roots
    port = free_port()
    with (
        nfs_server(ns_a) as server,
        pyvirtd(root_a, netns=ns_a),
        pyvirtd(root_b, netns=ns_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a, b = NsPyvirt(root_a, ns_a), NsPyvirt(root_b, ns_b)
        _pool(a, server.export)
        a("vol-create-as", "shared", "disk.img", "16M", "--format", "raw")
        _pool(b, server.export)  # B sees the volume A made
        assert "disk.img" in b("vol-list", "shared").out
        disk = ("<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
                "<source pool='shared' volume='disk.img'/><target dev='vda' bus='virtio'/>"
                "</disk>")  # fmt: skip
        define(a, tiny_image, extra_devices=disk)
        a("start", "t1")
        wait_marker(a, "t1")
        _write(a, 8, "written-before")
        guest(a, "t1", TICKER)
        a.env["PYVIRT_TOKEN"] = _token(db)
        dest = f"pyvirt+tls://{ADDR_B}:{port}/?ca={db.cert}"
        # 1 MiB/s: it is still running when the guest writes again
        from tests.conftest import PYVIRT, in_background

        with in_background(["ip", "netns", "exec", ns_a, *PYVIRT, "migrate", "--live",
                            "--persistent", "--undefinesource", "--bandwidth", "1", "t1", dest],
                           a.env) as mig:  # fmt: skip
            deadline = time.monotonic() + 30
            while "Outgoing migration" not in a("domjobinfo", "t1", check=False).out:
                assert time.monotonic() < deadline, "the migration did not start"
                time.sleep(0.2)
            _write(a, 2048, "written-during")  # at 1 MiB
            a("migrate-setspeed", "t1", "--bandwidth", "1024")
            _, err = mig.communicate(timeout=90)
        assert mig.returncode == 0, err
        assert state(b, "t1") == "running (migrated)"
        assert a("list", "--all", "--name").out.strip() == ""
        # no reboot; it counts on; the disk holds both writes, read back from NFS
        assert MARKER not in console_log(b, "t1").read_text(errors="replace")
        last_a = _last_tick(console_log(a, "t1"))
        assert last_a > 0
        wait_for(lambda: _last_tick(console_log(b, "t1")) > last_a + 20, 20, "ticks on B")
        assert _read(b, 8) == "written-before"
        assert _read(b, 2048) == "written-during"
        # the destination's QEMU writes to the export
        _write(b, 4096, "written-after")
        image = server.export / "disk.img"
        assert _at(image, 8, 14) == b"written-before"
        assert _at(image, 2048, 14) == b"written-during"
        assert _at(image, 4096, 13) == b"written-after"
        b("destroy", "t1")
