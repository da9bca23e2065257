"""QEMU process supervision: launch daemonized, check liveness, terminate.

**Launch.** QEMU is run with ``-daemonize``: its parent process exits once the child has
finished initialising (sockets listening, pidfile written), with status 0 or with the error
printed to stderr and a non-zero status. :func:`launch` therefore simply waits for that parent;
there is no polling for sockets. QEMU runs in a new session (``start_new_session``), so it
outlives the caller and its terminal. QEMU's stdout and stderr at exec are the per-domain log
file (opened ``O_APPEND``), not a pipe: a pipe would be inherited by the daemon and keep the
reader blocked until QEMU exits. On a failed start the error text is read back from the log.

**stderr after -daemonize (QEMU 7.2), measured.** ``os_setup_post()`` points fds 0, 1 and 2
at ``/dev/null`` once the daemon is ready, *except* fd 2 when a log file is configured with
``-D``: without ``-D`` every later warning (``terminating on signal 15 from pid N``, I/O
errors, runtime deprecations) is lost. But in daemon mode QEMU opens the ``-D`` file itself
with ``fopen(path, "w")`` -- truncating it, without ``O_APPEND`` -- and ``dup2`` it onto
fd 2, early in the child (before devices are created, so most startup errors go there too).
Passing the domain log as ``-D`` therefore wipes the log on every start and lets QEMU
overwrite lines appended by others. So :func:`launch` points ``-D`` at a FIFO,
``RUN_DIR/stderr.fifo``, whose read end it opens first (QEMU's ``fopen`` would block
without a reader; QEMU ignores SIGPIPE, so a missing reader later only loses text). Launch
drains the FIFO into the domain log and into the error it raises; on success it keeps the
read end for :func:`pyvirt.drivers.qemu.watch.spawn_watcher`, which hands it to the watcher;
the watcher copies QEMU's later stderr into the log (``O_APPEND``, one writer at a time per
line). Errors printed before QEMU forks (option parsing) go straight to the log, which is
QEMU's stdout/stderr at exec. If no watcher runs, later warnings are dropped (EPIPE).

**Liveness.** ``/proc/PID/stat`` decides: a zombie (``Z``) or dead (``X``) process counts as
gone, since the daemon's parent is init, which may reap orphans late; ``kill(pid, 0)`` would
report a zombie as alive. The start time (field 22) guards against pid reuse.

**Signals** go through a pidfd (``pidfd_open`` + ``pidfd_send_signal``) opened after the
start time check, so a recycled pid can never be signalled; waiting polls the pidfd, which
becomes readable the instant the process exits (zombie included), so a responsive QEMU is
reaped-in-effect within a millisecond or two of exiting.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import re
import select
import signal
import subprocess  # not hostcmd: QEMU is spawned detached with its log fd and pid file
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pyvirt.errors import HostCommandError
from pyvirt.state.atomic import atomic_write

log = logging.getLogger(__name__)

#: How long QEMU's parent may take to daemonize before launch gives up.
LAUNCH_TIMEOUT = 60.0
#: Most of a failed QEMU's stderr that is kept in the error.
_STDERR_TAIL = 4096
#: The FIFO QEMU's stderr goes to after daemonizing (its -D file).
STDERR_FIFO = "stderr.fifo"
#: ``-sandbox`` for a QEMU that drops to another user with ``-runas`` and ``-daemonize``.
#: Measured with QEMU 7.2: the seccomp filter is installed before QEMU forks to daemonize and
#: before it calls setuid, so ``spawn=deny`` kills it at the fork and
#: ``elevateprivileges=deny|children`` at the setuid (SIGSYS). Both stay allowed; once QEMU
#: runs as the unprivileged user with no capabilities, and with ``no_new_privs`` set by the
#: filter (``NoNewPrivs: 1``), neither can raise its privileges.
SANDBOX = "on,obsolete=deny,resourcecontrol=deny"

# read ends of stderr FIFOs opened by launch(), waiting for spawn_watcher() to take them
_stderr_readers: dict[Path, int] = {}


@dataclass(frozen=True)
class Launched:
    """A started QEMU: its pid, its start time (``/proc/PID/stat`` field 22) and the argv
    actually run (``launch`` may add ``-daemonize`` and ``-D``)."""

    pid: int
    starttime: int
    argv: list[str]


def _option_value(argv: Sequence[str], option: str) -> str | None:
    """The value following ``option`` in argv (the last occurrence), or None."""
    value = None
    for i, arg in enumerate(argv[:-1]):
        if arg == option:
            value = argv[i + 1]
    return value


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def launch(
    argv: Sequence[str],
    *,
    run_dir: Path,
    log_path: Path,
    timeout: float = LAUNCH_TIMEOUT,
    env: dict[str, str] | None = None,
) -> int:
    """Start QEMU daemonized; return its pid. See :func:`launch_detailed`."""
    return launch_detailed(argv, run_dir=run_dir, log_path=log_path, timeout=timeout, env=env).pid


def starttime(pid: int) -> int | None:
    """The start time (``/proc/PID/stat`` field 22) of ``pid``; None if it does not exist."""
    stat = proc_stat(pid)
    return stat[1] if stat is not None else None


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``proc`` to exit, waking the moment it does (Popen.wait polls with sleeps).

    :raises subprocess.TimeoutExpired: after ``timeout`` seconds (the child is killed)
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        proc.wait(timeout)
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    proc.wait()


@contextlib.contextmanager
def _fds_at(fds: Mapping[int, int]) -> Iterator[tuple[int, ...]]:
    """Duplicate each open fd onto its fixed number for a child to inherit (no ``preexec_fn``:
    the dup2 happens here, around ``Popen``); closes them afterwards and restores whatever this
    process had open on those numbers."""
    saved: dict[int, int] = {}
    moved = [target for target, fd in fds.items() if fd != target]
    try:
        for target in moved:
            with contextlib.suppress(OSError):
                saved[target] = os.dup(target)
            os.dup2(fds[target], target, inheritable=False)
        yield tuple(fds)
    finally:
        for target in moved:
            with contextlib.suppress(OSError):
                os.close(target)
            if target in saved:
                os.dup2(saved[target], target, inheritable=False)
                os.close(saved[target])


#: Where :func:`runas_args` remembers which spelling an emulator binary takes.
RUNAS_CACHE = ".runas-option"


def runas_args(emulator: str, user: str, cache_dir: Path) -> list[str]:
    """QEMU's option to drop to ``user``: ``-run-with user=`` when the emulator has it (QEMU
    8.1 and later; ``-runas`` is deprecated since 9.1), else ``-runas`` (QEMU 7.2).

    Asking ``EMULATOR -help`` costs ~25 ms, so the answer is cached in ``cache_dir`` per
    emulator binary (inode, mtime, size).
    """
    try:
        st = os.stat(emulator)
        stamp = f"{emulator}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
    except OSError:
        return ["-runas", user]  # launch reports the missing emulator
    cache = cache_dir / RUNAS_CACHE
    try:
        cached_stamp, _, option = cache.read_text().rpartition(" ")
    except OSError:
        cached_stamp, option = "", ""
    if cached_stamp != stamp or option not in ("runas", "run-with"):
        try:
            text = subprocess.run(
                [emulator, "-help"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        option = "run-with" if re.search(r"^-run-with .*user=", text, re.M) else "runas"
        with contextlib.suppress(OSError):
            atomic_write(cache, f"{stamp} {option}".encode(), sync=False)
    return ["-run-with", f"user={user}"] if option == "run-with" else ["-runas", user]


def launch_detailed(
    argv: Sequence[str],
    *,
    run_dir: Path,
    log_path: Path,
    timeout: float = LAUNCH_TIMEOUT,
    env: dict[str, str] | None = None,
    pass_fds: Mapping[int, int] | None = None,
    run_as: str | None = None,
) -> Launched:
    """Start QEMU daemonized and return once it is up (its parent has exited).

    ``argv`` is the full command line (``argv[0]`` the emulator). ``-daemonize`` is added if
    missing; ``-D RUN_DIR/stderr.fifo`` too, unless argv has a ``-D`` already (see the module
    docstring). The pidfile is ``-pidfile``'s
    value, else ``run_dir/qemu.pid`` (added to argv). The log gets a header line with the
    command, then QEMU's own output.

    :param run_dir: the domain's run directory (created if needed)
    :param log_path: the domain's QEMU log (created if needed, appended to)
    :param env: environment for QEMU (default: inherited)
    :param pass_fds: fds QEMU inherits: fd number in QEMU -> open fd here (a macvtap named by
        ``-netdev tap,fd=N``); the caller keeps ownership of the open fds
    :param run_as: user QEMU switches to once it has opened its files (``-runas``), with the
        :data:`SANDBOX` seccomp filter; None keeps QEMU as the caller's user
    :returns: pid, start time and the argv actually run
    :raises HostCommandError: QEMU is missing, exits non-zero (message and ``.stderr`` hold
        its error output), times out, or wrote no usable pidfile
    """
    argv = list(argv)
    if "-daemonize" not in argv:
        argv.append("-daemonize")
    if run_as is not None and "-runas" not in argv and "-run-with" not in argv:
        argv += runas_args(argv[0], run_as, run_dir.parent)
        if "-sandbox" not in argv:
            argv += ["-sandbox", SANDBOX]
    fifo = run_dir / STDERR_FIFO
    use_fifo = "-D" not in argv
    if use_fifo:
        argv += ["-D", str(fifo)]
    pidfile_arg = _option_value(argv, "-pidfile")
    if pidfile_arg is None:
        pidfile = run_dir / "qemu.pid"
        argv += ["-pidfile", str(pidfile)]
    else:
        pidfile = Path(pidfile_arg)

    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    stale = _stderr_readers.pop(run_dir.absolute(), None)
    if stale is not None:
        os.close(stale)
    fifo_fd = -1
    if use_fifo:
        with contextlib.suppress(FileNotFoundError):
            fifo.unlink()
        os.mkfifo(fifo, 0o600)
        fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    log_fd = os.open(log_path, flags, 0o640)
    try:
        os.write(log_fd, f"{_timestamp()}: starting: {subprocess.list2cmdline(argv)}\n".encode())
        offset = os.lseek(log_fd, 0, os.SEEK_END)
        try:
            # no umask here: QEMU's daemon sets umask 027 itself (os_daemonize), measured
            # with 7.2 under the caller's umask 000 and 022: sockets srwxr-x--- root:root,
            # which no other user (nor an unprivileged QEMU) may connect to
            with _fds_at(pass_fds or {}) as targets:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fd,
                    stderr=log_fd,
                    start_new_session=True,
                    env=env,
                    pass_fds=targets,
                )
            _wait_exit(proc, timeout)
        except FileNotFoundError as err:
            raise HostCommandError(
                f"cannot run QEMU: '{argv[0]}' not found",
                argv=argv,
                hint="install QEMU or set <emulator> in the domain XML",
            ) from err
        except subprocess.TimeoutExpired as err:
            msg = f"QEMU did not finish starting within {timeout:g} s"
            raise HostCommandError(msg, argv=argv, stderr=_read_from(log_path, offset)) from err
        finally:
            if fifo_fd >= 0:
                drain(fifo_fd, log_fd)  # QEMU's stderr after it opened -D
    except BaseException:
        if fifo_fd >= 0:
            os.close(fifo_fd)
        raise
    finally:
        os.close(log_fd)

    if proc.returncode != 0:
        if fifo_fd >= 0:
            os.close(fifo_fd)
        raise HostCommandError(
            f"QEMU failed to start (exit status {proc.returncode})",
            argv=argv,
            returncode=proc.returncode,
            stderr=_read_from(log_path, offset),
            hint=f"see the domain log '{log_path}'",
        )
    if fifo_fd >= 0:
        _stderr_readers[run_dir.absolute()] = fifo_fd
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError) as err:
        raise HostCommandError(
            f"QEMU started but its pidfile '{pidfile}' is unreadable: {err}", argv=argv
        ) from err
    stat = proc_stat(pid)
    if stat is None or stat[0] in "ZX":
        raise HostCommandError(
            "QEMU exited right after starting",
            argv=argv,
            stderr=_read_from(log_path, offset),
            hint=f"see the domain log '{log_path}'",
        )
    log.debug("QEMU started: pid %d", pid)
    return Launched(pid=pid, starttime=stat[1], argv=argv)


def drain(fd: int, out_fd: int | None = None) -> bytes:
    """Read what is available from a non-blocking fd (copying it to ``out_fd``)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        if out_fd is not None:
            os.write(out_fd, chunk)
    return b"".join(chunks)


