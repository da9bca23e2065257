"""``pyvirt install --print-xml`` for a dozen option combinations against golden files, and
the errors of bad options, through the real CLI (a subprocess against a fresh state root).

Golden files live in ``tests/data/install/print-xml/``; ``@DIR@`` stands for the test's
directory of media and disks, ``@ROOT@`` for its state root. ``PYVIRT_UPDATE_GOLDEN=1``
rewrites them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvirt.model.defaults import fill_defaults
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_domain
from tests.conftest import Pyvirt

GOLDEN = Path(__file__).parents[2] / "data" / "install" / "print-xml"
UUID = "c0ffee00-0000-4000-8000-000000000001"
BASE = ["--virt-type", "qemu", "--uuid", UUID, "--mac", "52:54:00:00:00:01", "--print-xml"]

CASES: dict[str, list[str]] = {
    "seed": ["--name", "centos-7", "--ram", "1024", "--vcpus", "1", "--cdrom=@DIR@/cd.iso",
             "--disk", "@DIR@/c7.qcow2,format=qcow2", "--network", "type=user", "--graphics",
             "vnc,listen=0.0.0.0", "--noautoconsole", "--os-type=linux", "--os-variant=rhel6"],
    "import": ["-n", "imp", "--import", "--disk", "path=@DIR@/c7.qcow2", "--os-variant",
               "debian12", "--memory", "512", "--graphics", "none", "--network", "none"],
    "new-disk-pxe": ["-n", "pxe", "--pxe", "--disk",
                     "path=@DIR@/new.qcow2,size=2,bus=sata,cache=none,io=native",
                     "--os-variant", "fedora40", "--network", "type=user,model=e1000"],
    "location": ["-n", "loc", "--location", "@DIR@/tree", "--extra-args", "auto=true",
                 "--graphics", "none", "--osinfo", "detect=on", "--network", "type=user",
                 "--disk", "@DIR@/c7.qcow2"],
    "kernel-boot": ["-n", "kb", "--import", "--boot",
                    'kernel=@DIR@/k,initrd=@DIR@/i,kernel_args="console=ttyS0 quiet"',
                    "--disk", "none", "--network", "none", "--graphics", "none", "-r", "160"],
    "topology": ["-n", "topo", "--import", "--disk", "@DIR@/c7.qcow2", "--vcpus",
                 "4,maxvcpus=8,sockets=2,cores=2,threads=2", "--cpu", "host-passthrough",
                 "--network", "type=user"],
    "uefi-win11": ["-n", "win", "--import", "--disk", "@DIR@/c7.qcow2", "--os-variant", "win11",
                   "--network", "type=user"],
    "bridge-macs": ["-n", "br", "--import", "--disk", "@DIR@/c7.qcow2", "--network",
                    "bridge=br0,model=e1000", "--network", "type=user", "--mac",
                    "52:54:00:00:00:02", "--os-variant", "ubuntu22.04"],
    "vnc-keymap-password": ["-n", "vnc", "--import", "--disk", "@DIR@/c7.qcow2", "--graphics",
                            "vnc,keymap=en-us,password=s3cret,port=5910", "--network",
                            "type=user"],
    "tuning": ["-n", "tune", "--import", "--disk", "@DIR@/c7.qcow2", "--vcpus", "2",
               "--memorybacking", "hugepages=on", "--numatune", "0,mode=strict", "--cputune",
               "vcpupin0.vcpu=0,vcpupin0.cpuset=1", "--network", "type=user"],
    "cloud-init": ["-n", "ci", "--import", "--disk", "@DIR@/c7.qcow2", "--cloud-init",
                   "root-password=secret", "--network", "type=user", "--os-variant",
                   "centos-stream9"],
    "cdrom-shared-disks": ["-n", "cds", "--import", "--disk", "@DIR@/c7.qcow2", "--disk",
                           "@DIR@/cd.iso,device=cdrom", "--disk",
                           "@DIR@/shared.raw,readonly=on", "--os-variant", "generic",
                           "--console", "pty,target_type=virtio", "--network", "type=user"],
}  # fmt: skip


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """Files the options refer to (contents do not matter for --print-xml)."""
    import subprocess

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "c7.qcow2"), "1G"],
                   check=True)  # fmt: skip
    for name in ("cd.iso", "k", "i", "shared.raw"):
        (tmp_path / name).write_bytes(b"\0" * 4096)
    tree = tmp_path / "tree" / "install.amd"
    tree.mkdir(parents=True)
    (tree / "vmlinuz").write_text("k")
    (tree / "initrd.gz").write_text("i")
    (tmp_path / "tree" / ".disk").mkdir()
    (tmp_path / "tree" / ".disk" / "info").write_text('Debian GNU/Linux 11.9.0 "Bullseye"')
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_print_xml_golden(pyvirt: Pyvirt, media: Path, case: str) -> None:
    args = [a.replace("@DIR@", str(media)) for a in CASES[case]]
    res = pyvirt("install", *args, *BASE)
    xml = res.out.replace(str(media), "@DIR@").replace(str(pyvirt.root), "@ROOT@")
    golden = GOLDEN / f"{case}.xml"
    if os.environ.get("PYVIRT_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(xml)
    assert xml == golden.read_text()
    # it validates, and nothing was defined or created
    assert Domain.from_xml(res.out).uuid == UUID
    assert pyvirt("list", "--all", "--name").out.strip() == ""
    assert not (media / "new.qcow2").exists()


def test_print_xml_is_what_gets_defined(pyvirt: Pyvirt, media: Path) -> None:
    args = ["-n", "same", "--disk", f"path={media}/d.qcow2,size=0.01", "--import",
            "--network", "type=user", "--graphics", "none", "--virt-type", "qemu",
            "--uuid", UUID, "--mac", "52:54:00:00:00:01"]  # fmt: skip
    printed = pyvirt("install", *args, "--print-xml").out
    pyvirt("install", *args, "--dry-run")
    assert not (media / "d.qcow2").exists()
    # define without starting: --transient is not it; install then destroy
    out = pyvirt("install", *args, "--noautoconsole").out
    assert "Domain 'same' started." in out
    pyvirt("destroy", "same")
    # what gets defined is the printed XML with libvirt's defaults (as virsh shows it) and,
    # on q35, the PCIe topology (root ports, PCI addresses); --print-xml shows the XML before
    # that, as virt-install does
    defined = Domain.from_xml(pyvirt("dumpxml", "same", "--inactive").out)
    expected = Domain.from_xml(printed)
    aliases = {str(expected.os.machine): str(defined.os.machine)}
    complete_domain(expected)
    fill_defaults(expected, machine_aliases=aliases)
    complete_domain(expected)
    assert defined.to_xml() == expected.to_xml()
    assert "<address type='pci'" in defined.to_xml() and "<controller type='pci'" in printed
    assert (media / "d.qcow2").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disk", "path=@DIR@/x.qcow2,size=-1"], "--disk: size must be a positive number"),
        (["--vcpus", "0"], "--vcpus 0: a guest needs at least 1 vCPU"),
        (["--network", "network=nosuch"], "network 'nosuch' not found"),
        (["--cdrom", "@DIR@/missing.iso"], "--cdrom: '@DIR@/missing.iso' does not exist"),
        (["--disk", "@DIR@/missing.qcow2"], "add size=GB to create it"),
        (["--disk", "@DIR@/c7.qcow2,bogus=1"], "--disk: unknown option 'bogus'"),
        (["--graphics", "vnc,port=80"], "port=80 is not -1 or 5900-65535"),
        (["--os-variant", "plan9"], "OS variant 'plan9' is not known"),
        (["--virt-type", "xen"], "--virt-type 'xen' is not supported"),
        (["--cdrom", "@DIR@/cd.iso", "--import"], "give only one install method"),
        (["--memory", "0"], "--memory must be a positive number of MiB"),
    ],
)
def test_bad_options(pyvirt: Pyvirt, media: Path, args: list[str], message: str) -> None:
    argv = [a.replace("@DIR@", str(media)) for a in args]
    res = pyvirt("install", "-n", "bad", "--print-xml", *argv, check=False)
    assert res.rc == 1, res
    assert res.err.startswith("error: ") and "Traceback" not in res.err
    assert message.replace("@DIR@", str(media)) in res.err


def test_check_path_in_use(pyvirt: Pyvirt, media: Path) -> None:
    common = ["--import", "--disk", f"{media}/c7.qcow2", "--network", "type=user",
              "--graphics", "none", "--virt-type", "qemu", "--noautoconsole"]  # fmt: skip
    xml = pyvirt("install", "-n", "first", *common, "--print-xml").out
    (media / "first.xml").write_text(xml)
    pyvirt("define", str(media / "first.xml"))
    res = pyvirt("install", "-n", "second", *common, "--print-xml", check=False)
    assert res.rc == 1 and f"disk '{media}/c7.qcow2' is already used by domain 'first'" in res.err
    assert "hint: use another path, or --check path_in_use=off" in res.err
    ok = pyvirt("install", "-n", "second", *common, "--print-xml", "--check", "path_in_use=off")
    assert "<name>second</name>" in ok.out
    mac = pyvirt("install", "-n", "third", "--import", "--disk", "none", "--network",
                 f"type=user,mac={Domain.from_xml(xml).devices.interfaces[0].mac}",
                 "--print-xml", check=False)  # fmt: skip
    assert mac.rc == 1 and "is already used by domain 'first'" in mac.err


def test_vnc_beyond_loopback_warns_once(pyvirt: Pyvirt, media: Path) -> None:
    res = pyvirt("install", "-n", "v", "--import", "--disk", f"{media}/c7.qcow2", "--network",
                 "type=user", "--graphics", "vnc,listen=0.0.0.0", "--virt-type", "qemu",
                 "--print-xml")  # fmt: skip
    assert res.err.count("warning: the VNC console of domain 'v' listens on 0.0.0.0") == 1
    assert "add password=SECRET" in res.err
    quiet = pyvirt("install", "-n", "v", "--import", "--disk", f"{media}/c7.qcow2", "--network",
                   "type=user", "--graphics", "vnc,listen=0.0.0.0,password=x", "--print-xml",
                   "--virt-type", "qemu")  # fmt: skip
    assert "VNC" not in quiet.err


def test_kvm_on_slow_host_is_refused(pyvirt: Pyvirt, media: Path) -> None:
    res = pyvirt("install", "-n", "k", "--import", "--disk", f"{media}/c7.qcow2", "--network",
                 "type=user", "--virt-type", "kvm", "--print-xml", check=False)  # fmt: skip
    default = pyvirt("install", "-n", "k", "--import", "--disk", f"{media}/c7.qcow2",
                     "--network", "type=user", "--print-xml").out  # fmt: skip
    if "<domain type='kvm'>" in default:  # KVM is fast here: --virt-type kvm is fine
        assert res.rc == 0 and "<domain type='kvm'>" in res.out
        return
    # no KVM, or an emulated one (the probe says so): one line, naming --virt-type qemu
    assert res.rc == 1 and res.out == ""
    if "/dev/kvm does not exist" in res.err:
        return
    assert len(res.err.splitlines()) == 1, res.err
    assert res.err.startswith("error: --virt-type kvm but KVM cannot run guests on this host (")
    assert res.err.rstrip().endswith("use --virt-type qemu")
