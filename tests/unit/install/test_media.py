"""Install media: kernel/initrd layouts in trees and ISOs, OS detection, cloud-init seeds,
and the PPM to PNG conversion of screenshots. ISOs are built and read with real xorriso."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.install import cloudinit, media, osinfo
from pyvirt.install.spec import CloudInitSpec
from pyvirt.service.domain.display import ppm_to_png

needs_xorriso = pytest.mark.skipif(shutil.which("xorriso") is None, reason="xorriso missing")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def _iso(src: Path, out: Path, label: str) -> Path:
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-J", "-r", "-o", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.mark.parametrize(
    ("files", "kernel"),
    [
        ({"install.amd/vmlinuz": "k", "install.amd/initrd.gz": "i"}, "install.amd/vmlinuz"),
        ({"casper/vmlinuz": "k", "casper/initrd": "i"}, "casper/vmlinuz"),
        ({"images/pxeboot/vmlinuz": "k", "images/pxeboot/initrd.img": "i"},
         "images/pxeboot/vmlinuz"),
        # Debian's netboot package unpacked: the text installer wins over gtk
        ({"usr/lib/d-i/images/12/amd64/gtk/debian-installer/amd64/linux": "g",
          "usr/lib/d-i/images/12/amd64/gtk/debian-installer/amd64/initrd.gz": "g",
          "usr/lib/d-i/images/12/amd64/text/debian-installer/amd64/linux": "k",
          "usr/lib/d-i/images/12/amd64/text/debian-installer/amd64/initrd.gz": "i"},
         "usr/lib/d-i/images/12/amd64/text/debian-installer/amd64/linux"),
    ],
)  # fmt: skip
def test_find_kernel_in_trees(tmp_path: Path, files: dict[str, str], kernel: str) -> None:
    root = _tree(tmp_path / "tree", files)
    pair = media.find_kernel(root, tmp_path / "x")
    assert pair.kernel == root / kernel and pair.kernel.read_text() == "k"
    assert pair.initrd.read_text() == "i"


def test_find_kernel_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="does not exist"):
        media.find_kernel(tmp_path / "nope", tmp_path)
    with pytest.raises(InvalidConfigError, match="no installer kernel and initrd"):
        media.find_kernel(_tree(tmp_path / "t", {"README": "x"}), tmp_path)


@needs_xorriso
def test_iso_location_extracts_kernel_and_detects_label(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {
        "install.amd/vmlinuz": "KERNEL", "install.amd/initrd.gz": "INITRD", ".disk/info": "x",
    })  # fmt: skip
    iso = _iso(src, tmp_path / "deb.iso", "Debian 12.5.0 amd64 n")
    assert media.is_iso(iso) and not media.is_iso(src / ".disk/info")
    assert media.iso_label(iso) == "Debian 12.5.0 amd64 n"
    pair = media.find_kernel(iso, tmp_path / "out")
    assert pair.kernel.read_text() == "KERNEL" and pair.initrd.read_text() == "INITRD"
    found = media.detect(iso)
    assert found is not None and found.name == "debian12"


@pytest.mark.parametrize(
    ("files", "variant"),
    [
        ({".treeinfo": "[general]\nfamily = Fedora\nversion = 40\n"}, "fedora40"),
        ({".disk/info": 'Ubuntu-Server 22.04.3 LTS "Jammy Jellyfish"'}, "ubuntu22.04"),
        ({"version.info": "Debian version:  12 (bookworm)\n"}, "debian12"),
        ({"README": "nothing"}, None),
    ],
)
def test_detect_tree(tmp_path: Path, files: dict[str, str], variant: str | None) -> None:
    found = media.detect(_tree(tmp_path, files))
    assert (found.name if found else None) == variant


def test_osinfo_table() -> None:
    assert osinfo.lookup("rhel6").name == "rhel6.10" and osinfo.lookup("rhel6").machine == "pc"
    win = osinfo.lookup("win11")
    assert (win.disk_bus, win.nic_model, win.firmware, win.secure_boot) == (
        "sata", "e1000e", "efi", True,
    )  # fmt: skip
    with pytest.raises(InvalidConfigError, match="OS variant 'plan9' is not known"):
        osinfo.lookup("plan9")
    for name in ("debian10", "ubuntu24.04", "fedora38", "centos7", "centos-stream9", "win10",
                 "generic", "linux2022", "rhel9"):  # fmt: skip
        assert osinfo.lookup(name)


@needs_xorriso
def test_cloud_init_seed_iso(tmp_path: Path) -> None:
    spec = CloudInitSpec(root_password='pw"1', ssh_keys=["ssh-ed25519 AAAA test@host"])
    seed = cloudinit.make_seed(spec, "vm1", "vm1")
    assert seed.generated_password is None
    iso = cloudinit.write_iso(seed, tmp_path / "seed.iso")
    assert media.iso_label(iso) == "cidata"
    assert media.iso_files(iso) == {"user-data", "meta-data"}
    user = media.iso_extract(iso, "user-data", tmp_path / "ud").read_text()
    assert user.startswith("#cloud-config\n")
    assert 'password: "pw\\"1"' in user and '"ssh-ed25519 AAAA test@host"' in user
    meta = media.iso_extract(iso, "meta-data", tmp_path / "md").read_text()
    assert "instance-id: vm1" in meta and "local-hostname: vm1" in meta
    generated = cloudinit.make_seed(CloudInitSpec(root_password_generate=True), "v", "v")
    assert generated.generated_password and generated.generated_password in generated.user_data


def test_ppm_to_png_roundtrip() -> None:
    width, height = 3, 2
    pixels = bytes(range(width * height * 3))
    ppm = b"P6\n# comment\n3 2\n255\n" + pixels
    png, w, h = ppm_to_png(ppm)
    assert (w, h) == (3, 2) and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (3, 2)
    idat_len = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    raw = zlib.decompress(png[41 : 41 + idat_len])
    assert raw == b"\x00" + pixels[:9] + b"\x00" + pixels[9:]
