"""Hostile input (issue 10): names, sizes, paths, MACs, pools, shared and in-use storage,
corrupt records and a full state disk each give one ``error:`` line, a non-zero exit and
leave the state as it was.

Only the in-use storage test boots QEMU; the rest runs the CLI against files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import domain_xml, wait_for

DOM = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices>{devices}</devices></domain>
"""


def _xml(pv: Pyvirt, name: str, devices: str = "", *, file: str | None = None) -> str:
    path = pv.root / f"{file or name}.in.xml"
    path.write_text(DOM.format(name=name, devices=devices))
    return str(path)


def _disk(path: str, dev: str = "vda") -> str:
    return f"<disk type='file' device='disk'><source file='{path}'/><target dev='{dev}'/></disk>"


def refused(pv: Pyvirt, *args: str, error: str, hint: str | None = None) -> None:
    """``pyvirt ARGS`` exits 1 with exactly ``error: ERROR`` (and the hint), changing nothing."""
    before = pv.snapshot()
    res = pv(*args, check=False)
    assert res.rc == 1, (args, res)
    lines = res.err.splitlines()
    assert lines[0] == f"error: {error}", (args, res.err)
    assert "Traceback" not in res.err
    if hint is not None:
        assert lines[1:] == [f"hint: {hint}"], (args, res.err)
    else:
        assert len(lines) <= 2 and all(x.startswith("hint: ") for x in lines[1:]), res.err
    assert pv.snapshot() == before, args


# -- sizes and counts -------------------------------------------------------------------------
def test_sizes_and_counts_are_bounded_like_define(pyvirt: Pyvirt) -> None:
    pyvirt("pool-list", "--all")  # creates the default pool
    pyvirt("define", _xml(pyvirt, "d"))
    refused(pyvirt, "setmaxmem", "d", "17T", "--config",
            error="memory size 17 TiB is larger than the 16 TiB limit")  # fmt: skip
    refused(pyvirt, "setmaxmem", "d", "99999999999999999999T", "--config",
            error="size '99999999999999999999T': is too large")  # fmt: skip
    refused(pyvirt, "setvcpus", "d", "256", "--config", "--maximum",
            error="vcpu count 256 is out of range 1-255 for domain 'd' (machine 'pc')")  # fmt: skip
    refused(pyvirt, "setmem", "d", "128M", "--config",
            error="memory size 131072 KiB is out of range for domain 'd' (1-65536 KiB)",
            hint="raise the maximum with setmaxmem --config first")  # fmt: skip
    refused(pyvirt, "memtune", "d", "--hard-limit", str(2**53), "--config",
            error=f"memtune hard limit {2**53} KiB is larger than the limit of {2**53 - 1} KiB",
            hint="use -1 for unlimited")  # fmt: skip
    refused(pyvirt, "vol-create-as", "default", "big.img", "2E",
            error="volume 'big.img' capacity 2048.00 PiB is larger than the limit of "
            "1024.00 PiB")  # fmt: skip
    pyvirt("setmaxmem", "d", "16T", "--config")  # the limit itself is accepted and reads back
    assert "<memory unit='KiB'>17179869184</memory>" in pyvirt("dumpxml", "d").out
    pyvirt("undefine", "d")


# -- names ------------------------------------------------------------------------------------
def test_names_that_collide_with_pyvirt_files(pyvirt: Pyvirt) -> None:
    pyvirt("pool-list", "--all")  # creates the default pool
    long_ok = len(str(pyvirt.root / "run" / "qemu")) + 23
    limit = 108 - long_ok
    for name, error in (
        (".hidden", "domain name '.hidden' must not start with '.'"),
        ("x.json", "domain name 'x.json' must not end in '.json'"),
        ("x.xml", "domain name 'x.xml' must not end in '.xml'"),
        ("x.lock", "domain name 'x.lock' must not end in '.lock'"),
        ("x" * (limit + 1), f"domain name is {limit + 1} bytes, longer than the {limit} bytes "
         f"that fit in a socket path under {pyvirt.root / 'run' / 'qemu'}"),
    ):  # fmt: skip
        refused(pyvirt, "define", _xml(pyvirt, name, file="n"), error=error)
        refused(pyvirt, "create", _xml(pyvirt, name, file="n"), error=error)
    pyvirt("define", _xml(pyvirt, "x" * limit, file="n"))  # the longest name that fits
    pyvirt("define", _xml(pyvirt, "ok"))
    refused(pyvirt, "domrename", "ok", ".ok", error="domain name '.ok' must not start with '.'")
    refused(
        pyvirt, "domrename", "ok", "ok.tmp", error="domain name 'ok.tmp' must not end in '.tmp'"
    )
    long_pool = "p" * 300
    refused(pyvirt, "pool-define-as", long_pool, "dir", "--target", str(pyvirt.root / "p"),
            error="pool name is longer than 200 bytes")  # fmt: skip
    refused(pyvirt, "pool-info", long_pool, error=f"storage pool '{long_pool}' not found",
            hint="list the pools with 'pool-list --all'")  # fmt: skip
    refused(pyvirt, "pool-define-as", "p.xml", "dir", "--target", str(pyvirt.root / "p"),
            error="pool name 'p.xml' must not end in '.xml'")  # fmt: skip
    net = pyvirt.root / "n.xml"
    net.write_text("<network><name>.n</name><bridge name='pvh0'/></network>")
    refused(pyvirt, "net-define", str(net), error="network name '.n' must not start with '.'")


