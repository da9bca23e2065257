"""``<os firmware='efi'>`` resolved at define from firmware descriptors, as libvirt does: the
choice written into the definition, the refusals naming the unmet requirement, the NVRAM file
made from its template at start, and the argv of a secure loader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

import pyvirt.api
from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, PyvirtError
from pyvirt.host.firmware import load_descriptors
from pyvirt.model.domain import Domain
from pyvirt.service.domain.firmware import autoselect, create_nvram
from tests.unit.compat.test_libvirt_corpus import CORPUS

LIBVIRT_LIKE = Path(__file__).resolve().parents[2] / "data" / "host" / "firmware" / "libvirt-like"
LIBVIRT_NVRAM = Path("/var/lib/libvirt/qemu/nvram")

XML = """<domain type='qemu'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu>
<os firmware='efi'><type arch='x86_64' machine='{machine}'>hvm</type>{os}</os>
<features><acpi/>{features}</features></domain>"""


def dom(os_: str = "", *, machine: str = "q35", features: str = "", name: str = "f") -> Domain:
    return Domain.from_xml(XML.format(name=name, machine=machine, os=os_, features=features))


def os_facts(os_el: etree._Element) -> tuple[object, ...]:
    loader, nvram = os_el.find("loader"), os_el.find("nvram")
    feats = {f.get("name"): f.get("enabled") for f in os_el.findall("firmware/feature")}
    assert loader is not None
    nv = None if nvram is None else (nvram.text, nvram.get("template"), nvram.get("format"))
    return loader.text, dict(loader.attrib), nv, feats


def auto_cases() -> list[Path]:
    if CORPUS is None:
        return []
    return sorted((CORPUS / "public-more").glob("firmware-auto-efi*"))


@pytest.mark.skipif(CORPUS is None, reason="libvirt corpus not found")
@pytest.mark.parametrize("case", auto_cases(), ids=lambda p: p.name)
def test_same_choice_as_libvirt(case: Path) -> None:
    """On descriptors like those libvirt's tests mock, pyvirt writes what libvirt writes."""
    d = Domain.from_xml((case / "domain.xml").read_bytes())
    autoselect(d, LIBVIRT_NVRAM, load_descriptors([LIBVIRT_LIKE]))
    expected = etree.fromstring((case / "expected-out.xml").read_bytes())
    exp_os = expected.find("os")
    assert exp_os is not None
    assert os_facts(d.os.element) == os_facts(exp_os)
    smm, exp_smm = d.element.find("features/smm"), expected.find("features/smm")
    assert (smm is None) == (exp_smm is None)
    if smm is not None and exp_smm is not None:
        assert smm.get("state") == exp_smm.get("state")


@pytest.mark.parametrize(
    ("os_", "unmet"),
    [
        ("<loader readonly='yes' type='pflash'>/path/to/OVMF_CODE.fd</loader>", "the loader"),
        ("<nvram template='/path/to/OVMF_VARS.fd'/>", "the NVRAM template /path/to/"),
        ("<loader readonly='no'/>", "a writable loader"),
    ],
)
def test_no_fitting_descriptor_refused(os_: str, unmet: str) -> None:
    with pytest.raises(InvalidConfigError, match=re.escape(unmet)):
        autoselect(dom(os_), LIBVIRT_NVRAM, load_descriptors([LIBVIRT_LIKE]))


def test_not_efi_untouched() -> None:
    d = Domain.from_xml(XML.format(name="b", machine="pc", os="", features="").replace(
        "firmware='efi'", "firmware='bios'"))  # fmt: skip
    before = d.to_xml()
    assert autoselect(d, LIBVIRT_NVRAM, load_descriptors([LIBVIRT_LIKE])) is None
    assert d.to_xml() == before


