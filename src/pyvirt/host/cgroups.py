"""Per-domain control groups, on cgroup v1, v2 or a hybrid of both.

:class:`CgroupLayout` finds, per controller (``cpu``, ``cpuset``, ``memory``), the hierarchy
that carries it: a v1 mount (``cgroup`` with the controller in its options) or the v2 mount
(``cgroup2`` listing it in ``cgroup.controllers``). A hybrid host (v1 controllers plus a v2
mount holding few or no controllers) is handled per controller.

A domain's cgroup is ``<caller's cgroup>/pyvirt/NAME`` on v1 (nested under the cgroup of the
process that starts it, so limits put on the manager keep applying to its guests) and
``/pyvirt.slice/pyvirt-NAME`` on v2 (v2 allows processes only in leaves, so the domain
cgroups live under a slice of their own, like systemd's ``machine.slice``).

:class:`DomainCgroup` creates the directories, moves a process (all its threads) in, sets and
reads CPU, memory and cpuset values with the v1 or v2 file names, and removes it again.
Values are exchanged in the units virsh shows: shares, microseconds, KiB; ``None`` for
"unlimited". Every reader and writer takes paths, so unit tests run on fake trees.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError

CONTROLLERS = ("cpu", "cpuset", "memory")
#: v1 memory limits at or above this many bytes mean "no limit" (the kernel writes 2^63-4096)
UNLIMITED_BYTES = 1 << 62


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller lives: the mount point, the cgroup version and the caller's path."""

    controller: str
    mount: Path
    version: int
    own: str = "/"

    def domain_dir(self, name: str) -> Path:
        """The directory of domain ``name``'s cgroup in this hierarchy."""
        if self.version == 2:
            return self.mount / "pyvirt.slice" / f"pyvirt-{name}"
        return self.mount / self.own.lstrip("/") / "pyvirt" / name


@dataclass
class CgroupLayout:
    """The controllers found on a host (``controllers``) and the v2 mount, if any."""

    controllers: dict[str, Hierarchy] = field(default_factory=dict)
    v2_mount: Path | None = None

    @classmethod
    def detect(
        cls, mounts: Path = Path("/proc/self/mounts"), own: Path = Path("/proc/self/cgroup")
    ) -> CgroupLayout:
        """Read the mount table and the caller's cgroup membership.

        :param mounts: a ``/proc/mounts``-format file (a fake one in tests)
        :param own: a ``/proc/PID/cgroup``-format file
        """
        v1: dict[str, Path] = {}
        v2: Path | None = None
        for line in _read(mounts).splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            fstype, point, options = parts[2], Path(parts[1]), parts[3].split(",")
            if fstype == "cgroup":
                for opt in options:
                    if opt in CONTROLLERS:
                        v1[opt] = point
            elif fstype == "cgroup2":
                v2 = point
        membership = parse_membership(_read(own))
        layout = cls(v2_mount=v2)
        for ctrl in CONTROLLERS:
            if ctrl in v1:
                layout.controllers[ctrl] = Hierarchy(ctrl, v1[ctrl], 1, membership.get(ctrl, "/"))
            elif v2 is not None and ctrl in _read(v2 / "cgroup.controllers").split():
                layout.controllers[ctrl] = Hierarchy(ctrl, v2, 2, membership.get("", "/"))
        return layout

    def require(self, ctrl: str, what: str) -> Hierarchy:
        """The hierarchy of ``ctrl``.

        :raises UnsupportedError: the kernel has no such controller mounted
        """
        h = self.controllers.get(ctrl)
        if h is None:
            raise UnsupportedError(
                f"{what} needs the cgroup '{ctrl}' controller, which this host has not mounted",
                hint=f"mount the {ctrl} controller (cgroup v1) or enable it in cgroup v2",
            )
        return h


