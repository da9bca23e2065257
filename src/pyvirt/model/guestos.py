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
    stateless = bool_attr("stateless")
    format = attr("format")

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
    #: ``<firmware><feature enabled name/>``: what firmware autoselection must (not) offer
    EXTRA_KNOWN = (
        "firmware",
        "firmware/feature",
        "firmware/feature@enabled",
        "firmware/feature@name",
    )
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
    nvram_format = attr("format", "nvram")

    def firmware_features(self) -> dict[str, bool]:
        """``<firmware><feature name enabled>`` as name -> enabled."""
        return {
            str(f.get("name")): f.get("enabled") == "yes"
            for f in self.element.findall("firmware/feature")
            if f.get("name")
        }

    bootmenu = bool_attr("enable", "bootmenu")
    bootmenu_timeout = attr("timeout", "bootmenu")
    bios_useserial = bool_attr("useserial", "bios")
    bios_reboot_timeout = attr("rebootTimeout", "bios")
    smbios_mode = attr("mode", "smbios")
