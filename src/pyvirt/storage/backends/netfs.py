"""``netfs`` pools: a directory exported over NFS.

Two ways to reach it:

**kernel mode** (the default, as in libvirt): ``pool-start`` mounts ``HOST:DIR`` at the target
with ``mount -t nfs`` and the pool then behaves like a ``dir`` pool on the mount (the volume
work is delegated to the ``dir`` backend). A kernel without an NFS client
(``CONFIG_NFS_FS``) cannot do this, and pyvirt refuses with that name instead of trying.

**native mode** needs no kernel support. It is chosen with one pyvirt element in the pool
definition, in pyvirt's own XML namespace (the way libvirt extends pool XML with
``<fs:mount_opts>``)::

    <pool type='netfs' xmlns:pyvirt='http://pyvirt.org/xmlns/storagepool/1.0'>
      <name>nfspool</name>
      <source><host name='127.0.0.1'/><dir path='/export'/><format type='nfs'/></source>
      <target><path>/var/lib/pyvirt/nfspool</path></target>
      <pyvirt:access mode='native'/>
    </pool>

Nothing is mounted: volumes are files on the server, created and resized with ``qemu-img`` on
``nfs://HOST/DIR/NAME`` URLs, listed and removed with pyvirt's own NFSv3 client
(:mod:`pyvirt.storage.nfsrpc`), and handed to QEMU as ``<disk type='network'>`` with
``protocol='nfs'`` (QEMU's libnfs driver, NFSv3). The target path is not used.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import ClassVar
from xml.sax.saxutils import quoteattr

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.hostcmd import run, tool
from pyvirt.progress import CancelToken, Progress
from pyvirt.storage import nfsrpc, qemu_img, qemu_modules
from pyvirt.storage.base import (
    CreateRequest,
    DiskSource,
    PoolBackend,
    PoolCapabilities,
    PoolInfo,
    VolumeInfo,
)
from pyvirt.storage.registry import backend_class, register_pool_backend

#: pyvirt's namespace for its extensions of pool XML
PYVIRT_NS = "http://pyvirt.org/xmlns/storagepool/1.0"
NO_NFS = "this kernel has no NFS client (CONFIG_NFS_FS)"
NATIVE_HINT = (
    "use pyvirt's native NFS mode: add <pyvirt:access mode='native'/> "
    f"(xmlns:pyvirt='{PYVIRT_NS}') to the pool with 'pool-edit'"
)
QCOW2_MAGIC = b"QFI\xfb"


def kernel_has_nfs(root: Path = Path("/")) -> bool:
    """Whether ``mount -t nfs`` can work: the NFS client is built in, loaded or a module."""
    try:
        fstypes = (root / "proc/filesystems").read_text().split()
    except OSError:
        fstypes = []
    if "nfs" in fstypes or "nfs4" in fstypes or (root / "sys/module/nfs").exists():
        return True
    moddir = root / "lib/modules" / platform.release() / "kernel/fs/nfs"
    return any(moddir.glob("nfs.ko*"))


def probe(head: bytes, size: int) -> tuple[str, int]:
    """``(format, capacity)`` from a file's first bytes: qcow2 header or raw."""
    if head[:4] == QCOW2_MAGIC and len(head) >= 32:
        return "qcow2", int.from_bytes(head[24:32], "big")
    return "raw", size


