"""Sparse-aware streaming between regular files and pipes."""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.storage import stream

MIB = 1 << 20


def holey(path: Path) -> bytes:
    """A 16 MiB file: data at 0, 5 and the last MiB; holes elsewhere."""
    with open(path, "wb") as f:
        f.truncate(16 * MIB)
        for off in (0, 5 * MIB, 15 * MIB):
            f.seek(off)
            f.write(os.urandom(MIB))
    return path.read_bytes()


def blocks(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_sparse_copy_keeps_holes(tmp_path: Path) -> None:
    data = holey(tmp_path / "a")
    with open(tmp_path / "a", "rb") as s, open(tmp_path / "b", "wb") as d:
        n = stream.copy(s.fileno(), d.fileno(), sparse=True)
    assert n == 16 * MIB
    assert (tmp_path / "b").read_bytes() == data
    assert blocks(tmp_path / "b") <= 4 * MIB


def test_sparse_copy_punches_holes_over_old_data(tmp_path: Path) -> None:
    data = holey(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\xff" * 16 * MIB)
    with open(tmp_path / "a", "rb") as s, open(tmp_path / "b", "r+b") as d:
        stream.copy(s.fileno(), d.fileno(), sparse=True)
    assert (tmp_path / "b").read_bytes() == data
    assert blocks(tmp_path / "b") <= 4 * MIB


def test_dense_copy_with_offsets(tmp_path: Path) -> None:
    data = holey(tmp_path / "a")
    with open(tmp_path / "a", "rb") as s, open(tmp_path / "b", "wb") as d:
        stream.copy(s.fileno(), d.fileno(), src_offset=MIB // 2, dst_offset=100, length=MIB)
    out = (tmp_path / "b").read_bytes()
    assert out[100:] == data[MIB // 2 : MIB // 2 + MIB] and out[:100] == bytes(100)


def test_pipe_source_detects_zero_chunks(tmp_path: Path) -> None:
    data = holey(tmp_path / "a")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: feed the pipe
        os.close(r)
        view = memoryview(data)
        while view:
            view = view[os.write(w, view[: 1 << 16]) :]
        os._exit(0)
    os.close(w)
    seen: list[int] = []
    with open(tmp_path / "b", "wb") as d:
        n = stream.copy(r, d.fileno(), sparse=True, progress=lambda done, _t: seen.append(done))
    os.close(r)
    os.waitpid(pid, 0)
    assert n == len(data) and seen and seen[-1] == n
    assert (tmp_path / "b").read_bytes() == data
    assert blocks(tmp_path / "b") < 8 * MIB
