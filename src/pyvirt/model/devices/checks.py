"""Semantic checks across ``<devices>`` (unique targets, MAC syntax, safe paths)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.devices.controller import controller_indexes, is_usb_companion
from pyvirt.model.devices.interface import mac_problem

if TYPE_CHECKING:
    from pyvirt.model.devices import Devices


def _has_dotdot(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


def check_devices(devices: Devices, problems: list[Problem]) -> None:
    """Append the problems of ``devices`` to ``problems``."""
    seen: dict[str, str] = {}
    for disk in devices.disks:
        try:
            dev = disk.target_dev
            source_path = disk.source_path
        except InvalidConfigError:
            continue
        if not dev:
            problems.append(Problem(disk.xpath("target"), "dev is required"))
        elif dev in seen:
            problems.append(
                Problem(disk.xpath("target"), f"dev '{dev}' is already used by {seen[dev]}")
            )
        else:
            seen[dev] = disk.xpath()
        if source_path is not None and _has_dotdot(source_path):
            problems.append(
                Problem(disk.xpath("source"), f"path '{source_path}' has a '..' component")
            )
    controllers: dict[tuple[str, int], str] = {}
    try:
        indexes = controller_indexes(list(devices.controllers))
    except InvalidConfigError:
        indexes = {}
    for ctl, index in indexes.items():
        if is_usb_companion(ctl):
            continue  # a USB companion (ich9-uhci*) shares its EHCI master's index
        key = (ctl.type or "", index)
        if key in controllers:
            problems.append(
                Problem(ctl.xpath(), f"{key[0]} controller index {key[1]} is defined twice")
            )
        controllers[key] = ctl.xpath()
    for nic in devices.interfaces:
        mac = nic.mac
        if mac is None:
            continue
        why = mac_problem(mac)
        if why is not None:
            problems.append(Problem(nic.xpath("mac"), f"address '{mac}' {why}"))
    for gfx in devices.graphics:
        try:
            port = gfx.port
        except ValueError as err:
            problems.append(Problem(gfx.xpath(), f"port '{gfx.element.get('port')}' {err}"))
            continue
        if port is not None and not -1 <= port <= 65535:
            problems.append(Problem(gfx.xpath(), f"port {port} is outside 0-65535"))
