"""``<serial>``, ``<console>`` and ``<channel>``: character devices and their host backends."""

from __future__ import annotations

from lxml import etree

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import Element, attr, bool_attr, int_attr

CHARDEV_KINDS = ("serial", "console", "channel")


class Chardev(Device):
    """A character device; ``kind`` is its tag (serial, console or channel).

    ``Chardev(kind="serial", type="pty")`` creates a new ``<serial type='pty'>``.
    """

    ORDER = ("source", "protocol", "log", "target", "alias", "address")
    EXTRA_KNOWN = ("@tty",)

    type = attr("type")
    source_path = attr("path", "source")
    source_mode = attr("mode", "source")
    source_host = attr("host", "source")
    source_service = attr("service", "source")
    source_append = bool_attr("append", "source", true="on", false="off")
    protocol_type = attr("type", "protocol")
    target_type = attr("type", "target")
    target_port = int_attr("port", "target")
    target_name = attr("name", "target")
    target_address = attr("address", "target")
    target_model = attr("name", "target/model")
    log_file = attr("file", "log")
    log_append = bool_attr("append", "log", true="on", false="off")
    tty = attr("tty")

    def __init__(
        self, element: Element | None = None, /, *, kind: str = "serial", **values: object
    ) -> None:
        if element is None:
            element = etree.Element(kind)
        super().__init__(element, **values)

    @property
    def kind(self) -> str:
        """``serial``, ``console``, ``channel`` or ``parallel``."""
        return str(self.element.tag)


@register_device("serial")
class Serial(Chardev):
    """``<serial>``."""

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        values.pop("kind", None)
        super().__init__(element, kind="serial", **values)


@register_device("console")
class Console(Chardev):
    """``<console>``."""

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        values.pop("kind", None)
        super().__init__(element, kind="console", **values)


@register_device("channel")
class Channel(Chardev):
    """``<channel>``."""

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        values.pop("kind", None)
        super().__init__(element, kind="channel", **values)


@register_device("parallel")
class Parallel(Chardev):
    """``<parallel>``: an ISA parallel port on a character device."""

    def __init__(self, element: Element | None = None, /, **values: object) -> None:
        values.pop("kind", None)
        super().__init__(element, kind="parallel", **values)
