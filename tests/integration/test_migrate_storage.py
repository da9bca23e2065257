"""Migration with non-shared disks (``--copy-storage-all``/``-inc``) between two "hosts" on
this machine: two state directories, each with its own directory of images (the destination's
XML names its own path). The destination makes an empty image, exports it over NBD, the
source mirrors its disk into it while the guest runs, then the RAM follows: what the guest
wrote before and during the migration is in the destination's image; a cancel halfway leaves
no image there and the guest running on the source with its disk."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import PyvirtError
from pyvirt.progress import CancelledError, CancelToken
from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, write_pattern
from tests.integration.test_lifecycle import MARKER, console_log, define, state, wait_marker
from tests.integration.test_migrate import _qemu_dirs, _uri, other  # noqa: F401  (fixture)

pytestmark = pytest.mark.qemu

SIZE = 16 << 20


def _qcow2_disk(path: Path, backing: Path | None = None) -> str:
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*args, str(path), str(SIZE)], check=True)
    return (
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )


def _read(image: Path, offset: int, length: int) -> bytes:
    """Bytes of a qcow2 image's guest view (``-U``: the running QEMU holds its lock)."""
    raw = image.with_suffix(".raw")
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(image), str(raw)], check=True)
    try:
        with raw.open("rb") as f:
            f.seek(offset)
            return f.read(length)
    finally:
        raw.unlink()


def _booted(pyvirt: Pyvirt, tiny_image: Any, disk_xml: str) -> None:
    define(pyvirt, tiny_image, extra_devices=disk_xml)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", "export KEEP=copied-$((6*7))")


def test_copy_storage_all_moves_the_disk_content(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
) -> None:
    src_img, dest_img = pyvirt.root / "d.qcow2", other.root / "imgs" / "d.qcow2"
    _booted(pyvirt, tiny_image, _qcow2_disk(src_img))
    write_pattern(pyvirt, "t1", "vda", "written-before")  # at 4 KiB
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    xml = src.xml_desc().replace(str(src_img), str(dest_img))
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if not seen:  # while the disk is being mirrored, the guest writes again
            guest(pyvirt, "t1", "echo written-during | dd of=/dev/vda bs=1M seek=9 conv=fsync")
        seen.append((done, total))

    src.migrate(
        pyvirt_api.open(_uri(other)),
        xml=xml,
        persistent=True,
        undefine_source=True,
        copy_storage_all=True,
        progress=progress,
    )
    assert state(other, "t1") == "running (migrated)"
    assert guest(other, "t1", "echo $KEEP").strip() == "copied-42"
    assert MARKER not in console_log(other, "t1").read_text(errors="replace")
    assert _qemu_dirs(pyvirt) == []
    # the destination's own image holds both writes (read on the host, not the guest's cache)
    assert _read(dest_img, 4096, 14) == b"written-before"
    assert _read(dest_img, 9 << 20, 14) == b"written-during"
    # progress counted the disk too: its first reports are the mirror's (16 MiB)
    assert seen[0][1] >= SIZE and seen[-1][0] == seen[-1][1] > SIZE
    # and the guest goes on writing to it there
    write_pattern(other, "t1", "vda", "written-after!")
    assert _read(dest_img, 4096, 14) == b"written-after!"
    assert _read(src_img, 4096, 14) == b"written-before"


def test_copy_storage_cancel_and_refusals_leave_the_destination_clean(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
) -> None:
    base = pyvirt.root / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), str(SIZE)], check=True)
    src_img, dest_img = pyvirt.root / "top.qcow2", other.root / "top.qcow2"
    _booted(pyvirt, tiny_image, _qcow2_disk(src_img, backing=base))
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    xml = src.xml_desc().replace(str(src_img), str(dest_img))
    # -inc: the destination lacks the backing file: refused naming it, nothing made
    with pytest.raises(PyvirtError) as err:
        src.migrate(dest, xml=xml, copy_storage_inc=True)
    assert f"backing file '{other.root / 'base.qcow2'}' does not exist" in str(err.value)
    assert not dest_img.exists() and _qemu_dirs(other) == []
    # without copying, a missing image is refused before anything moves
    with pytest.raises(PyvirtError) as err:
        src.migrate(dest, xml=xml)
    assert f"image '{dest_img}' does not exist on the destination" in str(err.value)
    # a disk the domain does not have (the CLI's --migrate-disks)
    xml_file = pyvirt.root / "dest.xml"
    xml_file.write_text(xml)
    res = pyvirt("migrate", "--live", "--copy-storage-all", "--migrate-disks", "vdz",
                 "--xml", str(xml_file), "t1", _uri(other), check=False)  # fmt: skip
    assert res.rc == 1 and "has no disk 'vdz'" in res.err.splitlines()[0]
    # cancelled halfway (the disk mirror runs): the guest runs on with its disk, the
    # destination's image and QEMU are gone
    token = CancelToken()
    made: list[bool] = []

    def progress(done: int, total: int) -> None:
        made.append(dest_img.exists())
        token.cancel()

    with pytest.raises(CancelledError):
        src.migrate(dest, xml=xml, copy_storage_all=True, progress=progress, cancel=token)
    assert made and made[0]  # it existed while the copy ran
    assert not dest_img.exists()
    assert _qemu_dirs(other) == []
    assert other("list", "--all", "--name").out.strip() == ""
    assert state(pyvirt, "t1") == "running (booted)"
    write_pattern(pyvirt, "t1", "vda", "still-writable")
    assert _read(src_img, 4096, 14) == b"still-writable"
    # the source QEMU can migrate again afterwards (nothing of the first attempt is left):
    # -inc with the backing file there copies the top image only, on top of it
    shutil.copy(base, other.root / "base.qcow2")
    pyvirt("migrate", "--live", "--copy-storage-inc", "--migrate-disks", "vda",
           "--xml", str(xml_file), "t1", _uri(other))  # fmt: skip
    assert state(other, "t1") == "running (migrated)"
    assert _read(dest_img, 4096, 14) == b"still-writable"
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(dest_img)],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert json.loads(info)["backing-filename"] == "base.qcow2"
