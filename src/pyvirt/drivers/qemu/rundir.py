"""The run directory of a running domain (``RUN/qemu/NAME/``) and its one owner, :class:`RunDir`.

Every file of a run directory that pyvirt reads back is written here, and atomically
(:func:`pyvirt.state.atomic.atomic_write`: a reader sees the old or the new content, never a
torn file):

``domain.xml``
    the live definition (what runs now: allocated aliases, addresses, hot-plugged devices);
``runtime.json``
    :class:`~pyvirt.drivers.qemu.runtime.RuntimeRecord`, what was started;
``hooks.json``
    :class:`HookData`: the lifecycle hooks' data (taps, cgroups, VFs, disk inventory ...) that
    their ``after_stop`` needs. Versioned like the runtime record: an older file is upgraded
    on read by the explicit functions of :data:`HOOK_UPGRADES`;
``starting.json``
    the start intent (the domain's UUID and QMP socket), written before QEMU is launched:
    a run directory with it and without ``runtime.json`` is a start that did not finish;
``policy.json``, ``destroying``, ``exit.json``, ``watch.json``
    the watcher's inputs and outputs (formats in :mod:`pyvirt.drivers.qemu.runtime`).

QEMU's own sockets, pidfile and stderr FIFO are created by QEMU and
:mod:`pyvirt.drivers.qemu.process`. Read-modify-write methods (:meth:`RunDir.update_hooks`)
expect the caller to hold the domain's lock.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyvirt.drivers.qemu import runtime
from pyvirt.drivers.qemu.runtime import ExitInfo, RuntimeRecord
from pyvirt.errors import NotFoundError, OperationFailedError
from pyvirt.state.atomic import atomic_write

log = logging.getLogger(__name__)

LIVE_XML = "domain.xml"
HOOKS_FILE = "hooks.json"
#: the start intent: written before QEMU can run, so a start killed before ``runtime.json``
#: leaves a trace the next command follows to the QEMU it may have started
START_INTENT = "starting.json"

#: the prefix of a removed run directory's tombstone (:meth:`RunDir.remove`)
_TOMB = ".gone-"

#: Version of ``hooks.json`` written by this pyvirt.
HOOKS_VERSION = 1

Json = dict[str, Any]


@dataclass
class HookData:
    """The lifecycle hooks' data of one running domain (``hooks.json``).

    :ivar sections: hook name -> that hook's JSON-able data (its own format, owned by the hook)
    :ivar version: format version of the file
    """

    sections: dict[str, Json] = field(default_factory=dict)
    version: int = HOOKS_VERSION

    def to_dict(self) -> Json:
        """The JSON form."""
        return {"version": self.version, "sections": self.sections}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HookData:
        """Build from the JSON form, upgrading older versions first.

        :raises OperationFailedError: from a newer pyvirt, or malformed
        """
        data = upgrade_hooks(data)
        sections = data.get("sections")
        if not isinstance(sections, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in sections.items()
        ):
            raise OperationFailedError("hook data is invalid: 'sections' is not a map of maps")
        return cls(sections={k: dict(v) for k, v in sections.items()})


def _upgrade_hooks_v0(data: Json) -> Json:
    """Version 0 (no version field): the file was the bare map hook name -> data."""
    return {"version": 1, "sections": {k: v for k, v in data.items() if isinstance(v, dict)}}


#: ``HOOK_UPGRADES[n]`` turns a version-``n`` dict into a version-``n+1`` dict.
HOOK_UPGRADES: dict[int, Callable[[Json], Json]] = {0: _upgrade_hooks_v0}


def upgrade_hooks(data: Mapping[str, Any]) -> Json:
    """Upgrade a ``hooks.json`` dict to :data:`HOOKS_VERSION`, step by step.

    :raises OperationFailedError: the file is newer than this pyvirt understands
    """
    out = dict(data)
    raw = out.get("version", 0)
    version = raw if isinstance(raw, int) else 0
    if version > HOOKS_VERSION:
        raise OperationFailedError(
            f"hook data version {version} is newer than this pyvirt ({HOOKS_VERSION})",
            hint="use the pyvirt that started the domain",
        )
    while version < HOOKS_VERSION:
        out = HOOK_UPGRADES[version](out)
        new = int(out["version"])
        assert new == version + 1, f"hook data upgrade from v{version} produced v{new}"
        version = new
    return out


#: seconds the sweeping thread lets its caller go on first: Python holds the interpreter's
#: lock for a running thread up to its 5 ms switch interval, so a sweep that starts at once
#: delays what the caller does next (a migration's confirm: ~2 ms)
SWEEP_DELAY = 0.005


def _sweep_tombs(root: Path) -> None:
    """Delete what earlier removals left in their tombstones under *root*."""
    import shutil  # lazy

    time.sleep(SWEEP_DELAY)
    try:
        names = [n for n in os.listdir(root) if n.startswith(_TOMB)]
    except OSError:
        return
    for n in names:
        shutil.rmtree(root / n, ignore_errors=True)


class RunDir:
    """The run directory of one domain; the only writer of its live XML, runtime record and
    hook data.

    :param path: ``RUN/qemu/NAME``
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- the directory -----------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the directory exists (a domain runs or was not cleaned up yet)."""
        return self.path.is_dir()

    def create(self) -> None:
        """Make a fresh, empty directory (mode 0700), removing leftovers of an earlier run."""
        if self.path.exists():
            import shutil  # local import: ~2 ms that commands reading a run directory skip

            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, mode=0o700)

    def remove(self) -> None:
        """Delete the directory and everything in it (idempotent).

        The name goes at once: the directory is renamed to a ``.gone-*`` tombstone beside it
        (domain names never start with a dot, listings skip them), which a thread deletes
        with every other tombstone there (a killed process leaves it to the next removal).
        A watcher that has not seen the run directory go may still write ``exit.json`` into
        it through its directory descriptor (its last write; a ``destroy`` or a migration's
        confirm does not wait for it): what it keeps from going goes with the next
        removal's sweep; a next start never waits for it.
        """
        import shutil  # local import: ~2 ms that commands reading a run directory skip

        tomb = self.path.with_name(f"{_TOMB}{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.rename(self.path, tomb)
        except FileNotFoundError:
            return
        except OSError:  # not renamable here (a mount point?): delete it in place
            shutil.rmtree(self.path, ignore_errors=True)
            return
        # the deletion (10-20 ms of unlinks under load) is off the caller's path (a migration's
        # confirm, a destroy); not a daemon thread: a command finishes it before it exits
        import threading  # lazy

        threading.Thread(target=_sweep_tombs, args=(self.path.parent,), name="rundir-sweep").start()

    # -- live XML ------------------------------------------------------------------------------
    def live_xml(self) -> bytes:
        """The live definition.

        :raises NotFoundError: there is none (the domain is not running)
        """
        try:
            return (self.path / LIVE_XML).read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"no live definition in '{self.path}'") from err

    def has_live_xml(self) -> bool:
        """Whether a live definition exists."""
        return (self.path / LIVE_XML).exists()

    def write_live_xml(self, xml: str) -> None:
        """Replace the live definition."""
        atomic_write(self.path / LIVE_XML, xml.encode(), 0o600, sync=False)

    # -- runtime record ------------------------------------------------------------------------
    def record(self) -> RuntimeRecord | None:
        """The runtime record, or None when there is none."""
        return RuntimeRecord.load_or_none(self.path)

    def save_record(self, rec: RuntimeRecord) -> None:
        """Write the runtime record (durably)."""
        rec.save(self.path)

    # -- start intent --------------------------------------------------------------------------
    @property
    def qmp_socket(self) -> Path:
        """QEMU's QMP socket in this directory."""
        return self.path / "qmp.sock"

    def write_start_intent(self, uuid: str) -> None:
        """Record, before QEMU can run, that a start of the domain with ``uuid`` is under
        way. It must survive the command being killed, which the atomic rename ensures; it
        is not fsynced (a start pays for every fsync): after a host crash no QEMU of it runs
        any more, and what the intent is for, finding and killing that QEMU, has nothing to
        do."""
        from pyvirt.drivers.qemu import process  # lazy: only starts need it

        stat = process.proc_stat(os.getpid())
        intent = {
            "uuid": uuid,
            "qmp_socket": str(self.qmp_socket),
            "pid": os.getpid(),
            "starttime": stat[1] if stat else None,
        }
        atomic_write(self.path / START_INTENT, json.dumps(intent).encode(), 0o600, sync=False)

    def starter_alive(self) -> bool:
        """Whether the command that wrote the start intent still runs (the start is under
        way, not killed)."""
        from pyvirt.drivers.qemu import process  # lazy

        try:
            data = json.loads((self.path / START_INTENT).read_bytes())
            pid, starttime = int(data["pid"]), data.get("starttime")
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return process.is_alive(pid, starttime if isinstance(starttime, int) else None)

    def start_intent(self) -> str | None:
        """The UUID of an unfinished start (an intent and no runtime record), or None."""
        try:
            data = json.loads((self.path / START_INTENT).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except ValueError:
            return ""  # unreadable (cannot be torn): a start, UUID unknown
        if (self.path / runtime.RUNTIME_FILE).exists():
            return None
        uuid = data.get("uuid") if isinstance(data, dict) else None
        return uuid if isinstance(uuid, str) else ""

    # -- hook data -----------------------------------------------------------------------------
    def hooks(self) -> HookData:
        """The hook data; empty when there is none or it is unreadable (logged)."""
        try:
            raw = (self.path / HOOKS_FILE).read_bytes()
        except FileNotFoundError:
            return HookData()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return HookData.from_dict(data)
        except (ValueError, OperationFailedError) as err:
            log.warning("ignoring unreadable %s: %s", self.path / HOOKS_FILE, err)
            return HookData()

    def save_hooks(self, data: HookData) -> None:
        """Replace the hook data."""
        body = json.dumps(data.to_dict(), sort_keys=True).encode() + b"\n"
        atomic_write(self.path / HOOKS_FILE, body, 0o600, sync=False)

    def update_hooks(self, hook: str, change: Callable[[Json], Json]) -> None:
        """Replace one hook's section with ``change(old_section)`` (caller holds the lock)."""
        data = self.hooks()
        data.sections[hook] = change(dict(data.sections.get(hook, {})))
        self.save_hooks(data)

    # -- watcher files -------------------------------------------------------------------------
    def write_policy(self, **policy: str) -> None:
        """The lifecycle policies the watcher honours (see :func:`runtime.write_policy`)."""
        runtime.write_policy(self.path, **policy)

    def mark_destroying(self, *, stop_work_here: bool = False) -> None:
        """Record the destroy intent before signalling QEMU; *stop_work_here*: the caller
        does the stop work itself (the reaper only if the caller dies first)."""
        runtime.mark_destroying(self.path, stop_work_here=stop_work_here)

    def exit_info(self, wait: float = 0.5) -> ExitInfo:
        """Why QEMU went away (waits up to ``wait`` s for the watcher to record it)."""
        return runtime.wait_exit(self.path, wait)

    def recorded_exit(self) -> ExitInfo | None:
        """The exit the watcher recorded, if it did already."""
        return runtime.read_exit(self.path)

    def record_destroyed(self) -> None:
        """Record a destroy's exit now, unless the watcher recorded one already: the destroy
        intent decides the reason whatever the watcher would write."""
        if self.recorded_exit() is None:
            runtime.write_exit(self.path, runtime.ExitInfo("destroyed", "no-shutdown-event"))
