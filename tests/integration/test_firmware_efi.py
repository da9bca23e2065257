"""``<os firmware='efi'>`` chosen from the host's firmware descriptors (Debian's ``ovmf``): define
writes the OVMF loader and NVRAM template into the definition, the first start creates the
domain's NVRAM file from the template, OVMF boots the tiny guest's kernel through its EFI stub
(the kernel finds EFI runtime services) and writes its variables into that file, and a second
start keeps them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pyvirt.host.firmware import load_descriptors
from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import console_log, domain_xml, wait_for

pytestmark = pytest.mark.qemu


def test_efi_autoselected_boots_with_its_nvram(pyvirt: Pyvirt, tiny_image: Any) -> None:
    if not any("uefi" in d.interfaces and d.boots("x86_64", "pc-i440fx-7.2")
               for d in load_descriptors()):  # fmt: skip
        pytest.skip("no UEFI firmware descriptor for i440fx (Debian package ovmf)")
    xml = domain_xml(tiny_image, "efi1").replace("<os>", "<os firmware='efi'>")
    xml = xml.replace(" quiet ", " ")  # the kernel's first lines say whether it runs on EFI
    # OVMF starts a bzImage through its EFI stub (not the PVH vmlinux SeaBIOS tests use)
    xml = xml.replace(f"<kernel>{tiny_image.kernel}<", f"<kernel>{tiny_image.bzimage}<")
    path = pyvirt.root / "efi1.xml"
    path.write_text(xml)
    pyvirt("define", str(path))

    stored = pyvirt("dumpxml", "efi1", "--inactive").out
    loader = re.search(r"<loader readonly='yes' type='pflash'>([^<]+)</loader>", stored)
    nvram = re.search(r"<nvram template='([^']+)'>([^<]+)</nvram>", stored)
    assert loader and nvram, stored
    assert "<feature enabled='no' name='secure-boot'/>" in stored
    template, vars_file = Path(nvram.group(1)), Path(nvram.group(2))
    assert vars_file == pyvirt.root / "lib" / "nvram" / "efi1_VARS.fd"
    assert not vars_file.exists()  # created at the first start, not at define

    pyvirt("start", "efi1")
    assert vars_file.stat().st_size == template.stat().st_size
    # OVMF started the kernel (its EFI stub), which found EFI runtime services
    log = console_log(pyvirt, "efi1")
    try:
        wait_for(lambda: log.exists() and b"efi: EFI v" in log.read_bytes(), 120, "EFI boot")
    except AssertionError:
        qemu_log = log.with_name("qemu.log")
        tails = [p.read_bytes()[-1500:] for p in (log, qemu_log) if p.exists()]
        raise AssertionError(f"no EFI boot; console and QEMU logs end with {tails}") from None
    assert b"secureboot: Secure boot disabled" in log.read_bytes()
    # QEMU runs with the descriptor's code and the domain's own variable store
    argv = pyvirt("domxml-to-native", "qemu-argv", "--domain", "efi1").out
    assert loader.group(1) in argv and str(vars_file) in argv
    # OVMF wrote its boot variables into the domain's store, not into the template
    assert vars_file.read_bytes() != template.read_bytes()
    pyvirt("destroy", "efi1")
    pyvirt("start", "efi1")  # a second start keeps the guest's variables
    assert vars_file.read_bytes() != template.read_bytes()

    # undefine, as virsh: refused while the NVRAM file exists, unless --nvram / --keep-nvram
    res = pyvirt("undefine", "efi1", check=False)
    assert res.rc == 1 and "NVRAM file" in res.err and "--keep-nvram" in res.err, res.err
    res = pyvirt("undefine", "--nvram", "efi1", check=False)  # QEMU still uses it
    assert res.rc == 1 and "running" in res.err, res.err
    assert vars_file.exists() and pyvirt("list", "--all", "--name").out.split() == ["efi1"]
    pyvirt("destroy", "efi1")
    kept = vars_file.read_bytes()
    pyvirt("undefine", "--keep-nvram", "efi1")
    assert vars_file.read_bytes() == kept
    pyvirt("define", str(path))  # the same name finds its variables again
    pyvirt("undefine", "--nvram", "efi1")
    assert not vars_file.exists()
    assert pyvirt("list", "--all", "--name").out.strip() == ""
