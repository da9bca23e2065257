"""The bounds pyvirt accepts for sizes and counts: one table, used by ``define`` and every editor.

Every verb that writes a size or a count into a definition (``define``, ``setmaxmem``,
``setmem``, ``setvcpus``, ``memtune``, ``vol-create-as``, ``vol-resize``, ``blockresize``, ...)
checks it against these bounds, so that no verb can write what ``define`` would refuse to read
back.

==========================  ==================================================================
memory (``<memory>``)       1 MiB .. 16 TiB (QEMU's x86_64 RAM is bounded by the guest's
                            physical address bits; 16 TiB is far above any host pyvirt runs on)
memtune limits              at most 2^53 - 1 KiB (libvirt's "unlimited" boundary)
vCPUs (``<vcpu>``)          1 .. the machine type's maximum: ``pc``/i440fx 255, ``q35`` 288,
                            ``microvm`` 288, ``isapc`` 1 (QEMU 7.2's ``query-machines``
                            cpu-max); 4096 for machine types pyvirt does not know
volume capacity             1 EiB (2^60 bytes): far above what ext4 (16 TiB per file) or
                            qcow2 images accept, and far below 2^63 (``off_t``)
==========================  ==================================================================
"""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError

#: the largest ``<memory>`` a definition may have (KiB)
MAX_MEMORY_KIB = 16 * 1024**3
#: the smallest maximum memory ``setmaxmem`` sets (KiB)
MIN_MEMORY_KIB = 1024
#: the most vCPUs of any machine type (KiB)
MAX_VCPUS = 4096
#: memtune limits above this are "unlimited" in libvirt (KiB)
MAX_MEMTUNE_KIB = 2**53 - 1
#: QEMU 7.2's maximum vCPUs per machine family (``query-machines`` cpu-max)
MACHINE_MAX_VCPUS = {"q35": 288, "isapc": 1, "microvm": 288, "pc": 255}
#: the largest volume capacity (bytes)
MAX_VOLUME_BYTES = 2**60


def machine_max_vcpus(machine: str | None) -> int:
    """The most vCPUs machine type ``machine`` accepts (``None``: the default ``pc``)."""
    name = machine or "pc"
    for key, value in MACHINE_MAX_VCPUS.items():
        if key in name:
            return value
    return MAX_VCPUS


def check_memory_kib(kib: int, *, what: str = "memory size") -> int:
    """Return ``kib`` if it is a usable ``<memory>``, else raise.

    :raises InvalidConfigError: 0 or negative, or above :data:`MAX_MEMORY_KIB`
    """
    from pyvirt.model.units import format_kib

    if kib <= 0:
        raise InvalidConfigError(f"{what} must be greater than 0")
    if kib > MAX_MEMORY_KIB:
        raise InvalidConfigError(
            f"{what} {format_kib(kib)} is larger than the {format_kib(MAX_MEMORY_KIB)} limit"
        )
    return kib


def check_memtune_kib(kib: int, *, what: str = "memtune limit") -> int:
    """Return ``kib`` if it fits a memtune limit, else raise.

    :raises InvalidConfigError: above :data:`MAX_MEMTUNE_KIB`
    """
    if kib > MAX_MEMTUNE_KIB:
        raise InvalidConfigError(
            f"{what} {kib} KiB is larger than the limit of {MAX_MEMTUNE_KIB} KiB",
            hint="use -1 for unlimited",
        )
    return kib


def check_vcpus(count: int, machine: str | None, *, what: str = "vcpu count") -> int:
    """Return ``count`` if machine type ``machine`` accepts that many vCPUs, else raise.

    :raises InvalidConfigError: below 1 or above :func:`machine_max_vcpus`
    """
    top = machine_max_vcpus(machine)
    if count < 1 or count > top:
        raise InvalidConfigError(
            f"{what} {count} is out of range 1-{top} for machine '{machine or 'pc'}'"
        )
    return count


def check_volume_bytes(size: int, *, what: str = "capacity") -> int:
    """Return ``size`` if it is a usable volume size in bytes, else raise.

    :raises InvalidConfigError: negative or above :data:`MAX_VOLUME_BYTES`
    """
    from pyvirt.model.units import format_bytes

    if size < 0:
        raise InvalidConfigError(f"{what} {size} is negative")
    if size > MAX_VOLUME_BYTES:
        raise InvalidConfigError(
            f"{what} {format_bytes(size)} is larger than the limit of "
            f"{format_bytes(MAX_VOLUME_BYTES)}"
        )
    return size
