"""Semantic checks of a :class:`~pyvirt.model.domain.Domain` -> list of :class:`Problem`."""

from __future__ import annotations

import contextlib
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.cpuset import parse_cpuset
from pyvirt.model.limits import MAX_MEMORY_KIB, MAX_VCPUS, machine_max_vcpus

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

__all__ = ["MAX_MEMORY_KIB", "MAX_NAME", "MAX_VCPUS", "require_valid", "validate_domain"]

MAX_NAME = 200


def _safe(problems: list[Problem], check: Callable[[], None]) -> None:
    """Run one check; a field that cannot be read was already reported, so skip it."""
    with contextlib.suppress(InvalidConfigError):
        check()


def validate_domain(d: Domain) -> list[Problem]:
    """Run every check on ``d``; see the module docstring of :mod:`pyvirt.model`."""
    problems: list[Problem] = []
    dtype = d.type
    if dtype is None:
        problems.append(Problem("<domain>", "type is missing; use kvm or qemu"))
    elif dtype not in ("kvm", "qemu"):
        problems.append(Problem("<domain>", f"type '{dtype}' is not supported; use kvm or qemu"))
    problems += d.field_problems()
    for check in (_check_name, _check_uuid, _check_memory, _check_vcpu, _check_cpu):
        _safe(problems, lambda check=check: check(d, problems))  # type: ignore[misc]
    from pyvirt.model.devices.checks import check_devices

    _safe(problems, lambda: check_devices(d.devices, problems))
    from pyvirt.model.rules import check_libvirt_rules

    _safe(problems, lambda: check_libvirt_rules(d, problems))
    return problems


def require_valid(d: Domain) -> Domain:
    """Return ``d`` if :func:`validate_domain` finds nothing, else raise.

    Every editor of a stored or live definition calls this before writing, so that no verb
    writes a definition that ``define`` (and every later read) would refuse.

    :raises InvalidConfigError: with the ``.problems`` found
    """
    problems = validate_domain(d)
    if problems:
        raise InvalidConfigError(problems=problems)
    return d


def _check_name(d: Domain, problems: list[Problem]) -> None:
    el = d.element.find("name")
    name = d.name
    if el is None:
        problems.append(Problem("<name>", "a name is required"))
    elif not name.strip():
        problems.append(Problem("<name>", "name is empty"))
    elif "/" in name:
        problems.append(Problem("<name>", f"name '{name}' contains '/'"))
    elif name in (".", ".."):
        problems.append(Problem("<name>", f"name '{name}' is not allowed"))
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problems.append(Problem("<name>", "name contains control characters"))
    elif len(name) > MAX_NAME:
        problems.append(Problem("<name>", f"name is longer than {MAX_NAME} characters"))


def _check_uuid(d: Domain, problems: list[Problem]) -> None:
    value = d.uuid.strip()
    hexdigits = value.replace("-", "")
    ok = len(hexdigits) == 32 and all(c in "0123456789abcdefABCDEF" for c in hexdigits)
    if ok and "-" in value:
        ok = [len(p) for p in value.split("-")] == [8, 4, 4, 4, 12]
    if ok:
        uuidlib.UUID(hexdigits)
    else:
        problems.append(Problem("<uuid>", f"'{value}' is not a valid UUID"))


def _check_memory(d: Domain, problems: list[Problem]) -> None:
    from pyvirt.model.units import format_kib

    if d.element.find("memory") is None:
        if d.cpu is None or not d.cpu.numa_cells:  # with cells, <memory> is their sum
            problems.append(Problem("<memory>", "a memory size is required"))
        return
    memory = d.memory_kib
    if memory <= 0:
        problems.append(Problem("<memory>", "memory size must be greater than 0"))
    elif memory > MAX_MEMORY_KIB:
        problems.append(
            Problem("<memory>", f"memory size {format_kib(memory)} is larger than the 16 TiB limit")
        )
    elif d.current_memory_kib > memory:
        problems.append(
            Problem(
                "<currentMemory>",
                f"{d.current_memory_kib} KiB is larger than <memory> ({memory} KiB)",
            )
        )
    max_kib = d.max_memory_kib
    if max_kib is not None and 0 < memory <= MAX_MEMORY_KIB and max_kib < memory:
        problems.append(
            Problem("<maxMemory>", f"{max_kib} KiB is smaller than <memory> ({memory} KiB)")
        )


def _check_vcpu(d: Domain, problems: list[Problem]) -> None:
    vcpu = d.vcpu
    try:
        count = vcpu.count
    except ValueError as err:
        problems.append(Problem("<vcpu>", f"'{vcpu.element.text}' {err}"))
        return
    if count < 1:
        problems.append(Problem("<vcpu>", "count must be at least 1"))
    elif count > MAX_VCPUS:
        problems.append(Problem("<vcpu>", f"count {count} is larger than the limit of {MAX_VCPUS}"))
    elif count > machine_max_vcpus(d.os.machine):
        machine = d.os.machine or "pc"
        top = machine_max_vcpus(machine)
        problems.append(
            Problem("<vcpu>", f"count {count} is larger than the limit of {top} for '{machine}'")
        )
    current = vcpu.current
    if current is not None and current < 1:
        problems.append(Problem("<vcpu>", "current must be at least 1"))
    elif current is not None and current > count:
        problems.append(Problem("<vcpu>", f"current {current} is larger than count {count}"))


def _check_cpu(d: Domain, problems: list[Problem]) -> None:
    cpu = d.cpu
    if cpu is None:
        return
    try:
        count = d.vcpu.count
    except ValueError:
        return
    topo = cpu.topology
    if topo is not None and topo.total != count:
        problems.append(
            Problem(
                topo.xpath(),
                f"topology gives {topo.total} vCPUs but <vcpu> is {count}",
            )
        )
    cells = cpu.numa_cells
    # <memory> need not add up: with cells, libvirt makes it the sum of the cells (plus any
    # <memory> devices), which is what the guest gets (-m); see pyvirt.model.memory
    for cell in cells:
        if cell.cpus is None:
            continue
        try:
            cpus = parse_cpuset(cell.cpus, what="cpus")
        except InvalidConfigError as err:
            problems.append(Problem(cell.xpath(), str(err)))
            continue
        if cpus and max(cpus) >= count:
            problems.append(
                Problem(cell.xpath(), f"cpus '{cell.cpus}' go beyond the {count} vCPUs of <vcpu>")
            )
