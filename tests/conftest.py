"""Fixtures shared by all tests: an isolated pyvirt state root and a CLI runner."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PYVIRT = [sys.executable, "-m", "pyvirt.cli"]


@dataclass
class Result:
    """Outcome of one CLI run."""

    rc: int
    out: str
    err: str


class Pyvirt:
    """Runs the real ``pyvirt`` CLI in a subprocess against its own state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        proc = subprocess.run(
            [*PYVIRT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        res = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pyvirt {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
            )
        return res

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the config root, for 'nothing changed' assertions."""
        out = {}
        lib = self.root / "lib"
        if lib.exists():
            for p in sorted(lib.rglob("*")):
                if p.is_file():
                    out[str(p.relative_to(lib))] = p.read_bytes()
        return out


def kill_leftovers(root: Path) -> None:
    """SIGKILL every QEMU whose runtime record lives under ``root`` (a failed test's guests)."""
    for record in (root / "run" / "qemu").glob("*/runtime.json"):
        try:
            pid = int(json.loads(record.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError):
            continue
        if str(root).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def state_root() -> Iterator[Path]:
    """A short temporary state root (unix socket paths are limited to 107 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    yield root
    kill_leftovers(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pyvirt(state_root: Path) -> Iterator[Pyvirt]:
    """The CLI bound to a fresh state root; destroys leftover domains afterwards."""
    runner = Pyvirt(state_root)
    yield runner
    run = state_root / "run" / "qemu"
    if run.is_dir():
        for entry in run.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                runner("destroy", entry.name, check=False)
    kill_leftovers(state_root)
