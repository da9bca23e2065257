"""Displays and device updates: ``screenshot``, ``update-device``, the VNC exposure warning.

``screenshot`` asks QEMU for a ``screendump`` (PPM, which every QEMU writes) into the domain's
run directory and converts it to PNG here (zlib, no image library). ``update-device`` replaces
a ``<graphics>`` or a CD-ROM/floppy ``<disk>`` in the persistent definition (``config``) and,
for a running domain (``live``), applies what QEMU can change live through the monitor: the
VNC password and CD-ROM media (change or eject).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError, UnsupportedError
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from lxml import etree

    from pyvirt.drivers.qemu.monitor import BlockDevice
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: ``define`` imports this
# module; QMP, lxml and the DAC code (with logging) load only for display verbs (graphics
# updates, screenshots).

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def vnc_warnings(dom: Domain) -> list[str]:
    """A warning for each VNC display other users can reach without a password.

    Beyond loopback: anyone who reaches the address. On loopback: every local user of the
    host. On a UNIX socket of the user's choosing: every local user who may open it (the
    default socket, in the domain's run directory, is reachable only by root).
    """
    out = []
    hint = (
        "add password=SECRET to --graphics (passwd='SECRET' in <graphics>), or listen on a "
        "unix socket in the run directory (listen=socket) and tunnel over SSH"
    )
    for g in dom.devices.graphics:
        if g.type != "vnc" or g.passwd:
            continue
        sockets = [li.socket for li in g.listens if li.type == "socket"]
        if g.socket or sockets:
            path = g.socket or sockets[0]
            if path:
                out.append(
                    f"the VNC console of domain '{dom.name}' listens on the unix socket "
                    f"'{path}' without a password: any local user who can open that socket "
                    f"can see and control the guest; {hint}"
                )
            continue
        listen = g.listen or "127.0.0.1"
        if listen in LOOPBACK:
            out.append(
                f"the VNC console of domain '{dom.name}' listens on {listen} without a "
                "password: any local user of this host can see and control the guest; "
                f"{hint}"
            )
            continue
        who = (
            "anyone who can reach any address of this host"
            if listen in ("0.0.0.0", "::")
            else f"anyone who can reach {listen}"
        )
        out.append(
            f"the VNC console of domain '{dom.name}' listens on {listen} without a password: "
            f"{who} on TCP port 5900+N can see and control the guest; add password=SECRET to "
            "--graphics (passwd='SECRET' in <graphics>), or listen on 127.0.0.1 and tunnel "
            "over SSH"
        )
    return out


# -- screenshot --------------------------------------------------------------------------------
def ppm_to_png(ppm: bytes) -> tuple[bytes, int, int]:
    """Convert a binary PPM (P6, maxval 255) to PNG; returns the PNG and its width and height."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while ppm[pos : pos + 1].isspace():
            pos += 1
        if ppm[pos : pos + 1] == b"#":
            pos = ppm.index(b"\n", pos) + 1
            continue
        end = pos
        while not ppm[end : end + 1].isspace():
            end += 1
        fields.append(ppm[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    if fields[0] != b"P6" or fields[3] != b"255":
        raise InvalidConfigError("screendump is not a P6 PPM with maxval 255")
    width, height = int(fields[1]), int(fields[2])
    pixels = ppm[pos : pos + width * height * 3]
    stride = width * 3
    raw = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6))
    return png + chunk(b"IEND", b""), width, height


