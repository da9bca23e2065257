"""Kernel same-page merging (KSM) under ``/sys/kernel/mm/ksm`` (``node-memory-tune``).

Settings: ``pages_to_scan`` (pages per wake-up), ``sleep_millisecs`` (between wake-ups),
``merge_across_nodes`` (whether pages of different NUMA nodes may be merged) and ``run``
(0 stop, 1 run, 2 stop and unmerge every merged page). Counters: ``pages_shared`` (merged
pages kept), ``pages_sharing`` (how many more sites use them: the memory saved),
``pages_unshared``, ``pages_volatile`` and ``full_scans``. virsh shows them with an
``shm_`` prefix, which :data:`VIRSH_NAMES` maps.

The kernel refuses to change ``merge_across_nodes`` while pages are merged (EBUSY): the
caller must unmerge first (``run=2``); :func:`set_params` says so instead of a bare errno.

Every reader takes a ``root`` path so unit tests point it at a fake tree.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError

KSM_DIR = "sys/kernel/mm/ksm"
SETTINGS = ("pages_to_scan", "sleep_millisecs", "merge_across_nodes", "run")
COUNTERS = ("pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "full_scans")
#: virsh ``node-memory-tune`` field names
VIRSH_NAMES = {name: f"shm_{name}" for name in (*SETTINGS[:3], *COUNTERS)}
_LIMITS = {"pages_to_scan": (0, 2**31 - 1), "sleep_millisecs": (0, 2**31 - 1)}
_CHOICES = {"merge_across_nodes": (0, 1), "run": (0, 1, 2)}


@dataclass(frozen=True)
class KsmState:
    """Settings and counters read from sysfs; absent files read as ``None``."""

    values: dict[str, int | None]
    page_size_kib: int = 4

    def get(self, name: str) -> int | None:
        """One value by its sysfs name."""
        return self.values.get(name)

    @property
    def running(self) -> bool:
        """Whether ksmd is scanning (``run`` is 1)."""
        return self.values.get("run") == 1

    @property
    def saved_kib(self) -> int:
        """Memory saved by merging: ``pages_sharing`` base pages."""
        return (self.values.get("pages_sharing") or 0) * self.page_size_kib

    def virsh_items(self) -> list[tuple[str, int | None]]:
        """``(virsh name, value)`` in ``node-memory-tune``'s order, ``shm_run`` last."""
        order = ("pages_to_scan", "sleep_millisecs", *COUNTERS, "merge_across_nodes")
        return [(VIRSH_NAMES[n], self.get(n)) for n in order] + [("shm_run", self.get("run"))]

    def to_json(self) -> dict[str, int | None]:
        """JSON-ready dict: the virsh-named values plus ``saved_kib``."""
        return {**dict(self.virsh_items()), "saved_kib": self.saved_kib}


def available(root: Path = Path("/")) -> bool:
    """Whether the kernel has KSM (``CONFIG_KSM``): ``/sys/kernel/mm/ksm/run`` exists."""
    return (root / KSM_DIR / "run").exists()


def _require(root: Path) -> Path:
    if not available(root):
        raise UnsupportedError(
            "this kernel has no KSM (kernel feature same-page merging, CONFIG_KSM): "
            "/sys/kernel/mm/ksm is missing",
            hint="use a kernel built with CONFIG_KSM",
        )
    return root / KSM_DIR


def read_state(root: Path = Path("/")) -> KsmState:
    """Read every KSM setting and counter.

    :raises UnsupportedError: when the kernel has no KSM
    """
    directory = _require(root)
    values: dict[str, int | None] = {}
    for name in (*SETTINGS, *COUNTERS):
        try:
            values[name] = int((directory / name).read_text().strip())
        except (OSError, ValueError):
            values[name] = None
    return KsmState(values)


def validate(params: Mapping[str, int]) -> None:
    """Check names and ranges before anything is written.

    :raises InvalidConfigError: unknown name or value out of range
    """
    for name, value in params.items():
        if name not in SETTINGS:
            raise InvalidConfigError(f"KSM setting '{name}' is unknown")
        if name in _CHOICES and value not in _CHOICES[name]:
            allowed = ", ".join(str(c) for c in _CHOICES[name])
            raise InvalidConfigError(f"KSM {name} must be one of {allowed}, not {value}")
        lo, hi = _LIMITS.get(name, (0, 2**31 - 1))
        if not lo <= value <= hi:
            raise InvalidConfigError(f"KSM {name} must be between {lo} and {hi}, not {value}")


def set_params(root: Path, params: Mapping[str, int]) -> KsmState:
    """Write KSM settings (``run`` last, so a new scan rate applies from the start).

    :returns: the state read back
    :raises UnsupportedError: no KSM in this kernel
    :raises InvalidConfigError: bad value
    :raises OperationFailedError: the kernel refused a write or kept another value
    """
    directory = _require(root)
    validate(params)
    order = sorted(params, key=lambda n: n == "run")
    for name in order:
        value = params[name]
        try:
            (directory / name).write_text(f"{value}\n")
        except OSError as err:
            if name == "merge_across_nodes" and err.errno == errno.EBUSY:
                raise OperationFailedError(
                    "KSM merge_across_nodes cannot change while pages are merged",
                    hint="unmerge first with 'node-memory-tune --run 2', then set it",
                ) from None
            hint = "run as root" if err.errno in (errno.EACCES, errno.EPERM) else None
            raise OperationFailedError(
                f"cannot set KSM {name} to {value}: {err.strerror}", hint=hint
            ) from None
    state = read_state(root)
    for name in order:
        if name != "run" and state.get(name) != params[name]:
            raise OperationFailedError(
                f"KSM {name} reads {state.get(name)} after writing {params[name]}"
            )
    return state
