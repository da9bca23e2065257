"""``logical`` pools: an LVM volume group; volumes are its logical volumes.

``pool-build`` labels the ``<source><device>`` paths as PVs and creates the VG
(``<source><name>``, the pool's name by default); ``pool-delete`` removes both. Volumes are LVs
made with ``--alloc contiguous``.

With the kernel's device-mapper, LVs are activated on ``pool-start`` and used as
``/dev/VG/LV``. Without it only LVM's metadata can be changed (see :mod:`pyvirt.storage.lvm`):
LVs then stay inactive and each one is handed to QEMU as a raw byte range of its PV
(``pe_start`` + first extent × extent size, LV size). Snapshots (``--backing-vol``) and thin
volumes need device-mapper and are refused with that name.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pyvirt.errors import InvalidConfigError, InvalidStateError, UnsupportedError
from pyvirt.progress import CancelToken, Progress
from pyvirt.storage import lvm, parted, rawrange
from pyvirt.storage.base import (
    CreateRequest,
    DiskSource,
    PoolBackend,
    PoolCapabilities,
    PoolInfo,
    VolumeInfo,
)
from pyvirt.storage.registry import register_pool_backend


@register_pool_backend("logical")
class LogicalPool(PoolBackend):
    """An LVM volume group."""

    capabilities: ClassVar[PoolCapabilities] = PoolCapabilities(
        formats=("raw",),
        source_formats=("lvm2",),
        source_fields=("device", "name"),
        build=True,
        build_overwrite=True,
        delete=True,
        resize=True,
        shrink=False,
        backing=True,
        thin=False,
        upload=True,
        find_sources=True,
        target_is_dir=False,
    )

    @property
    def vg(self) -> str:
        """The VG name: ``<source><name>``, else the pool name."""
        src = self.pool.source
        return (src.name if src is not None else None) or self.name

    @property
    def devices(self) -> list[str]:
        """The PVs (``<source><device path>``)."""
        src = self.pool.source
        return [d.path for d in src.devices if d.path] if src is not None else []

    def check(self) -> None:
        """A VG name without '/'; the format, when given, is lvm2."""
        src = self.pool.source
        if "/" in self.vg or self.vg.startswith("-"):
            raise InvalidConfigError(f"pool '{self.name}': '{self.vg}' is not a VG name")
        if src is not None and src.format not in (None, "lvm2", "auto"):
            raise InvalidConfigError(
                f"pool '{self.name}': logical pool format '{src.format}' is not lvm2"
            )

    def _group(self) -> lvm.VolumeGroup:
        group = lvm.volume_group(self.vg)
        if group is None:
            raise InvalidStateError(
                f"pool '{self.name}': volume group '{self.vg}' does not exist",
                hint="create it with 'pool-build' (the pool needs <source><device path=...>)",
            )
        return group

    # -- pool --------------------------------------------------------------------------------
    def build(self, *, overwrite: bool | None = None) -> None:
        """pvcreate every device (refusing ones holding data unless ``--overwrite``), vgcreate."""
        if not self.devices:
            raise InvalidConfigError(
                f"pool '{self.name}': pool-build needs <source><device path=...>",
                hint="give --source-dev",
            )
        for dev in self.devices:
            if not parted.is_block_device(dev):
                raise InvalidConfigError(f"pool '{self.name}': '{dev}' is not a block device")
            found = None if overwrite else parted.has_signature(dev)
            if found:
                raise InvalidStateError(
                    f"pool '{self.name}': device '{dev}' already holds '{found}'",
                    hint="use pool-build --overwrite to replace it (its data is lost)",
                )
        lvm.pvcreate(self.devices, force=bool(overwrite))
        lvm.vgcreate(self.vg, self.devices)

    def delete(self) -> None:
        """Remove the VG with its LVs and wipe the PV labels."""
        group = lvm.volume_group(self.vg)
        pvs = list(group.pvs) if group is not None else self.devices
        if group is not None:
            lvm.vgremove(self.vg)
        if pvs:
            lvm.pvremove(pvs)

    def start(self) -> None:
        """Check the VG exists; activate its LVs where device-mapper is there."""
        self._group()
        if lvm.device_mapper_available():
            lvm.vgchange(self.vg, active=True)

    def stop(self) -> None:
        """Deactivate the LVs (device-mapper only)."""
        if lvm.device_mapper_available() and lvm.volume_group(self.vg) is not None:
            lvm.vgchange(self.vg, active=False)

    def info(self) -> PoolInfo:
        """VG size, used and free bytes."""
        group = self._group()
        return PoolInfo(
            capacity=group.size, allocation=group.size - group.free, available=group.free
        )

    # -- volumes -----------------------------------------------------------------------------
    def _info(self, lv: lvm.LogicalVolume) -> VolumeInfo:
        path = f"/dev/{self.vg}/{lv.name}"
        return VolumeInfo(
            name=lv.name,
            key=path,
            path=path,
            type="block",
            format="raw",
            capacity=lv.size,
            allocation=lv.size,
            physical=lv.size,
            backing_path=f"/dev/{self.vg}/{lv.origin}" if lv.origin else None,
        )

    def _lv(self, name: str) -> lvm.LogicalVolume:
        for lv in lvm.logical_volumes(self.vg):
            if lv.name == name:
                return lv
        raise InvalidStateError(f"pool '{self.name}': logical volume '{name}' is gone")

    def refresh(self) -> list[VolumeInfo]:
        """Every LV of the VG."""
        return [self._info(lv) for lv in lvm.logical_volumes(self.vg)]

    def create_volume(self, req: CreateRequest) -> VolumeInfo:
        """A contiguous LV of ``req.capacity`` (rounded up to whole extents by LVM)."""
        if req.format != "raw":
            raise UnsupportedError(f"pool '{self.name}': LVs hold raw data only")
        if req.backing_path:
            origin = os.path.basename(req.backing_path)
            lvm.lvcreate_snapshot(self.vg, req.name, origin, req.capacity)
        else:
            lvm.lvcreate(self.vg, req.name, req.capacity)
        return self._info(self._lv(req.name))

    def delete_volume(self, vol: VolumeInfo) -> None:
        """lvremove."""
        lvm.lvremove(self.vg, vol.name)

    def resize_volume(self, vol: VolumeInfo, capacity: int, *, allocate: bool) -> VolumeInfo:
        """lvextend (contiguous; fails when the next extents are taken)."""
        lvm.lvextend(self.vg, vol.name, capacity)
        return self._info(self._lv(vol.name))

    def _range(self, vol: VolumeInfo) -> tuple[str, int, int]:
        return lvm.lv_range(self._lv(vol.name), self._group().extent_size)

    def wipe_volume(
        self,
        vol: VolumeInfo,
        algorithm: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Zero the LV's bytes (through its node or its PV range) and verify."""
        if algorithm != "zero":
            raise UnsupportedError(f"wipe algorithm '{algorithm}' is not supported here")
        if os.path.exists(vol.path):
            rawrange.zero(vol.path, 0, vol.capacity, progress=progress, cancel=cancel)
        else:
            rawrange.zero(*self._range(vol), progress=progress, cancel=cancel)

    def open_volume(self, vol: VolumeInfo, *, write: bool) -> int:
        """The active LV's node (needs device-mapper)."""
        if not os.path.exists(vol.path):
            raise UnsupportedError(
                f"logical volume '{vol.name}' is not active: {lvm.NO_DM}",
                hint="the volume can still be attached to a domain",
            )
        return os.open(vol.path, os.O_RDWR if write else os.O_RDONLY)

    def disk_source(self, vol: VolumeInfo) -> DiskSource:
        """``/dev/VG/LV`` when active, else the LV's byte range of its PV."""
        if os.path.exists(vol.path):
            return DiskSource(kind="block", path=vol.path)
        pv, offset, size = self._range(vol)
        return DiskSource(kind="block", path=pv, offset=offset, size=size)

    @classmethod
    def find_sources(cls, host: str | None, spec: object | None) -> str:
        """Every VG on this host with its PVs."""
        groups: dict[str, list[str]] = {}
        for pv in lvm.physical_volumes():
            if pv.get("vg_name"):
                groups.setdefault(pv["vg_name"], []).append(pv["pv_name"])
        lines = ["<sources>"]
        for vg, pvs in sorted(groups.items()):
            lines.append("  <source>")
            lines += [f"    <device path='{p}'/>" for p in pvs]
            lines += [f"    <name>{vg}</name>", "    <format type='lvm2'/>", "  </source>"]
        lines.append("</sources>")
        return "\n".join(lines) + "\n"
