"""``pyvirt+ssh://`` for real: a private sshd on 127.0.0.1 (its own host key, one authorized
key), a pyvirtd with its own state directory, and the client forwarding a local socket to
the daemon's socket through ssh."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.client.transport import Client
from pyvirt.client.uri import resolve
from pyvirt.errors import OperationFailedError, PyvirtError, UnsupportedError
from tests.daemonhelp import RunningDaemon, free_port, pyvirtd

PYVIRT = [sys.executable, "-m", "pyvirt.cli"]
SSHD = "/usr/sbin/sshd"


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd() -> Iterator[dict[str, Any]]:
    """sshd -D on 127.0.0.1:PORT, key login as root only; the client's known_hosts."""
    if not (Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen")):
        pytest.skip("openssh-server/openssh-client are not installed (scripts/setup.sh)")
    if os.geteuid() != 0:
        pytest.skip("a private sshd that logs in as root needs root")
    tmp = Path(tempfile.mkdtemp(prefix="pvs", dir="/tmp"))
    host_pub = _keygen(tmp / "host_ed25519")
    user_pub = _keygen(tmp / "id_ed25519")
    (tmp / "authorized_keys").write_text(user_pub + "\n")
    port = free_port()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_ed25519\n"
        f"PidFile {tmp}/sshd.pid\nAuthorizedKeysFile {tmp}/authorized_keys\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nAllowStreamLocalForwarding yes\n"
        "LogLevel VERBOSE\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = open(tmp / "sshd.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(tmp / 'sshd.log').read_text()}")
            time.sleep(0.05)
        yield {"port": port, "dir": tmp, "log": tmp / "sshd.log"}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon() -> Iterator[RunningDaemon]:
    root = Path(tempfile.mkdtemp(prefix="pvd", dir="/tmp"))
    try:
        with pyvirtd(root) as d:
            yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _ssh_env(monkeypatch: pytest.MonkeyPatch, sshd: dict[str, Any]) -> None:
    # the user's own ssh configuration and agent must not matter here
    monkeypatch.setenv("PYVIRT_SSH_COMMAND", "ssh -F /dev/null -o BatchMode=yes "
                       "-o IdentitiesOnly=yes -o StrictHostKeyChecking=yes")  # fmt: skip
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)


def _uri(sshd: dict[str, Any], path: Path | str) -> str:
    d = sshd["dir"]
    return (f"pyvirt+ssh://root@127.0.0.1:{sshd['port']}{path}"
            f"?keyfile={d}/id_ed25519&known_hosts={d}/known_hosts")  # fmt: skip


def _ssh_children(sshd: dict[str, Any], marker: str = "") -> list[str]:
    """ssh clients of this test's sshd still running (whoever started them), those whose
    command line holds ``marker`` if given."""
    out = subprocess.run(["pgrep", "-af", f"{sshd['dir']}/id_ed25519"], capture_output=True,
                         text=True).stdout  # fmt: skip
    return [line for line in out.splitlines()
            if line.split(None, 1)[1].startswith("ssh ") and marker in line]  # fmt: skip


def test_requests_go_through_the_tunnel_and_it_is_torn_down(
    sshd: dict[str, Any], daemon: RunningDaemon
) -> None:
    client = Client.for_target(resolve(_uri(sshd, daemon.socket)))
    tunnel = client.tunnel
    assert tunnel is not None
    try:
        assert tunnel.local.stat().st_mode & 0o777 == 0o600
        assert tunnel.local.parent.stat().st_mode & 0o777 == 0o700
        assert client.json("GET", "/health")["status"] == "ok"
        # the daemon sees the ssh server's connection to its unix socket: a local root caller
        made = client.json("POST", "/api/v1/tokens", {"name": "via-ssh"})
        assert made["name"] == "via-ssh"
        assert _ssh_children(sshd), "no ssh process while the tunnel is open"
    finally:
        client.close()
    assert not tunnel.local.parent.exists()
    assert tunnel.proc.poll() is not None
    assert _ssh_children(sshd) == []
    assert '"identity":"uid:0","transport":"unix"' in daemon.audit.read_text()
    assert "via-ssh" in (daemon.root / "lib" / "daemon" / "tokens.json").read_text()
    assert "Accepted publickey for root" in sshd["log"].read_text()


def test_cli_over_ssh(sshd: dict[str, Any], daemon: RunningDaemon) -> None:
    env = {**os.environ, "PYVIRT_STATE_DIR": "/nonexistent-pyvirt-state"}
    r = subprocess.run([*PYVIRT, "-c", _uri(sshd, daemon.socket), "token-list"], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" Name ")
    assert _ssh_children(sshd) == []  # the tunnel ended with the command
    # even a killed client takes its tunnel with it
    code = ("import sys, time; from pyvirt.client.transport import Client;"
            "from pyvirt.client.uri import resolve; c = Client.for_target(resolve(sys.argv[1]));"
            "print('up', flush=True); time.sleep(60)")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code, _uri(sshd, daemon.socket)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        assert len(_ssh_children(sshd)) == 1
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while _ssh_children(sshd) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ssh_children(sshd) == []
    # its directory stayed (a killed process cleans nothing); the next tunnel sweeps it
    left = Path(tempfile.gettempdir()).glob(f"pyvirt-ssh-{proc.pid}-*")
    (stale,) = list(left)
    Client.for_target(resolve(_uri(sshd, daemon.socket))).close()
    assert not stale.exists()


def test_cli_list_over_ssh(sshd: dict[str, Any], daemon: RunningDaemon) -> None:
    uri = _uri(sshd, daemon.socket)
    try:
        import pyvirt.api

        pyvirt.api.open(uri).domains.list()
    except UnsupportedError as err:
        pytest.skip(f"the CLI's remote mode (pyvirt.api.remote, branch 'remote'): {err}")
    except PyvirtError as err:
        pytest.skip(f"the daemon's domain routes (branch 'rest') are missing: {err}")
    env = {**os.environ, "PYVIRT_STATE_DIR": "/nonexistent-pyvirt-state"}
    r = subprocess.run([*PYVIRT, "-c", uri, "list", "--all"], capture_output=True, text=True,
                       timeout=60, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(" Id   Name")


def test_ssh_failures_are_clear(sshd: dict[str, Any], daemon: RunningDaemon) -> None:
    # an unknown host key: ssh refuses, the error says so
    d = sshd["dir"]
    (d / "empty_known_hosts").write_text("")
    uri = (f"pyvirt+ssh://root@127.0.0.1:{sshd['port']}{daemon.socket}"
           f"?keyfile={d}/id_ed25519&known_hosts={d}/empty_known_hosts")  # fmt: skip
    with pytest.raises(
        OperationFailedError, match=r"cannot open an ssh tunnel to root@127\.0\.0\.1 \(ssh exited"
    ):
        Client.for_target(resolve(uri))
    # no daemon at the remote path: the tunnel opens, the request fails
    client = Client.for_target(resolve(_uri(sshd, "/nonexistent/pyvirtd.sock")))
    try:
        with pytest.raises(OperationFailedError, match="lost the connection to pyvirtd"):
            client.json("GET", "/health")
    finally:
        client.close()
    assert _ssh_children(sshd, "/nonexistent/pyvirtd.sock") == []
