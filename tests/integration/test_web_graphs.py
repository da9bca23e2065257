"""The web console's VM details beyond the seed's flows (issue 13 item 3), in a real browser
with a real guest: the Performance graphs fill from the daemon's statistics history and keep
moving, a vCPU pinned on the CPUs page lands in the definition and the running guest (the
NUMA advisor's findings shown), a running guest's disk resized from its Disk page is seen
bigger by the guest, the balloon follows the Memory page, and Add Hardware → Controller
(and Input, RNG, Watchdog, Serial) reach a definition."""

from __future__ import annotations

import contextlib
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


def guest_xml(image: Any, name: str, disks: list[Path]) -> str:
    drives = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{d}'/><target dev='vd{chr(97 + i)}' bus='virtio'/></disk>"
        for i, d in enumerate(disks)
    )
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
    {drives}
    <interface type='user'><model type='virtio'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, tiny_image: Any) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("webgraphs")) / "s"
    root.mkdir()
    images = root.parent / "images"
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("gpool", "dir", target=str(images))
    pool.build()
    pool.start()
    for vol in ("g1.qcow2", "g2.qcow2"):
        pool.create_volume(vol, 64 * MiB, format="qcow2")
    pool.create_volume("data.qcow2", 32 * MiB, format="qcow2")
    conn.domains.define(guest_xml(tiny_image, "g1", [images / "g1.qcow2", images / "data.qcow2"]))
    conn.domains.define(guest_xml(tiny_image, "g2", [images / "g2.qcow2"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYVIRTD_STATS_INTERVAL", "1")  # the daemon samples every second
        with web_console(root, screens_dir(tmp_path_factory, "graphs")) as w:
            try:
                assert w.daemon.request("POST", "/api/v1/domains/g1/start", {}).status == 200
                yield w
            finally:
                w.daemon.request("POST", "/api/v1/domains/g1/destroy", {})


def xml(web: Web, name: str) -> str:
    return web.daemon.request("GET", f"/api/v1/domains/{name}/xml?inactive=true").body.decode()


def hardware(web: Web, label: str) -> None:
    web.page.get_by_role("list", name="Hardware").get_by_role("button", name=label).click()
    web.page.get_by_role("heading", name=label).wait_for()


def sectors(root: Path, dev: str, timeout: float = 90.0) -> int:
    """The size of /dev/DEV as the running guest g1 sees it, in 512-byte sectors (asked
    through its serial root shell)."""
    tag = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + timeout
    with connect_serial(root, "g1") as s:
        s.settimeout(0.5)
        buf, sent = b"", 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - sent > 5:  # the shell may not be up yet: ask again
                s.sendall(f"\necho {tag}=$(cat /sys/block/{dev}/size)\n".encode())
                sent = time.monotonic()
            with contextlib.suppress(TimeoutError):
                buf += s.recv(65536)
            if m := re.search(rf"\n{tag}=(\d+)\r?\n", buf.decode(errors="replace")):
                return int(m.group(1))
    raise AssertionError(f"no size of {dev} from the guest: {buf[-300:]!r}")


def points(page: Any, graph: str) -> int:
    """How many points the graph's lines have."""
    svg = page.get_by_role("img", name=re.compile(f"^{graph} graph"))
    pts = svg.locator("polyline").evaluate_all("ls => ls.map(l => l.getAttribute('points'))")
    return sum(len(p.split()) for p in pts)


def test_performance_graphs_fill_and_move(web: Web) -> None:
    page = web.visit("#/vm/g1", "graphs-overview", ready=".panel h2")
    hardware(web, "Performance")
    deadline = time.monotonic() + 30
    while points(page, "CPU usage") < 3:
        assert time.monotonic() < deadline, "the CPU graph gets no points"
        time.sleep(0.5)
    first = points(page, "CPU usage")
    cpu = page.get_by_label("CPU usage CPU")
    assert re.fullmatch(r"[\d.]+ %", cpu.inner_text()), cpu.inner_text()
    assert points(page, "Memory") >= 3  # the balloon and QEMU's resident memory
    assert re.search(r"\d", page.get_by_label("Memory Current (balloon)").inner_text())
    assert re.search(r"/s$", page.get_by_label("Disk I/O Read").inner_text())
    # a user-mode NIC has no host-side counters: the network graph says so with a dash
    assert re.search(r"/s$|^–$", page.get_by_label("Network I/O Received").inner_text())
    # live: new samples arrive without a reload
    deadline = time.monotonic() + 20
    while points(page, "CPU usage") < first + 2:
        assert time.monotonic() < deadline, "the graphs do not move"
        time.sleep(0.5)
    web.shot("performance")
    hist = web.daemon.request("GET", "/api/v1/domains/g1/stats/history").json()
    assert len(hist["t"]) >= first + 2 and hist["interval"] == 1.0
    assert any(v is not None and v > 0 for v in hist["mem_rss_kib"])


def test_pin_vcpu_and_advisor(web: Web) -> None:
    page = web.visit("#/vm/g1", "cpus-before", ready=".panel h2")
    hardware(web, "CPUs")
    pin = page.get_by_label("Pin vCPU 0")
    pin.wait_for()
    page.get_by_role("heading", name="NUMA advisor").wait_for()
    pin.fill("0")
    assert page.get_by_label("Change the running VM too (vCPU count, pinning)").is_checked()
    web.shot("cpus")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Changes applied").wait_for()
    assert re.search(r"<vcpupin vcpu='0' cpuset='0'/>", xml(web, "g1"))
    facts = web.daemon.request("GET", "/api/v1/domains/g1/cpus").json()
    assert facts["pins"] == {"0": "0"}  # the running vCPU thread too
    hardware(web, "CPUs")
    assert page.get_by_label("Pin vCPU 0").input_value() == "0"


def test_memory_balloon_live(web: Web) -> None:
    page = web.visit("#/vm/g1", "memory-before", ready=".panel h2")
    hardware(web, "Memory")
    page.get_by_text("Balloon now").wait_for()
    page.get_by_label("Current allocation (MiB)").fill("128")
    web.shot("memory")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Changes applied").last.wait_for()
    assert "<currentMemory unit='KiB'>131072</currentMemory>" in xml(web, "g1")
    deadline = time.monotonic() + 30
    while (got := web.daemon.request("GET", "/api/v1/domains/g1/memory").json())[
        "balloon_kib"
    ] != 131072:
        assert time.monotonic() < deadline, f"the balloon stays at {got['balloon_kib']} KiB"
        time.sleep(0.5)


def test_resize_running_disk(web: Web) -> None:
    root = web.daemon.root
    assert sectors(root, "vdb") == 32 * 2048
    page = web.visit("#/vm/g1", "disk-before", ready=".panel h2")
    hardware(web, "Disk vdb")
    page.get_by_label("Capacity").filter(has_text="32.0 MiB").wait_for()
    page.get_by_label("New size").fill("48")
    page.get_by_label("Unit").select_option("MiB")
    page.get_by_role("button", name="Resize").click()
    page.get_by_text("Disk vdb resized to 48.0 MiB").wait_for()
    web.shot("disk-resized")
    deadline = time.monotonic() + 30
    while (size := sectors(root, "vdb")) != 48 * 2048:
        assert time.monotonic() < deadline, f"the guest sees {size} sectors"
        time.sleep(1)
    # shrinking is refused with the reason
    page.get_by_label("New size").fill("16")
    page.get_by_role("button", name="Resize").click()
    page.get_by_text(re.compile("smaller than its current size")).wait_for()


def test_add_hardware_to_running_guest(web: Web) -> None:
    """The live/config choice: an RNG goes to the running guest and its definition; a
    controller (QEMU cannot hot-plug one) defaults to the definition only."""
    page = web.visit("#/vm/g1", "g1-add-hw", ready=".panel h2")
    page.get_by_role("button", name="Add Hardware").click()
    dialog = page.get_by_role("dialog", name="Add New Virtual Hardware")
    dialog.get_by_label("Hardware type").select_option("controller")
    assert dialog.get_by_label("Add to").input_value() == "config"
    dialog.get_by_label("Hardware type").select_option("rng")
    assert dialog.get_by_label("Add to").input_value() == "persistent"
    web.shot("add-rng-live")
    dialog.get_by_role("button", name="Finish").click()
    dialog.wait_for(state="detached")
    live = web.daemon.request("GET", "/api/v1/domains/g1/xml").body.decode()
    assert "<rng model='virtio'>" in live and "<rng model='virtio'>" in xml(web, "g1")


def test_add_controller_and_devices(web: Web) -> None:
    page = web.visit("#/vm/g2", "g2-details", ready=".panel h2")
    # a shut-off disk grows too (qemu-img resize)
    hardware(web, "Disk vda")
    page.get_by_label("Capacity").filter(has_text="64.0 MiB").wait_for()
    page.get_by_label("New size").fill("80")
    page.get_by_label("Unit").select_option("MiB")
    page.get_by_role("button", name="Resize").click()
    page.get_by_text("Disk vda resized to 80.0 MiB").wait_for()
    info = web.daemon.request("GET", "/api/v1/domains/g2/disks/vda").json()
    assert info["capacity"] == 80 * MiB  # qemu-img info of the image

    def add(kind: str, fields: dict[str, str], shot: str | None = None) -> None:
        page.get_by_role("button", name="Add Hardware").click()
        dialog = page.get_by_role("dialog", name="Add New Virtual Hardware")
        dialog.get_by_label("Hardware type").select_option(kind)
        for label, value in fields.items():
            dialog.get_by_label(label, exact=True).select_option(value)
        if shot:
            web.shot(shot)
        dialog.get_by_role("button", name="Finish").click()
        dialog.wait_for(state="detached")

    add("controller", {"Controller type": "scsi", "Model": "virtio-scsi"}, "add-controller")
    hwlist = page.get_by_role("list", name="Hardware")
    hwlist.get_by_role("button", name="Controller scsi virtio-scsi").wait_for()
    add("controller", {"Controller type": "usb", "Model": "qemu-xhci"})
    add("input", {"Type": "tablet", "Bus": "usb"})
    add("rng", {})
    add("watchdog", {"Model": "i6300esb", "Action": "poweroff"})
    add("serial", {})
    text = xml(web, "g2")
    assert re.search(r"<controller type='scsi' index='0' model='virtio-scsi'", text), text
    # a second USB controller next to the default one (index 0, as libvirt adds it)
    assert re.search(r"<controller type='usb' index='1' model='qemu-xhci'", text), text
    assert "<input type='tablet' bus='usb'" in text
    assert re.search(r"<rng model='virtio'>", text)
    assert "<watchdog model='i6300esb' action='poweroff'" in text
    assert len(re.findall(r"<serial type='pty'", text)) == 2
    web.shot("g2-added-hardware")
