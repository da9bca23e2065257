"""``pyvirt+ssh://[user@]host[:port]/[socket]``: a remote pyvirtd's unix socket through ssh.

The client runs ``ssh -N -o ExitOnForwardFailure=yes -L LOCAL:REMOTE host``, where LOCAL is
a socket in a fresh private directory (0700) and REMOTE is the daemon's socket
(``/run/pyvirt/pyvirtd.sock`` unless the URI's path or ``?socket=`` says otherwise), then
talks HTTP to LOCAL. ssh does the authentication (keys, agent, known hosts: the user's ssh
configuration applies); on the remote side the socket's mode decides, as for local users.
The tunnel ends when the client is closed or the process exits (even when it is killed: ssh
gets SIGTERM when the thread that started it ends, through ``PR_SET_PDEATHSIG``).

``PYVIRT_SSH_COMMAND`` replaces ``ssh`` (e.g. ``ssh -F ~/.ssh/pyvirt_config``). URI
parameters, as libvirt's: ``?keyfile=FILE`` (``-i``), ``?known_hosts=FILE``,
``?no_verify=1`` (do not check the host key: unsafe).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from pyvirt.client.uri import Target
from pyvirt.errors import OperationFailedError

__all__ = ["REMOTE_SOCKET", "SSHTunnel"]

#: the daemon's socket on a host where it runs as root with the default state directory
REMOTE_SOCKET = "/run/pyvirt/pyvirtd.sock"
_TRUE = ("1", "yes", "true", "on")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started ssh dies (even by
    SIGKILL), so a tunnel never outlives its client."""
    import ctypes  # local import: only in the forked child

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes], tmp: str) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def _sweep() -> None:
    """Remove the tunnel directories of clients that died without cleaning up (SIGKILL):
    each is named after its client's pid."""
    for d in Path(tempfile.gettempdir()).glob("pyvirt-ssh-*-*"):
        try:
            pid = int(d.name.split("-")[2])
            if d.stat().st_uid != os.getuid() or pid == os.getpid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, OSError):  # not ours, or its client lives (maybe as another user)
            continue


class SSHTunnel:
    """An ``ssh -L`` forward of a local socket to the remote daemon's socket."""

    def __init__(self, target: Target, timeout: float | None = None) -> None:
        remote = target.params.get("socket") or (str(target.path) if target.path else "")
        self.remote = remote or REMOTE_SOCKET
        _sweep()
        self.tmp = tempfile.mkdtemp(prefix=f"pyvirt-ssh-{os.getpid()}-")  # 0700
        self.local = Path(self.tmp) / "pyvirtd.sock"
        self.where = f"{target.user + '@' if target.user else ''}{target.host}"
        argv = self.argv(target)
        err_path = Path(self.tmp) / "ssh.err"
        with open(err_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err,
                                             preexec_fn=_die_with_parent)  # fmt: skip
            except OSError as exc:
                shutil.rmtree(self.tmp, ignore_errors=True)
                raise OperationFailedError(
                    f"cannot run {argv[0]}: {exc.strerror or exc}",
                    hint="install openssh-client, or set PYVIRT_SSH_COMMAND",
                ) from None
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.tmp)
        wait = timeout or float(os.environ.get("PYVIRT_SSH_TIMEOUT", "30"))
        self._wait_ready(wait, err_path)

    def argv(self, target: Target) -> list[str]:
        """The ssh command line of the forward."""
        cmd = shlex.split(os.environ.get("PYVIRT_SSH_COMMAND") or "ssh")
        cmd += ["-N", "-T", "-o", "ExitOnForwardFailure=yes", "-L", f"{self.local}:{self.remote}"]
        if target.port:
            cmd += ["-p", str(target.port)]
        if target.user:
            cmd += ["-l", target.user]
        params = target.params
        if params.get("keyfile"):
            cmd += ["-i", params["keyfile"]]
        if params.get("known_hosts"):
            cmd += ["-o", f"UserKnownHostsFile={params['known_hosts']}"]
        if params.get("no_verify", "").lower() in _TRUE:
            cmd += ["-o", "StrictHostKeyChecking=no"]
        return [*cmd, "--", target.host]  # "--": a host name never becomes an option

    def _wait_ready(self, timeout: float, err_path: Path) -> None:
        """Wait until ssh listens on the local socket (after authenticating)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self.local.exists() and self._answers():
                return
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
                self.close()
                why = f"ssh exited with status {code}" if code is not None else "timed out"
                detail = f": {' / '.join(tail)}" if tail else ""
                raise OperationFailedError(
                    f"cannot open an ssh tunnel to {self.where} ({why}){detail}",
                    hint="check 'ssh "
                    f"{self.where}' works without a prompt, and that pyvirtd runs there",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _answers(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.local))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def close(self) -> None:
        """Stop ssh and remove the local socket."""
        with contextlib.suppress(Exception):
            self._finalizer()
