"""Choosing and staging the kernel modules of the tiny image.

The Debian kernel builds most drivers as modules. :func:`select` resolves the wanted ones and
their dependencies through ``modules.dep`` (running ``depmod -b`` on the unpacked package, which
ships none), skipping the ones built into the kernel; :func:`stage` copies them, decompressed,
into the initramfs tree and runs ``depmod -b`` there so the guest's ``modprobe`` works.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.errors import NotFoundError
from pyvirt.hostcmd import run

log = logging.getLogger(__name__)

#: Modules the guest loads at boot, in this order: buses and disks, 9p and virtiofs shares
#: (``mount -t 9p -o trans=virtio TAG DIR``, ``mount -t virtiofs TAG DIR``), NICs, then the
#: power button.
WANTED_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "virtio_console",
    "virtio_balloon",
    "virtio_rng",
    "scsi_mod",
    "sd_mod",
    "sr_mod",
    "cdrom",
    "libata",
    "libahci",
    "ahci",
    "ata_piix",
    "netfs",
    "fscache",
    "9pnet",
    "9pnet_virtio",
    "9p",
    "fuse",
    "virtiofs",
    "failover",
    "net_failover",
    "e1000",
    "e1000e",
    "8139cp",
    "8139too",
    "button",
    "evdev",
)

_COMPRESSED = (".ko.xz", ".ko.zst", ".ko.gz")
_SIG_MAGIC = b"~Module signature appended~\n"
_FILES_KEPT = ("modules.builtin", "modules.builtin.modinfo")


def module_name(path: str) -> str:
    """The name ``modprobe`` uses for a module file: ``…/virtio-rng.ko.xz`` -> ``virtio_rng``."""
    base = path.rsplit("/", 1)[-1]
    for suffix in (*_COMPRESSED, ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


@dataclass(frozen=True)
class KernelTree:
    """An unpacked ``linux-image-*`` package."""

    root: Path
    version: str

    @property
    def vmlinuz(self) -> Path:
        """The compressed kernel image."""
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def config(self) -> Path:
        """The kernel's build configuration (``boot/config-<version>``)."""
        return self.root / "boot" / f"config-{self.version}"

    @property
    def moddir(self) -> Path:
        """``lib/modules/<version>`` inside the tree."""
        return self.root / "lib" / "modules" / self.version

    @classmethod
    def find(cls, root: Path) -> KernelTree:
        """Locate the single kernel version unpacked under *root*.

        :raises NotFoundError: no kernel, or no modules directory, was found.
        """
        for image in sorted((root / "boot").glob("vmlinuz-*")):
            version = image.name.removeprefix("vmlinuz-")
            tree = cls(root, version)
            if tree.moddir.is_dir():
                return tree
        raise NotFoundError(f"no kernel with modules found under {root}")


@dataclass
class Selection:
    """The outcome of :func:`select`."""

    #: Wanted modules that are loadable, by name, in load order.
    load: list[str] = field(default_factory=list)
    #: Every module file to ship (wanted ones and their dependencies), relative to the moddir.
    files: list[str] = field(default_factory=list)
    #: Wanted modules built into the kernel (nothing to load).
    builtin: list[str] = field(default_factory=list)
    #: Wanted modules this kernel does not have at all.
    missing: list[str] = field(default_factory=list)


def _read_dep(moddir: Path) -> dict[str, tuple[str, list[str]]]:
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, sep, rest = line.partition(":")
        if sep:
            deps[module_name(path)] = (path, rest.split())
    return deps


def _read_builtin(moddir: Path) -> set[str]:
    builtin = moddir / "modules.builtin"
    if not builtin.is_file():
        return set()
    return {module_name(line) for line in builtin.read_text().split()}


def select(tree: KernelTree, wanted: tuple[str, ...] = WANTED_MODULES) -> Selection:
    """Resolve *wanted* and their dependencies in *tree*.

    :raises HostCommandError: ``depmod`` failed.
    """
    if not (tree.moddir / "modules.dep").is_file():
        run(["depmod", "-b", str(tree.root), tree.version], what="depmod on the kernel package")
    deps = _read_dep(tree.moddir)
    builtin = _read_builtin(tree.moddir)
    selection = Selection()
    for name in wanted:
        key = name.replace("-", "_")
        if key in deps:
            path, needs = deps[key]
            selection.load.append(key)
            for file in (path, *needs):
                if file not in selection.files:
                    selection.files.append(file)
        elif key in builtin:
            selection.builtin.append(key)
        else:
            selection.missing.append(key)
    if selection.missing:
        log.warning("kernel %s lacks modules %s", tree.version, ", ".join(selection.missing))
    return selection


def strip_signature(data: bytes) -> bytes:
    """Drop the appended signature of a module, if any.

    The kernel (without ``CONFIG_MODULE_SIG_FORCE``) then loads it without the RSA check, which
    costs tens of milliseconds per module under TCG.
    """
    if not data.endswith(_SIG_MAGIC):
        return data
    end = len(data) - len(_SIG_MAGIC)
    info = data[end - 12 : end]
    if len(info) != 12:
        return data
    signer_len, key_id_len = info[3], info[4]
    sig_len = int.from_bytes(info[8:12], "big")
    start = end - 12 - sig_len - signer_len - key_id_len
    return data[:start] if start > 0 else data


def _copy_module(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    name = source.name
    if name.endswith(".xz"):
        with lzma.open(source) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    elif name.endswith(".gz"):
        with gzip.open(source) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    elif name.endswith(".zst"):
        run(["zstd", "-q", "-d", "-f", "-o", str(target), str(source)], what="zstd")
    else:
        shutil.copyfile(source, target)
    target.write_bytes(strip_signature(target.read_bytes()))


def stage(tree: KernelTree, selection: Selection, root: Path) -> None:
    """Copy the selected modules, decompressed, to ``root/lib/modules/<version>``; run depmod.

    Busybox ``modprobe`` cannot read compressed modules, hence the ``.ko`` files.

    :raises HostCommandError: ``depmod`` or ``zstd`` failed.
    """
    moddir = root / "lib" / "modules" / tree.version
    moddir.mkdir(parents=True, exist_ok=True)
    for rel in selection.files:
        target = rel
        for suffix in _COMPRESSED:
            if target.endswith(suffix):
                target = target.removesuffix(suffix) + ".ko"
        _copy_module(tree.moddir / rel, moddir / target)
    for name in _FILES_KEPT:
        if (tree.moddir / name).is_file():
            shutil.copyfile(tree.moddir / name, moddir / name)
    run(["depmod", "-b", str(root), tree.version], what="depmod on the initramfs tree")