def parse_membership(text: str) -> dict[str, str]:
    """``/proc/PID/cgroup`` as controller -> path (the v2 line has the key ``""``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        names = parts[1].split(",") if parts[1] else [""]
        for n in names:
            out[n] = parts[2]
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as err:
        raise OperationFailedError(
            f"cannot write '{value}' to cgroup file {path}: {err.strerror}"
        ) from err


class DomainCgroup:
    """One domain's cgroup directories, one per controller (v1) or a single one (v2)."""

    def __init__(self, layout: CgroupLayout, dirs: dict[str, Path]) -> None:
        self.layout = layout
        self.dirs = dirs

    # -- creation and lookup -------------------------------------------------------------
    @classmethod
    def create(cls, layout: CgroupLayout, name: str) -> DomainCgroup:
        """Create domain ``name``'s cgroup in every hierarchy (idempotent)."""
        dirs: dict[str, Path] = {}
        v2_enabled: list[str] = []
        for ctrl, h in layout.controllers.items():
            target = h.domain_dir(name)
            dirs[ctrl] = target
            if h.version == 2:
                v2_enabled.append(ctrl)
            else:
                _make_v1(target, ctrl)
        if v2_enabled:
            _make_v2(next(iter(dirs[c] for c in v2_enabled)), v2_enabled)
        return cls(layout, dirs)

    @classmethod
    def of_pid(cls, layout: CgroupLayout, pid: int, proc: Path = Path("/proc")) -> DomainCgroup:
        """The cgroup directories process ``pid`` is in now (for live tuning)."""
        membership = parse_membership(_read(proc / str(pid) / "cgroup"))
        dirs: dict[str, Path] = {}
        for ctrl, h in layout.controllers.items():
            rel = membership.get(ctrl if h.version == 1 else "")
            if rel is not None:
                dirs[ctrl] = h.mount / rel.lstrip("/")
        return cls(layout, dirs)

    def to_json(self) -> str:
        """The directories, for the run dir (``after_stop`` removes them from this)."""
        return json.dumps({c: str(p) for c, p in self.dirs.items()})

    @classmethod
    def from_json(cls, layout: CgroupLayout, text: str) -> DomainCgroup:
        """Inverse of :meth:`to_json`."""
        return cls(layout, {c: Path(p) for c, p in json.loads(text).items()})

    def owned(self) -> bool:
        """Whether these are pyvirt-made domain cgroups (not the caller's own cgroup)."""
        return bool(self.dirs) and all(
            p.parent.name in ("pyvirt", "pyvirt.slice") for p in self.dirs.values()
        )

    def attach(self, pid: int) -> None:
        """Move process ``pid`` with all its threads into every directory."""
        for d in sorted(set(self.dirs.values())):
            _write(d / "cgroup.procs", str(pid))

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the directories (they must be empty of processes); missing ones are fine."""
        for d in sorted(set(self.dirs.values())):
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    # the dying QEMU may still be listed for a moment
                    if err.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise OperationFailedError(
                            f"cannot remove cgroup {d}: {err.strerror}"
                        ) from err
                    time.sleep(0.02)
            # the shared parent goes too once its last domain is gone, so that pyvirt
            # leaves nothing behind in the caller's cgroup
            with contextlib.suppress(OSError):
                d.parent.rmdir()

    def _dir(self, ctrl: str, what: str) -> tuple[Path, int]:
        h = self.layout.require(ctrl, what)
        d = self.dirs.get(ctrl)
        if d is None:
            raise UnsupportedError(f"{what}: the domain has no '{ctrl}' cgroup")
        return d, h.version

    # -- cpu -------------------------------------------------------------------------------
    def set_cpu(
        self, *, shares: int | None = None, period: int | None = None, quota: int | None = None
    ) -> None:
        """Set CPU shares (weight), CFS period (µs) and quota (µs; negative = unlimited)."""
        d, version = self._dir("cpu", "schedinfo")
        if shares is not None and not 2 <= shares <= 262144:
            raise InvalidConfigError(f"cpu_shares {shares} is out of range 2-262144")
        if period is not None and not 1000 <= period <= 1000000:
            raise InvalidConfigError(f"vcpu_period {period} is out of range 1000-1000000 µs")
        if quota is not None and 0 <= quota < 1000:
            raise InvalidConfigError(f"vcpu_quota {quota} is below 1000 µs (use -1 for no limit)")
        if version == 1:
            if shares is not None:
                _write(d / "cpu.shares", str(shares))
            if period is not None:
                _write(d / "cpu.cfs_period_us", str(period))
            if quota is not None:
                _write(d / "cpu.cfs_quota_us", str(quota if quota >= 0 else -1))
            return
        if shares is not None:
            _write(d / "cpu.weight", str(shares_to_weight(shares)))
        if period is not None or quota is not None:
            cur_quota, cur_period = self.cpu()["quota"], self.cpu()["period"]
            q = cur_quota if quota is None else quota
            p = cur_period if period is None else period
            _write(d / "cpu.max", f"{'max' if q is None or q < 0 else q} {p}")

    def cpu(self) -> dict[str, int | None]:
        """``shares``, ``period`` and ``quota`` (``None`` = unlimited) as virsh shows them."""
        d, version = self._dir("cpu", "schedinfo")
        if version == 1:
            quota = int(_read(d / "cpu.cfs_quota_us") or -1)
            return {
                "shares": int(_read(d / "cpu.shares") or 1024),
                "period": int(_read(d / "cpu.cfs_period_us") or 100000),
                "quota": None if quota < 0 else quota,
            }
        weight = int(_read(d / "cpu.weight") or 100)
        q_text, _, p_text = (_read(d / "cpu.max").strip() or "max 100000").partition(" ")
        return {
            "shares": weight_to_shares(weight),
            "period": int(p_text or 100000),
            "quota": None if q_text == "max" else int(q_text),
        }

    # -- memory ----------------------------------------------------------------------------
    def set_memory(
        self,
        *,
        hard_kib: int | None = None,
        soft_kib: int | None = None,
        swap_kib: int | None = None,
    ) -> None:
        """Set the hard, soft and swap+memory limits in KiB; a negative value removes one."""
        d, version = self._dir("memory", "memtune")
        names = (
            {"hard": "memory.limit_in_bytes", "soft": "memory.soft_limit_in_bytes",
             "swap": "memory.memsw.limit_in_bytes"}
            if version == 1
            else {"hard": "memory.max", "soft": "memory.high", "swap": "memory.swap.max"}
        )  # fmt: skip
        values = {"hard": hard_kib, "soft": soft_kib, "swap": swap_kib}
        if version == 1 and swap_kib is not None and not (d / names["swap"]).exists():
            raise UnsupportedError(
                "swap_hard_limit needs swap accounting (memory.memsw.*), which this kernel lacks",
                hint="boot with swapaccount=1",
            )
        # v1 wants memsw >= limit at every moment: raise memsw first when growing, last
        # when shrinking
        order = ["hard", "soft", "swap"]
        if version == 1 and swap_kib is not None:
            cur = self.memory()["swap"]
            if swap_kib < 0 or cur is None or swap_kib > cur:
                order = ["swap", "hard", "soft"]
        for key in order:
            value = values[key]
            if value is None:
                continue
            if version == 1:
                text = "-1" if value < 0 else str(value * 1024)
            elif key == "swap":
                # v2 swap.max counts swap only; libvirt's swap_hard_limit is memory + swap
                hard = hard_kib if hard_kib is not None else self.memory()["hard"]
                text = "max" if value < 0 or hard is None else str(max(value - hard, 0) * 1024)
            else:
                text = "max" if value < 0 else str(value * 1024)
            _write(d / names[key], text)

    def memory(self) -> dict[str, int | None]:
        """``hard``, ``soft``, ``swap`` limits and ``usage`` in KiB (``None`` = unlimited)."""
        d, version = self._dir("memory", "memtune")

        def kib(name: str) -> int | None:
            text = _read(d / name).strip()
            if not text or text == "max":
                return None
            value = int(text)
            return None if value >= UNLIMITED_BYTES else value // 1024

        if version == 1:
            return {
                "hard": kib("memory.limit_in_bytes"),
                "soft": kib("memory.soft_limit_in_bytes"),
                "swap": kib("memory.memsw.limit_in_bytes"),
                "usage": kib("memory.usage_in_bytes"),
            }
        hard, swap = kib("memory.max"), kib("memory.swap.max")
        return {
            "hard": hard,
            "soft": kib("memory.high"),
            "swap": None if swap is None or hard is None else hard + swap,
            "usage": kib("memory.current"),
        }

    # -- cpuset ----------------------------------------------------------------------------
    def set_mems(self, nodeset: str) -> None:
        """Restrict the domain's memory to host NUMA nodes ``nodeset`` (cpuset.mems)."""
        d, _ = self._dir("cpuset", "numatune")
        _write(d / "cpuset.mems", nodeset)

    def mems(self) -> str:
        """The effective memory nodes of the domain's cpuset."""
        d, _ = self._dir("cpuset", "numatune")
        return (_read(d / "cpuset.effective_mems") or _read(d / "cpuset.mems")).strip()


