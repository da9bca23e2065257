"""The domain's TPM (hook ``tpm``): swtpm for ``<backend type='emulator'>``, a host check for
``passthrough``, and the TPM state's place and lifetime.

The state of a domain's emulated TPM lives in ``LIB/swtpm/UUID/tpm2`` (``tpm1.2`` for a TPM
1.2), as libvirt keeps it in ``/var/lib/libvirt/swtpm/UUID/tpm2``; ``LIB`` is the state's
config root (``/var/lib/pyvirt`` as root). swtpm runs as the QEMU user
(:mod:`pyvirt.state.qemu_user`), as libvirt runs it as its unprivileged ``swtpm_user``:
``LIB/swtpm`` is ``root:QEMU-GROUP 0710`` (traverse only), ``LIB/swtpm/UUID`` and below belong
to the QEMU user, mode 0700, the state files 0600.

``before_launch``
    creates the state with ``swtpm_setup --tpm2`` on first use (an EK, the NVRAM locked, the
    ``<active_pcr_banks>``), then starts ``swtpm socket --terminate`` in the background with
    its control socket and pid file in ``RUN/NAME/swtpm/`` (the QEMU user's) and its log in
    ``LOG/qemu/NAME/swtpm.log``, and waits for the socket; QEMU connects to it at start
    (``-chardev socket,id=chrtpm``, see :mod:`pyvirt.drivers.qemu.argv.devices.tpm`). A
    passthrough backend is refused here when the host has no such TPM device.
``after_stop``
    stops swtpm (every stop path: it runs at shutdown, destroy, crash and in the reaper after a
    daemon restart; ``--terminate`` also ends swtpm when QEMU's connection drops). A transient
    domain's state is removed then unless ``persistent_state='yes'``, as libvirt does.

``undefine`` removes the state (:func:`remove_state`) unless ``--keep-tpm``; with
``persistent_state='yes'`` only ``--tpm`` removes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.qemu.argv.devices.tpm import DEFAULT_HOST_TPM, SWTPM_DIR, check_tpm
from pyvirt.drivers.qemu.argv.devices.tpm import swtpm_socket as socket_path
from pyvirt.errors import HostCommandError, UnsupportedError
from pyvirt.service.domain.dac import identity
from pyvirt.service.hooks import HookResult, register_hook

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths
    from pyvirt.state.qemu_user import QemuIdentity

log = logging.getLogger(__name__)

HOOK_NAME = "tpm"
#: how long swtpm may take to create its socket
START_TIMEOUT = 10.0
#: how long swtpm_setup may take to make a TPM's state (an RSA key under load)
SETUP_TIMEOUT = 120.0
#: the file swtpm keeps a TPM 2.0's permanent state in
TPM2_STATE_FILE = "tpm2-00.permall"
#: the file of a TPM 1.2's permanent state
TPM12_STATE_FILE = "tpm-00.permall"


def state_root(paths: StatePaths) -> Path:
    """Where every domain's TPM state lives (``/var/lib/pyvirt/swtpm`` as root)."""
    return paths.config / "swtpm"


def state_dir(paths: StatePaths, uuid: str, version: str = "2.0") -> Path:
    """The TPM state directory of the domain ``uuid`` (``LIB/swtpm/UUID/tpm2``)."""
    return state_root(paths) / uuid / ("tpm2" if version == "2.0" else "tpm1.2")


def remove_state(paths: StatePaths, uuid: str) -> bool:
    """Delete the TPM state of domain ``uuid``; returns whether there was one."""
    path = state_root(paths) / uuid
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True


def has_state(paths: StatePaths, uuid: str) -> bool:
    """Whether domain ``uuid`` has TPM state on this host."""
    return (state_root(paths) / uuid).exists()


def _dir(path: Path, mode: int, uid: int | None, gid: int | None) -> None:
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, mode)


def _as_user(ident: QemuIdentity) -> dict[str, Any]:
    """subprocess arguments that run a command as the QEMU user (nothing when it is ours)."""
    if not ident.separate:
        return {}
    return {"user": ident.uid, "group": ident.gid, "extra_groups": []}


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(home)}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UnsupportedError(
            f"<tpm> backend 'emulator' needs {name}, which is not installed",
            hint="install the Debian packages swtpm and swtpm-tools (scripts/setup.sh does)",
        )
    return path


def prepare_state(
    paths: StatePaths, ident: QemuIdentity, uuid: str, version: str, banks: list[str], logf: int
) -> Path:
    """Create the TPM state directory (owned by the QEMU user) and, on first use, the TPM's
    state with ``swtpm_setup``; returns the directory.

    :raises HostCommandError: swtpm_setup failed
    """
    uid, gid = (ident.uid, ident.gid) if ident.separate else (None, None)
    root = state_root(paths)
    _dir(root, 0o710 if ident.separate else 0o700, None, gid)
    _dir(root / uuid, 0o700, uid, gid)
    sdir = state_dir(paths, uuid, version)
    _dir(sdir, 0o700, uid, gid)
    permall = TPM2_STATE_FILE if version == "2.0" else TPM12_STATE_FILE
    if (sdir / permall).exists():
        return sdir
    argv = [_binary("swtpm_setup"), "--tpm-state", str(sdir), "--createek", "--lock-nvram",
            "--not-overwrite"]  # fmt: skip
    if version == "2.0":
        argv.insert(1, "--tpm2")
        if banks:
            argv += ["--pcr-banks", ",".join(banks)]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=_env(sdir), cwd=sdir,
            check=False, timeout=SETUP_TIMEOUT, **_as_user(ident),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise HostCommandError(
            f"swtpm_setup took more than {SETUP_TIMEOUT:.0f} s to create the TPM state in {sdir}",
            argv=argv,
            hint="see swtpm.log in the domain's log directory",
        ) from None
    if done.returncode != 0:
        raise HostCommandError(
            f"swtpm_setup could not create the TPM state in {sdir} (exit {done.returncode})",
            argv=argv,
            returncode=done.returncode,
            hint="see swtpm.log in the domain's log directory",
        )
    return sdir


