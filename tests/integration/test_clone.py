"""``pyvirt clone`` with real guests: a full clone boots beside its original with its own MAC,
a linked clone is an overlay on the original's disk, deleting a clone keeps the original."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.conftest import TINY_CMDLINE
from tests.integration.test_install import wait_console

pytestmark = pytest.mark.qemu

SHOW_MAC = "cat /sys/class/net/eth0/address"


def install_tiny(pv: Pyvirt, image: Any, name: str, *, graphics: str = "none") -> Path:
    """The tiny guest through ``pyvirt install --import`` with a qcow2 data disk."""
    disk = pv.root / f"{name}.qcow2"
    run = base64.b64encode(SHOW_MAC.encode()).decode()
    args = f"{TINY_CMDLINE} pyvirt.run={run}"
    pv("install", "--name", name, "--memory", "160", "--import", "--virt-type", "qemu",
       "--boot", f'kernel={image.kernel},initrd={image.initrd},kernel_args="{args}"',
       "--disk", f"path={disk},size=0.05", "--network", "type=user", "--graphics", graphics,
       "--noautoconsole", "--os-variant", "linux2022")  # fmt: skip
    return disk


def qemu_img_info(path: Path) -> dict[str, Any]:
    argv = ["qemu-img", "info", "-U", "--output=json", str(path)]
    out = subprocess.run(argv, capture_output=True, check=True, text=True).stdout
    info = json.loads(out)
    assert isinstance(info, dict)
    return info


def guest_mac(pv: Pyvirt, name: str) -> str:
    log = wait_console(pv, name, "PYVIRT-RUN-END", 120)
    out = log.split("PYVIRT-RUN-BEGIN", 1)[1].split("PYVIRT-RUN-END", 1)[0]
    match = re.search(r"([0-9a-f]{2}(:[0-9a-f]{2}){5})", out)
    assert match, out
    return match.group(1)


def xml_mac(pv: Pyvirt, name: str) -> str:
    return re.findall(r"<mac address='([^']+)'", pv("dumpxml", name, "--inactive").out)[0]


def test_clone_boots_beside_original(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = install_tiny(pyvirt, tiny_image, "orig")
    wait_console(pyvirt, "orig", "PYVIRT-TINY-READY", 120)
    # a running original is refused; paused is fine
    res = pyvirt("clone", "--original", "orig", "--auto-clone", check=False)
    assert res.rc == 1 and "domain 'orig' is running" in res.err and "--force" in res.err
    pyvirt("suspend", "orig")
    out = pyvirt("clone", "--original", "orig", "--auto-clone").out
    assert "Clone 'orig-clone' created successfully." in out
    pyvirt("resume", "orig")
    clone_disk = disk.with_name("orig-clone.qcow2")
    assert clone_disk.exists()
    info = qemu_img_info(clone_disk)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    orig_xml = pyvirt("dumpxml", "orig", "--inactive").out
    clone_xml = pyvirt("dumpxml", "orig-clone", "--inactive").out
    uuid = re.compile(r"<uuid>([^<]+)</uuid>")
    assert uuid.findall(orig_xml) != uuid.findall(clone_xml)
    assert xml_mac(pyvirt, "orig") != xml_mac(pyvirt, "orig-clone")
    assert str(disk) not in clone_xml and str(clone_disk) in clone_xml
    pyvirt("start", "orig-clone")
    # both run at once, each guest sees its own MAC on eth0
    assert guest_mac(pyvirt, "orig") == xml_mac(pyvirt, "orig")
    assert guest_mac(pyvirt, "orig-clone") == xml_mac(pyvirt, "orig-clone")
    assert pyvirt("domstate", "orig").out.strip() == "running"
    # --force on a running original warns about consistency
    forced = pyvirt("clone", "--original", "orig", "--name", "hot", "--file",
                    str(pyvirt.root / "hot.qcow2"), "--force")  # fmt: skip
    assert "may be inconsistent" in forced.err
    assert (pyvirt.root / "hot.qcow2").exists()


def test_linked_clone_and_delete(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = install_tiny(pyvirt, tiny_image, "base")
    pyvirt("destroy", "base")
    before = disk.read_bytes()
    res = pyvirt("clone", "-o", "base", "-n", "lc", "--linked", "-f", str(pyvirt.root / "lc.qcow2"))
    assert "keep 'base' shut off" in res.err
    overlay = pyvirt.root / "lc.qcow2"
    info = qemu_img_info(overlay)
    assert info["backing-filename"] == str(disk) and info["backing-filename-format"] == "qcow2"
    pyvirt("start", "lc")
    size = (int(0.05 * 1024**3) + 511) // 512 * 512  # size=0.05 GiB, in whole sectors
    wait_console(pyvirt, "lc", f"PYVIRT-DISKS vda {size}", 120)
    pyvirt("destroy", "lc")
    out = pyvirt("undefine", "lc", "--remove-all-storage").out
    assert f"Volume '{overlay}' removed." in out
    assert not overlay.exists() and disk.read_bytes() == before
    assert "base" in pyvirt("list", "--all", "--name").out.split()
    # a writable disk is never shared: --preserve-data with the original's own file fails
    same = pyvirt("clone", "-o", "base", "-n", "x", "-f", str(disk), "--preserve-data",
                  check=False)  # fmt: skip
    assert same.rc == 1 and "is the original's disk" in same.err


def test_undefine_storage_some_disks(pyvirt: Pyvirt, tiny_image: Any) -> None:
    a, b = pyvirt.root / "a.qcow2", pyvirt.root / "b.qcow2"
    pyvirt("install", "-n", "two", "--import", "--disk", f"path={a},size=0.01", "--disk",
           f"path={b},size=0.01", "--network", "none", "--graphics", "none",
           "--virt-type", "qemu", "--boot", f"kernel={tiny_image.kernel}",
           "--noautoconsole")  # fmt: skip
    pyvirt("destroy", "two")
    bad = pyvirt("undefine", "two", "--storage", "vdz", check=False)
    assert bad.rc == 1 and "domain 'two' has no disk 'vdz'" in bad.err
    out = pyvirt("undefine", "two", "--storage", "vdb").out
    assert f"Volume '{b}' removed." in out and a.exists() and not b.exists()


def test_linked_clone_is_fast(pyvirt: Pyvirt, tiny_image: Any) -> None:
    install_tiny(pyvirt, tiny_image, "src")
    pyvirt("destroy", "src")
    start = time.monotonic()
    pyvirt("clone", "-o", "src", "-n", "fast", "--linked", "--auto-clone", "-q")
    elapsed = time.monotonic() - start
    assert elapsed < 5.0  # the CLI process included; bench/linked_clone.py measures it finely
