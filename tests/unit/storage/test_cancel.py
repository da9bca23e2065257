"""Progress and cancellation of long volume operations: a cancelled copy leaves nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pyvirt.api
import pyvirt.api.pools
from pyvirt.progress import CancelledError, CancelToken, checkpoint, scaled
from pyvirt.storage import qemu_img, stream

MIB = 1 << 20


def _filled(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for i in range(size // MIB):
            f.write(bytes([i % 251 + 1]) * MIB)


@pytest.fixture
def pool(tmp_path: Path) -> pyvirt.api.pools.Pool:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    pool, _ = conn.pools.define_as("p1", "dir", target=str(tmp_path / "p1"))
    pool.start(build=True)
    return pool


def test_checkpoint_and_scaled() -> None:
    seen: list[tuple[int, int]] = []
    checkpoint(lambda d, t: seen.append((d, t)), None, 3, 10)
    by_pct = scaled(lambda d, t: seen.append((d, t)), 1000)
    assert by_pct is not None
    by_pct(50, 100)
    assert seen == [(3, 10), (500, 1000)]
    assert scaled(None, 10) is None
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(CancelledError):
        checkpoint(lambda d, t: seen.append((d, t)), tok, 1, 1)


def test_stream_copy_stops_when_cancelled(tmp_path: Path) -> None:
    src, dst = tmp_path / "a", tmp_path / "b"
    _filled(src, 4 * stream.WATCHED_CHUNK)
    tok = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        tok.cancel()

    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(CancelledError):
            stream.copy(sfd, dfd, progress=progress, cancel=tok)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert seen == [stream.WATCHED_CHUNK]


def test_qemu_img_convert_is_killed_when_cancelled(tmp_path: Path) -> None:
    src = tmp_path / "a.raw"
    _filled(src, 64 * MIB)
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(CancelledError):
        qemu_img.convert(str(src), "raw", str(tmp_path / "b.qcow2"), "qcow2", cancel=tok)
    seen: list[tuple[int, int]] = []
    qemu_img.convert(str(src), "raw", str(tmp_path / "c.qcow2"), "qcow2",
                     progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen and seen[-1] == (100, 100)
    assert all(t == 100 for _, t in seen)


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_a_cancelled_volume_clone_leaves_nothing(
    pool: pyvirt.api.pools.Pool, tmp_path: Path, fmt: str
) -> None:
    vol = pool.create_volume("src", 64 * MIB, format=fmt)
    if fmt == "raw":
        _filled(Path(vol.path), 64 * MIB)
    before = sorted(os.listdir(tmp_path / "p1"))
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(CancelledError):
        vol.clone("dst", cancel=tok)
    assert sorted(os.listdir(tmp_path / "p1")) == before
    assert [v.name for v in pool.volumes()] == ["src"]
    seen: list[tuple[int, int]] = []
    vol.clone("dst", progress=lambda d, t: seen.append((d, t)))
    assert [v.name for v in pool.volumes()] == ["dst", "src"]
    assert seen[-1] == (64 * MIB, 64 * MIB)


def test_wipe_reports_progress_and_stops_when_cancelled(pool: pyvirt.api.pools.Pool) -> None:
    vol = pool.create_volume("v", 4 * stream.WATCHED_CHUNK, format="raw")
    _filled(Path(vol.path), 4 * stream.WATCHED_CHUNK)
    tok = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            tok.cancel()

    with pytest.raises(CancelledError):
        vol.wipe(progress=progress, cancel=tok)
    assert seen == [stream.WATCHED_CHUNK, 2 * stream.WATCHED_CHUNK]
    with open(vol.path, "rb") as f:
        f.seek(3 * stream.WATCHED_CHUNK)
        assert f.read(16) != bytes(16)  # the rest was not touched
    seen.clear()
    vol.wipe(progress=lambda d, t: seen.append(d))
    assert seen[-1] == 4 * stream.WATCHED_CHUNK


def test_a_cancelled_domain_clone_leaves_nothing(tmp_path: Path) -> None:
    from pyvirt.api.install import CloneRequest

    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    disk = tmp_path / "d1.img"
    _filled(disk, 16 * MIB)
    conn.domains.define(
        "<domain type='qemu'><name>d1</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>"
    )
    req = CloneRequest(original="d1", name="d2", files=[str(tmp_path / "d2.img")])
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(CancelledError):
        conn.domains.prepare_clone(req).run(cancel=tok)
    assert not (tmp_path / "d2.img").exists()
    assert [d.name for d in conn.domains.list()] == ["d1"]
    seen: list[tuple[int, int]] = []
    dom = conn.domains.prepare_clone(req).run(progress=lambda d, t: seen.append((d, t)))
    assert dom.name == "d2" and (tmp_path / "d2.img").read_bytes() == disk.read_bytes()
    assert seen[-1] == (16 * MIB, 16 * MIB)
