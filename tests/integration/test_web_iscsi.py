"""The seed's iSCSI pool made with the web console's add-pool wizard (issue 13) against a
user-space tgtd on this machine's loopback (a free port, hence a host-wide file): the XML shown
before Finish, the pool running with the LUN as a volume of its exact size (UI and API), then
stopped and deleted from the UI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemonhelp import free_port
from tests.integration.storage_servers import need, tgtd
from tests.webhelp import screens_dir, web_console

MiB = 1024 * 1024


def test_add_iscsi_pool_from_the_ui(tmp_path_factory: pytest.TempPathFactory) -> None:
    need("iscsi-ls", "iscsi-readcapacity16")
    root = Path(tmp_path_factory.mktemp("webiscsi")) / "s"
    port = free_port()
    screens = screens_dir(tmp_path_factory, "iscsi")
    with tgtd(None, port) as target, web_console(root, screens) as web:
        target.add_lun(1, 24 * MiB)
        page = web.page
        api = web.daemon.request
        try:
            web.visit("#/storage", "storage-iscsi", ready="table.grid")
            page.get_by_role("button", name="Add Pool").click()
            dialog = page.get_by_role("dialog", name="Add a New Storage Pool")
            dialog.get_by_label("Name", exact=True).fill("storage01")
            dialog.get_by_label("Type", exact=True).select_option("iscsi")
            dialog.get_by_label("Host name").fill(f"127.0.0.1:{port}")
            dialog.get_by_label("Source path").fill(target.iqn)
            dialog.get_by_label("Target path").fill("/dev/disk/by-path")
            xml = dialog.get_by_label("Pool XML")
            xml.filter(has_text="/dev/disk/by-path").wait_for()
            text = xml.inner_text()
            assert "<pool type='iscsi'>" in text and f"<device path='{target.iqn}'/>" in text
            assert f"<host name='127.0.0.1' port='{port}'/>" in text
            web.shot("add-pool-iscsi-tgtd")
            dialog.get_by_role("button", name="Finish").click()
            dialog.wait_for(state="detached")

            # running, the LUN listed with its size: in the UI...
            row = page.get_by_role("row").filter(has=page.get_by_role("button", name="storage01"))
            row.filter(has_text="running").wait_for()
            assert "iscsi" in row.inner_text() and "24.0 MiB" in row.inner_text()
            page.get_by_role("button", name="storage01", exact=True).click()
            page.get_by_role("heading", name="Volumes of storage01").wait_for()
            vol = page.get_by_role("row").filter(
                has=page.get_by_role("cell", name="unit:0:0:1", exact=True)
            )
            vol.wait_for()
            assert "24.0 MiB" in vol.inner_text()
            assert f"iscsi://127.0.0.1:{port}/{target.iqn}/1" in vol.inner_text()
            web.shot("iscsi-pool-volumes")
            # ... and through the API
            info = api("GET", "/api/v1/pools/storage01").json()
            assert info["state"] == "running" and info["type"] == "iscsi"
            vols = api("GET", "/api/v1/pools/storage01/volumes").json()
            assert [(v["name"], v["capacity"]) for v in vols] == [("unit:0:0:1", 24 * MiB)]

            # stopped, then deleted from the UI
            row.get_by_role("button", name="Stop").click()
            row.filter(has_text="inactive").wait_for()
            assert api("GET", "/api/v1/pools/storage01").json()["state"] == "inactive"
            page.once("dialog", lambda d: d.accept())
            page.get_by_role("button", name="Delete pool storage01").click()
            row.wait_for(state="detached")
            web.shot("iscsi-pool-deleted")
            assert api("GET", "/api/v1/pools/storage01").status == 404
        finally:
            api("POST", "/api/v1/pools/storage01/destroy")
            api("DELETE", "/api/v1/pools/storage01")
