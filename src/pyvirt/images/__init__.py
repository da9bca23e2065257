"""Guest images pyvirt builds itself; for now the tiny test guest (:mod:`pyvirt.images.tiny`).

Modules: :mod:`~pyvirt.images.tiny` (build and cache), :mod:`~pyvirt.images.debian` (fetch
packages), :mod:`~pyvirt.images.modules` (kernel modules), :mod:`~pyvirt.images.cpio`
(initramfs writer); host tools run through :mod:`pyvirt.hostcmd`. The guest's ``init`` and
``udhcpc.sh`` scripts are package data files.
"""

from pyvirt.images.tiny import MARKER, TinyImage, build, default_image

__all__ = ["MARKER", "TinyImage", "build", "default_image"]
