"""``define`` → ``dumpxml`` over libvirt's corpus: what pyvirt accepts is stable when defined
again (the second dumpxml equals the first), and close to libvirt's own XML output
(``expected-out.xml``): the share of libvirt's output facts (element path, attributes, text)
pyvirt's dumpxml has must not fall below the floor in ``libvirt-corpus.json``."""

from __future__ import annotations

import collections
import os
import random
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pyvirt.errors import PyvirtError
from pyvirt.host.firmware import load_descriptors
from pyvirt.model.defaults import fill_defaults
from pyvirt.model.domain import Domain
from pyvirt.service.domain.firmware import autoselect
from tests.unit.compat.test_libvirt_corpus import CORPUS, FIRMWARE, FLOORS

pytestmark = pytest.mark.skipif(CORPUS is None, reason="libvirt corpus not found")

#: QEMU 7.2's aliases, as define finds them in the emulator's cached facts
ALIASES = {"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}
DESCRIPTORS = load_descriptors([FIRMWARE])
LIBVIRT_NVRAM = Path("/var/lib/libvirt/qemu/nvram")


def facts(el: Any, path: str = "") -> collections.Counter[str]:
    """Every element as ``/path/tag[attributes]text``; machine aliases as their family (the
    corpus's libvirt did not expand ``pc``; pyvirt does when it knows the emulator)."""
    here = f"{path}/{el.tag}"
    attrs = dict(el.attrib)
    if el.tag == "type" and "machine" in attrs:
        m = attrs["machine"]
        attrs["machine"] = "pc" if m.startswith("pc-i440fx-") else "q35" if "q35" in m else m
    text = (el.text or "").strip()
    out = collections.Counter([f"{here}[{sorted(attrs.items())}]{text}"])
    for child in el:
        if isinstance(child.tag, str):
            out += facts(child, here)
    return out


def test_define_dumpxml_is_stable_and_close_to_libvirt() -> None:
    """What ``define`` stores (parse, validate, choose the firmware among descriptors like
    those of libvirt's mocked host, fill the defaults: no host state involved)."""
    assert CORPUS is not None
    unstable, matched, counted, cases = [], 0, 0, 0
    for corpus in ("public", "public-more"):
        for case in sorted((CORPUS / corpus).iterdir()):
            xml = case / "domain.xml"
            if not xml.is_file():
                continue
            try:
                first = defined(xml.read_bytes())
            except PyvirtError:
                continue
            if defined(first.encode()) != first:
                unstable.append(case.name)
            expected = case / "expected-out.xml"
            if expected.is_file():
                want = facts(etree.fromstring(expected.read_bytes()))
                got = facts(etree.fromstring(first.encode()))
                matched += sum((want & got).values())
                counted += sum(want.values())
                cases += 1
    assert not unstable, f"define(dumpxml(define(x))) changed: {unstable}"
    score = matched / counted
    if os.environ.get("PYVIRT_CORPUS_REPORT"):
        print(f"dumpxml vs libvirt's output: {matched}/{counted} = {score:.2%} over {cases} cases")
    assert score >= FLOORS["dumpxml"]["score"], f"{score:.4f}"


def defined(xml: bytes) -> str:
    """The XML ``define`` stores for *xml* (MACs from a fixed seed)."""
    dom = Domain.from_xml(xml)
    autoselect(dom, LIBVIRT_NVRAM, DESCRIPTORS)
    fill_defaults(dom, machine_aliases=ALIASES, rng=random.Random(1))
    return dom.to_xml()
