"""Snapshots, save/restore, change-media and send-key through a real pyvirtd's REST API.

The CLI talks to the daemon through a second path to its socket (a symlink outside the state
root), so the connection counts as another host's: a verb the REST API did not carry would
fail with "not available over a remote connection" instead of quietly running embedded.
One tiny guest: an internal snapshot with memory, a revert, a medium ejected and inserted,
a key pressed, a save and a restore (a daemon job), the snapshot deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.daemonhelp import pyvirtd as start_pyvirtd
from tests.integration.test_daemon_domains import http
from tests.integration.test_device_xml import medium
from tests.integration.test_disks import guest, make_image
from tests.integration.test_lifecycle import domain_xml, state, wait_for, wait_marker
from tests.integration.test_snapshots import disk_xml, read_marker, source_of, write_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


@pytest.fixture
def remote(pyvirt: Pyvirt) -> Iterator[tuple[list[str], Path]]:
    """``-c pyvirt+unix://LINK`` of a running daemon (LINK: a symlink to its socket that
    matches no local state directory), and its socket."""
    with start_pyvirtd(pyvirt.root) as d:
        link_dir = Path(tempfile.mkdtemp(prefix="pvl", dir="/tmp"))
        link = link_dir / "d.sock"
        link.symlink_to(d.sock)
        try:
            yield ["-c", f"pyvirt+unix://{link}"], d.sock
        finally:
            link.unlink()
            link_dir.rmdir()


def cdrom(pv: Pyvirt) -> str:
    """The first bytes of the guest's CD-ROM medium, or NOMEDIUM."""
    out = guest(pv, "s", "dd if=/dev/sr0 bs=2048 count=1 2>/dev/null | head -c 8 || true; echo")
    return out.strip().strip("\0") or "NOMEDIUM"


