"""pyvirt.hostcmd: the one runner of host tools."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError, UnsupportedError

SRC = Path(hostcmd.__file__).parent


def test_run_returns_output_in_the_c_locale(tmp_path: Path) -> None:
    proc = hostcmd.run(
        [sys.executable, "-c", "import os; print(os.environ['LC_ALL'], os.getcwd())"],
        what="printing",
        cwd=tmp_path,
    )
    assert proc.stdout.split() == ["C", str(tmp_path)]


def test_run_feeds_input() -> None:
    script = "import sys; print(sys.stdin.read().upper())"
    assert hostcmd.run([sys.executable, "-c", script], what="x", input="ab").stdout == "AB\n"


def test_failure_carries_argv_code_and_stderr_tail() -> None:
    script = (
        "import sys; print('\\n'.join(f'line{i}' for i in range(9)), file=sys.stderr); sys.exit(3)"
    )
    argv = [sys.executable, "-c", script]
    with pytest.raises(HostCommandError) as exc:
        hostcmd.run(argv, what="cannot do it")
    err = exc.value
    assert err.argv == argv
    assert err.returncode == 3
    assert "line8" in err.stderr
    assert str(err).startswith("cannot do it: ")
    assert "exited with status 3: line6 | line7 | line8" in str(err)
    assert hostcmd.run(argv, what="x", ok_codes=(0, 3)).returncode == 3


def test_timeout() -> None:
    with pytest.raises(HostCommandError, match=r"did not finish within 0\.2 s"):
        hostcmd.run([sys.executable, "-c", "import time; time.sleep(5)"], what="w", timeout=0.2)


def test_missing_tool_names_the_package() -> None:
    with pytest.raises(UnsupportedError) as exc:
        hostcmd.tool("no-such-tool-pyvirt", "pyvirt-tools")
    assert exc.value.hint == "install the Debian package pyvirt-tools"
    with pytest.raises(UnsupportedError, match="no-such-tool-pyvirt is not installed"):
        hostcmd.run(["no-such-tool-pyvirt"], what="x")
    assert hostcmd.tool("sh")


def test_hostcmd_is_the_lowest_layer() -> None:
    text = (SRC / "hostcmd.py").read_text()
    imports = [
        line for line in text.splitlines() if line.startswith(("from pyvirt", "import pyvirt"))
    ]
    assert imports == ["from pyvirt.errors import HostCommandError, UnsupportedError"]


def test_no_other_runner_modules() -> None:
    for gone in ("storage/cmd.py", "storage/command.py", "images/command.py"):
        assert not (SRC / gone).exists()


def test_spawn_merges_output_and_names_the_package() -> None:
    proc = hostcmd.spawn(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['LC_ALL']); print('e', file=sys.stderr)",
        ],
        what="x",
    )
    out, _ = proc.communicate(timeout=30)
    assert out.split() == ["C", "e"]
    with pytest.raises(UnsupportedError, match="no-such-tool-pyvirt is not installed"):
        hostcmd.spawn(["no-such-tool-pyvirt"], what="x")


#: the modules that may import ``subprocess`` besides hostcmd.py, each with the reason
SUBPROCESS_ALLOWED = {
    "drivers/qemu/process.py": "spawns QEMU itself, detached, with its log fd and a pid file",
    "drivers/qemu/watch.py": "spawns the detached watcher that outlives the command",
    "host/kvm.py": "runs the KVM probe child that is killed once its time budget is spent",
    "cli/editing.py": "runs the user's interactive editor on the terminal (no capture)",
    "client/ssh.py": "runs the ssh tunnel that lives as long as its client (pyvirt+ssh://)",
    "service/cluster/watchdog.py": "spawns the fencing watchdog that outlives pyvirtd "
    "(a session of its own)",
    "service/domain/shares.py": "probes a shared directory as the QEMU user (user=/group=) and "
    "spawns the virtiofsd that outlives the command (a session of its own)",
    "service/domain/tpm.py": "spawns the domain's swtpm, detached, as the QEMU user, with its "
    "log fd",
}


def _imports_subprocess(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name == "subprocess" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "subprocess":
            return True
    return False


def test_only_hostcmd_and_the_allow_list_import_subprocess() -> None:
    users = {str(path.relative_to(SRC)) for path in SRC.rglob("*.py") if _imports_subprocess(path)}
    assert users - {"hostcmd.py"} == set(SUBPROCESS_ALLOWED)
