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
    when the domain's QEMU is gone, whatever the reason (remove the tap): at once, in the
    domain's reaper process (:mod:`pyvirt.service.domain.reaper`), or in the command that
    destroys it; always under the domain lock and once per run. ``data`` is the hook's
    section of the run directory's hook data as it is then (a hook may add to it while the
    domain runs, through :meth:`pyvirt.drivers.qemu.rundir.RunDir.update_hooks`). Must not
    raise for things already gone (a crash may have taken them).

**File descriptors for QEMU.** A ``before_launch`` that opens something QEMU must inherit (the
character device of a macvtap) calls :func:`pass_fd` with the domain name, the fixed fd number
the argv names (``-netdev tap,fd=N``: fixed, so the cached plan's argv stays valid) and the open
fd; the lifecycle takes them with :func:`take_fds` right before launching QEMU, hands them to
:func:`pyvirt.drivers.qemu.process.launch_detailed` as ``pass_fds`` and closes them afterwards
with :func:`close_fds` (also when a later hook or the launch fails).

Hook modules are listed by hook name in :data:`HOOK_MODULES`; building a plan imports them all, a
cached start only those its plan names, and a command that starts nothing none. The reaper
imports those its domain's hook data names, so a hook registered elsewhere (a test's) gets its
``after_stop`` only from a stop done in its own process (``destroy``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import logging

    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager


def _log() -> logging.Logger:
    """This module's logger; ``logging`` loads only when something is logged (~3 ms of
    ``define``, which imports this module)."""
    import logging  # local import: see the docstring

    return logging.getLogger(__name__)


#: Hook name -> module that registers it when imported. Order is the order hooks run in: the
#: hostdev hook rewrites NICs on hostdev networks before the tap hook sees them, and the disk
#: hook resolves volumes before anything inspects disks.
HOOK_MODULES: dict[str, str] = {
    "accel": "pyvirt.service.domain.accel",  # first: refuses before anything is set up
    "hostdev": "pyvirt.service.nic.hostdev",
    "tuning": "pyvirt.service.tuning.hooks",
    "disks": "pyvirt.service.disk.hooks",
    "nvram": "pyvirt.service.domain.firmware",  # firmware='efi' resolved; NVRAM from template
    "dac": "pyvirt.service.domain.dac",  # after disks: volumes are resolved to their files
    "shares": "pyvirt.service.domain.shares",  # <filesystem> directories the QEMU user reaches
    "tpm": "pyvirt.service.domain.tpm",  # swtpm, as the QEMU user (after dac)
    "network": "pyvirt.service.nic.hooks",
    "numa-advisor": "pyvirt.service.tuning.advisor",
    "agent-channel": "pyvirt.service.domain.agent",
}


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


def register_hook(hook: DomainHook) -> DomainHook:
    """Register ``hook`` under ``hook.name`` (idempotent)."""
    _HOOKS[hook.name] = hook
    return hook


def hooks(names: Iterable[str] | None = None) -> list[DomainHook]:
    """Registered hooks in :data:`HOOK_MODULES` order, then any others (tests) in order.

    :param names: only these hooks (a cached start imports just the modules its plan uses);
        None loads every hook module (building a plan)
    """
    wanted = set(HOOK_MODULES) if names is None else set(names)
    for name, module in HOOK_MODULES.items():
        if name in wanted and name not in _HOOKS:
            importlib.import_module(module)
    order = [n for n in HOOK_MODULES if n in _HOOKS] + [n for n in _HOOKS if n not in HOOK_MODULES]
    return [_HOOKS[n] for n in order if names is None or n in wanted]


def run_after_stop(mgr: DomainManager, name: str, data: dict[str, dict[str, Any]]) -> None:
    """Call every hook's ``after_stop`` that has data; log (not raise) failures."""
    for hook in hooks(data):
        if hook.name in data:
            try:
                hook.after_stop(mgr, name, data[hook.name])
            except Exception:
                _log().exception("after_stop of hook %s for domain %s failed", hook.name, name)


# domain name -> {fd number QEMU gets: open fd in this process}; see the module docstring
_PASS_FDS: dict[str, dict[int, int]] = {}


def pass_fd(name: str, target: int, fd: int) -> None:
    """Hand open ``fd`` to domain ``name``'s QEMU as fd number ``target`` (this process owns
    ``fd`` until :func:`take_fds`; an fd already registered for ``target`` is closed)."""
    old = _PASS_FDS.setdefault(name, {}).pop(target, None)
    if old is not None:
        os.close(old)
    _PASS_FDS[name][target] = fd


def take_fds(name: str) -> dict[int, int]:
    """The fds registered for domain ``name`` (target -> open fd); the caller closes them."""
    return _PASS_FDS.pop(name, {})


def close_fds(fds: dict[int, int]) -> None:
    """Close the open fds of a :func:`take_fds` mapping."""
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
