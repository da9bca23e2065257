"""Starting and stopping domains: the QEMU side of the domain use cases.

Start is on the hot path (target: the CLI returns in well under 120 ms), so it does only:
parse the definition, build the argv (pure), launch QEMU with ``-daemonize`` (QEMU's parent
returns once the machine is set up, so failures are reported synchronously), write the
runtime record and spawn the reaper (the per-domain watcher, which also does the stop work
when QEMU exits: :mod:`pyvirt.service.domain.reaper`) without waiting for it -- unless pyvirtd
supervises this host's domains (:mod:`pyvirt.service.domain.supervise`): then it watches the
new domain itself and no reaper is spawned.

Every QEMU gets ``-no-shutdown`` (added at launch, like ``-S``): after a guest power-off QEMU
waits in run state ``shutdown`` and its watcher applies ``on_poweroff`` (``quit`` for
``destroy``). So a power-off while no watcher runs (pyvirtd restarting, a reaper killed) is
still seen as a power-off when one comes back, and a QEMU that vanished really crashed.

Every file of the run directory that is read back is written through its owner,
:class:`pyvirt.drivers.qemu.rundir.RunDir`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.qemu.rundir import HookData
from pyvirt.errors import InvalidStateError, UnsupportedError
from pyvirt.service import hooks
from pyvirt.service.domain import dac
from pyvirt.service.domain.types import DomainStatus, Reason, State
from pyvirt.state.atomic import atomic_write
from pyvirt.state.domains import uuid_in
from pyvirt.state.locks import file_lock

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.plan import StartPlan
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: ``destroy``/``dominfo``
# import this module; the argv builder (~30 ms), the start planner, QMP (~15 ms), pyvirt.model and
# the console load only for the verbs that use them (a cached start skips the argv builder).

VNC_BASE_PORT = 5900


def _next_id(mgr: DomainManager) -> int:
    """Allocate the next numeric domain id (monotonic per host boot, like libvirt's)."""
    counter = mgr.paths.domain_run_root / ".next-id"
    with file_lock(mgr.paths.lock_dir / "ids.lock", what="the domain id counter"):
        try:
            value = int(counter.read_text())
        except (FileNotFoundError, ValueError):
            value = 1
        mgr.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
        atomic_write(counter, str(value + 1).encode(), sync=False)
    return value


def _free_vnc_display(mgr: DomainManager) -> int:
    """The lowest VNC display whose TCP port is free and not claimed by another domain."""
    claimed: set[int] = set()
    for name in mgr.running_names():
        rec = mgr.record(name)
        if rec is not None and rec.vnc_display is not None:
            claimed.add(rec.vnc_display)
    import socket  # lazy

    for display in range(0, 100):
        if display in claimed:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", VNC_BASE_PORT + display))
            except OSError:
                continue
        return display
    raise InvalidStateError("no free VNC port between 5900 and 5999")


def _check_accel(dom: Domain) -> None:
    if dom.type != "kvm":
        return
    if not os.path.exists("/dev/kvm"):
        raise UnsupportedError(
            f"domain '{dom.name}' needs KVM but /dev/kvm does not exist",
            hint="load kvm_intel or kvm_amd, or set <domain type='qemu'> to use TCG",
        )


def _compile(mgr: DomainManager, dom: Domain, key: str) -> tuple[StartPlan, bool]:
    """Build the start plan of ``dom``: its argv, files, policy and live XML.

    :returns: the plan and whether it may be cached (not when the argv depends on a start-time
        choice such as an allocated VNC port)
    """
    from pyvirt.drivers.qemu import plan  # lazy
    from pyvirt.drivers.qemu.argv import ArgvContext, build_argv, required_files  # lazy

    _check_accel(dom)
    run_dir = mgr.paths.domain_run_dir(dom.name)
    vnc_display = None
    dynamic = False
    for g in dom.devices.graphics:
        if g.type == "vnc" and not g.socket and (g.autoport or g.port in (None, -1)):
            vnc_display = _free_vnc_display(mgr)
            g.port = VNC_BASE_PORT + vnc_display
            g.autoport = True
            dynamic = True
        elif g.type == "vnc" and g.port is not None and g.port >= VNC_BASE_PORT:
            vnc_display = g.port - VNC_BASE_PORT
    hook_data: dict[str, dict[str, Any]] = {}
    for hook in hooks.hooks():
        result = hook.compile(mgr, dom)
        if result is not None:
            hook_data[hook.name] = result.data
            dynamic = dynamic or not result.cacheable
    ctx = ArgvContext(
        run_dir=run_dir,
        log_dir=mgr.paths.domain_log_dir(dom.name),
        daemonize=True,
        vnc_display=vnc_display,
    )
    argv = build_argv(dom, ctx)
    files = {str(path): content for path, content in required_files(dom, ctx).items()}
    policy = {"on_poweroff": dom.on_poweroff, "on_reboot": dom.on_reboot, "on_crash": dom.on_crash}
    if vnc_display is not None:
        policy["vnc_display"] = str(vnc_display)
    compiled = plan.StartPlan(
        key=key,
        name=dom.name,
        uuid=dom.uuid,
        argv=argv,
        policy=policy,
        files=files,
        emulator_stamp=plan.emulator_stamp(argv[0]),
        hooks=hook_data,
        live_xml=dom.to_xml(),
    )
    return compiled, not dynamic


def _run(
    mgr: DomainManager,
    p: StartPlan,
    *,
    paused: bool,
    transient: bool,
    extra_argv: Sequence[str] = (),
    incoming: str | None = None,
    ready: Callable[[RuntimeRecord], None] | None = None,
    spawning: Callable[[], None] | None = None,
) -> DomainStatus:
    """Launch QEMU from a plan (caller holds the domain lock and checked it is not running).

    :param extra_argv: appended to the plan's argv (``-incoming defer`` for a restore)
    :param incoming: what a QEMU started with ``-incoming defer`` waits for (the runtime
        record's ``incoming``)
    :param ready: called with the record once it is saved and the hooks' ``after_launch``
        ran, before the pseudo-terminals are read and the watcher starts (whose start-up
        would compete with it for the CPU): an incoming QEMU listens as early as it can; if
        it raises, it has stopped QEMU itself
    :param spawning: called right before QEMU is spawned (the Python of this start is done)
    """
    from pyvirt.drivers.qemu import process, runtime  # lazy
    from pyvirt.service.domain import ptys, reaper_spawn, supervise  # lazy

    name = p.name
    run = mgr.rundir(name)
    run_dir = run.path
    log_dir = mgr.paths.domain_log_dir(name)
    run.create()
    run.write_start_intent(p.uuid)  # before QEMU can run: a killed start is found again
    log_dir.mkdir(parents=True, exist_ok=True)
    for path, content in p.files.items():
        atomic_write(Path(path), content.encode(), mode=0o600, sync=False)
    argv = list(p.argv)
    if "-no-shutdown" not in argv:  # a guest power-off waits for the watcher's decision
        argv.append("-no-shutdown")
    if paused:
        argv.append("-S")
    argv.extend(extra_argv)
    run.write_live_xml(p.live_xml)
    run.write_policy(**{k: v for k, v in p.policy.items() if k.startswith("on_")})
    domain_id = _next_id(mgr)
    active = _before_launch(mgr, p)
    if spawning is not None:
        spawning()
    fds = hooks.take_fds(name)  # closed below whatever happens: nothing may raise between
    try:
        launched = process.launch_detailed(
            argv, run_dir=run_dir, log_path=log_dir / "qemu.log", pass_fds=fds, run_as=_run_as(mgr)
        )
    except BaseException:
        hooks.run_after_stop(mgr, name, _recorded(mgr, name, active))
        run.remove()
        raise
    finally:
        hooks.close_fds(fds)
    vnc = p.policy.get("vnc_display")
    rec = runtime.RuntimeRecord(
        name=name,
        uuid=p.uuid,
        pid=launched.pid,
        starttime=launched.starttime,
        domain_id=domain_id,
        qmp_socket=str(run_dir / "qmp.sock"),
        events_socket=str(run_dir / "events.sock"),
        serial_sockets=sorted(str(s) for s in run_dir.glob("serial*.sock")),
        console_log=str(log_dir / "console.log"),
        log_path=str(log_dir / "qemu.log"),
        vnc_display=int(vnc) if vnc is not None else None,
        argv=launched.argv,
        started_at=time.time(),
        paused=paused,
        transient=transient,
        incoming=incoming,
    )
    if ready is not None:  # the incoming side first: the source may send once it listens
        run.save_record(rec)  # (what a failed ready's clean-up finds)
        _after_launch(mgr, p, launched.pid, launched.starttime)
        ready(rec)
    if ptys.has_ptys(rec):  # the live XML as the hooks left it (volume disks put back)
        current = run.live_xml().decode()
        live_xml = ptys.record_ptys(rec, current)
        if live_xml is not current:
            run.write_live_xml(live_xml)
    if ready is None or rec.ptys:
        run.save_record(rec)
    if not supervise.supervisor_alive(mgr.paths):  # else pyvirtd watches it, no reaper needed
        reaper_spawn.spawn(mgr.paths, name)
    if ready is None:
        _after_launch(mgr, p, launched.pid, launched.starttime)
    supervise.notify_started(name)
    mgr.paths.domain_last_state(name).unlink(missing_ok=True)
    state = State.PAUSED if paused else State.RUNNING
    reason = Reason.USER if paused else Reason.BOOTED
    return DomainStatus(name, p.uuid, domain_id, state, reason, not transient, False, launched.pid)


def _run_as(mgr: DomainManager) -> str | None:
    """The user QEMU drops to (:mod:`pyvirt.service.domain.dac`), None to stay pyvirt's."""
    ident = dac.identity(mgr)
    return ident.user if ident.separate else None


def _before_launch(mgr: DomainManager, p: StartPlan) -> dict[str, dict[str, Any]]:
    """Run the hooks' before_launch; record their data in the run dir for after_stop."""
    if not p.hooks:
        return {}

    run = mgr.rundir(p.name)
    run.save_hooks(HookData(sections=dict(p.hooks)))
    done: dict[str, dict[str, Any]] = {}
    for hook in hooks.hooks(p.hooks):
        if hook.name not in p.hooks:
            continue
        try:
            hook.before_launch(mgr, p.name, p.hooks[hook.name])
        except BaseException:
            hooks.close_fds(hooks.take_fds(p.name))
            hooks.run_after_stop(mgr, p.name, _recorded(mgr, p.name, done))
            run.remove()
            raise
        done[hook.name] = p.hooks[hook.name]
    return done


def _recorded(
    mgr: DomainManager, name: str, ran: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The hook data now in the run dir (hooks add to it while they run) of the hooks that
    ran, for their after_stop on a failed start."""
    sections = mgr.rundir(name).hooks().sections
    return {hook: sections.get(hook, data) for hook, data in ran.items()}


def _after_launch(mgr: DomainManager, p: StartPlan, pid: int, starttime: int | None) -> None:
    """Run the hooks' after_launch; a failure destroys the new domain and re-raises."""
    if not p.hooks:
        return
    from pyvirt.drivers.qemu import process  # lazy

    for hook in hooks.hooks(p.hooks):
        if hook.name not in p.hooks:
            continue
        try:
            hook.after_launch(mgr, p.name, pid, p.hooks[hook.name])
        except BaseException:
            mgr.rundir(p.name).mark_destroying()
            process.terminate(pid, starttime, timeout=3.0)
            rec = mgr.record(p.name)
            if rec is not None:
                mgr.reap(p.name, rec)
            raise


def launch_incoming(
    mgr: DomainManager,
    dom: Domain,
    *,
    transient: bool,
    purpose: str = "migration",
    ready: Callable[[RuntimeRecord], None] | None = None,
    spawning: Callable[[], None] | None = None,
) -> DomainStatus:
    """Launch QEMU for ``dom`` paused and waiting for an incoming migration (``-incoming
    defer``: a restore feeds it the saved state). The caller holds the domain lock and
    checked that it is not running (:func:`refuse_lost` too).

    :param purpose: ``migration`` or ``restore`` (the runtime record's ``incoming``)
    :param ready: sets the incoming side up before the domain's watcher starts (see
        :func:`_run`); if it raises, it has stopped QEMU itself
    :param spawning: called right before QEMU is spawned
    """
    compiled, _ = _compile(mgr, dom, key="")
    return _run(mgr, compiled, paused=True, transient=transient,
                extra_argv=("-incoming", "defer"), incoming=purpose, ready=ready,
                spawning=spawning)  # fmt: skip


def refuse_lost(mgr: DomainManager, name: str, uuid: str) -> None:
    """Never start a second QEMU of a domain whose first one runs untracked.

    :raises InvalidStateError: a QEMU of ``name`` runs without a runtime record
    """
    _refuse_lost(mgr, name, uuid)


def native_argv(mgr: DomainManager, dom: Domain) -> list[str]:
    """The QEMU command line ``dom`` would run with (virsh ``domxml-to-native``).

    Start-time choices are shown as a first start would make them on an idle host: an
    automatic VNC port becomes display 0 (port 5900), as virsh shows it.
    """
    from pyvirt.drivers.qemu.argv import ArgvContext, build_argv  # lazy

    vnc_display = None
    for g in dom.devices.graphics:
        if g.type == "vnc" and not g.socket:
            auto = g.autoport or g.port in (None, -1)
            vnc_display = 0 if auto else (g.port or VNC_BASE_PORT) - VNC_BASE_PORT
    ctx = ArgvContext(
        run_dir=mgr.paths.domain_run_dir(dom.name),
        log_dir=mgr.paths.domain_log_dir(dom.name),
        vnc_display=vnc_display,
    )
    return build_argv(dom, ctx)


def plan_path(mgr: DomainManager, name: str) -> Path:
    return mgr.paths.cache / "plans" / f"{name}.json"


def start(mgr: DomainManager, name: str, *, paused: bool = False) -> DomainStatus:
    """Start a defined, shut-off domain (from its cached start plan when it has one)."""
    from pyvirt.drivers.qemu import plan  # lazy

    with mgr.locked(name):
        if mgr.live_record(name, cleanup=True) is not None:
            raise InvalidStateError(f"domain '{name}' is already running")
        xml = mgr.store.read_bytes(name)
        if xml is None:
            raise InvalidStateError(f"domain '{name}' is not defined")
        _refuse_lost(mgr, name, uuid_in(xml) or "")
        if mgr.has_managed_save(name):  # start resumes a managed save, like virsh
            return mgr.resume_managed(name, paused=paused)
        key = plan.plan_key(xml, hooks=hooks.HOOK_MODULES)
        cached = plan.load(plan_path(mgr, name), key)
        if cached is None:
            cached, cacheable = _compile(mgr, mgr.parse_stored(name, xml), key)
            if cacheable:
                plan.save(plan_path(mgr, name), cached)
        return _run(mgr, cached, paused=paused, transient=False)


def _refuse_lost(mgr: DomainManager, name: str, uuid: str) -> None:
    """Never start a second QEMU of a domain whose first one runs untracked.

    :raises InvalidStateError: a QEMU of ``name`` runs without a runtime record
    """
    lost = mgr.lost_qemus(name, uuid) if uuid else []
    if lost:
        raise InvalidStateError(
            f"domain '{name}' has a QEMU (pid {lost[0]}) pyvirt lost track of (its run "
            "directory is gone); not starting a second one",
            hint=f"stop it with 'destroy {name}', then start again",
        )


def create(mgr: DomainManager, xml: str | bytes, *, paused: bool = False) -> DomainStatus:
    """Create and start a transient domain from XML (virsh ``create``)."""
    from pyvirt.host.hostpaths import refuse_risks  # lazy
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.state.names import check_new_name  # lazy

    dom = Domain.from_xml(xml)
    check_new_name(dom.name, paths=mgr.paths)
    refuse_risks(f"domain '{dom.name}'", mgr.host_risks(dom))  # no --force for transients
    with mgr.namespace():
        mgr.check_unique(dom, allow_same_name=True)
        with mgr.locked(dom.name):
            if mgr.live_record(dom.name, cleanup=True) is not None:
                raise InvalidStateError(f"domain '{dom.name}' is already running")
            _refuse_lost(mgr, dom.name, dom.uuid)
            compiled, _ = _compile(mgr, dom, key="")
            transient = not mgr.store.exists(dom.name)
            return _run(mgr, compiled, paused=paused, transient=transient)


def shutdown(mgr: DomainManager, ident: str) -> None:
    """Ask the guest to power off (ACPI power button); returns at once like virsh."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    _, rec = mgr.running(ident)
    with Monitor(rec.qmp_socket) as mon:
        mon.system_powerdown()


def destroy(
    mgr: DomainManager, ident: str, *, graceful: bool = False, stop_work: bool = True
) -> None:
    """Stop QEMU immediately (SIGTERM, then SIGKILL); the reason becomes ``destroyed``.

    :param stop_work: False returns once QEMU is gone and leaves the stop work to the
        domain's watcher (pyvirtd's supervisor, which watches it); the shut-off reason is
        recorded already, so the domain reads ``shut off (destroyed)`` at once
    """
    from pyvirt.drivers.qemu import process  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            if _destroy_lost(mgr, name, graceful=graceful):
                return
            raise InvalidStateError(f"domain '{name}' is not running")
        run = mgr.rundir(name)
        run.mark_destroying(stop_work_here=stop_work)
        # without the stop work, answer once QEMU has exited, not once the kernel has freed
        # its memory too: the watcher's stop work starts when QEMU's files are closed
        outcome = process.terminate(rec.pid, rec.starttime, timeout=10.0 if graceful else 3.0,
                                    stopped=not stop_work)  # fmt: skip
        if stop_work:
            # QEMU died of our signal after the intent was recorded: the reason is "destroyed"
            # whatever the watcher records (the intent wins), so do not wait for it to write it
            killed = outcome is not process.Outcome.NOT_RUNNING
            mgr.reap(name, rec, wait=0.0 if killed else 0.5)
        else:
            run.record_destroyed()  # the watcher does the stop work


def _destroy_lost(mgr: DomainManager, name: str, *, graceful: bool) -> bool:
    """Stop the QEMUs of ``name`` that run without a runtime record (caller holds the lock).

    :returns: whether there were any
    """
    from pyvirt.drivers.qemu import process  # lazy

    uuid = mgr.uuid_of(name) if mgr.store.exists(name) else None
    found = process.find_by_cmdline(uuid, mgr.rundir(name).qmp_socket) if uuid else []
    for f in found:
        process.terminate(f.pid, f.starttime, timeout=10.0 if graceful else 3.0)
    if found:
        mgr.rundir(name).remove()
        mgr.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
        atomic_write(
            mgr.paths.domain_last_state(name),
            json.dumps({"state": "shut off", "reason": "destroyed", "at": time.time()}).encode(),
            sync=False,
        )
    return bool(found)


def reboot(mgr: DomainManager, ident: str) -> None:
    """Reboot the guest (a machine reset; a graceful reboot needs the guest agent)."""
    reset(mgr, ident)


def reset(mgr: DomainManager, ident: str) -> None:
    """Hard-reset the virtual machine, like pressing its reset button."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    _, rec = mgr.running(ident)
    with Monitor(rec.qmp_socket) as mon:
        mon.system_reset()


def _set_paused(mgr: DomainManager, ident: str, paused: bool) -> None:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(f"domain '{name}' is not running")
        with Monitor(rec.qmp_socket) as mon:
            if paused:
                mon.stop()
            else:
                mon.cont()
        rec.paused = paused
        rec.reason = None if paused else "unpaused"
        mgr.rundir(name).save_record(rec)


def suspend(mgr: DomainManager, ident: str) -> None:
    _set_paused(mgr, ident, True)


def resume(mgr: DomainManager, ident: str) -> None:
    _set_paused(mgr, ident, False)


def qemu_status(mgr: DomainManager, ident: str) -> tuple[str, bool]:
    """QEMU's own view (``query-status``): status string and whether vCPUs run."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    _, rec = mgr.running(ident)
    with Monitor(rec.qmp_socket) as mon:
        return mon.query_status()


def console_socket(mgr: DomainManager, ident: str) -> tuple[str, Path]:
    """Name and serial console of a running domain: its first serial port's pseudo-terminal
    (``/dev/pts/N``), or the unix socket of a domain started by an older pyvirt."""
    name, rec = mgr.running(ident)
    for prefix in ("serial", "console"):
        ports = [a for a in rec.ptys if a.startswith(prefix) and a[len(prefix) :].isdigit()]
        if ports:
            return name, Path(rec.ptys[min(ports, key=lambda a: int(a[len(prefix) :]))])
    if not rec.serial_sockets:
        raise InvalidStateError(
            f"domain '{name}' has no serial console",
            hint="add <serial type='pty'/> (or <console type='pty'/>) to its definition",
        )
    return name, Path(rec.serial_sockets[0])


def attach_console(mgr: DomainManager, ident: str, *, force: bool = False) -> str:
    """Attach this terminal to the domain's serial console until ^] or the guest closes it.

    :param force: take the console over from another session (which ends)
    :returns: why it ended: "escape", "closed", "eof" or "taken over"
    :raises OperationFailedError: another session holds the console (not ``force``)
    """
    from pyvirt.drivers.qemu import console  # lazy

    name, sock = console_socket(mgr, ident)
    return console.attach(str(sock), name=name, force=force, mark_dir=mgr.rundir(name).path)


def cpu_time(pid: int) -> float:
    """CPU seconds used by a process (utime + stime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
