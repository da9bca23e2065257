"""Installing and cloning domains (virt-install, virt-clone) through the public API.

Both are two steps, so a front end can show what will happen before anything changes:

>>> job = conn.domains.prepare_install(build_install_spec({"name": "web1", "memory": "512",
...     "import_": True, "disk": ["/var/lib/images/web1.qcow2"]}))
>>> print(job.warnings, job.final_xml)
>>> job.run()

``conn.domains.install(spec)`` and ``conn.domains.clone(request)`` do both steps at once.
The spec and request types come from :mod:`pyvirt.install` and :mod:`pyvirt.service.install`
and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain import Domain

if TYPE_CHECKING:
    from pyvirt.install.spec import CheckSpec, InstallSpec
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.install.clone import CloneManager, ClonePlan, CloneRequest
    from pyvirt.service.install.manager import InstallManager, InstallPlan, InstallResult

__all__ = [
    "CheckSpec",
    "CloneJob",
    "CloneRequest",
    "DiskCopyPlan",
    "InstallJob",
    "InstallResult",
    "InstallSpec",
    "build_install_spec",
    "parse_check",
]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: install code loads
# osinfo, storage and cloud-init (not needed unless installing or cloning).


def __getattr__(name: str) -> Any:
    """Re-export the spec and result types without importing them at start-up."""
    if name in ("InstallSpec", "CheckSpec"):
        from pyvirt.install import spec  # lazy

        return getattr(spec, name)
    if name == "CloneRequest":
        from pyvirt.service.install.clone import CloneRequest  # lazy

        return CloneRequest
    if name == "InstallResult":
        from pyvirt.service.install.manager import InstallResult  # lazy

        return InstallResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_install_spec(values: Mapping[str, object]) -> InstallSpec:
    """An install spec from ``pyvirt install``'s option values (names as its parameters:
    ``name``, ``memory``, ``vcpus``, ``disk`` (a list), ``network``, ``import_``, ...).

    :raises InvalidConfigError: the first malformed option, named as on the command line
    """
    from pyvirt.install.cmdline import build_spec  # lazy

    return build_spec(values)


def parse_check(text: str) -> CheckSpec:
    """virt-install's ``--check path_in_use=off,...``.

    :raises InvalidConfigError: an unknown check or value
    """
    from pyvirt.install.options import parse_check as parse  # lazy

    return parse(text)


class InstallJob:
    """A planned installation: what it will define and start. Nothing changed yet."""

    def __init__(self, manager: InstallManager, plan: InstallPlan, spec: InstallSpec) -> None:
        self._manager = manager
        self._plan = plan
        self._spec = spec

    @classmethod
    def prepare(cls, service: ServiceConnection, spec: InstallSpec) -> InstallJob:
        """Plan ``spec`` on the connection (see :meth:`DomainCollection.prepare_install`)."""
        from pyvirt.service.install.manager import InstallManager  # lazy

        manager = InstallManager(service)
        return cls(manager, manager.prepare(spec), spec)

    @property
    def name(self) -> str:
        """The new domain's name."""
        return self._plan.name

    @property
    def warnings(self) -> list[str]:
        """What the user should know before going on."""
        return list(self._plan.warnings)

    @property
    def final_xml(self) -> str:
        """The definition stored at the end (what ``--print-xml`` prints)."""
        return self._plan.final_xml

    @property
    def has_install_phase(self) -> bool:
        """Whether a first boot with install media comes before the final definition."""
        return self._plan.install is not None

    @property
    def install_xml(self) -> str | None:
        """The definition of the install phase's first boot (None: the final one boots)."""
        return None if self._plan.install is None else self._plan.install.to_xml()

    def run(
        self, *, transient: bool = False, autostart: bool = False, start: bool = True
    ) -> InstallResult:
        """Create the disks, define the domain (unless ``transient``) and start the install
        (``start`` False: only define it, to customize it first; then :meth:`begin`).

        Everything created is removed again when a step fails.
        """
        return self._manager.run(self._plan, transient=transient, autostart=autostart, start=start)

    def begin(self) -> None:
        """Start the install of a domain :meth:`run` defined without starting it, from its
        current (customized) definition: the install phase boots it with the install media
        (the installer kernel, the CD-ROM first), or it simply starts.

        :raises InvalidStateError: the domain runs already
        """
        doms = self._manager.conn.domains
        phase = self._plan.install
        if phase is None:
            doms.start(self._plan.name)
            return
        dom = doms.definition(self._plan.name, inactive=True).copy()
        dom.on_reboot = phase.on_reboot
        dom.os.kernel, dom.os.initrd, dom.os.cmdline = (
            phase.os.kernel, phase.os.initrd, phase.os.cmdline
        )  # fmt: skip
        if not phase.os.kernel:
            dom.os.boot_devs = list(phase.os.boot_devs)
        doms.create(dom.to_xml())

    def wait(self, minutes: float | None = None, *, boot_final: bool = True) -> bool:
        """Wait for the install phase to end (None or < 0: forever); then boot the final
        definition of a two-phase install unless ``boot_final`` is False.

        :returns: True when the install phase ended in time
        :raises OperationFailedError: the final definition did not boot
        """
        if not boot_final:
            self._plan.install = None
        return self._manager.wait(self._plan, minutes)


@dataclass(frozen=True)
class DiskCopyPlan:
    """One disk of a clone: how ``src`` becomes ``dst``."""

    target: str
    src: str
    dst: str
    format: str
    #: ``copy``, ``linked`` (qcow2 overlay), ``reflink`` or ``preserve`` (used as is)
    mode: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "target": self.target,
            "src": self.src,
            "dst": self.dst,
            "format": self.format,
            "mode": self.mode,
        }


class CloneJob:
    """A planned clone: its definition and disk copies. Nothing changed yet."""

    def __init__(
        self, service: ServiceConnection, manager: CloneManager, plan: ClonePlan, nonsparse: bool
    ) -> None:
        self._service = service
        self._manager = manager
        self._plan = plan
        self._nonsparse = nonsparse

    @classmethod
    def prepare(cls, service: ServiceConnection, request: CloneRequest) -> CloneJob:
        """Plan ``request`` on the connection (see :meth:`DomainCollection.prepare_clone`)."""
        from pyvirt.service.install.clone import CloneManager  # lazy

        manager = CloneManager(service)
        return cls(service, manager, manager.prepare(request), request.nonsparse)

    @property
    def name(self) -> str:
        """The clone's name."""
        return self._plan.domain.name

    @property
    def warnings(self) -> list[str]:
        """What the user should know before going on."""
        return list(self._plan.warnings)

    @property
    def xml(self) -> str:
        """The clone's definition (what ``--print-xml`` prints)."""
        return self._plan.domain.to_xml()

    @property
    def copies(self) -> list[DiskCopyPlan]:
        """The disks to produce, in order."""
        return [DiskCopyPlan(c.target, c.src, c.dst, c.format, c.mode) for c in self._plan.copies]

    def run(self, *, progress: Progress | None = None, cancel: CancelToken | None = None) -> Domain:
        """Copy (or link) the disks and define the clone; undo everything on failure or when
        ``cancel`` is set (:class:`~pyvirt.progress.CancelledError`). ``progress`` hears
        (bytes copied, bytes to copy)."""
        dom = self._manager.run(
            self._plan, nonsparse=self._nonsparse, progress=progress, cancel=cancel
        )
        return Domain(self._service, dom.name)
