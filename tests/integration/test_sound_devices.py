"""Sound cards, the audio backend, a PC-speaker, a panic device and a USB hub on a real guest
(issue 14): the guest sees the cards on the PCI slots the definition stores; a device pyvirt
cannot run is refused at start, naming it, instead of being left out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.nethelp import shell
from tests.integration.test_lifecycle import domain_xml, state, wait_marker

pytestmark = pytest.mark.qemu

DEVICES = """<controller type='usb' model='piix3-uhci'/>
<sound model='pcspk'/><sound model='ich9'><codec type='micro'/></sound><sound model='ac97'/>
<hub type='usb'/><panic model='isa'/>"""


def test_sound_cards_on_their_stored_slots(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "s.xml"
    path.write_text(domain_xml(tiny_image, "s1", extra_devices=DEVICES))
    pyvirt("define", str(path))
    xml = pyvirt("dumpxml", "s1").out
    assert "<audio id='1' type='none'/>" in xml
    slots = dict(re.findall(r"<sound model='(\w+)'>.*?slot='(0x[0-9a-f]+)'", xml, re.S))
    assert set(slots) == {"ich9", "ac97"}, xml
    pyvirt("start", "s1")
    try:
        wait_marker(pyvirt, "s1")
        # vendor:device of each PCI function, by slot, as the guest sees them
        out = shell(pyvirt, "s1", "for d in /sys/bus/pci/devices/*; do "
                    "echo PCI $d $(cat $d/vendor) $(cat $d/device); done")  # fmt: skip
        seen = {int(s, 16): (v, d) for s, v, d in
                re.findall(r"PCI \S+:00:([0-9a-f]{2})\.0 (0x\w+) (0x\w+)", out)}  # fmt: skip
        assert seen[int(slots["ich9"], 16)] == ("0x8086", "0x293e"), out  # ICH9 HD Audio
        assert seen[int(slots["ac97"], 16)] == ("0x8086", "0x2415"), out  # 82801AA AC'97
    finally:
        pyvirt("destroy", "s1")


def test_a_device_pyvirt_cannot_run_is_refused_by_name(pyvirt: Pyvirt, tiny_image: Any) -> None:
    shmem = "<shmem name='shm0'><model type='ivshmem-plain'/></shmem>"
    path = pyvirt.root / "f.xml"
    path.write_text(domain_xml(tiny_image, "f1", extra_devices=shmem))
    pyvirt("define", str(path))
    res = pyvirt("start", "f1", check=False)
    assert res.rc == 1 and "<shmem> devices are not supported yet" in res.err, res.err
    assert len(res.err.strip().splitlines()) <= 2  # the error line and its hint
    assert state(pyvirt, "f1").startswith("shut off")


def test_a_dimm_is_memory_the_guest_sees(pyvirt: Pyvirt, tiny_image: Any) -> None:
    dimm = ("<memory model='dimm'><target><size unit='MiB'>128</size></target>"
            "<address type='dimm' slot='1'/></memory>")  # fmt: skip
    xml = domain_xml(tiny_image, "m1", extra_devices=dimm).replace(
        "<memory unit='MiB'>160</memory>",
        "<maxMemory slots='4' unit='MiB'>1024</maxMemory><memory unit='MiB'>288</memory>",
    )
    path = pyvirt.root / "m.xml"
    path.write_text(xml)
    pyvirt("define", str(path))
    pyvirt("start", "m1")
    try:
        wait_marker(pyvirt, "m1")
        # hot-pluggable memory starts at 4 GiB; memory blocks are 128 MiB on x86-64
        out = shell(pyvirt, "m1", "ls /sys/devices/system/memory/")
        assert "memory32" in out, out  # the DIMM's block, beside the boot RAM's
    finally:
        pyvirt("destroy", "m1")
