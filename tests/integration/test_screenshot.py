"""Consoles: ``screenshot`` gives a PNG the size of the VNC framebuffer (read over RFB on
loopback), and ``update-device`` changes the keymap in the config and the VNC password live
(a new VNC client is then asked for VNC authentication instead of none)."""

from __future__ import annotations

import json
import re
import socket
import struct
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_clone import install_tiny
from tests.integration.test_install import wait_console

pytestmark = pytest.mark.qemu


def rfb(port: int) -> tuple[list[int], tuple[int, int] | None]:
    """The security types a VNC server offers and, for 'None' (1), the framebuffer size."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        version = s.recv(12)
        assert version.startswith(b"RFB 003.")
        s.sendall(b"RFB 003.008\n")
        count = s.recv(1)[0]
        types = list(s.recv(count))
        if 1 not in types:
            return types, None
        s.sendall(b"\x01")
        assert struct.unpack(">I", s.recv(4))[0] == 0  # SecurityResult OK
        s.sendall(b"\x01")  # ClientInit, shared
        width, height = struct.unpack(">HH", s.recv(4))
        return types, (width, height)


def vnc_port(pv: Pyvirt, name: str) -> int:
    display = pv("vncdisplay", name).out.strip()
    return 5900 + int(display.rsplit(":", 1)[1])


def test_screenshot_matches_framebuffer(pyvirt: Pyvirt, tiny_image: Any) -> None:
    install_tiny(pyvirt, tiny_image, "scr", graphics="vnc")
    wait_console(pyvirt, "scr", "PYVIRT-TINY-READY", 120)
    types, size = rfb(vnc_port(pyvirt, "scr"))
    assert types == [1] and size is not None
    out = pyvirt.root / "shot.png"
    res = pyvirt("screenshot", "scr", str(out))
    assert f"Screenshot saved to {out}" in res.out
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == size
    assert f"({size[0]}x{size[1]})" in res.out
    no = pyvirt("screenshot", "nosuch", check=False)
    assert no.rc == 1 and "domain 'nosuch' not found" in no.err


def test_update_device_keymap_and_password(pyvirt: Pyvirt, tiny_image: Any) -> None:
    install_tiny(pyvirt, tiny_image, "kb", graphics="vnc")
    wait_console(pyvirt, "kb", "PYVIRT-TINY-READY", 120)
    port = vnc_port(pyvirt, "kb")
    assert rfb(port)[0] == [1]
    dev = pyvirt.root / "g.xml"
    # the seed's keymap fix: en-us in the persistent definition
    dev.write_text("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' "
                   "keymap='en-us'/>")  # fmt: skip
    live = pyvirt("update-device", "kb", str(dev), "--live", check=False)
    assert live.rc == 1 and "keymap of running domain 'kb' cannot change live" in live.err
    pyvirt("update-device", "kb", str(dev), "--config")
    assert "keymap='en-us'" in pyvirt("dumpxml", "kb", "--inactive").out
    assert "keymap" not in pyvirt("dumpxml", "kb").out
    # a password: QEMU cannot add one live; in the config it takes effect at the next start
    dev.write_text("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' "
                   "keymap='en-us' passwd='s3cret'/>")  # fmt: skip
    pyvirt("update-device", "kb", str(dev), "--config")
    dev.write_text(dev.read_text().replace(" keymap='en-us'", ""))
    add = pyvirt("update-device", "kb", str(dev), "--live", check=False)
    assert add.rc == 1 and "cannot be added live" in add.err
    pyvirt("destroy", "kb")
    pyvirt("start", "kb")
    port = vnc_port(pyvirt, "kb")
    assert rfb(port)[0] == [2]  # new clients must authenticate (VNC auth)
    argv = json.loads((pyvirt.root / "run" / "qemu" / "kb" / "runtime.json").read_text())["argv"]
    assert argv[argv.index("-k") + 1] == "en-us"  # the keymap fix reached QEMU
    # changing an existing password works live (QMP set_password)
    dev.write_text(dev.read_text().replace("s3cret", "n3w").replace("/>", " keymap='en-us'/>"))
    pyvirt("update-device", "kb", str(dev), "--live")
    assert re.search(r"passwd='n3w'", pyvirt("dumpxml", "kb", "--security-info").out)
    assert "passwd=" not in pyvirt("dumpxml", "kb").out  # secrets only with --security-info
    assert rfb(port)[0] == [2]
    bad = pyvirt.root / "n.xml"
    bad.write_text("<panic model='isa'/>")
    res = pyvirt("update-device", "kb", str(bad), check=False)
    assert res.rc == 1 and "cannot update <panic> devices" in res.err
