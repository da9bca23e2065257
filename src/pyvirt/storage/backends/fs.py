"""``fs`` pools: a block device or an image file with a filesystem, mounted at the target.

An image file is attached to a loop device first (``losetup --find --show``); the loop device
is recorded in the pool's run directory so that :meth:`FsPool.stop` unmounts and detaches
exactly what :meth:`FsPool.start` made. ``pool-build`` only makes the target directory unless
told to format: ``--no-overwrite`` formats when no filesystem is found, ``--overwrite`` always.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.storage.backends.dir import DirPool, make_target_dir, remove_target_dir
from pyvirt.storage.base import PoolCapabilities
from pyvirt.storage.registry import register_pool_backend

MKFS: dict[str, tuple[str, str, str]] = {
    # type: (program, force flag, Debian package)
    "ext2": ("mkfs.ext2", "-F", "e2fsprogs"),
    "ext3": ("mkfs.ext3", "-F", "e2fsprogs"),
    "ext4": ("mkfs.ext4", "-F", "e2fsprogs"),
    "xfs": ("mkfs.xfs", "-f", "xfsprogs"),
}
LOOP_FILE = "loop"
log = logging.getLogger(__name__)


def mountpoints() -> dict[str, str]:
    """Mount point -> source of every mount this process sees."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out[fields[4].replace("\\040", " ")] = fields[sep + 2]
    return out


def _wait_detached(loop: str, timeout: float = 10.0) -> None:
    """Wait until the kernel has released ``loop`` (detach is deferred while it is busy,
    e.g. for a moment after unmounting xfs)."""
    backing = Path("/sys/block") / Path(loop).name / "loop" / "backing_file"
    deadline = time.monotonic() + timeout
    while backing.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if backing.exists():
        log.warning("loop device %s is still busy after detach; the kernel frees it later", loop)


@register_pool_backend("fs")
class FsPool(DirPool):
    """A filesystem on a device or image file, mounted at the target directory."""

    capabilities = PoolCapabilities(
        formats=("raw", "qcow2"),
        source_formats=("auto", "ext2", "ext3", "ext4", "xfs"),
        source_fields=("device",),
        build=True,
        build_overwrite=True,
        delete=True,
        backing=True,
    )

    @property
    def device(self) -> str:
        """The source device or image file."""
        src = self.pool.source
        dev = src.device if src is not None else None
        if not dev:
            raise InvalidConfigError(
                f"pool '{self.name}' of type 'fs' needs <source><device path=...>",
                hint="give --source-dev DEVICE-OR-IMAGE-FILE",
            )
        return dev

    @property
    def fstype(self) -> str:
        """``<source><format type>`` (``auto`` when absent)."""
        src = self.pool.source
        fmt = (src.format if src is not None else None) or "auto"
        if fmt not in self.capabilities.source_formats:
            raise InvalidConfigError(
                f"pool '{self.name}': filesystem format '{fmt}' is not one of "
                + ", ".join(self.capabilities.source_formats)
            )
        return fmt

    def check(self) -> None:
        super().check()
        if not self.device.startswith("/"):
            raise InvalidConfigError(f"pool '{self.name}': source device must be an absolute path")
        self.fstype  # noqa: B018 - raises when unknown

    def _source_node(self) -> os.stat_result:
        try:
            st = os.stat(self.device)
        except FileNotFoundError:
            raise NotFoundError(
                f"pool '{self.name}' source device '{self.device}' does not exist"
            ) from None
        if not (stat.S_ISBLK(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise InvalidConfigError(
                f"pool '{self.name}' source '{self.device}' is neither a block device nor a file"
            )
        return st

    def _existing_fs(self) -> str | None:
        blkid = hostcmd.tool("blkid", "util-linux")
        proc = hostcmd.run(
            [blkid, "-p", "-o", "value", "-s", "TYPE", self.device],
            what=f"cannot probe '{self.device}'",
            ok_codes=(0, 2),
        )
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def build(self, *, overwrite: bool | None = None) -> None:
        make_target_dir(self)
        if overwrite is None:
            return
        self._source_node()
        if self.is_started():
            raise InvalidStateError(
                f"pool '{self.name}' is mounted at '{self.directory}'; it cannot be formatted",
                hint=f"run 'pool-destroy {self.name}' first",
            )
        fstype = self.fstype
        if fstype == "auto":
            raise InvalidConfigError(
                f"pool '{self.name}' needs a filesystem format to be formatted",
                hint="give --source-format ext4 or xfs",
            )
        if overwrite is False:
            found = self._existing_fs()
            if found:
                raise InvalidStateError(
                    f"pool '{self.name}' source '{self.device}' already holds a {found} "
                    "filesystem; not overwritten",
                    hint="use --overwrite to format it anyway",
                )
        prog, force, package = MKFS[fstype]
        hostcmd.run(
            [hostcmd.tool(prog, package), force, "-q", self.device],
            what=f"cannot format '{self.device}' as {fstype}",
            timeout=600,
        )

    def start(self) -> None:
        target = self.directory
        if self.is_started():
            return
        st = self._source_node()
        if not target.is_dir():
            raise NotFoundError(
                f"pool '{self.name}' target directory '{target}' does not exist",
                hint=f"run 'pool-build {self.name}' first",
            )
        dev = self.device
        loop: str | None = None
        if stat.S_ISREG(st.st_mode):
            loop = hostcmd.run(
                [hostcmd.tool("losetup", "mount"), "--find", "--show", dev],
                what=f"cannot attach '{dev}' to a loop device",
            ).stdout.strip()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / LOOP_FILE).write_text(loop)
            dev = loop
        argv = [hostcmd.tool("mount", "mount")]
        if self.fstype != "auto":
            argv += ["-t", self.fstype]
        try:
            hostcmd.run([*argv, dev, str(target)], what=f"cannot mount pool '{self.name}'")
        except BaseException:
            self._detach(loop)
            raise

    def _detach(self, loop: str | None) -> None:
        if loop:
            with contextlib.suppress(Exception):
                hostcmd.run([hostcmd.tool("losetup", "mount"), "-d", loop], what="cannot detach")
                _wait_detached(loop)
        (self.run_dir / LOOP_FILE).unlink(missing_ok=True)

    def stop(self) -> None:
        target = str(self.directory)
        if target in mountpoints():
            hostcmd.run(
                [hostcmd.tool("umount", "mount"), target],
                what=f"cannot unmount pool '{self.name}' from '{target}'",
            )
        loop_file = self.run_dir / LOOP_FILE
        loop = loop_file.read_text().strip() if loop_file.exists() else None
        if loop:
            hostcmd.run(
                [hostcmd.tool("losetup", "mount"), "-d", loop], what=f"cannot detach '{loop}'"
            )
            _wait_detached(loop)
        loop_file.unlink(missing_ok=True)

    def is_started(self) -> bool:
        return str(self.directory) in mountpoints()

    def delete(self) -> None:
        remove_target_dir(self)
