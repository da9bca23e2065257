"""``<features>``: hypervisor features switched on (acpi, apic, pae, ...)."""

from __future__ import annotations

from lxml import etree

from pyvirt.model.xmlmap import XmlNode, insert_element, remove_element


class Features(XmlNode):
    """``<features>``: each child element names one feature; its settings are kept as is."""

    TAG = "features"
    EXTRA_KNOWN = ("*", "*@state")

    def names(self) -> list[str]:
        """The features present, in document order."""
        return [str(el.tag) for el in self.element if isinstance(el.tag, str)]

    def has(self, name: str) -> bool:
        """True when ``<name/>`` is present (whatever its ``state``)."""
        return self.element.find(name) is not None

    def enabled(self, name: str) -> bool:
        """True when present and not switched off with ``state='off'``."""
        el = self.element.find(name)
        return el is not None and el.get("state", "on") != "off"

    def add(self, name: str) -> None:
        """Add ``<name/>`` unless present."""
        if not self.has(name):
            self.attach()
            insert_element(self.element, etree.Element(name))

    def remove(self, name: str) -> None:
        """Remove ``<name>`` if present."""
        el = self.element.find(name)
        if el is not None:
            remove_element(el)
