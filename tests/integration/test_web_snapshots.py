"""A VM's Snapshots tab in a real browser on a real guest (issue 13): the snapshot tree, a
snapshot with the memory state (internal) and one without (disk only, external), revert to
the first (the guest's later disk write is gone and its uptime goes back: it runs on from the
snapshot), delete (the external one merges as a job).

The test waits on the page's own signal, its "Snapshot progress" status line, which says an
action is done once the list shows its result. The guest's disk is read past its page cache
(the marker is written with ``fsync`` and read after ``drop_caches``)."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from tests.consolehelp import connect_serial
from tests.integration.conftest import TINY_CMDLINE
from tests.webhelp import Web, screens_dir, web_console

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def _guest(image: Any, disk: Path) -> str:
    return f"""<domain type='qemu'>
  <name>sn1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd><cmdline>{TINY_CMDLINE}</cmdline></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
    <serial type='pty'><target port='0'/></serial>
  </devices>
</domain>
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, tiny_image: Any) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("websnap")) / "s"
    root.mkdir()
    # the pool's directory must be reachable by the QEMU user (pyvirt-qemu opens a disk-only
    # snapshot's overlay itself), which pytest's 0700 temporary directories are not
    reachable = Path(tempfile.mkdtemp(prefix="pvsn", dir="/tmp"))
    reachable.chmod(0o711)
    images = reachable / "images"
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("snpool", "dir", target=str(images))
    pool.build()
    pool.start()
    pool.create_volume("sn1.qcow2", 16 * MiB, format="qcow2")
    conn.domains.define(_guest(tiny_image, images / "sn1.qcow2"))
    with web_console(root, screens_dir(tmp_path_factory, "snapshots")) as w:
        try:
            yield w
        finally:
            w.daemon.request("POST", "/api/v1/domains/sn1/destroy", {})
    shutil.rmtree(reachable, ignore_errors=True)


def shell(web: Web, cmd: str, timeout: float = 90.0) -> str:
    """Run ``cmd`` in sn1's serial root shell; its output (between two markers that the
    echoed command line cannot match)."""
    tag = uuid.uuid4().hex[:8]
    line = f"\nprintf 'S-%s\\n' {tag}; {cmd}; printf 'E-%s\\n' {tag}\n".encode()
    pattern = re.compile(rf"S-{tag}\r?\n(.*?)E-{tag}", re.S)
    deadline = time.monotonic() + timeout
    with connect_serial(web.daemon.root, "sn1") as s:
        s.settimeout(0.5)
        buf, sent = b"", 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - sent > 10:  # the shell may not be up yet: ask again
                s.sendall(line)
                sent = time.monotonic()
            try:
                buf += s.recv(65536)
            except TimeoutError:
                continue
            if m := pattern.search(buf.decode(errors="replace")):
                return m.group(1)
    raise AssertionError(f"no answer from sn1's shell: {buf[-500:]!r}")


def write_marker(web: Web, text: str) -> None:
    """Write ``text`` at the start of the guest's disk, through to the disk (fsync)."""
    shell(web, f"echo {text} | dd of=/dev/vda bs=512 conv=sync,notrunc,fsync 2>/dev/null")


def read_marker(web: Web) -> str:
    """The start of the guest's disk as the disk has it (the page cache dropped first)."""
    drop = "sync; echo 3 >/proc/sys/vm/drop_caches"
    out = shell(web, f"{drop}; dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 16")
    return out.replace("\x00", "").strip()


def uptime(web: Web) -> float:
    """The guest's uptime in seconds."""
    return float(shell(web, "cut -d' ' -f1 /proc/uptime").split()[0])


def wait_progress(page: Any, text: str, timeout: float = 120.0) -> None:
    """Wait until the tab's "Snapshot progress" line says ``text`` (fail at once on
    "Failed: ...")."""
    line = page.get_by_role("status", name="Snapshot progress")
    deadline = time.monotonic() + timeout
    while (got := line.inner_text()) != text:
        assert not got.startswith("Failed"), got
        assert time.monotonic() < deadline, f"the page says {got!r}, not {text!r}"
        time.sleep(0.2)


def accept_next_dialog(page: Any) -> None:
    page.once("dialog", lambda d: d.accept())


