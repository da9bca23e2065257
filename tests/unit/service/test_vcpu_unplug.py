"""Live vCPU unplug: refused for TCG domains (QEMU's TCG crashes after a vCPU goes away);
for KVM, ``setvcpus`` returns only once QEMU no longer lists the vCPUs, and times out with an
error (nothing recorded) when the guest keeps them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.errors import OperationFailedError, UnsupportedError
from pyvirt.service.tuning import cpu
from tests.unit.service.conftest import GUEST_XML, Guest, _start

CPU_TYPE = "qemu64-x86_64-cpu"


def _slot(socket: int, path: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "props": {"core-id": 0, "thread-id": 0, "socket-id": socket},
        "vcpus-count": 1,
        "type": CPU_TYPE,
    }
    if path:
        out["qom-path"] = path
    return out


class Slots:
    """query-hotpluggable-cpus with sockets 0 (boot), 1 and 2 (hot-plugged) present; a
    ``device_del`` takes its vCPU away after ``delay`` more queries (never when ``None``)."""

    def __init__(self, delay: int | None) -> None:
        self.present = {0: "/machine/unattached/device[0]",
                        1: "/machine/peripheral/vcpu0-1-0",
                        2: "/machine/peripheral/vcpu0-2-0"}  # fmt: skip
        self.delay = delay
        self.pending: dict[int, int] = {}

    def query(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        for sock in list(self.pending):
            self.pending[sock] -= 1
            if self.pending[sock] <= 0:
                del self.pending[sock], self.present[sock]
        return [_slot(s, self.present.get(s)) for s in (3, 1, 0, 2)]

    def device_del(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.delay is not None:
            self.pending[int(args["id"].split("-")[1])] = self.delay
        return {}


def _serve(g: Guest, slots: Slots) -> None:
    g.qmp.on_call("query-hotpluggable-cpus", slots.query)
    g.qmp.on_call("device_del", slots.device_del)


@pytest.fixture
def kvm_guest(sock_dir: Path) -> Iterator[Guest]:
    g = _start(sock_dir, GUEST_XML.replace("<domain type='qemu'>", "<domain type='kvm'>"))
    try:
        yield g
    finally:
        g.qmp.stop()


def test_tcg_live_unplug_is_refused_before_anything_is_sent(guest: Guest) -> None:
    _serve(guest, Slots(delay=1))
    with pytest.raises(UnsupportedError, match="cannot be unplugged while a TCG") as exc:
        cpu.set_vcpus(guest.mgr, guest.name, 2, live=True)
    assert exc.value.hint == "lower the count with --config and restart the domain"
    assert guest.qmp.calls("device_del") == []
    assert guest.live().vcpu.current == 1  # unchanged


def test_tcg_config_only_lowering_still_works(guest: Guest) -> None:
    cpu.set_vcpus(guest.mgr, guest.name, 2, config=True)
    assert guest.mgr.definition(guest.name, inactive=True).vcpu.current == 2
    assert guest.qmp.calls("device_del") == []


def test_kvm_unplug_waits_until_qemu_lists_the_vcpus_no_more(kvm_guest: Guest) -> None:
    slots = Slots(delay=3)
    _serve(kvm_guest, slots)
    cpu.set_vcpus(kvm_guest.mgr, kvm_guest.name, 1, live=True)
    assert kvm_guest.qmp.calls("device_del") == [{"id": "vcpu0-2-0"}, {"id": "vcpu0-1-0"}]
    assert sorted(slots.present) == [0]
    assert len(kvm_guest.qmp.calls("query-hotpluggable-cpus")) >= 4
    assert kvm_guest.live().vcpu.current == 1


def test_kvm_unplug_times_out_without_reporting_success(
    kvm_guest: Guest, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(kvm_guest, Slots(delay=None))
    monkeypatch.setattr(cpu, "UNPLUG_TIMEOUT", 0.5)
    before = kvm_guest.live().vcpu.current
    with pytest.raises(OperationFailedError, match=r"did not release vCPU\(s\) vcpu0-2-0 within"):
        cpu.set_vcpus(kvm_guest.mgr, kvm_guest.name, 2, live=True)
    assert kvm_guest.live().vcpu.current == before  # nothing recorded