def start_swtpm(mgr: DomainManager, name: str, data: dict[str, Any]) -> int:
    """Start domain ``name``'s swtpm (its state made first when new); returns its pid.

    :raises HostCommandError: swtpm did not start
    :raises UnsupportedError: swtpm is not installed
    """
    paths = mgr.paths
    ident = identity(mgr)
    uid, gid = (ident.uid, ident.gid) if ident.separate else (None, None)
    version = str(data.get("version", "2.0"))
    run = paths.domain_run_dir(name) / SWTPM_DIR
    _dir(run, 0o700, uid, gid)
    stop_swtpm(mgr, name)  # a leftover of a run that was not cleaned up
    log_dir = paths.domain_log_dir(name)
    log_dir.mkdir(parents=True, exist_ok=True)
    logf = os.open(log_dir / "swtpm.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        sdir = prepare_state(paths, ident, str(data["uuid"]), version, data.get("banks", []), logf)
        sock = socket_path(paths.domain_run_dir(name))
        pidfile = run / "swtpm.pid"
        argv = [_binary("swtpm"), "socket"]
        if version == "2.0":
            argv.append("--tpm2")
        argv += [
            "--ctrl", f"type=unixio,path={sock},mode=0600",
            "--tpmstate", f"dir={sdir},mode=0600",
            "--log", f"fd={logf},level=1",
            "--pid", f"file={pidfile}",
            "--terminate",
        ]  # fmt: skip
        # swtpm's own --daemon loses the control socket (swtpm 0.7): a shell starts it in the
        # background instead and exits, so that swtpm belongs to no pyvirt process (init reaps
        # it) and outlives the command that started the domain
        done = subprocess.run(
            ["/bin/sh", "-c", '"$@" &', "swtpm", *argv], stdin=subprocess.DEVNULL, stdout=logf,
            stderr=logf, env=_env(sdir), cwd=sdir, pass_fds=(logf,), start_new_session=True,
            check=False, **_as_user(ident),
        )  # fmt: skip
    finally:
        os.close(logf)
    deadline = time.monotonic() + START_TIMEOUT
    while done.returncode == 0 and not (sock.exists() and _pid(pidfile)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    pid = _pid(pidfile)
    if done.returncode != 0 or pid is None or not sock.exists():
        stop_swtpm(mgr, name)
        raise HostCommandError(
            f"swtpm did not start for domain '{name}' (exit {done.returncode})",
            argv=argv,
            returncode=done.returncode,
            hint=f"see {log_dir / 'swtpm.log'}",
        )
    return pid


def _pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` when that process is a running swtpm."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if b"swtpm" not in cmdline.split(b"\0", 1)[0]:
        return None
    return pid


def swtpm_pid(mgr: DomainManager, name: str) -> int | None:
    """The pid of domain ``name``'s running swtpm, if any."""
    return _pid(mgr.paths.domain_run_dir(name) / SWTPM_DIR / "swtpm.pid")


def stop_swtpm(mgr: DomainManager, name: str) -> None:
    """Stop domain ``name``'s swtpm (SIGTERM, then SIGKILL after 3 s) and drop its files."""
    run = mgr.paths.domain_run_dir(name) / SWTPM_DIR
    pid = _pid(run / "swtpm.pid")
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for leftover in ("swtpm.pid", "swtpm.sock"):
        with contextlib.suppress(OSError):
            (run / leftover).unlink()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class TpmHook:
    """Runs the domain's swtpm from start to stop; checks a passthrough TPM exists."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        tpms = dom.devices.tpms
        if not tpms:
            return None
        tpm = tpms[0]
        check_tpm(tpm)
        if tpm.backend_type == "passthrough":
            return HookResult(data={"passthrough": tpm.device_path or DEFAULT_HOST_TPM})
        if tpm.backend_type != "emulator":
            return None
        if tpm.encryption_secret:  # the argv is the same; swtpm would need the key
            raise UnsupportedError(
                "encrypted TPM state (<encryption secret>) is not supported yet",
                hint="remove the <encryption> element of the <tpm> backend",
            )
        return HookResult(
            data={
                "uuid": dom.uuid,
                "version": tpm.tpm_version,
                "banks": tpm.pcr_banks,
                "persistent_state": tpm.persistent_state == "yes",
            }
        )

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        device = data.get("passthrough")
        if device is not None:
            if not os.path.exists(device):
                raise UnsupportedError(
                    f"<tpm> backend 'passthrough': the host has no TPM at {device}",
                    hint="use <backend type='emulator' version='2.0'/> (swtpm) instead",
                )
            return
        if "uuid" in data:
            start_swtpm(mgr, name, data)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        del mgr, name, pid, data

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        if "uuid" not in data:
            return
        stop_swtpm(mgr, name)
        if not data.get("persistent_state") and not mgr.store.exists(name):
            # a transient domain's TPM goes with it (libvirt's rule), unless persistent_state
            with contextlib.suppress(OSError):
                remove_state(mgr.paths, str(data["uuid"]))


register_hook(TpmHook())
