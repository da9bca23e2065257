"""Firmware autoselection (``<os firmware='efi'>``) and the per-domain UEFI NVRAM file.

At ``define`` (and when a start plan is built for a definition that was never resolved, such
as a transient ``create``), a domain with ``<os firmware='efi'>`` gets the firmware the host's
descriptors (:mod:`pyvirt.host.firmware`) offer for what it asks: ``<loader>`` path, format,
``readonly``, ``secure`` and ``stateless``, ``<nvram template format>``, the
``<firmware><feature>`` switches ``secure-boot``/``enrolled-keys``, ``<smm state='off'/>`` and
AMD SEV. As libvirt does, the choice is written into the definition: the loader path, the
NVRAM template and file (``LIB/nvram/NAME_VARS.fd``), both firmware features and
``<smm state='on'/>`` for firmware that requires SMM. Nothing fits: define is refused naming
the first requirement no descriptor meets.

The ``nvram`` start hook copies the template to the NVRAM file when the file does not exist
yet (the first start); later starts keep the guest's variables.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from pyvirt.errors import InvalidConfigError
from pyvirt.host.firmware import Descriptor, Wanted, load_descriptors, select
from pyvirt.model.guestos import Loader, Os
from pyvirt.model.xmltree import insert_element
from pyvirt.service.hooks import HookResult, register_hook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths

__all__ = ["autoselect", "nvram_dir", "wanted"]

#: firmware features written into the definition, in libvirt's order
WRITTEN_FEATURES = ("enrolled-keys", "secure-boot")


def nvram_dir(paths: StatePaths) -> Path:
    """Where domains' NVRAM files live (``/var/lib/pyvirt/lib/nvram`` as root)."""
    return paths.config / "nvram"


def wanted(dom: Domain) -> Wanted | None:
    """What ``dom`` asks of its firmware; None unless it has ``<os firmware='efi'>``."""
    os_ = dom.os
    if os_.firmware != "efi":
        return None
    loader = os_.loader
    smm = dom.element.find("features/smm")
    sev = dom.element.find("launchSecurity")
    return Wanted(
        interface="uefi",
        arch=os_.arch or "x86_64",
        machine=os_.machine or "pc",
        loader=((loader.path or "").strip() or None) if loader is not None else None,
        loader_format=loader.format if loader is not None else None,
        readonly=loader.readonly if loader is not None else None,
        secure=loader.secure if loader is not None else None,
        stateless=loader.stateless if loader is not None else None,
        nvram_template=os_.nvram_template,
        nvram_format=os_.nvram_format,
        features=os_.firmware_features(),
        smm=None if smm is None else smm.get("state", "on") != "off",
        sev=sev is not None and sev.get("type") == "sev",
    )


def autoselect(
    dom: Domain, nvram: Path, descriptors: Sequence[Descriptor] | None = None
) -> Descriptor | None:
    """Choose ``dom``'s firmware and write the choice into it (see the module docstring).

    :param nvram: the directory of NVRAM files (:func:`nvram_dir`)
    :param descriptors: the host's (:func:`pyvirt.host.firmware.load_descriptors`) when None
    :returns: the chosen descriptor; None when ``dom`` does not ask for ``firmware='efi'``
    :raises InvalidConfigError: no descriptor fits
    """
    want = wanted(dom)
    if want is None:
        return None
    desc = select(load_descriptors() if descriptors is None else descriptors, want)
    _write(dom, desc, nvram)
    return desc


def _write(dom: Domain, desc: Descriptor, nvram: Path) -> None:
    os_ = dom.os
    os_el = os_.element
    fw = os_el.find("firmware")
    if fw is None:
        fw = etree.Element("firmware")
        insert_element(os_el, fw, Os.ORDER)
    explicit = os_.firmware_features()
    nv = os_el.find("nvram")
    remote = nv is not None and nv.get("type") == "network"
    for el in fw.findall("feature"):
        if el.get("name") in WRITTEN_FEATURES:
            fw.remove(el)
    for name in WRITTEN_FEATURES:
        if remote and name == "enrolled-keys" and name not in explicit:
            continue  # the keys are in a varstore pyvirt does not see
        on = explicit.get(name, name in desc.features)
        insert_element(fw, etree.Element("feature", enabled="yes" if on else "no", name=name))
    loader = os_.loader
    if loader is None:
        loader = Loader()
        os_.loader = loader
        loader = os_.loader
        assert loader is not None
    if loader.readonly is None:  # attributes in libvirt's order: readonly, secure, type
        loader.readonly = desc.mode != "combined"  # a combined image holds the variables too
    if "requires-smm" in desc.features:
        loader.secure = True
    loader.type = "pflash"
    if desc.executable_format != "raw":
        loader.format = desc.executable_format
    loader.path = desc.executable
    if "requires-smm" in desc.features and dom.element.find("features/smm") is None:
        dom.features.add("smm")
        smm = dom.element.find("features/smm")
        assert smm is not None
        smm.set("state", "on")
    if desc.mode == "stateless" or desc.nvram_template is None or remote:
        return  # a remote NVRAM is the user's to provide
    os_.nvram_template = desc.nvram_template
    if desc.nvram_format != "raw":
        os_.nvram_format = desc.nvram_format
    if not os_.nvram and os_el.find("nvram/source") is None:
        suffix = ".qcow2" if desc.nvram_format == "qcow2" else ".fd"
        os_.nvram = str(nvram / f"{dom.name}_VARS{suffix}")


class NvramHook:
    """Resolves a definition that was never resolved and creates the NVRAM file at start."""

    name = "nvram"

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        loader = dom.os.loader
        if dom.os.firmware == "efi" and (loader is None or not (loader.path or "").strip()):
            autoselect(dom, nvram_dir(mgr.paths))  # create, or a definition of an older pyvirt
        path, template = dom.os.nvram, dom.os.nvram_template
        if not path or not template:
            return None
        return HookResult(data={"nvram": path, "template": template})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        create_nvram(Path(data["nvram"]), Path(data["template"]))

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        return None

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        return None


def create_nvram(path: Path, template: Path) -> bool:
    """Copy ``template`` to ``path`` unless ``path`` exists; returns whether it copied.

    :raises InvalidConfigError: the template cannot be read
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with template.open("rb") as src, tmp.open("wb") as dst:
            os.fchmod(dst.fileno(), 0o600)
            shutil.copyfileobj(src, dst)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InvalidConfigError(
            f"<os>/<nvram>: cannot create {path} from the template {template}: "
            f"{err.strerror or err}",
            hint="check that the firmware package (ovmf) is installed",
        ) from None
    return True


register_hook(NvramHook())