@register_pool_backend("netfs")
class NetfsPool(PoolBackend):
    """An NFS export: kernel-mounted (like a dir pool) or reached natively over nfs:// URLs."""

    capabilities: ClassVar[PoolCapabilities] = PoolCapabilities(
        formats=("raw", "qcow2"),
        source_formats=("auto", "nfs"),
        source_fields=("host", "dir"),
        build=True,
        delete=True,
        resize=True,
        shrink=False,
        upload=True,
        find_sources=True,
        remote=True,
    )

    # -- definition ------------------------------------------------------------------------
    @property
    def native(self) -> bool:
        """Whether the pool asks for the native (no kernel mount) mode."""
        el = self.pool.element.find(f"{{{PYVIRT_NS}}}access")
        return el is not None and el.get("mode") == "native"

    @property
    def host(self) -> str:
        """The NFS server."""
        src = self.pool.source
        return (src.host if src is not None else None) or ""

    @property
    def export(self) -> str:
        """The exported directory (``<source><dir path>``)."""
        src = self.pool.source
        return ((src.dir if src is not None else None) or "").rstrip("/") or "/"

    def check(self) -> None:
        """Needs ``<source><host>`` and ``<source><dir>``, and an nfs-like format."""
        src = self.pool.source
        if src is None or not src.host:
            raise InvalidConfigError(
                f"pool '{self.name}': a netfs pool needs <source><host name=...>",
                hint="give --source-host",
            )
        if not src.dir:
            raise InvalidConfigError(
                f"pool '{self.name}': a netfs pool needs <source><dir path=...>",
                hint="give --source-path",
            )
        if src.format not in (None, "auto", "nfs"):
            raise UnsupportedError(
                f"pool '{self.name}': netfs format '{src.format}' is not supported",
                hint="pyvirt mounts NFS only: use <format type='nfs'/>",
            )
        if not self.native and not self.pool.target_path:
            raise InvalidConfigError(
                f"pool '{self.name}': a netfs pool needs <target><path>", hint="give --target"
            )

    def _dir(self) -> PoolBackend:
        return backend_class("dir")(self.pool, self.run_dir)

    def _require_kernel(self) -> None:
        if not kernel_has_nfs():
            raise UnsupportedError(
                f"pool '{self.name}': cannot mount {self.host}:{self.export}: {NO_NFS}",
                hint=NATIVE_HINT,
            )

    def _session(self) -> nfsrpc.NfsClient:
        return nfsrpc.NfsClient(self.host, self.export)

    # -- pool --------------------------------------------------------------------------------
    def build(self, *, overwrite: bool | None = None) -> None:
        """Kernel mode: create the mount point; native mode: nothing to make."""
        if not self.native:
            Path(self.pool.target_path or "").mkdir(parents=True, exist_ok=True)

    def delete(self) -> None:
        """Kernel mode: remove the (empty, unmounted) mount point."""
        if not self.native and self.pool.target_path:
            Path(self.pool.target_path).rmdir()

    def start(self) -> None:
        """Kernel mode: mount; native mode: check the export answers (MOUNT + FSSTAT)."""
        if self.native:
            qemu_modules.require_block_driver(f"pool '{self.name}'", "nfs")
            with nfsrpc.session(self.host, self.export) as nfs:
                nfs.fsstat()
            return
        self._require_kernel()
        target = self.pool.target_path or ""
        if not Path(target).is_dir():
            raise InvalidConfigError(
                f"pool '{self.name}': target '{target}' is not a directory",
                hint="create it with 'pool-build'",
            )
        if not os.path.ismount(target):
            run(
                [tool("mount", "mount"), "-t", "nfs", f"{self.host}:{self.export}", target],
                what=f"pool '{self.name}': cannot mount {self.host}:{self.export}",
            )

    def stop(self) -> None:
        """Kernel mode: unmount (idempotent); native mode: nothing."""
        target = self.pool.target_path
        if not self.native and target and os.path.ismount(target):
            run([tool("umount", "mount"), target], what=f"pool '{self.name}': cannot unmount")

    def is_started(self) -> bool:
        """Kernel mode: the mount is still there."""
        return self.native or os.path.ismount(self.pool.target_path or "")

    def info(self) -> PoolInfo:
        """Space of the exported file system."""
        if not self.native:
            return self._dir().info()
        with nfsrpc.session(self.host, self.export) as nfs:
            total, free, avail = nfs.fsstat()
        return PoolInfo(capacity=total, allocation=total - free, available=avail)

    # -- volumes -----------------------------------------------------------------------------
    def url(self, name: str) -> str:
        """``nfs://HOST/DIR/NAME``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nfs://{host}{self.export.rstrip('/')}/{name}"

    def _info(self, entry: nfsrpc.Entry) -> VolumeInfo:
        fmt, capacity = probe(entry.head, entry.attrs.size)
        url = self.url(entry.name)
        return VolumeInfo(
            name=entry.name,
            key=url,
            path=url,
            type="network",
            format=fmt,
            capacity=capacity,
            allocation=entry.attrs.used,
            physical=entry.attrs.size,
        )

    def refresh(self) -> list[VolumeInfo]:
        """Every regular file in the export (native) or in the mounted target."""
        if not self.native:
            return self._dir().refresh()
        with nfsrpc.session(self.host, self.export) as nfs:
            return [self._info(e) for e in nfs.listdir(head=32)]

    def create_volume(self, req: CreateRequest) -> VolumeInfo:
        """``qemu-img create`` on the nfs:// URL (thin only in native mode)."""
        if not self.native:
            return self._dir().create_volume(req)
        if req.backing_path:
            raise UnsupportedError(
                f"pool '{self.name}': backing files are not supported in native NFS mode"
            )
        if req.allocation:
            raise UnsupportedError(
                f"pool '{self.name}': QEMU's nfs driver cannot preallocate volume '{req.name}'",
                hint="create it thin (--allocation 0)",
            )
        opts: dict[str, str | None] | None = (
            {"preallocation": "metadata"} if req.prealloc_metadata else None
        )
        qemu_img.create(self.url(req.name), req.format, req.capacity, options=opts)
        return self._require(req.name)

    def _require(self, name: str) -> VolumeInfo:
        vol = self.volume(name)
        if vol is None:
            raise UnsupportedError(f"pool '{self.name}': volume '{name}' vanished")
        return vol

    def create_volume_from(
        self, req: CreateRequest, source: DiskSource, source_info: VolumeInfo
    ) -> VolumeInfo:
        """``qemu-img convert`` from a file, block device or nfs:// URL to a new volume."""
        if not self.native:
            return self._dir().create_volume_from(req, source, source_info)
        if source.offset is not None or (source.kind == "network" and source.protocol != "nfs"):
            raise UnsupportedError(
                f"pool '{self.name}': cannot copy volume '{source_info.name}' from its pool"
            )
        src = source_info.path if source.kind == "network" else source.path or ""
        qemu_img.convert(src, source.format, self.url(req.name), req.format)
        return self._require(req.name)

    def delete_volume(self, vol: VolumeInfo) -> None:
        """Remove the file (NFSv3 REMOVE in native mode)."""
        if not self.native:
            self._dir().delete_volume(vol)
            return
        with nfsrpc.session(self.host, self.export) as nfs:
            nfs.remove(vol.name)

    def resize_volume(self, vol: VolumeInfo, capacity: int, *, allocate: bool) -> VolumeInfo:
        """``qemu-img resize`` (grow)."""
        if not self.native:
            return self._dir().resize_volume(vol, capacity, allocate=allocate)
        if allocate:
            raise UnsupportedError(f"pool '{self.name}': QEMU's nfs driver cannot preallocate")
        qemu_img.resize(vol.path, vol.format, capacity)
        return self._require(vol.name)

    def wipe_volume(
        self,
        vol: VolumeInfo,
        algorithm: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Native mode: replace the file by an empty one of the same format and size."""
        if not self.native:
            self._dir().wipe_volume(vol, algorithm)
            return
        if algorithm != "zero":
            raise UnsupportedError(
                f"pool '{self.name}': wipe algorithm '{algorithm}' needs a mounted pool"
            )
        self.delete_volume(vol)
        qemu_img.create(vol.path, vol.format, vol.capacity)
        if self._require(vol.name).allocation > 64 * 1024 * 1024:
            raise UnsupportedError(f"pool '{self.name}': volume '{vol.name}' was not wiped")

    def open_volume(self, vol: VolumeInfo, *, write: bool) -> int:
        """Kernel mode only: a file descriptor on the mounted file."""
        if not self.native:
            return self._dir().open_volume(vol, write=write)
        raise UnsupportedError(
            f"pool '{self.name}': volume data cannot be streamed in native NFS mode",
            hint="use 'qemu-img convert' with the volume's nfs:// path",
        )

    def disk_source(self, vol: VolumeInfo) -> DiskSource:
        """Native: ``network``/``nfs`` with name ``DIR/NAME``; kernel: the mounted file."""
        if not self.native:
            return self._dir().disk_source(vol)
        return DiskSource(
            kind="network",
            format=vol.format,
            protocol="nfs",
            host=self.host,
            name=f"{self.export.rstrip('/')}/{vol.name}",
        )

    @classmethod
    def find_sources(cls, host: str | None, spec: object | None) -> str:
        """The exports of ``host`` (MOUNT EXPORT, like ``showmount -e``)."""
        if not host:
            raise InvalidConfigError(
                "find-storage-pool-sources for netfs needs a host", hint="give --host"
            )
        lines = ["<sources>"]
        for path in nfsrpc.exports(host):
            lines += [
                "  <source>",
                f"    <host name={quoteattr(host)}/>",
                f"    <dir path={quoteattr(path)}/>",
                "    <format type='nfs'/>",
                "  </source>",
            ]
        lines.append("</sources>")
        return "\n".join(lines) + "\n"
