"""The hardened parser and the warning registry of :mod:`pyvirt.model.xmlmap`."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model import Domain, parse_xml

from .helpers import MINIMAL, read_case

REFUSED = "XML with a DOCTYPE declaring entities or an external DTD is refused"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<domain type='kvm'><name>&lol4;</name></domain>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain type='kvm'><name>&xxe;</name></domain>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "http://attacker.example/evil.dtd">
<domain type='kvm'><name>x</name></domain>"""

PUBLIC_DTD = b"""<!DOCTYPE domain PUBLIC "-//X//Y" "file:///etc/evil.dtd">
<domain type='kvm'/>"""


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PUBLIC_DTD, XXE.decode("ascii").encode("utf-16")],
    ids=["billion-laughs", "xxe-file", "external-dtd", "public-dtd", "xxe-utf16"],
)
def test_doctype_refused(data: bytes) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        parse_xml(data)
    assert str(exc.value) == REFUSED
    with pytest.raises(InvalidConfigError):
        Domain.from_xml(data)


def test_plain_doctype_allowed() -> None:
    root = parse_xml("<!DOCTYPE domain>\n<domain type='kvm'/>")
    assert root.tag == "domain"


def test_oversize_refused() -> None:
    data = b"<domain>" + b" " * (4 * 1024 * 1024) + b"</domain>"
    with pytest.raises(InvalidConfigError) as exc:
        parse_xml(data)
    assert str(exc.value) == "XML document larger than 4 MiB"


def test_custom_size_bound() -> None:
    with pytest.raises(InvalidConfigError) as exc:
        parse_xml(b"<domain/>", max_bytes=4, what="pool XML")
    assert str(exc.value) == "pool XML document larger than 4 bytes"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "<domain>\n  <name>x</nam>\n</domain>",
            "malformed XML: line 2: Opening and ending tag mismatch: name line 2 and nam",
        ),
        ("", "malformed XML: line 1: Document is empty"),
        ("<domain a='1' a='2'/>", "malformed XML: line 1: Attribute a redefined"),
    ],
)
def test_malformed(data: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        parse_xml(data)
    assert str(exc.value) == message
    assert "\n" not in str(exc.value)


def test_text_with_encoding_declaration() -> None:
    root = parse_xml("<?xml version='1.0' encoding='ISO-8859-1'?><domain><name>é</name></domain>")
    assert root.findtext("name") == "é"


def test_warnings_one_per_path() -> None:
    domain = Domain.from_xml(read_case("unknown"))
    assert domain.warnings == [
        "<metadata>: not understood by pyvirt; kept as is",
        "<memory>@dumpCore: not understood by pyvirt; kept as is",
        "<pm>: not understood by pyvirt; kept as is",
        "<devices>/<disk>@snapshot: not understood by pyvirt; kept as is",
        "<devices>/<disk>/<driver>@iothread: not understood by pyvirt; kept as is",
        "<devices>/<disk>/<source>/<seclabel>: not understood by pyvirt; kept as is",
        "<devices>/<disk>/<iotune>: not understood by pyvirt; kept as is",
        "<seclabel>: not understood by pyvirt; kept as is",
        "<qemu:commandline>: not understood by pyvirt; kept as is",
    ]


def test_no_warnings_for_understood_xml() -> None:
    for case in ("minimal", "platform", "disks", "network", "chardev"):
        assert Domain.from_xml(read_case(case)).warnings == [], case


def test_feature_settings_beyond_state_are_warned() -> None:
    xml = MINIMAL.replace("<os>", "<features><apic eoi='on'/><smm state='on'/></features><os>")
    assert Domain.from_xml(xml).warnings == [
        "<features>/<apic>@eoi: not understood by pyvirt; kept as is"
    ]


def test_reading_absent_required_child_does_not_change_tree() -> None:
    xml = MINIMAL
    domain = Domain.from_xml(xml)
    before = domain.to_xml()
    assert not domain.features.has("acpi")
    assert domain.clock.offset == "utc"
    assert domain.clock.timers == []
    assert domain.to_xml() == before
    domain.features.add("acpi")
    assert "<features>\n    <acpi/>\n  </features>" in domain.to_xml()
