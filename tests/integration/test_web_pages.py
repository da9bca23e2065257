"""The web console's other pages (issue 13): Storage creates and deletes a volume; Networks
defines and deletes a network; Tasks lists a volume clone job with its result. (The New VM
wizard's tests are in test_web_wizard.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyvirt.api
from tests.webhelp import Web, screens_dir, web_console

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("webpages")) / "s"
    root.mkdir()
    conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    pool, _ = conn.pools.define_as("webpool", "dir", target=str(root.parent / "images"))
    pool.build()
    pool.start()
    pool.create_volume("import.qcow2", 32 * MiB, format="qcow2")
    pool.create_volume("spare.qcow2", 16 * MiB, format="qcow2")
    with web_console(root, screens_dir(tmp_path_factory, "pages")) as w:
        try:
            yield w
        finally:
            w.daemon.request("POST", "/api/v1/domains/w1/destroy", {})


def test_storage_page_creates_and_deletes_a_volume(web: Web) -> None:
    images = web.daemon.root.parent / "images"
    page = web.visit("#/storage", "storage", ready="table.grid tbody tr")
    page.get_by_role("button", name="webpool").click()
    page.get_by_role("heading", name="Volumes of webpool").wait_for()
    page.get_by_label("Volume name").fill("new1.qcow2")
    page.get_by_label("Capacity (GiB)").fill("0.05")
    page.get_by_role("button", name="Create Volume").click()
    page.get_by_role("cell", name="new1.qcow2", exact=True).wait_for()
    assert (images / "new1.qcow2").exists()
    web.shot("storage-volume")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete new1.qcow2").click()
    page.get_by_role("cell", name="new1.qcow2", exact=True).wait_for(state="detached")
    assert not (images / "new1.qcow2").exists()


def test_networks_page_defines_and_deletes(web: Web) -> None:
    page = web.visit("#/networks", "networks", ready="table.grid")
    page.get_by_role("button", name="Add Network").click()
    dialog = page.get_by_role("dialog", name="Create a new virtual network")
    dialog.get_by_label("Name").fill("webnet")
    dialog.get_by_label("Mode").select_option("isolated")
    dialog.get_by_role("button", name="Finish").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("button", name="webnet"))
    row.wait_for()
    assert web.daemon.request("GET", "/api/v1/networks/webnet").status == 200
    web.shot("networks-defined")
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert web.daemon.request("GET", "/api/v1/networks/webnet").status == 404


def test_tasks_page_shows_a_job(web: Web) -> None:
    r = web.daemon.request("POST", "/api/v1/pools/webpool/volumes/spare.qcow2/clone",
                           {"name": "copy.qcow2"})  # fmt: skip
    assert r.status == 202, r.body
    job = r.json()["job"]["id"]
    page = web.visit("#/tasks", "tasks", ready="table.grid")
    row = page.locator(f"tr[data-job='{job}']")
    deadline = time.monotonic() + 30
    while "completed" not in row.inner_text():
        assert time.monotonic() < deadline, row.inner_text()
        time.sleep(0.2)
    assert "webpool/spare.qcow2" in row.inner_text()
    web.shot("tasks")
