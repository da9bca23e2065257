"""Backups as pyvirtd's jobs: the CLI talks to a real daemon through a second path to its
socket (so the connection counts as another host's and nothing runs embedded).

One tiny guest with a qcow2 disk full of random data: a push backup slowed down by
``--bandwidth`` is aborted halfway with ``domjobabort`` (no partial target, no stale state or
lock: the next backup completes and equals the disk); a pull backup's NBD export is read and
ended with ``domjobabort``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_checkpoints import push_xml, same
from tests.integration.test_daemon_snapshots import remote  # noqa: F401 (fixture)
from tests.integration.test_lifecycle import domain_xml, wait_for
from tests.integration.test_snapshots import disk_xml

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def random_disk(path: Path, mib: int) -> Path:
    raw = path.with_suffix(".raw")
    raw.write_bytes(os.urandom(mib * MiB))
    subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(path)], check=True)
    raw.unlink()
    return path


def test_backup_jobs_through_the_daemon(
    pyvirt: Pyvirt,
    remote: tuple[list[str], Path],  # noqa: F811 (the fixture)
    tiny_image: Any,
) -> None:
    c, _ = remote
    disk = random_disk(pyvirt.root / "b.qcow2", 24)
    xml = pyvirt.root / "b.xml"
    xml.write_text(domain_xml(tiny_image, "b", extra_devices=disk_xml(disk)))
    pyvirt(*c, "define", str(xml))
    pyvirt(*c, "start", "b")

    # a push backup at 4 MiB/s, aborted halfway: its target is removed
    target = pyvirt.root / "slow.qcow2"
    res = pyvirt(*c, "backup-begin", "b", "--backupxml", push_xml(pyvirt, target),
                 "--bandwidth", "4")  # fmt: skip
    assert res.out == "Backup started\n"
    assert "<domainbackup mode='push'>" in pyvirt(*c, "backup-dumpxml", "b").out

    def processed() -> bool:
        out = pyvirt(*c, "domjobinfo", "b").out
        assert "Operation:        Backup" in out, out
        return "Data processed:   0.00 B" not in out

    wait_for(processed, 20, "the backup to copy something")
    assert target.exists()
    assert pyvirt(*c, "domjobabort", "b").rc == 0
    assert not target.exists()
    assert pyvirt(*c, "domjobinfo", "b").out.startswith("Job type:         None")
    assert "Job type:         Cancelled" in pyvirt(*c, "domjobinfo", "b", "--completed").out
    jobs = json.loads(pyvirt(*c, "job-list", "--all", "--json").out)
    assert [(j["kind"], j["state"]) for j in jobs] == [("backup", "cancelled")]

    # no stale state or lock: the next backup (waited for, with progress) completes
    full = pyvirt.root / "full.qcow2"
    res = pyvirt(*c, "backup-begin", "b", "--backupxml", push_xml(pyvirt, full),
                 "--wait", "--verbose")  # fmt: skip
    assert res.out == "Backup started\n\nBackup completed\n"
    assert "Backup: [100 %]" in res.err
    assert same(full, disk)

    # pull mode: the NBD export over the daemon, ended by domjobabort (scratch file removed)
    pull = pyvirt.root / "pull.xml"
    pull.write_text("<domainbackup mode='pull'><server transport='unix'/></domainbackup>")
    assert pyvirt(*c, "backup-begin", "b", "--backupxml", str(pull)).out == "Backup started\n"
    out = pyvirt(*c, "backup-dumpxml", "b").out
    sock = out.split("socket='")[1].split("'")[0]
    assert "Operation:        Backup" in pyvirt(*c, "domjobinfo", "b").out
    got = pyvirt.root / "got.qcow2"
    opts = f"driver=nbd,server.type=unix,server.path={sock},export=vda"
    subprocess.run(["qemu-img", "convert", "--image-opts", opts, "-O", "qcow2", str(got)],
                   check=True)  # fmt: skip
    assert same(got, disk)
    assert len(list(pyvirt.root.glob("b.qcow2.scratch-*"))) == 1
    assert pyvirt(*c, "domjobabort", "b").rc == 0
    assert not list(pyvirt.root.glob("b.qcow2.scratch-*"))
    assert pyvirt(*c, "domjobinfo", "b").out.startswith("Job type:         None")
    states = [j["state"] for j in json.loads(pyvirt(*c, "job-list", "--all", "--json").out)]
    assert states == ["cancelled", "completed", "completed"]
    pyvirt(*c, "destroy", "b")