def test_snapshots_save_media_through_the_daemon(
    pyvirt: Pyvirt, remote: tuple[list[str], Path], tiny_image: Any
) -> None:
    c, sock = remote
    disk = make_image(pyvirt.root / "d.qcow2", "qcow2", 16 * MiB)
    disc_a = medium(pyvirt.root / "a.iso", "DISC-AAA")
    disc_b = medium(pyvirt.root / "b.iso", "DISC-BBB")
    cd = (f"<disk type='file' device='cdrom'><source file='{disc_a}'/>"
          "<target dev='hdc' bus='ide'/><readonly/></disk>")  # fmt: skip
    xml = pyvirt.root / "s.xml"
    xml.write_text(domain_xml(tiny_image, "s", extra_devices=disk_xml(disk) + cd))
    pyvirt(*c, "define", str(xml))
    pyvirt(*c, "start", "s")
    wait_marker(pyvirt, "s")

    # a verb the REST API does not carry is refused on this connection (not run embedded)
    res = pyvirt(*c, "domfsinfo", "s", check=False)
    assert res.rc == 1 and "not available over a remote connection" in res.err

    # snapshots
    write_marker(pyvirt, "s", "MARK1")
    out = pyvirt(*c, "snapshot-create-as", "s", "s1", "first").out
    assert out == "Domain snapshot s1 created\n"
    write_marker(pyvirt, "s", "MARK2")
    assert pyvirt(*c, "snapshot-list", "s", "--name").out == "s1\n\n"
    assert pyvirt(*c, "snapshot-current", "s", "--name").out == "s1\n"
    info = pyvirt(*c, "snapshot-info", "s", "s1").out
    assert "Name:           s1" in info and "Location:       internal" in info
    listing = json.loads(pyvirt(*c, "snapshot-list", "s", "--json").out)
    assert [(s["name"], s["state"], s["current"]) for s in listing] == [("s1", "running", True)]
    assert "<description>first</description>" in pyvirt(*c, "snapshot-dumpxml", "s", "s1").out
    pyvirt.env["EDITOR"] = "sed -i -e s,<description>first<,<description>edited<,"
    out = pyvirt(*c, "snapshot-edit", "s", "s1").out
    del pyvirt.env["EDITOR"]
    assert out == "Snapshot 's1' XML configuration edited.\n\n"
    assert "<description>edited</description>" in pyvirt(*c, "snapshot-dumpxml", "s", "s1").out
    assert pyvirt(*c, "snapshot-current", "s", "--name").out == "s1\n"  # still current
    res = pyvirt(*c, "snapshot-info", "s", "nope", check=False)
    assert res.rc == 1 and res.err.startswith("error: ") and "nope" in res.err
    # the snapshot XML has an ETag; a stale If-Match is refused with 412
    status, headers, body = http(sock, "GET", "/api/v1/domains/s/snapshots/s1/xml")
    assert status == 200 and headers["etag"].strip('"')
    status, _, body = http(sock, "PUT", "/api/v1/domains/s/snapshots/s1/xml", body,
                           {"If-Match": '"0000"', "Content-Type": "application/xml"})  # fmt: skip
    assert status == 412 and json.loads(body)["code"] == "precondition_failed"

    pyvirt(*c, "snapshot-revert", "s", "s1")
    assert state(pyvirt, "s").startswith("running")
    assert read_marker(pyvirt, "s") == "MARK1"

    # change-media and send-key
    assert cdrom(pyvirt) == "DISC-AAA"
    out = pyvirt(*c, "change-media", "s", "hdc", "--eject").out
    assert out == "Successfully ejected media.\n"
    assert cdrom(pyvirt) == "NOMEDIUM"
    pyvirt(*c, "change-media", "s", "hdc", str(disc_b), "--insert")
    wait_for(lambda: cdrom(pyvirt) == "DISC-BBB", 20, "the new medium in the guest")
    assert pyvirt(*c, "send-key", "s", "KEY_A").rc == 0
    pyvirt(*c, "desc", "s", "--new-desc", "through the daemon")
    assert pyvirt(*c, "desc", "s").out == "through the daemon\n"

    # save and restore: daemon jobs; the guest continues (its marker is still the reverted one)
    file = pyvirt.root / "s.save"
    out = pyvirt(*c, "save", "s", str(file), "--verbose")
    assert out.out == f"\nDomain 's' saved to {file}\n\n" and out.err.endswith("Save: [100 %]\n")
    assert state(pyvirt, "s") == "shut off (saved)"
    assert "<name>s</name>" in pyvirt(*c, "save-image-dumpxml", str(file)).out
    assert pyvirt(*c, "restore", str(file)).out == f"Domain restored from {file}\n\n"
    assert state(pyvirt, "s").startswith("running")
    assert read_marker(pyvirt, "s") == "MARK1"
    jobs = json.loads(pyvirt(*c, "job-list", "--all", "--json").out)
    assert {"domain-save", "domain-restore"} <= {j["kind"] for j in jobs}

    # managed save: start resumes it
    pyvirt(*c, "managedsave", "s")
    assert "s" in pyvirt(*c, "list", "--all", "--managed-save").out
    assert "<name>s</name>" in pyvirt(*c, "managedsave-dumpxml", "s").out
    pyvirt(*c, "start", "s")
    assert read_marker(pyvirt, "s") == "MARK1"

    # delete (internal: answered at once)
    assert pyvirt(*c, "snapshot-delete", "s", "s1").out == "Domain snapshot s1 deleted\n"
    assert pyvirt(*c, "snapshot-list", "s", "--name").out == "\n"

    # an external disk-only snapshot; its delete merges the overlay back (a daemon job)
    overlay = pyvirt.root / "e1.qcow2"
    pyvirt(*c, "snapshot-create-as", "s", "e1", "--disk-only", "--diskspec", f"vda,file={overlay}")
    assert overlay.is_file() and source_of(pyvirt, "s") == str(overlay)
    write_marker(pyvirt, "s", "MARK3")  # into the overlay
    assert pyvirt(*c, "snapshot-delete", "s", "e1").out == "Domain snapshot e1 deleted\n"
    assert not overlay.exists() and source_of(pyvirt, "s") == str(disk)
    assert read_marker(pyvirt, "s") == "MARK3"
    jobs = json.loads(pyvirt(*c, "job-list", "--all", "--json").out)
    assert "snapshot-delete" in {j["kind"] for j in jobs}

    # block jobs: an overlay without metadata, then blockcommit --active --pivot (a daemon job)
    top = pyvirt.root / "top.qcow2"
    pyvirt(*c, "snapshot-create-as", "s", "t", "--disk-only", "--no-metadata",
           "--diskspec", f"vda,file={top}")  # fmt: skip
    assert source_of(pyvirt, "s") == str(top)
    out = pyvirt(*c, "blockcommit", "s", "vda", "--active", "--pivot", "--delete", "--verbose")
    assert out.out.endswith("\nSuccessfully pivoted\n") and "[100 %]" in out.err + out.out
    assert source_of(pyvirt, "s") == str(disk) and not top.exists()
    assert pyvirt(*c, "blockjob", "s", "vda", "--info").out == "No current block job for vda\n"

    # --halt: the snapshot, then the domain stops
    assert pyvirt(*c, "snapshot-create-as", "s", "h1", "--halt").out == (
        "Domain snapshot h1 created\n"
    )
    assert state(pyvirt, "s").startswith("shut off")
    info = pyvirt(*c, "snapshot-info", "s", "h1").out
    assert "State:          running" in info
    os.unlink(file)