def shares_to_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` (2-262144, default 1024) to v2 ``cpu.weight`` (1-10000)."""
    return max(1, min(10000, 1 + ((shares - 2) * 9999) // 262142))


def weight_to_shares(weight: int) -> int:
    """Inverse of :func:`shares_to_weight` (rounded; 100 gives 2623, not exactly 1024)."""
    return 2 + ((weight - 1) * 262142 + 9998) // 9999


def _make_v1(target: Path, ctrl: str) -> None:
    for attempt in range(2):
        try:
            _make_v1_dirs(target, ctrl)
            return
        except FileNotFoundError:
            if attempt:
                raise
            # the shared parent was removed by another domain's stop meanwhile: once more


def _make_v1_dirs(target: Path, ctrl: str) -> None:
    for d in (target.parent, target):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise
        except OSError as err:
            raise OperationFailedError(f"cannot create cgroup {d}: {err.strerror}") from err
        if ctrl == "cpuset":
            # a new v1 cpuset is empty; a task cannot join it before cpus and mems are set
            for name in ("cpuset.cpus", "cpuset.mems"):
                _write(d / name, _read(d.parent / name).strip())


def _make_v2(target: Path, ctrls: list[str]) -> None:
    enable = " ".join(f"+{c}" for c in ctrls)
    for d in (target.parent, target):
        if not d.is_dir():
            try:
                d.mkdir()
            except OSError as err:
                raise OperationFailedError(f"cannot create cgroup {d}: {err.strerror}") from err
        if d is not target:
            # a parent must pass the controllers down before its children may use them
            _write(d.parent / "cgroup.subtree_control", enable)
            _write(d / "cgroup.subtree_control", enable)
