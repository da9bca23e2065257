"""Fixtures for host/ unit tests: the static data dir, a fake QEMU, a clean binary cache."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from host_fakes import DATA

from pyvirt.host import qemu_binaries


@pytest.fixture
def data_dir() -> Path:
    """``tests/data/host``: static fake trees (``intel-hw``, ``emulated-kvm``) and QEMU output."""
    return DATA


@pytest.fixture
def fake_qemu(tmp_path: Path, data_dir: Path) -> Callable[..., Path]:
    """Factory for a fake ``qemu-system-ARCH`` script answering from captured 7.2 output.

    Each run appends its arguments to ``calls.log`` next to the script, so tests can count
    how often the real command would have run.
    """

    def make(
        name: str = "qemu-system-x86_64", directory: Path | None = None, *, body: str = ""
    ) -> Path:
        directory = directory or tmp_path / "bin"
        directory.mkdir(parents=True, exist_ok=True)
        qemu = data_dir / "qemu-7.2"
        script = directory / name
        script.write_text(
            "#!/bin/sh\n"
            f'echo "$*" >> "{directory}/calls.log"\n'
            f"{body}\n"
            'case "$*" in\n'
            f'  --version) cat "{qemu}/version.txt" ;;\n'
            f'  "-machine help") cat "{qemu}/machine-help.txt" ;;\n'
            f'  "-accel help") cat "{qemu}/accel-help.txt" ;;\n'
            '  *) echo "unexpected: $*" >&2; exit 1 ;;\n'
            "esac\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return script

    return make


@pytest.fixture(autouse=True)
def _fresh_binary_cache() -> Iterator[None]:
    qemu_binaries.clear_memory_cache()
    yield
    qemu_binaries.clear_memory_cache()
