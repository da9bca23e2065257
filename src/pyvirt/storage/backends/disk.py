"""``disk`` pools: a partition table on a block device; volumes are its partitions.

``pool-build`` writes the label (``<source><format type='dos'|'gpt'>``): it refuses when the
device already holds a partition table or a file system unless ``--overwrite`` is given.
``vol-create-as`` creates a primary partition of exactly the asked size (1 MiB aligned) with
parted; volumes are named after their partition node, as libvirt names them (``sdb1``,
``loop0p1``), so a new volume must be given the next free partition name.

parted tells the kernel about new partitions, which gives ``/dev/loop0p1``-style nodes even
where the kernel does not scan partition tables itself; :meth:`DiskPool.start` asks for missing
ones (``partx -a``). A partition without a node is still usable: it is handed to QEMU as a raw
byte range (``offset``/``size``) of the whole device.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pyvirt.errors import InvalidConfigError, InvalidStateError, UnsupportedError
from pyvirt.progress import CancelToken, Progress
from pyvirt.storage import parted, rawrange
from pyvirt.storage.base import (
    CreateRequest,
    DiskSource,
    PoolBackend,
    PoolCapabilities,
    PoolInfo,
    VolumeInfo,
)
from pyvirt.storage.registry import register_pool_backend


@register_pool_backend("disk")
class DiskPool(PoolBackend):
    """Partitions of one block device."""

    capabilities: ClassVar[PoolCapabilities] = PoolCapabilities(
        formats=("raw",),
        source_formats=("dos", "gpt"),
        source_fields=("device",),
        build=True,
        build_overwrite=True,
        delete=True,
        resize=False,
        shrink=False,
        thin=False,
        upload=True,
        target_is_dir=False,
    )

    @property
    def device(self) -> str:
        """The whole block device (``<source><device path>``)."""
        src = self.pool.source
        return (src.device if src is not None else None) or ""

    @property
    def label(self) -> str:
        """parted's label name for ``<source><format type>``."""
        src = self.pool.source
        return parted.parted_label(src.format if src is not None else None)

    def check(self) -> None:
        """Needs one ``<source><device path>`` and a dos/gpt format."""
        src = self.pool.source
        if src is None or not src.device:
            raise InvalidConfigError(
                f"pool '{self.name}': a disk pool needs <source><device path=...>",
                hint="give --source-dev",
            )
        if len(src.devices) > 1:
            raise InvalidConfigError(f"pool '{self.name}': a disk pool takes one device")
        self.label  # noqa: B018 - validates the format

    def _require_device(self) -> None:
        if not parted.is_block_device(self.device):
            raise InvalidConfigError(
                f"pool '{self.name}': '{self.device}' is not a block device",
                hint="use a disk or a loop device (losetup -f --show IMAGE)",
            )

    # -- pool --------------------------------------------------------------------------------
    def build(self, *, overwrite: bool | None = None) -> None:
        """Write an empty label; without ``--overwrite`` only on a device holding nothing."""
        self._require_device()
        if not overwrite:
            found = parted.has_signature(self.device)
            if found:
                raise InvalidStateError(
                    f"pool '{self.name}': device '{self.device}' already holds '{found}'",
                    hint="use pool-build --overwrite to replace it (its data is lost)",
                )
        parted.make_label(self.device, self.label)

    def delete(self) -> None:
        """Remove every partition node and zero the label: the first and the last MiB (GPT keeps
        a backup table at the end)."""
        self._require_device()
        parted.remove_nodes(self.device)
        size = parted.device_size(self.device)
        span = min(size, parted.ALIGN)
        rawrange.zero(self.device, 0, span)
        rawrange.zero(self.device, size - span, span)

    def start(self) -> None:
        """Check the device and its label; ask the kernel for missing partition nodes."""
        self._require_device()
        table = parted.read_table(self.device)
        if table.label != self.label:
            raise InvalidStateError(
                f"pool '{self.name}': device '{self.device}' has no {self.label} partition table "
                f"(found '{table.label}')",
                hint="write one with 'pool-build' (add --overwrite to replace another label)",
            )
        if any(not os.path.exists(self._node(p.number)) for p in table.partitions):
            parted.add_nodes(self.device)

    def info(self) -> PoolInfo:
        """Device size, space in partitions, and free space."""
        table = parted.read_table(self.device)
        used = sum(p.size for p in table.partitions)
        free = sum(f.size for f in table.free if f.size >= parted.ALIGN)
        return PoolInfo(capacity=table.size, allocation=used, available=free)

    # -- volumes -----------------------------------------------------------------------------
    def _node(self, number: int) -> str:
        return parted.node_name(self.device, number)

    def _info(self, part: parted.Partition) -> VolumeInfo:
        node = self._node(part.number)
        return VolumeInfo(
            name=os.path.basename(node),
            key=node,
            path=node,
            type="block",
            format="raw",
            capacity=part.size,
            allocation=part.size,
            physical=part.size,
        )

    def _partition(self, vol: VolumeInfo) -> parted.Partition:
        for part in parted.read_table(self.device).partitions:
            if self._node(part.number) == vol.path:
                return part
        raise InvalidStateError(f"pool '{self.name}': partition '{vol.name}' is gone")

    def refresh(self) -> list[VolumeInfo]:
        """The partitions, by name."""
        table = parted.read_table(self.device)
        return sorted((self._info(p) for p in table.partitions), key=lambda v: v.name)

    def create_volume(self, req: CreateRequest) -> VolumeInfo:
        """A new primary partition of exactly ``req.capacity`` bytes."""
        if req.format != "raw" or req.backing_path:
            raise UnsupportedError(
                f"pool '{self.name}': partitions hold raw data only (format '{req.format}')"
            )
        table = parted.read_table(self.device)
        used = {p.number for p in table.partitions}
        number = next(n for n in range(1, 1000) if n not in used)
        expected = os.path.basename(self._node(number))
        if req.name != expected:
            raise InvalidConfigError(
                f"pool '{self.name}': the next partition is named '{expected}', not '{req.name}'",
                hint=f"create the volume as '{expected}'",
            )
        where = parted.place(table, req.capacity)
        if where is None:
            raise InvalidStateError(
                f"pool '{self.name}': no free region of device '{self.device}' holds "
                f"{req.capacity} bytes",
                hint="see the free space with 'pool-info'",
            )
        parted.make_partition(self.device, *where)
        created = next(
            (p for p in parted.read_table(self.device).partitions if p.start == where[0]), None
        )
        if created is None:
            raise InvalidStateError(f"pool '{self.name}': parted did not create '{req.name}'")
        return self._info(created)

    def delete_volume(self, vol: VolumeInfo) -> None:
        """Remove the partition from the table (and its node)."""
        parted.remove_partition(self.device, self._partition(vol).number)

    def wipe_volume(
        self,
        vol: VolumeInfo,
        algorithm: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Zero the partition's bytes and read them back."""
        if algorithm != "zero":
            raise UnsupportedError(f"wipe algorithm '{algorithm}' is not supported here")
        part = self._partition(vol)
        rawrange.zero(self.device, part.start, part.size, progress=progress, cancel=cancel)

    def open_volume(self, vol: VolumeInfo, *, write: bool) -> int:
        """The partition node (a range without a node cannot be streamed)."""
        if not os.path.exists(vol.path):
            raise UnsupportedError(
                f"partition '{vol.name}' has no device node; the kernel did not register it",
                hint=f"run 'partx -a {self.device}' or restart the pool",
            )
        return os.open(vol.path, os.O_RDWR if write else os.O_RDONLY)

    def disk_source(self, vol: VolumeInfo) -> DiskSource:
        """The partition node when it exists, else a raw range of the whole device."""
        if os.path.exists(vol.path):
            return DiskSource(kind="block", path=vol.path)
        part = self._partition(vol)
        return DiskSource(kind="block", path=self.device, offset=part.start, size=part.size)