def take_stderr_reader(run_dir: Path) -> int | None:
    """The read end of the stderr FIFO that :func:`launch` kept for ``run_dir``, if any.

    The caller owns the fd afterwards (the watcher gets it).
    """
    return _stderr_readers.pop(run_dir.absolute(), None)


def _read_from(path: Path, offset: int) -> str:
    """What was appended to ``path`` since ``offset`` (at most the last 4 KiB)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - _STDERR_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def proc_stat(pid: int) -> tuple[str, int] | None:
    """The state letter and start time (field 22) of ``pid``, or None if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as err:
        if err.errno == errno.ESRCH:
            return None
        raise
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def is_alive(pid: int, starttime: int | None) -> bool:
    """Whether process ``pid`` exists, is not a zombie, and is the one started at ``starttime``.

    :param starttime: ``/proc/PID/stat`` field 22 recorded at launch; None skips the pid-reuse
        check (records that lack it)
    """
    stat = proc_stat(pid)
    if stat is None or stat[0] in "ZXx":
        return False
    return starttime is None or stat[1] == starttime


class Outcome(enum.Enum):
    """How :func:`terminate` / :func:`kill` ended."""

    #: the process was already gone (or the pid belongs to another process now)
    NOT_RUNNING = "not-running"
    #: it exited after the first signal
    EXITED = "exited"
    #: it had to be killed with SIGKILL
    KILLED = "killed"


