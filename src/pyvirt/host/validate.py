"""``pyvirt host-validate``: is this host ready for QEMU guests? (``virt-host-validate qemu``)

:func:`host_validate` returns one :class:`Check` per question, each a real look at the host:
hardware virtualization flags, ``/dev/kvm`` (exists, opens, and is hardware-fast according to
the probe in :mod:`pyvirt.host.kvm`), the QEMU binaries, cgroup controllers (v1 or v2),
``/dev/net/tun``, ``/dev/vhost-net``, IOMMU groups for device assignment, NUMA nodes in sysfs,
hugepages (sizes offered, hugetlbfs mounted at ``/dev/hugepages``) and KSM.

Status policy: ``FAIL`` means something pyvirt needs is missing or misconfigured (no
``qemu-system-x86_64``, an inaccessible ``/dev/kvm``, KVM modules not loaded although the CPU
supports VT-x/AMD-V); ``WARN`` means guests still run, with less performance or fewer features
(no KVM at all, a slow KVM, no vhost-net, no IOMMU). Every non-PASS check names the missing
kernel feature and says what to do in ``hint``.

All paths are read under ``root`` so unit tests run against a fake tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pyvirt.errors import HostCommandError, NotFoundError
from pyvirt.host.kvm import KvmStatus, count_virt_flags, kvm_status, loaded_kvm_modules
from pyvirt.host.qemu_binaries import find_qemu_binaries, find_qemu_img, qemu_version

CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "blkio")
_V2_EQUIVALENTS = {"cpu": ("cpu", "cpuacct"), "io": ("blkio",)}


class CheckStatus(StrEnum):
    """Outcome of one check."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One host check.

    :ivar name: what was checked, e.g. ``QEMU: Checking if device /dev/kvm exists``
    :ivar detail: what was found (why it failed or warned)
    :ivar hint: the next step for the user, when there is one
    """

    name: str
    status: CheckStatus
    detail: str = ""
    hint: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """JSON-ready dict (``host-validate --json``; the status as its string)."""
        return {"name": self.name, "status": str(self.status), "detail": self.detail,
                "hint": self.hint}  # fmt: skip


def _under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def read_mounts(root: Path = Path("/")) -> list[tuple[str, str, set[str]]]:
    """``(mount point, fstype, options)`` for each line of ``/proc/mounts``."""
    try:
        text = _under(root, "/proc/mounts").read_text()
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
            mounts.append((point, fields[2], set(fields[3].split(","))))
    return mounts


def cgroup_controllers(root: Path = Path("/")) -> dict[str, str]:
    """Mounted cgroup controllers: ``{name: "v1 at PATH" | "v2 at PATH"}``.

    Names are v1's (``blkio``, ``cpuacct``, ``devices``); their cgroup2 equivalents (``io``,
    ``cpu``, BPF device filtering) count. A v1 hierarchy lists its controllers in the mount
    options; a v2 mount lists the ones it can delegate in ``cgroup.controllers``. v1 wins when
    both carry a controller (the kernel binds a controller to one hierarchy only).
    """
    found: dict[str, str] = {}
    mounts = read_mounts(root)
    for point, fstype, options in mounts:
        if fstype == "cgroup":
            for name in CGROUP_CONTROLLERS:
                if name in options:
                    found.setdefault(name, f"v1 at {point}")
    for point, fstype, _ in mounts:
        if fstype == "cgroup2":
            try:
                names = _under(root, point).joinpath("cgroup.controllers").read_text().split()
            except OSError:
                continue
            # v2 folds cpuacct into cpu, renames blkio to io, and replaces the devices
            # controller with BPF programs, which any cgroup2 hierarchy supports.
            for name in [*names, "devices"]:
                for v1_name in _V2_EQUIVALENTS.get(name, (name,)):
                    found.setdefault(v1_name, f"v2 at {point}")
    return found


def _check_hw_virt(root: Path, status: KvmStatus) -> Check:
    name = "QEMU: Checking for hardware virtualization"
    count = count_virt_flags(root)
    if count:
        return Check(name, CheckStatus.PASS, f"vmx/svm on {count} CPUs")
    modules = loaded_kvm_modules(root)
    extra = f"; loaded KVM modules: {', '.join(modules)}" if modules else ""
    return Check(
        name,
        CheckStatus.WARN,
        f"no vmx or svm flag in /proc/cpuinfo: the CPU does not expose VT-x/AMD-V{extra}",
        "enable VT-x/AMD-V in the firmware, or nested virtualization on the outer hypervisor; "
        "until then guests run under TCG (type=qemu)",
    )


def _check_kvm_exists(root: Path, status: KvmStatus) -> Check:
    path = status.device.path
    name = f"QEMU: Checking if device {path} exists"
    if status.device.exists:
        return Check(name, CheckStatus.PASS, path)
    hw = count_virt_flags(root) > 0
    modules = loaded_kvm_modules(root)
    detail = f"{path} is missing (kernel feature KVM, CONFIG_KVM"
    detail += f"; loaded modules: {', '.join(modules)})" if modules else "; module not loaded)"
    if hw:
        return Check(
            name,
            CheckStatus.FAIL,
            detail,
            "load the KVM module: modprobe kvm_intel (Intel) or modprobe kvm_amd (AMD)",
        )
    return Check(name, CheckStatus.WARN, detail, "guests run under TCG (type=qemu)")


def _check_kvm_access(root: Path, status: KvmStatus) -> Check | None:
    dev = status.device
    if not dev.exists:
        return None
    name = f"QEMU: Checking if device {dev.path} is accessible"
    if dev.accessible and dev.error is None:
        return Check(name, CheckStatus.PASS, f"KVM API version {dev.api_version}")
    hint = None
    if not dev.accessible:
        hint = f"run as root or add the user to the group owning {dev.path} (usually 'kvm')"
    return Check(name, CheckStatus.FAIL, dev.error or f"cannot open {dev.path}", hint)


def _check_kvm_speed(root: Path, status: KvmStatus) -> Check | None:
    if not (status.device.exists and status.device.accessible and status.device.error is None):
        return None
    name = "QEMU: Checking KVM speed (probe)"
    if status.verdict == "fast":
        return Check(name, CheckStatus.PASS, status.reason)
    if status.verdict == "slow" and status.slowdown is not None:
        detail = (
            f"KVM is present but ~{status.slowdown:,.0f} times slower than expected; "
            f"guests will use TCG (type=qemu) (measured {status.loop_rate or 0:,.0f} guest loop "
            f"iterations/s, {status.exits_per_sec or 0:,.0f} VM exits/s)"
        )
    elif status.verdict == "slow":
        detail = f"{status.reason}; guests will use TCG (type=qemu)"
    else:
        detail = f"KVM does not run guests ({status.reason}); guests will use TCG (type=qemu)"
    hint = (
        "KVM here is not hardware-accelerated (no VT-x/AMD-V, or an emulating KVM); run on "
        "bare metal or enable nested virtualization to use type=kvm"
    )
    return Check(name, CheckStatus.WARN, detail, hint)


def _binary_check(name: str, path: Path | None, what: str) -> Check:
    if path is None:
        return Check(
            name,
            CheckStatus.FAIL,
            f"{what} not found in $PATH or /usr/libexec",
            "install QEMU (Debian: apt install qemu-system-x86 qemu-utils)",
        )
    try:
        version = qemu_version(path, timeout=5.0)
    except (HostCommandError, NotFoundError) as err:
        return Check(name, CheckStatus.FAIL, f"{path} does not run: {err}")
    return Check(name, CheckStatus.PASS, f"{path} (version {version})")


def _check_cgroups(root: Path) -> list[Check]:
    found = cgroup_controllers(root)
    checks = []
    for controller in CGROUP_CONTROLLERS:
        name = f"QEMU: Checking for cgroup '{controller}' controller support"
        if controller in found:
            checks.append(Check(name, CheckStatus.PASS, found[controller]))
        else:
            checks.append(
                Check(
                    name,
                    CheckStatus.WARN,
                    f"cgroup controller '{controller}' is not mounted (v1) nor available "
                    "in a cgroup2 hierarchy",
                    f"enable CONFIG_CGROUPS and the {controller} controller; resource tuning "
                    "for it is unavailable until then",
                )
            )
    return checks


def _check_device(root: Path, path: str, missing: str, hint: str, *, fail: bool = False) -> Check:
    name = f"QEMU: Checking if device {path} exists"
    if _under(root, path).exists():
        return Check(name, CheckStatus.PASS, path)
    return Check(name, CheckStatus.FAIL if fail else CheckStatus.WARN, missing, hint)


def _check_iommu(root: Path) -> Check:
    name = "QEMU: Checking for device assignment IOMMU support"
    groups = _under(root, "/sys/kernel/iommu_groups")
    try:
        count = sum(1 for _ in groups.iterdir())
    except OSError:
        count = 0
    vfio = _under(root, "/dev/vfio/vfio").exists()
    if count:
        detail = f"{count} IOMMU groups"
        if not vfio:
            return Check(
                name,
                CheckStatus.WARN,
                f"{detail}, but /dev/vfio/vfio is missing (kernel feature VFIO, CONFIG_VFIO)",
                "modprobe vfio-pci",
            )
        return Check(name, CheckStatus.PASS, detail)
    detail = (
        "no IOMMU groups in /sys/kernel/iommu_groups: the IOMMU (Intel VT-d / AMD-Vi, kernel "
        "feature CONFIG_IOMMU_SUPPORT) is off or absent, so VFIO PCI passthrough is unavailable"
    )
    if not vfio:
        detail += "; /dev/vfio/vfio is missing too (CONFIG_VFIO)"
    return Check(
        name,
        CheckStatus.WARN,
        detail,
        "enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on), "
        "then modprobe vfio-pci",
    )


def host_validate(
    *,
    root: Path = Path("/"),
    kvm: KvmStatus | None = None,
    kvm_cache_path: Path | None = None,
    search_path: Sequence[Path] | None = None,
) -> list[Check]:
    """Run every host check, in a fixed order.

    :param root: filesystem root for ``/proc``, ``/sys`` and ``/dev`` reads
    :param kvm: a KVM status already computed (tests); otherwise :func:`kvm_status` runs with
        the speed probe, cached in ``kvm_cache_path``
    :param kvm_cache_path: the KVM probe cache file
    :param search_path: where to look for QEMU binaries
    """
    if kvm is None:
        kvm = kvm_status(root=root, cache_path=kvm_cache_path)
    checks: list[Check] = []
    kvm_checks: list[Callable[[Path, KvmStatus], Check | None]] = [
        _check_hw_virt,
        _check_kvm_exists,
        _check_kvm_access,
        _check_kvm_speed,
    ]
    for fn in kvm_checks:
        check = fn(root, kvm)
        if check is not None:
            checks.append(check)
    binaries = find_qemu_binaries(search_path)
    checks.append(
        _binary_check(
            "QEMU: Checking for qemu-system-x86_64",
            binaries.get("x86_64"),
            "qemu-system-x86_64",
        )
    )
    checks.append(
        _binary_check("QEMU: Checking for qemu-img", find_qemu_img(search_path), "qemu-img")
    )
    checks.extend(_check_cgroups(root))
    checks.append(
        _check_device(
            root,
            "/dev/net/tun",
            "/dev/net/tun is missing (kernel feature TUN/TAP, CONFIG_TUN)",
            "modprobe tun; without it guests can only use user-mode networking",
        )
    )
    checks.append(
        _check_device(
            root,
            "/dev/vhost-net",
            "/dev/vhost-net is missing (kernel feature vhost-net, CONFIG_VHOST_NET); "
            "virtio-net falls back to QEMU's userspace backend",
            "modprobe vhost_net",
        )
    )
    checks.append(_check_iommu(root))
    checks.extend(_memory_checks(root))
    return checks


def _memory_checks(root: Path) -> list[Check]:
    """NUMA, hugepage and KSM checks (issue 5); all WARN at worst: guests still run."""
    from pyvirt.host import hugepages, ksm, numa

    checks = []
    name = "QEMU: Checking for NUMA support"
    nodes = numa.node_ids(root)
    if nodes:
        checks.append(Check(name, CheckStatus.PASS, f"{len(nodes)} NUMA node(s) in sysfs"))
    else:
        checks.append(
            Check(
                name,
                CheckStatus.WARN,
                "no /sys/devices/system/node (kernel feature NUMA, CONFIG_NUMA): the host is "
                "treated as one cell and numatune cannot bind memory",
                "use a kernel built with CONFIG_NUMA on multi-socket hosts",
            )
        )
    name = "QEMU: Checking for hugepage support (hugetlbfs at /dev/hugepages)"
    sizes = hugepages.page_sizes(root)
    mounts = hugepages.hugetlbfs_mounts(root)
    if not sizes:
        checks.append(
            Check(
                name,
                CheckStatus.WARN,
                "no /sys/kernel/mm/hugepages (kernel feature HugeTLB, CONFIG_HUGETLBFS): guests "
                "with <memoryBacking><hugepages/> cannot start",
                "use a kernel built with CONFIG_HUGETLBFS",
            )
        )
    elif "/dev/hugepages" not in mounts:
        checks.append(
            Check(
                name,
                CheckStatus.WARN,
                "hugetlbfs is not mounted at /dev/hugepages: guests with "
                "<memoryBacking><hugepages/> cannot start",
                "mount -t hugetlbfs hugetlbfs /dev/hugepages, then reserve pages with allocpages",
            )
        )
    else:
        pools = ", ".join(
            f"{hugepages.format_page_size(p.size_kib)}: {p.total} pages ({p.free} free)"
            for p in hugepages.global_pools(root)
        )
        checks.append(Check(name, CheckStatus.PASS, f"hugetlbfs at /dev/hugepages; {pools}"))
    name = "QEMU: Checking for KSM (same-page merging) support"
    if ksm.available(root):
        state = ksm.read_state(root)
        what = "running" if state.running else "stopped; start it with 'node-memory-tune --run 1'"
        checks.append(Check(name, CheckStatus.PASS, f"/sys/kernel/mm/ksm, {what}"))
    else:
        checks.append(
            Check(
                name,
                CheckStatus.WARN,
                "/sys/kernel/mm/ksm is missing (kernel feature same-page merging, CONFIG_KSM): "
                "identical guest pages are not merged",
                "use a kernel built with CONFIG_KSM",
            )
        )
    return checks


def worst_status(checks: Sequence[Check]) -> CheckStatus:
    """The most severe status among ``checks`` (``PASS`` for an empty list)."""
    order = [CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL]
    return max((c.status for c in checks), key=order.index, default=CheckStatus.PASS)


def format_checks(checks: Sequence[Check], *, width: int | None = None) -> str:
    """Render checks as ``virt-host-validate`` does: ``  NAME : STATUS (detail)`` lines.

    Non-PASS checks get their detail and hint on following lines.
    """
    if width is None:
        width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{check.name.ljust(width)} : {check.status}")
        if check.status is not CheckStatus.PASS:
            if check.detail:
                lines.append(f"    {check.detail}")
            if check.hint:
                lines.append(f"    hint: {check.hint}")
    return "".join(f"{line}\n" for line in lines)
