"""``pyvirt image build debian``: the debootstrapped Debian guest in a qcow2 (real debootstrap,
mke2fs -d, qemu-img). The base tree is built once into the test cache and reused; the boot and
guest agent tests are in test_guest_agent.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pyvirt.images import debian_image
from tests.conftest import PYVIRT, Pyvirt

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(1800)]


def debian_cache_dir() -> Path:
    """``$PYVIRT_CACHE_DIR/debian`` or ``/var/cache/pyvirt-test/images/debian``."""
    env = os.environ.get("PYVIRT_CACHE_DIR")
    return Path(env) / "debian" if env else Path("/var/cache/pyvirt-test/images/debian")


def require_builder() -> None:
    """Skip when the tools the Debian builder runs are missing."""
    for tool, package in (("debootstrap", "debootstrap"), ("mke2fs", "e2fsprogs")):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            pytest.skip(f"cannot build the Debian image: {tool} not installed ({package})")
    if shutil.which("qemu-img") is None:
        pytest.skip("cannot build the Debian image: qemu-img not installed (qemu-utils)")


def default_test_image() -> debian_image.DebianImage:
    """The default Debian image, built once into the test cache (the first build debootstraps:
    minutes; later ones reuse the image)."""
    require_builder()
    start = time.monotonic()
    img = debian_image.build(debian_image.Recipe(), cache_dir=debian_cache_dir())
    print(f"debian image ready in {time.monotonic() - start:.1f} s: {img.directory}")
    return img


def cli_env(pv: Pyvirt) -> dict[str, str]:
    """The CLI's environment with the image cache pointed at the test cache."""
    return {**pv.env, "PYVIRT_CACHE_DIR": str(debian_cache_dir().parent)}


def run_cli(pv: Pyvirt, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYVIRT, *args],
        env=cli_env(pv),
        capture_output=True,
        text=True,
        timeout=1500,
    )


def ext4_files(disk: Path, inside: list[str], scratch: Path) -> dict[str, str]:
    """Read files of the ext4 filesystem in a qcow2 (qemu-img + debugfs, no mount)."""
    raw = scratch / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    try:
        return {
            path: subprocess.run(
                ["debugfs", "-R", f"cat {path}", str(raw)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for path in inside
        }
    finally:
        raw.unlink()


def test_build_to_output_and_list(pyvirt: Pyvirt, tmp_path: Path) -> None:
    base = default_test_image()  # the cached base tree and default image
    assert base.disk.is_file() and base.initrd.is_file() and base.kernel.is_file()
    out = tmp_path / "deb"
    res = run_cli(
        pyvirt,
        "image", "build", "debian", "--output", str(out), "--size", "2G",
        "--hostname", "deb2", "--root-password", "pw-42",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"disk:   {out / 'disk.qcow2'}" in res.stdout
    assert f"pyvirt define {out / 'domain.xml'}" in res.stdout
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(out / "disk.qcow2")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info["format"] == "qcow2" and info["virtual-size"] == 2 * 1024**3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["hostname"] == "deb2" and manifest["suite"] == "bookworm"
    assert "qemu-guest-agent" in manifest["packages"] and "iperf3" in manifest["packages"]
    # the per-image files are inside the filesystem, and the cached tree is untouched
    files = ext4_files(out / "disk.qcow2", ["/etc/hostname", "/etc/shadow"], tmp_path)
    assert files["/etc/hostname"].strip() == "deb2"
    assert files["/etc/shadow"].startswith("root:$6$")
    tree = debian_image.base_tree(debian_image.Recipe(), debian_cache_dir())
    assert (tree / "etc/hostname").read_text() != "deb2\n"
    assert (tree / "etc/shadow").read_text().startswith("root:*:")
    # the generated definition is valid and boots from the image's files
    xml = (out / "domain.xml").read_text()
    assert "<target type='virtio' name='org.qemu.guest_agent.0'/>" in xml
    assert f"<kernel>{out / 'vmlinux'}</kernel>" in xml
    pyvirt("define", str(out / "domain.xml"))
    assert "root=/dev/vda" in pyvirt("dumpxml", "debian").out
    # image list shows the tiny and debian images with paths and sizes
    listing = run_cli(pyvirt, "image", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert ["debian", str(out), "2.00", "GiB"] == next(r for r in rows if str(out) in r)[:4]
    assert any(r[:2] == ["debian", str(base.directory)] for r in rows)


def test_rebuild_is_cached(pyvirt: Pyvirt, tmp_path: Path) -> None:
    default_test_image()
    start = time.monotonic()
    res = run_cli(pyvirt, "image", "build", "debian", "--output", str(tmp_path / "a"))
    assert res.returncode == 0, res.stderr
    first = (tmp_path / "a" / "manifest.json").stat().st_mtime_ns
    res = run_cli(pyvirt, "image", "build", "debian", "--output", str(tmp_path / "a"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "a" / "manifest.json").stat().st_mtime_ns == first  # reused, not rebuilt
    assert time.monotonic() - start < 300  # no debootstrap: only mke2fs + qemu-img


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "1M"], "error: image size 1048576 is too small"),
        (["--size", "lots"], "error: --size 'lots' is not a size"),
        (["--suite", "Bad Suite"], "error: suite 'Bad Suite' is not a Debian suite name"),
        (["--hostname", "a_b"], "error: host name 'a_b' is not valid"),
    ],
)
def test_bad_options(pyvirt: Pyvirt, tmp_path: Path, args: list[str], message: str) -> None:
    require_builder()
    res = run_cli(pyvirt, "image", "build", "debian", "--output", str(tmp_path / "x"), *args)
    assert res.returncode == 1
    assert res.stderr.splitlines()[0].startswith(message), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "x").exists()
