"""``pyvirt install`` booting real guests under TCG: the seed's virt-install line with an
El Torito ISO built from the tiny guest, and Debian's real installer from its netboot package.

Choice documented in docs/install.md: this host's KVM is emulated and far too slow, so the
seed's line runs with ``--virt-type qemu`` (TCG); with ``--virt-type kvm`` it is refused before
QEMU runs, in one line naming ``--virt-type qemu``. ``network=default`` runs inside a network
namespace the test creates, so the default NAT network's bridge, dnsmasq and nft table never
touch the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT, Pyvirt, Result

pytestmark = pytest.mark.qemu

MARKER = "PYVIRT-TINY-READY"
DATA = Path(__file__).parents[1] / "data" / "install"
CACHE = Path(os.environ.get("PYVIRT_TEST_CACHE", "/var/cache/pyvirt-test"))
ISOLINUX = (
    Path("/usr/lib/ISOLINUX/isolinux.bin"),
    Path("/usr/lib/syslinux/modules/bios/ldlinux.c32"),
)


def wait_console(pv: Pyvirt, name: str, text: str, timeout: float) -> str:
    """Wait until the domain's serial console log shows ``text``; returns the log."""
    log = pv.root / "log" / "qemu" / name / "console.log"
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        if log.exists():
            content = log.read_text(errors="replace")
            if text in content:
                return content
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {text!r} on {name}'s console: {content[-800:]}")


def tiny_iso(image: Any, out: Path) -> Path:
    """An El Torito (isolinux) ISO booting the tiny guest's kernel and initrd."""
    missing = [str(p) for p in ISOLINUX if not p.exists()]
    if missing or shutil.which("xorriso") is None:
        pytest.skip(f"isolinux/syslinux-common or xorriso not installed ({', '.join(missing)})")
    root = out.parent / "iso-root"
    (root / "isolinux").mkdir(parents=True, exist_ok=True)
    (root / "tiny").mkdir(exist_ok=True)
    for path in ISOLINUX:
        shutil.copyfile(path, root / "isolinux" / path.name)
    shutil.copyfile(DATA / "isolinux.cfg", root / "isolinux" / "isolinux.cfg")
    bzimage = Path(image.kernel).with_name("vmlinuz")  # isolinux loads bzImages, not ELF
    shutil.copyfile(bzimage, root / "tiny" / "vmlinuz")
    shutil.copyfile(image.initrd, root / "tiny" / "initrd")
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "PYVIRT-TINY", "-o", str(out),
         "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
         "-boot-load-size", "4", "-boot-info-table", "-J", "-r", str(root)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture
def netns(pyvirt: Pyvirt) -> Iterator[str]:
    """A fresh network namespace (loopback up); pyvirt runs in it via :func:`in_ns`."""
    name = f"pvi1-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    run = pyvirt.root / "run" / "qemu"
    for entry in run.iterdir() if run.is_dir() else []:
        if entry.is_dir() and not entry.name.startswith("."):
            in_ns(pyvirt, name, "destroy", entry.name, check=False)
    in_ns(pyvirt, name, "net-destroy", "default", check=False)
    subprocess.run(["ip", "netns", "delete", name], check=False)


def in_ns(pv: Pyvirt, ns: str, *args: str, check: bool = True) -> Result:
    proc = subprocess.run(["ip", "netns", "exec", ns, *PYVIRT, *args], env=pv.env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    res = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"pyvirt {' '.join(args)} failed in {ns}: {proc.stderr}")
    return res


def test_seed_virt_install_line(pyvirt: Pyvirt, tiny_image: Any, netns: str) -> None:
    """The seed's line, paths substituted (ISO built here, qcow2 by qemu-img), in a netns."""
    work = pyvirt.root / "kvmtest"
    work.mkdir()
    iso = tiny_iso(tiny_image, work / "CentOS-7-x86_64-minimal.iso")
    disk = work / "centos-6.8.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "10G"], check=True,
                   capture_output=True)  # fmt: skip
    res = in_ns(pyvirt, netns, "install", "--virt-type", "qemu", "--name", "centos-7",
                "--ram", "256", "--vcpus", "1", f"--cdrom={iso}",
                "--disk", f"{disk},format=qcow2", "--network", "network=default",
                "--graphics", "vnc,listen=0.0.0.0", "--noautoconsole",
                "--os-type=linux", "--os-variant=rhel6")  # fmt: skip
    assert "Domain 'centos-7' started." in res.out
    assert "listens on 0.0.0.0 without a password" in res.err  # works, and warns
    log = wait_console(pyvirt, "centos-7", MARKER, 150)  # booted from the virtual CD-ROM
    assert f"PYVIRT-DISKS sr0 {iso.stat().st_size}" in log
    assert "PYVIRT-DISKS vda 10737418240" in log
    st = in_ns(pyvirt, netns, "domstate", "centos-7").out.strip()
    assert st == "running"
    xml = in_ns(pyvirt, netns, "dumpxml", "centos-7", "--inactive").out
    assert "<source network='default'/>" in xml and "listen='0.0.0.0'" in xml
    assert "<on_reboot>restart</on_reboot>" in xml  # the final definition; the live one:
    assert "<on_reboot>destroy</on_reboot>" in in_ns(pyvirt, netns, "dumpxml", "centos-7").out
    assert in_ns(pyvirt, netns, "vncdisplay", "centos-7").out.startswith("0.0.0.0:")


