"""``<pool>``: a storage pool definition (libvirt's storage pool XML).

Like the domain model, a :class:`Pool` is a lossless view over its element tree: elements
pyvirt does not understand stay in place and are listed in :attr:`Pool.warnings`.
"""

from __future__ import annotations

import re

from pyvirt.errors import Problem
from pyvirt.model.volume import Permissions, byte_size
from pyvirt.model.xmlmap import (
    XmlDocument,
    XmlNode,
    attr,
    child,
    children,
    int_attr,
    parse_xml,
    text,
)

#: every pool type libvirt's XML knows; which ones pyvirt runs is the backend registry's call
POOL_TYPES = (
    "dir", "fs", "netfs", "logical", "disk", "iscsi", "iscsi-direct", "scsi", "mpath", "rbd",
    "sheepdog", "gluster", "zfs", "vstorage",
)  # fmt: skip
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class SourceHost(XmlNode):
    """``<host name=... port=...>``."""

    TAG = "host"
    name = attr("name")
    port = int_attr("port")


class SourceDevice(XmlNode):
    """``<device path=...>`` (with libvirt's ``<freeExtent>`` children kept)."""

    TAG = "device"
    EXTRA_KNOWN = ("freeExtent", "freeExtent@start", "freeExtent@end", "@part_separator")
    path = attr("path")


class PoolSource(XmlNode):
    """``<source>``: where the pool's data comes from (host, dir, devices, name, format)."""

    TAG = "source"
    ORDER = (
        "host", "device", "dir", "adapter", "name", "format", "initiator", "auth", "vendor",
        "product",
    )  # fmt: skip
    EXTRA_KNOWN = (
        "adapter", "adapter/*", "adapter@*", "initiator", "initiator/iqn", "initiator/iqn@name",
        "auth/secret", "auth/secret@usage", "auth/secret@uuid", "auth/secret@type",
        "protocol", "protocol@ver",
    )  # fmt: skip
    hosts = children("host", SourceHost)
    devices = children("device", SourceDevice)
    dir = attr("path", "dir")
    name = text("name")
    format = attr("type", "format")
    auth_type = attr("type", "auth")
    auth_username = attr("username", "auth")
    auth_secret_usage = attr("usage", "auth/secret")
    vendor = attr("name", "vendor")
    product = attr("name", "product")
    initiator_iqn = attr("name", "initiator/iqn")

    @property
    def host(self) -> str | None:
        """The first ``<host name>``."""
        hosts = self.hosts
        return hosts[0].name if hosts else None

    @property
    def device(self) -> str | None:
        """The first ``<device path>``."""
        devs = self.devices
        return devs[0].path if devs else None


class PoolTarget(XmlNode):
    """``<target>``: where volumes appear on the host."""

    TAG = "target"
    ORDER = ("path", "permissions")
    path = text("path")
    permissions = child("permissions", Permissions)


class Pool(XmlDocument):
    """A storage pool definition: a typed, lossless view over a ``<pool>`` element tree."""

    TAG = "pool"
    WHAT = "pool XML"
    GENERATE_UUID = True
    ORDER = ("name", "uuid", "capacity", "allocation", "available", "source", "target")
    type = attr("type", default="")
    name = text("name", default="")
    uuid = text("uuid", default="")
    capacity = byte_size("capacity")
    allocation = byte_size("allocation")
    available = byte_size("available")
    source = child("source", PoolSource)
    target = child("target", PoolTarget)

    @property
    def target_path(self) -> str | None:
        """``<target><path>``."""
        return self.target.path if self.target is not None else None

    def ensure_source(self) -> PoolSource:
        """The ``<source>`` element, created when absent."""
        if self.source is None:
            self.source = PoolSource()
        assert self.source is not None
        return self.source

    def ensure_target(self) -> PoolTarget:
        """The ``<target>`` element, created when absent."""
        if self.target is None:
            self.target = PoolTarget()
        assert self.target is not None
        return self.target

    def validate(self) -> list[Problem]:
        """Every problem in this definition (empty when valid)."""
        problems = self.field_problems()
        if problems:
            return problems
        if not self.type:
            problems.append(Problem("<pool>", "a pool needs a type attribute"))
        elif self.type not in POOL_TYPES:
            problems.append(
                Problem("<pool>", f"type '{self.type}' is not one of " + ", ".join(POOL_TYPES))
            )
        if not self.name:
            problems.append(Problem("<pool>/<name>", "a pool needs a name"))
        elif "/" in self.name or self.name in (".", "..") or self.name.startswith("."):
            problems.append(
                Problem(
                    "<pool>/<name>",
                    f"pool name '{self.name}' must not contain '/' or start with '.'",
                )
            )
        if self.uuid and not _UUID.match(self.uuid):
            problems.append(Problem("<pool>/<uuid>", f"'{self.uuid}' is not a UUID"))
        path = self.target_path
        if path is not None and not path.startswith("/"):
            problems.append(Problem("<pool>/<target>/<path>", f"'{path}' is not an absolute path"))
        src = self.source
        if src is not None:
            for i, dev in enumerate(src.devices, start=1):
                if not dev.path:
                    problems.append(Problem(f"<pool>/<source>/<device>[{i}]", "needs a path"))
            for i, host in enumerate(src.hosts, start=1):
                if not host.name:
                    problems.append(Problem(f"<pool>/<source>/<host>[{i}]", "needs a name"))
        return problems


def new_pool(name: str, pool_type: str) -> Pool:
    """A fresh indented ``<pool>`` (as ``pool-define-as`` builds it)."""
    root = parse_xml("<pool>\n  <name/>\n</pool>")
    pool = Pool(root)
    pool.type = pool_type
    pool.name = name
    return pool
