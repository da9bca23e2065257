"""blockcommit/blockpull/blockcopy/blockjob: virsh's option rules and output, without QEMU."""

from __future__ import annotations

import pytest

from pyvirt.api.domain_blockjobs import BlockJobInfo, BlockJobResult
from pyvirt.cli.commands.blockjob import (
    bandwidth_bytes,
    exclusive,
    info_text,
    job_progress,
    outcome_text,
    pretty_speed,
    waiting,
)
from pyvirt.errors import InvalidConfigError
from tests.conftest import Pyvirt

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("done", "total", "text"),
    [(0, 0, "Block Commit: [100 %]"), (45, 100, "Block Commit: [ 45 %]"),
     (99_999, 100_000, "Block Commit: [ 99 %]"), (100, 100, "Block Commit: [100 %]"),
     (0, 1000, "Block Commit: [  0 %]")],
)  # fmt: skip
def test_progress_is_virshs(done: int, total: int, text: str) -> None:
    assert job_progress("Block Commit", done, total) == text


def test_bandwidth_text_and_units() -> None:
    assert pretty_speed(10 * MiB) == "    Bandwidth limit: 10485760 bytes/s (10.000 MiB/s)"
    assert pretty_speed(512) == "    Bandwidth limit: 512 bytes/s (512.000 B/s)"
    assert bandwidth_bytes(3, in_bytes=False) == 3 * MiB
    assert bandwidth_bytes(3, in_bytes=True) == 3
    assert bandwidth_bytes(None, in_bytes=False) is None
    with pytest.raises(InvalidConfigError, match="--bandwidth"):
        bandwidth_bytes(-1, in_bytes=False)


def test_info_text() -> None:
    job = BlockJobInfo("vda", "copy", 50, 200, MiB, False, "running")
    assert info_text(job, "vda") == (
        "Block Copy: [ 25 %]    Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)"
    )
    job = BlockJobInfo("vda", "active-commit", 7, 7, 0, True, "ready")
    assert info_text(job, "vda") == "Active Block Commit: [100 %]"
    assert info_text(job, "vda", raw=True) == (
        " type=Active Block Commit\n bandwidth=0\n cur=7\n end=7"
    )
    assert info_text(None, "vdb") == "No current block job for vdb"


@pytest.mark.parametrize(
    ("kind", "outcome", "text"),
    [("active-commit", "pivoted", "\nSuccessfully pivoted"),
     ("active-commit", "ready", "\nNow in synchronized phase"),
     ("active-commit", "kept-overlay", "\nCommit complete, overlay image kept"),
     ("commit", "completed", "\nCommit complete"), ("pull", "completed", "\nPull complete"),
     ("copy", "ready", "\nNow in mirroring phase"), ("copy", "finished", "\nSuccessfully copied"),
     ("copy", "started", "Block Copy started"),
     ("active-commit", "started", "Active Block Commit started")],
)  # fmt: skip
def test_closing_lines(kind: str, outcome: str, text: str) -> None:
    assert outcome_text(BlockJobResult("vda", kind, outcome)) == text


def test_option_rules() -> None:
    names = "--timeout, --wait"
    assert waiting(wait=False, implied=True, timeout=None, verbose=True, async_=False,
                   names=names)  # fmt: skip
    assert waiting(wait=False, implied=False, timeout=5, verbose=False, async_=False,
                   names=names)  # fmt: skip
    assert not waiting(wait=False, implied=False, timeout=None, verbose=False, async_=False,
                       names=names)  # fmt: skip
    with pytest.raises(InvalidConfigError, match="--verbose requires at least one of"):
        waiting(wait=False, implied=False, timeout=None, verbose=True, async_=False, names=names)
    with pytest.raises(InvalidConfigError, match="--async requires"):
        waiting(wait=False, implied=False, timeout=None, verbose=False, async_=True, names=names)
    with pytest.raises(InvalidConfigError, match="Options --pivot and --keep-overlay are mutually"):
        exclusive(pivot=True, keep_overlay=True)
    exclusive(pivot=True, keep_overlay=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["blockcommit", "d", "vda", "--pivot", "--keep-overlay"], "--pivot and --keep-overlay"),
     (["blockcommit", "d", "vda", "--base", "/b", "--shallow"], "--base and --shallow"),
     (["blockcommit", "d", "vda", "--verbose"], "--verbose requires at least one of"),
     (["blockcopy", "d", "vda", "/x", "--pivot", "--finish"], "--pivot and --finish"),
     (["blockcopy", "d", "vda"], "requires <dest> option"),
     (["blockpull", "d", "vda", "--async"], "--async requires"),
     (["blockjob", "d", "vda", "--abort", "--info"], "--abort and --info"),
     (["blockjob", "nosuch", "vda"], "nosuch")],
)  # fmt: skip
def test_cli_refuses_before_anything_runs(pyvirt: Pyvirt, args: list[str], message: str) -> None:
    res = pyvirt(*args, check=False)
    assert res.rc == 1 and res.err.startswith("error: ") and message in res.err, res.err
    assert "Traceback" not in res.err


def test_commands_are_listed(pyvirt: Pyvirt) -> None:
    out = pyvirt("help", "domain").out
    for name in ("blockcommit", "blockcopy", "blockjob", "blockpull"):
        assert f"    {name} " in out
