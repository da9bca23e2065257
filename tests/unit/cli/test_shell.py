"""The interactive shell: ``pyvirt`` with no command, driven through a pipe and in-process."""

from __future__ import annotations

import builtins
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.cli.commands.shell import Shell, candidates, history_path, split_commands
from pyvirt.errors import InvalidConfigError
from tests.conftest import Pyvirt


def test_a_piped_script_runs_line_by_line(pyvirt: Pyvirt) -> None:
    res = pyvirt(input="list --all\nhelp start\nquit\nlist\n")
    assert res.rc == 0 and res.err == ""
    assert res.out.count(" Id   Name   State") == 1  # nothing after quit
    assert "Usage: pyvirt start [OPTIONS] DOMAIN" in res.out
    assert "Welcome" not in res.out  # no banner, no prompt when not on a terminal


def test_errors_do_not_end_the_shell_and_the_last_status_is_its_status(pyvirt: Pyvirt) -> None:
    res = pyvirt(input="nosuch\ndomstate nope\necho 'still here'; echo x\n", check=False)
    assert res.rc == 0
    assert res.out == "still here\nx\n"
    assert "nosuch" in res.err and "error: domain 'nope' not found" in res.err
    assert pyvirt(input="domstate nope\n", check=False).rc == 1
    res = pyvirt(input="-c pyvirt:///embed\n", check=False)
    assert res.rc == 1 and res.err.startswith("error: a command is expected, not '-c'")


def test_connect_changes_the_uri_of_later_commands(pyvirt: Pyvirt) -> None:
    res = pyvirt(input="connect pyvirt:///embed\nlist --name\nconnect nosuch://x\n", check=False)
    assert res.rc == 1 and res.err.startswith("error: ") and "nosuch" in res.err


@pytest.mark.parametrize(
    ("line", "argvs"),
    [
        ("list --all", [["list", "--all"]]),
        ("define '/tmp/a b.xml' ; start vm1;dominfo vm1", [["define", "/tmp/a b.xml"],
                                                           ["start", "vm1"], ["dominfo", "vm1"]]),
        ('desc vm1 "a;b" # a comment', [["desc", "vm1", "a;b"]]),
        ("   ", []),
        ("# only a comment", []),
    ],
)  # fmt: skip
def test_lines_split_like_a_shell(line: str, argvs: list[list[str]]) -> None:
    assert split_commands(line) == argvs


def test_an_unterminated_quote_is_an_error() -> None:
    with pytest.raises(InvalidConfigError, match="no closing quotation"):
        split_commands("define 'oops")


def test_completion_of_commands_options_and_domains() -> None:
    def domains() -> list[str]:
        return ["web1", "web2", "db"]

    names = candidates([], "dom", domains)
    assert "domstate" in names and "domcapabilities" in names and "list" not in names
    assert candidates([], "qu", domains) == ["quit"]
    assert candidates(["list"], "--a", domains) == ["--all", "--autostart"]
    assert candidates(["start"], "we", domains) == ["web1", "web2"]


def test_history_lives_in_the_xdg_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert history_path() == tmp_path / "state" / "pyvirt" / "history"


def test_interactive_session_greets_prompts_and_saves_history(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    state_root: Path,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(state_root))
    prompts: list[str] = []

    # Ctrl-C at the prompt gives a new prompt, not the end
    feed: Iterator[str | type[BaseException]] = iter(
        ["echo hello", KeyboardInterrupt, "domstate nope", "exit", "echo never"]
    )

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        item = next(feed)
        if not isinstance(item, str):
            raise item
        return item

    monkeypatch.setattr(builtins, "input", fake_input)
    assert Shell(None, interactive=True).run() == 1  # the status of 'domstate nope'
    out, err = capsys.readouterr()
    assert out.startswith("Welcome to pyvirt, the virtualization interactive terminal.")
    assert "hello\n" in out and "never" not in out
    assert "error: domain 'nope' not found" in err
    assert len(prompts) == 4 and prompts[0] in ("pyvirt # ", "pyvirt > ")
    assert (tmp_path / "pyvirt" / "history").is_file()


def test_on_a_terminal_tab_completes_and_history_is_saved(state_root: Path, tmp_path: Path) -> None:
    master, slave = os.openpty()
    env = {**os.environ, "PYVIRT_STATE_DIR": str(state_root), "XDG_STATE_HOME": str(tmp_path),
           "TERM": "dumb", "INPUTRC": "/dev/null"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyvirt.cli"], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break

    try:
        read_until(b"pyvirt ")  # the prompt after the banner
        assert b"Welcome to pyvirt" in seen
        os.write(master, b"hel\t start\r")  # Tab completes 'hel' to 'help '
        read_until(b"Usage: pyvirt start")
        os.write(master, b"quit\r")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0
    assert (tmp_path / "pyvirt" / "history").read_text().splitlines()[-2:] == [
        "help start", "quit",
    ]  # fmt: skip
