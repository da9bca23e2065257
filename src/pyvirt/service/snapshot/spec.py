"""``snapshot-create-as``'s options as snapshot XML: ``--memspec`` and ``--diskspec``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.model.snapshot import DomainSnapshot

_DISK_KEYS = ("snapshot", "driver", "file", "stype")
_LOCATIONS = ("internal", "external", "no")

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


def _split(spec: str, what: str) -> list[tuple[str, str]]:
    """``a,k=v,k2=v2`` with ``,,`` for a literal comma, as virsh splits it."""
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(spec):
        if spec[i] == ",":
            if spec[i + 1 : i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += spec[i]
        i += 1
    parts.append(cur)
    out = []
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq:
            out.append(("", key))
        else:
            out.append((key.strip(), value))
    if not out or not any(v for _, v in out):
        raise InvalidConfigError(f"empty {what}")
    return out


def _location(value: str, what: str) -> str:
    if value not in _LOCATIONS:
        raise InvalidConfigError(
            f"{what}: snapshot='{value}' is not one of {', '.join(_LOCATIONS)}"
        )
    return value


def build(
    name: str | None,
    description: str | None,
    *,
    memspec: str | None = None,
    diskspecs: Sequence[str] = (),
    disk_only: bool = False,
) -> DomainSnapshot:
    """The snapshot XML ``snapshot-create-as`` builds from its options.

    ``--memspec [file=]PATH[,snapshot=internal|external|no]``,
    ``--diskspec DISK[,snapshot=internal|external|no][,driver=qcow2][,file=PATH]``.

    :raises InvalidConfigError: a malformed spec
    """
    from pyvirt.model.snapshot import DomainSnapshot  # lazy

    snap = DomainSnapshot()
    if name:
        snap.name = name
    if description:
        snap.description = description
    if memspec:
        for key, value in _split(memspec, "--memspec"):
            if key in ("", "file"):
                snap.memory_file = value
            elif key == "snapshot":
                snap.memory = _location(value, "--memspec")
            else:
                raise InvalidConfigError(f"--memspec: unknown key '{key}'")
        if snap.memory is None:
            snap.memory = "external" if snap.memory_file else "no"
    elif disk_only:
        snap.memory = "no"
    for spec in diskspecs:
        items = _split(spec, "--diskspec")
        if items[0][0]:
            raise InvalidConfigError(f"--diskspec '{spec}' must start with the disk's name")
        disk = snap.add_disk(name=items[0][1])
        for key, value in items[1:]:
            if key not in _DISK_KEYS:
                raise InvalidConfigError(f"--diskspec '{spec}': unknown key '{key}'")
            if key == "snapshot":
                disk.snapshot = _location(value, f"--diskspec {items[0][1]}")
            elif key == "driver":
                disk.driver_type = value
            elif key == "file":
                disk.source_file = value
            elif key == "stype":
                disk.type = value
        if disk.source_file and disk.snapshot is None:
            disk.snapshot = "external"
    return snap
