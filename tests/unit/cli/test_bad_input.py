"""Bad input through the real CLI: one 'error:' line, exit 1, no traceback, nothing changed."""

from __future__ import annotations

import pytest

from tests.conftest import Pyvirt

GOOD = """<domain type='qemu'><name>good</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<domain type='qemu'><name>&lol3;</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os></domain>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<domain type='qemu'><name>&x;</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os></domain>"""

BAD_XML = {
    "malformed": ("<domain type='qemu'><name>x</name>", "malformed XML"),
    "billion-laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "xxe": (XXE, "DOCTYPE"),
    "negative-memory": (GOOD.replace(">64<", ">-5<").replace("good", "neg"), "<memory>"),
    "absurd-memory": (GOOD.replace("'MiB'>64", "'EiB'>64").replace("good", "big"), "<memory>"),
    "bad-unit": (GOOD.replace("'MiB'", "'XB'").replace("good", "unit"), "unit 'XB'"),
    "slash-name": (GOOD.replace("good", "a/b"), "name"),
    "dotdot-name": (GOOD.replace("good", ".."), "name"),
    "not-a-domain": ("<network><name>n</name></network>", "domain"),
}


@pytest.mark.parametrize("case", sorted(BAD_XML))
def test_define_bad_xml(pyvirt: Pyvirt, case: str) -> None:
    text, expected = BAD_XML[case]
    (pyvirt.root / "in.xml").write_text(text)
    pyvirt("define", str(pyvirt.root / "good.xml"), check=False)
    before = pyvirt.snapshot()
    res = pyvirt("define", str(pyvirt.root / "in.xml"), check=False)
    assert res.rc == 1, res
    lines = res.err.strip().splitlines()
    assert lines[0].startswith("error: "), res.err
    assert expected in lines[0], res.err
    assert len(lines) <= 2 and "Traceback" not in res.err
    assert pyvirt.snapshot() == before


@pytest.mark.parametrize(
    "args, expected",
    [
        (["destroy", "nosuch"], "error: domain 'nosuch' not found"),
        (["start", "nosuch"], "error: domain 'nosuch' not found"),
        (["dominfo", "../etc"], "error: domain '../etc' not found"),
        (["undefine", "nosuch"], "error: domain 'nosuch' not found"),
        (["define", "/nonexistent.xml"], "error: cannot read '/nonexistent.xml'"),
        (["start"], "error: Missing argument 'DOMAIN'"),
        (["frobnicate"], "error: No such command 'frobnicate'"),
        (["list", "--bogus"], "error: No such option"),
    ],
)
def test_errors_are_one_line(pyvirt: Pyvirt, args: list[str], expected: str) -> None:
    res = pyvirt(*args, check=False)
    assert res.rc == 1
    assert res.err.startswith(expected), res.err
    assert "Traceback" not in res.err


def test_duplicate_uuid_refused(pyvirt: Pyvirt) -> None:
    uuid = "8f0c8a5e-5f5c-4a0e-9e57-3b1f7f2a2a10"
    first = GOOD.replace("<name>good</name>", f"<name>a</name><uuid>{uuid}</uuid>")
    (pyvirt.root / "a.xml").write_text(first)
    (pyvirt.root / "b.xml").write_text(first.replace("<name>a</name>", "<name>b</name>"))
    pyvirt("define", str(pyvirt.root / "a.xml"))
    res = pyvirt("define", str(pyvirt.root / "b.xml"), check=False)
    assert res.rc == 1 and res.err.startswith(f"error: domain 'a' already exists with uuid {uuid}")
    # same name with a different uuid is refused too
    other = first.replace(uuid, "11111111-2222-3333-4444-555555555555")
    (pyvirt.root / "c.xml").write_text(other)
    res = pyvirt("define", str(pyvirt.root / "c.xml"), check=False)
    assert res.rc == 1 and "already exists with uuid" in res.err


def test_define_list_rename_undefine(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "g.xml").write_text(GOOD)
    assert pyvirt("define", str(pyvirt.root / "g.xml")).out.startswith("Domain 'good' defined")
    uuid = pyvirt("domuuid", "good").out.strip()
    assert pyvirt("domname", uuid).out.strip() == "good"
    assert pyvirt("list", "--all", "--uuid").out.split() == [uuid]
    pyvirt("autostart", "good")
    assert '"autostart": true' in pyvirt("list", "--all", "--json").out
    pyvirt("domrename", "good", "better")
    assert pyvirt("list", "--all", "--name").out.split() == ["better"]
    assert pyvirt("domuuid", "better").out.strip() == uuid
    assert '"autostart": true' in pyvirt("list", "--all", "--json").out
    assert "<name>better</name>" in pyvirt("dumpxml", "better", "--inactive").out
    pyvirt("undefine", "better")
    assert pyvirt("list", "--all", "--name").out.strip() == ""


def test_edit_invalid_aborts_and_keeps_definition(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "g.xml").write_text(GOOD)
    pyvirt("define", str(pyvirt.root / "g.xml"))
    before = pyvirt.snapshot()
    editor = pyvirt.root / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/<memory/<memoryX/' \"$1\"\n")
    editor.chmod(0o755)
    pyvirt.env["EDITOR"] = str(editor)
    res = pyvirt("edit", "good", check=False)
    assert res.rc == 1 and "aborted" in res.err
    assert pyvirt.snapshot() == before
    editor.write_text("#!/bin/sh\nsed -i 's/>64</>128</' \"$1\"\n")
    assert "edited" in pyvirt("edit", "good").out
    assert "131072" in pyvirt("dominfo", "good").out


@pytest.mark.parametrize(
    "kind, define, edit, xml",
    [
        (
            "net",
            "net-define",
            "net-edit",
            "<network><name>n1</name><bridge name='pvtest9'/>"
            "<ip address='10.251.3.1' prefix='24'/></network>",
        ),
        (
            "pool",
            "pool-define",
            "pool-edit",
            "<pool type='dir'><name>n1</name>"
            "<target><path>/tmp/pv-edit-pool</path></target></pool>",
        ),
    ],
)
def test_net_and_pool_edit(pyvirt: Pyvirt, kind: str, define: str, edit: str, xml: str) -> None:
    (pyvirt.root / "o.xml").write_text(xml)
    pyvirt(define, str(pyvirt.root / "o.xml"))
    before = pyvirt.snapshot()
    editor = pyvirt.root / "ed.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/<name>/<nameX>/' \"$1\"\n")
    editor.chmod(0o755)
    pyvirt.env["EDITOR"] = str(editor)
    res = pyvirt(edit, "n1", check=False)
    assert res.rc == 1 and "aborted" in res.err, res
    assert pyvirt.snapshot() == before
    editor.write_text("#!/bin/sh\ntrue\n")
    assert "not changed" in pyvirt(edit, "n1").out