def test_macs(pyvirt: Pyvirt) -> None:
    for mac, why in (
        ("00:00:00:00:00:00", "is all zeros"),
        ("ff:ff:ff:ff:ff:ff", "is the broadcast address"),
        ("01:00:5e:00:00:01", "is a multicast address"),
    ):
        nic = f"<interface type='user'><mac address='{mac}'/></interface>"
        refused(pyvirt, "define", _xml(pyvirt, "m", nic),
                error=f"<devices>/<interface>/<mac>: address '{mac}' {why}")  # fmt: skip


# -- paths ------------------------------------------------------------------------------------
def test_pool_targets(pyvirt: Pyvirt, tmp_path: Path) -> None:
    pyvirt("pool-list", "--all")  # creates the default pool
    for target, error in (
        ("/", "pool 'p' target path '/' is the system directory /"),
        ("/etc", "pool 'p' target path '/etc' is in the system directory /etc"),
        ("/etc/pv", "pool 'p' target path '/etc/pv' is in the system directory /etc"),
        ("/proc", "pool 'p' target path '/proc' is in the system directory /proc"),
        ("/dev", "pool 'p' target path '/dev' is in the system directory /dev"),
        ("/home", "pool 'p' target path '/home' is the system directory /home"),
        (str(pyvirt.root / "lib"),
         f"pool 'p' target path '{pyvirt.root / 'lib'}' overlaps pyvirt's state directory "
         f"{pyvirt.root / 'lib'}"),
        (str(pyvirt.root / "run" / "x"),
         f"pool 'p' target path '{pyvirt.root / 'run' / 'x'}' overlaps pyvirt's state "
         f"directory {pyvirt.root / 'run'}"),
    ):  # fmt: skip
        refused(pyvirt, "pool-define-as", "p", "dir", "--target", target, error=error)
        refused(pyvirt, "pool-create-as", "p", "dir", "--target", target, error=error)
    pyvirt("pool-define-as", "a", "dir", "--target", str(tmp_path / "a"))
    refused(pyvirt, "pool-define-as", "b", "dir", "--target", str(tmp_path / "a" / "b"),
            error=f"pool 'b' target path '{tmp_path / 'a' / 'b'}' is nested with pool 'a' at "
            f"'{tmp_path / 'a'}'")  # fmt: skip
    refused(pyvirt, "pool-define-as", "c", "dir", "--target", str(tmp_path),
            error=f"pool 'c' target path '{tmp_path}' is nested with pool 'a' at "
            f"'{tmp_path / 'a'}'")  # fmt: skip


def _root_disk() -> str | None:
    """The block device the host's root file system is mounted from, if any."""
    for line in Path("/proc/mounts").read_text().splitlines():
        src, mnt = line.split()[:2]
        if mnt == "/" and src.startswith("/dev/") and os.path.exists(src):
            return src
    return None


HINT = "the guest could read or overwrite it; pass --force if you mean it"