def test_snapshots_tab(web: Web) -> None:
    r = web.daemon.request("POST", "/api/v1/domains/sn1/start", {})
    assert r.status == 200, r.body
    # under TCG the TSC follows the host's clock; the HPET follows QEMU's virtual clock,
    # which the snapshot saves, so the uptime read through it goes back on revert
    # (the HPET is found through ACPI: the definition has <acpi/>)
    clock = "/sys/devices/system/clocksource/clocksource0/current_clocksource"
    shell(web, f"echo hpet >{clock}")
    assert shell(web, f"cat {clock}").strip() == "hpet"
    write_marker(web, "BEFORE-SNAP")
    assert read_marker(web).startswith("BEFORE-SNAP")
    page = web.visit("#/vm/sn1/snapshots", "snapshots-empty", ready="table.grid")
    page.get_by_text("No snapshots yet.").wait_for()
    tree = page.get_by_role("treegrid", name="Snapshots")

    # with the memory state: an internal snapshot of the running guest
    page.get_by_label("Snapshot name").fill("s1")
    assert page.get_by_label("Include the memory state (running VM)").is_checked()
    up_s1 = uptime(web)
    page.get_by_role("button", name="Create Snapshot").click()
    wait_progress(page, "Snapshot s1 created")
    row1 = tree.locator("tr[data-snapshot='s1']")
    assert "running" in row1.inner_text() and "internal" in row1.inner_text()

    # the guest writes after it (and lives on); a second snapshot with memory, a child of s1
    write_marker(web, "AFTER-SNAP1")
    time.sleep(3)
    page.get_by_label("Snapshot name").fill("s1b")
    page.get_by_role("button", name="Create Snapshot").click()
    wait_progress(page, "Snapshot s1b created")
    row1b = tree.locator("tr[data-snapshot='s1b']")
    assert row1.get_attribute("aria-level") == "1" and row1b.get_attribute("aria-level") == "2"
    assert "(current)" in row1b.inner_text() and "(current)" not in row1.inner_text()
    web.shot("snapshots-tree")
    up_before = uptime(web)
    assert read_marker(web).startswith("AFTER-SNAP1")

    # revert to s1: the later write is gone, the guest runs on from the snapshot (its
    # uptime goes back to the snapshot's)
    accept_next_dialog(page)
    page.get_by_role("button", name="Revert to s1", exact=True).click()
    wait_progress(page, "Reverted to s1")
    assert "(current)" in row1.inner_text()
    assert web.daemon.request("GET", "/api/v1/domains/sn1/state").json()["state"] == "running"
    up_after = uptime(web)
    print(f"guest uptime: {up_s1:.1f} s at s1, {up_before:.1f} s before the revert, "
          f"{up_after:.1f} s after it")  # fmt: skip
    assert up_s1 <= up_after < up_before - 2, (up_s1, up_before, up_after)
    assert read_marker(web).startswith("BEFORE-SNAP")

    # delete both internal snapshots (the child first)
    for snap in ("s1b", "s1"):
        accept_next_dialog(page)
        page.get_by_role("button", name=f"Delete {snap}", exact=True).click()
        wait_progress(page, f"Snapshot {snap} deleted")
        assert tree.locator(f"tr[data-snapshot='{snap}']").count() == 0
    page.get_by_text("No snapshots yet.").wait_for()

    # without the memory state: disk only (an external overlay), deleted by a merge job
    page.get_by_label("Snapshot name").fill("s2")
    page.get_by_label("Include the memory state (running VM)").uncheck()
    page.get_by_role("button", name="Create Snapshot").click()
    wait_progress(page, "Snapshot s2 created")
    row2 = tree.locator("tr[data-snapshot='s2']")
    assert "external" in row2.inner_text() and "disk-snapshot" in row2.inner_text()
    live = web.daemon.request("GET", "/api/v1/domains/sn1/xml").body.decode()
    source = live.split("<source file=")[1][:200]
    assert "sn1.qcow2" not in source, source  # the guest writes to the overlay now
    write_marker(web, "IN-OVERLAY")
    web.shot("snapshots-disk-only")
    accept_next_dialog(page)
    page.get_by_role("button", name="Delete s2").click()
    wait_progress(page, "Snapshot s2 deleted")
    page.get_by_text("No snapshots yet.").wait_for()
    live = web.daemon.request("GET", "/api/v1/domains/sn1/xml").body.decode()
    assert "sn1.qcow2" in live.split("<source file=")[1][:200]
    jobs = web.daemon.request("GET", "/api/v1/jobs").json()
    assert any(j["kind"] == "snapshot-delete" and j["state"] == "completed" for j in jobs)
    # the overlay's write was merged into the base image the guest runs on again
    assert read_marker(web).startswith("IN-OVERLAY")
    web.shot("snapshots-deleted")
