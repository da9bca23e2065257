"""Is KVM here, and is it fast? Detection of ``/dev/kvm`` plus a short, bounded speed probe.

This module owns the answer to "should new domains be ``type='kvm'`` or ``type='qemu'``":

* :func:`inspect_device` opens the device, checks ``KVM_GET_API_VERSION`` (must be 12) and asks
  ``KVM_CHECK_EXTENSION`` for a few capabilities QEMU relies on;
* :func:`loaded_kvm_modules` and :func:`count_virt_flags` read ``/sys/module`` and
  ``/proc/cpuinfo`` under a root path (fake trees in tests);
* :func:`run_probe` runs :mod:`pyvirt.host._kvm_probe` in a child process: a tiny real-mode guest
  that counts VM exits and times a ``dec ecx; jnz`` loop under ``KVM_RUN``. The child bounds
  itself with ``SIGALRM`` and the parent kills it on a hard timeout, so the probe never hangs;
* :func:`classify` turns the numbers into a verdict (``fast``/``slow``/``absent``);
* :func:`kvm_status` ties it together and caches the probe per boot (keyed by
  ``/proc/sys/kernel/random/boot_id``, at most a day old) in a JSON file whose path the caller
  passes (normally ``StatePaths.cache / "host" / "kvm-probe.json"``);
* :func:`default_domain_type` answers ``'kvm'`` only for a fast KVM.

Why a direct ioctl probe and not "QEMU under -accel kvm vs tcg": it needs no guest image, takes
about 40 ms, and measures exactly what matters (guest instructions per second and exit cost).
Why the presence of ``/dev/kvm`` is not enough: some hosts expose a KVM that emulates (nested
setups without VMX/SVM, software KVM ports); there a guest kernel does not even boot, and TCG is
the faster choice.

Importing this module runs nothing; every probe happens on call.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import subprocess  # not hostcmd: the probe child is killed when its time budget is spent
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyvirt.errors import HostCommandError, UnsupportedError

log = logging.getLogger(__name__)

Verdict = Literal["fast", "slow", "absent"]

KVM_DEVICE = Path("/dev/kvm")
KVM_API_VERSION = 12
_KVM_GET_API_VERSION = 0xAE00
_KVM_CHECK_EXTENSION = 0xAE03

#: Capabilities asked with KVM_CHECK_EXTENSION (numbers from <linux/kvm.h>).
EXTENSIONS: dict[str, int] = {
    "KVM_CAP_USER_MEMORY": 3,
    "KVM_CAP_SET_TSS_ADDR": 4,
    "KVM_CAP_NR_VCPUS": 9,
    "KVM_CAP_NR_MEMSLOTS": 10,
    "KVM_CAP_SYNC_MMU": 16,
    "KVM_CAP_IRQFD": 32,
    "KVM_CAP_IOEVENTFD": 36,
    "KVM_CAP_INTERNAL_ERROR_DATA": 40,
    "KVM_CAP_MAX_VCPUS": 66,
}

#: ``dec ecx; jnz`` iterations per second of a hardware-assisted vCPU: about one per cycle at
#: 1+ GHz. Used only to express "N times slower than expected".
EXPECTED_LOOP_RATE = 1e9
#: Below this loop rate the verdict is ``slow``; 20x under the worst plausible hardware, and
#: still far above an emulating KVM (under 1e6).
FAST_LOOP_RATE = 5e7
#: Below this many VM exits per second (measured through Python) the verdict is ``slow``.
FAST_EXIT_RATE = 1000.0
#: Seconds the probe guest may run; the child process needs ~20-40 ms more to start.
PROBE_BUDGET = 0.15
#: Hard timeout added to the budget before the child is killed.
PROBE_GRACE = 1.0
CACHE_MAX_AGE = 24 * 3600.0
_CACHE_VERSION = 1
_PROBE_SCRIPT = Path(__file__).with_name("_kvm_probe.py")


@dataclass(frozen=True)
class KvmDevice:
    """What opening the KVM device node showed.

    :ivar path: the device path
    :ivar exists: the node exists
    :ivar accessible: it opened read-write
    :ivar api_version: ``KVM_GET_API_VERSION`` (12 on every kernel since 2.6.22), when opened
    :ivar extensions: ``KVM_CHECK_EXTENSION`` results by capability name
    :ivar error: why it did not open or answer, else ``None``
    """

    path: str
    exists: bool
    accessible: bool = False
    api_version: int | None = None
    extensions: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """Raw numbers from one probe run (see :mod:`pyvirt.host._kvm_probe`).

    :ivar error: set when the guest could not be created or run
    :ivar stage: where the probe stopped (``done`` when it completed)
    :ivar timed_out: the budget expired while the guest was running
    :ivar exits: VM exits counted in ``exit_seconds``
    :ivar loop_iterations: loop iterations of the fastest chunk, run in ``loop_seconds``
    :ivar elapsed: wall-clock seconds including process start
    """

    error: str | None
    stage: str
    timed_out: bool
    api_version: int | None
    exits: int
    exit_seconds: float
    loop_iterations: int
    loop_seconds: float
    elapsed: float

    @property
    def exits_per_sec(self) -> float | None:
        """VM exits per second, or ``None`` if none were timed."""
        return self.exits / self.exit_seconds if self.exits and self.exit_seconds > 0 else None

    @property
    def loop_rate(self) -> float | None:
        """Guest loop iterations per second, or ``None`` if no chunk finished."""
        if self.loop_iterations and self.loop_seconds > 0:
            return self.loop_iterations / self.loop_seconds
        return None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        """Build from the child's JSON (or a cache entry); unknown keys are ignored."""
        return cls(
            error=data.get("error"),
            stage=str(data.get("stage", "")),
            timed_out=bool(data.get("timed_out", False)),
            api_version=data.get("api_version"),
            exits=int(data.get("exits", 0)),
            exit_seconds=float(data.get("exit_seconds", 0.0)),
            loop_iterations=int(data.get("loop_iterations", 0)),
            loop_seconds=float(data.get("loop_seconds", 0.0)),
            elapsed=float(data.get("elapsed", 0.0)),
        )


