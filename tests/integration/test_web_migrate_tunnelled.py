"""The Migrate dialog's "Tunnelled" option in a real browser (issue 15): checked, it reaches
pyvirtd's ``POST /api/v1/domains/{name}/migrate`` as ``"tunnelled": true`` and the daemon
takes it (202, a ``domain-migrate`` job; its body refuses unknown fields). The destination
here listens nowhere: the job fails with the daemon's error shown in the dialog, and the VM
(started paused: no boot needed) stays here as it was. A whole tunnelled move is
``test_migrate_tunnel``'s."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, kill_leftovers
from tests.daemonhelp import free_port
from tests.integration.test_lifecycle import define, state
from tests.webhelp import screens_dir, web_console

pytestmark = pytest.mark.qemu


@pytest.fixture
def root() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="pwT", dir="/tmp"))
    yield made
    kill_leftovers(made)
    shutil.rmtree(made, ignore_errors=True)


def test_tunnelled_option_reaches_the_api(
    root: Path, tiny_image: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    screens = screens_dir(tmp_path_factory, "migrate-tunnelled")
    with web_console(root, screens) as web:
        a = Pyvirt(root)
        define(a, tiny_image)
        a("start", "--paused", "t1")
        page = web.visit("#/vm/t1", "vm-t1", ready="h1")
        page.get_by_role("status", name="State").filter(has_text="paused").wait_for()
        page.get_by_role("button", name="Migrate").click()
        dialog = page.get_by_role("dialog", name="Migrate the virtual machine 't1'")
        dialog.get_by_label("Destination URI").fill(f"pyvirt+tls://127.0.0.1:{free_port()}/")
        dialog.get_by_label("Tunnelled", exact=False).check()
        web.shot("migrate-tunnelled-dialog")
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/api/v1/domains/t1/migrate")
        ) as answer:
            dialog.get_by_role("button", name="Migrate").click()
        resp = answer.value
        assert resp.request.post_data_json["tunnelled"] is True
        assert resp.status == 202, resp.text()
        job = resp.json()["job"]
        assert job["kind"] == "domain-migrate"
        # nothing listens there: the job's error, in the dialog
        alert = dialog.get_by_role("alert")
        alert.wait_for(timeout=60_000)
        web.shot("migrate-tunnelled-failed")
        done = web.daemon.get(f"/api/v1/jobs/{job['id']}")
        assert done["state"] == "failed", done
        assert done["error"]["error"] in alert.text_content()
        assert state(a, "t1") == "paused (user)"
