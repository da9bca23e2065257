"""Live and persistent CPU tuning of domains: vCPU count, pinning, scheduler, NUMA memory.

virsh's ``--live``/``--config``/``--current`` flags map to :class:`Scope` by the one rule of
:mod:`pyvirt.service.domain.affect`: the running QEMU (QMP, thread affinity, the domain's
cgroup; the live XML in the run dir follows) and/or the persistent definition. Memory use
cases are in :mod:`pyvirt.service.tuning.memory`; what is applied at start lives in
:mod:`pyvirt.service.tuning.hooks`.

Pinning works on threads: the monitor names each vCPU's thread; every other thread
of the QEMU process is an emulator thread. Affinity is set with ``sched_setaffinity`` and
read back from ``/proc/PID/task/TID/status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    OperationFailedError,
    PyvirtError,
    UnsupportedError,
)
from pyvirt.host import threads
from pyvirt.model.cpuset import parse_cpuset
from pyvirt.model.domain import Domain
from pyvirt.model.limits import machine_max_vcpus
from pyvirt.model.memory import NUMA_MODES, Numatune
from pyvirt.model.tune import Cputune
from pyvirt.model.validate import require_valid
from pyvirt.service.tuning.cgroup import place_in_cgroup

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.host.cgroups import DomainCgroup
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: cgroup code loads only
# when a verb needs the domain's cgroup.

SCHED_KEYS = ("cpu_shares", "vcpu_period", "vcpu_quota", "global_period", "global_quota")


@dataclass
class Scope:
    """Where a change goes: the running domain (``rec``) and/or its persistent definition."""

    name: str
    rec: RuntimeRecord | None
    live: bool
    config: bool


def scope(mgr: DomainManager, ident: str, *, live: bool = False, config: bool = False) -> Scope:
    """Resolve virsh's flags (:mod:`pyvirt.service.domain.affect`): neither flag means
    ``--current`` (live if running, else config).

    :raises InvalidStateError: ``--live`` on a shut-off domain, ``--config`` on a transient one
    """
    name = mgr.resolve(ident)
    with mgr.locked(name):
        affect = mgr.affect(name, live=live, config=config)
        rec = mgr.record(name) if affect.live else None
    return Scope(name, rec, affect.live, affect.config)


@contextmanager
def edit(mgr: DomainManager, sc: Scope) -> Iterator[list[Domain]]:
    """Yield the definitions in scope (live first) and write them back afterwards.

    Call it holding the domain lock; a domain that stopped since :func:`scope` is refused.

    :raises InvalidStateError: ``live`` in scope but the domain is no longer running
    """
    doms: list[tuple[Domain, Callable[[Domain], object]]] = []
    if sc.live:
        if mgr.live_record(sc.name, cleanup=True) is None:
            raise InvalidStateError(f"domain '{sc.name}' is not running", hint="start it first")
        doms.append((mgr.live_definition(sc.name), lambda d: mgr.save_live(sc.name, d)))
    if sc.config:
        cfg, revision = mgr.read_config(sc.name)  # checked against this revision at write
        doms.append((cfg, lambda d: mgr.write_config(sc.name, d, revision)))
    yield [d for d, _ in doms]
    for dom, _ in doms:
        require_valid(dom)  # the one validator of define: never write what cannot be read
    for dom, write in doms:
        write(dom)


def monitor(rec: RuntimeRecord) -> Monitor:
    """A QMP session to a running domain (use as a context manager)."""
    return Monitor(rec.qmp_socket)


def vcpu_threads(rec: RuntimeRecord) -> dict[int, int]:
    """vCPU index -> host thread id, as QEMU reports them."""
    with monitor(rec) as mon:
        return mon.vcpu_threads()


def emulator_threads(rec: RuntimeRecord, vcpus: dict[int, int]) -> list[int]:
    """Every thread of the QEMU process that is not a vCPU thread."""
    taken = set(vcpus.values())
    return [t for t in threads.thread_ids(rec.pid) if t not in taken]


def domain_cgroup(
    name: str, rec: RuntimeRecord, what: str, mgr: DomainManager | None = None
) -> DomainCgroup:
    """The cgroup the domain's QEMU runs in, made on demand for domains started without one.

    :raises UnsupportedError: QEMU is not in a pyvirt-made cgroup and none can be made
    """
    from pyvirt.host.cgroups import CgroupLayout, DomainCgroup  # lazy

    cg = DomainCgroup.of_pid(CgroupLayout.detect(), rec.pid)
    if cg.owned():
        return cg
    if mgr is not None:
        try:
            return place_in_cgroup(mgr, name, rec.pid)
        except PyvirtError as err:
            raise UnsupportedError(
                f"domain '{name}' has no cgroup of its own, so {what} cannot be applied live: "
                f"{err.message}",
                hint="run pyvirt as root on a host with the cpu, memory and cpuset controllers",
            ) from err
    raise UnsupportedError(
        f"domain '{name}' has no cgroup of its own, so {what} cannot be applied live",
        hint="restart the domain as root so that pyvirt places it in a cgroup",
    )


def max_vcpus(dom: Domain) -> int:
    """The most vCPUs the domain's machine type accepts (:mod:`pyvirt.model.limits`)."""
    return machine_max_vcpus(dom.os.machine)