@dataclass(frozen=True)
class KvmStatus:
    """Everything pyvirt knows about KVM on this host.

    :ivar verdict: ``fast`` (use KVM), ``slow`` (KVM runs guests, but slower than TCG would
        be worth) or ``absent`` (no usable KVM)
    :ivar usable: a guest actually ran under ``KVM_RUN`` (true for ``fast`` and usually ``slow``)
    :ivar reason: one line for humans, e.g. why the verdict is not ``fast``
    :ivar exits_per_sec: VM exit round trips per second measured by the probe
    :ivar loop_rate: guest loop iterations per second measured by the probe
    :ivar slowdown: :data:`EXPECTED_LOOP_RATE` divided by ``loop_rate`` (how many times slower
        than typical hardware), when measured
    :ivar cached: the probe numbers came from the cache
    """

    verdict: Verdict
    usable: bool
    reason: str
    device: KvmDevice
    modules: tuple[str, ...] = ()
    virt_flags: int = 0
    probe: ProbeResult | None = None
    exits_per_sec: float | None = None
    loop_rate: float | None = None
    slowdown: float | None = None
    cached: bool = False

    @property
    def fast(self) -> bool:
        """True when new domains should use KVM."""
        return self.verdict == "fast"


def inspect_device(device: Path = KVM_DEVICE) -> KvmDevice:
    """Open ``device`` read-write and query its API version and a few extensions.

    Never raises for an absent or inaccessible device: that is a normal answer.

    :param device: the KVM device node
    """
    path = str(device)
    if not os.path.exists(path):
        return KvmDevice(path, exists=False, error=f"{path} does not exist")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        return KvmDevice(path, exists=True, error=f"cannot open {path}: {err.strerror}")
    try:
        try:
            version = fcntl.ioctl(fd, _KVM_GET_API_VERSION, 0)
        except OSError as err:
            return KvmDevice(
                path, True, True, error=f"{path} does not answer KVM ioctls: {err.strerror}"
            )
        extensions: dict[str, int] = {}
        for name, number in EXTENSIONS.items():
            try:
                extensions[name] = fcntl.ioctl(fd, _KVM_CHECK_EXTENSION, number)
            except OSError:
                extensions[name] = 0
        error = None
        if version != KVM_API_VERSION:
            error = f"{path} has KVM API version {version}, expected {KVM_API_VERSION}"
        return KvmDevice(path, True, True, version, extensions, error)
    finally:
        os.close(fd)


def loaded_kvm_modules(root: Path = Path("/")) -> tuple[str, ...]:
    """Names of loaded KVM kernel modules (``kvm``, ``kvm_intel``, ``kvm_amd``, ...).

    :param root: filesystem root holding ``sys/module``
    """
    module_dir = root / "sys" / "module"
    try:
        names = [p.name for p in module_dir.iterdir()]
    except OSError:
        return ()
    return tuple(sorted(n for n in names if n == "kvm" or n.startswith("kvm_")))


