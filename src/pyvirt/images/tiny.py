"""The tiny test guest: a Debian kernel plus a busybox initramfs that boots in seconds under TCG.

:func:`build` produces ``vmlinuz`` and ``initrd.img`` in a directory; :func:`default_image`
builds them once into a cache directory, keyed by the kernel and busybox package versions and a
hash of the guest's ``/init``, and reuses them afterwards. Boot with
``-kernel K -initrd I -append 'console=ttyS0 quiet [pyvirt.run=<base64>] [pyvirt.dhcp=1]'``.

The guest speaks a line protocol on the serial console, see :data:`MARKER` and the ``init``
script shipped next to this module.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import PyvirtError
from pyvirt.images import cpio, debian, modules
from pyvirt.images import kernel as kernel_mod

log = logging.getLogger(__name__)

#: Printed on its own line on the serial console once the guest is up.
MARKER = "PYVIRT-TINY-READY"
#: Lines around the output of the ``pyvirt.run`` command; the end line is ``RUN_END rc=N``.
RUN_BEGIN = "PYVIRT-RUN-BEGIN"
RUN_END = "PYVIRT-RUN-END"
#: Prefix of the ``PYVIRT-DISKS <name> <bytes>`` lines, one per block device.
DISKS = "PYVIRT-DISKS"

KERNEL_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: Bumped whenever the layout of the image changes in a way the cache key would not see.
FORMAT = 1

_MANIFEST = "manifest.json"
_VMLINUX = "vmlinux"
_BZIMAGE = "vmlinuz"
_INITRD = "initrd.img"


@dataclass(frozen=True)
class TinyImage:
    """A built tiny image: pass :attr:`kernel` to ``-kernel`` and :attr:`initrd` to ``-initrd``.

    :attr:`kernel` is the uncompressed ELF ``vmlinux`` when the kernel supports the PVH entry
    point (QEMU loads it directly, saving seconds of in-guest decompression under TCG), else the
    bzImage; the bzImage is always kept as :attr:`bzimage`.
    """

    kernel: Path
    initrd: Path

    @property
    def directory(self) -> Path:
        """The directory holding the kernel, the initramfs and ``manifest.json``."""
        return self.initrd.parent

    @property
    def bzimage(self) -> Path:
        """The distribution's compressed kernel, bootable by any bootloader."""
        return self.directory / _BZIMAGE


def run_argument(command: str) -> str:
    """The kernel command line word that makes the guest run shell *command* once booted."""
    return "pyvirt.run=" + base64.b64encode(command.encode()).decode()


def _data(name: str) -> bytes:
    return resources.files("pyvirt.images").joinpath(name).read_bytes()


def recipe_hash() -> str:
    """A short hash of everything besides package versions that goes into the image."""
    digest = hashlib.sha256()
    for part in (str(FORMAT).encode(), _data("init"), _data("udhcpc.sh")):
        digest.update(hashlib.sha256(part).digest())
    digest.update(" ".join(modules.WANTED_MODULES).encode())
    return digest.hexdigest()[:12]


def default_cache_dir() -> Path:
    """``$PYVIRT_CACHE_DIR``, else ``/var/cache/pyvirt/images/tiny`` for root, else ``~/.cache``."""
    env = os.environ.get("PYVIRT_CACHE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/pyvirt/images/tiny")
    return Path.home() / ".cache" / "pyvirt" / "images" / "tiny"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* (created if needed) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _image_in(directory: Path) -> TinyImage:
    vmlinux = directory / _VMLINUX
    return TinyImage(vmlinux if vmlinux.is_file() else directory / _BZIMAGE, directory / _INITRD)


def _complete(directory: Path) -> bool:
    # The manifest is written last, so its presence means a finished build.
    return (directory / _MANIFEST).is_file()


def _busybox_tree(busybox_root: Path, root: Path) -> None:
    """Install busybox as ``/bin/busybox`` in *root* with a symlink per applet."""
    binary = busybox_root / "bin" / "busybox"
    target = root / "bin" / "busybox"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(binary, target)
    target.chmod(0o755)
    argv = [str(target), "--list-full"]
    proc = hostcmd.run(argv, what="listing busybox applets")
    for applet in proc.stdout.split():
        link = root / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))


def _guest_tree(root: Path, busybox_root: Path, selection: modules.Selection) -> None:
    """Lay out the initramfs tree besides the modules: busybox, /init, config files."""
    _busybox_tree(busybox_root, root)
    for name in ("proc", "sys", "run", "tmp", "root", "etc/pyvirt", "etc/acpi/PWRF", "mnt"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    init = root / "init"
    init.write_bytes(_data("init"))
    init.chmod(0o755)
    script = root / "etc" / "udhcpc.script"
    script.write_bytes(_data("udhcpc.sh"))
    script.chmod(0o755)
    # busybox acpid runs <confdir>/<action> for an event; PWRF/00000080 is the power button.
    action = root / "etc" / "acpi" / "PWRF" / "00000080"
    action.write_text("#!/bin/sh\nexec poweroff -f\n")
    action.chmod(0o755)
    (root / "etc" / "pyvirt" / "modules").write_text("".join(f"{m}\n" for m in selection.load))
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "profile").write_text("export PS1='pyvirt-tiny# '\n")


