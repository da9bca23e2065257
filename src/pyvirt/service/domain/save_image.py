"""Save image files and managed save images: where they live, the XML they hold
(``save-image-dumpxml``, ``save-image-define``, ``managedsave-dumpxml``), the check that a
replacement XML describes the same virtual hardware, and ``managedsave-remove``.

The save and restore flows themselves are :mod:`pyvirt.service.domain.save`; the file format
is :mod:`pyvirt.drivers.qemu.saveimage`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError, OperationFailedError

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: ``start`` and ``undefine`` import this module
# to look for a managed save image; the model, the argv builder and the image code load only for
# the verbs that use them.


# -- managed save files ----------------------------------------------------------------------
def managed_dir(mgr: DomainManager) -> Path:
    """``CONFIG/qemu/save``: the managed save images."""
    return mgr.paths.domain_config_dir / "save"


def managed_path(mgr: DomainManager, name: str) -> Path:
    """Where domain *name*'s managed save image lives."""
    return managed_dir(mgr) / f"{name}.save"


def has_managed_save(mgr: DomainManager, name: str) -> bool:
    """Whether domain *name* has a managed save image."""
    return managed_path(mgr, name).is_file()


def managed_names(mgr: DomainManager) -> set[str]:
    """The domains that have a managed save image (one directory listing)."""
    try:
        entries = os.listdir(managed_dir(mgr))
    except FileNotFoundError:
        return set()
    return {e[: -len(".save")] for e in entries if e.endswith(".save") and not e.startswith(".")}


def remove_managed(mgr: DomainManager, ident: str) -> bool:
    """Discard domain *ident*'s managed save image (``managedsave-remove``).

    :returns: whether there was one
    """
    name = mgr.resolve(ident)
    with mgr.locked(name):
        path = managed_path(mgr, name)
        if not path.is_file():
            return False
        path.unlink()
        return True


def refuse_undefine(mgr: DomainManager, name: str) -> None:
    """Refuse to undefine *name* while it has a managed save image (virsh's rule; with
    ``undefine --managed-save`` the image goes with the definition).

    :raises InvalidStateError: it has one
    """
    if has_managed_save(mgr, name):
        raise InvalidStateError(
            f"domain '{name}' has a managed save image; refusing to undefine it",
            hint=f"add --managed-save to discard it too, or 'start {name}' to resume it first",
        )


# -- XML -------------------------------------------------------------------------------------
def public_xml(xml: str, *, security_info: bool) -> str:
    """*xml* without VNC/SPICE passwords unless *security_info* (as ``dumpxml``)."""
    from pyvirt.model.domain import Domain  # lazy

    dom = Domain.from_xml(xml)
    if not security_info:
        for g in dom.devices.graphics:
            if "passwd" in g.element.attrib:
                del g.element.attrib["passwd"]
    return dom.to_xml()


def _abi(mgr: DomainManager, dom: Domain) -> list[str]:
    """The QEMU argv of *dom* with its disk sources masked: two definitions with equal
    results run the same virtual hardware (what a migration stream needs)."""
    from pyvirt.drivers.qemu.argv import ArgvContext, build_argv  # lazy

    ctx = ArgvContext(
        run_dir=mgr.paths.domain_run_dir(dom.name),
        log_dir=mgr.paths.domain_log_dir(dom.name),
        vnc_display=0,
    )
    paths = [d.source_path for d in dom.devices.disks]
    out = []
    for arg in build_argv(dom, ctx):
        for i, path in enumerate(paths):
            if path:
                arg = arg.replace(path, f"@disk{i}@")
        out.append(arg)
    return out


def checked_xml(mgr: DomainManager, saved_xml: str, new_xml: str) -> str:
    """*new_xml* if it describes the same virtual hardware as *saved_xml* (disk sources may
    differ: moved or copied images); the XML to store or restore with.

    :raises InvalidConfigError: invalid, another domain, or other hardware
    """
    from pyvirt.model.domain import Domain  # lazy

    old, new = Domain.from_xml(saved_xml), Domain.from_xml(new_xml)
    if (new.name, new.uuid.lower()) != (old.name, old.uuid.lower()):
        raise InvalidConfigError(
            f"the XML describes domain '{new.name}', not '{old.name}' (uuid {old.uuid})",
            hint="keep the name and <uuid> of the saved domain",
        )
    if _abi(mgr, old) != _abi(mgr, new):
        raise InvalidConfigError(
            f"the XML does not describe the virtual hardware of domain '{old.name}' as it "
            "was saved",
            hint="only disk sources may change; start from 'save-image-dumpxml --security-info'",
        )
    return new.to_xml()


def fsync_dir(path: Path) -> None:
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# -- save image files --------------------------------------------------------------------------
def image_xml(path: Path, *, security_info: bool = False) -> str:
    """The domain XML stored in save image *path* (``save-image-dumpxml``)."""
    from pyvirt.drivers.qemu import saveimage  # lazy

    return public_xml(saveimage.read_header(Path(path)).xml, security_info=security_info)


def managed_xml(mgr: DomainManager, ident: str, *, security_info: bool = False) -> str:
    """The XML in domain *ident*'s managed save image (``managedsave-dumpxml``).

    :raises InvalidStateError: it has none
    """
    name = mgr.resolve(ident)
    path = managed_path(mgr, name)
    if not path.is_file():
        raise InvalidStateError(
            f"domain '{name}' has no managed save image",
            hint=f"create one with 'managedsave {name}'",
        )
    return image_xml(path, security_info=security_info)


def define_image(
    mgr: DomainManager, path: Path, xml: str | None, *, running: bool | None = None
) -> None:
    """Replace the XML (and/or the state to restore into) of save image *path*
    (``save-image-define``). The image is rewritten atomically next to itself.

    :raises InvalidConfigError: the XML describes other hardware
    """
    from pyvirt.drivers.qemu import saveimage  # lazy

    path = Path(path).absolute()
    header = saveimage.read_header(path)
    changes: dict[str, object] = {}
    if xml:
        changes["xml"] = checked_xml(mgr, header.xml, xml)
    if running is not None:
        changes["running"] = running
    new = header.with_(**changes)
    tmp = saveimage.temp_path(path)
    try:
        with open(path, "rb") as src, open(tmp, "xb") as dst:
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
            offset = saveimage.stream_offset_for(new)
            offset = max(offset, header.stream_offset)
            saveimage.write_header(dst.fileno(), new, offset)
            src.seek(header.stream_offset)
            dst.seek(offset)
            _copy(src.fileno(), dst.fileno(), header.stream_length)
            os.fsync(dst.fileno())
        os.rename(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy(src: int, dst: int, length: int) -> None:
    """Copy *length* bytes between the fds' offsets (in-kernel where possible)."""
    left = length
    while left > 0:
        try:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
        except OSError:
            n = os.write(dst, os.read(src, min(left, 1 << 20)))
        if n <= 0:
            raise OperationFailedError("the save image ended early while copying it")
        left -= n
