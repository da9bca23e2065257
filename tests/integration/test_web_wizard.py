"""The New VM wizard over ``/api/v1/install`` (issue 13) in a real browser: import an existing
disk and the guest boots; a network install whose kernel and initrd the daemon fetches (a job)
from an HTTP tree on loopback, the installer runs, stops and the final definition boots; a
cloud image with cloud-init, customized before install, then "Begin Installation"."""

from __future__ import annotations

import base64
import functools
import http.server
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from tests.integration.conftest import TINY_CMDLINE
from tests.integration.test_web_details import guest_shell
from tests.webhelp import Web, screens_dir, web_console

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tree_url(tmp_path_factory: pytest.TempPathFactory, tiny_image: Any) -> Iterator[str]:
    """A Debian-netboot-like tree (the tiny kernel and initrd) served on loopback."""
    tree = Path(tmp_path_factory.mktemp("tree"))
    d = tree / "debian-installer" / "amd64"
    d.mkdir(parents=True)
    shutil.copyfile(tiny_image.bzimage, d / "linux")
    shutil.copyfile(tiny_image.initrd, d / "initrd.gz")
    handler = functools.partial(_Quiet, directory=str(tree))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("webwizard")) / "s"
    root.mkdir()
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("wizpool", "dir", target=str(root.parent / "images"))
    pool.build()
    pool.start()
    pool.create_volume("import.qcow2", 32 * MiB, format="qcow2")
    pool.create_volume("cloud.qcow2", 32 * MiB, format="qcow2")
    with web_console(root, screens_dir(tmp_path_factory, "wizard")) as w:
        try:
            yield w
        finally:
            for name in ("wz1", "wz-net", "wz-cloud"):
                w.daemon.request("POST", f"/api/v1/domains/{name}/destroy", {})


def _forget(web: Web, name: str) -> None:
    """Remove what an earlier attempt of a test left (a rerun after a failure starts clean)."""
    web.daemon.request("POST", f"/api/v1/domains/{name}/destroy", {})
    web.daemon.request("DELETE", f"/api/v1/domains/{name}?nvram=true")
    seed = web.daemon.root / "lib" / "images" / "cloud-init" / f"{name}-cidata.iso"
    seed.unlink(missing_ok=True)


def _xml(web: Web, name: str, inactive: bool = True) -> str:
    path = f"/api/v1/domains/{name}/xml?inactive={'true' if inactive else 'false'}"
    return web.daemon.request("GET", path).body.decode()


def _preview(page: Any, text: str) -> str:
    preview = page.get_by_label("Generated XML")
    deadline = time.monotonic() + 20
    while text not in preview.inner_text():
        assert time.monotonic() < deadline, page.get_by_role("status").all_inner_texts()
        time.sleep(0.2)
    return str(preview.inner_text())


def test_import_disk_with_os_defaults_boots(web: Web, tiny_image: Any) -> None:
    _forget(web, "wz1")
    page = web.visit("#/new", "new-vm", ready="form.wizard")
    page.get_by_label("Name", exact=True).fill("wz1")
    assert page.get_by_label("Import existing disk image").is_checked()
    page.get_by_label("Disk pool").select_option("wizpool")
    page.get_by_label("Disk volume").select_option("import.qcow2")
    # an OS variant brings its defaults: Windows 10 wants SATA and e1000e; Debian virtio
    page.get_by_label("Operating system").select_option("win10")
    assert page.get_by_label("Disk bus").input_value() == "sata"
    assert page.get_by_label("NIC model").input_value() == "e1000e"
    assert page.get_by_label("Memory (MiB)").input_value() == "2048"
    page.get_by_label("Operating system").select_option("debian12")
    assert page.get_by_label("Disk bus").input_value() == "virtio"
    page.get_by_label("Memory (MiB)").fill("160")
    page.get_by_label("Network selection").select_option("")
    page.get_by_text("Advanced options").click()
    page.get_by_label("Kernel path").fill(str(tiny_image.kernel))
    page.get_by_label("Initrd path").fill(str(tiny_image.initrd))
    page.get_by_label("Kernel args").fill(TINY_CMDLINE)
    page.get_by_label("Virtualization type").select_option("qemu")
    preview = _preview(page, "<memory unit='KiB'>163840</memory>")
    # the daemon's preview: pyvirt install --print-xml's definition
    assert "<name>wz1</name>" in preview
    assert "<source pool='wizpool' volume='import.qcow2'/>" in preview
    assert f"<kernel>{tiny_image.kernel}</kernel>" in preview
    web.shot("new-vm-import")
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(re.compile(r"#/vm/wz1$"), timeout=30_000)
    page.get_by_role("status", name="State").filter(has_text="running").wait_for(timeout=30_000)
    web.shot("new-vm-import-running")
    assert "vda" in guest_shell(web.daemon.root, "wz1", "cat /proc/partitions")
    web.daemon.request("POST", "/api/v1/domains/wz1/destroy", {})


