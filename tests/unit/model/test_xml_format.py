"""XML is written as libvirt writes it: single-quoted attributes, two-space indentation.

Admin scripts grep virsh's output that way; the seed's delete workflow reads the image path
out of ``dumpxml`` with ``<source file='...'/>``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pyvirt.model import Domain
from pyvirt.model.network import Network
from pyvirt.model.xmltree import parse_xml, to_string
from tests.conftest import Pyvirt


def test_quotes_and_escapes() -> None:
    el = parse_xml(
        """<a x="it's" y='say "hi"' z="&lt;&amp;&gt;" n="l1&#10;l2"><b>1 &lt; 2</b></a>"""
    )
    assert to_string(el) == (
        "<a x='it&apos;s' y='say \"hi\"' z='&lt;&amp;&gt;' n='l1&#10;l2'>\n  <b>1 &lt; 2</b>\n</a>"
    )
    assert parse_xml(to_string(el)).get("x") == "it's"
    assert parse_xml(to_string(el)).get("n") == "l1\nl2"


def test_any_layout_is_reindented_by_two_spaces() -> None:
    flat = (
        "<network><name>n</name><uuid>f4680af7-9472-405a-8773-fc7472714d70</uuid>"
        "<forward mode=\"nat\"><nat><port start='1' end='2'/></nat></forward></network>"
    )
    assert Network.from_xml(flat).to_xml() == (
        "<network>\n"
        "  <name>n</name>\n"
        "  <uuid>f4680af7-9472-405a-8773-fc7472714d70</uuid>\n"
        "  <forward mode='nat'>\n"
        "    <nat>\n"
        "      <port start='1' end='2'/>\n"
        "    </nat>\n"
        "  </forward>\n"
        "</network>\n"
    )
    wide = "<domain type='qemu'>\n        <name>w</name>\n        <memory>1024</memory>\n</domain>"
    assert Domain.from_xml(wide).to_xml().splitlines()[1] == "  <name>w</name>"


def test_text_and_namespaces_are_kept() -> None:
    xml = (
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<name>t</name><memory>1024</memory><description>two\n  lines</description>"
        "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>"
    )
    out = Domain.from_xml(xml).to_xml()
    assert "<description>two\n  lines</description>" in out
    assert out.startswith(
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
    )
    assert "    <qemu:arg value='-S'/>\n" in out
    # a sub-element alone declares the namespaces it needs
    sub = Domain.from_xml(xml).element.find(
        "{http://libvirt.org/schemas/domain/qemu/1.0}commandline"
    )
    assert sub is not None
    assert to_string(sub).startswith("<qemu:commandline xmlns:qemu=")


SEED_VM = """<domain type='qemu'>
  <name>10.47.181.1</name>
  <memory unit='MiB'>64</memory>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="{image}"/>
      <target dev="vda" bus="virtio"/>
    </disk>
  </devices>
</domain>
"""


def test_seed_delete_workflow(pyvirt: Pyvirt, tmp_path: Path) -> None:
    image = tmp_path / "10.47.181.1.qcow2"
    image.write_bytes(b"\0" * 512)
    (tmp_path / "vm.xml").write_text(SEED_VM.format(image=image))
    pyvirt("define", str(tmp_path / "vm.xml"))
    # what the definition pyvirt stored looks like (the seed reads /etc/libvirt/qemu/NAME.xml)
    stored = [p for p in (pyvirt.root).rglob("10.47.181.1.xml")]
    assert stored and f"<source file='{image}'/>" in stored[0].read_text()
    # find the image as admins do: dumpxml | grep "source file=" | cut on single quotes
    script = (
        'pyvirt() { "$PYTHON" -m pyvirt.cli "$@"; }; '
        'pyvirt dumpxml 10.47.181.1 | grep "source file=" | cut -d"\'" -f2'
    )

    env = {**pyvirt.env, "PYTHON": sys.executable}
    found = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == str(image)
    pyvirt("undefine", "10.47.181.1")
    Path(found.stdout.strip()).unlink()
    assert not image.exists()
    assert pyvirt("list", "--all", "--name").out.strip() == ""
