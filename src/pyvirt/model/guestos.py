"""``<os>``: guest type, machine, boot order, direct kernel boot and firmware."""

from __future__ import annotations

from pyvirt.model.xmlmap import XmlNode, attr, attr_list, bool_attr, child, text

BOOT_DEVS = ("fd", "hd", "cdrom", "network")


class Loader(XmlNode):
    """``<loader readonly type secure>PATH</loader>``: the firmware image."""

    TAG = "loader"
    readonly = bool_attr("readonly")
    type = attr("type", choices=("rom", "pflash"))
    secure = bool_attr("secure")

    @property
    def path(self) -> str | None:
        """The firmware file."""
        return self.element.text

    @path.setter
    def path(self, value: str | None) -> None:
        self.attach()
        self.element.text = value


class Os(XmlNode):
    """``<os>``; ``type`` is ``hvm`` unless told otherwise."""

    TAG = "os"
    ORDER = (
        "type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "dtb", "boot",
        "bootmenu", "smbios", "bios",
    )  # fmt: skip

    type = text("type", default="hvm")
    arch = attr("arch", "type", init_text="hvm")
    machine = attr("machine", "type", init_text="hvm")
    firmware = attr("firmware")
    boot_devs = attr_list("boot", "dev")
    kernel = text("kernel")
    initrd = text("initrd")
    cmdline = text("cmdline")
    dtb = text("dtb")
    loader = child("loader", Loader)
    nvram = text("nvram")
    nvram_template = attr("template", "nvram")
    bootmenu = bool_attr("enable", "bootmenu")
    bootmenu_timeout = attr("timeout", "bootmenu")
    bios_useserial = bool_attr("useserial", "bios")
    bios_reboot_timeout = attr("rebootTimeout", "bios")
    smbios_mode = attr("mode", "smbios")
