"""Domain statistics: one record per domain with its state, CPU time, memory and balloon,
vCPU times, and the counters of its disks and NICs (virsh ``domstats``; pyvirtd's
``/metrics``).

Where each figure comes from:

- state and reason: the reconciled status (as ``list``);
- CPU time: ``/proc/PID/stat`` of the QEMU process (user + system, every thread, also exited
  ones); vCPU times: each vCPU thread's ``schedstat`` (QMP ``query-cpus-fast`` names them);
- balloon: the definition's memory, the balloon's current size (QMP), the guest's balloon
  statistics when it reports them (``<stats period>``), and QEMU's RSS;
- disks: QMP block statistics, matched to the disks by their device alias;
- NICs: the tap's counters in the QEMU's network namespace (``/proc/PID/net/dev``), swapped
  to the guest's view as ``domifstat`` does (rx = what the guest received);
- I/O threads: QMP ``query-iothreads`` (each thread's adaptive polling settings);
- dirty rate: QMP ``query-dirty-rate`` (the last ``domdirtyrate-calc`` measurement).

- perf: the events the definition's ``<perf>`` enables, from the kernel's per-task
  accounting of QEMU's threads, when the kernel allows perf events on QEMU (see
  :mod:`pyvirt.service.perfstats`).

virsh's ``--memory`` group (resctrl memory bandwidth monitors, ``memory.bandwidth.monitor.*``)
has nothing to report: pyvirt creates no resctrl monitor groups for its guests (and this host
may not mount ``/sys/fs/resctrl`` at all).

One monitor session per running domain collects all of its QMP figures. A domain that stops
while it is looked at is reported shut off; a monitor that does not answer leaves the QMP
figures out (None) rather than failing the whole collection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    MonitorError,
    NotFoundError,
    PyvirtError,
)
from pyvirt.host import procstats
from pyvirt.service.domain.types import DomainStatus, Reason, State

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

__all__ = [
    "ALL_GROUPS",
    "BalloonStats",
    "BlockStats",
    "CpuStats",
    "DirtyRateStats",
    "DomainStats",
    "Groups",
    "IOThreadStats",
    "NetStats",
    "VcpuStats",
    "calc_dirty_rate",
    "collect",
    "reason_code",
    "state_code",
]

log = logging.getLogger(__name__)

# lazy: function-local imports marked ``# lazy`` keep ``domstats --state`` (and the metrics of
# shut-off domains) from loading the QMP client, the disk service and the memory tuning code.


@dataclass(frozen=True)
class Groups:
    """What to collect besides the state (virsh ``domstats``' groups)."""

    cpu: bool = True
    balloon: bool = True
    vcpu: bool = True
    interface: bool = True
    block: bool = True
    iothread: bool = True
    dirtyrate: bool = True
    perf: bool = True
    #: wait for a monitor another session holds (False: the figures from QEMU's monitor are
    #: left out for a busy domain, as the daemon's sampler wants)
    monitor_wait: bool = True

    @property
    def details(self) -> bool:
        """Whether anything needs the definition."""
        return (
            self.balloon or self.vcpu or self.interface or self.block or self.iothread
            or self.dirtyrate or self.perf
        )  # fmt: skip


ALL_GROUPS = Groups()

#: libvirt's virDomainState numbers (``state.state``)
_STATE_CODES = {State.UNKNOWN: 0, State.RUNNING: 1, State.PAUSED: 3, State.SHUTOFF: 5}
#: libvirt's per-state reason numbers (``state.reason``); anything else is 0 (unknown)
_REASON_CODES = {
    (State.RUNNING, Reason.BOOTED): 1,
    (State.RUNNING, Reason.UNPAUSED): 5,
    (State.PAUSED, Reason.USER): 1,
    (State.PAUSED, Reason.SHUTDOWN): 8,
    (State.PAUSED, Reason.STARTING_UP): 11,
    (State.RUNNING, Reason.POSTCOPY): 10,
    (State.PAUSED, Reason.POSTCOPY): 12,
    (State.SHUTOFF, Reason.SHUTDOWN): 1,
    (State.SHUTOFF, Reason.DESTROYED): 2,
    (State.SHUTOFF, Reason.CRASHED): 3,
}


def state_code(state: State) -> int:
    """libvirt's number for ``state`` (1 running, 3 paused, 5 shut off, 0 unknown)."""
    return _STATE_CODES.get(state, 0)


def reason_code(state: State, reason: Reason) -> int:
    """libvirt's number for ``reason`` in ``state`` (e.g. shut off + destroyed = 2)."""
    return _REASON_CODES.get((state, reason), 0)


@dataclass(frozen=True)
class CpuStats:
    """CPU time of the domain's QEMU, in nanoseconds."""

    time_ns: int
    user_ns: int
    system_ns: int


@dataclass(frozen=True)
class BalloonStats:
    """Memory in KiB: ``maximum`` (``<memory>``), ``current`` (the balloon's size, or
    ``<currentMemory>`` without a balloon), the guest's statistics (virsh ``dommemstat``
    names, counts for ``*_fault`` and ``hugetlb_*``) and QEMU's resident memory."""

    current_kib: int
    maximum_kib: int
    guest: dict[str, int] = field(default_factory=dict)
    rss_kib: int | None = None


@dataclass(frozen=True)
class VcpuStats:
    """One vCPU: its number, whether it runs (libvirt's 1) and its run time in ns."""

    vcpu: int
    state: int
    time_ns: int


@dataclass(frozen=True)
class BlockStats:
    """One disk: target, source path, and QEMU's I/O counters (None for a shut-off domain or
    when the monitor did not answer); times in nanoseconds."""

    name: str
    path: str | None
    rd_reqs: int | None = None
    rd_bytes: int | None = None
    rd_times: int | None = None
    wr_reqs: int | None = None
    wr_bytes: int | None = None
    wr_times: int | None = None
    fl_reqs: int | None = None
    fl_times: int | None = None

    @property
    def counted(self) -> bool:
        """Whether the counters were read."""
        return self.rd_bytes is not None


@dataclass(frozen=True)
class NetStats:
    """One NIC's counters as the guest sees them (rx = received by the guest)."""

    name: str
    mac: str | None
    rx_bytes: int
    rx_pkts: int
    rx_errs: int
    rx_drop: int
    tx_bytes: int
    tx_pkts: int
    tx_errs: int
    tx_drop: int


@dataclass(frozen=True)
class IOThreadStats:
    """One I/O thread: its number (``iothread1`` is 1) and adaptive polling settings."""

    id: int
    poll_max_ns: int | None
    poll_grow: int | None
    poll_shrink: int | None


@dataclass(frozen=True)
class DirtyRateStats:
    """The last dirty-rate measurement: ``calc_status`` is libvirt's number (0 unstarted,
    1 measuring, 2 measured); ``mb_per_s`` is set once measured."""

    calc_status: int
    calc_start_time: int
    calc_period: int
    calc_mode: str
    mb_per_s: int | None


@dataclass(frozen=True)
class DomainStats:
    """Statistics of one domain; a group not asked for (or not available) is None."""

    status: DomainStatus
    cpu: CpuStats | None = None
    balloon: BalloonStats | None = None
    #: (current, maximum) vCPU counts of the (live) definition
    vcpu_count: tuple[int, int] | None = None
    vcpus: tuple[VcpuStats, ...] | None = None
    nets: tuple[NetStats, ...] | None = None
    blocks: tuple[BlockStats, ...] | None = None
    iothreads: tuple[IOThreadStats, ...] | None = None
    dirtyrate: DirtyRateStats | None = None
    #: ``perf.NAME`` figures of the enabled perf events (empty: none enabled or allowed)
    perf: dict[str, int] | None = None

    @property
    def name(self) -> str:
        """The domain's name."""
        return self.status.name

    @property
    def active(self) -> bool:
        """Whether QEMU runs for it."""
        return self.status.state in (State.RUNNING, State.PAUSED)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: the status fields, state codes, then each collected group (the
        balloon group as ``memory``)."""
        out: dict[str, Any] = {
            **self.status.to_json(),
            "state_code": state_code(self.status.state),
            "reason_code": reason_code(self.status.state, self.status.reason),
        }
        if self.cpu is not None:
            out["cpu"] = asdict(self.cpu)
        if self.balloon is not None:
            out["memory"] = asdict(self.balloon)
        if self.vcpu_count is not None:
            out["vcpu"] = {"current": self.vcpu_count[0], "maximum": self.vcpu_count[1]}
            if self.vcpus is not None:
                out["vcpu"]["vcpus"] = [asdict(v) for v in self.vcpus]
        if self.nets is not None:
            out["nets"] = [asdict(n) for n in self.nets]
        if self.blocks is not None:
            out["blocks"] = [asdict(b) for b in self.blocks]
        if self.iothreads is not None:
            out["iothreads"] = [asdict(t) for t in self.iothreads]
        if self.dirtyrate is not None:
            out["dirtyrate"] = asdict(self.dirtyrate)
        if self.perf:  # only with events enabled and allowed: other records stay as they were
            out["perf"] = dict(self.perf)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DomainStats:
        """The record back from :meth:`to_json` (a remote client reading pyvirtd's answer).

        :raises InvalidConfigError: ``data`` is not such a record
        """
        try:
            status = DomainStatus(
                str(data["name"]), str(data["uuid"]), data.get("id"), State(data["state"]),
                Reason(data["reason"]), bool(data["persistent"]), bool(data["autostart"]),
                data.get("pid"), data.get("problem"),
            )  # fmt: skip
            vcpu = data.get("vcpu")
            return cls(
                status,
                cpu=CpuStats(**data["cpu"]) if "cpu" in data else None,
                balloon=BalloonStats(**data["memory"]) if "memory" in data else None,
                vcpu_count=(int(vcpu["current"]), int(vcpu["maximum"])) if vcpu else None,
                vcpus=tuple(VcpuStats(**v) for v in vcpu["vcpus"])
                if vcpu and "vcpus" in vcpu
                else None,
                nets=tuple(NetStats(**n) for n in data["nets"]) if "nets" in data else None,
                blocks=tuple(BlockStats(**b) for b in data["blocks"]) if "blocks" in data else None,
                iothreads=tuple(IOThreadStats(**t) for t in data["iothreads"])
                if "iothreads" in data
                else None,
                dirtyrate=DirtyRateStats(**data["dirtyrate"]) if "dirtyrate" in data else None,
                perf={str(k): int(v) for k, v in data["perf"].items()} if "perf" in data else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfigError(f"not a domain statistics record: {err}") from None


# -- collection --------------------------------------------------------------------------------
def collect(
    mgr: DomainManager,
    names: Sequence[str] | None = None,
    groups: Groups = ALL_GROUPS,
    *,
    inactive_details: bool = True,
) -> list[DomainStats]:
    """Statistics of ``names`` (each resolved: name, UUID or id) or of every domain.

    :param groups: what to collect besides the state
    :param inactive_details: read shut-off domains' definitions for their memory, vCPU counts
        and disks (False: state only, as ``/metrics`` wants with thousands of definitions)
    :raises NotFoundError: a name in ``names`` matches no domain
    """
    if names is None:
        statuses = mgr.list_all(uuids=True)
    else:
        statuses = [mgr.status(mgr.resolve(n)) for n in names]
    out = []
    for st in statuses:
        try:
            out.append(_one(mgr, st, groups, inactive_details=inactive_details))
        except NotFoundError:
            if names is not None:
                raise
            continue  # a transient domain that went away meanwhile
        except PyvirtError as err:  # one broken domain does not hide the others' figures
            if names is not None:
                raise
            log.warning("domain %s: no statistics: %s", st.name, err)
            out.append(DomainStats(st))
    return out


def _one(
    mgr: DomainManager, st: DomainStatus, groups: Groups, *, inactive_details: bool
) -> DomainStats:
    if st.state in (State.RUNNING, State.PAUSED):
        try:
            return _running(mgr, st, groups)
        except InvalidStateError:  # it stopped since it was listed
            st = mgr.status(st.name)
    if not inactive_details or not groups.details or st.state is State.UNKNOWN:
        return DomainStats(st)
    try:
        dom = mgr.definition(st.name, inactive=True)
    except PyvirtError as err:  # an unreadable definition: its state says so already
        log.debug("domain %s: %s", st.name, err)
        return DomainStats(st)
    return DomainStats(
        st,
        balloon=BalloonStats(dom.current_memory_kib, dom.memory_kib) if groups.balloon else None,
        vcpu_count=_vcpu_count(dom) if groups.vcpu else None,
        blocks=tuple(_block_entry(d) for d in dom.devices.disks) if groups.block else None,
    )


def _vcpu_count(dom: Domain) -> tuple[int, int]:
    return (dom.vcpu.current or dom.vcpu.count, dom.vcpu.count)


def _block_entry(disk: Any, counters: dict[str, int] | None = None) -> BlockStats:
    path = disk.source_path or None
    if counters is None:
        return BlockStats(disk.target_dev or "", path)
    c = counters
    return BlockStats(
        disk.target_dev or "", path,
        rd_reqs=c.get("rd_operations", 0), rd_bytes=c.get("rd_bytes", 0),
        rd_times=c.get("rd_total_time_ns", 0), wr_reqs=c.get("wr_operations", 0),
        wr_bytes=c.get("wr_bytes", 0), wr_times=c.get("wr_total_time_ns", 0),
        fl_reqs=c.get("flush_operations", 0), fl_times=c.get("flush_total_time_ns", 0),
    )  # fmt: skip


def _running(mgr: DomainManager, st: DomainStatus, groups: Groups) -> DomainStats:
    name, rec = mgr.running(st.name)
    cpu = None
    if groups.cpu:
        times = procstats.process_cpu(rec.pid)
        if times is not None:
            cpu = CpuStats(times.total_ns, times.user_ns, times.system_ns)
    if not groups.details:
        return DomainStats(st, cpu=cpu)
    dom = mgr.definition(name)
    qmp = _query_monitor(mgr, name, rec, dom, groups)
    balloon = None
    if groups.balloon:
        from pyvirt.host.threads import rss_kib  # lazy

        balloon = BalloonStats(
            qmp.balloon_kib if qmp.balloon_kib is not None else dom.current_memory_kib,
            dom.memory_kib,
            qmp.guest,
            rss_kib(rec.pid),
        )
    vcpus = None
    if groups.vcpu and qmp.vcpu_threads is not None:
        vcpus = tuple(
            VcpuStats(v, 1, procstats.thread_run_ns(rec.pid, tid) or 0)
            for v, tid in sorted(qmp.vcpu_threads.items())
        )
    blocks = None
    if groups.block:
        blocks = tuple(
            _block_entry(d, qmp.blocks.get(d.target_dev or "") if qmp.blocks else None)
            for d in dom.devices.disks
        )
    return DomainStats(
        st,
        cpu=cpu,
        balloon=balloon,
        vcpu_count=_vcpu_count(dom) if groups.vcpu else None,
        vcpus=vcpus,
        nets=_nets(rec, dom) if groups.interface else None,
        blocks=blocks,
        iothreads=qmp.iothreads,
        dirtyrate=qmp.dirtyrate,
        perf=_perf(rec.pid, dom) if groups.perf else None,
    )


def _perf(pid: int, dom: Domain) -> dict[str, int]:
    """The enabled perf events' figures (empty: none enabled, or perf events not allowed)."""
    from pyvirt.service import perfstats  # lazy

    events = perfstats.enabled_events(dom)
    if not events or not perfstats.perf_allowed(pid):
        return {}
    return perfstats.read(pid, events)


@dataclass
class _QmpFigures:
    balloon_kib: int | None = None
    guest: dict[str, int] = field(default_factory=dict)
    vcpu_threads: dict[int, int] | None = None
    #: disk target -> QEMU's counters
    blocks: dict[str, dict[str, int]] | None = None
    iothreads: tuple[IOThreadStats, ...] | None = None
    dirtyrate: DirtyRateStats | None = None


def _query_monitor(
    mgr: DomainManager, name: str, rec: RuntimeRecord, dom: Domain, groups: Groups
) -> _QmpFigures:
    """Everything this collection needs from QEMU, in one monitor session."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    out = _QmpFigures()
    balloon = dom.devices.memballoon
    has_balloon = balloon is not None and balloon.model != "none"
    need = (
        (groups.balloon and has_balloon)
        or groups.vcpu
        or (groups.block and bool(dom.devices.disks))
        or groups.iothread
        or groups.dirtyrate
    )
    if not need:
        return out
    try:
        with Monitor(
            rec.qmp_socket,
            timeout=5.0,
            name=name,
            purpose="statistics",
            wait=groups.monitor_wait,
        ) as mon:
            if groups.balloon and has_balloon:
                _balloon(mon, dom, out)
            if groups.vcpu:
                out.vcpu_threads = mon.vcpu_threads()
            if groups.block and dom.devices.disks:
                out.blocks = _block_counters(mgr, mon, dom)
            if groups.iothread:
                out.iothreads = _iothreads(mon)
            if groups.dirtyrate:
                out.dirtyrate = _dirtyrate(mon)
    except MonitorError as err:  # stopping, or hung: report what /proc gives
        log.debug("domain %s: no monitor figures: %s", name, err)
    return out


def _balloon(mon: Monitor, dom: Domain, out: _QmpFigures) -> None:
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy
    from pyvirt.service.tuning.memory import COUNTS, GUEST_STATS  # lazy

    balloon = dom.devices.memballoon
    assert balloon is not None
    try:
        out.balloon_kib = mon.query_balloon() // 1024
    except QmpCommandError:  # the guest's balloon driver is not loaded (yet)
        return
    if not balloon.period:
        return
    stats = mon.balloon_stats(f"/machine/peripheral/{balloon.alias or 'balloon0'}")
    for key, value in stats.stats.items():
        label = GUEST_STATS.get(key)
        # QEMU reports a statistic the guest has not sent (yet) as -1 or as 2^64-1
        if label is None or not 0 <= value < 1 << 62:
            continue
        out.guest[label] = value if label in COUNTS else value // 1024
    if stats.last_update:
        out.guest["last-update"] = stats.last_update


#: the dirty-rate modes QEMU knows; QEMU takes 1 to 60 seconds
DIRTYRATE_MODES = ("page-sampling", "dirty-bitmap", "dirty-ring")


def calc_dirty_rate(
    mgr: DomainManager, ident: str, seconds: int = 1, *, mode: str | None = None
) -> str:
    """Start measuring running domain ``ident``'s memory dirty rate for ``seconds`` (virsh
    ``domdirtyrate-calc``); ``domstats --dirtyrate`` reads the result. Returns the name.

    :raises InvalidConfigError: seconds outside 1-60, or an unknown mode
    :raises InvalidStateError: the domain is not running
    :raises OperationFailedError: QEMU refused (a measurement runs already, or the mode needs
        what the guest lacks)
    """
    from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError  # lazy
    from pyvirt.errors import OperationFailedError  # lazy

    if not 1 <= seconds <= 60:
        raise InvalidConfigError(
            f"dirty rate period {seconds} s is out of range", hint="use 1 to 60 seconds"
        )
    if mode is not None and mode not in DIRTYRATE_MODES:
        raise InvalidConfigError(
            f"unknown dirty rate mode '{mode}'", hint="use " + ", ".join(DIRTYRATE_MODES)
        )
    name, rec = mgr.running(ident)
    try:
        with Monitor(rec.qmp_socket, timeout=5.0, name=name) as mon:
            mon.calc_dirty_rate(seconds, mode=mode)
    except QmpCommandError as err:
        raise OperationFailedError(
            f"measuring the dirty rate of domain '{name}' failed: {err.desc}",
            hint="wait for a running measurement to finish ('domstats --dirtyrate')",
        ) from err
    return name


def _iothreads(mon: Monitor) -> tuple[IOThreadStats, ...]:
    out: list[IOThreadStats] = []
    for t in mon.query_iothreads():
        digits = "".join(c for c in t.id if c.isdigit())
        number = int(digits) if digits else len(out) + 1
        out.append(IOThreadStats(number, t.poll_max_ns, t.poll_grow, t.poll_shrink))
    return tuple(sorted(out, key=lambda t: t.id))


#: QEMU's dirty-rate status -> libvirt's virDomainDirtyRateStatus
_DIRTYRATE_STATUS = {"unstarted": 0, "measuring": 1, "measured": 2}


def _dirtyrate(mon: Monitor) -> DirtyRateStats | None:
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    try:
        rate = mon.query_dirty_rate()
    except QmpCommandError:  # a QEMU older than 5.2
        return None
    return DirtyRateStats(
        _DIRTYRATE_STATUS.get(rate.status, 0),
        rate.start_time,
        rate.calc_time,
        rate.mode,
        rate.mb_per_s if rate.status == "measured" else None,
    )


def _block_counters(mgr: DomainManager, mon: Monitor, dom: Domain) -> dict[str, dict[str, int]]:
    from pyvirt.service.disk.attach import disk_alias  # lazy

    by_alias = {entry.device_id: entry.stats for entry in mon.query_blockstats()}
    out: dict[str, dict[str, int]] = {}
    for disk in dom.devices.disks:
        counters = by_alias.get(disk_alias(mgr, dom, disk))
        if counters is not None and disk.target_dev:
            out[disk.target_dev] = counters
    return out


def _nets(rec: RuntimeRecord, dom: Domain) -> tuple[NetStats, ...]:
    counters = procstats.net_dev(rec.pid)
    out = []
    for iface in dom.devices.interfaces:
        c = counters.get(iface.target_dev or "")
        if c is None:
            continue
        # the tap's transmit is the guest's receive
        rx = (c.tx_bytes, c.tx_packets, c.tx_errors, c.tx_dropped)
        tx = (c.rx_bytes, c.rx_packets, c.rx_errors, c.rx_dropped)
        out.append(NetStats(iface.target_dev or "", iface.mac, *rx, *tx))
    return tuple(out)
