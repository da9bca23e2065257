"""Writing gzip-compressed ``newc`` cpio archives, the format the kernel unpacks as initramfs.

Written in Python rather than with cpio(1) so entries get root ownership and device nodes
(``/dev/console``) without the builder running as root.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path
from typing import Protocol

_TRAILER = "TRAILER!!!"


class Sink(Protocol):
    """Where the archive goes: anything with a binary ``write`` (a file, a ``GzipFile``)."""

    def write(self, data: bytes, /) -> int:
        """Write *data*; return the number of bytes written."""
        ...


class NewcWriter:
    """Appends entries to a ``newc`` archive (see the kernel's early-userspace docs)."""

    def __init__(self, out: Sink) -> None:
        self._out = out
        self._ino = 0

    def _pad(self, length: int) -> None:
        self._out.write(b"\0" * (-length % 4))

    def _entry(
        self, name: str, mode: int, data: bytes = b"", *, nlink: int = 1, rdev: int = 0
    ) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,  # uid
            0,  # gid
            nlink,
            0,  # mtime: fixed, so equal inputs give equal archives
            len(data),
            0,  # devmajor
            0,  # devminor
            os.major(rdev),
            os.minor(rdev),
            len(encoded),
            0,  # check
        )
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._out.write(header + encoded)
        self._pad(len(header) + len(encoded))
        self._out.write(data)
        self._pad(len(data))

    def directory(self, name: str, mode: int = 0o755) -> None:
        """Add directory *name* (a path relative to the archive root)."""
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Add regular file *name* holding *data*."""
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        """Add symbolic link *name* pointing to *target*."""
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        """Add character device node *name*."""
        self._entry(name, stat.S_IFCHR | mode, rdev=os.makedev(major, minor))

    def tree(self, root: Path) -> None:
        """Add everything under *root* (directories, regular files, symlinks), sorted."""
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            info = path.lstat()
            perms = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                self.symlink(name, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                self.directory(name, perms)
            elif stat.S_ISREG(info.st_mode):
                self.file(name, path.read_bytes(), perms)

    def close(self) -> None:
        """Write the trailer entry that ends the archive."""
        self._entry(_TRAILER, 0, nlink=1)


def write_initramfs(root: Path, output: Path) -> None:
    """Pack the tree at *root* into *output*, a gzip ``newc`` cpio with ``/dev/console`` added.

    The archive gets ``/dev`` and ``/dev/console`` even if *root* lacks them, so the kernel can
    open the initial console before ``/init`` mounts devtmpfs.
    """
    with output.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        writer = NewcWriter(gz)
        if not (root / "dev").exists():
            writer.directory("dev")
        writer.chardev("dev/console", 5, 1)
        writer.tree(root)
        writer.close()
