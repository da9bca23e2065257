"""``<filesystem>``: a host directory shared with the guest (virtio-9p, or virtiofs)."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, flag, int_attr

#: libvirt's filesystem types (QEMU guests use ``mount``; the others are LXC's or unused)
FS_TYPES = ("mount", "block", "file", "template", "ram", "bind", "volume")
#: how the guest's file owners and modes map to the host's
ACCESS_MODES = ("passthrough", "mapped", "squash")
#: ``<driver type>``: ``path`` (QEMU's ``local`` 9p backend), ``handle``, ``virtiofs``...
DRIVER_TYPES = ("path", "handle", "loop", "nbd", "ploop", "virtiofs")
#: virtio device models
FS_MODELS = ("virtio", "virtio-transitional", "virtio-non-transitional")
#: 9p's handling of several host devices under the shared directory
MULTIDEVS = ("default", "remap", "forbid", "warn")


@register_device("filesystem")
class Filesystem(Device):
    """``<filesystem type accessmode><driver/><source dir/><target dir/><readonly/></filesystem>``.

    ``target_dir`` is not a guest path but the tag the guest mounts (``mount -t 9p TAG``).
    """

    ORDER = ("driver", "binary", "idmap", "source", "target", "readonly",
             "space_hard_limit", "space_soft_limit", "boot", "alias", "address")  # fmt: skip
    #: virtiofsd settings and 9p's virtio options, read by the argv lowering
    EXTRA_KNOWN = (
        "binary/lock", "binary/lock@posix",
        "binary/lock@flock", "binary/thread_pool", "binary/thread_pool@size",
        "driver@iommu", "driver@ats", "driver@packed", "driver@page_per_vq",
        "source@socket", "source@file", "source@name",
    )  # fmt: skip

    type = attr("type", choices=FS_TYPES)
    accessmode = attr("accessmode", choices=ACCESS_MODES)
    model = attr("model", choices=FS_MODELS)
    multidevs = attr("multidevs", choices=MULTIDEVS)
    fmode = attr("fmode")
    dmode = attr("dmode")
    driver_type = attr("type", "driver", choices=DRIVER_TYPES)
    driver_format = attr("format", "driver")
    wrpolicy = attr("wrpolicy", "driver", choices=("immediate",))
    queue = int_attr("queue", "driver")
    source_dir = attr("dir", "source")
    target_dir = attr("dir", "target")
    readonly = flag("readonly")
    boot_order = int_attr("order", "boot")
    #: virtiofs: the virtiofsd to run (``<binary path>``), its cache mode, xattr, sandbox
    binary_path = attr("path", "binary")
    binary_xattr = attr("xattr", "binary", choices=("on", "off"))
    cache_mode = attr("mode", "binary/cache", choices=("none", "always", "auto", "metadata"))
    sandbox_mode = attr("mode", "binary/sandbox", choices=("namespace", "chroot"))

    @property
    def virtiofs(self) -> bool:
        """Whether this share goes through virtiofs (vhost-user-fs) instead of 9p."""
        return self.driver_type == "virtiofs"