# -- vCPU count --------------------------------------------------------------------------------
def vcpu_count(mgr: DomainManager, ident: str) -> dict[str, dict[str, int]]:
    """``{"maximum": {"config": N, "live": N}, "current": {...}}`` (live only when running)."""
    name = mgr.resolve(ident)
    out: dict[str, dict[str, int]] = {"maximum": {}, "current": {}}
    if mgr.store.exists(name):
        dom = mgr.definition(name, inactive=True)
        out["maximum"]["config"] = dom.vcpu.count
        out["current"]["config"] = dom.vcpu.current or dom.vcpu.count
    rec = mgr.live_record(name, cleanup=False)
    if rec is not None:
        live = mgr.definition(name)
        out["maximum"]["live"] = live.vcpu.count
        out["current"]["live"] = len(vcpu_threads(rec))
    return out


def set_vcpus(
    mgr: DomainManager,
    ident: str,
    count: int,
    *,
    live: bool = False,
    config: bool = False,
    maximum: bool = False,
) -> None:
    """Change the number of vCPUs (``--maximum``: the most it may get; config only).

    Live, vCPUs are hot-plugged into the empty slots QEMU lists (as devices of the CPU type
    it names), or unplugged (only vCPUs that were hot-plugged; the guest must release them,
    and the call returns only once QEMU no longer lists them). Live unplug is refused for a
    TCG domain (``type='qemu'``): QEMU's TCG corrupts its heap when a vCPU goes away and the
    guest dies soon after (seen with QEMU 7.2, whether or not the guest offlined the vCPU).

    :raises UnsupportedError: live unplug from a TCG domain, or of vCPUs present at boot
    :raises OperationFailedError: the guest did not release the vCPUs in time
    """
    sc = scope(mgr, ident, live=live, config=config)
    if maximum and sc.live:
        raise UnsupportedError(
            f"domain '{sc.name}': the maximum vCPU count cannot change while it runs",
            hint="use --config --maximum and restart the domain",
        )
    with mgr.locked(sc.name), edit(mgr, sc) as doms:
        for dom in doms:
            top = max_vcpus(dom)
            if count < 1 or count > top:
                raise InvalidConfigError(
                    f"vcpu count {count} is out of range 1-{top} for domain '{sc.name}' "
                    f"(machine '{dom.os.machine or 'pc'}')"
                )
            if maximum:
                current = min(dom.vcpu.current or dom.vcpu.count, count)
                dom.vcpu.count = count
                dom.vcpu.current = current if current < count else None
                continue
            if count > dom.vcpu.count:
                raise InvalidConfigError(
                    f"domain '{sc.name}' may have at most {dom.vcpu.count} vCPUs",
                    hint="raise the maximum first with --config --maximum",
                )
            dom.vcpu.current = count if count < dom.vcpu.count else None
        if sc.live and sc.rec is not None:
            _hotplug(sc.name, sc.rec, count, tcg=doms[0].type != "kvm")