def screenshot(mgr: DomainManager, ident: str, output: Path, *, screen: int = 0) -> tuple[int, int]:
    """Write the guest's screen to ``output`` as PNG; returns (width, height)."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import dac  # lazy

    name, rec = mgr.running(ident)
    dom = mgr.definition(name)
    if not dom.devices.videos and not dom.devices.graphics:
        raise InvalidStateError(
            f"domain '{name}' has no display to take a screenshot of",
            hint="add --graphics vnc (a <graphics type='vnc'/> and a <video>)",
        )
    tmp = dac.scratch_dir(mgr, name) / "screendump.ppm"  # QEMU writes it as the QEMU user
    try:
        with Monitor(rec.qmp_socket) as mon:
            mon.screendump(str(tmp), head=screen or None)
        png, width, height = ppm_to_png(tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write(output, png, 0o644, sync=False)
    return width, height


# -- update-device -----------------------------------------------------------------------------
def _match(dom: Domain, new: etree._Element) -> etree._Element:
    """The device element of ``dom`` that ``new`` updates."""
    tag = new.tag
    if tag == "graphics":
        for g in dom.devices.graphics:
            if g.type == new.get("type"):
                return g.element
        raise NotFoundError(
            f"domain '{dom.name}' has no <graphics type='{new.get('type')}'> to update"
        )
    if tag == "disk":
        target = new.find("target")
        dev = target.get("dev") if target is not None else None
        for d in dom.devices.disks:
            if d.target_dev == dev:
                if d.device not in ("cdrom", "floppy"):
                    raise UnsupportedError(
                        f"disk '{dev}' of domain '{dom.name}' is not a CD-ROM or floppy; only "
                        "their media can be changed with update-device",
                        hint="use detach-disk and attach-disk",
                    )
                return d.element
        raise NotFoundError(f"domain '{dom.name}' has no disk with target '{dev}'")
    raise UnsupportedError(
        f"update-device cannot update <{tag}> devices",
        hint="graphics (keymap, password, listen) and CD-ROM/floppy media are supported",
    )


def _replace(dom: Domain, new: etree._Element) -> None:
    from pyvirt.model.xmltree import copy_element  # lazy

    old = _match(dom, new)
    parent = old.getparent()
    assert parent is not None
    fresh = copy_element(new)
    fresh.tail = old.tail
    parent.replace(old, fresh)


def _live(mgr: DomainManager, name: str, dom: Domain, new: etree._Element) -> None:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import dac  # lazy

    _, rec = mgr.running(name)
    old = _match(dom, new)
    if new.tag == "graphics":
        if new.get("port") in (None, "-1") and old.get("autoport") == "yes":
            for attr in ("port", "autoport"):  # automatic port: keep the one allocated
                if old.get(attr) is not None:
                    new.set(attr, old.get(attr, ""))
        for attr in ("keymap", "listen", "port", "autoport"):
            if new.get(attr) != old.get(attr):
                raise InvalidStateError(
                    f"the VNC {attr} of running domain '{name}' cannot change live",
                    hint="use --config and restart the domain",
                )
        password = new.get("passwd")
        if password != old.get("passwd"):
            if not password or not old.get("passwd"):
                verb = "removed" if not password else "added"
                raise InvalidStateError(
                    f"the VNC password of running domain '{name}' cannot be {verb} live "
                    "(QEMU fixes VNC authentication at start); only changed",
                    hint="use --config and restart the domain",
                )
            with Monitor(rec.qmp_socket) as mon:
                mon.set_password("vnc", password)
    else:
        source = new.find("source")
        path = source.get("file") if source is not None else None
        with Monitor(rec.qmp_socket) as mon:
            qdev = _qdev_of(mon.query_block(), old)
            tag = f"media:{qdev}"
            if path:
                dac.drop_files(mgr, mon, tag)  # the previous medium's (closed once replaced)
                filename = dac.pass_file(mgr, mon, path, tag, readonly=True)  # unprivileged QEMU
                mon.blockdev_change_medium(qdev, filename, format="raw")
            else:
                mon.eject(qdev, force=True)
                dac.drop_files(mgr, mon, tag)
    _replace(dom, new)
    mgr.save_live(name, dom)


def _qdev_of(blocks: list[BlockDevice], old: etree._Element) -> str:
    """The QEMU device id of the removable drive ``old`` (the n-th removable one)."""
    removable = [b for b in blocks if b.removable]
    parent = old.getparent()
    assert parent is not None
    drives = [d for d in parent.findall("disk") if d.get("device") in ("cdrom", "floppy")]
    index = drives.index(old)
    if index >= len(removable):
        raise InvalidStateError("cannot find the drive among QEMU's removable block devices")
    return removable[index].qdev


def update_device(
    mgr: DomainManager,
    ident: str,
    xml: str | bytes,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
) -> None:
    """Update one device of a domain (virsh ``update-device``); the flags follow
    :mod:`pyvirt.service.domain.affect`.

    :param live: change the running domain (refused when it is not running)
    :param config: change the persistent definition
    :param persistent: the definition, and the running domain when it runs
    """
    from pyvirt.model.xmlmap import parse_xml  # lazy

    name = mgr.resolve(ident)
    new = parse_xml(xml, what="device XML")
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current, persistent=persistent)
        if scope.live:
            _live(mgr, name, mgr.live_definition(name), new)
    if scope.config:
        dom, revision = mgr.read_config(name)
        _replace(dom, new)
        _, warnings = mgr.define(dom.to_xml(), expect_revision=revision)
        del warnings
