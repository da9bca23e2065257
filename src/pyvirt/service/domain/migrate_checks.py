"""Checks a migration's destination makes before anything moves (:func:`check_destination`).

They run in the destination's ``prepare`` step, before its QEMU starts and before the source
touches the guest, so a refusal reaches the client with nothing to undo:

- the CPU: the guest's custom CPU model and features against what this host can run
  (``cpu-compare``'s logic: the host CPU for a ``kvm`` guest, QEMU's TCG CPU for a ``qemu``
  one); the missing features are named. ``host-model``/``host-passthrough`` guests get a
  warning (their CPU is the source host's, which pyvirt cannot compare);
- memory: the guest's RAM against the host's ``MemAvailable`` (hugepage-backed guests are
  checked against the free hugepages of their size when QEMU's start is compiled);
- storage: each disk image not copied by the migration (``--copy-storage-*``) exists here.

Networks (present and active), hugepage sizes and free pages, CPU sets for pinning and NUMA
nodes are checked by the start compiler the incoming QEMU goes through, also before the
source is touched.

``PYVIRT_TEST_CPU_LACKS`` (comma-separated CPU feature names; for tests only): this host
pretends to lack those features, so a test can play a destination with an older CPU.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidStateError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: the CPU probe and host readers load only
# for a migration that needs them.

__all__ = ["check_destination"]

#: the test knob: features this host pretends to lack
LACKS_ENV = "PYVIRT_TEST_CPU_LACKS"


def check_destination(mgr: DomainManager, dom: Domain, copied: Collection[str]) -> list[str]:
    """Refuse a migration of *dom* this host cannot take; return warnings for the client.

    :param copied: the disk targets the migration copies (their images are made here)
    :raises UnsupportedError: the CPU model needs features this host lacks
    :raises InvalidStateError: not enough free memory
    :raises NotFoundError: a disk image that is not copied is missing here
    """
    warnings = _check_cpu(mgr, dom)
    _check_memory(dom)
    _check_images(dom, copied)
    return warnings


def _host_root() -> Path:
    return Path(os.environ.get("PYVIRT_HOST_ROOT") or "/")


def _check_cpu(mgr: DomainManager, dom: Domain) -> list[str]:
    cpu = dom.cpu
    if cpu is None:
        return []
    mode = cpu.mode or ("custom" if cpu.model else None)
    if mode in ("host-model", "host-passthrough", "maximum"):
        return [
            f"domain '{dom.name}' uses CPU mode {mode}: its CPU is the source host's, which "
            "pyvirt cannot compare with this host's; the guest may fail if they differ"
        ]
    if mode != "custom" or not cpu.model:
        return []
    from pyvirt.host import cpu_features as cf  # lazy
    from pyvirt.host.cpu import read_host_cpu  # lazy
    from pyvirt.service.host.cpu import CpuFacts  # lazy

    facts = CpuFacts(mgr.paths)
    kvm = dom.type == "kvm"
    # the binary the domain names, if this host has it (as the start will use): no search
    emulator = dom.devices.emulator
    binary = emulator if emulator and os.path.isfile(emulator) else None
    try:
        offer, _ = facts.offer("kvm" if kvm else "qemu", emulatorbin=binary)
    except (UnsupportedError, NotFoundError) as err:
        raise UnsupportedError(
            f"this host cannot run domain '{dom.name}': {err.message}",
            hint="migrate it to a host with the same hypervisor",
        ) from err
    cat = facts.catalog(offer)
    if kvm:
        host_cpu = read_host_cpu(_host_root())
        host = cf.host_features(host_cpu.flags, cat)
        vendor = cf.VENDORS.get(host_cpu.vendor or "", host_cpu.vendor)
    else:
        host, vendor = frozenset(offer.accel_features), None
    lacks = {f.strip() for f in os.environ.get(LACKS_ENV, "").split(",") if f.strip()}
    host = frozenset(f for f in host if f not in lacks)
    wanted = cf.parse_cpus(cpu.element)[0]
    verdict = cf.compare(wanted, host, cat, vendor)
    if verdict.result == "incompatible":
        what = "host CPU" if kvm else "CPU QEMU emulates"
        if verdict.missing:
            detail = "missing features: " + ", ".join(verdict.missing)
        else:
            detail = verdict.reason
        raise UnsupportedError(
            f"the {what} on the destination cannot run the CPU of domain '{dom.name}' "
            f"(model {cpu.model}); {detail}",
            hint="give the guest a CPU model both hosts support ('cpu-baseline' over their "
            "CPUs); the guest runs on at the source",
        )
    return []


def _check_memory(dom: Domain) -> None:
    mb = dom.memory_backing
    if mb is not None and (mb.hugepages_enabled or mb.hugepages):
        return  # hugepages: the tuning hook checks the free pages of the size
    available = _mem_available_kib()
    if available is not None and dom.memory_kib > available:
        raise InvalidStateError(
            f"the destination has {available // 1024} MiB of memory available, domain "
            f"'{dom.name}' needs {dom.memory_kib // 1024} MiB",
            hint="free memory there or pick another host; the guest runs on at the source",
        )


def _mem_available_kib() -> int | None:
    try:
        text = (_host_root() / "proc" / "meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return None


def _check_images(dom: Domain, copied: Collection[str]) -> None:
    for disk in dom.devices.disks:
        if disk.type not in ("file", "block") or disk.target_dev in copied:
            continue
        path = disk.source_path
        if path and not os.path.exists(path):
            raise NotFoundError(
                f"disk '{disk.target_dev}' of domain '{dom.name}': image '{path}' does not "
                "exist on the destination",
                hint="use storage both hosts share, or copy the disks with "
                "--copy-storage-all; the guest runs on at the source",
            )
