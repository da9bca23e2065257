"""The per-domain watcher: a small detached process that follows one QEMU's QMP events.

Run as ``python -m pyvirt.drivers.qemu.watch RUN_DIR [--log LOG]`` by :func:`spawn_watcher`
(own session, stdio to the domain log, never waited for). It

- connects to ``RUN_DIR/events.sock`` (the second QMP monitor, reserved for it), retrying
  while QEMU is alive;
- appends every QMP event, with QEMU's timestamp, to the domain log (its stderr);
- copies QEMU's stderr (``RUN_DIR/stderr.fifo``, QEMU's ``-D``; see
  :mod:`pyvirt.drivers.qemu.process`) into the domain log;
- runs the guest of an incoming migration the moment its state is in, when the destination
  asked for it (``RUN_DIR/run-on-arrival``): it is connected already, where a command would
  first have to open a monitor session (the guest's pause would last that much longer);
- while an incoming post-copy migration is paused (``postcopy-paused``), serves a
  ``RUN_DIR/postcopy-recover`` request: ``migrate-recover`` sent out-of-band on its connection
  (QEMU's main loop may wait for a page the paused stream does not bring: no new monitor
  session could start), the answer in ``RUN_DIR/postcopy-recover.done``;
- applies the lifecycle policies of ``RUN_DIR/policy.json``. pyvirt starts every QEMU with
  ``-no-shutdown``, so QEMU stays alive (run state ``shutdown``) after a guest power-off
  and the watcher decides: ``on_poweroff=restart`` sends ``system_reset`` + ``cont``,
  ``preserve`` leaves it, ``destroy`` (the default) sends ``quit``. A reboot under
  ``-no-reboot`` (``on_reboot`` ``destroy``/``preserve``) and a panic under the default
  panic action are SHUTDOWNs too and follow ``on_reboot``/``on_crash`` the same way;
  ``on_crash=restart`` (argv has ``-action panic=none``) resets on GUEST_PANICKED. Because
  QEMU never exits by itself on a guest power-off, a watcher that was not running (killed, or
  a daemon restarting) still learns of it: it finds the run state ``shutdown`` and applies
  ``on_poweroff`` then (:meth:`Watch.catch_up`); a QEMU gone without a record is crashed;
- when the connection closes (QEMU is exiting) waits for the process to be gone, writes
  ``RUN_DIR/exit.json`` (:func:`classify`), calls the ``on_exit`` callback it was given, then
  exits.

**Stop work.** The driver knows nothing of hooks, taps or cgroups, and never imports the
service layer. A caller that needs work done the moment QEMU exits (the service's after-stop
work) runs its own entry module, which calls :func:`main` with an ``on_exit`` callback, and
names that module to :func:`spawn_watcher` (``module=``); see
:mod:`pyvirt.service.domain.reaper`. A long-lived process (pyvirtd) runs :class:`Watch`
in its own event loop instead, one per domain (:mod:`pyvirt.service.domain.supervise`).

It holds no locks (spawned with ``close_fds``) and only a client socket to QEMU, so it never
keeps QEMU alive; if it dies, the service falls back to :func:`pyvirt.drivers.qemu.runtime.
fallback_exit`. ``RUN_DIR/watch.json`` tells who is watching and whether it is connected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess  # not hostcmd: the watcher is spawned detached and outlives the command
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pyvirt.drivers.qemu import process
from pyvirt.drivers.qemu.runtime import (
    ARRIVED_FILE,
    EVENTS_SOCKET,
    PID_FILE,
    RECOVER_DONE_FILE,
    RECOVER_FILE,
    RUN_ON_ARRIVAL_FILE,
    RUN_ON_ARRIVAL_SENT_FILE,
    WATCHER_FILE,
    ExitInfo,
    ExitReason,
    RuntimeRecord,
    is_destroying,
    read_policy,
    read_watcher,
    wait_exit,
    write_exit_at,
)
from pyvirt.errors import PyvirtError
from pyvirt.state.atomic import atomic_write

__all__ = [
    "SHUTDOWN_REASONS",
    "Watch",
    "classify",
    "main",
    "spawn_watcher",
    "still_ours",
    "wait_exit",
    "wait_watcher",
    "write_watcher",
]

log = logging.getLogger(__name__)

#: How long the watcher keeps trying to reach events.sock while QEMU is alive.
CONNECT_TIMEOUT = 30.0

#: QEMU's SHUTDOWN cause -> shut-off reason, when pyvirt did not ask for a destroy.
SHUTDOWN_REASONS: dict[str, ExitReason] = {
    "guest-shutdown": "shutdown",  # ACPI power-off / halt from the guest
    "guest-reset": "shutdown",  # reboot with on_reboot=destroy (-no-reboot)
    "host-qmp-quit": "shutdown",  # QMP quit
    "host-qmp-system-reset": "shutdown",  # system_reset with -no-reboot
    "host-ui": "shutdown",  # window closed
    "subsystem-reset": "shutdown",
    "snapshot-load": "shutdown",
    "guest-panic": "crashed",  # on_crash=destroy (-action panic=shutdown)
    "host-error": "crashed",
    "host-signal": "crashed",  # SIGTERM/SIGINT/SIGHUP from someone other than pyvirt
    "none": "crashed",
}


def classify(last_shutdown: Mapping[str, Any] | None, destroying: bool) -> ExitInfo:
    """Why QEMU went away, from its last SHUTDOWN event's data and the destroy intent.

    A destroy intent wins; no SHUTDOWN event at all (SIGKILL, abort) means crashed.
    """
    if last_shutdown is None:
        return ExitInfo("destroyed" if destroying else "crashed", "no-shutdown-event")
    cause = str(last_shutdown.get("reason", "none"))
    guest = last_shutdown.get("guest")
    reason: ExitReason = "destroyed" if destroying else SHUTDOWN_REASONS.get(cause, "crashed")
    return ExitInfo(reason, cause, guest=bool(guest) if guest is not None else None)


# --- watcher bookkeeping (used by the service and tests) -----------------------------------


def write_watcher(run_dir: Path, connected: bool) -> None:
    """Record this process as the watcher of ``run_dir`` (``watch.json``)."""
    stat = process.proc_stat(os.getpid())
    assert stat is not None
    data = {"pid": os.getpid(), "starttime": stat[1], "connected": connected}
    atomic_write(run_dir / WATCHER_FILE, json.dumps(data).encode(), 0o644, sync=False)


#: ``on_exit(run_dir, info, qemu_pid, qemu_starttime)``: called by the watcher once QEMU is gone.
ExitCallback = Callable[[Path, ExitInfo, int, int | None], None]


def spawn_watcher(
    run_dir: Path,
    *,
    log_path: Path | None = None,
    module: str | None = None,
    extra_args: Sequence[str] = (),
) -> int:
    """Start the watcher for ``run_dir`` detached (own session), unless one is running.

    Call it right after :func:`pyvirt.drivers.qemu.process.launch` (and after
    :func:`pyvirt.drivers.qemu.runtime.write_policy`). It does not wait for the watcher.

    :param log_path: the domain log, where events, QEMU's later stderr and the watcher's own
        errors are appended; default: ``log_path`` of the runtime record if saved already
    :param module: the entry module to run (``python -m MODULE``) instead of this one; it
        must end up in :func:`main` (with its ``on_exit``) and accept ``extra_args``
    :param extra_args: arguments for ``module`` (placed before the watcher's own)
    :returns: the watcher's pid
    """
    if log_path is None:
        with contextlib.suppress(PyvirtError):
            rec = RuntimeRecord.load_or_none(run_dir)
            log_path = Path(rec.log_path) if rec is not None else None
    current = read_watcher(run_dir)
    if current is not None and current.alive:
        return current.pid
    argv = [sys.executable, "-m", module or __name__, *extra_args, str(run_dir)]
    if log_path is not None:
        argv += ["--log", str(log_path)]
    stderr_fd = process.take_stderr_reader(run_dir)
    if stderr_fd is not None:
        argv += ["--stderr-fd", str(stderr_fd)]
    # make sure the child finds this very pyvirt, installed or not
    src = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out: int = subprocess.DEVNULL
    if log_path is not None:
        out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            pass_fds=() if stderr_fd is None else (stderr_fd,),
            cwd="/",
            env=env,
        )
    finally:
        if out >= 0:
            os.close(out)
        if stderr_fd is not None:
            os.close(stderr_fd)
    log.debug("watcher for %s started: pid %d", run_dir, proc.pid)
    return proc.pid


def wait_watcher(run_dir: Path, timeout: float = 5.0) -> bool:
    """Wait until the watcher is connected to QEMU; False if it is not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_watcher(run_dir)
        if info is not None and info.connected:
            return True
        time.sleep(0.01)
    return False


# --- the watcher process -------------------------------------------------------------------


def _event_line(event: Mapping[str, Any]) -> str:
    stamp = event.get("timestamp") or {}
    seconds = float(stamp.get("seconds", time.time())) + stamp.get("microseconds", 0) / 1e6
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    data = json.dumps(event.get("data", {}), sort_keys=True)
    return f"{when}.{int(seconds % 1 * 1e6):06d}Z: event {event.get('event')} {data}"


#: ``on_event(event)``: called with every QMP event once the watcher has handled it.
EventCallback = Callable[[Mapping[str, Any]], None]

#: the policy that decides what follows a SHUTDOWN, per cause (other causes: ``destroy``)
_POLICY_OF_CAUSE = {
    "guest-shutdown": "on_poweroff",
    "guest-reset": "on_reboot",  # only a SHUTDOWN under -no-reboot: destroy or preserve
    "host-qmp-system-reset": "on_reboot",
    "guest-panic": "on_crash",  # the default panic action (shutdown): destroy
}


#: SHUTDOWN causes after which QEMU exits even with ``-no-shutdown`` (a signal, ``quit``)
_EXITING_CAUSES = frozenset({"host-signal", "host-qmp-quit", "host-error"})


class Watch:
    """One QEMU's event connection and policies, run on an asyncio loop until QEMU is gone.

    The watcher process runs one (:func:`main`); pyvirtd runs one per domain in its loop.

    :param stderr_fd: read end of QEMU's stderr FIFO (None: opened here if it exists)
    :param out_fd: where event lines and QEMU's stderr go (the domain log)
    :param on_event: called with every event after the policies were applied
    :param say: reports what the watcher does (default: this module's logger)
    """

    def __init__(
        self,
        run_dir: Path,
        stderr_fd: int | None = None,
        *,
        out_fd: int = 2,
        on_event: EventCallback | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.stderr_fd = stderr_fd
        self.out_fd = out_fd
        self.on_event = on_event
        self.say = say or log.info
        self.policy = read_policy(run_dir)
        self.last_shutdown: dict[str, Any] | None = None
        #: this watcher sent ``quit``: the SHUTDOWN it causes does not replace the real cause
        self.quitting = False
        self.qemu_pid, self.qemu_start = self._qemu_process()
        #: the last MIGRATION status QEMU reported
        self.migration = ""
        self._recovering: Any = None  # the task serving postcopy-recover requests

    def _qemu_process(self) -> tuple[int, int | None]:
        """The QEMU watched: from the runtime record (saved before the watcher is spawned),
        else the pidfile."""
        with contextlib.suppress(PyvirtError):
            rec = RuntimeRecord.load_or_none(self.run_dir)
            if rec is not None:
                return rec.pid, rec.starttime
        try:
            pid = int((self.run_dir / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return 0, None
        stat = process.proc_stat(pid)
        return pid, stat[1] if stat else None

    def qemu_alive(self) -> bool:
        """Whether the QEMU watched still runs."""
        return self.qemu_pid > 0 and process.is_alive(self.qemu_pid, self.qemu_start)

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.out_fd, data)

    def open_stderr(self) -> None:
        """Start copying QEMU's stderr FIFO to the domain log."""
        import asyncio

        if self.stderr_fd is None:
            try:
                flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
                self.stderr_fd = os.open(self.run_dir / process.STDERR_FIFO, flags)
            except OSError as err:
                log.debug("no QEMU stderr FIFO: %s", err)
                return
        os.set_blocking(self.stderr_fd, False)
        asyncio.get_running_loop().add_reader(self.stderr_fd, self.copy_stderr)

    def copy_stderr(self) -> None:
        """Copy what QEMU wrote; stop watching the FIFO at EOF (QEMU closed it)."""
        import asyncio

        assert self.stderr_fd is not None
        try:
            data = os.read(self.stderr_fd, 65536)
        except BlockingIOError:
            return
        if data:
            sys.stderr.flush()
            self._write(data)
        else:
            asyncio.get_running_loop().remove_reader(self.stderr_fd)

    def close_stderr(self) -> None:
        """Copy the rest of QEMU's stderr and close the FIFO."""
        import asyncio

        if self.stderr_fd is None:
            return
        asyncio.get_running_loop().remove_reader(self.stderr_fd)
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            process.drain(self.stderr_fd, self.out_fd)
        os.close(self.stderr_fd)
        self.stderr_fd = None

    async def connect(self, client: Any) -> bool:
        """Connect to events.sock, retrying while QEMU lives; False if it never worked."""
        import asyncio

        from qemu.qmp import ConnectError

        path = str(self.run_dir / EVENTS_SOCKET)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                await asyncio.wait_for(client.connect(path), 5.0)
                return True
            except (ConnectError, TimeoutError) as err:
                if not self.qemu_alive() or time.monotonic() >= deadline:
                    log.warning("cannot connect to %s: %s", path, err)
                    return False
            await asyncio.sleep(0.02)

    async def handle(self, client: Any, event: Mapping[str, Any]) -> None:
        """Log one event, apply the policies, tell ``on_event``."""
        name = event.get("event")
        data = event.get("data") or {}
        if name == "MIGRATION":
            self.migration = str(data.get("status", ""))
            if self.migration == "completed":
                await self.run_on_arrival(client)  # the guest stands still until then
            elif self.migration == "postcopy-paused" and self._recovering is None:
                import asyncio

                self._recovering = asyncio.create_task(self.serve_recover(client))
        self._write((_event_line(event) + "\n").encode())
        if name == "SHUTDOWN":
            if not (self.quitting and data.get("reason") == "host-qmp-quit"):
                self.last_shutdown = dict(data)
                await self.apply_shutdown_policy(client, str(data.get("reason", "none")))
        elif name == "GUEST_PANICKED" and self.policy.get("on_crash") in (
            "restart",
            "rename-restart",
        ):
            await self.restart(client, "on_crash")
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("event callback failed")

    async def run_on_arrival(self, client: Any) -> None:
        """An incoming migration completed: ``cont`` if the destination asked for it. The
        flag is taken first (renamed: only one ``cont``, never for a later outgoing
        migration); once the guest runs it becomes :data:`ARRIVED_FILE`. Without that the
        destination's finish step sends ``cont`` itself."""
        from qemu.qmp import QMPError

        sent = self.run_dir / RUN_ON_ARRIVAL_SENT_FILE
        try:
            os.rename(self.run_dir / RUN_ON_ARRIVAL_FILE, sent)
        except OSError:
            return
        try:
            await client.execute("cont")
        except QMPError as err:
            log.warning("cont after the incoming migration failed: %s", err)
            with contextlib.suppress(OSError):
                sent.unlink()
            return
        with contextlib.suppress(OSError):
            os.rename(sent, self.run_dir / ARRIVED_FILE)

    async def serve_recover(self, client: Any) -> None:
        """While the migration is paused in post-copy: answer ``postcopy-recover`` requests
        (see the module docstring); checks for one every 20 ms."""
        import asyncio
        import json

        try:
            while self.migration == "postcopy-paused":
                request = self.run_dir / RECOVER_FILE
                try:
                    uri = str(json.loads(request.read_bytes())["uri"])
                    request.unlink()
                except (OSError, ValueError, KeyError, TypeError):
                    await asyncio.sleep(0.02)
                    continue
                answer: dict[str, Any] = {"ok": True}
                try:
                    msg = client.make_execute_msg("migrate-recover", {"uri": uri}, oob=True)
                    await asyncio.wait_for(client.execute_msg(msg), 10.0)
                except Exception as err:  # the requester reports it
                    answer = {"error": str(err) or type(err).__name__}
                done = self.run_dir / RECOVER_DONE_FILE
                tmp = done.with_suffix(".tmp")
                tmp.write_text(json.dumps(answer))
                os.replace(tmp, done)
                await asyncio.sleep(0.02)
        finally:
            self._recovering = None

    async def apply_shutdown_policy(self, client: Any, cause: str) -> None:
        """After a SHUTDOWN: QEMU (``-no-shutdown``) waits; restart, preserve or quit it."""
        key = _POLICY_OF_CAUSE.get(cause)
        policy = self.policy.get(key, "destroy") if key else "destroy"
        if cause in _EXITING_CAUSES:
            return
        if policy in ("restart", "rename-restart") and cause == "guest-shutdown":
            await self.restart(client, "on_poweroff")
        elif policy != "preserve":
            await self.quit(client)

    async def quit(self, client: Any) -> None:
        """Make a QEMU that stays alive after a power-off exit (the destroy policy)."""
        self.quitting = True
        with contextlib.suppress(Exception):  # QEMU may close the monitor before replying
            await client.execute("quit")

    async def restart(self, client: Any, why: str) -> None:
        """Reset and resume a guest that QEMU paused instead of exiting."""
        from qemu.qmp import QMPError

        self.say(f"{why}=restart: resetting the guest")
        try:
            await client.execute("system_reset")
            await client.execute("cont")
        except QMPError as err:
            log.warning("%s=restart failed: %s", why, err)
            return
        self.last_shutdown = None

    async def catch_up(self, client: Any) -> None:
        """Ask QEMU what happened before this watcher connected (the previous watcher died,
        or pyvirtd restarted, or it started late): an incoming migration that completed
        already runs now if the destination asked for it (:meth:`run_on_arrival`; finish
        waits for it once this watcher says it is connected); a guest that powered off
        meanwhile sits in run state ``shutdown`` (``-no-shutdown``); apply ``on_poweroff``
        to it now."""
        import asyncio

        from qemu.qmp import QMPError, Runstate

        if (self.run_dir / RUN_ON_ARRIVAL_FILE).exists():
            try:
                incoming = await client.execute("query-migrate")
            except QMPError as err:
                log.warning("query-migrate failed: %s", err)
            else:
                if isinstance(incoming, dict) and incoming.get("status") == "completed":
                    await self.run_on_arrival(client)
        try:
            status = await client.execute("query-status")
        except QMPError as err:
            log.warning("query-status failed: %s", err)
            return
        if not (isinstance(status, dict) and status.get("status") == "shutdown"):
            return
        # A QEMU that is exiting (SIGTERM, quit) also reports ``shutdown`` while it cleans up,
        # after its own SHUTDOWN event went out before this watcher connected: that is no
        # power-off. A destroy under way says so; otherwise give an exiting QEMU a moment.
        if is_destroying(self.run_dir):
            return
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            if client.runstate != Runstate.RUNNING or not self.qemu_alive():
                return
            await asyncio.sleep(0.02)
        self.say("the guest powered off while no watcher ran")
        event = {"event": "SHUTDOWN", "data": {"reason": "guest-shutdown", "guest": True}}
        await self.handle(client, event)

    async def run(self) -> ExitInfo:
        """Watch until QEMU is gone; return the exit information.

        Cancelling it (a daemon shutting down) disconnects and leaves QEMU running.
        """
        import asyncio

        from qemu.qmp import QMPClient, Runstate

        client = QMPClient(f"watch:{self.run_dir.name}")
        self.open_stderr()
        try:
            if await self.connect(client):
                with contextlib.suppress(FileNotFoundError):  # the run dir went meanwhile
                    write_watcher(self.run_dir, connected=True)
                self.say(f"watching QEMU pid {self.qemu_pid}")

                async def consume() -> None:
                    async for event in client.events:
                        await self.handle(client, event)

                consumer = asyncio.create_task(consume())
                try:
                    await self.catch_up(client)
                    while client.runstate == Runstate.RUNNING:
                        await client.runstate_changed()
                finally:
                    consumer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await consumer
                for event in client.events.clear():
                    await self.handle(client, event)
            # the monitor closes slightly before the process ends
            gone = await asyncio.get_running_loop().run_in_executor(
                None, process.wait_gone, self.qemu_pid, self.qemu_start, 30.0
            )
            if self.qemu_pid and not gone:
                log.warning("QEMU pid %d closed its monitor but still runs", self.qemu_pid)
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
            self.close_stderr()
        return classify(self.last_shutdown, is_destroying(self.run_dir))


#: the nice value of the watcher
WATCHER_NICE = 10


def lower_priority() -> None:
    """Make this process yield the CPU to the guests: nice :data:`WATCHER_NICE`.

    Where the kernel shares CPU time by session (``kernel.sched_autogroup_enabled`` and no
    CPU cgroup of the watcher's own), a nice value only counts against the processes of the
    same session, and the watcher has a session of its own: there it competes with each
    QEMU at full weight. Lowering its session group's nice too (``/proc/self/autogroup``)
    was measured (stop 15) and left out: the slower start-up it gives the watcher on a
    loaded host let a QEMU that quits at once exit before the watcher connected, and the
    exit was then classified without its SHUTDOWN event.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, WATCHER_NICE)


def restore_priority() -> None:
    """Undo :func:`lower_priority` where this process may (root may; else it stays)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def still_ours(run_dir: Path, pid: int, starttime: int | None) -> bool:
    """Whether ``run_dir`` still describes the QEMU this watcher followed (not cleaned up by
    someone else, nor reused by a new start of the domain)."""
    me = read_watcher(run_dir)
    if me is None or me.pid != os.getpid():  # removed, or made anew for another start
        return False
    try:
        rec = RuntimeRecord.load_or_none(run_dir)
    except PyvirtError:
        return False
    return rec is None or (rec.pid == pid and rec.starttime == starttime)


def main(argv: list[str] | None = None, *, on_exit: ExitCallback | None = None) -> int:
    """Entry point of ``python -m pyvirt.drivers.qemu.watch``.

    :param on_exit: called once QEMU is gone and ``exit.json`` is written (exceptions are
        logged); an entry module that wraps this one passes it
    """
    # supervision must never steal CPU from the guest it watches (TCG boots are CPU-bound)
    lower_priority()
    import argparse  # only the watcher process parses arguments; launchers just import us
    import asyncio

    parser = argparse.ArgumentParser(prog="pyvirt-watch", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--log", type=Path, help="domain log (informational)")
    parser.add_argument("--stderr-fd", type=int, help="read end of QEMU's stderr FIFO")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03dZ: pyvirt-watch: %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
        )
    )
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # qemu.qmp reports the expected EOF at QEMU exit as an error; keep the log readable
    logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

    write_watcher(run_dir, connected=False)
    # exit.json goes through this descriptor: a destroy removes the directory without waiting
    # for us, and the next start may make a new one of the same name meanwhile
    dir_fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    watcher = Watch(run_dir, args.stderr_fd)
    info = asyncio.run(watcher.run())
    log.info("QEMU gone: %s (%s)", info.reason, info.detail)
    if not still_ours(run_dir, watcher.qemu_pid, watcher.qemu_start):
        return 0  # someone else cleaned up already (a destroy), or the domain restarted
    if not write_exit_at(dir_fd, info):
        return 0  # removed just now
    if on_exit is not None:
        restore_priority()  # no guest to yield to: the stop work (taps, cgroups) is due now
        try:
            on_exit(run_dir, info, watcher.qemu_pid, watcher.qemu_start)
        except Exception:
            log.exception("stop work after QEMU exit failed")
            return 1
    return 0


def exit_now(code: int) -> NoReturn:
    """End the watcher process with ``code`` without the interpreter's teardown (freeing
    every module and object: ~17 ms of CPU, measured, spent as QEMU quits, which after a
    migration is when the guest resumes on the destination, on the same host for a local
    move). Its non-daemon threads (a run directory's removal) finish first, as at a normal
    exit; logs and standard streams are flushed."""
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
