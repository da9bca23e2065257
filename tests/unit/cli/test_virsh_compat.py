"""Every option virsh 9.0 has on the commands pyvirt shares with it is in ``pyvirt help
COMMAND``: supported, accepted, or refused with its reason (pyvirt.cli.virsh_options), and
a refused one fails with that reason. virsh's lists are in virsh-9.0-options.json (from
``virsh help COMMAND``; positional options are left out: pyvirt takes those positionally).
docs/virsh-compat.md is the table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pyvirt.api.xmlpath import select
from pyvirt.cli.main import COMMANDS, main
from pyvirt.cli.virsh_options import TABLE, XPATH
from pyvirt.errors import InvalidConfigError

DATA = json.loads((Path(__file__).with_name("virsh-9.0-options.json")).read_text())["commands"]
DOC = Path(__file__).resolve().parents[3] / "docs" / "virsh-compat.md"
#: an option's first line in click's help: "  -x, --name, --alias VALUE  help text"
OPTION = re.compile(r"^  (-[^ ].*?)(?:  +(.*))?$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def help_options(capsys: pytest.CaptureFixture[str], command: str) -> dict[str, str]:
    """The options ``pyvirt help COMMAND`` lists, with the first line of their help."""
    code, out, err = run(capsys, "help", command)
    assert code == 0, err
    found: dict[str, str] = {}
    names: list[str] = []
    for line in out.split("\nOptions:\n", 1)[1].splitlines():
        m = OPTION.match(line)
        if m:
            names = re.findall(r"--[a-z0-9][a-z0-9-]*", m.group(1))
            for name in names:
                found[name] = m.group(2) or ""
        else:  # a continuation of the last option's help
            for name in names:
                found[name] = f"{found[name]} {line.strip()}".strip()
    return found


def test_the_shared_commands_are_pyvirts() -> None:
    assert len(DATA) >= 170
    assert set(DATA) <= {*COMMANDS, "help"}
    assert set(TABLE) <= set(DATA)


@pytest.mark.parametrize("command", sorted(DATA))
def test_every_virsh_option_is_in_pyvirt_help(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    listed = help_options(capsys, command)
    missing = [o for o in DATA[command] if o not in listed]
    assert missing == [], f"{command}: virsh's {missing} are neither supported nor refused"
    refused = {o for o, line in listed.items() if "(refused)" in line}
    expected = {o for o, why in TABLE.get(command, {}).items()
                if why != XPATH and not why.startswith("accepted:")}  # fmt: skip
    assert refused == expected
    for option in TABLE.get(command, {}):  # every row is a virsh option of the command
        assert option in DATA[command]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["schedinfo", "d", "--weight", "5"], "Xen's credit scheduler"),
        (["start", "d", "--autodestroy"], "holds no connection"),
        (["snapshot-delete", "d", "--snapshotname", "s"], "positional argument (SNAPSHOT)"),
        (["console", "d", "--safe"], "not in pyvirt yet"),
        (["migrate", "d", "pyvirt+ssh://h/", "--zerocopy"], "zero-copy send"),
    ],
)
def test_a_refused_option_fails_with_its_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], reason: str
) -> None:
    code, out, err = run(capsys, "-c", f"pyvirt:///embed?root={tmp_path}", *argv)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {argv[0]} ") and reason in err
    assert "hint: see docs/virsh-compat.md" in err


def test_dumpxml_xpath_and_wrap_on_every_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    c = ["-c", f"pyvirt:///embed?root={tmp_path}"]
    xml = tmp_path / "n.xml"
    xml.write_text("<network><name>n1</name><bridge name='vbr9'/>"
                   "<ip address='10.9.0.1' netmask='255.255.255.0'/></network>")  # fmt: skip
    assert run(capsys, *c, "net-define", str(xml), "--validate")[0] == 0
    assert run(capsys, *c, "net-dumpxml", "n1", "--xpath", "string(//ip/@address)")[1] == (
        "10.9.0.1\n"
    )
    code, out, _ = run(capsys, *c, "net-dumpxml", "n1", "--xpath", "//bridge", "--wrap")
    assert (
        code == 0 and out.startswith('<nodes>\n<bridge name="vbr9"') and out.endswith("</nodes>\n")
    )
    code, _, err = run(capsys, *c, "net-dumpxml", "n1", "--wrap")
    assert code == 1 and "--wrap needs --xpath" in err


def test_select() -> None:
    doc = "<a><b x='1'/><b x='2'>t</b></a>"
    assert select(doc, "//b/@x") == "1\n2\n"
    assert select(doc, "count(//b)") == "2.0\n"
    assert select(doc, "//b[2]", wrap=True) == '<nodes>\n<b x="2">t</b>\n</nodes>\n'
    with pytest.raises(InvalidConfigError, match="invalid xpath"):
        select(doc, "//[")
    with pytest.raises(InvalidConfigError, match="not XML"):
        select("plain text", "//b")


def test_the_doc_table_names_every_refused_option() -> None:
    text = DOC.read_text()
    for command, row in TABLE.items():
        assert f"| `{command}` |" in text
        for option, why in row.items():
            if why != XPATH and not why.startswith("accepted:"):
                assert f"`{option}`" in text


def test_migrate_disks_is_pyvirts_own_option(capsys: pytest.CaptureFixture[str]) -> None:
    # it was in the table of refused options after migrate had it: the CLI refused it
    listed = help_options(capsys, "migrate")
    assert "(refused)" not in listed["--migrate-disks"]
    assert "--migrate-disks" not in TABLE["migrate"]
