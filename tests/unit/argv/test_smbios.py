"""<sysinfo type='smbios'> lowers to -smbios tables only with <smbios mode='sysinfo'/>."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import UnsupportedError
from pyvirt.model.domain import Domain

XML = """<domain type='qemu'><name>s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<sysinfo type='smbios'>
  <bios><entry name='vendor'>pyvirt</entry></bios>
  <system><entry name='manufacturer'>Acme, Inc.</entry><entry name='product'>VM</entry></system>
  <oemStrings><entry>hello</entry><entry>world</entry></oemStrings>
</sysinfo>
<os><type arch='x86_64' machine='pc'>hvm</type><smbios mode='sysinfo'/></os></domain>"""


def argv(xml: str, tmp_path: object) -> list[str]:
    from pathlib import Path

    root = Path(str(tmp_path))
    return build_argv(Domain.from_xml(xml), ArgvContext(run_dir=root / "r", log_dir=root / "l"))


def smbios_args(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "-smbios"]


def test_sysinfo_tables(tmp_path: object) -> None:
    dom = Domain.from_xml(XML)
    assert dom.warnings == []
    assert smbios_args(argv(XML, tmp_path)) == [
        "type=0,vendor=pyvirt",
        "type=1,manufacturer=Acme,, Inc.,product=VM",
        "type=11,value=hello",
        "type=11,value=world",
    ]


def test_no_mode_no_tables(tmp_path: object) -> None:
    assert smbios_args(argv(XML.replace("<smbios mode='sysinfo'/>", ""), tmp_path)) == []


def test_unknown_entry_refused(tmp_path: object) -> None:
    with pytest.raises(UnsupportedError, match="entry 'colour'"):
        argv(XML.replace("name='product'", "name='colour'"), tmp_path)


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed")
def test_qemu_accepts_tables(tmp_path: object) -> None:
    tables = smbios_args(argv(XML, tmp_path))
    cmd = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults",
           "-display", "none", "-S", "-no-user-config"]  # fmt: skip
    for t in tables:
        cmd += ["-smbios", t]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=1.5)
        pytest.fail(f"QEMU refused the tables: {proc.stderr.read() if proc.stderr else ''}")
    except subprocess.TimeoutExpired:
        pass  # still running: it accepted them
    finally:
        proc.kill()
        proc.wait()
