"""Details of libvirt's command line the corpus cases below 95 % showed: the boot menu's splash
time, an absolute RTC start, ``isapc``'s 486, a directory as a FAT floppy (vvfat), shared or
private NUMA memory in a file, RBD snapshots and ceph.conf, iSCSI LUN passthrough, SMM and
pflash formats."""

from __future__ import annotations

import json

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.model.domain import Domain


def argv_of(
    body: str, *, machine: str = "pc", cpu: str = "", extra: str = "", vcpus: int = 2
) -> list[str]:
    xml = (
        f"<domain type='qemu'><name>d</name><memory>131072</memory><vcpu>{vcpus}</vcpu>{cpu}"
        f"<os><type arch='x86_64' machine='{machine}'>hvm</type>{extra}</os>{body}</domain>"
    )
    return build_argv(Domain.from_xml(xml), ArgvContext.for_domain("d"))


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def blockdevs(argv: list[str]) -> list[dict[str, object]]:
    return [json.loads(v) for v in option(argv, "-blockdev")]


def test_boot_menu_timeout_is_the_splash_time() -> None:
    argv = argv_of("", extra="<bootmenu enable='yes' timeout='3000'/>")
    assert option(argv, "-boot") == ["menu=on,splash-time=3000,strict=on"]
    assert option(argv_of("", extra="<bootmenu enable='no' timeout='3000'/>"), "-boot") == [
        "strict=on"
    ]


def test_absolute_clock_start() -> None:
    argv = argv_of("<clock offset='absolute' start='253402300799'/>")
    assert option(argv, "-rtc") == ["base=9999-12-31T23:59:59"]


def test_isapc_default_cpu_is_486() -> None:
    assert option(argv_of("", machine="isapc", vcpus=1), "-cpu") == ["486"]
    assert option(argv_of(""), "-cpu") == ["qemu64"]


def test_directory_as_fat_floppy() -> None:
    argv = argv_of(
        "<devices><disk type='dir' device='floppy'><driver name='qemu' type='fat'/>"
        "<source dir='/var/somefiles'/><target dev='fda' bus='fdc'/><readonly/></disk></devices>"
    )
    storage, fmt = blockdevs(argv)[-2:]
    assert {k: storage[k] for k in ("driver", "dir", "floppy", "rw")} == {
        "driver": "vvfat",
        "dir": "/var/somefiles",
        "floppy": True,
        "rw": False,
    }
    assert fmt["driver"] == "raw" and fmt["read-only"] is True


def test_mem_access_puts_numa_memory_in_a_file() -> None:
    cells = (
        "<cpu><numa><cell id='0' cpus='0' memory='65536' memAccess='shared'/>"
        "<cell id='1' cpus='1' memory='65536' memAccess='private'/></numa></cpu>"
    )
    objs = [json.loads(o) for o in option(argv_of("", cpu=cells), "-object") if o.startswith("{")]
    mem = [o for o in objs if str(o.get("id", "")).startswith("ram-node")]
    assert [(o["qom-type"], o["share"]) for o in mem] == [
        ("memory-backend-file", True),
        ("memory-backend-file", False),
    ]
    assert all(o["mem-path"] for o in mem)


def test_rbd_snapshot_and_conf_iscsi_lun() -> None:
    argv = argv_of(
        "<devices><disk type='network' device='disk'><driver name='qemu' type='raw'/>"
        "<source protocol='rbd' name='pool/image'><snapshot name='foo'/>"
        "<config file='/blah/test.conf'/></source><target dev='vdb' bus='virtio'/></disk>"
        "<disk type='network' device='lun'><driver name='qemu' type='raw'/>"
        "<source protocol='iscsi' name='iqn.1992-01.com.example'>"
        "<host name='example.org' port='3260'/></source><target dev='sda' bus='scsi'/></disk>"
        "</devices>"
    )
    rbd = next(n for n in blockdevs(argv) if n.get("driver") == "rbd")
    assert rbd["snapshot"] == "foo" and rbd["conf"] == "/blah/test.conf"
    assert any('"driver":"scsi-block"' in d for d in option(argv, "-device"))
    warnings = Domain.from_xml(
        "<domain type='qemu'><name>d</name><memory>1</memory><os><type>hvm</type></os>"
        "<devices><disk type='network'><source protocol='rbd' name='p/i'><snapshot name='s'/>"
        "<config file='/c'/></source><target dev='vda'/></disk></devices></domain>"
    ).warnings
    assert not [w for w in warnings if "snapshot" in w or "config" in w]


def test_smm_and_secure_pflash() -> None:
    argv = argv_of(
        "<features><acpi/><smm state='on'/></features>",
        machine="q35",
        extra="<loader readonly='yes' secure='yes' type='pflash' format='qcow2'>/c.qcow2</loader>"
        "<nvram template='/t.qcow2' format='qcow2'>/n.qcow2</nvram>",
    )
    assert "smm=on" in option(argv, "-machine")[0]
    assert "driver=cfi.pflash01,property=secure,value=on" in option(argv, "-global")
    code, vars_ = [n for n in blockdevs(argv) if str(n.get("node-name", "")).endswith("-format")][
        :2
    ]
    assert (code["driver"], code["read-only"]) == ("qcow2", True)
    assert (vars_["driver"], vars_["read-only"]) == ("qcow2", False)
