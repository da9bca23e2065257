"""A domain's CPUs, memory and disk sizes (virt-manager's CPUs and Memory pages, Disk resize).

- ``GET /api/v1/domains/{name}/cpus``: vCPU counts (``vcpucount``), each vCPU's affinity and
  the emulator's (``vcpupin``/``emulatorpin``; the running domain's when it runs), the host's
  CPU count and the NUMA advisor's findings (``numa-advise``).
- ``PUT /api/v1/domains/{name}/vcpus`` ``{"count", "maximum", "live", "config"}``: ``setvcpus``.
- ``PUT /api/v1/domains/{name}/vcpupin`` ``{"vcpu", "cpulist", "live", "config"}``: ``vcpupin``.
- ``PUT /api/v1/domains/{name}/emulatorpin`` ``{"cpulist", "live", "config"}``: ``emulatorpin``.
- ``GET /api/v1/domains/{name}/memory``: current and maximum (KiB) of the definition, the
  balloon's size and the guest's statistics while it runs (``dommemstat``).
- ``PUT /api/v1/domains/{name}/memory`` ``{"kib", "live", "config"}``: ``setmem`` (live: the
  balloon).
- ``GET /api/v1/domains/{name}/disks/{target}``: ``domblkinfo`` (bytes).
- ``POST /api/v1/domains/{name}/disks/{target}/resize`` ``{"size"}``: grow the disk
  (``blockresize`` while it runs, ``qemu-img resize`` when shut off).

``live``/``config`` are the CLI's flags (both false: the running domain if it runs, else the
definition). A change to the definition publishes ``lifecycle`` ``Defined Updated``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pyvirt.api.domain_tuning import format_cpulist, host_cpu_count
from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.errors import PyvirtError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/domains/{name}", tags=["tuning"])


class Affect(BaseModel):
    """Which side a change goes to (both false: the running domain if it runs)."""

    live: bool = False
    config: bool = False


class VcpusIn(Affect):
    """``setvcpus``: the count (``maximum``: the most vCPUs, definition only)."""

    count: int = Field(ge=1, le=4096)
    maximum: bool = False


class PinIn(Affect):
    """``vcpupin``: vCPU ``vcpu`` runs on host CPUs ``cpulist`` (``0-3,6``)."""

    vcpu: int = Field(ge=0)
    cpulist: str = Field(min_length=1, max_length=1024)


class EmulatorPinIn(Affect):
    """``emulatorpin``: the emulator threads run on host CPUs ``cpulist``."""

    cpulist: str = Field(min_length=1, max_length=1024)


class MemoryIn(Affect):
    """``setmem``: the current memory in KiB."""

    kib: int = Field(ge=1)


class ResizeIn(BaseModel):
    """The disk's new size in bytes (it may only grow)."""

    size: int = Field(ge=1)


def _changed(daemon: Daemon, name: str, body: Affect, running: bool) -> None:
    if body.config or not running:
        daemon.bus.publish("lifecycle", "domain", name, "Defined", "Updated")


def _running(daemon: Daemon, name: str) -> bool:
    return daemon.conn.domains.get(name).is_active()


@router.get("/cpus")
def cpus(request: Request, name: str) -> dict[str, Any]:
    """vCPU counts, pinning (``pins`` of the running domain when it runs, ``config_pins``
    of the definition), the host's CPUs and the NUMA advisor's findings."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = dom.is_active()
    out: dict[str, Any] = {
        "vcpus": dom.vcpu_count().to_json(),
        "host_cpus": host_cpu_count(),
        "running": running,
    }
    config = dom.vcpu_pins(config=True) if dom.status().persistent else {}
    out["config_pins"] = {str(v): format_cpulist(c) for v, c in sorted(config.items())}
    pins = dom.vcpu_pins(live=True) if running else config
    out["pins"] = {str(v): format_cpulist(c) for v, c in sorted(pins.items())}
    out["emulator"] = format_cpulist(dom.emulator_affinity(live=running, config=not running))
    try:
        advice = daemon.conn.host.numa_advice(dom.name).advice
    except PyvirtError as err:  # the advisor cannot read the host: say so, keep the rest
        out["advice"] = [{"level": "warning", "code": "advisor", "message": err.message,
                          "hint": err.hint or ""}]  # fmt: skip
    else:
        out["advice"] = [a.to_json() for a in advice]
    return out


@router.put("/vcpus")
def set_vcpus(request: Request, name: str, body: VcpusIn) -> dict[str, Any]:
    """``setvcpus``; returns the counts after the change."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = _running(daemon, name)
    dom.set_vcpus(body.count, maximum=body.maximum, live=body.live, config=body.config)
    _changed(daemon, dom.name, body, running)
    return {"vcpus": dom.vcpu_count().to_json()}


@router.put("/vcpupin")
def pin_vcpu(request: Request, name: str, body: PinIn) -> dict[str, str]:
    """``vcpupin``; returns every vCPU's affinity after the change."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = _running(daemon, name)
    pins = dom.pin_vcpu(body.vcpu, body.cpulist, live=body.live, config=body.config)
    _changed(daemon, dom.name, body, running)
    return {str(v): format_cpulist(c) for v, c in sorted(pins.items())}


@router.put("/emulatorpin")
def pin_emulator(request: Request, name: str, body: EmulatorPinIn) -> dict[str, str]:
    """``emulatorpin``; returns the emulator threads' affinity after the change."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = _running(daemon, name)
    cpus = dom.pin_emulator(body.cpulist, live=body.live, config=body.config)
    _changed(daemon, dom.name, body, running)
    return {"emulator": format_cpulist(cpus)}


@router.get("/memory")
def memory(request: Request, name: str) -> dict[str, Any]:
    """Current and maximum memory (KiB), the balloon and the guest's figures when it runs."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    info = dom.info()
    running = dom.is_active()
    stats: dict[str, int] = {}
    if running:
        try:
            stats = dom.memory_stats()
        except PyvirtError:  # no balloon, or it is not answering
            stats = {}
    return {
        "running": running,
        "maximum_kib": info.max_memory_kib,
        "current_kib": info.used_memory_kib,
        "balloon_kib": stats.get("actual") if running else None,
        "stats": stats,
    }


@router.put("/memory")
def set_memory(request: Request, name: str, body: MemoryIn) -> dict[str, Any]:
    """``setmem`` (live: through the balloon); returns the figures after the change."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = _running(daemon, name)
    dom.set_memory(body.kib, live=body.live, config=body.config)
    _changed(daemon, dom.name, body, running)
    return memory(request, name)


@router.get("/disks/{target}")
def disk_info(request: Request, name: str, target: str) -> dict[str, Any]:
    """``domblkinfo`` of one disk: capacity, allocation, physical size in bytes."""
    dom = daemon_of(request).conn.domains.get(name)
    return dom.blkinfo(target)[0].to_json()


@router.post("/disks/{target}/resize")
def resize_disk(request: Request, name: str, target: str, body: ResizeIn) -> dict[str, Any]:
    """Grow a disk: live (``block_resize``, the guest sees it) or, shut off, its image."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = _running(daemon, name)
    size = dom.resize_disk(target, body.size)
    if not running:
        daemon.bus.publish("lifecycle", "domain", dom.name, "Defined", "Updated")
    return {"target": target, "capacity": size, "live": running}
