"""The argv pyvirt learnt from libvirt's larger test corpus is accepted by the installed QEMU:
pci-bridges added when pci.0 is full, PCIe switch ports, ICH9 USB companions, socket NICs, EGD
rng backends, USB host devices, the iTCO watchdog, a D-Bus p2p display and
``<qemu:commandline>`` arguments. Each domain starts paused (``-S``) and is quit over QMP.
(A vhost-user NIC is left out: QEMU waits for its backend to connect before it starts.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.model.domain import Domain

from .test_argv_qemu import _domain, _start_and_quit

pytestmark = pytest.mark.qemu


def _pc(tmp: Path) -> str:
    nics = "".join(
        f"<interface type='user'><mac address='52:54:00:00:10:{i:02x}'/>"
        "<model type='e1000'/></interface>"
        for i in range(34)
    )
    return (
        nics
        + f"""
    <interface type='server'><mac address='52:54:00:00:20:01'/>
      <source address='127.0.0.1' port='0'/></interface>
    <rng model='virtio'><backend model='egd' type='unix'>
      <source mode='bind' path='{tmp / "egd.sock"}'/></backend></rng>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0104'/>
      </source></hostdev>"""
    )


def _q35(tmp: Path) -> str:
    return """
    <controller type='pci' model='pcie-root'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-switch-upstream-port'/>
    <controller type='pci' model='pcie-switch-downstream-port'/>
    <controller type='pci' model='pcie-switch-downstream-port'/>
    <controller type='pci' model='dmi-to-pci-bridge'/>
    <controller type='usb' model='ich9-ehci1'/>
    <controller type='usb' model='ich9-uhci1'/>
    <controller type='usb' model='ich9-uhci2'/>
    <controller type='usb' model='ich9-uhci3'/>
    <input type='tablet' bus='usb'/>
    <watchdog model='itco' action='reset'/>
    <graphics type='dbus' p2p='yes'/>"""


@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_qemu_accepts_libvirt_corpus_argv(qemu_binary: str, tmp_path: Path, machine: str) -> None:
    devices = _pc(tmp_path) if machine == "pc" else _q35(tmp_path)
    xml = _domain(f"more-{machine}", machine, devices).replace(
        "</domain>",
        "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:arg value='-global'/><qemu:arg value='kvm-pit.lost_tick_policy=delay'/>"
        "</qemu:commandline></domain>",
    )
    domain = Domain.from_xml(xml)
    _start_and_quit(qemu_binary, domain, tmp_path)
