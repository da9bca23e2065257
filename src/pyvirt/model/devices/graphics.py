"""``<graphics>``: a remote display (vnc, spice, ...)."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import XmlNode, attr, bool_attr, children, parse_int

GRAPHICS_TYPES = ("vnc", "spice", "sdl", "rdp", "desktop", "egl-headless", "dbus")


class Listen(XmlNode):
    """``<listen>``: one listen address (type address, network, socket or none)."""

    TAG = "listen"
    type = attr("type")
    address = attr("address")
    network = attr("network")
    socket = attr("socket")


@register_device("graphics")
class Graphics(Device):
    """``<graphics>``: ``listen`` reads the attribute or else the first ``<listen>`` address."""

    ORDER = ("listen", "channel", "image", "gl", "audio", "alias", "address")

    type = attr("type", choices=GRAPHICS_TYPES)
    _port = attr("port")
    tls_port = attr("tlsPort")
    _autoport = bool_attr("autoport")
    _listen_attr = attr("listen")
    listens = children("listen", Listen)
    keymap = attr("keymap")
    passwd = attr("passwd")
    socket = attr("socket")
    websocket = attr("websocket")
    audio_id = attr("id", "audio")

    @property
    def port(self) -> int | None:
        """The TCP port; None when absent, -1 means "pick one"."""
        raw = self._port
        if raw is None:
            return None
        return -1 if raw.strip() == "-1" else parse_int(raw)

    @port.setter
    def port(self, value: int | None) -> None:
        self._port = None if value is None else str(value)

    @property
    def autoport(self) -> bool:
        """True when ``autoport='yes'`` or no fixed port is given."""
        value = self._autoport
        if value is not None:
            return value
        port = self._port
        return port is None or port.strip() == "-1"

    @autoport.setter
    def autoport(self, value: bool) -> None:
        self._autoport = value

    @property
    def listen(self) -> str | None:
        """The listen address: the ``listen`` attribute, else the first ``<listen address>``."""
        if self._listen_attr is not None:
            return self._listen_attr
        for item in self.listens:
            if item.address is not None:
                return item.address
        return None

    @listen.setter
    def listen(self, address: str | None) -> None:
        self._listen_attr = address
        for item in self.listens:
            if item.type in (None, "address"):
                item.address = address