def _open_pidfd(pid: int, starttime: int | None) -> int | None:
    """A pidfd for ``pid`` if it is alive and the expected process, else None."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    # checked after opening: the pidfd now pins this very process, so no reuse race
    if not is_alive(pid, starttime):
        os.close(fd)
        return None
    return fd


def _wait_pidfd(pidfd: int, pid: int, timeout: float) -> bool:
    """Wait until the process exits (zombie counts); True if it did within ``timeout``."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if poller.poll(max(0, int(remaining * 1000) + 1)):
            return True
        # belt and braces: the /proc state, in case poll semantics differ
        stat = proc_stat(pid)
        if stat is None or stat[0] in "ZXx":
            return True
        if remaining <= 0:
            return False


def _wait_stopped(pidfd: int, pid: int, timeout: float) -> bool:
    """Wait until the process's main thread has exited (a zombie) or the process is gone;
    True if it did within ``timeout``. ``/proc`` is read every ms at first (QEMU exits ~2-6 ms
    after SIGTERM), less often later; the pidfd answers only once every thread is gone."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    start = time.monotonic()
    while True:
        stat = proc_stat(pid)
        if stat is None or stat[0] in "ZXx":
            return True
        now = time.monotonic()
        remaining = start + timeout - now
        if remaining <= 0:
            return False
        step = 1 if now - start < 0.1 else 20  # ms
        if poller.poll(min(step, int(remaining * 1000) + 1)):
            return True


def wait_exited(pid: int, starttime: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until process ``pid`` (the one started at ``starttime``)
    has entirely exited, every thread gone and its files closed, even if its main thread is a
    zombie already; True if it has (or is gone, or the pid is another process's now)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        stat = proc_stat(pid)  # checked after opening: the pidfd pins this very process
        if stat is None or (starttime is not None and stat[1] != starttime):
            return True
        return _poll_in(pidfd, timeout)
    finally:
        os.close(pidfd)


def _poll_in(fd: int, timeout: float) -> bool:
    """Whether ``fd`` becomes readable within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def _signal(pidfd: int, sig: int) -> bool:
    """Send ``sig`` through the pidfd; False if the process is already gone."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, starttime: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the process to exit; True if it is gone."""
    pidfd = _open_pidfd(pid, starttime)
    if pidfd is None:
        return True
    try:
        return _wait_pidfd(pidfd, pid, timeout)
    finally:
        os.close(pidfd)


