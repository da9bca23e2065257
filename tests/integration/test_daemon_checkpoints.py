"""Checkpoints through a real pyvirtd from a connection that counts as another host's (a
symlink to the daemon's socket, as in test_daemon_snapshots): every ``checkpoint-*`` verb
is a REST request, none runs embedded. The guest stays shut off: the checkpoints are real
persistent dirty bitmaps in its qcow2 image (``qemu-img bitmap``), checked with
``qemu-img info``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_daemon_snapshots import remote  # noqa: F401 - a fixture
from tests.integration.test_disks import make_image
from tests.integration.test_lifecycle import domain_xml
from tests.integration.test_snapshots import disk_xml

pytestmark = pytest.mark.qemu


def bitmaps(image: Path) -> dict[str, bool]:
    """The image's persistent bitmaps: name -> recording."""
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(image)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    data = json.loads(out).get("format-specific", {}).get("data", {})
    return {b["name"]: "auto" in b["flags"] for b in data.get("bitmaps", [])}


def test_checkpoint_verbs_through_the_daemon(
    pyvirt: Pyvirt,
    remote: tuple[list[str], Path],  # noqa: F811 - the fixture imported above
    tiny_image: Any,
) -> None:
    c, _ = remote
    disk = make_image(pyvirt.root / "c.qcow2", "qcow2", 16 * 1024 * 1024)
    xml = pyvirt.root / "c.xml"
    xml.write_text(domain_xml(tiny_image, "cp", extra_devices=disk_xml(disk)))
    pyvirt(*c, "define", str(xml))

    assert pyvirt(*c, "checkpoint-create-as", "cp", "c1", "first").out == (
        "Domain checkpoint c1 created\n"
    )
    assert bitmaps(disk) == {"c1": True}
    out = pyvirt(*c, "checkpoint-create-as", "cp", "--name", "c2", "--diskspec", "vda").out
    assert out == "Domain checkpoint c2 created\n"
    assert bitmaps(disk) == {"c1": False, "c2": True}  # only the newest records
    assert pyvirt(*c, "checkpoint-list", "cp", "--name").out == "c1\nc2\n\n"
    assert pyvirt(*c, "checkpoint-parent", "cp", "c2").out == "c1\n"
    info = pyvirt(*c, "checkpoint-info", "cp", "c2").out
    assert "Parent:         c1" in info and "Children:       0" in info
    dump = pyvirt(*c, "checkpoint-dumpxml", "cp", "c1", "--no-domain").out
    assert "<description>first</description>" in dump and "<domain>" not in dump
    listed = json.loads(pyvirt(*c, "checkpoint-list", "cp", "--json").out)
    assert [(d["name"], d["parent"]) for d in listed] == [("c1", None), ("c2", "c1")]

    pyvirt.env["EDITOR"] = "sed -i -e s,<description>first<,<description>edited<,"
    try:
        pyvirt(*c, "checkpoint-edit", "cp", "c1")
    finally:
        del pyvirt.env["EDITOR"]
    dump = pyvirt(*c, "checkpoint-dumpxml", "cp", "c1", "--no-domain").out
    assert "<description>edited</description>" in dump

    # deleting the newest merges nothing away from its parent, which records again
    out = pyvirt(*c, "checkpoint-delete", "cp", "c2").out
    assert out == "Domain checkpoint c2 deleted\n"
    assert bitmaps(disk) == {"c1": True}
    res = pyvirt(*c, "checkpoint-info", "cp", "c2", check=False)
    assert res.rc == 1 and "no checkpoint 'c2'" in res.err
    pyvirt(*c, "checkpoint-delete", "cp", "c1")
    assert bitmaps(disk) == {} and pyvirt(*c, "checkpoint-list", "cp", "--name").out == "\n"
    # the daemon did the work: its log has the requests
    audit = (pyvirt.root / "log" / "daemon" / "audit.log").read_text()
    assert "/api/v1/domains/cp/checkpoints/create-as" in audit
