"""pyvirtd's console relay at the API level, with a real guest: a ticket, then a WebSocket
to the guest's VNC display (QEMU handed a socket over QMP: no listener) or serial console.

One daemon and one guest (VNC display + serial shell) serve the whole module.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

websockets = pytest.importorskip("websockets.sync.client")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import ClientConnection, unix_connect  # noqa: E402

from tests.conftest import Pyvirt, kill_leftovers  # noqa: E402
from tests.consolehelp import serial_path  # noqa: E402
from tests.daemonhelp import RunningDaemon, pyvirtd  # noqa: E402
from tests.integration.test_install import wait_console  # noqa: E402
from tests.integration.test_screenshot import rfb, vnc_port  # noqa: E402

pytestmark = pytest.mark.qemu

NAME = "relay"
#: RFB encodings: raw, and QEMU's pseudo-encoding "extended key event" (-258)
RAW, QEMU_EXTENDED_KEY_EVENT = 0, -258


@dataclass
class Setup:
    pv: Pyvirt
    daemon: RunningDaemon


def install_console_guest(pv: Pyvirt, image: Any, name: str, *, vga: bool = False,
                          graphics: str = "vnc") -> None:  # fmt: skip
    """The tiny guest with a VNC display and its root shell on the serial console. ``vga``:
    boot the bzImage (the PVH entry of the plain kernel sets up no VGA text console) and let
    the kernel write to the VGA console too (``console=tty0``; ``/dev/tty0`` in the guest)."""
    kernel = image.bzimage if vga else image.kernel
    args = f"{'console=tty0 ' if vga else ''}console=ttyS0 quiet panic=-1"
    pv("install", "--name", name, "--memory", "160", "--import", "--virt-type", "qemu",
       "--boot", f'kernel={kernel},initrd={image.initrd},kernel_args="{args}"',
       "--disk", "none", "--network", "none", "--graphics", graphics,
       "--noautoconsole", "--os-variant", "linux2022")  # fmt: skip


@pytest.fixture(scope="module")
def setup(tiny_image: Any) -> Iterator[Setup]:
    root = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    pv = Pyvirt(root)
    try:
        with pyvirtd(root) as daemon:
            # a VNC password: the relay's client is let in without it (skipauth)
            install_console_guest(pv, tiny_image, NAME, graphics="vnc,password=s3cret")
            wait_console(pv, NAME, "PYVIRT-TINY-READY", 120)
            yield Setup(pv, daemon)
            pv("destroy", NAME, check=False)
    finally:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def ticket(d: RunningDaemon, kind: str, name: str = NAME) -> dict[str, Any]:
    res = d.request("POST", f"/api/v1/domains/{name}/console-tickets", {"kind": kind})
    assert res.status == 201, res.body
    body: dict[str, Any] = res.json()
    return body


def connect(d: RunningDaemon, url: str) -> ClientConnection:
    return unix_connect(str(d.sock), uri=f"ws://localhost{url}", subprotocols=["binary"],
                        open_timeout=20, max_size=None)  # type: ignore[list-item]  # fmt: skip


class Reader:
    """Bytes from the WebSocket's binary frames, read exactly."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.buf = ws, b""

    def read(self, n: int, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            frame = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            assert isinstance(frame, bytes)
            self.buf += frame
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until(self, text: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.buf:
            frame = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            assert isinstance(frame, bytes)
            self.buf += frame
        return self.buf


def test_vnc_through_relay(setup: Setup) -> None:
    t = ticket(setup.daemon, "vnc")
    assert t["url"] == f"/api/v1/domains/{NAME}/console/vnc?ticket={t['ticket']}"
    assert t["expires"].endswith("Z")
    with connect(setup.daemon, t["url"]) as ws:
        assert ws.subprotocol == "binary"
        r = Reader(ws)
        assert r.read(12) == b"RFB 003.008\n"  # QEMU's banner, straight from QEMU
        ws.send(b"RFB 003.008\n")
        count = r.read(1)[0]
        assert list(r.read(count)) == [1]  # handed over with skipauth: security type None
        ws.send(b"\x01")
        assert struct.unpack(">I", r.read(4))[0] == 0
        ws.send(b"\x01")  # ClientInit, shared
        width, height = struct.unpack(">HH", r.read(4))
        bpp = r.read(16)[0]
        r.read(struct.unpack(">I", r.read(4))[0])  # the desktop name
        assert (width, height) >= (640, 400) and bpp == 32
        # SetEncodings: raw + QEMU extended key events; QEMU acknowledges the pseudo-encoding
        # with a pseudo-rectangle (what noVNC waits for before it sends scancodes)
        ws.send(struct.pack(">BxHii", 2, 2, RAW, QEMU_EXTENDED_KEY_EVENT))
        ws.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # full update request
        encodings, pixels = [], 0
        while pixels < width * height:
            kind = r.read(1)[0]
            assert kind == 0, f"unexpected server message {kind}"
            (rects,) = struct.unpack(">xH", r.read(3))
            for _ in range(rects):
                _x, _y, w, h, enc = struct.unpack(">HHHHi", r.read(12))
                encodings.append(enc)
                if enc == RAW:
                    r.read(w * h * bpp // 8)
                    pixels += w * h
        assert QEMU_EXTENDED_KEY_EVENT in encodings and RAW in encodings
    # while QEMU's own listener asks for the password (VNC authentication)
    assert rfb(vnc_port(setup.pv, NAME))[0] == [2]
    # the ticket was used up
    with connect(setup.daemon, t["url"]) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert info.value.rcvd.reason == "console ticket unknown or already used"


def test_serial_through_relay(setup: Setup) -> None:
    t = ticket(setup.daemon, "serial")
    with connect(setup.daemon, t["url"]) as ws:
        r = Reader(ws)
        ws.send(b"\n")
        r.until(b"# ")
        ws.send(b"echo hello-relay-$((6*7))\n")
        assert b"\nhello-relay-42" in r.until(b"\nhello-relay-42")  # the output, not the echo
        # the console is the domain's pty, one session at a time (as virsh)
        assert str(serial_path(setup.pv.root, NAME)).startswith("/dev/pts/")
        with connect(setup.daemon, ticket(setup.daemon, "serial")["url"]) as ws2:
            with pytest.raises(ConnectionClosed) as info:
                ws2.recv(timeout=10)
            assert info.value.rcvd is not None
            assert "active console session exists" in info.value.rcvd.reason
        # latency: one key through the relay to the guest's tty and its echo back
        ws.send(b"\x15")  # ^U: an empty line to type on
        time.sleep(0.3)
        r.buf = b""
        rtts = []
        for ch in b"abcdefghij":
            start = time.perf_counter()
            ws.send(bytes([ch]))
            r.until(bytes([ch]), timeout=5)
            rtts.append(time.perf_counter() - start)
            r.buf = b""
        ws.send(b"\x15")
        rtts.sort()
        print(f"serial key echo through the relay: median {rtts[5] * 1000:.1f} ms, "
              f"max {rtts[-1] * 1000:.1f} ms")  # fmt: skip
        assert rtts[5] < 0.1


def test_tickets_refused(setup: Setup) -> None:
    d = setup.daemon
    # bound to the domain and the kind: a vnc ticket does not open the serial console
    t = ticket(d, "vnc")
    url = t["url"].replace("/console/vnc", "/console/serial")
    with connect(d, url) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert info.value.rcvd.reason == "console ticket was issued for another console"
    # ... and it is gone, although it was refused
    with connect(d, t["url"]) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.reason == "console ticket unknown or already used"
    t = ticket(d, "serial")
    url = t["url"].replace(f"/domains/{NAME}/", "/domains/other/")
    with connect(d, url) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.reason == "console ticket was issued for another console"
    no_ticket = f"/api/v1/domains/{NAME}/console/serial"
    with connect(d, no_ticket) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    # tickets only for what exists
    res = d.request("POST", "/api/v1/domains/nosuch/console-tickets", {"kind": "vnc"})
    assert res.status == 404 and res.json()["error"] == "domain 'nosuch' not found"
    res = d.request("POST", f"/api/v1/domains/{NAME}/console-tickets", {"kind": "spice"})
    assert res.status == 422


def test_daemon_stops_with_a_console_open(setup: Setup) -> None:
    """Last: SIGTERM while a console is open closes it (1012, "going away" for a restart)
    and the daemon still stops at once; the guest runs on."""
    t = ticket(setup.daemon, "serial")
    with connect(setup.daemon, t["url"]) as ws:
        ws.send(b"\n")
        Reader(ws).until(b"# ")
        start = time.monotonic()
        assert setup.daemon.stop(timeout=10), "pyvirtd needed SIGKILL"
        assert time.monotonic() - start < 8
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=10)
    assert info.value.rcvd is None or info.value.rcvd.code in (1001, 1012)
    assert setup.pv("domstate", NAME).out.strip() == "running"
