"""``<sysinfo type='smbios'>``: SMBIOS tables the guest sees.

They reach the guest when ``<os><smbios mode='sysinfo'/>`` asks for them.
"""

from __future__ import annotations

from pyvirt.model.xmlmap import XmlNode, attr

#: SMBIOS sections libvirt knows, in the order QEMU's ``-smbios type=N`` numbers them.
SECTIONS = ("bios", "system", "baseBoard", "chassis", "oemStrings")


class Sysinfo(XmlNode):
    """``<sysinfo>``: per section, ``<entry name='key'>value</entry>`` lines."""

    TAG = "sysinfo"
    EXTRA_KNOWN = tuple(p for s in SECTIONS for p in (s, f"{s}/entry", f"{s}/entry@name"))

    type = attr("type")

    def entries(self, section: str) -> list[tuple[str | None, str]]:
        """``(name, value)`` of each ``<entry>`` in ``section`` (name None for oemStrings)."""
        el = self.element.find(section)
        if el is None:
            return []
        return [(e.get("name"), (e.text or "").strip()) for e in el.findall("entry")]