def test_network_install_fetches_the_tree(web: Web, tree_url: str) -> None:
    _forget(web, "wz-net")
    web.daemon.request("DELETE", "/api/v1/pools/wizpool/volumes/wz-net.qcow2")
    page = web.visit("#/new", "new-vm-net", ready="form.wizard")
    page.get_by_label("Name", exact=True).fill("wz-net")
    page.get_by_label("Network install (HTTP, HTTPS or FTP)").check()
    page.get_by_label("Install location (URL)").fill(tree_url)
    page.get_by_role("button", name="Fetch kernel and initrd").click()
    fetch_status = page.get_by_role("status", name="Fetch status")
    fetch_status.filter(has_text="fetched").wait_for(timeout=30_000)
    assert page.get_by_label("Fetch progress").get_attribute("value") == "100"
    # the "installer" runs a command and powers off; then the final definition boots
    run = base64.b64encode(b"echo INSTALLER-RAN; poweroff -f").decode()
    page.get_by_label("Kernel options").fill(f"{TINY_CMDLINE} pyvirt.run={run}")
    page.get_by_label("Disk pool").select_option("wizpool")
    page.get_by_label("New disk size (GiB)").fill("0.05")
    page.get_by_label("Memory (MiB)").fill("160")
    page.get_by_label("Network selection").select_option("")
    page.get_by_text("Advanced options").click()
    page.get_by_label("Virtualization type").select_option("qemu")
    preview = _preview(page, "the install phase boots")
    fetched = web.daemon.root / "cache" / "install" / "fetched"
    assert re.search(rf"<kernel>{fetched}/[0-9a-f]+/debian-installer/amd64/linux</kernel>", preview)
    assert "<source pool='wizpool' volume='wz-net.qcow2'/>" in preview
    web.shot("new-vm-network")
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(re.compile(r"#/vm/wz-net$"), timeout=60_000)
    jobs = web.daemon.request("GET", "/api/v1/jobs").json()
    job = next(j for j in jobs if j["kind"] == "install" and j["object"] == "domain/wz-net")
    done = web.daemon.request("GET", f"/api/v1/jobs/{job['id']}?wait=30").json()
    deadline = time.monotonic() + 120
    while done["state"] == "running":
        assert time.monotonic() < deadline, done
        done = web.daemon.request("GET", f"/api/v1/jobs/{job['id']}?wait=30").json()
    assert done["state"] == "completed", done
    assert done["result"]["booted_final"] is True
    # the final definition: no installer kernel, and it runs
    assert "<kernel>" not in _xml(web, "wz-net", inactive=False)
    page.get_by_role("status", name="State").filter(has_text="running").wait_for(timeout=30_000)
    web.shot("new-vm-network-final")
    web.daemon.request("POST", "/api/v1/domains/wz-net/destroy", {})


def test_cloud_image_customized_before_install(web: Web) -> None:
    _forget(web, "wz-cloud")
    page = web.visit("#/new", "new-vm-cloud", ready="form.wizard")
    page.get_by_label("Name", exact=True).fill("wz-cloud")
    page.get_by_label("Cloud image with cloud-init").check()
    page.get_by_label("Disk pool").select_option("wizpool")
    page.get_by_label("Disk volume").select_option("cloud.qcow2")
    page.get_by_label("User name").fill("ops")
    page.get_by_label("User password").fill("s3cret-pw")
    page.get_by_label("SSH public key").fill("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest ops@host")
    page.get_by_label("Memory (MiB)").fill("128")
    page.get_by_label("Network selection").select_option("")
    page.get_by_text("Advanced options").click()
    page.get_by_label("Virtualization type").select_option("qemu")
    preview = _preview(page, "wz-cloud-cidata.iso")
    assert "device='cdrom'" in preview
    page.get_by_label("Customize configuration before install").check()
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(re.compile(r"#/vm/wz-cloud$"), timeout=30_000)
    bar = page.get_by_role("complementary", name="Customize before install")
    bar.wait_for()
    web.shot("new-vm-customize")
    page.get_by_role("status", name="State").filter(has_text="shut off").wait_for(timeout=30_000)
    # the NoCloud seed holds the user, the password and the key
    seed = web.daemon.root / "lib" / "images" / "cloud-init" / "wz-cloud-cidata.iso"
    data = seed.read_bytes()
    assert b"cidata" in data.lower()
    assert b"name: ops" in data and b"s3cret-pw" in data and b"ops@host" in data
    # customize: a change made now is in what boots
    xml = _xml(web, "wz-cloud").replace("<memory unit='KiB'>131072</memory>",
                                        "<memory unit='KiB'>147456</memory>")  # fmt: skip
    xml = xml.replace("<currentMemory unit='KiB'>131072</currentMemory>",
                      "<currentMemory unit='KiB'>147456</currentMemory>")  # fmt: skip
    r = web.daemon.request("PUT", "/api/v1/domains/wz-cloud/xml", xml,
                           headers={"Content-Type": "application/xml"})  # fmt: skip
    assert r.status == 200, r.body
    bar.get_by_role("button", name="Begin Installation").click()
    bar.wait_for(state="detached")
    page.get_by_role("status", name="State").filter(has_text="running").wait_for(timeout=30_000)
    assert "<memory unit='KiB'>147456</memory>" in _xml(web, "wz-cloud", inactive=False)
    web.shot("new-vm-cloud-running")
    web.daemon.request("POST", "/api/v1/domains/wz-cloud/destroy", {})
