"""The CLI's embedded fast path (:mod:`pyvirt.cli.embedded`): the same bytes and exit status
as the click commands, and an import budget per command (start-up time is a feature)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.cli import fast
from pyvirt.cli.main import main
from tests.unit.daemon.test_domains import UUID, domain_xml


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(argv))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A state root with domain ``web1`` defined (shut off)."""
    (tmp_path / "web1.xml").write_text(domain_xml())
    import pyvirt.api

    pyvirt.api.open(f"pyvirt:///embed?root={tmp_path}").domains.define(domain_xml())
    yield tmp_path


def through_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    with monkeypatch.context() as m:
        m.setattr(fast, "run", lambda _argv: None)
        return cli(capsys, *argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--all"], ["list"], ["list", "--all", "--name"], ["list", "--uuid", "--all"],
        ["list", "--inactive", "--uuid", "--name"], ["list", "--json", "--all"],
        ["list", "--all", "--persistent", "--no-autostart"], ["list", "--state-shutoff"],
        ["list", "--all", "--transient"], ["list", "--autostart", "--all"],
        ["dominfo", "web1"], ["dominfo", "--json", UUID], ["domstate", "web1", "--reason"],
        ["domstate", "web1"], ["domid", "web1"], ["domuuid", "web1"], ["domname", UUID],
        ["dominfo", "nope"], ["start", "nope"], ["destroy", "web1"], ["destroy", "web1",
        "--graceful"], ["suspend", "web1"], ["shutdown", "web1", "--mode=acpi"],
        ["shutdown", "web1"], ["resume", "web1"], ["reboot", "web1"], ["reset", "web1"],
        ["undefine", "nope"], ["define", "/nonexistent.xml"],
    ],
)  # fmt: skip
def test_embedded_fast_path_prints_what_click_prints(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    embed = ["-c", f"pyvirt:///embed?root={root}"]
    assert fast.run([*embed, *argv]) is not None  # answered without click
    fast_result = cli(capsys, *embed, *argv)
    assert fast_result == through_click(monkeypatch, capsys, *embed, *argv)


def test_define_and_undefine_print_what_click_prints(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    embed = ["-c", f"pyvirt:///embed?root={root}"]
    xml = str(root / "web1.xml")
    redefined = cli(capsys, *embed, "define", xml)
    assert redefined == (0, f"Domain 'web1' defined from {xml}\n\n", "")
    assert redefined == through_click(monkeypatch, capsys, *embed, "define", xml)
    undefined = cli(capsys, *embed, "undefine", "web1")
    assert undefined == (0, "Domain 'web1' has been undefined\n\n", "")
    through_click(monkeypatch, capsys, *embed, "define", xml)
    assert undefined == through_click(monkeypatch, capsys, *embed, "undefine", "web1")


def test_no_uri_and_no_daemon_socket_is_the_embedded_fast_path(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(root))
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    assert fast.run(["domstate", "web1"]) == 0
    assert capsys.readouterr().out == "shut off\n\n"
    assert fast.run(["list", "--title"]) is None  # not a simple form: click's


def test_uri_is_left_to_click(root: Path) -> None:
    assert fast.run(["-c", f"pyvirt:///embed?root={root}", "uri"]) is None


#: modules each command must not load (measured: click alone costs more CPU than ``list``)
NEVER = ("click", "pyroute2", "asyncio", "qemu.qmp", "http.client", "ssl", "socket",
         "urllib.request", "argparse", "tempfile", "pyvirt.client.transport",
         "pyvirt.drivers.qemu.argv", "pyvirt.network", "pyvirt.storage.backends")  # fmt: skip
BUDGET = {
    ("list", "--all"): (*NEVER, "lxml", "pyvirt.model", "subprocess", "logging",
                        "pyvirt.drivers.qemu.process", "pyvirt.service.domain.lifecycle"),
    ("domstate", "web1"): (*NEVER, "lxml", "pyvirt.model", "pyvirt.service.domain.lifecycle",
                           "pyvirt.drivers.qemu.rundir", "subprocess", "logging"),
    ("dominfo", "web1"): (*NEVER, "pyvirt.service.domain.lifecycle", "pyvirt.host",
                          "pyvirt.drivers.qemu.rundir", "subprocess", "logging"),
    ("destroy", "web1"): (*NEVER, "lxml", "pyvirt.model.domain"),
    ("define", "{root}/web1.xml"): (*NEVER, "pyvirt.service.domain.lifecycle", "logging",
                                    "pyvirt.service.domain.dac", "subprocess"),
}  # fmt: skip


@pytest.mark.parametrize("argv", list(BUDGET))
def test_import_budget(root: Path, argv: tuple[str, ...]) -> None:
    args = [a.format(root=root) for a in argv]
    code = (
        "import sys\nfrom pyvirt.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print('MODULES', [m for m in {BUDGET[argv]!r} if m in sys.modules])"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_URI")}
    env["PYVIRT_STATE_DIR"] = str(root)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env).stdout  # fmt: skip
    assert out.splitlines()[-1] == "MODULES []", out
