"""The web console's VM pages (issue 13), the seed's virt-manager flows in a real browser:
Display → Keymap en-us (the definition shows it), change the NIC, Clone a shut-off VM with a
new name and image name and start the clone, Add Hardware → Storage with an existing volume
(the running guest sees the disk), Force Off and Delete with a choice of disks."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from tests.consolehelp import connect_serial
from tests.webhelp import Web, screens_dir, web_console

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def guest_xml(image: Any, name: str, disk: Path) -> str:
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><model type='e1000'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <graphics type='vnc'/>
    <video><model type='virtio'/></video>
  </devices>
</domain>
"""


def guest_shell(root: Path, name: str, cmd: str, timeout: float = 90.0) -> str:
    """Run ``cmd`` in the tiny guest's serial root shell; its output."""
    tag = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + timeout
    with connect_serial(root, name) as s:
        s.settimeout(0.5)
        buf = b""
        sent = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - sent > 5:  # the shell may not be up yet: ask again
                s.sendall(f"\n{cmd}; echo END-{tag}-$?\n".encode())
                sent = time.monotonic()
            try:
                buf += s.recv(65536)
            except TimeoutError:
                continue
            out = buf.decode(errors="replace")
            m = re.search(rf"\n([^\n]*?){cmd}[^\n]*\n(.*?)END-{tag}-\d", out, re.S)
            if m:
                return m.group(2)
    raise AssertionError(f"no answer from {name}'s shell: {buf[-500:]!r}")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, tiny_image: Any) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("webdetails")) / "s"
    root.mkdir()
    images = root.parent / "images"
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("webpool", "dir", target=str(images))
    pool.build()
    pool.start()
    pool.create_volume("g1.qcow2", 64 * MiB, format="qcow2")
    pool.create_volume("extra.qcow2", 32 * MiB, format="qcow2")
    conn.domains.define(guest_xml(tiny_image, "g1", images / "g1.qcow2"))
    with web_console(root, screens_dir(tmp_path_factory, "details")) as w:
        try:
            yield w
        finally:
            for name in ("g1", "g1-copy"):
                w.daemon.request("POST", f"/api/v1/domains/{name}/destroy", {})


def xml(web: Web, name: str) -> str:
    return web.daemon.request("GET", f"/api/v1/domains/{name}/xml?inactive=true").body.decode()


def hardware(web: Web, label: str) -> None:
    web.page.get_by_role("list", name="Hardware").get_by_role("button", name=label).click()
    web.page.get_by_role("heading", name=label).wait_for()


def test_keymap_and_nic(web: Web) -> None:
    page = web.visit("#/vm/g1", "details-overview", ready=".panel h2")
    assert page.get_by_role("status", name="State").inner_text() == "shut off"
    hardware(web, "Display VNC")
    page.get_by_label("Keymap").select_option("en-us")
    web.shot("details-display")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Changes applied").wait_for()
    assert re.search(r"<graphics [^>]*keymap='en-us'", xml(web, "g1"))
    # the NIC: another model, link down
    nic = page.get_by_role("list", name="Hardware").get_by_role("button", name=re.compile("^NIC"))
    label = nic.inner_text()
    nic.click()
    page.get_by_label("Device model").select_option("virtio")
    page.get_by_label("Link state").select_option("down")
    web.shot("details-nic")
    page.get_by_role("button", name="Apply").click()
    # the first apply's notice may still be on screen: wait for the definition itself
    deadline = time.monotonic() + 30
    wanted = ("<model type='virtio'/>", "<link state='down'/>")
    while not all(w in (text := xml(web, "g1")) for w in wanted):
        assert time.monotonic() < deadline, f"the NIC change did not reach the definition: {text}"
        time.sleep(0.2)
    hardware(web, label)
    assert page.get_by_label("Device model").input_value() == "virtio"


def test_clone_add_storage_force_off_delete(web: Web) -> None:
    images = web.daemon.root.parent / "images"
    page = web.visit("#/vm/g1", "details-before-clone", ready=".panel h2")
    page.get_by_role("button", name="Clone").click()
    dialog = page.get_by_role("dialog", name="Clone virtual machine 'g1'")
    dialog.get_by_label("Name", exact=True).fill("g1-copy")
    dialog.get_by_label("New image name for vda").fill("g1-copy.qcow2")
    web.shot("clone-dialog")
    dialog.get_by_role("button", name="Clone").click()
    page.wait_for_url(re.compile(r"#/vm/g1-copy$"), timeout=60_000)
    assert (images / "g1-copy.qcow2").exists()
    assert f"<source file='{images / 'g1-copy.qcow2'}'/>" in xml(web, "g1-copy")
    page.get_by_role("button", name="Run").click()
    page.get_by_role("status", name="State").filter(has_text="running").wait_for(timeout=30_000)
    assert "vdb" not in guest_shell(web.daemon.root, "g1-copy", "cat /proc/partitions")
    # Add Hardware -> Storage: an existing volume of the pool, into the running guest
    page.get_by_role("button", name="Add Hardware").click()
    dialog = page.get_by_role("dialog", name="Add New Virtual Hardware")
    dialog.get_by_label("Pool").select_option("webpool")
    dialog.get_by_label("Volume", exact=True).select_option("extra.qcow2")
    web.shot("add-storage")
    dialog.get_by_role("button", name="Finish").click()
    page.get_by_role("list", name="Hardware").get_by_role("button", name="Disk vdb").wait_for()
    web.shot("details-added-disk")
    deadline = time.monotonic() + 30
    while "vdb" not in (parts := guest_shell(web.daemon.root, "g1-copy", "cat /proc/partitions")):
        assert time.monotonic() < deadline, f"the guest does not see vdb: {parts}"
        time.sleep(1)
    # Force Off, then Delete with the clone's own disk but not the shared volume
    page.get_by_role("button", name="Force Off").click()
    page.get_by_role("status", name="State").filter(has_text="shut off").wait_for(timeout=30_000)
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete virtual machine 'g1-copy'")
    dialog.get_by_label(f"{images / 'extra.qcow2'} (vdb)").uncheck()
    web.shot("delete-dialog")
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"#/$"))
    assert not (images / "g1-copy.qcow2").exists()
    assert (images / "extra.qcow2").exists() and (images / "g1.qcow2").exists()
    assert web.daemon.request("GET", "/api/v1/domains/g1-copy").status == 404
