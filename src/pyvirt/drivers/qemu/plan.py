"""Start plans: the QEMU argv of a definition, cached so that ``start`` skips XML and argv work.

Building an argv needs the XML model and the argv builder, whose imports alone cost more than
QEMU's own start-up on a small host. A definition changes rarely, so the first start of a
definition stores what it computed in a *plan*; later starts of the same definition read the
plan (one small JSON file) and launch QEMU directly.

A plan is valid only for the exact definition bytes, the same pyvirt code (version and the
argv builder's source files), the same set of lifecycle hooks and the same emulator binary;
any change makes a new plan. The hook set matters because a cached start runs only the hooks
its plan names: a hook added later (a new start-time check) would otherwise never run for a
definition planned before it existed.
Definitions whose argv depends on start-time choices (an automatically allocated VNC port)
are never planned.

This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyvirt.state.atomic import atomic_write

#: 2: the key covers the lifecycle hook names (a new hook such as 'dac' makes old plans stale)
PLAN_VERSION = 2
_ARGV_PKG = Path(__file__).parent / "argv"


@dataclass
class StartPlan:
    """Everything ``start`` needs besides the runtime directory itself."""

    key: str
    name: str
    uuid: str
    argv: list[str]
    policy: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    emulator_stamp: str = ""
    #: per lifecycle hook (see pyvirt.service.hooks): the data its compile phase returned
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the definition as started (hooks may have resolved parts of it); "" = the stored XML
    live_xml: str = ""
    version: int = PLAN_VERSION


def _code_stamp() -> str:
    """Changes whenever the argv builder's code changes (mtimes of its modules)."""
    import pyvirt

    stamps = [pyvirt.__version__]
    for root, _dirs, files in os.walk(_ARGV_PKG):
        for f in sorted(files):
            if f.endswith(".py"):
                st = os.stat(os.path.join(root, f))
                stamps.append(f"{f}:{st.st_mtime_ns}:{st.st_size}")
    return ";".join(stamps)


def plan_key(xml: bytes, *, hooks: Iterable[str]) -> str:
    """The cache key of a definition: its XML bytes, the argv builder's code stamp and the
    names of the lifecycle hooks a plan is built with.

    :param hooks: every hook name known when planning (``pyvirt.service.hooks.HOOK_MODULES``)
    """
    h = hashlib.sha256(xml)
    h.update(_code_stamp().encode())
    h.update(("\0hooks:" + ",".join(sorted(set(hooks)))).encode())
    return h.hexdigest()


def emulator_stamp(path: str) -> str:
    """Identity of the emulator binary (a QEMU upgrade invalidates plans)."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def load(path: Path, key: str) -> StartPlan | None:
    """The plan at ``path`` if it exists and matches ``key``."""
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        return None
    if data.get("key") != key:
        return None
    try:
        plan = StartPlan(**data)
    except TypeError:
        return None
    if not plan.argv or plan.emulator_stamp != emulator_stamp(plan.argv[0]):
        return None
    return plan


def save(path: Path, plan: StartPlan) -> None:
    """Store ``plan`` (0600: it may hold a VNC password file's content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(asdict(plan)).encode(), mode=0o600, sync=False)
