"""The affect-flag rule on real guests: every verb that changes a domain × a running, a
shut-off and a transient tiny guest × the flags, with the expected outcome (the live
definition changed, the persistent one changed, or libvirt's exact error).

The three guests boot once and serve every row; each row uses a value of its own, so a row
cannot pass on what an earlier one did. Rows that need no QEMU (every refusal, every
config-only change) are also in ``tests/unit/service/test_affect.py``; here they run against
real domain states too, because the rule must see them the way the verbs do.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyvirt.errors import PyvirtError, UnsupportedError
from pyvirt.model.domain import Domain
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths
from tests.conftest import Pyvirt, kill_leftovers
from tests.integration.test_lifecycle import domain_xml, wait_marker
from tests.unit.service.test_affect import BOTH, CONFIG, FLAGS, LIVE, STATES, Affect

pytestmark = pytest.mark.qemu

NAMES = {"running": "ar", "shut off": "ao", "transient": "at"}
DEVICES = """
    <graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='first'/>
    <memballoon model='virtio'/>
"""


@dataclass
class Guests:
    mgr: DomainManager
    image_dir: Path


@pytest.fixture(scope="module")
def guests(tiny_image: Any) -> Iterator[Guests]:
    root = Path(tempfile.mkdtemp(prefix="pva", dir="/tmp"))
    mgr = DomainManager(StatePaths.from_root(root))
    try:
        for state, name in NAMES.items():
            xml = domain_xml(tiny_image, name, extra_devices=DEVICES)
            xml = xml.replace("<vcpu>1</vcpu>", "<vcpu current='1'>2</vcpu>")
            if state == "transient":
                mgr.create(xml)
            else:
                mgr.define(xml)
                if state == "running":
                    mgr.start(name)
        for name in (NAMES["running"], NAMES["transient"]):
            wait_marker(Pyvirt(root), name)  # booted: ACPI hotplug works from now on
        yield Guests(mgr, root)
    finally:
        from pyvirt.service.domain import lifecycle

        for name in NAMES.values():
            with contextlib.suppress(PyvirtError):
                lifecycle.destroy(mgr, name)
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


_values = itertools.count(1)


@dataclass
class Verb:
    """How to call a verb with flags, and how to see its change in a definition."""

    call: Callable[[DomainManager, str, int, dict[str, bool]], Any]
    changed: Callable[[Domain, int], bool]
    persistent_flag: bool = False
    #: the error a live change gives on a running guest instead (QEMU cannot do it)
    live_error: tuple[type[PyvirtError], str] | None = None
    #: undo an attach so the next row starts clean (name, value, affect)
    undo: Callable[[DomainManager, str, int, Affect], None] | None = None


def _disk_file(mgr: DomainManager, value: int) -> str:
    # beside the state root, not in it: pyvirt refuses its own state files as disks
    root = mgr.paths.cache.parent
    disks = root.with_name(root.name + "-disks")
    if not disks.is_dir():
        disks.mkdir()
        atexit.register(shutil.rmtree, disks, True)
    path = disks / f"disk{value}.img"
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    return str(path)


def _attach_disk(mgr: DomainManager, name: str, value: int, flags: dict[str, bool]) -> None:
    from pyvirt.service.disk.attach import DiskManager
    from pyvirt.service.disk.options import DiskOptions

    opts = DiskOptions(source=_disk_file(mgr, value), target="vdz", bus="virtio")
    DiskManager(mgr).attach(name, opts, **flags)


def _detach_disk(mgr: DomainManager, name: str, value: int, flags: dict[str, bool]) -> None:
    from pyvirt.service.disk.attach import DiskManager

    DiskManager(mgr).detach(name, "vdz", **flags)


def _undo_disk(mgr: DomainManager, name: str, value: int, done: Affect) -> None:
    _detach_disk(mgr, name, value, {"live": done.live, "config": done.config})


def _mac(value: int) -> str:
    return f"52:54:00:b2:{value // 256:02x}:{value % 256:02x}"


def _nets(mgr: DomainManager) -> Any:
    from pyvirt.service.network.networks import NetworkManager

    return NetworkManager(mgr.paths)


def _attach_nic(mgr: DomainManager, name: str, value: int, flags: dict[str, bool]) -> None:
    from pyvirt.service.nic import attach

    attach.attach(_nets(mgr), name, "user", "", model="virtio", mac=_mac(value), target=None,
               **flags)  # fmt: skip


def _detach_nic(mgr: DomainManager, name: str, value: int, flags: dict[str, bool]) -> None:
    from pyvirt.service.nic import attach

    attach.detach(_nets(mgr), name, "user", mac=_mac(value), **flags)


def _undo_nic(mgr: DomainManager, name: str, value: int, done: Affect) -> None:
    _detach_nic(mgr, name, value, {"live": done.live, "config": done.config})


def _has_nic(d: Domain, v: int) -> bool:
    return any((i.mac or "") == _mac(v) for i in d.devices.interfaces)


def _verbs() -> dict[str, Verb]:
    from pyvirt.service.domain.display import update_device
    from pyvirt.service.nic import ops
    from pyvirt.service.tuning import cpu, memory

    def kib(v: int) -> int:
        return 131072 + 8 * v

    def vnc(v: int) -> str:
        return f"<graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='pw{v}'/>"

    return {
        "setmem": Verb(
            lambda m, n, v, f: memory.set_mem(m, n, kib(v), **f),
            lambda d, v: d.current_memory_kib == kib(v)),
        "setmaxmem": Verb(
            lambda m, n, v, f: memory.set_max_mem(m, n, 200000 + v, **f),
            lambda d, v: d.memory_kib == 200000 + v,
            live_error=(UnsupportedError, "domain 'd' is running; its maximum memory cannot "
                        "change live")),
        "setvcpus": Verb(
            # only up: unplugging a TCG vCPU crashes QEMU 7.2 (call_rcu segfault)
            lambda m, n, v, f: cpu.set_vcpus(m, n, 2, **f),
            lambda d, v: (d.vcpu.current or d.vcpu.count) == 2),
        "vcpupin": Verb(
            lambda m, n, v, f: cpu.vcpu_pin(m, n, 0, str(v % 2), **f),
            lambda d, v: d.cputune is not None and d.cputune.pin_of(0) == str(v % 2)),
        "emulatorpin": Verb(
            lambda m, n, v, f: cpu.emulator_pin(m, n, str(v % 2), **f),
            lambda d, v: d.cputune is not None and d.cputune.emulatorpin == str(v % 2)),
        "schedinfo": Verb(
            lambda m, n, v, f: cpu.sched_info(m, n, {"cpu_shares": 500 + v}, **f),
            lambda d, v: d.cputune is not None and d.cputune.shares == 500 + v),
        "memtune": Verb(
            lambda m, n, v, f: memory.mem_tune(m, n, hard_kib=4000000 + v, **f),
            lambda d, v: d.memtune is not None and d.memtune.hard_limit_kib == 4000000 + v),
        "dommemstat-period": Verb(
            lambda m, n, v, f: memory.set_stats_period(m, n, v, **f),
            lambda d, v: d.devices.memballoon is not None and d.devices.memballoon.period == v),
        "attach-disk": Verb(
            _attach_disk,
            lambda d, v: any(x.source_path == f"disk{v}.img" or
                             (x.source_path or "").endswith(f"/disk{v}.img")
                             for x in d.devices.disks),
            persistent_flag=True, undo=_undo_disk),
        "detach-disk": Verb(
            _detach_disk,
            lambda d, v: not any(x.target_dev == "vdz" for x in d.devices.disks),
            persistent_flag=True),
        "attach-interface": Verb(_attach_nic, _has_nic, persistent_flag=True, undo=_undo_nic),
        "detach-interface": Verb(
            _detach_nic, lambda d, v: not _has_nic(d, v), persistent_flag=True),
        "domif-setlink": Verb(
            lambda m, n, v, f: ops.set_link(_nets(m), n, _mac(v), "down", **f),
            lambda d, v: any(i.mac == _mac(v) and i.link_state == "down"
                             for i in d.devices.interfaces),
            undo=_undo_nic),
        "update-device": Verb(
            lambda m, n, v, f: update_device(m, n, vnc(v), **f),
            lambda d, v: d.devices.graphics[0].passwd == f"pw{v}", persistent_flag=True),
    }  # fmt: skip


VERBS = _verbs()


def _rows() -> list[Any]:
    rows = []
    for verb, spec in VERBS.items():
        for flags, expected in FLAGS:
            if "current" in flags or ("persistent_flag" in flags and not spec.persistent_flag):
                continue
            for i, state in enumerate(STATES):
                outcome = expected[i]
                if verb == "domif-setlink" and flags.get("live") and flags.get("config"):
                    continue  # virsh's domif-setlink has no --live
                rows.append(
                    pytest.param(
                        verb,
                        state,
                        flags,
                        outcome,
                        id=f"{verb}-{state}-{'+'.join(flags) or 'none'}",
                    )
                )
    return rows  # fmt: skip


def _prepare(g: Guests, verb: str, name: str, value: int, outcome: Affect) -> None:
    """Give a detach (or a link change) its device, where the row expects a change."""
    if verb == "detach-disk":
        _attach_disk(g.mgr, name, value, {"live": outcome.live, "config": outcome.config})
    elif verb in ("detach-interface", "domif-setlink"):
        _attach_nic(g.mgr, name, value, {"live": outcome.live, "config": outcome.config})


@pytest.mark.parametrize(("verb", "state", "flags", "expected"), _rows())
def test_verb_on_real_guest(
    guests: Guests, verb: str, state: str, flags: dict[str, bool], expected: Any
) -> None:
    mgr, name, spec = guests.mgr, NAMES[state], VERBS[verb]
    running, persistent = STATES[state]
    value = next(_values)
    kwargs = dict(flags)
    if "persistent_flag" in kwargs:
        kwargs["persistent"] = kwargs.pop("persistent_flag")
    if isinstance(expected, Affect) and expected.live and spec.live_error is not None:
        expected = spec.live_error
    if isinstance(expected, tuple):
        before = (mgr.dumpxml(name, inactive=True) if persistent else None,
                  mgr.dumpxml(name) if running else None)  # fmt: skip
        cls, message = expected
        with pytest.raises(cls) as info:
            spec.call(mgr, name, value, kwargs)
        assert info.value.message == message.replace("domain 'd'", f"domain '{name}'")
        after = (mgr.dumpxml(name, inactive=True) if persistent else None,
                 mgr.dumpxml(name) if running else None)  # fmt: skip
        assert after == before  # refused: nothing changed
        return
    assert expected in (LIVE, CONFIG, BOTH)
    _prepare(guests, verb, name, value, expected)
    live_before = mgr.dumpxml(name) if running else None
    config_before = mgr.dumpxml(name, inactive=True) if persistent else None
    spec.call(mgr, name, value, kwargs)
    try:  # the side in scope shows the change; the other is untouched, byte for byte
        if running and expected.live:
            assert spec.changed(mgr.definition(name), value), "the live definition"
        elif running:
            assert mgr.dumpxml(name) == live_before
        if persistent and expected.config:
            assert spec.changed(mgr.definition(name, inactive=True), value), "the definition"
        elif persistent:
            assert mgr.dumpxml(name, inactive=True) == config_before
    finally:
        if spec.undo is not None:
            spec.undo(mgr, name, value, expected)
    assert (mgr.status(name).pid is not None) == running  # the guest survived the row


def test_guests_still_healthy(guests: Guests) -> None:
    """After every row the running guests still run, and nothing leaked into the shut-off
    guest's live state."""
    mgr = guests.mgr
    assert mgr.status(NAMES["running"]).pid is not None
    assert mgr.status(NAMES["transient"]).pid is not None
    assert mgr.status(NAMES["shut off"]).pid is None
    assert not mgr.rundir(NAMES["shut off"]).exists()
    assert os.path.isdir(mgr.paths.domain_run_dir(NAMES["running"]))
