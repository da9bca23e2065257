"""The serial console of a domain a test started: its ``/dev/pts/N`` (from the runtime
record's ``ptys``), opened through :func:`pyvirt.drivers.qemu.console.open_stream`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from pyvirt.drivers.qemu import console


def serial_path(root: Path, name: str) -> Path:
    """Domain *name*'s first serial console under state root *root* (its pty)."""
    rec = json.loads((root / "run" / "qemu" / name / "runtime.json").read_text())
    ptys: dict[str, str] = rec.get("ptys") or {}
    if "serial0" in ptys:
        return Path(ptys["serial0"])
    return Path(rec["serial_sockets"][0])


def connect_serial(root: Path, name: str) -> socket.socket:
    """A socket carrying domain *name*'s serial console (close it to end the session)."""
    return console.open_stream(serial_path(root, name), name=name)