def qemu_pids_under(root: Path) -> list[int]:
    """PIDs of QEMU processes whose command line names ``root`` (this test's state root)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(root).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def test_seed_line_with_kvm_is_refused_on_emulated_kvm(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """The seed's line as written (--virt-type kvm) where the KVM probe says KVM is emulated."""
    from pyvirt.host import kvm

    if kvm.kvm_status(cache_path=kvm.probe_cache(pyvirt.root / "probe")).fast:
        pytest.skip("KVM runs guests on this host: --virt-type kvm is accepted")
    work = pyvirt.root / "kvmtest"
    work.mkdir()
    iso = tiny_iso(tiny_image, work / "CentOS-7-x86_64-minimal.iso")
    disk = work / "centos-6.8.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "10G"], check=True,
                   capture_output=True)  # fmt: skip
    res = pyvirt("install", "--virt-type", "kvm", "--name", "centos-7",
                 "--ram", "256", "--vcpus", "1", f"--cdrom={iso}",
                 "--disk", f"{disk},format=qcow2", "--network", "type=user",
                 "--graphics", "vnc,listen=0.0.0.0", "--noautoconsole",
                 "--os-type=linux", "--os-variant=rhel6", check=False)  # fmt: skip
    assert res.rc == 1 and res.out == ""
    assert len(res.err.splitlines()) == 1, res.err
    assert "KVM cannot run guests on this host" in res.err
    assert res.err.rstrip().endswith("use --virt-type qemu")
    assert "MSR" not in res.err and "Assertion" not in res.err  # QEMU never ran
    assert qemu_pids_under(pyvirt.root) == []
    assert pyvirt("list", "--all", "--name").out.strip() == ""


def _debian_installer() -> Path:
    """Debian's netboot installer package, downloaded and unpacked once into the test cache."""
    target = CACHE / "d-i" / "x"
    if (target / "usr" / "lib" / "debian-installer").is_dir():
        return target
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is needed to fetch debian-installer-12-netboot-amd64")
    (CACHE / "d-i").mkdir(parents=True, exist_ok=True)
    debs = list((CACHE / "d-i").glob("debian-installer-12-netboot-amd64_*.deb"))
    if not debs:
        argv = ["apt-get", "download", "debian-installer-12-netboot-amd64"]
        proc = subprocess.run(argv, cwd=CACHE / "d-i", capture_output=True, text=True, timeout=600)
        debs = list((CACHE / "d-i").glob("debian-installer-12-netboot-amd64_*.deb"))
        if proc.returncode != 0 or not debs:
            pytest.skip(f"cannot download debian-installer-12-netboot-amd64: {proc.stderr[-300:]}")
    tmp = target.with_name("x.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tmp)], check=True, timeout=300)
    tmp.rename(target)
    return target


def test_debian_installer_first_screen(pyvirt: Pyvirt) -> None:
    """A real installer: Debian 12's netboot kernel and initrd via --location (text, serial)."""
    tree = _debian_installer()
    disk = pyvirt.root / "deb.qcow2"
    res = pyvirt("install", "--name", "d-i", "--memory", "1024", "--location", str(tree),
                 "--extra-args", "console=ttyS0 priority=high", "--graphics", "none",
                 "--noautoconsole", "--disk", f"path={disk},size=2", "--network", "none",
                 "--osinfo", "detect=on", "--virt-type", "qemu")  # fmt: skip
    assert "installation still in progress" in res.out
    assert "not detected" not in res.err  # version.info says Debian 12
    log = wait_console(pyvirt, "d-i", "<Tab> moves; <Space> selects; <Enter> activates", 240)
    assert "Select a language" in log or "Choose the language" in log, log[-1500:]
    final = pyvirt("dumpxml", "d-i", "--inactive").out
    assert "<kernel>" not in final and "machine='q35'" in final  # debian12 defaults
    live = pyvirt("dumpxml", "d-i").out
    assert "debian-installer/amd64/linux</kernel>" in live and "console=ttyS0" in live
    assert disk.exists() and disk.stat().st_size > 0
