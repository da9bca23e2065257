"""Domain verbs on devices given as XML and on the guest's inputs and media:
``attach-device``, ``detach-device``, ``change-media``, ``send-key``, ``desc``, ``metadata``,
``domblkerror``, ``domcontrol``. Mixed into :class:`~pyvirt.api.domain.Domain`.

Verbs that change a domain take keyword-only ``live``, ``config`` and ``current`` (none: the
running domain if it runs, else its definition), and ``persistent`` where virsh has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.api.device_xml import DeviceChange
    from pyvirt.api.domain import Domain
    from pyvirt.service.device.guest import BlockError, ControlInfo

__all__ = ["DomainDeviceXml"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, QMP).


class DomainDeviceXml(DomainHandle):
    """Device-XML, media, key, description and control verbs of a domain."""

    def attach_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> DeviceChange:
        """Attach the device ``xml`` describes (``attach-device``): a disk, NIC, controller,
        input, serial/console, hostdev, RNG or watchdog.

        :param persistent: the definition, and the running domain if it runs
        :raises UnsupportedError: a kind QEMU cannot hot-plug, live (the message says why)
        """
        from pyvirt.api import device_xml  # lazy
        from pyvirt.service.device import generic  # lazy

        tag, el = device_xml.parse_device(xml)
        if tag not in device_xml.GENERIC:
            return device_xml.attach_device(
                cast("Domain", self), xml, live=live, config=config, current=current,
                persistent=persistent,
            )  # fmt: skip
        got = generic.attach(
            self._domains, self._name, el, live=live, config=config, current=current,
            persistent=persistent,
        )  # fmt: skip
        return device_xml.DeviceChange(tag, got.alias or tag, got.alias, got.live, got.config)

    def detach_device(
        self,
        xml: str | bytes,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> DeviceChange:
        """Detach the device ``xml`` names (``detach-device``).

        :raises NotFoundError: no such device
        """
        from pyvirt.api import device_xml  # lazy
        from pyvirt.service.device import generic  # lazy

        tag, el = device_xml.parse_device(xml)
        if tag not in device_xml.GENERIC:
            return device_xml.detach_device(
                cast("Domain", self), xml, live=live, config=config, current=current,
                persistent=persistent,
            )  # fmt: skip
        got = generic.detach(
            self._domains, self._name, el, live=live, config=config, current=current,
            persistent=persistent,
        )  # fmt: skip
        return device_xml.DeviceChange(tag, got.alias or tag, got.alias, got.live, got.config)

    def change_media(
        self,
        path_or_target: str,
        source: str | None = None,
        *,
        action: str = "update",
        force: bool = False,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        print_xml: bool = False,
    ) -> str:
        """Eject, insert or update the medium of a CD-ROM or floppy (``change-media``);
        returns what was done (``ejected``, ``inserted``, ``updated``).

        :param action: ``eject``, ``insert`` or ``update`` (no ``source``: eject)
        :param print_xml: change nothing and return the drive's new ``<disk>`` XML
        """
        from pyvirt.errors import InvalidConfigError  # lazy
        from pyvirt.service.device import media  # lazy

        if action not in ("eject", "insert", "update"):
            raise InvalidConfigError(
                f"unknown media action '{action}'", hint="use eject, insert or update"
            )
        return media.change_media(
            self._domains, self._name, path_or_target, source, take_out=action == "eject",
            put_in=action == "insert", force=force, live=live, config=config, current=current,
            print_xml=print_xml,
        )  # fmt: skip

    def send_key(
        self, keys: list[str], *, codeset: str = "linux", holdtime: int | None = None
    ) -> list[int]:
        """Press ``keys`` together on the running guest (``send-key``); returns QEMU's key
        numbers sent.

        :param codeset: linux, xt, atset1, atset2, atset3, os_x, xt_kbd, win32, usb, qnum, rfb
        :param holdtime: milliseconds to hold the keys
        """
        from pyvirt.service.device import guest  # lazy

        return guest.send_key(self._domains, self._name, codeset, keys, holdtime=holdtime)

    def desc(self, *, title: bool = False, config: bool = False) -> str:
        """The domain's description (``title``: its title); empty when none."""
        from pyvirt.service.device import meta  # lazy

        return meta.get_desc(self._domains, self._name, title=title, config=config)

    def set_desc(
        self,
        text: str,
        *,
        title: bool = False,
        live: bool = False,
        config: bool = False,
        current: bool = False,
    ) -> None:
        """Set the description (``title``: the title); empty text removes it."""
        from pyvirt.service.device import meta  # lazy

        meta.set_desc(
            self._domains, self._name, text, title=title, live=live, config=config,
            current=current,
        )  # fmt: skip

    def metadata(self, uri: str, *, config: bool = False) -> str:
        """The ``<metadata>`` element of namespace ``uri``, as XML.

        :raises NotFoundError: there is none
        """
        from pyvirt.service.device import meta  # lazy

        return meta.get_metadata(self._domains, self._name, uri, config=config)

    def set_metadata(
        self,
        uri: str,
        xml: str | None,
        *,
        key: str | None = None,
        live: bool = False,
        config: bool = False,
        current: bool = False,
    ) -> None:
        """Set the metadata element of namespace ``uri`` to ``xml`` under prefix ``key``
        (``xml`` None: remove it)."""
        from pyvirt.service.device import meta  # lazy

        meta.set_metadata(
            self._domains, self._name, uri, key=key, xml=xml, live=live, config=config,
            current=current,
        )  # fmt: skip

    def blkerror(self) -> list[BlockError]:
        """The running domain's drives in an I/O error state (``domblkerror``)."""
        from pyvirt.service.device import guest  # lazy

        return guest.block_errors(self._domains, self._name)

    def control_info(self) -> ControlInfo:
        """Whether pyvirt can control the domain now (``domcontrol``)."""
        from pyvirt.service.device import guest  # lazy

        return guest.control_info(self._domains, self._name)
