"""Generic device attach/detach on a fake running guest: what ``object-add``/``device_add``
receive is exactly what ``build_argv`` gives the resulting live XML at boot; kinds QEMU cannot
hot-plug are refused live with the reason and accepted with --config; detach finds a device by
matching its XML."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError, UnsupportedError
from pyvirt.model.domain import Domain
from pyvirt.model.xmltree import parse_xml
from pyvirt.service.device import generic
from tests.unit.service.conftest import Guest


def _boot(g: Guest) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``-device`` and ``-object`` by id, and the ``-action`` values, of the live XML."""
    ctx = ArgvContext(
        run_dir=g.mgr.paths.domain_run_dir(g.name), log_dir=g.mgr.paths.domain_log_dir(g.name)
    )
    devices: dict[str, Any] = {}
    objects: dict[str, Any] = {}
    actions: list[str] = []
    for opt, value in itertools.pairwise(build_argv(g.live(), ctx)):
        if opt == "-device" and value.startswith("{"):
            devices[json.loads(value)["id"]] = json.loads(value)
        elif opt == "-object" and value.startswith("{"):
            objects[json.loads(value)["id"]] = json.loads(value)
        elif opt == "-action":
            actions.append(value)
    return devices, objects, actions


def _attach(g: Guest, xml: str, **flags: bool) -> generic.Change:
    return generic.attach(g.mgr, g.name, parse_xml(xml), **flags)


def _detach(g: Guest, xml: str, **flags: bool) -> generic.Change:
    return generic.detach(g.mgr, g.name, parse_xml(xml), **flags)


def test_hotplugged_rng_watchdog_and_input_are_the_boot_devices(guest: Guest) -> None:
    guest.qmp.on("object-add", {})
    guest.qmp.on("set-action", {})
    rng = _attach(guest, "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")
    wdt = _attach(guest, "<watchdog model='i6300esb' action='poweroff'/>")
    kbd = _attach(guest, "<input type='keyboard' bus='virtio'/>")
    assert (rng.alias, wdt.alias, kbd.alias) == ("rng0", "watchdog0", "input0")
    assert (rng.live, rng.config) == (True, False)
    devices, objects, actions = _boot(guest)
    added = {d["id"]: d for d in guest.qmp.calls("device_add")}
    assert added == {k: devices[k] for k in ("rng0", "watchdog0", "input0")}
    assert added["rng0"]["driver"] == "virtio-rng-pci" and added["rng0"]["addr"] == "0x4"
    assert added["watchdog0"]["addr"] == "0x5" and added["input0"]["addr"] == "0x6"
    assert guest.qmp.calls("object-add") == [objects["objrng0"]]
    assert guest.qmp.calls("set-action") == [{"watchdog": "poweroff"}]
    assert actions[-1] == "watchdog=poweroff"
    live = guest.live()
    assert [r.alias for r in live.devices.rngs] == ["rng0"]
    assert live.devices.rngs[0].address is not None  # where it sits is recorded
    assert "rng" not in guest.mgr.dumpxml(guest.name, inactive=True)


def test_detach_matches_xml_and_waits_for_the_guest(guest: Guest) -> None:
    guest.qmp.on("object-add", {})
    guest.qmp.on("object-del", {})
    _attach(guest, "<rng model='virtio'><backend model='builtin'/></rng>")
    _attach(guest, "<rng model='virtio'><backend model='random'/></rng>")
    with pytest.raises(InvalidConfigError, match=r"2 <rng> devices .* match"):
        _detach(guest, "<rng model='virtio'/>")
    with pytest.raises(NotFoundError, match="no matching <rng>"):
        _detach(guest, "<rng model='virtio'><backend model='egd'/></rng>")
    got = _detach(guest, "<rng model='virtio'><backend model='builtin'/></rng>")
    assert got.alias == "rng0"
    assert guest.qmp.calls("device_del") == [{"id": "rng0"}]
    assert guest.qmp.calls("object-del") == [{"id": "objrng0"}]
    assert [r.alias for r in guest.live().devices.rngs] == ["rng1"]
    _detach(guest, "<rng><alias name='rng1'/></rng>")
    assert guest.live().devices.rngs == []


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<controller type='scsi' index='1' model='virtio-scsi'/>", "cannot hot-plug controllers"),
        ("<serial type='pty'><target port='1'/></serial>", "cannot hot-plug serial ports"),
        ("<console type='pty'/>", "cannot hot-plug consoles"),
        ("<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' "
         "function='0'/></source></hostdev>", "needs VFIO hot-plug"),
        ("<input type='keyboard' bus='ps2'/>", "PS/2 input devices are part of the machine"),
        ("<watchdog model='ib700'/>", "ISA device"),
    ],
)  # fmt: skip
def test_refused_live_accepted_in_the_definition(guest: Guest, xml: str, reason: str) -> None:
    before = guest.mgr.dumpxml(guest.name, inactive=True)
    with pytest.raises(UnsupportedError, match=reason) as err:
        _attach(guest, xml)
    assert err.value.hint and "--config" in err.value.hint
    with pytest.raises(UnsupportedError, match=reason):
        _attach(guest, xml, persistent=True)  # live + config: nothing changes
    assert guest.mgr.dumpxml(guest.name, inactive=True) == before
    assert guest.qmp.calls("device_add") == []
    got = _attach(guest, xml, config=True)
    assert (got.alias, got.live, got.config) == (None, False, True)
    tag = parse_xml(xml).tag
    stored = Domain.from_xml(guest.mgr.dumpxml(guest.name, inactive=True))
    assert [d for d in stored.devices if d.element.tag == tag]
    assert not [d for d in guest.live().devices if d.element.tag == tag]
    _detach(guest, xml, config=True)
    assert guest.mgr.dumpxml(guest.name, inactive=True) == before


def test_config_attach_validates_and_drops_aliases(guest: Guest) -> None:
    _attach(guest, "<watchdog model='i6300esb'><alias name='mine'/></watchdog>", config=True)
    assert "mine" not in guest.mgr.dumpxml(guest.name, inactive=True)
    with pytest.raises(InvalidConfigError):
        _attach(guest, "<watchdog model='bogus'/>", config=True)


def test_affect_flags(guest: Guest) -> None:
    with pytest.raises(InvalidConfigError, match="--current and --live"):
        _attach(guest, "<rng model='virtio'/>", current=True, live=True)
    guest.qmp.stop()
    (guest.run_dir / "runtime.json").unlink(missing_ok=True)
    for f in guest.run_dir.glob("*.json"):
        f.unlink()
    with pytest.raises(InvalidStateError, match="is not running"):
        _attach(guest, "<rng model='virtio'/>", live=True)


def test_live_refusal_table() -> None:
    from pyvirt.model.devices import Input, Watchdog

    assert generic.live_refusal("rng", Input()) is None
    assert generic.live_refusal("input", Input(type="tablet")) is None  # USB by default
    assert generic.live_refusal("input", Input(type="mouse")) is not None  # PS/2
    assert generic.live_refusal("watchdog", Watchdog(model="i6300esb")) is None
    assert (
        generic.live_refusal("panic", Input()) == "<panic> devices cannot be hot-plugged by pyvirt"
    )