#: seconds the guest gets to release unplugged vCPUs
UNPLUG_TIMEOUT = 15.0


def _hotplug(
    name: str, rec: RuntimeRecord, count: int, *, tcg: bool, timeout: float | None = None
) -> None:
    """Plug or unplug vCPUs until ``count`` are present (see :func:`set_vcpus`)."""

    with monitor(rec) as mon:
        slots = sorted(mon.query_hotpluggable_cpus(), key=lambda s: sorted(s.props.items()))
        present = [s for s in slots if s.qom_path]
        if count > len(present):
            for slot in [s for s in slots if not s.qom_path][: count - len(present)]:
                ident = "vcpu" + "-".join(str(v) for _, v in sorted(slot.props.items()))
                mon.device_add({"driver": slot.type, "id": ident, **slot.props})
        elif count < len(present):
            if tcg:
                raise UnsupportedError(
                    f"domain '{name}': vCPUs cannot be unplugged while a TCG (type='qemu') "
                    "domain runs, QEMU's TCG crashes after a vCPU unplug",
                    hint="lower the count with --config and restart the domain",
                )
            removable = [s for s in present if "/peripheral/" in (s.qom_path or "")]
            drop = len(present) - count
            if drop > len(removable):
                raise UnsupportedError(
                    f"domain '{name}': only hot-plugged vCPUs can be unplugged "
                    f"({len(removable)} of {len(present)})",
                    hint="lower the count with --config and restart the domain",
                )
            leaving = {s.qom_path for s in removable[-drop:]}
            for slot in reversed(removable[-drop:]):
                mon.device_del((slot.qom_path or "").rsplit("/", 1)[1])
            # device_del only asks the guest (ACPI eject): done is when QEMU lists them no more
            timeout = UNPLUG_TIMEOUT if timeout is None else timeout
            deadline = time.monotonic() + timeout
            while True:
                still = leaving & {s.qom_path for s in mon.query_hotpluggable_cpus()}
                if not still:
                    return
                if time.monotonic() >= deadline:
                    ids = ", ".join(sorted((p or "").rsplit("/", 1)[1] for p in still))
                    raise OperationFailedError(
                        f"domain '{name}': the guest did not release vCPU(s) {ids} "
                        f"within {timeout:g} s",
                        hint="the guest must support ACPI CPU hot-unplug; they may still go "
                        "later: check with 'vcpucount' and 'vcpuinfo'",
                    )
                time.sleep(0.2)


# -- pinning -----------------------------------------------------------------------------------
def vcpu_info(mgr: DomainManager, ident: str) -> list[dict[str, Any]]:
    """Per vCPU: ``vcpu``, ``cpu`` (host CPU it last ran on), ``state``, ``cpu_time`` (s),
    ``affinity`` (set of host CPUs) and ``thread``."""
    _name, rec = mgr.running(ident)
    state = "paused" if rec.paused else "running"
    out = []
    for vcpu, tid in sorted(vcpu_threads(rec).items()):
        info = threads.thread_info(rec.pid, tid)
        out.append(
            {"vcpu": vcpu, "thread": tid, "cpu": info.cpu, "state": state,
             "cpu_time": info.cpu_time, "affinity": set(info.affinity)}
        )  # fmt: skip
    return out


