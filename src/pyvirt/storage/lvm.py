"""The only module that runs the LVM tools (pvcreate, vgcreate, lvcreate, lvs, ...).

Two modes, chosen by :func:`device_mapper_available`:

* with the kernel's device-mapper, LVM works as usual: LVs are activated and appear as
  ``/dev/VG/LV``;
* without it (this project's CI kernel), only metadata operations work. Every command then runs
  with ``--config 'global/activation=0 backup/backup=0 backup/archive=0'`` so LVM neither tries
  to activate anything nor writes files to ``/etc/lvm/{backup,archive}``. LVs are created with
  ``--alloc contiguous`` so each is one range of its PV, which QEMU's raw driver can open with
  ``offset``/``size`` (see :func:`lv_range`).

Reports are read with ``--reportformat json --units b --nosuffix``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvirt.errors import UnsupportedError
from pyvirt.hostcmd import run, tool

METADATA_ONLY = "global/activation=0 backup/backup=0 backup/archive=0"
#: the message every device-mapper refusal uses
NO_DM = "this kernel has no device-mapper (CONFIG_BLK_DEV_DM)"
ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}


def device_mapper_available(root: Path = Path("/")) -> bool:
    """Whether the kernel offers device-mapper (``/dev/mapper/control`` or ``/proc/misc``)."""
    if (root / "dev/mapper/control").exists():
        return True
    try:
        misc = (root / "proc/misc").read_text()
    except OSError:
        return False
    return any(line.split()[-1:] == ["device-mapper"] for line in misc.splitlines())


def _lvm(cmd: str, *args: str, what: str, ok_codes: tuple[int, ...] = (0,)) -> str:
    argv = [tool(cmd, "lvm2")]
    if not device_mapper_available():
        argv += ["--config", METADATA_ONLY]
    argv += list(args)
    return run(argv, what=what, env=ENV, ok_codes=ok_codes).stdout


def _report(cmd: str, fields: str, *args: str, key: str, what: str) -> list[dict[str, Any]]:
    out = _lvm(
        cmd,
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        fields,
        *args,
        what=what,
    )
    rows: list[dict[str, Any]] = []
    for part in json.loads(out or '{"report": []}').get("report", []):
        rows.extend(part.get(key, []))
    return rows


@dataclass(frozen=True)
class VolumeGroup:
    """A VG's size and extent geometry (bytes)."""

    name: str
    size: int
    free: int
    extent_size: int
    pvs: tuple[str, ...]


@dataclass(frozen=True)
class LogicalVolume:
    """An LV: size, its segments' PV ranges (``(pv, first_extent, last_extent)``), attributes."""

    name: str
    size: int
    attr: str
    origin: str
    pool_lv: str
    segments: tuple[tuple[str, int, int], ...]


def volume_group(vg: str) -> VolumeGroup | None:
    """The VG named ``vg``, or None when no PV carries it."""
    rows = _report(
        "vgs",
        "vg_name,vg_size,vg_free,vg_extent_size",
        key="vg",
        what=f"cannot read volume group '{vg}'",
    )
    row = next((r for r in rows if r.get("vg_name") == vg), None)
    if row is None:
        return None
    pvs = tuple(p["pv_name"] for p in physical_volumes() if p.get("vg_name") == vg)
    return VolumeGroup(
        vg, int(row["vg_size"]), int(row["vg_free"]), int(row["vg_extent_size"]), pvs
    )


def physical_volumes() -> list[dict[str, Any]]:
    """Every PV: ``pv_name``, ``vg_name``, ``pe_start``, ``pv_size`` (bytes as strings)."""
    return _report(
        "pvs",
        "pv_name,vg_name,pe_start,pv_size,pv_free",
        key="pv",
        what="cannot list physical volumes",
    )


def logical_volumes(vg: str) -> list[LogicalVolume]:
    """The LVs of ``vg`` with their segments, sorted by name."""
    rows = _report(
        "lvs",
        "lv_name,lv_size,lv_attr,origin,pool_lv,seg_pe_ranges",
        vg,
        key="lv",
        what=f"cannot list the logical volumes of '{vg}'",
    )
    return parse_lvs(rows)


