"""Live and persistent memory tuning: balloon (setmem, dommemstat), setmaxmem, memtune.

The balloon is QEMU's ``virtio-balloon`` device: the monitor asks the guest driver to give
memory back (or take it again) and reports the size the guest has now. Guest statistics are
a QOM property of the device, refreshed every period seconds (``<stats period>`` or
``dommemstat --period``).
memtune limits are the domain cgroup's memory limits (v1 ``memory.limit_in_bytes`` ...,
v2 ``memory.max`` ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.qmp import QmpCommandError
from pyvirt.errors import InvalidConfigError, InvalidStateError, UnsupportedError
from pyvirt.host import threads
from pyvirt.model.limits import MIN_MEMORY_KIB, check_memory_kib, check_memtune_kib
from pyvirt.model.tune import Memtune
from pyvirt.service.tuning.cpu import domain_cgroup, edit, monitor, scope

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

#: QEMU ``guest-stats`` keys -> virsh dommemstat names (values in bytes, shown in KiB)
GUEST_STATS = {
    "stat-swap-in": "swap_in",
    "stat-swap-out": "swap_out",
    "stat-major-faults": "major_fault",
    "stat-minor-faults": "minor_fault",
    "stat-free-memory": "unused",
    "stat-total-memory": "available",
    "stat-available-memory": "usable",
    "stat-disk-caches": "disk_caches",
    "stat-htlb-pgalloc": "hugetlb_pgalloc",
    "stat-htlb-pgfail": "hugetlb_pgfail",
}
#: counters, not byte sizes
COUNTS = {"major_fault", "minor_fault", "hugetlb_pgalloc", "hugetlb_pgfail"}


def _balloon_alias(dom: Domain, name: str) -> str:
    balloon = dom.devices.memballoon
    if balloon is None or balloon.model == "none":
        raise UnsupportedError(
            f"domain '{name}' has no memory balloon",
            hint="add <memballoon model='virtio'/> to its definition and restart it",
        )
    return balloon.alias or "balloon0"


def _balloon(mon: Monitor, name: str) -> int:
    try:
        return mon.query_balloon() // 1024
    except QmpCommandError as err:
        raise UnsupportedError(f"domain '{name}' has no active memory balloon: {err.desc}") from err


def set_mem(
    mgr: DomainManager, ident: str, kib: int, *, live: bool = False, config: bool = False
) -> None:
    """Set the current memory (``<currentMemory>``); live through the balloon.

    :raises InvalidConfigError: zero or above the maximum memory
    """
    sc = scope(mgr, ident, live=live, config=config)
    with mgr.locked(sc.name), edit(mgr, sc) as doms:
        for dom in doms:
            if kib <= 0 or kib > dom.memory_kib:
                raise InvalidConfigError(
                    f"memory size {kib} KiB is out of range for domain '{sc.name}' "
                    f"(1-{dom.memory_kib} KiB)",
                    hint="raise the maximum with setmaxmem --config first",
                )
            dom.current_memory_kib = kib
        if sc.live and sc.rec is not None:
            _balloon_alias(doms[0], sc.name)
            with monitor(sc.rec) as mon:
                _balloon(mon, sc.name)
                mon.set_balloon(kib * 1024)


def balloon_kib(mgr: DomainManager, ident: str) -> int:
    """The memory the guest has now, as the balloon reports it."""
    name, rec = mgr.running(ident)
    with monitor(rec) as mon:
        return _balloon(mon, name)


def set_max_mem(
    mgr: DomainManager, ident: str, kib: int, *, live: bool = False, config: bool = False
) -> None:
    """Set the maximum memory (``<memory>``); the current memory is lowered to fit.

    :raises UnsupportedError: for a running domain (QEMU's RAM size is fixed at start)
    """
    sc = scope(mgr, ident, live=live, config=config)
    if sc.live:
        raise UnsupportedError(
            f"domain '{sc.name}' is running; its maximum memory cannot change live",
            hint="use --config and restart it, or setmem within the current maximum",
        )
    if kib < MIN_MEMORY_KIB:
        raise InvalidConfigError(
            f"memory size {kib} KiB is too small (at least {MIN_MEMORY_KIB} KiB)"
        )
    check_memory_kib(kib)
    with mgr.locked(sc.name), edit(mgr, sc) as doms:
        for dom in doms:
            current = dom.current_memory_kib
            dom.memory_kib = kib
            dom.current_memory_kib = min(current, kib)


def mem_stats(mgr: DomainManager, ident: str, *, period: int | None = None) -> dict[str, int]:
    """Balloon statistics in KiB (virsh ``dommemstat``): ``actual``, guest stats, ``rss``.

    With ``period`` the guest's statistics polling interval is set (seconds, 0 = off).
    """
    name, rec = mgr.running(ident)
    dom = mgr.definition(name)
    path = f"/machine/peripheral/{_balloon_alias(dom, name)}"
    out: dict[str, int] = {}
    with monitor(rec) as mon:
        out["actual"] = _balloon(mon, name)
        if period is not None:
            if period < 0:
                raise InvalidConfigError(f"stats period {period} is negative")
            mon.set_balloon_stats_period(path, period)
        stats = mon.balloon_stats(path)
    for key, value in stats.stats.items():
        label = GUEST_STATS.get(key)
        # QEMU reports a statistic the guest has not sent (yet) as -1 or as 2^64-1
        if label is None or not 0 <= int(value) < 1 << 62:
            continue
        out[label] = int(value) if label in COUNTS else int(value) // 1024
    if stats.last_update:
        out["last_update"] = stats.last_update
    rss = threads.rss_kib(rec.pid)
    if rss is not None:
        out["rss"] = rss
    return out


def set_stats_period(
    mgr: DomainManager, ident: str, period: int, *, live: bool = False, config: bool = False
) -> None:
    """Persist or apply the balloon statistics period (``dommemstat --period``)."""
    sc = scope(mgr, ident, live=live, config=config)
    with mgr.locked(sc.name), edit(mgr, sc) as doms:
        for dom in doms:
            balloon = dom.devices.memballoon
            if balloon is None or balloon.model == "none":
                _balloon_alias(dom, sc.name)
            else:
                balloon.period = period
    if sc.live:
        mem_stats(mgr, sc.name, period=period)


def mem_tune(
    mgr: DomainManager,
    ident: str,
    *,
    hard_kib: int | None = None,
    soft_kib: int | None = None,
    swap_kib: int | None = None,
    live: bool = False,
    config: bool = False,
) -> dict[str, int | None]:
    """Show or set the cgroup memory limits (KiB; -1 removes one; ``None`` = unlimited)."""
    sc = scope(mgr, ident, live=live, config=config)
    changes = {"hard": hard_kib, "soft": soft_kib, "swap": swap_kib}
    if any(v is not None for v in changes.values()):
        for key, value in changes.items():
            if value is not None and value == 0:
                raise InvalidConfigError(f"memtune {key} limit 0 KiB would stop the guest")
            if value is not None:
                check_memtune_kib(value, what=f"memtune {key} limit")
        with mgr.locked(sc.name), edit(mgr, sc) as doms:
            for dom in doms:
                if dom.memtune is None:
                    dom.memtune = Memtune()
                tune = dom.memtune
                assert tune is not None
                if hard_kib is not None:
                    tune.hard_limit_kib = hard_kib if hard_kib > 0 else None
                if soft_kib is not None:
                    tune.soft_limit_kib = soft_kib if soft_kib > 0 else None
                if swap_kib is not None:
                    tune.swap_hard_limit_kib = swap_kib if swap_kib > 0 else None
                hard, swap = tune.hard_limit_kib, tune.swap_hard_limit_kib
                if hard is not None and swap is not None and swap < hard:
                    raise InvalidConfigError(
                        f"swap_hard_limit {swap} KiB is below hard_limit {hard} KiB",
                        hint="swap_hard_limit counts memory plus swap",
                    )
            if sc.live and sc.rec is not None:
                domain_cgroup(sc.name, sc.rec, "memtune", mgr).set_memory(
                    hard_kib=hard_kib, soft_kib=soft_kib, swap_kib=swap_kib
                )
    if sc.live and sc.rec is not None:
        values = domain_cgroup(sc.name, sc.rec, "memtune", mgr).memory()
        return {
            "hard_limit": values["hard"],
            "soft_limit": values["soft"],
            "swap_hard_limit": values["swap"],
        }
    if not mgr.store.exists(sc.name):
        raise InvalidStateError(f"domain '{sc.name}' is not defined")
    t = mgr.definition(sc.name, inactive=True).memtune
    return {
        "hard_limit": t.hard_limit_kib if t else None,
        "soft_limit": t.soft_limit_kib if t else None,
        "swap_hard_limit": t.swap_hard_limit_kib if t else None,
    }