def vcpu_pin(
    mgr: DomainManager,
    ident: str,
    vcpu: int | None = None,
    cpulist: str | None = None,
    *,
    live: bool = False,
    config: bool = False,
) -> dict[int, set[int]]:
    """Pin vCPU ``vcpu`` to ``cpulist``; without them, return every vCPU's affinity.

    :returns: vCPU -> host CPUs (after the change; the kernel's view when live)
    """
    sc = scope(mgr, ident, live=live, config=config)
    all_cpus = threads.host_cpus()
    tids: dict[int, int] | None = None
    if cpulist is not None:
        if vcpu is None:
            raise InvalidConfigError("vcpupin needs a vCPU number with a CPU list")
        cpus = threads.check_cpus(cpulist)
        with mgr.locked(sc.name), edit(mgr, sc) as doms:
            for dom in doms:
                if not 0 <= vcpu < dom.vcpu.count:
                    raise InvalidConfigError(
                        f"domain '{sc.name}' has no vCPU {vcpu}",
                        hint=f"its vCPUs are 0-{dom.vcpu.count - 1}",
                    )
                _cputune(dom).set_pin(vcpu, None if cpus == all_cpus else cpulist)
            if sc.live and sc.rec is not None:
                tids = vcpu_threads(sc.rec)
                if vcpu not in tids:
                    raise InvalidStateError(f"vCPU {vcpu} of domain '{sc.name}' is not plugged")
                threads.set_affinity(sc.rec.pid, tids[vcpu], cpus)
    if sc.live and sc.rec is not None:
        tids = tids if tids is not None else vcpu_threads(sc.rec)
        return {v: set(threads.thread_info(sc.rec.pid, t).affinity)
                for v, t in sorted(tids.items())}  # fmt: skip
    dom = mgr.definition(sc.name, inactive=True)
    default = parse_cpuset(dom.vcpu.cpuset) if dom.vcpu.cpuset else all_cpus
    tune = dom.cputune
    return {
        v: parse_cpuset(p) if tune is not None and (p := tune.pin_of(v)) else default
        for v in range(dom.vcpu.count)
        if vcpu is None or v == vcpu
    }


def emulator_pin(
    mgr: DomainManager,
    ident: str,
    cpulist: str | None = None,
    *,
    live: bool = False,
    config: bool = False,
) -> set[int]:
    """Pin the emulator threads (all non-vCPU threads) to ``cpulist``; return the affinity."""
    sc = scope(mgr, ident, live=live, config=config)
    if cpulist is not None:
        cpus = threads.check_cpus(cpulist)
        with mgr.locked(sc.name), edit(mgr, sc) as doms:
            for dom in doms:
                _cputune(dom).emulatorpin = cpulist
            if sc.live and sc.rec is not None:
                for tid in emulator_threads(sc.rec, vcpu_threads(sc.rec)):
                    threads.set_affinity(sc.rec.pid, tid, cpus)
    if sc.live and sc.rec is not None:
        return set(threads.thread_info(sc.rec.pid, sc.rec.pid).affinity)
    tune = mgr.definition(sc.name, inactive=True).cputune
    if tune is not None and tune.emulatorpin:
        return parse_cpuset(tune.emulatorpin)
    return threads.host_cpus()


def iothread_info(mgr: DomainManager, ident: str) -> list[dict[str, Any]]:
    """Per I/O thread: ``id``, ``thread`` and ``affinity`` (as QEMU reports them)."""
    _name, rec = mgr.running(ident)
    with monitor(rec) as mon:
        found = mon.query_iothreads()
    out = []
    for item in found:
        tid = item.thread_id
        ident_ = item.id.removeprefix("iothread")
        out.append(
            {"id": int(ident_) if ident_.isdigit() else ident_, "thread": tid,
             "affinity": set(threads.thread_info(rec.pid, tid).affinity)}
        )  # fmt: skip
    return out


def _cputune(dom: Domain) -> Cputune:
    if dom.cputune is None:
        dom.cputune = Cputune()
    assert dom.cputune is not None
    return dom.cputune