def test_host_files_as_disks(pyvirt: Pyvirt) -> None:
    cases = [
        ("/etc/shadow", "'/etc/shadow' is a host system file under /etc"),
        ("/proc/kcore", "'/proc/kcore' is a host system file under /proc"),
        ("/dev/mem", "'/dev/mem' is the host's memory or I/O port device /dev/mem"),
    ]
    root = _root_disk()
    if root is not None:
        cases.append((root, f"block device '{root}' is mounted or a swap on the host"))
    for path, why in cases:
        for verb in ("define", "create"):
            refused(pyvirt, verb, _xml(pyvirt, "h", _disk(path)),
                    error=f"domain 'h': disk vda: {why}", hint=HINT)  # fmt: skip
    pyvirt("define", _xml(pyvirt, "ok"))
    state_file = str(pyvirt.root / "lib" / "qemu" / "ok.xml")
    refused(pyvirt, "define", _xml(pyvirt, "h", _disk(state_file)),
            error=f"domain 'h': disk vda: '{state_file}' is one of pyvirt's own state files",
            hint=HINT)  # fmt: skip
    refused(pyvirt, "attach-disk", "ok", "/etc/passwd", "vdb", "--config",
            error="domain 'ok': disk vdb: '/etc/passwd' is a host system file under /etc",
            hint=HINT)  # fmt: skip
    pyvirt("attach-disk", "ok", "/etc/passwd", "vdb", "--config", "--force")
    pyvirt("define", "--force", _xml(pyvirt, "h", _disk("/etc/shadow")))
    # a serial file on an existing file would be truncated by QEMU
    keep = pyvirt.root / "keep.txt"
    keep.write_text("precious\n")
    serial = f"<serial type='file'><source path='{keep}'/></serial>"
    refused(pyvirt, "define", _xml(pyvirt, "s", serial),
            error=f"domain 's': serial: '{keep}' exists and QEMU would truncate it "
            "(add <source append='on'/> to keep it)", hint=HINT)  # fmt: skip
    appending = f"<serial type='file'><source path='{keep}' append='on'/></serial>"
    pyvirt("define", _xml(pyvirt, "s", appending))
    assert keep.read_text() == "precious\n"


# -- corrupt records --------------------------------------------------------------------------
def test_one_bad_record_does_not_take_down_the_rest(pyvirt: Pyvirt) -> None:
    for name in ("a", "b", "c"):
        pyvirt("define", _xml(pyvirt, name))
    run = pyvirt.root / "run" / "qemu" / "b"
    run.mkdir(parents=True)
    (run / "runtime.json").write_bytes(b"\x00\xffgarbage")
    res = pyvirt("list", "--all")
    assert [line.split()[1:] for line in res.out.splitlines()[2:] if line.strip()] == [
        ["a", "shut", "off"], ["b", "unknown"], ["c", "shut", "off"],
    ]  # fmt: skip
    hint = f"make sure no QEMU of domain 'b' runs (ps -ef | grep {run}), then remove {run} by hand"
    record = f"runtime record '{run / 'runtime.json'}' is not valid JSON"
    assert res.err == f"warning: domain 'b': {record} ({hint})\n"
    refused(pyvirt, "dominfo", "b", error=record, hint=hint)
    pyvirt("dominfo", "a")
    # a truncated definition: clear errors naming the file, and undefine --force removes it
    xml = pyvirt.root / "lib" / "qemu" / "c.xml"
    xml.write_bytes(xml.read_bytes()[:40])
    repair = f"repair {xml} by hand, or remove it with 'pyvirt undefine --force c'"
    for verb in ("dominfo", "dumpxml", "start", "undefine"):
        res = pyvirt(verb, "c", check=False)
        assert res.rc == 1 and "Traceback" not in res.err, res.err
        lines = res.err.splitlines()
        assert lines[0].startswith("error: the definition of domain 'c' cannot be read: "), lines
        assert lines[1:] == [f"hint: {repair}"]
    (pyvirt.root / "lib" / "qemu" / ".uuids").rename(pyvirt.root / "uuids.bak")
    rows = {r["name"]: r for r in json.loads(pyvirt("list", "--all", "--json").out)}
    assert rows["c"]["state"] == "unknown" and rows["a"]["state"] == "shut off"
    assert rows["c"]["problem"].startswith("the definition of domain 'c' cannot be read: ")
    (pyvirt.root / "uuids.bak").rename(pyvirt.root / "lib" / "qemu" / ".uuids")
    assert pyvirt("undefine", "--force", "c").out == "Domain 'c' has been undefined\n\n"
    assert not xml.exists()
    assert "c" not in pyvirt("list", "--all", "--name").out.split()
    pyvirt("undefine", "--force", "a")  # a readable definition: a plain undefine
    assert pyvirt("list", "--all", "--name", check=False).out.split() == ["b"]