def count_virt_flags(root: Path = Path("/")) -> int:
    """Count CPUs whose ``/proc/cpuinfo`` flags include ``vmx`` or ``svm``.

    Like ``egrep -c '(vmx|svm)' /proc/cpuinfo`` but matching whole flag words only.

    :param root: filesystem root holding ``proc/cpuinfo``
    """
    try:
        text = (root / "proc" / "cpuinfo").read_text(errors="replace")
    except OSError:
        return 0
    count = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags" and {"vmx", "svm"} & set(value.split()):
            count += 1
    return count


def run_probe(
    device: Path = KVM_DEVICE, *, budget: float = PROBE_BUDGET, grace: float = PROBE_GRACE
) -> ProbeResult:
    """Run the speed probe in a child process and return its numbers.

    :param device: the KVM device node
    :param budget: seconds the probe guest may run
    :param grace: extra seconds (process start) before the child is killed
    :raises HostCommandError: the child could not be started, died, or printed no result
    """
    argv = [
        sys.executable,
        "-I",
        "-S",
        str(_PROBE_SCRIPT),
        "--device",
        str(device),
        "--budget",
        f"{budget:.3f}",
    ]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as err:
        raise HostCommandError(f"cannot start the KVM probe: {err}", argv=argv) from err
    try:
        stdout, stderr = proc.communicate(timeout=budget + grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.communicate(timeout=1.0)
        except subprocess.TimeoutExpired:
            log.warning("KVM probe pid %d did not die after SIGKILL", proc.pid)
        elapsed = time.monotonic() - start
        return ProbeResult(None, "killed", True, None, 0, 0.0, 0, 0.0, elapsed)
    if proc.returncode != 0:
        raise HostCommandError(
            "the KVM probe failed", argv=argv, returncode=proc.returncode, stderr=stderr
        )
    try:
        data = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise HostCommandError(
            "the KVM probe printed no result", argv=argv, returncode=0, stderr=stderr
        ) from err
    result = ProbeResult.from_json(data)
    return ProbeResult(**{**asdict(result), "elapsed": time.monotonic() - start})


def classify(
    probe: ProbeResult, *, budget: float = PROBE_BUDGET
) -> tuple[Verdict, bool, str, float | None]:
    """Turn probe numbers into ``(verdict, usable, reason, slowdown)``.

    Pure: the thresholds are :data:`FAST_LOOP_RATE` and :data:`FAST_EXIT_RATE`.

    :param probe: the measurements
    :param budget: the budget the probe ran with (bounds the rate when nothing finished)
    """
    if probe.error:
        return "absent", False, f"KVM probe failed at {probe.stage}: {probe.error}", None
    if probe.exits == 0:
        why = "did not reach its first VM exit" if probe.timed_out else "did not run"
        return "absent", False, f"a KVM guest {why} within {budget * 1000:.0f} ms", None
    loop_rate = probe.loop_rate
    exit_rate = probe.exits_per_sec
    if loop_rate is None:
        # Not even the first chunk of the loop finished: at most that many per budget.
        upper = 1000.0 / budget
        slowdown = EXPECTED_LOOP_RATE / upper
        return (
            "slow",
            True,
            f"KVM runs guest code at under {upper:,.0f} loop iterations/s "
            f"(at least ~{slowdown:,.0f} times slower than expected)",
            slowdown,
        )
    slowdown = EXPECTED_LOOP_RATE / loop_rate
    if loop_rate < FAST_LOOP_RATE:
        return (
            "slow",
            True,
            f"KVM runs guest code at {loop_rate:,.0f} loop iterations/s, "
            f"~{slowdown:,.0f} times slower than expected",
            slowdown,
        )
    if exit_rate is not None and exit_rate < FAST_EXIT_RATE:
        return (
            "slow",
            True,
            f"KVM handles only {exit_rate:,.0f} VM exits/s (expected thousands)",
            slowdown,
        )
    return (
        "fast",
        True,
        f"KVM is hardware-fast ({loop_rate / 1e6:,.0f}M loop iterations/s, "
        f"{exit_rate or 0:,.0f} exits/s)",
        slowdown,
    )


def read_boot_id(root: Path = Path("/")) -> str | None:
    """The kernel's boot id (changes on every boot), or ``None`` when unreadable."""
    try:
        return (root / "proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _load_cached(cache_path: Path, boot_id: str, device: str, max_age: float) -> ProbeResult | None:
    try:
        data = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return None
    if data.get("boot_id") != boot_id or data.get("device") != device:
        return None
    age = time.time() - float(data.get("time", 0))
    if not 0 <= age <= max_age or not isinstance(data.get("probe"), dict):
        return None
    return ProbeResult.from_json(data["probe"])


def _store_cached(cache_path: Path, boot_id: str, device: str, probe: ProbeResult) -> None:
    record = {
        "version": _CACHE_VERSION,
        "boot_id": boot_id,
        "device": device,
        "time": time.time(),
        "probe": asdict(probe),
    }
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, cache_path)
    except OSError as err:
        # A cache is an optimisation; a read-only state dir must not break host queries.
        if err.errno not in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOENT):
            log.warning("cannot write KVM probe cache %s: %s", cache_path, err)


