"""``<cputune>``, ``<memtune>`` and ``<iothreadids>``: host-side tuning of a domain.

``<cputune>`` pins vCPUs, the emulator and I/O threads to host CPUs and sets the CFS
scheduler values (shares, period, quota) that pyvirt applies through cgroups.
``<memtune>`` holds the cgroup memory limits (sizes in KiB whatever unit the XML used).
"""

from __future__ import annotations

from pyvirt.model.units import size
from pyvirt.model.xmlmap import Value, XmlNode, attr, children, int_attr, int_text, parse_int


def signed_text(path: str) -> Value[int | None]:
    """The text of the element at ``path`` as an integer that may be negative (``-1``)."""
    return Value(path, None, parse_int, str, None)


class VcpuPin(XmlNode):
    """``<vcpupin vcpu='N' cpuset='SET'/>``."""

    TAG = "vcpupin"
    vcpu = int_attr("vcpu")
    cpuset = attr("cpuset")


class IothreadPin(XmlNode):
    """``<iothreadpin iothread='N' cpuset='SET'/>``."""

    TAG = "iothreadpin"
    iothread = int_attr("iothread")
    cpuset = attr("cpuset")


class Cputune(XmlNode):
    """``<cputune>``: pinning and CFS values (shares, period/quota in µs; quota -1 = none)."""

    TAG = "cputune"
    ORDER = (
        "shares", "period", "quota", "global_period", "global_quota", "emulator_period",
        "emulator_quota", "iothread_period", "iothread_quota", "vcpupin", "emulatorpin",
        "iothreadpin", "vcpusched", "iothreadsched", "cachetune", "memorytune",
    )  # fmt: skip

    shares = int_text("shares")
    period = int_text("period")
    quota = signed_text("quota")
    emulator_period = int_text("emulator_period")
    emulator_quota = signed_text("emulator_quota")
    vcpupins = children("vcpupin", VcpuPin)
    emulatorpin = attr("cpuset", "emulatorpin")
    iothreadpins = children("iothreadpin", IothreadPin)

    def pin_of(self, vcpu: int) -> str | None:
        """The cpuset ``<vcpupin>`` gives vCPU ``vcpu``, if any."""
        return next((p.cpuset for p in self.vcpupins if p.vcpu == vcpu), None)

    def set_pin(self, vcpu: int, cpuset: str | None) -> None:
        """Pin vCPU ``vcpu`` to ``cpuset`` (``None`` removes its ``<vcpupin>``)."""
        pins = [p for p in self.vcpupins if p.vcpu != vcpu]
        if cpuset is not None:
            pins.append(VcpuPin(vcpu=vcpu, cpuset=cpuset))
        self.vcpupins = sorted(pins, key=lambda p: p.vcpu or 0)


class Memtune(XmlNode):
    """``<memtune>``: cgroup memory limits in KiB (``None`` = not set)."""

    TAG = "memtune"
    ORDER = ("hard_limit", "soft_limit", "swap_hard_limit", "min_guarantee")

    hard_limit_kib = size("hard_limit")
    soft_limit_kib = size("soft_limit")
    swap_hard_limit_kib = size("swap_hard_limit")
    min_guarantee_kib = size("min_guarantee")


class IothreadId(XmlNode):
    """``<iothread id='N'/>`` of ``<iothreadids>``."""

    TAG = "iothread"
    id = int_attr("id")