# -- full disk --------------------------------------------------------------------------------
@contextlib.contextmanager
def _tmpfs(options: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pvf", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
        root.rmdir()


def _fill(root: Path, *, inodes: bool) -> None:
    """Use up the file system's bytes (or its inodes)."""
    n = 0
    with contextlib.suppress(OSError):
        if inodes:
            while True:
                (root / f".f{n}").touch()
                n += 1
        with open(root / ".filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()


#: commands that need an inode but no bytes (an empty marker file, a sparse volume)
INODE_ONLY = ("autostart", "pool-autostart", "net-autostart", "vol-create-as")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("inodes", [False, True], ids=["bytes", "inodes"])
def test_full_state_disk(inodes: bool, tmp_path: Path) -> None:
    with _tmpfs("size=1M,nr_inodes=64") as root:
        pv = Pyvirt(root)
        (tmp_path / "img").write_bytes(b"\0" * 4096)
        pv("define", _xml(pv, "d"))
        pv("define", _xml(pv, "e", _disk(str(tmp_path / "img"))))
        pv("pool-list", "--all")
        pv("net-define", _net(tmp_path))
        pv("pool-define-as", "p0", "dir", "--target", str(tmp_path / "p0"))
        redefine = tmp_path / "d2.xml"
        # a changed definition: more memory (and its current memory with it)
        changed = re.sub(r"<memory[^>]*>[^<]*</memory>", "<memory unit='KiB'>131072</memory>",
                         pv("dumpxml", "d").out)  # fmt: skip
        changed = re.sub(r"<currentMemory[^>]*>[^<]*</currentMemory>", "", changed)
        redefine.write_text(changed)
        _fill(root, inodes=inodes)
        commands = [
            ("define", _xml_outside(tmp_path, "f")),
            ("define", str(redefine)),
            ("domrename", "d", "d2"),
            ("setmaxmem", "d", "128M", "--config"),
            ("setvcpus", "d", "2", "--config", "--maximum"),
            ("memtune", "d", "--hard-limit", "1048576", "--config"),
            ("attach-disk", "d", str(tmp_path / "img"), "vdb", "--config"),
            ("detach-disk", "e", "vda", "--config"),
            ("autostart", "d"),
            ("pool-define-as", "p", "dir", "--target", str(tmp_path / "p")),
            ("vol-create-as", "default", "v.img", "64K", "--allocation", "0"),
            ("net-define", _net(tmp_path, "n2")),
            ("net-autostart", "n"),
            ("pool-autostart", "p0"),
        ]
        for args in commands:
            before = pv.snapshot()
            res = pv(*args, check=False)
            assert "Traceback" not in res.err, (args, res.err)
            if res.rc == 0 and args[0] in INODE_ONLY and not inodes:
                continue  # an empty marker or a sparse file needs an inode, not bytes
            assert res.rc == 1, (args, res)
            lines = res.err.splitlines()
            assert len(lines) in (1, 2) and lines[0].startswith("error: "), (args, res.err)
            assert "disk is full" in lines[0], (args, res.err)
            assert pv.snapshot() == before, args
        assert pv("list", "--all", "--name").out.split() == ["d", "e"]


def _xml_outside(tmp: Path, name: str) -> str:
    path = tmp / f"{name}.xml"
    path.write_text(DOM.format(name=name, devices=""))
    return str(path)


def _net(tmp: Path, name: str = "n") -> str:
    path = tmp / f"{name}.net.xml"
    path.write_text(f"<network><name>{name}</name><bridge name='pvh-{name}'/></network>")
    return str(path)


# -- storage in use ---------------------------------------------------------------------------
@pytest.mark.qemu
def test_storage_in_use_by_any_running_domain(pyvirt: Pyvirt, tiny_image: Any) -> None:
    pyvirt("vol-create-as", "default", "base.img", "16M")
    base = pyvirt("vol-path", "--pool", "default", "base.img").out.strip()
    overlay = pyvirt.root / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, str(overlay)],
        check=True,
    )
    disk = (
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{overlay}'/><target dev='vda' bus='virtio'/></disk>"
    )
    (pyvirt.root / "a.xml").write_text(domain_xml(tiny_image, "a", extra_devices=disk))
    pyvirt("define", str(pyvirt.root / "a.xml"))
    # B is shut off and shares A's overlay and base
    shared = _disk(str(overlay)) + _disk(base, "vdb")
    (pyvirt.root / "b.xml").write_text(domain_xml(tiny_image, "b", extra_devices=shared))
    pyvirt("define", str(pyvirt.root / "b.xml"))
    pyvirt("start", "a")
    wait_for(lambda: pyvirt("domstate", "a").out.startswith("running"), 30, "a running")
    hint = "shut the domain down or detach the disk first"
    refused(pyvirt, "undefine", "b", "--remove-all-storage",
            error=f"cannot remove '{overlay}': it is in use by running domain 'a'",
            hint=hint)  # fmt: skip
    refused(pyvirt, "undefine", "b", "--storage", "vdb",
            error=f"cannot remove '{base}': it is in use by running domain 'a'",
            hint=hint)  # fmt: skip
    for verb in ("delete", "wipe"):
        refused(pyvirt, f"vol-{verb}", "base.img", "--pool", "default",
                error=f"cannot {verb} volume 'base.img': it is in use by running domain 'a'",
                hint=hint if verb == "delete" else "shut the domain down first")  # fmt: skip
    assert overlay.exists() and os.path.exists(base)
    pyvirt("destroy", "a")
    assert pyvirt("undefine", "b", "--storage", "vdb").out == (
        f"Volume '{base}' removed.\nDomain 'b' has been undefined\n\n"
    )