def terminate(
    pid: int, starttime: int | None, *, timeout: float = 10.0, stopped: bool = False
) -> Outcome:
    """Stop QEMU: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL (as virsh destroy).

    QEMU handles SIGTERM promptly (it stops vCPUs, flushes block devices and exits, emitting
    ``SHUTDOWN`` with cause ``host-signal``), so a responsive QEMU is gone in a few ms.

    :param timeout: grace period before SIGKILL; 0 kills at once
    :param stopped: return once QEMU has exited (its main thread is a zombie: none of its code
        runs any more, and :func:`is_alive` says so) instead of once the kernel has torn the
        whole process down (its other threads and its memory: ~10 ms more for a small guest);
        its files (image locks, taps) may stay open that long: :func:`wait_exited` waits
    :returns: what happened
    :raises HostCommandError: the process survived SIGKILL for 5 s (stuck in the kernel)
    """
    pidfd = _open_pidfd(pid, starttime)
    if pidfd is None:
        return Outcome.NOT_RUNNING
    try:
        if timeout > 0:
            if not _signal(pidfd, signal.SIGTERM):
                return Outcome.NOT_RUNNING
            if (_wait_stopped if stopped else _wait_pidfd)(pidfd, pid, timeout):
                return Outcome.EXITED
            log.warning("QEMU pid %d ignored SIGTERM for %g s; sending SIGKILL", pid, timeout)
        if not _signal(pidfd, signal.SIGKILL):
            return Outcome.EXITED
        if not _wait_pidfd(pidfd, pid, 5.0):
            raise HostCommandError(
                f"QEMU process {pid} did not die after SIGKILL",
                hint="it is probably stuck in uninterruptible I/O; check the host",
            )
        return Outcome.KILLED
    finally:
        os.close(pidfd)


