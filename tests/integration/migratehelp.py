"""What the migration tests of a running tiny guest share: :func:`source` boots ``t1`` on the
test's state root, leaves a shell variable in the guest (to see the same guest, not a reboot,
on the other side) and notes the migration settings it had before any migration; :func:`other`
is the destination host's state root."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, destroy_leftovers
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import define, wait_marker

#: what ``echo $KEEP`` prints in the guest :func:`source` booted
KEPT = "kept-42"


@dataclass
class Before:
    """The source guest's ``migrate-getspeed`` and ``migrate-getmaxdowntime`` before any
    migration."""

    speed: str
    downtime: str


@pytest.fixture
def source(pyvirt: Pyvirt, tiny_image: Any) -> Before:
    """``t1`` booted on ``pyvirt`` with ``KEEP`` set in its shell; its settings before."""
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", "export KEEP=kept-$((6*7))")
    return Before(pyvirt("migrate-getspeed", "t1").out, pyvirt("migrate-getmaxdowntime", "t1").out)


def kept(pv: Pyvirt) -> bool:
    """Whether ``t1`` on *pv* is still the guest :func:`source` booted (its ``KEEP``)."""
    return guest(pv, "t1", "echo $KEEP").strip().endswith(KEPT)


@pytest.fixture
def other() -> Iterator[Pyvirt]:
    """The destination host: a second state directory."""
    root = Path(tempfile.mkdtemp(prefix="pvd", dir="/tmp"))
    runner = Pyvirt(root)
    yield runner
    destroy_leftovers(runner)
    shutil.rmtree(root, ignore_errors=True)
