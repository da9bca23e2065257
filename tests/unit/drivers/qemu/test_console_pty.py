"""Console sessions on a pseudo-terminal: exclusive, raw, taken over with force, bridged to a
socket; and the live XML showing a started domain's ptys."""

from __future__ import annotations

import os
import pty
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import console
from pyvirt.errors import OperationFailedError
from pyvirt.service.domain.ptys import show_ptys


@pytest.fixture
def pair() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    yield master, name
    os.close(master)


def test_one_session_at_a_time(pair: tuple[int, str], tmp_path: Path) -> None:
    _, path = pair
    assert console.is_pty(path)
    with (
        console.PtySession(path, mark_dir=tmp_path, name="d1"),
        pytest.raises(OperationFailedError, match="active console session exists for domain 'd1'"),
    ):
        console.PtySession(path, mark_dir=tmp_path, name="d1")
    console.PtySession(path, mark_dir=tmp_path, name="d1").close()  # free again


def test_force_takes_over(pair: tuple[int, str], tmp_path: Path) -> None:
    _, path = pair
    first = console.PtySession(path, mark_dir=tmp_path)
    ended = threading.Event()

    def holder() -> None:  # what attach's loop does
        while not first.taken_over():
            time.sleep(0.02)
        first.close()
        ended.set()

    threading.Thread(target=holder, daemon=True).start()
    with console.PtySession(path, mark_dir=tmp_path, force=True):
        assert ended.is_set()
    assert not list(tmp_path.iterdir())  # the mark is gone


def test_stream_bridges_both_ways(pair: tuple[int, str]) -> None:
    master, path = pair
    with console.open_stream(path) as sock:
        sock.settimeout(5)
        sock.sendall(b"to-guest")
        got = b""
        while len(got) < 8:
            got += os.read(master, 64)
        assert got == b"to-guest"  # raw: no echo, no CR/LF translation
        os.write(master, b"from-guest\n")
        got = b""
        while not got.endswith(b"\n"):
            got += sock.recv(64)
        assert got == b"from-guest\n"


def test_live_xml_shows_ptys() -> None:
    xml = (
        "<domain><devices><serial type='pty'><target port='0'/><alias name='serial0'/></serial>"
        "<console type='pty'><target type='serial' port='0'/><alias name='serial0'/></console>"
        "<serial type='unix'><source mode='bind' path='/tmp/s'/><alias name='serial1'/></serial>"
        "</devices></domain>"
    )
    out = show_ptys(xml, {"serial0": "/dev/pts/7"})
    assert '<serial type="pty"><source path="/dev/pts/7"/>' in out
    assert '<console type="pty" tty="/dev/pts/7"><source path="/dev/pts/7"/>' in out
    assert '<source mode="bind" path="/tmp/s"/>' in out
    assert show_ptys(xml, {}) == xml