def kill(pid: int, starttime: int | None, *, timeout: float = 5.0) -> Outcome:
    """SIGKILL at once and wait up to ``timeout`` seconds for the process to be gone.

    :raises HostCommandError: the process survived SIGKILL for ``timeout`` seconds
    """
    pidfd = _open_pidfd(pid, starttime)
    if pidfd is None:
        return Outcome.NOT_RUNNING
    try:
        if not _signal(pidfd, signal.SIGKILL):
            return Outcome.NOT_RUNNING
        if not _wait_pidfd(pidfd, pid, timeout):
            raise HostCommandError(f"QEMU process {pid} did not die after SIGKILL")
        return Outcome.KILLED
    finally:
        os.close(pidfd)


class Found(NamedTuple):
    """A process found by :func:`find_by_cmdline`: pid, start time and argv (a named tuple:
    cheaper to create at every command's start-up than a dataclass)."""

    pid: int
    starttime: int
    argv: list[str]


def _read_cmdline(pid: str) -> bytes | None:
    """``/proc/PID/cmdline`` with plain ``os.read`` (every start scans all processes: a
    buffered ``open`` per process costs twice as much), None when the process is gone."""
    try:
        fd = os.open(f"/proc/{pid}/cmdline", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def find_by_cmdline(uuid: str, qmp_socket: Path) -> list[Found]:
    """Every live process whose command line is a QEMU of this domain: ``-uuid UUID`` and an
    argument naming ``qmp_socket`` (the domain's run directory, hence its state root).

    It finds QEMUs pyvirt lost track of (a start killed before its runtime record was
    written, a run directory removed by hand) without any file of pyvirt's.
    """
    sock = str(qmp_socket).encode()
    want_uuid = uuid.lower().encode()
    out: list[Found] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        raw = _read_cmdline(entry)
        if raw is None or sock not in raw or b"-uuid" not in raw:
            continue
        args = raw.rstrip(b"\0").split(b"\0")
        uuids = [args[i + 1].lower() for i, a in enumerate(args[:-1]) if a == b"-uuid"]
        if want_uuid not in uuids or not any(sock in a for a in args):
            continue
        stat = proc_stat(int(entry))
        if stat is None or stat[0] in "ZXx":
            continue
        out.append(Found(int(entry), stat[1], [a.decode(errors="replace") for a in args]))
    return out


def unix_socket_bound(path: Path) -> bool | None:
    """Whether some process of this network namespace has a unix socket bound to ``path``
    (``/proc/net/unix``: one read, where :func:`find_by_cmdline` reads every process's command
    line and waits on busy ones); the socket counts even when its file was removed. None
    when the table cannot be read."""
    try:
        with open("/proc/net/unix", "rb") as f:
            table = f.read()
    except OSError:
        return None
    want = b" " + str(path).encode()
    return any(line.endswith(want) for line in table.splitlines())


def cmdline_names(pid: int, path: Path) -> bool:
    """Whether process ``pid``'s command line names ``path`` (e.g. its QMP socket): it is
    the QEMU of that run directory, not a stand-in."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return str(path).encode() in f.read()
    except OSError:
        return False