def _build_into(
    directory: Path,
    work: Path,
    kernel: debian.Package,
    busybox: debian.Package,
    debs: Path,
) -> dict[str, object]:
    """Build the image files into *directory*, using *work* as scratch space."""
    kernel_root = work / "kernel"
    busybox_root = work / "busybox"
    guest = work / "guest"
    debian.extract(debian.download(kernel, debs), kernel_root)
    debian.extract(debian.download(busybox, debs), busybox_root)
    tree = modules.KernelTree.find(kernel_root)
    selection = modules.select(tree)
    modules.stage(tree, selection, guest)
    _guest_tree(guest, busybox_root, selection)
    shutil.copyfile(tree.vmlinuz, directory / _BZIMAGE)
    pvh = kernel_mod.pvh_enabled(tree.config) and kernel_mod.extract_vmlinux(
        tree.vmlinuz, directory / _VMLINUX
    )
    cpio.write_initramfs(guest, directory / _INITRD)
    return {
        "format": FORMAT,
        "recipe": recipe_hash(),
        "kernel_package": kernel.name,
        "kernel_version": kernel.version,
        "kernel_release": tree.version,
        "pvh": pvh,
        "busybox_version": busybox.version,
        "modules": selection.load,
        "builtin": selection.builtin,
        "missing": selection.missing,
    }


def _remove_leftovers(output: Path) -> None:
    """Delete scratch directories of builds of *output* that were killed (caller holds the lock)."""
    for kind in ("new", "work", "old"):
        for path in output.parent.glob(f".{output.name}.{kind}-*"):
            shutil.rmtree(path, ignore_errors=True)


def _install(staging: Path, output: Path) -> None:
    """Move the finished *staging* directory to *output*, replacing an older build atomically."""
    if output.exists():
        trash = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.old-"))
        output.rename(trash / "image")
        staging.rename(output)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(output)


def build(output: Path, *, cache_dir: Path | None = None, force: bool = False) -> TinyImage:
    """Build the tiny image into directory *output*: ``vmlinux``, ``vmlinuz``, ``initrd.img``.

    An existing complete build in *output* is returned as is unless *force* is set. The build
    happens in a temporary sibling directory that is renamed into place, under an exclusive
    lock, so concurrent callers each get a complete image and build it only once.

    :param output: directory to create (its parent must be writable).
    :param cache_dir: where downloaded ``.deb`` files are kept for later builds; a temporary
        directory when ``None``.
    :param force: rebuild even if *output* already holds an image.
    :raises HostCommandError: apt, dpkg-deb or depmod failed.
    :raises UnsupportedError: one of those tools is missing.
    :raises NotFoundError: apt does not know the kernel or busybox package.
    """
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    with _locked(output.parent / f".{output.name}.lock"):
        if _complete(output) and not force:
            return _image_in(output)
        _remove_leftovers(output)
        kernel = debian.resolve(KERNEL_PACKAGE, follow_prefix="linux-image-")
        busybox = debian.resolve(BUSYBOX_PACKAGE)
        log.info("building tiny image from %s and %s into %s", kernel.spec, busybox.spec, output)
        staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.new-"))
        try:
            with tempfile.TemporaryDirectory(
                dir=output.parent, prefix=f".{output.name}.work-"
            ) as work:
                debs = cache_dir / "debs" if cache_dir is not None else Path(work) / "debs"
                manifest = _build_into(staging, Path(work), kernel, busybox, debs)
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            staging.chmod(0o755)
            _install(staging, output)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _image_in(output)


def cache_key(kernel: debian.Package, busybox: debian.Package) -> str:
    """Directory name of a cached build: package versions plus :func:`recipe_hash`."""
    return f"{kernel.slug}-{busybox.slug}-{recipe_hash()}"


def _newest_cached(cache_dir: Path) -> TinyImage | None:
    suffix = f"-{recipe_hash()}"
    found = [p for p in cache_dir.glob(f"*{suffix}") if p.name.endswith(suffix) and _complete(p)]
    if not found:
        return None
    return _image_in(max(found, key=lambda p: (p / _MANIFEST).stat().st_mtime))


def default_image(cache_dir: Path | None = None) -> TinyImage:
    """Return the cached tiny image for the current package versions, building it if needed.

    :param cache_dir: cache root; :func:`default_cache_dir` when ``None``.
    :raises HostCommandError: building failed (see :func:`build`).
    """
    cache_dir = (cache_dir or default_cache_dir()).absolute()
    try:
        kernel = debian.resolve(KERNEL_PACKAGE, follow_prefix="linux-image-")
        busybox = debian.resolve(BUSYBOX_PACKAGE)
    except PyvirtError:
        # Offline with no apt lists: an older build of the same recipe still boots fine.
        cached = _newest_cached(cache_dir) if cache_dir.is_dir() else None
        if cached is None:
            raise
        log.warning("cannot resolve package versions; using cached %s", cached.directory)
        return cached
    return build(cache_dir / cache_key(kernel, busybox), cache_dir=cache_dir)
