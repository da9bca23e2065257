"""fs pools on real loop devices: build (format) semantics, mount, volumes, no leftovers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Pyvirt

pytestmark = pytest.mark.root


def mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in open("/proc/self/mountinfo"))


def loops_of(image: Path) -> str:
    return subprocess.run(
        ["losetup", "-j", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
def test_fs_pool_on_image_file(pyvirt: Pyvirt, tmp_path: Path, fstype: str) -> None:
    image, target = tmp_path / "fs.img", tmp_path / "mnt"
    with open(image, "wb") as f:
        f.truncate(320 << 20)  # xfs needs 300 MiB
    try:
        pyvirt(
            "pool-define-as", "f1", "fs", "--source-dev", str(image),
            "--source-format", fstype, "--target", str(target),
        )  # fmt: skip
        pyvirt("pool-build", "f1")  # default: only the directory
        assert target.is_dir()
        assert subprocess.run(["blkid", "-p", str(image)], capture_output=True).returncode == 2
        pyvirt("pool-build", "f1", "--no-overwrite")  # no filesystem yet: formats
        again = pyvirt("pool-build", "f1", "--no-overwrite", check=False)
        assert again.rc == 1 and f"already holds a {fstype} filesystem" in again.err
        assert "--overwrite" in again.err
        pyvirt("pool-build", "f1", "--overwrite")
        pyvirt("pool-start", "f1")
        assert mounted(target) and loops_of(image)
        info = json.loads(pyvirt("pool-list", "--json").out)
        f1 = next(p for p in info if p["name"] == "f1")
        assert 250 << 20 < f1["capacity"] <= 320 << 20
        pyvirt("vol-create-as", "f1", "v1", "16M", "--format", "qcow2")
        pyvirt("vol-create-as", "f1", "v2", "8M", "--allocation", "0")
        names = [v["name"] for v in json.loads(pyvirt("vol-list", "f1", "--json").out)]
        assert names == ["v1", "v2"]  # lost+found is not a volume
        fmt = pyvirt("pool-build", "f1", "--overwrite", check=False)
        assert fmt.rc == 1 and "is active" in fmt.err
        pyvirt("pool-destroy", "f1")
        assert not mounted(target) and loops_of(image) == ""
        pyvirt("pool-start", "f1")  # data survived the remount
        assert "v1" in pyvirt("vol-list", "f1").out
        pyvirt("pool-destroy", "f1")
        pyvirt("pool-delete", "f1")
        assert not target.exists()
        pyvirt("pool-undefine", "f1")
    finally:
        if mounted(target):
            subprocess.run(["umount", str(target)], check=False)
        for line in loops_of(image).splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
    assert not mounted(target) and loops_of(image) == ""


def test_fs_pool_errors(pyvirt: Pyvirt, tmp_path: Path) -> None:
    image = tmp_path / "none.img"
    pyvirt(
        "pool-define-as", "f2", "fs", "--source-dev", str(image), "--target", str(tmp_path / "m")
    )
    res = pyvirt("pool-start", "f2", "--build", check=False)
    assert res.rc == 1 and "source device" in res.err and "does not exist" in res.err
    image.write_bytes(bytes(1 << 20))
    res = pyvirt("pool-start", "f2", check=False)  # an empty file: mount fails cleanly
    assert res.rc == 1 and res.err.startswith("error: cannot mount pool 'f2'")
    assert loops_of(image) == "" and not mounted(tmp_path / "m")
    res = pyvirt("pool-build", "f2", "--overwrite", check=False)
    assert res.rc == 1 and "needs a filesystem format" in res.err
