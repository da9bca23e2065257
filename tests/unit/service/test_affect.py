"""The one affect-flag rule (libvirt's ``--live/--config/--current/--persistent``) as a table,
then every domain-changing verb against it: shut-off, running and transient domains, without
QEMU (a "running" domain here is a runtime record naming this test process, which is alive).

Rows whose outcome is a change to the running QEMU need a real guest; they are in
``tests/integration/test_affect.py``. Here: every refusal, and every config-only change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.process import starttime
from pyvirt.drivers.qemu.runtime import RuntimeRecord
from pyvirt.errors import InvalidConfigError, InvalidStateError, PyvirtError
from pyvirt.service.domain.affect import Affect, resolve
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths

NOT_RUNNING = (InvalidStateError, "domain 'd' is not running")
TRANSIENT = (
    InvalidStateError,
    "domain 'd' is transient: transient domains do not have any persistent config",
)
CURRENT_LIVE = (InvalidConfigError, "options --current and --live are mutually exclusive")
CURRENT_CONFIG = (InvalidConfigError, "options --current and --config are mutually exclusive")
CURRENT_PERSISTENT = (
    InvalidConfigError,
    "options --current and --persistent are mutually exclusive",
)
LIVE = Affect(live=True, config=False)
CONFIG = Affect(live=False, config=True)
BOTH = Affect(live=True, config=True)

#: domain states: (running, persistent)
STATES = {"running": (True, True), "shut off": (False, True), "transient": (True, False)}

#: flags -> expected outcome per state (running, shut off, transient)
FLAGS: list[tuple[dict[str, bool], tuple[Any, Any, Any]]] = [
    ({}, (LIVE, CONFIG, LIVE)),
    ({"current": True}, (LIVE, CONFIG, LIVE)),
    ({"live": True}, (LIVE, NOT_RUNNING, LIVE)),
    ({"config": True}, (CONFIG, CONFIG, TRANSIENT)),
    ({"live": True, "config": True}, (BOTH, NOT_RUNNING, TRANSIENT)),
    ({"persistent_flag": True}, (BOTH, CONFIG, TRANSIENT)),
    ({"persistent_flag": True, "live": True}, (BOTH, NOT_RUNNING, TRANSIENT)),
    ({"persistent_flag": True, "config": True}, (BOTH, CONFIG, TRANSIENT)),
    ({"current": True, "live": True}, (CURRENT_LIVE,) * 3),
    ({"current": True, "config": True}, (CURRENT_CONFIG,) * 3),
    ({"current": True, "persistent_flag": True}, (CURRENT_PERSISTENT,) * 3),
]

RULE_ROWS = [
    pytest.param(state, flags, expected[i], id=f"{state}-{'+'.join(flags) or 'none'}")
    for flags, expected in FLAGS
    for i, state in enumerate(STATES)
]


def check(outcome: Any, call: Callable[[], Any]) -> Any:
    """Run ``call``; assert it raises the error of ``outcome`` or returns."""
    if isinstance(outcome, tuple):
        cls, message = outcome
        with pytest.raises(PyvirtError) as info:
            call()
        assert type(info.value) is cls
        assert info.value.message == message
        return None
    return call()


@pytest.mark.parametrize(("state", "flags", "expected"), RULE_ROWS)
def test_rule(state: str, flags: dict[str, bool], expected: Any) -> None:
    running, persistent = STATES[state]
    got = check(expected, lambda: resolve("d", running=running, persistent=persistent, **flags))
    if not isinstance(expected, tuple):
        assert got == expected


# -- every verb against the rule ----------------------------------------------------------------
DOMAIN = """<domain type='qemu'>
  <name>d</name>
  <uuid>5d1f9b1e-1a37-4f44-9d43-2c1f6a0e5b11</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
    <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/>
      <target dev='vnet0'/><alias name='net0'/></interface>
    <graphics type='vnc' port='5901' keymap='en-us'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def make(tmp_path: Path, state: str) -> DomainManager:
    """A domain 'd' that is running, shut off or transient ("running": a record of us)."""
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    running, persistent = STATES[state]
    if persistent:
        mgr.define(DOMAIN)
    if running:
        run = mgr.rundir("d")
        run.create()
        run.write_live_xml(DOMAIN)
        run.save_record(
            RuntimeRecord(
                name="d", uuid="5d1f9b1e-1a37-4f44-9d43-2c1f6a0e5b11", pid=os.getpid(),
                starttime=starttime(os.getpid()), qmp_socket=str(run.path / "qmp.sock"),
                events_socket=str(run.path / "events.sock"), log_path=str(tmp_path / "log"),
                argv=[], domain_id=1,
            )
        )  # fmt: skip
    return mgr


def _disk_opts() -> Any:
    from pyvirt.service.disk.options import DiskOptions

    return DiskOptions(source="/dev/null", target="vdz", bus="virtio")


def _nets(mgr: DomainManager) -> Any:
    from pyvirt.service.network.networks import NetworkManager

    return NetworkManager(mgr.paths)


CDROM = "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>"


