"""The Storage page in a real browser (issue 13): the add-pool wizard (its XML made by the
daemon and shown before Finish; a dir pool built and started; an fs pool refused by
pool-define-as's checks, then by its start, and taken back), a file uploaded as a new volume
with progress and downloaded back byte for byte, an upload into an existing volume, a resize
and a delete."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyvirt.api
from tests.webhelp import Web, screens_dir, web_console

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("webstorage")) / "s"
    root.mkdir()
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("stpool", "dir", target=str(root.parent / "images"))
    pool.build()
    pool.start()
    pool.create_volume("small.img", 2 * MiB, format="raw")
    with web_console(root, screens_dir(tmp_path_factory, "storage")) as w:
        yield w


def _select_pool(web: Web, name: str) -> None:
    page = web.page
    page.get_by_role("button", name=name, exact=True).click()
    page.get_by_role("heading", name=f"Volumes of {name}").wait_for()


def test_add_pool_wizard_dir(web: Web) -> None:
    target = web.daemon.root.parent / "pool2"
    page = web.visit("#/storage", "storage", ready="table.grid tbody tr")
    page.get_by_role("button", name="Add Pool").click()
    dialog = page.get_by_role("dialog", name="Add a New Storage Pool")
    dialog.get_by_label("Name", exact=True).fill("pool2")
    dialog.get_by_label("Type", exact=True).select_option("dir")
    for kind in ("fs", "netfs", "logical", "disk", "iscsi"):  # every backend is offered
        assert (
            dialog.get_by_label("Type", exact=True).locator(f"option[value='{kind}']").count() == 1
        )
    dialog.get_by_label("Target path").fill(str(target))
    dialog.get_by_label("Build the pool (create the directory, format, make the VG)").check()
    # the XML the daemon makes (pool-define-as's code) is shown before Finish
    xml = dialog.get_by_label("Pool XML")
    xml.filter(has_text=f"<path>{target}</path>").wait_for()
    assert "<pool type='dir'>" in xml.inner_text() and "<name>pool2</name>" in xml.inner_text()
    uuid = re.search(r"<uuid>([^<]+)</uuid>", xml.inner_text())
    web.shot("add-pool")
    dialog.get_by_role("button", name="Finish").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("button", name="pool2"))
    row.filter(has_text="running").wait_for()
    assert target.is_dir()
    info = web.daemon.request("GET", "/api/v1/pools/pool2").json()
    assert info["state"] == "running"
    assert uuid and info["uuid"] == uuid.group(1)  # exactly the XML shown was defined


def test_add_pool_wizard_fs_refused_then_preview(web: Web) -> None:
    """An fs pool: a relative target is refused by pool-define-as's check (shown in the
    wizard, nothing defined); the fixed spec previews the fs XML with its device and format."""
    page = web.visit("#/storage", "storage-fs", ready="table.grid tbody tr")
    page.get_by_role("button", name="Add Pool").click()
    dialog = page.get_by_role("dialog", name="Add a New Storage Pool")
    dialog.get_by_label("Name", exact=True).fill("fspool")
    dialog.get_by_label("Type", exact=True).select_option("fs")
    assert dialog.get_by_label("Host name").is_hidden()
    dialog.get_by_label("Source path").fill("/dev/pyvirt-no-such-disk")
    dialog.get_by_label("Source format").fill("ext4")
    dialog.get_by_label("Target path").fill("relative/dir")
    dialog.get_by_role("alert").filter(has_text="is not an absolute path").wait_for()
    dialog.get_by_label("Target path").fill("/mnt/fspool")
    xml = dialog.get_by_label("Pool XML")
    xml.filter(has_text="<path>/mnt/fspool</path>").wait_for()
    text = xml.inner_text()
    assert "<pool type='fs'>" in text and "/dev/pyvirt-no-such-disk" in text
    assert "<format type='ext4'/>" in text
    web.shot("add-pool-fs")
    # Finish: defined, the start fails (no such device) and the definition is taken back
    dialog.get_by_role("button", name="Finish").click()
    dialog.get_by_role("alert").filter(has_text="pyvirt-no-such-disk").wait_for()
    names = [p["name"] for p in web.daemon.request("GET", "/api/v1/pools?all=true").json()]
    assert "fspool" not in names
    dialog.get_by_role("button", name="Cancel").click()


def test_add_pool_wizard_iscsi_preview(web: Web) -> None:
    """The iscsi fields (the seed's pool) previewed as pool-define-as makes them."""
    iqn = "iqn.2017-10.com.cloud.www:storage001"
    page = web.visit("#/storage", "storage-iscsi", ready="table.grid tbody tr")
    page.get_by_role("button", name="Add Pool").click()
    dialog = page.get_by_role("dialog", name="Add a New Storage Pool")
    dialog.get_by_label("Name", exact=True).fill("storage01")
    dialog.get_by_label("Type", exact=True).select_option("iscsi")
    dialog.get_by_label("Host name").fill("192.168.2.20:3260")
    dialog.get_by_label("Source path").fill(iqn)
    dialog.get_by_label("Target path").fill("/dev/disk/by-path")
    xml = dialog.get_by_label("Pool XML")
    xml.filter(has_text="/dev/disk/by-path").wait_for()
    text = xml.inner_text()
    assert "<pool type='iscsi'>" in text and f"<device path='{iqn}'/>" in text
    assert "<host name='192.168.2.20' port='3260'/>" in text
    web.shot("add-pool-iscsi")
    dialog.get_by_role("button", name="Cancel").click()
    names = [p["name"] for p in web.daemon.request("GET", "/api/v1/pools?all=true").json()]
    assert "storage01" not in names


def test_upload_download_resize_delete(web: Web, tmp_path: Path) -> None:
    images = web.daemon.root.parent / "images"
    data = os.urandom(6 * MiB + 4096)
    src = tmp_path / "payload.img"
    src.write_bytes(data)
    page = web.visit("#/storage", "storage-volumes", ready="table.grid tbody tr")
    _select_pool(web, "stpool")
    # a file uploaded as a new volume
    page.get_by_label("Volume name").fill("up.img")
    page.get_by_label("Upload a file").set_input_files(str(src))
    page.get_by_role("button", name="Create Volume").click()
    page.get_by_role("status", name="Transfer status").filter(has_text="Uploaded up.img").wait_for()
    assert page.get_by_label("Transfer progress").evaluate("e => e.value") == 100
    page.get_by_role("cell", name="up.img", exact=True).wait_for()
    web.shot("storage-uploaded")
    assert (images / "up.img").read_bytes() == data
    jobs = web.daemon.request("GET", "/api/v1/jobs").json()
    up = [j for j in jobs if j["kind"] == "vol-upload" and j["object"] == "volume/stpool/up.img"]
    assert up and up[-1]["state"] == "completed" and up[-1]["progress"]["done"] == len(data)
    # downloaded back through the link: the same bytes
    with page.expect_download() as info:
        page.get_by_role("link", name="Download up.img").click()
    dl = info.value
    assert dl.suggested_filename == "up.img"
    back = tmp_path / "back.img"
    dl.save_as(str(back))
    assert back.read_bytes() == data
    # an upload into an existing volume (its first bytes)
    head = os.urandom(MiB)
    (tmp_path / "head.bin").write_bytes(head)
    page.get_by_label("File for small.img").set_input_files(str(tmp_path / "head.bin"))
    status = page.get_by_role("status", name="Transfer status")
    status.filter(has_text="Uploaded small.img").wait_for()
    assert (images / "small.img").read_bytes()[:MiB] == head
    # resize (a prompt asks the new capacity) and delete
    page.once("dialog", lambda d: d.accept("0.01"))
    page.get_by_role("button", name="Resize small.img").click()
    page.get_by_text("Volume small.img resized").wait_for()
    info_json = web.daemon.request("GET", "/api/v1/pools/stpool/volumes/small.img").json()
    assert info_json["capacity"] == round(0.01 * 1024**3)
    web.shot("storage-resized")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete up.img").click()
    page.get_by_role("cell", name="up.img", exact=True).wait_for(state="detached")
    assert not (images / "up.img").exists()
