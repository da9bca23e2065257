"""The pseudo-terminals of a started domain's ``pty`` chardevs (``-chardev pty``, as libvirt
makes them): read back from QEMU after the launch into the runtime record and shown in the live
XML, as virsh shows them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyvirt.errors import PyvirtError

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.runtime import RuntimeRecord

__all__ = ["has_ptys", "record_ptys", "show_ptys"]

log = logging.getLogger(__name__)

# lazy: function-local imports marked ``# lazy``: QMP and lxml load only for a domain with a pty.


def has_ptys(rec: RuntimeRecord) -> bool:
    """Whether the domain's QEMU has ``pty`` chardevs (``-chardev pty,...``)."""
    return any(a.startswith("pty,") for a in rec.argv)


def record_ptys(rec: RuntimeRecord, live_xml: str) -> str:
    """Read the pseudo-terminals QEMU allocated for ``pty`` chardevs (``query-chardev``) into
    ``rec.ptys`` and return ``live_xml`` showing them (``<source path>``, a console's
    ``tty=``), as virsh's live XML does. Nothing is asked when the argv has no ``-chardev pty``.
    A failure is logged: the domain runs, only its console is unknown.
    """
    if not has_ptys(rec):
        return live_xml
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy: no asyncio on start's path

    try:
        with SyncMonitor(rec.qmp_socket, name=rec.name) as mon:
            found = mon.query_ptys()
    except PyvirtError as err:
        log.warning("domain '%s': cannot read its pseudo-terminals: %s", rec.name, err)
        return live_xml
    rec.ptys = {label.removeprefix("char"): path for label, path in found.items()}
    return show_ptys(live_xml, rec.ptys)


def show_ptys(live_xml: str, ptys: dict[str, str]) -> str:
    """``live_xml`` with each ``pty`` chardev's ``/dev/pts/N`` (by alias) shown."""
    from lxml import etree  # lazy

    root = etree.fromstring(live_xml.encode())
    changed = False
    for dev in root.iterfind("devices/*[@type='pty']"):
        if dev.tag not in ("serial", "console", "channel"):
            continue
        alias = dev.find("alias")
        path = ptys.get(alias.get("name", "") if alias is not None else "")
        if path is None:
            continue
        source = dev.find("source")
        if source is None:
            source = etree.Element("source")
            dev.insert(0, source)
        source.set("path", path)
        if dev.tag == "console":
            dev.set("tty", path)
        changed = True
    if not changed:
        return live_xml
    return str(etree.tostring(root, encoding="unicode"))
