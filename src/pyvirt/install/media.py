"""Install media: kernel/initrd discovery in ``--location`` trees and ISOs, OS detection.

A ``--location`` is a directory (an unpacked ISO, a mirror tree, Debian's netboot package) or
an ISO image. ISOs are read with ``xorriso -osirrox`` (no loop mounts); their volume label is
read from the ISO 9660 primary volume descriptor directly. Known layouts: Debian
(``install.amd/``, ``debian-installer/amd64/``), Ubuntu (``casper/``, ``install/``,
``ubuntu-installer/amd64/``), Fedora, CentOS and RHEL (``images/pxeboot/``, ``isolinux/``).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError, InvalidConfigError, UnsupportedError
from pyvirt.install import osinfo

#: (kernel, initrd) relative paths, most specific first
KERNEL_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("install.amd/vmlinuz", "install.amd/initrd.gz"),  # Debian ISO
    ("debian-installer/amd64/linux", "debian-installer/amd64/initrd.gz"),  # Debian netboot
    ("main/installer-amd64/current/images/netboot/debian-installer/amd64/linux",
     "main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz"),
    ("casper/vmlinuz", "casper/initrd"),  # Ubuntu live-server
    ("casper/vmlinuz", "casper/initrd.gz"),
    ("install/vmlinuz", "install/initrd.gz"),  # older Ubuntu alternate
    ("ubuntu-installer/amd64/linux", "ubuntu-installer/amd64/initrd.gz"),
    ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"),  # Fedora, CentOS, RHEL
    ("isolinux/vmlinuz", "isolinux/initrd.img"),
    ("boot/vmlinuz", "boot/initrd.img"),
)  # fmt: skip
ISO_MAGIC = b"\x01CD001"
SECTOR = 2048


@dataclass(frozen=True)
class KernelPair:
    """A kernel and initrd found in install media (paths on the host)."""

    kernel: Path
    initrd: Path
    layout: str
    #: the directory the layout starts in (for a tree; None for an ISO)
    root: Path | None = None


def is_iso(path: Path) -> bool:
    """True when ``path`` is a file holding an ISO 9660 image."""
    try:
        with path.open("rb") as f:
            f.seek(16 * SECTOR)
            return f.read(6) == ISO_MAGIC
    except (IsADirectoryError, OSError):
        return False


def iso_label(path: Path) -> str:
    """The volume identifier of an ISO 9660 image (the 'label' shown by blkid)."""
    with path.open("rb") as f:
        f.seek(16 * SECTOR)
        pvd = f.read(SECTOR)
    if pvd[:6] != ISO_MAGIC:
        raise InvalidConfigError(f"'{path}' is not an ISO 9660 image")
    return pvd[40:72].decode("ascii", "replace").strip()


def _xorriso() -> str:
    tool = shutil.which("xorriso")
    if tool is None:
        raise UnsupportedError(
            "reading ISO images needs xorriso", hint="install the Debian package xorriso"
        )
    return tool


def iso_files(iso: Path) -> set[str]:
    """Every file path in ``iso`` (leading ``/`` removed)."""
    argv = [_xorriso(), "-abort_on", "FATAL", "-indev", str(iso), "-find", "/", "-type", "f"]
    proc = hostcmd.run(argv, what=f"cannot read ISO '{iso}'", timeout=120)
    out = set()
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("'") and line.endswith("'"):
            out.add(line[1:-1].lstrip("/"))
    return out


def iso_extract(iso: Path, inner: str, dest: Path) -> Path:
    """Copy one file out of ``iso`` to ``dest`` (created 0644)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = [_xorriso(), "-abort_on", "FATAL", "-osirrox", "on", "-indev", str(iso),
            "-extract", "/" + inner, str(dest)]  # fmt: skip
    what = f"cannot extract '{inner}' from ISO '{iso}'"
    proc = hostcmd.run(argv, what=what, timeout=300)
    if not dest.is_file():
        raise HostCommandError(what, argv=argv, returncode=proc.returncode, stderr=proc.stderr)
    os.chmod(dest, 0o644)
    return dest


