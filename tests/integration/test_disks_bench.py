"""``pyvirt bench disk``: a short real run (qemu-img bench) prints one row per mode × format."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import Pyvirt


def test_bench_disk_short_run(pyvirt: Pyvirt) -> None:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    d = pyvirt.root / "b"
    d.mkdir()
    args = ["bench", "disk", str(d), "--cache", "none", "--cache", "unsafe",
            "--format", "raw", "--format", "qcow2-prealloc", "--seconds", "0.1"]  # fmt: skip
    data = json.loads(pyvirt(*args, "--json").out)
    cells = {(c["cache"], c["format"]): c for c in data["cells"]}
    assert set(cells) == {(a, b) for a in ("none", "unsafe") for b in ("raw", "qcow2-prealloc")}
    assert all(c["write_iops"] > 0 and c["read_iops"] > 0 for c in cells.values())
    assert data["method"].startswith("qemu-img bench") and list(d.iterdir()) == []
    out = pyvirt(*args).out
    assert "Write IOPS" in out and out.count("qcow2-prealloc") == 2
    bad = pyvirt("bench", "disk", str(d), "--cache", "bogus", check=False)
    assert bad.rc == 1 and "cache mode 'bogus' is not one of" in bad.err
