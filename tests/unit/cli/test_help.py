"""``pyvirt --version``, ``-v`` and ``pyvirt help [COMMAND|GROUP]`` (virsh's forms)."""

from __future__ import annotations

import re

import pytest

from pyvirt import __version__
from pyvirt.cli.help import GROUPS
from pyvirt.cli.main import COMMANDS, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version_is_just_the_number(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    assert run(capsys, flag) == (0, f"{__version__}\n", "")


def test_help_groups_every_command_like_virsh(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "help")
    assert code == 0 and err == ""
    assert out.startswith("Grouping of commands:\n\n Domain Management (help keyword 'domain'):\n")
    titles = re.findall(r"^ (\S.*) \(help keyword '(\w+)'\):$", out, re.MULTILINE)
    for needed in ("Domain Management", "Domain Monitoring", "Host and Hypervisor",
                   "Networking", "Node Device", "Storage Pool", "Storage Volume"):  # fmt: skip
        assert needed in [t for t, _ in titles]
    assert [k for _, k in titles] == [k for _, k in GROUPS if k in dict(titles).values()]
    listed = re.findall(r"^    (\S+) +\S", out, re.MULTILINE)
    assert sorted(listed) == sorted([*COMMANDS, "help"])
    assert re.search(r"^    pool-start {21}Start a", out, re.MULTILINE)
    monitor = out.split("(help keyword 'monitor'):\n")[1].split("\n\n")[0]
    assert "    list " in monitor and "    domstate " in monitor


def test_help_of_a_group(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "help", "volume")
    assert code == 0
    assert out.startswith(" Storage Volume (help keyword 'volume'):\n")
    assert "vol-create-as" in out and "pool-start" not in out


def test_help_of_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "help", "dumpxml")
    assert code == 0
    assert out.startswith("Usage: pyvirt dumpxml [OPTIONS] DOMAIN")
    assert "--inactive" in out


def test_help_of_an_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "help", "nosuch") == (
        1,
        "",
        "error: command or command group 'nosuch' doesn't exist\n",
    )
    code, out, err = run(capsys, "nosuch")
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "nosuch" in err
