"""Storage servers for storage tests, each in a network namespace of its own and always stopped.

* :func:`netns`: a fresh namespace with only loopback up; every server below listens on its
  127.0.0.1, so no packet leaves the namespace and parallel runs never share a port;
* :func:`tgtd`: a user-space iSCSI target (tgt) with an isolated control port (``-C N``);
  LUNs are sparse files. Stopping deletes the targets with ``--force`` first (tgtd ignores
  SIGTERM while it has targets), then the system;
* :func:`nfs_server`: rpcbind + nfs-ganesha (VFS FSAL, NFSv3, ``No_Root_Squash``,
  ``Graceless``) exporting a temporary directory;
* :class:`NsPyvirt`: the CLI runner of ``tests.conftest`` whose commands run inside the
  namespace (QEMU started by ``pyvirt start`` inherits it);
* loop devices over sparse files, detached afterwards.
"""

from __future__ import annotations

import base64
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, Result
from tests.integration.conftest import TINY_CMDLINE


def need(*tools: str) -> None:
    """Skip the test when a tool is not installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def in_ns(ns: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed to run inside namespace ``ns`` (unchanged for None)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


@contextmanager
def netns() -> Iterator[str]:
    """A new network namespace with loopback up; deleted afterwards."""
    need("ip")
    name = f"pvs2-{os.getpid()}-{random.randrange(1 << 24):06x}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _wait(check: Sequence[str], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(check, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Target:
    """A running tgtd: its namespace, control port and target IQN."""

    ns: str | None
    control: int
    iqn: str
    workdir: Path
    luns: dict[int, Path] = field(default_factory=dict)

    def adm(self, *args: str) -> None:
        """Run ``tgtadm`` against this tgtd."""
        argv = in_ns(self.ns, ["tgtadm", "-C", str(self.control), "--lld", "iscsi", *args])
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    def add_lun(self, lun: int, size: int) -> Path:
        """A new LUN backed by a sparse file of ``size`` bytes (made behind pyvirt's back)."""
        path = self.workdir / f"lun{lun}.img"
        with open(path, "wb") as f:
            f.truncate(size)
        self.adm(
            "--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", str(lun),
            "--backing-store", str(path),
        )  # fmt: skip
        self.luns[lun] = path
        return path


@contextmanager
def tgtd(ns: str | None, port: int = 3260) -> Iterator[Target]:
    """tgtd in ``ns`` on 127.0.0.1:``port`` with one target and no LUNs yet (``ns`` None:
    this machine's own loopback, so give a free ``port``)."""
    need("tgtd", "tgtadm")
    control = random.randrange(2000, 30000)
    workdir = Path(tempfile.mkdtemp(prefix="pvs2-tgt-", dir="/tmp"))
    iqn = f"iqn.2024-01.org.pyvirt.test:t{control}"
    argv = ["tgtd", "-f", "-C", str(control), "--iscsi", f"portal=127.0.0.1:{port}"]
    proc = subprocess.Popen(in_ns(ns, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tgt = Target(ns, control, iqn, workdir)
    try:
        _wait(in_ns(ns, ["tgtadm", "-C", str(control), "--mode", "system", "--op", "show"]), "tgtd")
        tgt.adm("--mode", "target", "--op", "new", "--tid", "1", "--targetname", iqn)
        tgt.adm("--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL")
        yield tgt
    finally:
        with suppress(subprocess.SubprocessError):
            tgt.adm("--mode", "target", "--op", "delete", "--force", "--tid", "1")
        with suppress(subprocess.SubprocessError):
            tgt.adm("--mode", "system", "--op", "delete")
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            _stop(proc)
        for stale in Path("/run/tgtd").glob(f"socket.{control}*"):
            stale.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


GANESHA_CONF = """NFS_CORE_PARAM {{
    Protocols = 3;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}}
NFSV4 {{ Graceless = true; }}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = {export};
    Protocols = 3;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Transports = TCP;
    FSAL {{ Name = VFS; }}
}}
"""


#: files rpcbind leaves in /run
RPCBIND_FILES = (Path("/run/rpcbind.lock"), Path("/run/rpcbind.sock"), Path("/run/rpcbind"))


@dataclass
class NfsServer:
    """A running rpcbind + ganesha pair: namespace and the exported directory."""

    ns: str
    export: Path


@contextmanager
def nfs_server(ns: str) -> Iterator[NfsServer]:
    """rpcbind + nfs-ganesha in ``ns`` exporting a new temporary directory over NFSv3."""
    need("rpcbind", "ganesha.nfsd", "rpcinfo")
    workdir = Path(tempfile.mkdtemp(prefix="pvs2-nfs-", dir="/tmp"))
    export = workdir / "export"
    export.mkdir()
    conf = workdir / "ganesha.conf"
    conf.write_text(GANESHA_CONF.format(export=export))
    leftovers = [p for p in RPCBIND_FILES if not p.exists()]
    rpcbind = subprocess.Popen(in_ns(ns, ["rpcbind", "-f"]))
    ganesha: subprocess.Popen[bytes] | None = None
    try:
        _wait(in_ns(ns, ["rpcinfo", "-p", "127.0.0.1"]), "rpcbind")
        argv = ["ganesha.nfsd", "-F", "-f", str(conf), "-L", str(workdir / "ganesha.log")]
        argv += ["-p", str(workdir / "ganesha.pid")]
        ganesha = subprocess.Popen(in_ns(ns, argv))
        probe = in_ns(ns, ["rpcinfo", "-T", "tcp", "127.0.0.1", "nfs", "3"])
        _wait(probe, "nfs-ganesha", timeout=40)
        yield NfsServer(ns, export)
    finally:
        if ganesha is not None:
            _stop(ganesha)
        _stop(rpcbind)
        for path in leftovers:  # only what this rpcbind created
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def loop_device(size: int) -> Iterator[str]:
    """A loop device over a sparse file of ``size`` bytes; detached and removed afterwards."""
    need("losetup")
    fd, image = tempfile.mkstemp(prefix="pvs2-loop-", suffix=".img", dir="/tmp")
    os.ftruncate(fd, size)
    os.close(fd)
    proc = subprocess.run(["losetup", "-f", "--show", image], capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(image)
        pytest.skip(f"no loop device available: {proc.stderr.strip()}")
    dev = proc.stdout.strip()
    try:
        yield dev
    finally:
        with suppress(OSError):
            subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(image)


class NsPyvirt(Pyvirt):
    """The CLI runner, with every command run inside a network namespace."""

    def __init__(self, root: Path, ns: str) -> None:
        super().__init__(root)
        self.ns = ns

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        from tests.conftest import PYVIRT

        proc = subprocess.run(
            in_ns(self.ns, [*PYVIRT, *args]),
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        res = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"pyvirt {' '.join(args)} failed ({proc.returncode}): {res.err}")
        return res


# -- the tiny guest writing to a pool volume ---------------------------------------------------
GUEST_SCRIPT = (
    "S=$(cat /sys/block/vda/size); "
    "printf '{pattern}' | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null && "
    "printf '{pattern}' | dd of=/dev/vda bs=512 seek=$((S-1)) conv=fsync 2>/dev/null && "
    "echo GUEST-WROTE"
)


def guest_domain_xml(image: Any, name: str, disk: str, script: str) -> str:
    """A tiny-guest domain running ``script`` once booted, with one extra ``<disk>``."""
    run = base64.b64encode(script.encode()).decode()
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{TINY_CMDLINE} pyvirt.run={run}</cmdline>
  </os>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    {disk}
  </devices>
</domain>
"""


def volume_disk(pool: str, vol: str) -> str:
    """``<disk type='volume'>`` on vda."""
    return (
        f"<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
        f"<source pool='{pool}' volume='{vol}'/><target dev='vda' bus='virtio'/></disk>"
    )


@dataclass
class GuestRun:
    """What the guest reported: its vda size and the script's output."""

    vda_bytes: int
    output: str


def run_guest(pv: Pyvirt, image: Any, disk: str, pattern: str, name: str = "g1") -> GuestRun:
    """Boot the tiny guest with ``disk`` as vda, let it write ``pattern`` at byte 512 and into
    the last sector, then destroy it (the writes were fsync'ed)."""
    xml = pv.root / f"{name}.xml"
    script = GUEST_SCRIPT.format(pattern=pattern)
    xml.write_text(guest_domain_xml(image, name, disk, script))
    pv("define", str(xml))
    pv("start", name)
    log = pv.root / "log" / "qemu" / name / "console.log"
    deadline = time.monotonic() + 120
    text = ""
    try:
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "PYVIRT-RUN-END" in text:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"guest did not finish its script; console:\n{text[-2000:]}")
    finally:
        pv("destroy", name, check=False)
        pv("undefine", name, check=False)
    m = re.search(r"PYVIRT-DISKS vda (\d+)", text)
    assert m, f"guest saw no vda; console:\n{text[-2000:]}"
    body = text.split("PYVIRT-RUN-BEGIN", 1)[-1].split("PYVIRT-RUN-END", 1)[0]
    return GuestRun(int(m.group(1)), body)


def assert_pattern(path: str | Path, offset: int, size: int, pattern: str) -> None:
    """The guest's two writes are at ``offset+512`` and in the last sector of the range."""
    data = pattern.encode()
    with open(path, "rb") as f:
        f.seek(offset + 512)
        assert f.read(len(data)) == data, f"pattern not at byte 512 of the volume in {path}"
        f.seek(offset + size - 512)
        assert f.read(len(data)) == data, f"pattern not in the last sector of the volume in {path}"


def ns_pids(ns: str) -> list[str]:
    """Processes still running in namespace ``ns``."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return out.split()
