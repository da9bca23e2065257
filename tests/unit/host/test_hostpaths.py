"""Host files and busy block devices as guest disks (:mod:`pyvirt.host.hostpaths`)."""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.host.hostpaths import block_device_use, path_risk


def test_system_files(tmp_path: Path) -> None:
    assert path_risk("/etc/shadow") == "'/etc/shadow' is a host system file under /etc"
    assert path_risk("/proc/kcore") == "'/proc/kcore' is a host system file under /proc"
    assert path_risk("/dev/mem") == "'/dev/mem' is the host's memory or I/O port device /dev/mem"
    link = tmp_path / "innocent.img"
    link.symlink_to("/etc/passwd")
    assert path_risk(str(link)) == f"'{link}' is a host system file under /etc"
    assert path_risk(str(tmp_path / "disk.img")) == ""


def test_state_files(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "images").mkdir(parents=True)
    state = str(lib / "qemu" / "d.xml")
    assert path_risk(state, [lib]) == f"'{state}' is one of pyvirt's own state files"
    assert path_risk(str(lib / "images" / "a.img"), [lib]) == ""


def _fake_sys(tmp_path: Path, rdev: int, *, holder: bool = False) -> Path:
    sysfs = tmp_path / "sys"
    base = sysfs / "dev" / "block" / f"{os.major(rdev)}:{os.minor(rdev)}"
    (base / "holders").mkdir(parents=True)
    if holder:
        (base / "holders" / "dm-0").touch()
    return sysfs


def test_block_device_use(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "swaps").write_text("Filename Type Size Used Priority\n")
    null = os.stat("/dev/null").st_rdev  # a device number nothing mounts
    (proc / "mounts").write_text("proc /proc proc rw 0 0\n")
    assert block_device_use(null, proc=proc, sysfs=_fake_sys(tmp_path, null)) == ""
    held = _fake_sys(tmp_path / "h", null, holder=True)
    assert block_device_use(null, proc=proc, sysfs=held) == (
        "is held by another device (an LVM physical volume, RAID or dm device)"
    )
    (proc / "mounts").write_text("/dev/null /mnt ext4 rw 0 0\n")  # a block device stand-in
    assert block_device_use(null, proc=proc, sysfs=_fake_sys(tmp_path / "m", null)) == ""
