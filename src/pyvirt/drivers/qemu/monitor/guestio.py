"""Typed QMP commands behind ``send-key``, ``domblkerror`` and generic device hot-plug: keys,
block I/O status and tray state, QOM objects, the watchdog action. (``change-media`` uses
:mod:`.block`'s ``blockdev-change-medium`` and ``eject``.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Args, Commands, prune


@dataclass(frozen=True)
class BlockIoStatus:
    """The I/O status of one guest drive (``query-block``'s ``io-status``).

    :ivar qdev: the guest device's id or QOM path
    :ivar status: ``ok``, ``failed`` or ``nospace`` (``ok`` when QEMU reports none)
    :ivar tray_open: whether a removable drive's tray is open (None: not removable)
    :ivar inserted: the file of the inserted medium (None: empty or none reported)
    """

    qdev: str
    status: str
    tray_open: bool | None
    inserted: str | None

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> BlockIoStatus:
        """Parse one ``BlockInfo``."""
        media = raw.get("inserted")
        tray = raw.get("tray_open")
        return cls(
            str(raw.get("qdev") or raw.get("device") or ""),
            str(raw.get("io-status") or "ok"),
            bool(tray) if tray is not None else None,
            str(media.get("file")) if isinstance(media, dict) and media.get("file") else None,
        )


class GuestIoCommands(Commands):
    """``send-key``, block I/O status, ``object-add``/``-del``, the watchdog action."""

    def send_key(self, qcodes: Sequence[int], *, hold_time: int | None = None) -> None:
        """Press the keys *qcodes* (QEMU key numbers, "qnum") together, then release them.

        :param hold_time: milliseconds to hold them (QEMU's default: 100)
        """
        keys = [{"type": "number", "data": int(code)} for code in qcodes]
        self._call("send-key", prune({"keys": keys, "hold-time": hold_time}))  # type: ignore[dict-item]

    def block_io_status(self) -> list[BlockIoStatus]:
        """Every guest drive's I/O status and tray state."""
        return [BlockIoStatus.from_wire(b) for b in self._call("query-block")]

    def object_add(self, props: Args) -> None:
        """Add a QOM object; *props* as ``-object`` in JSON form (``qom-type``, ``id``...)."""
        if "qom-type" not in props or "id" not in props:
            raise TypeError("object_add needs 'qom-type' and 'id' properties")
        self._call("object-add", prune(props))

    def object_del(self, id: str) -> None:
        """Remove QOM object *id*."""
        self._call("object-del", {"id": id})

    def set_watchdog_action(self, action: str) -> None:
        """What the watchdog does when it fires (``reset``, ``shutdown``, ``pause``...)."""
        self._call("set-action", {"watchdog": action})
