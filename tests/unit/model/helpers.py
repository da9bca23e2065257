"""Shared helpers of the model tests."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

DATA = Path(__file__).resolve().parents[2] / "data" / "xml" / "domain"


def read_case(name: str) -> str:
    """The text of ``tests/data/xml/domain/<name>-in.xml``."""
    return (DATA / f"{name}-in.xml").read_text()


def c14n(text: str | bytes) -> bytes:
    """Canonical form of a document: equal canonical forms mean equal XML.

    Blank text between elements is layout, not content (libvirt re-indents all XML it
    writes), so it is dropped before comparing.
    """
    raw = text.encode() if isinstance(text, str) else text
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
    return etree.tostring(etree.fromstring(raw, parser).getroottree(), method="c14n")


MINIMAL = """<domain type='kvm'>
  <name>vm-1</name>
  <uuid>3f1c6a52-8d0e-4c1b-9a57-0d4f5b1e2a10</uuid>
  <memory>524288</memory>
  <vcpu>1</vcpu>
  <os>
    <type>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/srv/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""