def _verbs() -> dict[str, tuple[Callable[..., Any], Callable[[Any], bool], bool]]:
    """verb -> (call(mgr, **flags), check that the definition changed, has --persistent)."""
    from pyvirt.service.disk.attach import DiskManager
    from pyvirt.service.domain.display import update_device
    from pyvirt.service.nic import attach as nic_attach
    from pyvirt.service.nic import ops as nics
    from pyvirt.service.tuning import cpu, memory

    return {
        "setmem": (
            lambda m, **f: memory.set_mem(m, "d", 131072, **f),
            lambda d: d.current_memory_kib == 131072, False),
        "setmaxmem": (
            lambda m, **f: memory.set_max_mem(m, "d", 200000, **f),
            lambda d: d.memory_kib == 200000, False),
        "setvcpus": (
            lambda m, **f: cpu.set_vcpus(m, "d", 1, **f), lambda d: d.vcpu.current == 1, False),
        "vcpupin": (
            lambda m, **f: cpu.vcpu_pin(m, "d", 0, "0", **f),
            lambda d: d.cputune is not None and d.cputune.pin_of(0) == "0", False),
        "emulatorpin": (
            lambda m, **f: cpu.emulator_pin(m, "d", "0", **f),
            lambda d: d.cputune is not None and d.cputune.emulatorpin == "0", False),
        "schedinfo": (
            lambda m, **f: cpu.sched_info(m, "d", {"cpu_shares": 512}, **f),
            lambda d: d.cputune is not None and d.cputune.shares == 512, False),
        "numatune": (
            lambda m, **f: cpu.numa_tune(m, "d", "strict", "0", **f),
            lambda d: d.numatune is not None and d.numatune.nodeset == "0", False),
        "memtune": (
            lambda m, **f: memory.mem_tune(m, "d", hard_kib=300000, **f),
            lambda d: d.memtune is not None and d.memtune.hard_limit_kib == 300000, False),
        "dommemstat-period": (
            lambda m, **f: memory.set_stats_period(m, "d", 5, **f),
            lambda d: d.devices.memballoon.period == 5, False),
        "attach-disk": (
            lambda m, **f: DiskManager(m).attach("d", _disk_opts(), **f),
            lambda d: any(x.target_dev == "vdz" for x in d.devices.disks), True),
        "detach-disk": (
            lambda m, **f: DiskManager(m).detach("d", "hdc", **f),
            lambda d: not any(x.target_dev == "hdc" for x in d.devices.disks), True),
        "attach-interface": (
            lambda m, **f: nic_attach.attach(_nets(m), "d", "bridge", "br1", model=None,
                                       mac="52:54:00:00:00:02", target=None, **f),
            lambda d: len(d.devices.interfaces) == 2, True),
        "detach-interface": (
            lambda m, **f: nic_attach.detach(_nets(m), "d", "bridge", mac=None, **f),
            lambda d: not d.devices.interfaces, True),
        "domif-setlink": (
            lambda m, **f: nics.set_link(_nets(m), "d", "52:54:00:00:00:01", "down", **f),
            lambda d: d.devices.interfaces[0].link_state == "down", False),
        "update-device": (
            lambda m, **f: update_device(
                m, "d", CDROM.replace("<target", "<source file='/dev/null'/><target"), **f),
            lambda d: d.devices.disks[0].source_path == "/dev/null", True),
    }  # fmt: skip


VERB_NAMES = list(_verbs())


def _rows() -> list[Any]:
    rows = []
    for verb in VERB_NAMES:
        has_persistent = _verbs()[verb][2]
        for flags, expected in FLAGS:
            if "current" in flags or ("persistent_flag" in flags and not has_persistent):
                continue  # --current is the CLI's spelling of no flag; see test_rule
            for i, state in enumerate(STATES):
                outcome = expected[i]
                if isinstance(outcome, Affect) and outcome.live:
                    continue  # needs QEMU: tests/integration/test_affect.py
                rows.append(
                    pytest.param(verb, state, flags, outcome,
                                 id=f"{verb}-{state}-{'+'.join(flags) or 'none'}")
                )  # fmt: skip
    return rows


@pytest.mark.parametrize(("verb", "state", "flags", "expected"), _rows())
def test_verb(tmp_path: Path, verb: str, state: str, flags: dict[str, bool], expected: Any) -> None:
    mgr = make(tmp_path, state)
    call, changed, _ = _verbs()[verb]
    kwargs = dict(flags)
    if "persistent_flag" in kwargs:
        kwargs["persistent"] = kwargs.pop("persistent_flag")
    before = mgr.dumpxml("d", inactive=True) if STATES[state][1] else None
    check(expected, lambda: call(mgr, **kwargs))
    if isinstance(expected, tuple):  # refused: nothing changed
        if before is not None:
            assert mgr.dumpxml("d", inactive=True) == before
        return
    assert expected == CONFIG
    assert changed(mgr.definition("d", inactive=True))
    if STATES[state][0]:  # running: the live definition is untouched
        assert not changed(mgr.definition("d"))


def test_setmaxmem_live_is_refused(tmp_path: Path) -> None:
    """QEMU's RAM size is fixed at start: --live (or --current on a running domain) fails."""
    from pyvirt.errors import UnsupportedError
    from pyvirt.service.tuning import memory

    mgr = make(tmp_path, "running")
    with pytest.raises(UnsupportedError, match="maximum memory cannot change live"):
        memory.set_max_mem(mgr, "d", 200000)