def test_define_stores_the_choice_and_is_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYVIRT_FIRMWARE_PATH", str(LIBVIRT_LIKE))
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path}")
    conn.domains.define(XML.format(name="f1", machine="q35", os="", features=""))
    stored = conn.domains.get("f1").xml_desc(inactive=True)
    assert "<loader readonly='yes' secure='yes' type='pflash'>" in stored
    assert "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd</loader>" in stored
    nvram = tmp_path / "lib" / "nvram" / "f1_VARS.fd"
    assert f"<nvram template='/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd'>{nvram}</nvram>" in stored
    assert "<smm state='on'/>" in stored
    assert "<feature enabled='yes' name='secure-boot'/>" in stored
    conn.domains.define(stored)  # the stored choice fits the same descriptor again
    assert conn.domains.get("f1").xml_desc(inactive=True) == stored
    argv = conn.domains.native_argv(stored.encode())
    assert "driver=cfi.pflash01,property=secure,value=on" in argv
    assert any("smm=on" in a for a in argv)
    with pytest.raises(PyvirtError, match=re.escape("the loader /path/to/OVMF_CODE.fd")):
        conn.domains.define(
            XML.format(
                name="f2",
                machine="q35",
                os="<loader readonly='yes' type='pflash'>/path/to/OVMF_CODE.fd</loader>",
                features="",
            )
        )


def test_nvram_from_template_once(tmp_path: Path) -> None:
    template = tmp_path / "VARS.fd"
    template.write_bytes(b"T" * 4096)
    nvram = tmp_path / "nvram" / "d_VARS.fd"
    assert create_nvram(nvram, template)
    assert nvram.read_bytes() == template.read_bytes()
    assert nvram.stat().st_mode & 0o777 == 0o600
    nvram.write_bytes(b"guest variables")
    assert not create_nvram(nvram, template)  # a later start keeps the guest's variables
    assert nvram.read_bytes() == b"guest variables"
    with pytest.raises(InvalidConfigError, match="from the template"):
        create_nvram(tmp_path / "other_VARS.fd", tmp_path / "missing.fd")
    assert not (tmp_path / "other_VARS.fd").exists()


def test_pflash_formats_in_argv(tmp_path: Path) -> None:
    d = dom("<loader format='qcow2'/>", features="<smm state='off'/>")
    autoselect(d, tmp_path, load_descriptors([LIBVIRT_LIKE]))
    assert (d.os.loader.path or "").endswith("/OVMF_CODE_4M.qcow2")  # type: ignore[union-attr]
    assert any("smm=off" in a for a in build_argv(d, ArgvContext(tmp_path, tmp_path)))
    d = dom("<nvram format='qcow2'/>", machine="pc")
    autoselect(d, tmp_path, load_descriptors([LIBVIRT_LIKE]))
    argv = build_argv(d, ArgvContext(run_dir=tmp_path, log_dir=tmp_path))
    text = " ".join(argv)
    assert '"driver":"qcow2"' in text and "f_VARS.qcow2" in text
    assert "cfi.pflash01" not in text and "smm=" not in text


def test_writable_loader_from_a_combined_image(tmp_path: Path) -> None:
    (tmp_path / "10-combined.json").write_text(
        json.dumps(
            {
                "interface-types": ["uefi"],
                "mapping": {
                    "device": "flash",
                    "mode": "combined",
                    "executable": {"filename": "/fw/OVMF.fd", "format": "raw"},
                },
                "targets": [{"architecture": "x86_64", "machines": ["pc-i440fx-*"]}],
                "features": [],
            }
        )
    )
    d = dom("<loader readonly='no'/>", machine="pc")
    desc = autoselect(d, tmp_path, load_descriptors([tmp_path]))
    assert desc is not None and desc.mode == "combined"
    loader = d.os.loader
    assert loader is not None and loader.readonly is False and loader.path == "/fw/OVMF.fd"
    assert d.os.nvram is None  # the variables live in the image itself
    d = dom(machine="pc")  # without readonly='no' a combined image is writable as well
    autoselect(d, tmp_path, load_descriptors([tmp_path]))
    assert d.os.loader is not None and d.os.loader.readonly is False
