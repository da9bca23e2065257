"""update-device beyond graphics and media, on a fake running guest: a NIC's link state
changes live through QMP, any other live change is refused with the reason, the definition
side replaces the device found by its identity."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError
from pyvirt.service.device.update import update_device
from tests.unit.service.conftest import Guest

NIC = (
    "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
    "{link}<alias name='net0'/></interface>"
)


def _with_nic(guest: Guest) -> None:
    nic = NIC.format(link="")
    live = (guest.run_dir / "domain.xml").read_text().replace("<memballoon", nic + "<memballoon")
    (guest.run_dir / "domain.xml").write_text(live)
    xml = guest.mgr.dumpxml(guest.name, inactive=True)
    guest.mgr.store.write(guest.name, xml.replace("<memballoon", nic + "<memballoon"))


def test_nic_link_state_live(guest: Guest) -> None:
    _with_nic(guest)
    guest.qmp.on("set_link", {})
    update_device(guest.mgr, guest.name, NIC.format(link="<link state='down'/>"))
    assert guest.qmp.calls("set_link") == [{"name": "net0", "up": False}]
    [nic] = guest.live().devices.interfaces
    assert nic.link_state == "down" and nic.alias == "net0"
    assert "state='down'" not in guest.mgr.dumpxml(guest.name, inactive=True)


def test_other_live_changes_are_refused(guest: Guest) -> None:
    _with_nic(guest)
    e1000 = NIC.format(link="").replace("virtio", "e1000")
    with pytest.raises(UnsupportedError, match="only its link state"):
        update_device(guest.mgr, guest.name, e1000)
    with pytest.raises(UnsupportedError, match="only its link state"):
        update_device(guest.mgr, guest.name, e1000, persistent=True)  # nothing changes
    assert "e1000" not in guest.mgr.dumpxml(guest.name, inactive=True)
    update_device(guest.mgr, guest.name, e1000, config=True)
    stored = guest.mgr.dumpxml(guest.name, inactive=True)
    assert "e1000" in stored and "net0" not in stored
    assert guest.qmp.calls("set_link") == []


def test_identity(guest: Guest) -> None:
    with pytest.raises(NotFoundError, match="no matching <interface>"):
        update_device(guest.mgr, guest.name, NIC.format(link=""), config=True)
    ctl = "<controller type='usb' index='{i}' model='{m}'/>"
    xml = guest.mgr.dumpxml(guest.name, inactive=True)
    extra = ctl.format(i=0, m="piix3-uhci") + ctl.format(i=1, m="piix3-uhci")
    guest.mgr.store.write(guest.name, xml.replace("<memballoon", extra + "<memballoon"))
    update_device(guest.mgr, guest.name, ctl.format(i=1, m="qemu-xhci"), config=True)
    stored = guest.mgr.dumpxml(guest.name, inactive=True)
    assert "index='1' model='qemu-xhci'" in stored and "index='0' model='piix3-uhci'" in stored
    rng = "<rng model='virtio'><backend model='random'/></rng>"
    xml = guest.mgr.dumpxml(guest.name, inactive=True)
    guest.mgr.store.write(guest.name, xml.replace("<memballoon", rng + rng + "<memballoon"))
    with pytest.raises(InvalidConfigError, match="could be meant"):
        update_device(guest.mgr, guest.name, rng, config=True)
    with pytest.raises(UnsupportedError, match="cannot update <panic>"):
        update_device(guest.mgr, guest.name, "<panic/>", config=True)
