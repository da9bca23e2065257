"""The CLI's fast path (:mod:`pyvirt.cli.fast`) against a real daemon app: the same bytes as
the click commands on the embedded connection, and none of click, lxml, pyroute2 or the
embedded machinery imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyvirt.cli import fast
from pyvirt.cli.main import main
from tests.unit.daemon.conftest import Served
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


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--all"], ["list"], ["list", "--all", "--name"], ["list", "--uuid", "--all"],
        ["list", "--inactive", "--uuid", "--name"], ["list", "--json", "--all"],
        ["list", "--all", "--persistent", "--no-autostart"], ["list", "--state-shutoff"],
        ["dominfo", "web1"], ["dominfo", "--json", UUID], ["domstate", "web1", "--reason"],
        ["domstate", "web1"], ["domid", "web1"], ["domuuid", "web1"], ["domname", UUID],
        ["dominfo", "nope"], ["start", "nope"], ["destroy", "web1"], ["suspend", "web1"],
        ["shutdown", "web1", "--mode=acpi"], ["resume", "web1"], ["reboot", "web1"],
    ],
)  # fmt: skip
def test_fast_path_prints_what_click_prints(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    xml = served.root / "web1.xml"
    xml.write_text(domain_xml())
    embed = f"pyvirt:///embed?root={served.root}"
    assert cli(capsys, "-c", embed, "define", str(xml))[0] == 0
    assert fast.run(["-c", served.uri, *argv]) is not None  # answered without click
    through_daemon = cli(capsys, "-c", served.uri, *argv)
    embedded = cli(capsys, "-c", embed, *argv)
    assert through_daemon == embedded


def test_define_and_undefine_print_the_same(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = served.root / "web1.xml"
    xml.write_text(domain_xml())
    embed = f"pyvirt:///embed?root={served.root}"
    daemon = cli(capsys, "-c", served.uri, "define", str(xml))
    assert daemon == cli(capsys, "-c", embed, "define", str(xml))  # a redefinition
    assert daemon == (0, f"Domain 'web1' defined from {xml}\n\n", "")
    daemon = cli(capsys, "-c", served.uri, "undefine", "web1")
    cli(capsys, "-c", embed, "define", str(xml))
    assert daemon == cli(capsys, "-c", embed, "undefine", "web1")
    for argv in (["define", "/nonexistent.xml"], ["undefine", "web1"]):
        assert cli(capsys, "-c", served.uri, *argv) == cli(capsys, "-c", embed, *argv)


@pytest.mark.parametrize(
    "argv",
    [
        [], ["list", "--title"], ["list", "--help"], ["start", "web1", "--console"],
        ["dominfo"], ["dominfo", "a", "b"], ["help"], ["pool-list"], ["--version"],
        ["-c"], ["shutdown", "web1", "--mode"], ["define", "-"],
    ],
)  # fmt: skip
def test_other_forms_fall_through_to_click(argv: list[str]) -> None:
    assert fast.run(["-c", "pyvirt+unix:///nonexistent.sock", *argv]) is None


def test_embedded_connections_answer_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # pyvirt.cli.embedded; tests/unit/cli/test_embedded_fast.py compares it with click
    assert fast.run(["-c", f"pyvirt:///embed?root={tmp_path}", "list"]) == 0
    assert capsys.readouterr().out == " Id   Name   State\n-------------------\n\n"


def test_uri_names_the_connection(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "uri") == (0, "pyvirt:///system\n\n", "")  # PYVIRT_STATE_DIR's daemon
    assert cli(capsys, "-c", served.uri, "uri") == (0, served.uri + "\n\n", "")
    assert cli(capsys, "-c", "pyvirt:///embed", "uri") == (0, "pyvirt:///embed\n\n", "")


def test_an_absent_daemon_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "-c", "pyvirt+unix:///nonexistent.sock", "list")
    assert (code, out) == (1, "")
    assert err.startswith("error: cannot reach pyvirtd at /nonexistent.sock")


HEAVY = ("click", "lxml", "pyroute2", "pyvirt.api", "pyvirt.service", "pyvirt.model",
         "http.client", "ssl")  # fmt: skip


@pytest.mark.parametrize("argv", [["list", "--all"], ["dominfo", "web1"], ["destroy", "web1"]])
def test_fast_path_imports_nothing_heavy(served: Served, argv: list[str]) -> None:
    served.daemon.conn.domains.define(domain_xml())
    code = (
        "import sys\nfrom pyvirt.cli.main import main\n"
        f"try:\n    main({['-c', served.uri, *argv]!r})\nexcept SystemExit:\n    pass\n"
        f"print('MODULES', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout  # fmt: skip
    assert out.splitlines()[-1] == "MODULES []", out


def test_chunked_and_plain_responses_parse() -> None:
    body = json.dumps({"a": 1}).encode()
    plain = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n" + body
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\n" + body[:3] + b"\r\n5\r\n" + body[3:] + b"\r\n0\r\n\r\n")  # fmt: skip
    assert fast._parse_response(plain) == (200, body)
    assert fast._parse_response(chunked) == (200, body)


LEAN = ("socket", "pathlib", "urllib.parse", "pyvirt.client", "pyvirt.state", "pyvirt.errors")


@pytest.mark.parametrize("argv", [["list", "--all"], ["dominfo", "web1"], ["uri"]])
def test_the_local_daemon_costs_no_socket_module_or_pathlib(
    served: Served, argv: list[str]
) -> None:
    """No URI: this state directory's daemon is found and used with ``_socket`` and string
    paths (``socket``, ``pathlib``, ``urllib.parse`` cost more than the request)."""
    served.daemon.conn.domains.define(domain_xml())
    code = (
        "import sys\nfrom pyvirt.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('MODULES', [m for m in {LEAN!r} if m in sys.modules])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    lines = res.stdout.splitlines()
    assert lines[-1] == "MODULES []", res.stdout + res.stderr
    assert len(lines) > 1 and res.stderr == ""  # it answered


def test_no_daemon_and_no_uri_fall_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    embedded: list[tuple[str, str | None]] = []

    def fake_embedded(command: str, args: object, uri: str | None) -> int:
        embedded.append((command, uri))
        return 7

    monkeypatch.setattr(fast, "_embedded", fake_embedded)
    assert fast.run(["list"]) == 7  # no socket: the embedded fast path
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pyvirtd.sock").write_bytes(b"")  # a stale path, nobody listens
    assert fast.run(["dominfo", "x"]) == 7
    assert embedded == [("list", None), ("dominfo", None)]


@pytest.mark.parametrize(
    "root", ["/tmp/s1", "/tmp/s1/", "/tmp//s1/./x", "rel/dir", "./rel", "//net/s", "/a/../b"]
)
def test_local_socket_is_the_state_paths_one(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyvirt.state.paths import StatePaths

    monkeypatch.setenv("PYVIRT_STATE_DIR", root)
    assert fast._local_socket() == str(StatePaths.default().daemon_socket)


@pytest.mark.parametrize("text", ["web1", "a b/c?d&e=f", "é-ü_~.x", "%41", ""])
def test_quote_is_urllib_quote(text: str) -> None:
    from urllib.parse import quote

    assert fast._quote(text) == quote(text, safe="")
