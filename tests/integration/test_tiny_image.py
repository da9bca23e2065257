"""The tiny test guest boots under TCG and speaks its serial protocol (pyvirt.images.tiny)."""

from __future__ import annotations

import gzip
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from pyvirt.images.cpio import write_initramfs
from pyvirt.images.modules import module_name, strip_signature
from pyvirt.images.tiny import DISKS, MARKER, RUN_BEGIN, RUN_END, TinyImage, run_argument
from tests.integration.conftest import FAST_BOOT

DISK_BYTES = 48 * 1024 * 1024


class Serial:
    """Collects what the guest writes on its serial port; QEMU connects to our socket."""

    def __init__(self, path: Path) -> None:
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._conn: socket.socket | None = None
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def start(self) -> None:
        self._listener.settimeout(30)
        self._conn, _ = self._listener.accept()
        self._thread.start()

    def _pump(self) -> None:
        assert self._conn is not None
        while chunk := self._conn.recv(4096):
            with self._lock:
                self._data += chunk

    @property
    def text(self) -> str:
        with self._lock:
            return self._data.decode(errors="replace").replace("\r\n", "\n")

    def send(self, line: str) -> None:
        assert self._conn is not None
        self._conn.sendall(line.encode() + b"\n")

    def wait_for(self, needle: str, timeout: float) -> float:
        """Wait until *needle* was printed; return the time it took."""
        start = time.monotonic()
        while needle not in self.text:
            if time.monotonic() - start > timeout:
                raise AssertionError(f"guest never printed {needle!r}; serial:\n{self.text}")
            time.sleep(0.05)
        return time.monotonic() - start

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._listener.close()


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    with path.open("wb") as handle:
        handle.truncate(DISK_BYTES)
    return path


def boot(
    qemu_binary: str, image: TinyImage, tmp_path: Path, disk: Path, command: str
) -> Iterator[tuple[subprocess.Popen[bytes], Serial, QEMUMonitorProtocol]]:
    serial = Serial(tmp_path / "serial.sock")
    qmp_path = tmp_path / "qmp.sock"
    argv = [
        qemu_binary,
        "-accel", "tcg",
        "-m", "256",
        "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", f"console=ttyS0 quiet {FAST_BOOT} {run_argument(command)}",
        "-chardev", f"socket,id=ser0,path={tmp_path / 'serial.sock'}",
        "-serial", "chardev:ser0",
        "-qmp", f"unix:{qmp_path}",
        "-blockdev", f"driver=file,filename={disk},node-name=disk0",
        "-device", "virtio-blk-pci,drive=disk0",
    ]  # fmt: skip
    # QEMU connects to both sockets as a client, so nothing it prints is lost.
    qmp = QEMUMonitorProtocol(str(qmp_path), server=True)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        serial.start()
        qmp.accept(timeout=30)
        yield proc, serial, qmp
    finally:
        qmp.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        serial.close()


@pytest.mark.qemu
@pytest.mark.timeout(90)
def test_tiny_guest_protocol(
    qemu_binary: str, tiny_image: TinyImage, tmp_path: Path, disk: Path
) -> None:
    command = "echo hello from $(uname -s); cat /sys/block/vda/size; exit 3"
    for proc, serial, qmp in boot(qemu_binary, tiny_image, tmp_path, disk, command):
        boot_seconds = serial.wait_for(MARKER, 30)
        serial.wait_for(f"{RUN_END} rc=3", 10)
        out = serial.text
        print(f"tiny guest reached {MARKER} in {boot_seconds:.1f}s")

        assert f"\n{MARKER}\n" in out
        assert f"{DISKS} vda {DISK_BYTES}\n" in out
        run_output = out.split(f"{RUN_BEGIN}\n", 1)[1].split(RUN_END, 1)[0]
        assert run_output == f"hello from Linux\n{DISK_BYTES // 512}\n"

        # The console offers an interactive root shell.
        time.sleep(0.5)
        serial.send("echo console-$((6 * 7))")
        serial.wait_for("console-42", 10)

        status = qmp.cmd("query-status")
        assert isinstance(status, dict) and status["status"] == "running"
        qmp.cmd("system_powerdown")
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""


def test_initramfs_is_a_newc_archive_cpio_can_read(tmp_path: Path) -> None:
    cpio = shutil.which("cpio")
    if cpio is None:
        pytest.skip("cpio is not installed (Debian package cpio)")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + bytes(range(256)) * 3)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "init").write_text("#!/bin/sh\n")
    (root / "init").chmod(0o755)
    archive = tmp_path / "initrd.img"
    write_initramfs(root, archive)
    listing = subprocess.run(
        [cpio, "-itv", "--quiet"],
        input=gzip.decompress(archive.read_bytes()),
        capture_output=True,
        check=True,
    ).stdout.decode()
    lines = {line.split()[-1] if "->" not in line else line.split()[-3]: line
             for line in listing.splitlines()}  # fmt: skip
    assert set(lines) == {"dev", "dev/console", "bin", "bin/busybox", "bin/sh", "init"}
    assert lines["dev/console"].startswith("crw-------")
    assert lines["init"].startswith("-rwxr-xr-x   1 root     root")
    assert lines["bin/sh"].endswith("bin/sh -> busybox")


def test_strip_signature_and_module_names() -> None:
    body = b"\x7fELF module body"
    signature = b"S" * 20
    info = bytes([0, 0, 2, 0, 0, 0, 0, 0]) + len(signature).to_bytes(4, "big")
    signed = body + signature + info + b"~Module signature appended~\n"
    assert strip_signature(signed) == body
    assert strip_signature(body) == body
    assert module_name("kernel/drivers/char/hw_random/virtio-rng.ko.xz") == "virtio_rng"
    assert module_name("kernel/drivers/net/ethernet/realtek/8139cp.ko") == "8139cp"


def test_run_argument_is_base64_without_spaces() -> None:
    arg = run_argument("echo a b; exit 3")
    assert arg == "pyvirt.run=ZWNobyBhIGI7IGV4aXQgMw=="
