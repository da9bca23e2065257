"""The generated command lines are accepted by the installed QEMU.

Each domain is started paused (``-S``) and daemonized: QEMU's parent only exits 0 once every
option, device and block node was set up, so a zero exit proves the argv is valid. The guest
is then stopped over QMP. No guest is booted; the whole file takes a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv, required_files
from pyvirt.model.domain import Domain

pytestmark = pytest.mark.qemu

CACHE_MODES = ("none", "writethrough", "writeback", "directsync", "unsafe")


def _disk(img: Path, fmt: str, dev: str, bus: str, cache: str, extra: str = "") -> str:
    return f"""
    <disk type='file' device='disk'>
      <driver name='qemu' type='{fmt}' cache='{cache}' {extra}/>
      <source file='{img}'/>
      <target dev='{dev}' bus='{bus}'/>
    </disk>"""


def _domain(name: str, machine: str, devices: str) -> str:
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type></os>
  <features><acpi/></features>
  <cpu><numa>
    <cell id='0' cpus='0' memory='64' unit='MiB'/>
    <cell id='1' cpus='1' memory='64' unit='MiB'/>
  </numa></cpu>
  <devices>{devices}
  </devices>
</domain>"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small qcow2 and raw image per disk slot."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        pytest.skip("qemu-img is not installed")
    root = tmp_path_factory.mktemp("img")
    out: dict[str, Path] = {}
    for i in range(10):
        for fmt in ("qcow2", "raw"):
            path = root / f"d{i}.{fmt}"
            subprocess.run([qemu_img, "create", "-q", "-f", fmt, str(path), "16M"], check=True)
            out[f"{fmt}{i}"] = path
    return out


def _pc_devices(img: dict[str, Path], tmp: Path) -> str:
    disks = [
        _disk(img["qcow2" + "0"], "qcow2", "hda", "ide", CACHE_MODES[0], "io='native'"),
        _disk(img["raw1"], "raw", "sda", "sata", CACHE_MODES[1], "discard='unmap'"),
        _disk(img["qcow2" + "2"], "qcow2", "sdb", "scsi", CACHE_MODES[2]),
        _disk(img["raw3"], "raw", "vda", "virtio", CACHE_MODES[3], "io='threads'"),
        _disk(img["qcow2" + "4"], "qcow2", "vdb", "virtio", CACHE_MODES[4]),
        _disk(img["raw5"], "raw", "sdc", "usb", "writeback"),
    ]
    return (
        "".join(disks)
        + f"""
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{img["raw6"]}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='file' device='floppy'>
      <driver name='qemu' type='raw'/>
      <source file='{img["raw7"]}'/>
      <target dev='fda' bus='fdc'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{img["raw8"]}'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
      <serial>PYVIRT0001</serial>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    <interface type='user'><model type='e1000'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <serial type='file'><source path='{tmp / "serial1.log"}'/><target port='1'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' passwd='pw,1' keymap='en-us'><listen type='socket'/></graphics>
    <video><model type='virtio'/></video>
    <input type='tablet' bus='usb'/>
    <memballoon model='virtio'><stats period='5'/></memballoon>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"""
    )


def _q35_devices(img: dict[str, Path], tmp: Path) -> str:
    return (
        _disk(img["qcow2" + "0"], "qcow2", "sda", "sata", "none")
        + _disk(img["raw1"], "raw", "sdb", "scsi", "writeback")
        + f"""
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'/>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <interface type='user'><model type='e1000e'/></interface>
    <channel type='unix'>
      <source mode='bind' path='{tmp / "agent.sock"}'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <console type='pty'><target type='virtio' port='0'/></console>
    <video><model type='vga'/></video>"""
    )


def _start_and_quit(qemu: str, domain: Domain, tmp: Path) -> None:
    ctx = ArgvContext(run_dir=tmp / "run", log_dir=tmp / "log", emulator=qemu, daemonize=True)
    ctx.run_dir.mkdir()
    ctx.log_dir.mkdir()
    for path, content in required_files(domain, ctx).items():
        path.write_text(content)
        path.chmod(0o600)
    argv = build_argv(domain, ctx)
    proc = subprocess.run([*argv, "-S"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"QEMU refused {argv}:\n{proc.stderr}"
    pidfile = ctx.run_dir / "qemu.pid"
    pid = int(pidfile.read_text().strip())
    try:
        qmp = QEMUMonitorProtocol(str(ctx.run_dir / "qmp.sock"))
        qmp.connect()
        status = qmp.cmd("query-status")
        assert isinstance(status, dict) and status["status"] == "prelaunch"
        qmp.cmd("quit")
        with contextlib.suppress(EOFError):  # QEMU may hang up before the close handshake
            qmp.close()
    finally:
        deadline = time.monotonic() + 5
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # QEMU removes its pid file on exit
        if pidfile.exists():
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_qemu_accepts_generated_argv(
    qemu_binary: str, images: dict[str, Path], tmp_path: Path, machine: str
) -> None:
    build = _pc_devices if machine == "pc" else _q35_devices
    domain = Domain.from_xml(_domain(f"argv-{machine}", machine, build(images, tmp_path)))
    _start_and_quit(qemu_binary, domain, tmp_path)