def kvm_status(
    *,
    root: Path = Path("/"),
    device: Path = KVM_DEVICE,
    cache_path: Path | None = None,
    probe: bool = True,
    max_age: float = CACHE_MAX_AGE,
    budget: float = PROBE_BUDGET,
) -> KvmStatus:
    """Detect KVM and, when the device works, measure it (or reuse this boot's measurement).

    :param root: filesystem root for ``/proc`` and ``/sys`` reads (tests pass a fake tree)
    :param device: the KVM device node
    :param cache_path: JSON file caching the probe per boot id; ``None`` disables the cache
    :param probe: run (or reuse) the speed probe; without it an openable device is ``slow``
        with reason "not measured", so nothing trusts an unmeasured KVM
    :param max_age: seconds a cached probe stays valid
    :param budget: seconds the probe guest may run
    """
    modules = loaded_kvm_modules(root)
    flags = count_virt_flags(root)
    dev = inspect_device(device)
    base: dict[str, Any] = {"device": dev, "modules": modules, "virt_flags": flags}
    if not dev.exists:
        hint = "the kvm module is not loaded" if not modules else "no device node"
        return KvmStatus("absent", False, f"{dev.path} does not exist ({hint})", **base)
    if dev.error is not None:
        return KvmStatus("absent", False, dev.error, **base)
    if not probe:
        return KvmStatus("slow", True, "KVM is present but its speed was not measured", **base)

    boot_id = read_boot_id(root)
    result: ProbeResult | None = None
    cached = False
    if cache_path is not None and boot_id is not None:
        result = _load_cached(cache_path, boot_id, dev.path, max_age)
        cached = result is not None
    if result is None:
        try:
            result = run_probe(device, budget=budget)
        except HostCommandError as err:
            return KvmStatus("absent", False, f"KVM probe failed: {err}", **base)
        if cache_path is not None and boot_id is not None:
            _store_cached(cache_path, boot_id, dev.path, result)
    verdict, usable, reason, slowdown = classify(result, budget=budget)
    log.debug("KVM verdict %s: %s", verdict, reason)
    return KvmStatus(
        verdict,
        usable,
        reason,
        probe=result,
        exits_per_sec=result.exits_per_sec,
        loop_rate=result.loop_rate,
        slowdown=slowdown,
        cached=cached,
        **base,
    )


def default_domain_type(
    status: KvmStatus | None = None, *, cache_path: Path | None = None
) -> Literal["kvm", "qemu"]:
    """The ``<domain type>`` for new domains: ``'kvm'`` only when the probe says KVM is fast.

    :param status: an already computed status; otherwise :func:`kvm_status` runs
    :param cache_path: probe cache file used when ``status`` is not given
    """
    if status is None:
        status = kvm_status(cache_path=cache_path)
    return "kvm" if status.fast else "qemu"


def probe_cache(cache_root: Path) -> Path:
    """The probe cache file under a state cache directory (``StatePaths.cache``)."""
    return cache_root / "host" / "kvm-probe.json"


def require_kvm(
    subject: str,
    fix: str,
    *,
    cache_path: Path | None = None,
    status: KvmStatus | None = None,
) -> None:
    """Refuse, in one line, to use KVM on a host whose KVM cannot run guests.

    Only a ``fast`` verdict passes: an emulating KVM (``slow``) makes QEMU crash or crawl, and
    there is no silent fallback to TCG. The verdict comes from the per-boot probe cache (under
    a millisecond); only the first call of a boot runs the probe.

    :param subject: what wants KVM, e.g. ``"--virt-type kvm"`` or ``"domain 'vm1' is type='kvm'"``
    :param fix: the way out, e.g. ``"use --virt-type qemu"``
    :param cache_path: the probe cache (:func:`probe_cache`); ``None`` probes without caching
    :param status: an already computed status (tests)
    :raises UnsupportedError: naming the reason and ``fix``, without a separate hint
    """
    if status is None:
        if cache_path is not None:
            with contextlib.suppress(OSError):
                cache_path.parent.mkdir(parents=True, exist_ok=True)
        status = kvm_status(cache_path=cache_path)
    if status.fast:
        return
    why = status.reason if status.verdict == "absent" else f"it is emulated: {status.reason}"
    raise UnsupportedError(f"{subject} but KVM cannot run guests on this host ({why}); {fix}")
