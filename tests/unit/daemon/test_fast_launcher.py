"""The ``pyvirt`` launcher (``bin/pyvirt``) and the fast path's json-free codec: the same bytes
as the click commands, and none of ``re``, ``json`` or click loaded through a daemon."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest

from pyvirt.cli import fast, formats
from tests.unit.daemon.conftest import Served
from tests.unit.daemon.test_domains import domain_xml

LAUNCHER = Path(__file__).resolve().parents[3] / "bin" / "pyvirt"
SRC = str(Path(__file__).resolve().parents[3] / "src")


def launch(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``bin/pyvirt ARGV`` as the installed script runs it (this Python, this tree's sources)."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, str(LAUNCHER), *argv], capture_output=True,
                          text=True, timeout=60, env=env)  # fmt: skip


def test_the_launcher_is_the_installed_script() -> None:
    pyproject = (LAUNCHER.parents[1] / "pyproject.toml").read_text()
    assert 'script-files = ["bin/pyvirt"]' in pyproject
    assert "pyvirt = " not in pyproject.split("[project.scripts]")[1].split("[")[0]
    assert LAUNCHER.read_text().startswith("#!python\n")  # pip writes the interpreter in


@pytest.mark.parametrize("argv", [["list", "--all"], ["dominfo", "web1"], ["domstate", "web1"],
                                  ["list", "--all", "--json"], ["dominfo", "nope"]])  # fmt: skip
def test_the_launcher_prints_what_click_prints(served: Served, argv: list[str]) -> None:
    served.daemon.conn.domains.define(domain_xml())
    through_daemon = launch(*argv)  # no URI: it finds this state directory's daemon
    embedded = launch("-c", f"pyvirt:///embed?root={served.root}", *argv)
    assert (through_daemon.returncode, through_daemon.stdout, through_daemon.stderr) == (
        embedded.returncode, embedded.stdout, embedded.stderr)  # fmt: skip
    assert through_daemon.stdout or through_daemon.stderr


HEAVY = ("re", "json", "enum", "functools", "collections", "click", "pyvirt.cli.main",
         "pyvirt.errors", "typing")  # fmt: skip


@pytest.mark.parametrize("argv", [["list", "--all"], ["dominfo", "web1"], ["domstate", "web1"]])
def test_the_launcher_imports_no_re_json_or_click(served: Served, argv: list[str]) -> None:
    """Through a daemon the command costs little more than the interpreter: no ``re`` (pip's
    console-script wrapper imported it first), no ``json`` (which imports it)."""
    served.daemon.conn.domains.define(domain_xml())
    probe = Path(served.root) / "probe.py"
    probe.write_text(
        "import os, sys\n"
        "real = os._exit\n"
        f"def report(code):\n    print('MODULES', [m for m in {HEAVY!r} if m in sys.modules])\n"
        "    sys.stdout.flush()\n    real(code)\n"
        "os._exit = report\n"
        f"sys.argv[1:] = {argv!r}\n"
        f"exec(compile(open({str(LAUNCHER)!r}).read(), 'pyvirt', 'exec'))\n"
    )
    res = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": SRC})  # fmt: skip
    assert res.stdout.splitlines()[-1] == "MODULES []", res.stdout + res.stderr


def test_no_daemon_still_works(tmp_path: Path) -> None:
    res = launch("list", "--all", env={"PYVIRT_STATE_DIR": str(tmp_path)})
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout.startswith(" Id   Name   State\n")
    assert launch("--version").returncode == 0  # click's
    assert launch("nosuchcommand").returncode != 0


DOCUMENTS = [b"[]", b"{}", b' {"a": [1, 2.5, -3e4, null, true, false, "x\\u00e9\\n"]} ',
             '{"\u00e9": "\u00fc\\"q"}'.encode(), b"NaN", b"[Infinity, -Infinity]", b'"s"',
             b"12", b'[{"name":"a","id":null,"state":"shut off"}]\n']  # fmt: skip


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_loads_is_json_loads(doc: bytes) -> None:
    assert repr(fast.loads(doc)) == repr(json.loads(doc))


@pytest.mark.parametrize("doc", [b"", b"[1,", b"[1] x", b'{"a" 1}', b"\xff", b"nul"])
def test_loads_refuses_what_json_refuses(doc: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(doc)
    with pytest.raises(ValueError):
        fast.loads(doc)


@pytest.mark.parametrize("value", [{"paused": True}, {"mode": ["acpi", "agent"]},
                                   {"graceful": False}, None, 'é"x\n', [1, 2.5, None, -0.0],
                                   {"a": {"b": [], "c": {}}}, float("nan"), (1, 2)])  # fmt: skip
def test_dumps_is_json_dumps(value: object) -> None:
    assert fast.dumps(value) == json.dumps(value)


def _reference_table(headers: list[str], rows: list[list[str]]) -> str:
    """The first ``format_table`` (a join of ``ljust``s per line)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        return " " + "   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(headers), "-" * (sum(widths) + 3 * (len(widths) - 1) + 2)]
    out += [line(row) for row in rows]
    return "\n".join(out) + "\n\n"


def test_format_table_prints_what_it_printed() -> None:
    rnd = random.Random(11)

    def cell() -> str:
        return "".join(rnd.choice(string.ascii_letters + " %é-") for _ in range(rnd.randint(0, 9)))

    for _ in range(500):
        count = rnd.randint(1, 5)
        headers = [cell() for _ in range(count)]
        rows = [[cell() for _ in range(count)] for _ in range(rnd.randint(0, 6))]
        assert formats.format_table(headers, rows) == _reference_table(headers, rows)
    with pytest.raises(ValueError):
        formats.format_table(["a", "b"], [["1", "2"], ["3"]])
