"""QEMU firmware descriptors: the search path, precedence and the choice among them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.host.firmware import Wanted, load_descriptors, search_dirs, select

LIBVIRT_LIKE = Path(__file__).resolve().parents[2] / "data" / "host" / "firmware" / "libvirt-like"


def descriptor(code: str, machines: list[str], features: list[str], **mapping: object) -> str:
    m: dict[str, object] = {"device": "flash", "executable": {"filename": code, "format": "raw"}}
    m["nvram-template"] = {"filename": code.replace("CODE", "VARS"), "format": "raw"}
    m.update(mapping)
    return json.dumps(
        {
            "interface-types": ["uefi"],
            "mapping": m,
            "targets": [{"architecture": "x86_64", "machines": machines}],
            "features": features,
        }
    )


def test_search_path_is_libvirts() -> None:
    assert search_dirs({"HOME": "/home/u"}) == [
        Path("/home/u/.config/qemu/firmware"),
        Path("/etc/qemu/firmware"),
        Path("/usr/share/qemu/firmware"),
    ]
    assert search_dirs({"XDG_CONFIG_HOME": "/x"})[0] == Path("/x/qemu/firmware")
    assert search_dirs({"PYVIRT_FIRMWARE_PATH": "/a:/b", "HOME": "/h"}) == [Path("/a"), Path("/b")]


def test_precedence_masking_and_order(tmp_path: Path) -> None:
    user, etc, share = (tmp_path / d for d in ("user", "etc", "share"))
    for d in (user, etc, share):
        d.mkdir()
    (share / "50-a.json").write_text(descriptor("/s/A_CODE.fd", ["pc-q35-*"], []))
    (share / "60-b.json").write_text(descriptor("/s/B_CODE.fd", ["pc-q35-*"], []))
    (share / "70-c.json").write_text(descriptor("/s/C_CODE.fd", ["pc-q35-*"], []))
    (etc / "50-a.json").write_text(descriptor("/e/A_CODE.fd", ["pc-q35-*"], []))
    (user / "60-b.json").write_text("")  # an empty file hides the system's
    (user / "10-first.json").write_text(descriptor("/u/F_CODE.fd", ["pc-q35-*"], []))
    (user / "20-broken.json").write_text("{not json")
    (share / "notes.txt").write_text("ignored")
    found = load_descriptors([user, etc, share])
    assert [d.executable for d in found] == ["/u/F_CODE.fd", "/e/A_CODE.fd", "/s/C_CODE.fd"]
    assert found[0].nvram_template == "/u/F_VARS.fd" and found[0].mode == "split"
    assert load_descriptors([tmp_path / "absent"]) == []


def test_debian_descriptor_shape(tmp_path: Path) -> None:
    (tmp_path / "60-edk2-x86_64.json").write_text(
        descriptor("/usr/share/OVMF/OVMF_CODE_4M.fd", ["pc-i440fx-*", "pc-q35-*"], ["acpi-s3"])
    )
    (d,) = load_descriptors([tmp_path])
    assert d.boots("x86_64", "pc-i440fx-7.2") and d.boots("x86_64", "pc-q35-7.2")
    assert not d.boots("aarch64", "virt") and not d.boots("x86_64", "microvm")
    # machine aliases match their family
    assert select([d], Wanted("uefi", "x86_64", "pc")) is d
    assert select([d], Wanted("uefi", "x86_64", "q35")) is d


@pytest.mark.parametrize(
    ("wanted", "unmet"),
    [
        (Wanted("uefi", "x86_64", "q35", loader="/path/to/OVMF_CODE.fd"), "the loader /path/to"),
        (
            Wanted("uefi", "x86_64", "q35", nvram_template="/path/to/OVMF_VARS.fd"),
            "the NVRAM template /path/to/OVMF_VARS.fd",
        ),
        (Wanted("uefi", "x86_64", "q35", readonly=False), "a writable loader (readonly='no'"),
        (Wanted("uefi", "aarch64", "virt"), "architecture aarch64 and machine virt"),
        (Wanted("uefi", "x86_64", "pc", features={"secure-boot": True}), "feature secure-boot"),
        (Wanted("uefi", "x86_64", "pc", secure=True), "a secure loader (requires-smm)"),
        (Wanted("uefi", "x86_64", "q35", features={"secure-boot": True}, smm=False), "no SMM"),
    ],
)
def test_unmet_requirement_is_named(wanted: Wanted, unmet: str) -> None:
    descs = load_descriptors([LIBVIRT_LIKE])
    with pytest.raises(InvalidConfigError, match=re.escape(unmet)) as err:
        select(descs, wanted)
    assert "unable to find 'efi' firmware compatible with the current configuration" in str(
        err.value
    )


def test_first_fitting_descriptor_wins() -> None:
    descs = load_descriptors([LIBVIRT_LIKE])
    q35 = select(descs, Wanted("uefi", "x86_64", "pc-q35-7.2"))
    assert q35.executable.endswith("OVMF_CODE.secboot.fd")
    assert {"secure-boot", "enrolled-keys"} <= q35.features
    pc = select(descs, Wanted("uefi", "x86_64", "pc-i440fx-7.2"))
    assert pc.executable.endswith("/OVMF_CODE.fd")
    off = select(descs, Wanted("uefi", "x86_64", "q35", features={"enrolled-keys": False}))
    assert off.nvram_template is not None and off.nvram_template.endswith("/OVMF_VARS.fd")
    stateless = select(descs, Wanted("uefi", "x86_64", "q35", stateless=True))
    assert stateless.mode == "stateless" and stateless.nvram_template is None
    sev = select(descs, Wanted("uefi", "x86_64", "q35", stateless=True, sev=True))
    assert "amd-sev" in sev.features
