"""Save and restore verbs of a domain (virsh's ``save``, ``managedsave``,
``managedsave-remove``, ``managedsave-dumpxml``); ``conn.domains.restore(file)`` and the
``save-image-*`` verbs are on :class:`~pyvirt.api.domains.DomainCollection`.

The image format and the guarantees (atomic file, the guest runs on after a failed save,
restore refuses changed disks) are described in :mod:`pyvirt.service.domain.save`. Long
verbs take an optional ``progress`` callback ``(done, total)`` and a
:class:`~pyvirt.progress.CancelToken`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.progress import CancelToken, Progress

__all__ = ["DomainSave"]

# lazy: function-local imports marked ``# lazy``: the save code (QMP, the image format) loads
# only for these verbs.


class DomainSave(DomainHandle):
    """Save/restore verbs of :class:`~pyvirt.api.domains.Domain`."""

    def save(
        self,
        path: str | Path,
        *,
        xml: str | None = None,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Save the running domain's state to the file *path* and stop it (``save``); it is
        then ``shut off (saved)``. The file is written atomically (0600).

        :param xml: store this XML instead of the live one (same hardware; disk paths may
            differ)
        :param running: restore into running (True) or paused (False); None: as it is now
        :param bypass_cache: drop the file from the host's page cache once written
        :param progress: called with (guest memory bytes done, total)
        :param cancel: cancels the save: the guest runs on, no file is left
        :raises InvalidStateError: it is not running
        :raises OperationFailedError: QEMU or the file system failed (the guest runs on)
        """
        from pyvirt.service.domain import save  # lazy

        save.save(self._domains, self._name, Path(path), xml=xml, running=running,
                  bypass_cache=bypass_cache, progress=progress, cancel=cancel)  # fmt: skip

    def managed_save(
        self,
        *,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Save the running domain's state where :meth:`start` finds it (``managedsave``).

        :param running: :meth:`start` resumes it running (True) or paused (False)
        """
        from pyvirt.service.domain import save  # lazy

        save.save(self._domains, self._name, None, running=running, bypass_cache=bypass_cache,
                  progress=progress, cancel=cancel)  # fmt: skip

    def has_managed_save(self) -> bool:
        """Whether a managed save image waits for :meth:`start`."""
        from pyvirt.service.domain import save_image  # lazy

        return save_image.has_managed_save(self._domains, self._name)

    def managed_save_remove(self) -> bool:
        """Discard the managed save image (``managedsave-remove``); the next start boots.

        :returns: whether there was one
        """
        from pyvirt.service.domain import save_image  # lazy

        return save_image.remove_managed(self._domains, self._name)

    def managed_save_xml(self, *, security_info: bool = False) -> str:
        """The domain XML in the managed save image (``managedsave-dumpxml``).

        :raises InvalidStateError: there is none
        """
        from pyvirt.service.domain import save_image  # lazy

        return save_image.managed_xml(self._domains, self._name, security_info=security_info)

    def managed_save_define(self, xml: str | None, *, running: bool | None = None) -> None:
        """Replace the XML and/or the state to resume into of the managed save image
        (``managedsave-define``).

        :raises InvalidStateError: there is none
        :raises InvalidConfigError: the XML describes other hardware
        """
        from pyvirt.service.domain import save_image  # lazy

        self.managed_save_xml()  # raises when there is none
        path = save_image.managed_path(self._domains, self._domains.resolve(self._name))
        save_image.define_image(self._domains, path, xml, running=running)
