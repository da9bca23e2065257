"""Host CPU time counters from ``/proc/stat`` (``nodecpustats``).

The kernel counts, per CPU and for all CPUs (the ``cpu`` line), time spent in user, nice,
system, idle, iowait, irq, softirq and steal, in clock ticks. virsh reports user (user +
nice), system (system + irq + softirq), idle and iowait in nanoseconds, or as percentages
of the time elapsed between two samples one second apart (``--percent``).

Every reader takes a ``root`` path so unit tests point it at a fake tree.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from pyvirt.errors import InvalidConfigError

_NS_PER_SEC = 1_000_000_000


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU times in nanoseconds, grouped like virsh ``nodecpustats``."""

    user: int
    system: int
    idle: int
    iowait: int

    @property
    def total(self) -> int:
        """Sum of the four groups."""
        return self.user + self.system + self.idle + self.iowait


def _ticks_to_ns(ticks: int, hz: int) -> int:
    return ticks * _NS_PER_SEC // hz


def read_cpu_times(root: Path = Path("/"), cpu: int | None = None, *, hz: int = 0) -> CpuTimes:
    """Counters of one CPU (``cpu``) or of all CPUs (``None``).

    :param hz: clock ticks per second (default: ``os.sysconf('SC_CLK_TCK')``)
    :raises InvalidConfigError: when the CPU does not exist
    """
    hz = hz or os.sysconf("SC_CLK_TCK")
    label = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        text = (root / "proc/stat").read_text()
    except OSError as err:
        raise InvalidConfigError(f"cannot read /proc/stat: {err.strerror}") from None
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] != label:
            continue
        ticks = [int(v) for v in fields[1:9]] + [0] * (8 - len(fields[1:9]))
        user, nice, system, idle, iowait, irq, softirq, _steal = ticks
        return CpuTimes(
            user=_ticks_to_ns(user + nice, hz),
            system=_ticks_to_ns(system + irq + softirq, hz),
            idle=_ticks_to_ns(idle, hz),
            iowait=_ticks_to_ns(iowait, hz),
        )
    raise InvalidConfigError(
        f"host CPU {cpu} does not exist", hint="list the host's CPUs with 'nodeinfo'"
    )


def percentages(before: CpuTimes, after: CpuTimes) -> dict[str, float]:
    """Share of each group over the interval between two samples, plus ``usage``."""
    elapsed = after.total - before.total
    if elapsed <= 0:
        return {"usage": 0.0, "user": 0.0, "system": 0.0, "idle": 100.0, "iowait": 0.0}
    shares = {
        name: 100.0 * (getattr(after, name) - getattr(before, name)) / elapsed
        for name in ("user", "system", "idle", "iowait")
    }
    return {"usage": 100.0 - shares["idle"] - shares["iowait"], **shares}


def sample_percent(
    root: Path = Path("/"), cpu: int | None = None, *, interval: float = 1.0
) -> dict[str, float]:
    """Sample twice ``interval`` seconds apart (1 s like virsh) and return the percentages."""
    before = read_cpu_times(root, cpu)
    time.sleep(interval)
    return percentages(before, read_cpu_times(root, cpu))


def read_cpu_mhz(root: Path = Path("/")) -> int:
    """The CPU frequency in MHz: cpufreq's maximum of cpu0, else ``cpu MHz`` of cpuinfo (0)."""
    try:
        khz = int((root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz // 1000
    except (OSError, ValueError):
        pass
    try:
        text = (root / "proc/cpuinfo").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                return int(float(value))
            except ValueError:
                return 0
    return 0
