"""Typed values the QMP monitor returns, parsed from QEMU's JSON replies.

Each class mirrors the part of a QAPI type pyvirt reads (field names in snake_case, QAPI's
dashes and underscores folded), with a ``from_wire`` constructor that tolerates missing
optional members and ignores the rest, so a newer QEMU with more members parses the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Any JSON value, as QEMU sends it (``qom-get`` results, raw passthrough).
Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]


def _int(value: object, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str | float):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _int_or_none(value: object) -> int | None:
    return None if value is None else _int(value)


def _ints(raw: object) -> dict[str, int]:
    """The integer members of a JSON object (booleans and nested values dropped)."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def _dicts(raw: object) -> list[Mapping[str, Any]]:
    return [d for d in raw if isinstance(d, Mapping)] if isinstance(raw, list) else []


# -- vCPUs and threads ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuInfo:
    """One vCPU of ``query-cpus-fast``.

    :ivar cpu_index: the vCPU number
    :ivar thread_id: the host thread running it
    :ivar qom_path: its QOM path
    :ivar props: its topology (``socket-id``, ``core-id``, ``thread-id``...)
    """

    cpu_index: int
    thread_id: int
    qom_path: str = ""
    props: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> CpuInfo:
        """Parse one ``CpuInfoFast``."""
        return cls(
            _int(raw.get("cpu-index")),
            _int(raw.get("thread-id")),
            str(raw.get("qom-path", "")),
            _ints(raw.get("props")),
        )


@dataclass(frozen=True)
class HotpluggableCpu:
    """One vCPU slot of ``query-hotpluggable-cpus``.

    :ivar type: the QEMU device type that fills the slot (``qemu64-x86_64-cpu``...)
    :ivar vcpus_count: vCPUs the slot holds
    :ivar props: the slot's topology; ``device_add`` takes them as properties
    :ivar qom_path: the plugged vCPU's QOM path, ``None`` for an empty slot
    """

    type: str
    vcpus_count: int
    props: dict[str, int]
    qom_path: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> HotpluggableCpu:
        """Parse one ``HotpluggableCPU``."""
        path = raw.get("qom-path")
        return cls(
            str(raw.get("type", "")),
            _int(raw.get("vcpus-count"), 1),
            _ints(raw.get("props")),
            str(path) if path else None,
        )


@dataclass(frozen=True)
class IOThreadInfo:
    """One I/O thread of ``query-iothreads``: its object id, host thread and its adaptive
    polling settings (``None`` from a QEMU that does not report them)."""

    id: str
    thread_id: int
    poll_max_ns: int | None = None
    poll_grow: int | None = None
    poll_shrink: int | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> IOThreadInfo:
        """Parse one ``IOThreadInfo``."""
        return cls(
            str(raw.get("id", "")),
            _int(raw.get("thread-id")),
            _int_or_none(raw.get("poll-max-ns")),
            _int_or_none(raw.get("poll-grow")),
            _int_or_none(raw.get("poll-shrink")),
        )


@dataclass(frozen=True)
class BalloonStats:
    """The virtio-balloon's ``guest-stats`` QOM property.

    :ivar stats: ``stat-free-memory`` etc. as QEMU names them; a statistic the guest has not
        sent is -1 or 2^64-1
    :ivar last_update: seconds since the epoch of the guest's last report (0: none yet)
    """

    stats: dict[str, int]
    last_update: int

    @classmethod
    def from_wire(cls, raw: object) -> BalloonStats:
        """Parse the property's value."""
        if not isinstance(raw, Mapping):
            return cls({}, 0)
        return cls(_ints(raw.get("stats")), _int(raw.get("last-update")))


# -- QOM and PCI ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class QomProperty:
    """One entry of ``qom-list``: a property name and type (``child<virtio-net-pci>``...)."""

    name: str
    type: str

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> QomProperty:
        """Parse one ``ObjectPropertyInfo``."""
        return cls(str(raw.get("name", "")), str(raw.get("type", "")))


