"""Live migration between two pyvirt "hosts" on this machine (two state directories sharing
the disk image's directory, as hosts sharing storage do): the guest continues on the
destination (no second boot, its uptime keeps counting, a shell variable survives), the
source has no QEMU left, the definition moves (also under another name, ``--dname``, left
paused, ``--suspend``; back with ``--timeout --timeout-suspend``); a cancelled or failed
migration leaves the guest running on the source and nothing on the destination."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import PyvirtError
from pyvirt.progress import CancelledError, CancelToken
from tests.conftest import PYVIRT, Pyvirt, in_background
from tests.integration.migratehelp import other
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
    wait_marker,
)
from tests.integration.test_save_restore import _disk, uptime

__all__ = ["other"]  # a fixture (tests take it by name)

pytestmark = pytest.mark.qemu


def _uri(pv: Pyvirt) -> str:
    return f"pyvirt:///embed?root={pv.root}"


def _qemu_dirs(pv: Pyvirt) -> list[str]:
    run = pv.root / "run" / "qemu"
    # a dot-name is a removed run directory's tombstone, not a domain
    return (
        [p.name for p in run.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if run.is_dir()
        else []
    )


def _booted(pyvirt: Pyvirt, tiny_image: Any, disk: Path | None = None) -> None:
    if disk is None:
        disk = pyvirt.root / "d.img"
        disk.write_bytes(b"\0" * (1 << 20))
    define(pyvirt, tiny_image, extra_devices=_disk(disk))
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", "export KEEP=moved-$((6*7))")


def test_live_migration_moves_the_running_guest(
    pyvirt: Pyvirt, other: Pyvirt, tiny_image: Any
) -> None:
    _booted(pyvirt, tiny_image)
    before = uptime(pyvirt, "t1")
    out = pyvirt(
        "migrate", "--live", "--persistent", "--undefinesource", "--verbose", "t1", _uri(other)
    )
    assert out.out == ""
    assert out.err.endswith("Migration: [100 %]\n")
    # the destination runs it, without a second boot, from where it was
    assert state(other, "t1") == "running (migrated)"
    assert guest(other, "t1", "echo $KEEP").strip() == "moved-42"
    assert uptime(other, "t1") >= before
    assert MARKER not in console_log(other, "t1").read_text(errors="replace")
    assert "t1" in other("list", "--persistent", "--name").out.split()
    # the source has no QEMU and no definition left
    assert _qemu_dirs(pyvirt) == []
    res = pyvirt("domstate", "t1", check=False)
    assert res.rc == 1 and "not found" in res.err
    # and back to a host that knows it (same UUID), keeping the definition on both
    back = pyvirt.root / "back.xml"
    back.write_text(other("dumpxml", "--inactive", "t1").out)
    pyvirt("define", str(back))
    # slowly (1 MiB/s), with --timeout 1 --timeout-suspend: after a second the guest stands
    # still at B so that the rest goes at once (a bandwidth raised then lets it end)
    with in_background([*PYVIRT, "migrate", "--live", "--bandwidth", "1", "--timeout", "1",
                        "--timeout-suspend", "t1", _uri(pyvirt)], other.env) as proc:  # fmt: skip
        wait_for(lambda: state(other, "t1") == "paused (migrating)", 30, "the timeout's pause")
        other("migrate-setspeed", "t1", "--bandwidth", "4096")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert state(pyvirt, "t1") == "running (migrated)"
    assert state(other, "t1") == "shut off (migrated)"
    info = other("domjobinfo", "--completed", "t1").out  # what it measured
    assert info.startswith("Job type:         Completed\nOperation:        Outgoing migration")
    assert "Total downtime:" in info and "Iteration:" in info
    assert guest(pyvirt, "t1", "echo $KEEP").strip() == "moved-42"
    # a host with another domain of that name (another UUID) refuses it, nothing changes
    clash = other.root / "clash.xml"
    clash.write_text(back.read_text().split("<uuid>")[0] + back.read_text().split("</uuid>")[1])
    other("undefine", "t1")
    other("define", str(clash))
    res = pyvirt("migrate", "--live", "t1", _uri(other), check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0].startswith("error: domain 't1' already exists with uuid ")
    assert state(pyvirt, "t1") == "running (migrated)"
    assert _qemu_dirs(other) == []
    # under another name there (--dname), left paused (--suspend), not live (the guest
    # paused for the copy)
    pyvirt("migrate", "--suspend", "--dname", "t2", "t1", _uri(other))
    assert state(other, "t2").startswith("paused")
    other("resume", "t2")
    assert guest(other, "t2", "echo $KEEP").strip() == "moved-42"
    assert state(pyvirt, "t1") == "shut off (migrated)"


def test_cancelled_and_failed_migrations_leave_the_guest_on_the_source(
    pyvirt: Pyvirt, other: Pyvirt, tiny_image: Any
) -> None:
    # its disk: 8 MiB, sparse, on a file system of 1 MiB (for --abort-on-error below)
    small = pyvirt.root / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        disk = small / "d.img"
        disk.touch()
        os.truncate(disk, 8 << 20)
        _booted(pyvirt, tiny_image, disk)
        _cancelled_and_failed(pyvirt, other)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _cancelled_and_failed(pyvirt: Pyvirt, other: Pyvirt) -> None:
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    token = CancelToken()
    # slow enough (1 MiB/s) to be cancelled halfway
    policy = pyvirt_api.MigrationPolicy(bandwidth=1 << 20)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done > 0:
            token.cancel()

    with pytest.raises(CancelledError):
        src.migrate(dest, policy=policy, progress=progress, cancel=token)
    assert seen
    assert state(pyvirt, "t1") == "running (booted)"
    assert guest(pyvirt, "t1", "echo $KEEP").strip() == "moved-42"
    assert _qemu_dirs(other) == []
    assert other("list", "--all", "--name").out.strip() == ""
    # a destination that cannot run it (a missing network): refused there, nothing moves
    xml = src.xml_desc().replace(
        "</devices>", "<interface type='network'><source network='nope'/></interface></devices>"
    )
    with pytest.raises(PyvirtError) as err:
        src.migrate(dest, xml=xml)
    assert "nope" in str(err.value)
    assert state(pyvirt, "t1") == "running (booted)"
    assert _qemu_dirs(other) == []
    # --abort-on-error: the guest stops on an I/O error (its disk's file system is full)
    # while it moves: the migration is cancelled, it waits paused on the source
    with in_background([*PYVIRT, "migrate", "--live", "--abort-on-error", "--bandwidth", "1",
                        "t1", _uri(other)], pyvirt.env) as proc:  # fmt: skip
        wait_for(lambda: src.migration_status().transferred > 0, 30, "the migration")
        guest(pyvirt, "t1", "(sleep 1; dd if=/dev/urandom of=/dev/vda bs=1M count=4 "
                            "conv=fsync 2>/dev/null) & echo started")  # fmt: skip
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.splitlines()[0] == (
        "error: migration of domain 't1' aborted: the guest stopped on an I/O error of a disk "
        "(--abort-on-error)"
    )
    assert state(pyvirt, "t1") == "paused (I/O error)"
    assert _qemu_dirs(other) == []
    # not running: a clear refusal
    pyvirt("destroy", "t1")
    res = pyvirt("migrate", "--live", "t1", _uri(other), check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == "error: domain 't1' is not running"
    # --offline moves the definition only
    pyvirt("migrate", "--offline", "--undefinesource", "t1", _uri(other))
    assert state(other, "t1").startswith("shut off")
    assert pyvirt("list", "--all", "--name").out.strip() == ""
