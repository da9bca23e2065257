"""The save image format: header round trip, and every way a file can be wrong."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import saveimage
from pyvirt.drivers.qemu.saveimage import DiskStamp, SaveHeader, SaveImageError
from pyvirt.errors import InvalidConfigError, NotFoundError

XML = "<domain type='qemu'><name>d</name></domain>"
STREAM = b"QEVM" + bytes(range(256)) * 40


def make_image(path: Path, header: SaveHeader | None = None, stream: bytes = STREAM) -> int:
    """Write an image the way a save does; returns the stream offset."""
    header = header or SaveHeader(xml=XML, running=False, saved_at=12.5)
    offset = saveimage.stream_offset_for(header)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        saveimage.write_header(fd, header, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        os.write(fd, stream)
        saveimage.write_header(fd, header.with_(stream_length=len(stream)), offset)
    finally:
        os.close(fd)
    return offset


def test_round_trip_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "d.save"
    disk = DiskStamp("vda", "/img/d.raw", 1 << 20, 123)
    offset = make_image(path, SaveHeader(xml=XML, running=False, saved_at=1.0, disks=(disk,)))
    raw = path.read_bytes()
    assert raw[:16] == b"PYVIRT-SAVEIMG\n\0"
    assert offset % 4096 == 0 and offset >= saveimage.HEADER_SIZE + saveimage.RESERVE
    assert raw[offset:] == STREAM
    assert struct.unpack_from("<I", raw, 16)[0] == 1
    header = saveimage.read_header(path)
    assert header == SaveHeader(
        xml=XML,
        running=False,
        saved_at=1.0,
        stream_length=len(STREAM),
        disks=(disk,),
        stream_offset=offset,
    )


def test_header_is_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "d.save"
    offset = make_image(path)
    fd = os.open(path, os.O_RDWR)
    try:
        longer = saveimage.read_header(path).with_(xml=XML + "<!-- " + "x" * 1000 + " -->")
        saveimage.write_header(fd, longer, offset)
        with pytest.raises(SaveImageError, match="does not fit"):
            saveimage.write_header(fd, longer.with_(xml="x" * offset), offset)
    finally:
        os.close(fd)
    assert saveimage.read_header(path).xml == longer.xml
    assert path.read_bytes()[offset:] == STREAM


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"hello world" * 10, "is not a pyvirt save image"),
        (lambda b: b"", "is not a pyvirt save image"),
        (lambda b: b[:100], "truncated or corrupt"),
        (lambda b: b[:-1], "truncated or corrupt: .* expected"),
        (lambda b: b + b"x", "truncated or corrupt"),
        (lambda b: b[:70] + bytes([b[70] ^ 1]) + b[71:], "checksum mismatch"),
        (lambda b: b[:16] + struct.pack("<I", 9) + b[20:], "format 9, newer than"),
    ],
    ids=["junk", "empty", "cut-header", "cut-stream", "trailing", "flipped-bit", "newer"],
)
def test_bad_images_are_refused(tmp_path: Path, damage: object, message: str) -> None:
    path = tmp_path / "d.save"
    make_image(path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(SaveImageError, match=message) as err:
        saveimage.read_header(path)
    assert isinstance(err.value, InvalidConfigError)  # one 'error:' line in the CLI
    assert "\n" not in err.value.message


def test_unparseable_metadata(tmp_path: Path) -> None:
    path = tmp_path / "d.save"
    meta = b'{"xml": 1}'
    offset = 4096
    fixed = struct.pack("<16sIIQQ24x", saveimage.MAGIC, 1, zlib.crc32(meta), len(meta), offset)
    path.write_bytes(fixed + meta + b"\0" * (offset - 64 - len(meta)) + b"s")
    with pytest.raises(SaveImageError, match="corrupt header"):
        saveimage.read_header(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        saveimage.read_header(tmp_path / "nope.save")
    with pytest.raises(SaveImageError, match="is a directory"):
        saveimage.read_header(tmp_path)


def test_disk_stamps(tmp_path: Path) -> None:
    disk = tmp_path / "d.img"
    disk.write_bytes(b"\0" * 4096)
    stamp = DiskStamp.of("vda", str(disk))
    assert (stamp.size, stamp.mtime_ns) == (4096, disk.stat().st_mtime_ns)
    assert stamp.mismatch() is None
    os.utime(disk, ns=(1, 1))
    assert stamp.mismatch() == f"disk 'vda' ({disk}) was modified after the state was saved"
    disk.write_bytes(b"\0" * 8192)
    assert stamp.mismatch() == (
        f"disk 'vda' ({disk}) is 8192 bytes, but was 4096 when the state was saved"
    )
    disk.unlink()
    assert "is not accessible" in (stamp.mismatch() or "")
    null = DiskStamp.of("vdb", "/dev/null")  # not a regular file: size only
    assert null.mtime_ns is None and null.mismatch() is None


def test_temp_names_and_stale_ones(tmp_path: Path) -> None:
    target = tmp_path / "d.save"
    mine = saveimage.temp_path(target)
    assert mine.parent == tmp_path and mine.name == f".d.save.{os.getpid()}.tmp"
    dead = tmp_path / ".d.save.999999999.tmp"
    other = tmp_path / ".e.save.999999999.tmp"
    for p in (mine, dead, other):
        p.write_bytes(b"x")
    saveimage.remove_stale_temps(target)
    assert mine.exists() and not dead.exists() and other.exists()
