"""From the option values of ``pyvirt install`` (a mapping, as click gives them) to a spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyvirt.errors import InvalidConfigError
from pyvirt.install import options as o
from pyvirt.install.spec import InstallSpec


def _memory(text: str) -> int:
    """``--memory 1024`` or virt-install's ``--memory memory=1024,maxmemory=...``."""
    pairs = o.parse_keyvals("--memory", text, first="memory")
    value = pairs.get("memory") or pairs.get("currentMemory")
    try:
        mib = int(str(value))
    except ValueError:
        raise InvalidConfigError(f"--memory '{text}' is not a number of MiB") from None
    if mib <= 0:
        raise InvalidConfigError(f"--memory must be a positive number of MiB, not {mib}")
    return mib


def _osinfo(spec: InstallSpec, text: str) -> None:
    pairs = o.parse_keyvals("--os-variant", text, first="name")
    for key, value in pairs.items():
        on = value.lower() in ("on", "yes", "true", "1")
        if key in ("name", "short-id", "id"):
            if value in ("detect=on", "auto"):
                spec.os_detect = True
            else:
                spec.os_variant = value
        elif key == "detect":
            spec.os_detect = on
        elif key == "require":
            spec.os_require = on
        else:
            raise InvalidConfigError(f"--os-variant: unknown option '{key}'")


def build_spec(values: Mapping[str, Any]) -> InstallSpec:
    """Parse every option of ``pyvirt install``.

    :raises InvalidConfigError: the first malformed option, named as on the command line
    """
    spec = InstallSpec(name=values.get("name"))
    if values.get("memory"):
        spec.memory_mib = _memory(str(values["memory"]))
    if values.get("vcpus") is not None:
        text = str(values["vcpus"])
        if text.strip() in ("0", "") or text.startswith("0,"):
            raise InvalidConfigError(
                f"--vcpus {text}: a guest needs at least 1 vCPU", hint="e.g. --vcpus 2"
            )
        spec.vcpus = o.parse_vcpus(text)
    if values.get("cpu"):
        spec.cpu = o.parse_cpu(str(values["cpu"]))
    spec.virt_type = values.get("virt_type")
    spec.arch = values.get("arch")
    spec.machine = values.get("machine")
    spec.cdrom = values.get("cdrom")
    spec.location = values.get("location")
    spec.extra_args = values.get("extra_args")
    spec.import_ = bool(values.get("import_"))
    spec.pxe = bool(values.get("pxe"))
    if values.get("boot"):
        spec.boot = o.parse_boot(str(values["boot"]))
    for text in values.get("disk") or ():
        disk = o.parse_disk(str(text))
        if disk is not None:
            spec.disks.append(disk)
    for text in values.get("network") or ():
        nic = o.parse_network(str(text))
        if nic is None:
            spec.no_network = True
        else:
            spec.nics.append(nic)
    if spec.no_network and spec.nics:
        raise InvalidConfigError("--network none cannot be combined with other --network options")
    graphics = values.get("graphics")
    spec.graphics = o.parse_graphics(str(graphics)) if graphics else o.parse_graphics("vnc")
    spec.consoles = [o.parse_console(str(c)) for c in values.get("console") or ()]
    if values.get("os_variant"):
        _osinfo(spec, str(values["os_variant"]))
    spec.uuid = values.get("uuid")
    if spec.uuid is not None:
        import uuid as uuidlib

        try:
            spec.uuid = str(uuidlib.UUID(spec.uuid))
        except ValueError:
            raise InvalidConfigError(f"--uuid '{spec.uuid}' is not a UUID") from None
    spec.macs = [_mac(m) for m in values.get("mac") or ()]
    for nic in spec.nics:
        if nic.mac:
            nic.mac = _mac(nic.mac)
    if values.get("check"):
        spec.check = o.parse_check(str(values["check"]))
    spec.transient = bool(values.get("transient"))
    spec.autostart = bool(values.get("autostart"))
    if spec.transient and spec.autostart:
        raise InvalidConfigError("--autostart needs a persistent guest, not --transient")
    if values.get("cloud_init") is not None:
        spec.cloud_init = o.parse_cloud_init(str(values["cloud_init"]))
    for key in ("sysinfo", "memorybacking", "numatune", "cputune"):
        if values.get(key):
            first = "nodeset" if key == "numatune" else None
            setattr(spec, key, o.parse_keyvals(f"--{key}", str(values[key]), first=first))
    return spec


def _mac(text: str) -> str:
    import re

    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", text) or int(text[:2], 16) & 1:
        raise InvalidConfigError(
            f"MAC address '{text}' is not valid", hint="e.g. 52:54:00:12:34:56 (unicast)"
        )
    return text.lower()