@dataclass(frozen=True)
class PciDevice:
    """One PCI function of ``query-pci``.

    :ivar bridge_devices: the devices behind it when it is a bridge or root port (else ``None``)
    """

    bus: int
    slot: int
    function: int
    qdev_id: str = ""
    bridge_devices: list[PciDevice] | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> PciDevice:
        """Parse one ``PciDeviceInfo`` (recursively through bridges)."""
        bridge = raw.get("pci_bridge")
        below = None
        if isinstance(bridge, Mapping):
            below = [cls.from_wire(d) for d in _dicts(bridge.get("devices"))]
        return cls(
            _int(raw.get("bus")),
            _int(raw.get("slot")),
            _int(raw.get("function")),
            str(raw.get("qdev_id") or ""),
            below,
        )


@dataclass(frozen=True)
class PciBus:
    """One root PCI bus of ``query-pci`` and its devices."""

    bus: int
    devices: list[PciDevice]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> PciBus:
        """Parse one ``PciInfo``."""
        return cls(
            _int(raw.get("bus")), [PciDevice.from_wire(d) for d in _dicts(raw.get("devices"))]
        )


# -- block ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockNode:
    """One block node of ``query-named-block-nodes``.

    :ivar node_name: the node's name (``virtio-disk1-format``)
    :ivar drv: its driver (``qcow2``, ``file``...)
    :ivar file: the file name QEMU shows for it
    :ivar virtual_size: the image's size in bytes as the guest sees it
    :ivar actual_size: bytes allocated on the host, when QEMU knows
    """

    node_name: str
    drv: str = ""
    file: str = ""
    virtual_size: int = 0
    actual_size: int | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> BlockNode:
        """Parse one ``BlockDeviceInfo``."""
        image = raw.get("image") if isinstance(raw.get("image"), Mapping) else {}
        assert isinstance(image, Mapping)
        return cls(
            str(raw.get("node-name", "")),
            str(raw.get("drv", "")),
            str(raw.get("file") or ""),
            _int(image.get("virtual-size")),
            _int_or_none(image.get("actual-size")),
        )


@dataclass(frozen=True)
class BlockDevice:
    """One guest block device of ``query-block``.

    :ivar device: the legacy drive name (empty with ``-blockdev``)
    :ivar qdev: the guest device's id or QOM path
    :ivar removable: whether it takes removable media (CD-ROM, floppy)
    :ivar node_name: the root node of its inserted medium, if any
    """

    device: str
    qdev: str
    removable: bool
    node_name: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> BlockDevice:
        """Parse one ``BlockInfo``."""
        inserted = raw.get("inserted")
        node = inserted.get("node-name") if isinstance(inserted, Mapping) else None
        return cls(
            str(raw.get("device") or ""),
            str(raw.get("qdev") or ""),
            bool(raw.get("removable")),
            str(node) if node else None,
        )


@dataclass(frozen=True)
class BlockStats:
    """I/O counters of one guest block device (``query-blockstats``).

    :ivar qdev: the guest device's QOM path (``/machine/peripheral/virtio-disk0/...``)
    :ivar stats: the integer counters by QEMU name (``rd_bytes``, ``wr_operations``...)
    """

    qdev: str
    stats: dict[str, int]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> BlockStats:
        """Parse one ``BlockStats``."""
        return cls(str(raw.get("qdev") or ""), _ints(raw.get("stats")))

    @property
    def device_id(self) -> str:
        """The device id: the first component after ``/machine/peripheral/``."""
        return self.qdev.removeprefix("/machine/peripheral/").split("/")[0]


__all__ = [
    "BalloonStats",
    "BlockDevice",
    "BlockNode",
    "BlockStats",
    "CpuInfo",
    "HotpluggableCpu",
    "IOThreadInfo",
    "Json",
    "PciBus",
    "PciDevice",
    "QomProperty",
]