# -- scheduler ---------------------------------------------------------------------------------
def sched_info(
    mgr: DomainManager,
    ident: str,
    settings: dict[str, int] | None = None,
    *,
    live: bool = False,
    config: bool = False,
) -> dict[str, int]:
    """Show or set ``cpu_shares``, ``vcpu_period``/``vcpu_quota`` (per vCPU, µs) and
    ``global_period``/``global_quota`` (the whole domain). Quota -1 means no limit.

    pyvirt keeps one cgroup per domain: a vCPU quota is applied as quota × vCPUs on it.
    """
    sc = scope(mgr, ident, live=live, config=config)
    settings = dict(settings or {})
    unknown = set(settings) - set(SCHED_KEYS)
    if unknown:
        raise InvalidConfigError(
            f"unknown scheduler parameter '{sorted(unknown)[0]}'",
            hint="use " + ", ".join(SCHED_KEYS),
        )
    if settings:
        with mgr.locked(sc.name), edit(mgr, sc) as doms:
            for dom in doms:
                tune = _cputune(dom)
                if "cpu_shares" in settings:
                    tune.shares = settings["cpu_shares"]
                if "vcpu_period" in settings or "global_period" in settings:
                    tune.period = settings.get("vcpu_period", settings.get("global_period"))
                if "vcpu_quota" in settings:
                    tune.quota = settings["vcpu_quota"]
                elif "global_quota" in settings:
                    q = settings["global_quota"]
                    tune.quota = q if q < 0 else max(q // dom.vcpu.count, 1000)
            if sc.live and sc.rec is not None:
                nvcpu = len(vcpu_threads(sc.rec))
                quota = settings.get("global_quota")
                if "vcpu_quota" in settings:
                    q = settings["vcpu_quota"]
                    quota = q if q < 0 else q * nvcpu
                domain_cgroup(sc.name, sc.rec, "schedinfo", mgr).set_cpu(
                    shares=settings.get("cpu_shares"),
                    period=settings.get("vcpu_period", settings.get("global_period")),
                    quota=quota,
                )
    if sc.live and sc.rec is not None:
        values = domain_cgroup(sc.name, sc.rec, "schedinfo", mgr).cpu()
        nvcpu = len(vcpu_threads(sc.rec))
        gq = values["quota"]
        return {
            "cpu_shares": values["shares"] or 1024,
            "vcpu_period": values["period"] or 100000,
            "vcpu_quota": -1 if gq is None else gq // nvcpu,
            "global_period": values["period"] or 100000,
            "global_quota": -1 if gq is None else gq,
        }
    dom = mgr.definition(sc.name, inactive=True)
    t = dom.cputune
    quota = t.quota if t is not None and t.quota is not None else -1
    period = t.period if t is not None and t.period is not None else 100000
    return {
        "cpu_shares": t.shares if t is not None and t.shares is not None else 1024,
        "vcpu_period": period,
        "vcpu_quota": quota,
        "global_period": period,
        "global_quota": -1 if quota < 0 else quota * dom.vcpu.count,
    }


# -- NUMA --------------------------------------------------------------------------------------
def numa_tune(
    mgr: DomainManager,
    ident: str,
    mode: str | None = None,
    nodeset: str | None = None,
    *,
    live: bool = False,
    config: bool = False,
) -> dict[str, str]:
    """Show or set ``numa_mode`` and ``numa_nodeset``.

    Live, only the nodeset changes (cgroup ``cpuset.mems``; the kernel migrates pages where
    ``cpuset.memory_migrate`` is on); the mode is fixed when QEMU allocates guest RAM.
    """
    sc = scope(mgr, ident, live=live, config=config)
    if mode is not None and mode not in NUMA_MODES:
        raise InvalidConfigError(f"numa mode '{mode}' is not one of {', '.join(NUMA_MODES)}")
    if nodeset is not None:
        threads.check_nodes(nodeset)
    if mode is not None or nodeset is not None:
        if sc.live and mode is not None and sc.rec is not None:
            current = mgr.definition(sc.name).numatune
            if mode != ((current.mode if current else None) or "strict"):
                raise UnsupportedError(
                    f"domain '{sc.name}': the NUMA mode cannot change while it runs",
                    hint="use --config and restart the domain",
                )
        with mgr.locked(sc.name), edit(mgr, sc) as doms:
            for dom in doms:
                if dom.numatune is None:
                    dom.numatune = Numatune()
                if mode is not None:
                    dom.numatune.mode = mode
                if nodeset is not None:
                    dom.numatune.nodeset = nodeset
            if sc.live and sc.rec is not None and nodeset is not None:
                domain_cgroup(sc.name, sc.rec, "numatune", mgr).set_mems(nodeset)
    tune = mgr.definition(sc.name, inactive=not sc.live).numatune
    result = {
        "numa_mode": (tune.mode if tune else None) or "strict",
        "numa_nodeset": (tune.nodeset if tune else None) or "",
    }
    if sc.live and sc.rec is not None:
        with suppress(UnsupportedError):
            result["numa_nodeset"] = domain_cgroup(sc.name, sc.rec, "numatune", mgr).mems()
    return result
