"""Lowering of ``<serial>``, ``<console>`` and ``<channel>``: a ``-chardev`` backend and the
guest-side ``-device`` (``isa-serial``, ``virtconsole``, ``virtserialport``).

A ``pty`` backend is ``-chardev pty`` as libvirt makes it: QEMU allocates a ``/dev/pts/N``
(read back with ``query-chardev`` after the start and shown in the live XML), which
``pyvirt console`` and pyvirtd's web console open. Without a ``<log>`` its output is also kept
in the log directory (``logfile=``), so the console's history survives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Chardev

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

SERIAL_TARGETS = {
    None: "isa-serial",
    "isa-serial": "isa-serial",
    "pci-serial": "pci-serial",
    "usb-serial": "usb-serial",
}


def log_path(b: Build, alias: str) -> Path:
    """Log of a ``pty`` device: ``console.log`` for the first serial port, else ``<alias>.log``."""
    return b.ctx.log_dir / ("console.log" if alias == "serial0" else f"{alias}.log")


def backend(b: Build, dev: Chardev, alias: str) -> str:
    """The ``-chardev`` value for *dev* with id ``char<alias>``."""
    cid = f"char{alias}"
    logfile = dev.log_file
    logappend = dev.log_append if logfile else None
    t = dev.type
    if t == "pty":
        return qemu_opts(
            "pty",
            id=cid,
            logfile=logfile or str(log_path(b, alias)),
            logappend=True if logappend is None else logappend,
        )
    if t == "file":
        return qemu_opts(
            "file",
            id=cid,
            path=dev.source_path,
            append=dev.source_append,
            logfile=logfile,
            logappend=logappend,
        )
    if t == "unix":
        server = dev.source_mode == "bind"
        return qemu_opts(
            "socket",
            id=cid,
            path=dev.source_path,
            server=True if server else None,
            wait=False if server else None,
            logfile=logfile,
            logappend=logappend,
        )
    if t == "tcp":
        server = dev.source_mode in (None, "bind")
        return qemu_opts(
            "socket",
            id=cid,
            host=dev.source_host,
            port=dev.source_service,
            telnet=True if dev.protocol_type == "telnet" else None,
            server=True if server else None,
            wait=False if server else None,
            logfile=logfile,
            logappend=logappend,
        )
    if t == "udp":
        return qemu_opts("udp", id=cid, host=dev.source_host, port=dev.source_service)
    if t in ("null", "stdio", "vc"):
        return qemu_opts(t, id=cid, logfile=logfile, logappend=logappend)
    if t in ("dev", "pipe"):
        return qemu_opts("serial" if t == "dev" else "pipe", id=cid, path=dev.source_path)
    raise UnsupportedError(f"character device type '{t}' is not supported yet")


def _serial_device(b: Build, dev: Chardev, alias: str, index: int) -> dict[str, JsonValue]:
    driver = SERIAL_TARGETS.get(dev.target_type if dev.target_type != "serial" else None)
    if dev.kind == "console" and dev.target_type in (None, "serial"):
        driver = "isa-serial"
    if driver is None:
        raise UnsupportedError(f"serial target type '{dev.target_type}' is not supported")
    props: dict[str, JsonValue] = {"driver": driver, "chardev": f"char{alias}", "id": alias}
    if driver == "isa-serial":
        props["index"] = index
    elif driver == "pci-serial":
        props.update(b.pci(dev.address))
    return props


def _is_serial_alias_of_console(b: Build, dev: Chardev) -> bool:
    """A serial-type console on a port that a ``<serial>`` already provides is the same port."""
    if dev.kind != "console" or dev.target_type not in (None, "serial"):
        return False
    port = dev.target_port or 0
    return any((s.target_port or 0) == port for s in b.domain.devices.serials)


@lowers(Chardev)
def lower_chardev(dev: Chardev, b: Build) -> list[str]:
    """Lower one ``<serial>``, ``<console>``, ``<channel>`` or ``<parallel>``."""
    if dev.kind == "parallel":
        index = dev.target_port if dev.target_port is not None else b.counter("parallel-port")
        alias = b.alias(dev, "parallel", fixed=f"parallel{index}")
        lpt: dict[str, JsonValue] = {
            "driver": "isa-parallel",
            "chardev": f"char{alias}",
            "id": alias,
        }
        return ["-chardev", backend(b, dev, alias), "-device", json_opts(lpt)]
    if _is_serial_alias_of_console(b, dev):
        port = dev.target_port or 0
        serial = next(s for s in b.domain.devices.serials if (s.target_port or 0) == port)
        dev.alias = serial.alias or f"serial{port}"  # the same port, as libvirt names it
        return []
    if dev.kind == "serial" or (dev.kind == "console" and dev.target_type in (None, "serial")):
        index = dev.target_port if dev.target_port is not None else b.counter("serial-port")
        alias = b.alias(dev, "serial", fixed=f"serial{index}")
        return [
            "-chardev",
            backend(b, dev, alias),
            "-device",
            json_opts(_serial_device(b, dev, alias, index)),
        ]
    if dev.target_type != "virtio":
        raise UnsupportedError(f"{dev.kind} target type '{dev.target_type}' is not supported")
    alias = b.alias(dev, dev.kind)
    props: dict[str, JsonValue] = {
        "driver": "virtconsole" if dev.kind == "console" else "virtserialport",
        "bus": "virtio-serial0.0",
        "chardev": f"char{alias}",
        "id": alias,
    }
    if dev.kind == "channel":
        props["name"] = dev.target_name
    return ["-chardev", backend(b, dev, alias), "-device", json_opts(props)]
