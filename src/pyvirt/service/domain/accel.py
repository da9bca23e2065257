"""The ``accel`` lifecycle hook: a ``<domain type='kvm'>`` starts only where KVM runs guests.

When ``/dev/kvm`` exists but the KVM probe (:mod:`pyvirt.host.kvm`) finds it emulated, QEMU
under ``-accel kvm`` either crawls or dies (``failed to set MSR 0x10a ... Assertion failed``).
This hook refuses such a start before QEMU is launched, in one line that says why and names
``<domain type='qemu'>``; there is no silent fallback to TCG. The verdict is read from the
per-boot probe cache (well under a millisecond), on every start, cached plan or not; a
``type='qemu'`` domain never reaches this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyvirt.host import kvm
from pyvirt.service import hooks

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

FIX = "set <domain type='qemu'> (TCG) to run it here"


def check(mgr: DomainManager, name: str) -> None:
    """Refuse to start KVM domain ``name`` on a host whose KVM cannot run guests.

    :raises UnsupportedError: one line, naming ``<domain type='qemu'>``
    """
    subject = f"domain '{name}' is <domain type='kvm'>"
    kvm.require_kvm(subject, FIX, cache_path=kvm.probe_cache(mgr.paths.cache))


class AccelHook:
    """Checks KVM before every start of a ``type='kvm'`` domain."""

    name = "accel"

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult | None:
        """Refuse at once (no plan is built) and mark KVM domains for :meth:`before_launch`."""
        if dom.type != "kvm":
            return None
        check(mgr, dom.name)
        return hooks.HookResult({"accel": "kvm"})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Check again on a cached start: the verdict is per boot."""
        check(mgr, name)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to undo."""


hooks.register_hook(AccelHook())