def _pick(files: set[str]) -> tuple[str, str] | None:
    for kernel, initrd in KERNEL_LAYOUTS:
        if kernel in files and initrd in files:
            return kernel, initrd
    # a tree holding a layout deeper down (a whole extracted package): prefer text installers
    for kernel, initrd in KERNEL_LAYOUTS:
        hits = sorted(
            (f for f in files if f.endswith("/" + kernel) and f[: -len(kernel)] + initrd in files),
            key=lambda f: ("gtk" in f or "xen" in f, len(f)),
        )
        if hits:
            prefix = hits[0][: -len(kernel)]
            return prefix + kernel, prefix + initrd
    return None


def _tree_files(root: Path, max_depth: int = 9) -> set[str]:
    out: set[str] = set()
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).parts) - base
        if depth >= max_depth:
            dirnames[:] = []
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            out.add(str(rel / name) if str(rel) != "." else name)
    return out


def find_kernel(location: Path, extract_dir: Path) -> KernelPair:
    """The installer kernel and initrd of a ``--location`` (ISOs are extracted to ``extract_dir``).

    :raises InvalidConfigError: the location does not exist or has no known layout
    """
    if not location.exists():
        raise InvalidConfigError(
            f"install location '{location}' does not exist",
            hint="give a directory tree or an ISO image",
        )
    if location.is_dir():
        pair = _pick(_tree_files(location))
        if pair is None:
            raise _no_layout(location)
        root = location
        for kernel, _ in KERNEL_LAYOUTS:
            if pair[0].endswith(kernel):
                root = location / pair[0][: -len(kernel)]
                break
        return KernelPair(location / pair[0], location / pair[1], pair[0], root)
    if not is_iso(location):
        raise InvalidConfigError(f"install location '{location}' is neither a directory nor an ISO")
    pair = _pick(iso_files(location))
    if pair is None:
        raise _no_layout(location)
    kernel_path = iso_extract(location, pair[0], extract_dir / "vmlinuz")
    initrd_path = iso_extract(location, pair[1], extract_dir / Path(pair[1]).name)
    return KernelPair(kernel_path, initrd_path, pair[0])


def _no_layout(location: Path) -> InvalidConfigError:
    return InvalidConfigError(
        f"no installer kernel and initrd found in '{location}'",
        hint="known layouts: " + ", ".join(k for k, _ in KERNEL_LAYOUTS[:8])
        + "; or use --boot kernel=,initrd=",
    )  # fmt: skip


_LABELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"debian\D*(\d+)(?:\.(\d+))?", re.I), "debian"),
    (re.compile(r"ubuntu\D*(\d+)\.(\d+)", re.I), "ubuntu"),
    (re.compile(r"fedora\D*?(\d+)$|fedora.*-(\d+)(?:-|$)", re.I), "fedora"),
    (re.compile(r"centos[-_ ]stream[-_ ](\d+)", re.I), "centos"),
    (re.compile(r"centos[-_ ]?(\d+)", re.I), "centos"),
    (re.compile(r"rhel[-_ ]?(\d+)", re.I), "rhel"),
)


def variant_from_text(text: str) -> osinfo.OsVariant | None:
    """Guess the OS variant from a label or release text (``Debian 12.5.0 amd64 n``)."""
    for pattern, distro in _LABELS:
        m = pattern.search(text)
        if m:
            numbers = [g for g in m.groups() if g]
            if numbers:
                return osinfo.from_release(distro, ".".join(numbers))
    return None


def _release_text(location: Path) -> str:
    texts = []
    for name in (".disk/info", "version.info", ".treeinfo", "media.repo"):
        path = location / name
        if path.is_file():
            texts.append(path.read_text(errors="replace")[:4096])
    joined = "\n".join(texts)
    m = re.search(r"family\s*=\s*(.+)\n(?:.*\n)*?version\s*=\s*(\S+)", joined)
    if m:  # .treeinfo: [general] family = Fedora / version = 40
        return f"{m.group(1)} {m.group(2)}"
    m = re.search(r"Debian version:\s*(\d+)", joined)
    if m:
        return f"debian {m.group(1)}"
    return joined


def detect(media: Path) -> osinfo.OsVariant | None:
    """The OS variant of install media (ISO label, or release files of a tree)."""
    if media.is_dir():
        return variant_from_text(_release_text(media))
    if is_iso(media):
        return variant_from_text(iso_label(media))
    return None
