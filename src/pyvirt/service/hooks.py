"""Domain lifecycle hooks: how storage, networks and host tuning join a domain's start and stop.

A hook is an object registered with :func:`register_hook`. For each start the lifecycle calls:

``compile(mgr, dom) -> HookResult | None``
    only when a start plan is built (first start of a definition, or after it changed). It may
    change the definition before the argv is built (resolve ``<disk type='volume'>`` to a
    path, give a NIC a deterministic tap name) and returns JSON-able ``data`` that is stored in
    the plan, and whether the plan may be cached (``cacheable=False`` for start-time choices).
``before_launch(mgr, name, data)``
    on every start, before QEMU runs (create the tap, check free hugepages). Raising aborts the
    start; hooks already run get ``after_stop``.
``after_launch(mgr, name, pid, data)``
    on every start, once QEMU runs (cgroup placement, pinning). Raising destroys the domain.
``after_stop(mgr, name, data)``
    when the domain's QEMU is gone, whatever the reason (remove the tap). Must not raise for
    things already gone: it also runs after a crash, possibly twice.

Hook modules are listed in :data:`HOOK_MODULES` and imported on the first start, so a CLI
command that starts nothing pays nothing for them.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domains import DomainManager

log = logging.getLogger(__name__)

#: Modules that register hooks when imported (added by the storage/network/tuning layers).
HOOK_MODULES: list[str] = [
    "pyvirt.service.hostdev",
    "pyvirt.service.tuning_hooks",
    "pyvirt.service.disk_hooks",
    "pyvirt.service.nic_hooks",
    "pyvirt.service.advisor",
    "pyvirt.service.agent",
]


@dataclass
class HookResult:
    """What a hook's ``compile`` hands to later phases."""

    data: dict[str, Any] = field(default_factory=dict)
    cacheable: bool = True


class DomainHook(Protocol):
    """The four phases; a hook implements all of them (no-ops are fine)."""

    name: str

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None: ...

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None: ...

    def after_launch(
        self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]
    ) -> None: ...

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None: ...


_HOOKS: dict[str, DomainHook] = {}
_loaded = False


def register_hook(hook: DomainHook) -> DomainHook:
    """Register ``hook`` under ``hook.name`` (idempotent)."""
    _HOOKS[hook.name] = hook
    return hook


def hooks() -> list[DomainHook]:
    """All registered hooks, in registration order (imports :data:`HOOK_MODULES` once)."""
    global _loaded
    if not _loaded:
        for module in HOOK_MODULES:
            importlib.import_module(module)
        _loaded = True
    return list(_HOOKS.values())


def run_after_stop(mgr: DomainManager, name: str, data: dict[str, dict[str, Any]]) -> None:
    """Call every hook's ``after_stop`` that has data; log (not raise) failures."""
    for hook in hooks():
        if hook.name in data:
            try:
                hook.after_stop(mgr, name, data[hook.name])
            except Exception:
                log.exception("after_stop of hook %s for domain %s failed", hook.name, name)
