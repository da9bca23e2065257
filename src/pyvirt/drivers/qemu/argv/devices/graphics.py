"""Lowering of ``<graphics>``: VNC (TCP or UNIX socket, password through a secret object),
egl-headless and D-Bus displays."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Graphics

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build
    from pyvirt.drivers.qemu.argv.context import ArgvContext
    from pyvirt.model.domain import Domain

VNC_BASE_PORT = 5900
DEFAULT_LISTEN = "127.0.0.1"


def secret_path(ctx: ArgvContext, index: int) -> Path:
    """File holding the password of the *index*-th VNC display (written by the driver)."""
    return ctx.run_dir / f"vnc{index}.secret"


def secret_files(domain: Domain, ctx: ArgvContext) -> dict[Path, str]:
    """Password files the VNC displays of *domain* refer to."""
    files: dict[Path, str] = {}
    vncs = [g for g in domain.devices.graphics if g.type == "vnc"]
    for index, g in enumerate(vncs):
        if g.passwd:
            files[secret_path(ctx, index)] = g.passwd
    return files


def _socket(g: Graphics) -> str | None:
    """The UNIX socket path, ``""`` for a socket listen without a path, ``None`` for TCP."""
    if g.socket:
        return g.socket
    for listen in g.listens:
        if listen.type == "socket":
            return listen.socket or ""
    return None


def _display(b: Build, g: Graphics) -> tuple[str, int | None]:
    sock = _socket(g)
    if sock is not None:
        return f"unix:{sock or b.ctx.run_dir / 'vnc.sock'}", None
    host = g.listen or DEFAULT_LISTEN
    if ":" in host:
        host = f"[{host}]"
    if not g.autoport and g.port is not None and g.port >= VNC_BASE_PORT:
        return f"{host}:{g.port - VNC_BASE_PORT}", None
    if b.ctx.vnc_display is not None:
        return f"{host}:{b.ctx.vnc_display}", None
    return f"{host}:0", 99  # let QEMU take the first free display


@lowers(Graphics)
def lower_graphics(g: Graphics, b: Build) -> list[str]:
    """Lower one ``<graphics>``: VNC, egl-headless and D-Bus (peer to peer or on a given bus)."""
    if g.type == "egl-headless":
        return _egl_headless(g, b)
    if g.type == "dbus":
        return _dbus(g, b)
    if g.type == "sdl":
        raise UnsupportedError(
            "graphics type 'sdl' is not supported: QEMU runs detached from any desktop session",
            hint="use vnc (or egl-headless with vnc for OpenGL)",
        )
    if g.type != "vnc":
        raise UnsupportedError(f"graphics type '{g.type}' is not supported", hint="use vnc")
    index = b.counter("vnc")
    if index > 0:
        raise UnsupportedError("QEMU supports a single VNC display per guest")
    display, to = _display(b, g)
    args: list[str] = []
    secret = None
    if g.passwd:
        secret = f"vnc{index}-secret"
        obj = {
            "qom-type": "secret",
            "id": secret,
            "format": "raw",
            "file": str(secret_path(b.ctx, index)),
        }
        args += ["-object", json_opts(obj)]
    from pyvirt.drivers.qemu.argv.devices.sound import audio_id

    wanted = g.element.find("audio")
    audiodev = audio_id(b.domain, int(wanted.get("id") or 0) if wanted is not None else None,
                        g.xpath("audio"))  # fmt: skip
    args += ["-vnc", qemu_opts(display, to=to, **{"password-secret": secret, "audiodev": audiodev})]
    if g.keymap:
        args += ["-k", g.keymap]
    return args


def _gl(g: Graphics) -> tuple[bool, str | None]:
    """``<gl enable rendernode>``: (OpenGL on, render node)."""
    gl = g.element.find("gl")
    if gl is None:
        return False, None
    return gl.get("enable") == "yes", gl.get("rendernode")


def _egl_headless(g: Graphics, b: Build) -> list[str]:
    """OpenGL rendering without a local display (what a VNC client then sees)."""
    if b.counter("egl-headless") > 0:
        raise UnsupportedError(f"{g.xpath()}: QEMU supports a single egl-headless display")
    _, rendernode = _gl(g)
    return ["-display", qemu_opts("egl-headless", rendernode=rendernode)]


def _dbus(g: Graphics, b: Build) -> list[str]:
    """QEMU's D-Bus display: peer to peer (clients come through QMP) or on a given bus."""
    p2p = g.element.get("p2p") == "yes"
    address = g.element.get("address")
    if not p2p and not address:
        raise UnsupportedError(
            f"{g.xpath()}: graphics type 'dbus' on a bus of its own needs a private D-Bus "
            "daemon, which pyvirt does not run",
            hint="set p2p='yes' (clients connect through QMP) or address='unix:path=...'",
        )
    if b.counter("dbus") > 0:
        raise UnsupportedError(f"{g.xpath()}: QEMU supports a single D-Bus display")
    gl, rendernode = _gl(g)
    opts = qemu_opts(
        "dbus", addr=address, p2p=True if p2p else None, gl=True if gl else None,
        rendernode=rendernode,
    )  # fmt: skip
    return ["-display", opts]