def parse_lvs(rows: list[dict[str, Any]]) -> list[LogicalVolume]:
    """LVs from ``lvs`` JSON rows (one row per segment), sorted by name (pure)."""
    by_name: dict[str, tuple[dict[str, Any], list[tuple[str, int, int]]]] = {}
    for row in rows:
        entry = by_name.setdefault(row["lv_name"], (row, []))
        for rng in str(row.get("seg_pe_ranges") or "").split():
            dev, _, extents = rng.rpartition(":")
            first, _, last = extents.partition("-")
            if dev and first.isdigit():
                entry[1].append((dev, int(first), int(last or first)))
    return [
        LogicalVolume(
            name,
            int(row["lv_size"]),
            str(row.get("lv_attr", "")),
            str(row.get("origin", "")),
            str(row.get("pool_lv", "")),
            tuple(segs),
        )
        for name, (row, segs) in sorted(by_name.items())
    ]


def lv_range(lv: LogicalVolume, extent_size: int) -> tuple[str, int, int]:
    """``(pv, offset, size)``: where a single-segment LV's bytes lie on its PV.

    :raises UnsupportedError: for an LV of several segments (or none: thin, virtual)
    """
    if len(lv.segments) != 1:
        raise UnsupportedError(
            f"logical volume '{lv.name}' has {len(lv.segments)} segments; "
            f"without device-mapper only single-segment volumes can be used",
            hint=f"{NO_DM}; create volumes with pyvirt (contiguous allocation)",
        )
    pv, first, last = lv.segments[0]
    pe_start = next(int(p["pe_start"]) for p in physical_volumes() if p["pv_name"] == pv)
    size = (last - first + 1) * extent_size
    return pv, pe_start + first * extent_size, min(size, lv.size)


def pvcreate(devices: list[str], *, force: bool) -> None:
    """Label ``devices`` as PVs (``force`` overwrites an existing signature)."""
    args = ["-ff", "-y"] if force else []
    _lvm("pvcreate", *args, *devices, what=f"cannot create physical volumes on {devices}")


def vgcreate(vg: str, devices: list[str]) -> None:
    """Create ``vg`` over the PVs ``devices``."""
    _lvm("vgcreate", vg, *devices, what=f"cannot create volume group '{vg}'")


def vgremove(vg: str) -> None:
    """Remove ``vg`` with all its LVs."""
    _lvm("vgremove", "-f", vg, what=f"cannot remove volume group '{vg}'")


def pvremove(devices: list[str]) -> None:
    """Wipe the PV labels of ``devices``."""
    _lvm("pvremove", "-y", *devices, what=f"cannot wipe physical volumes {devices}")


def vgchange(vg: str, *, active: bool) -> None:
    """Activate or deactivate every LV of ``vg`` (needs device-mapper)."""
    flag = "-ay" if active else "-an"
    _lvm("vgchange", flag, vg, what=f"cannot change the activation of '{vg}'")


def lvcreate(vg: str, name: str, size: int) -> None:
    """Create a contiguous LV of ``size`` bytes (inactive and unzeroed without device-mapper)."""
    args = ["--alloc", "contiguous", "-L", f"{size}b", "-n", name, "-y"]
    if not device_mapper_available():
        args += ["-an", "-Zn"]
    _lvm("lvcreate", *args, vg, what=f"cannot create logical volume '{name}' in '{vg}'")


def lvcreate_snapshot(vg: str, name: str, origin: str, size: int) -> None:
    """Create a snapshot LV of ``origin`` with ``size`` bytes of copy-on-write space."""
    if not device_mapper_available():
        raise UnsupportedError(
            f"cannot create snapshot '{name}' of '{vg}/{origin}': {NO_DM}",
            hint="LVM snapshots need device-mapper; use qcow2 volumes in a dir pool for clones",
        )
    _lvm(
        "lvcreate",
        "-s",
        "-L",
        f"{size}b",
        "-n",
        name,
        f"{vg}/{origin}",
        what=f"cannot create snapshot '{name}' of '{vg}/{origin}'",
    )


def lvremove(vg: str, name: str) -> None:
    """Remove LV ``vg/name``."""
    _lvm("lvremove", "-f", f"{vg}/{name}", what=f"cannot remove logical volume '{vg}/{name}'")


def lvextend(vg: str, name: str, size: int) -> None:
    """Grow LV ``vg/name`` to ``size`` bytes (contiguously)."""
    _lvm(
        "lvextend",
        "--alloc",
        "contiguous",
        "-L",
        f"{size}b",
        f"{vg}/{name}",
        what=f"cannot grow logical volume '{vg}/{name}'",
    )
