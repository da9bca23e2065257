"""Fixtures for the unit tests: fake QMP and guest agent servers on real unix sockets."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeqmp import FakeQmp, serving


@pytest.fixture(autouse=True)
def _no_qemu_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU's user is the host's business (pyvirt-qemu exists or not); unit tests pin it to
    "no separate user" so that they behave the same everywhere (test_privsep.py covers the
    resolution itself)."""
    monkeypatch.setenv("PYVIRT_QEMU_USER", "root")


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short temporary directory for unix sockets (paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fq", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_qmp(sock_dir: Path) -> Iterator[FakeQmp]:
    """A started fake QMP server at ``sock_dir/qmp.sock``."""
    with serving(sock_dir / "qmp.sock") as server:
        yield server


@pytest.fixture
def fake_agent(sock_dir: Path) -> Iterator[FakeQmp]:
    """A started fake guest agent at ``sock_dir/ga.sock``."""
    with serving(sock_dir / "ga.sock", agent=True) as server:
        yield server
