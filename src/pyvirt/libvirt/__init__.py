"""libvirt-python's API on top of :mod:`pyvirt.api`: programs written for ``import libvirt``
run against pyvirt.

>>> from pyvirt import libvirt
>>> conn = libvirt.open("qemu:///system")     # pyvirtd if it runs, else embedded
>>> dom = conn.defineXML(xml)
>>> dom.create()
>>> dom.info()                                 # [state, maxMem, memory, vCPUs, cpuTime]

The classes (:class:`virConnect`, :class:`virDomain`, :class:`virDomainSnapshot`,
:class:`virNetwork`, :class:`virStoragePool`, :class:`virStorageVol`), :class:`libvirtError`,
the default event loop (:func:`virEventRegisterDefaultImpl`, :func:`virEventRunDefaultImpl`)
and the ``VIR_*`` constants (libvirt's values) carry libvirt-python's names. For a program
that cannot be edited, the directory ``pyvirt libvirt-shim-path`` prints holds a ``libvirt``
module that is this one: put it on ``PYTHONPATH`` (docs/libvirt-python.md).
"""

from __future__ import annotations

from pyvirt.libvirt.connect import (
    LIBVIR_VERSION,
    getVersion,
    open,
    openAuth,
    openReadOnly,
    virConnect,
)
from pyvirt.libvirt.constants import *  # noqa: F403 - the VIR_* constants
from pyvirt.libvirt.domain import virDomain, virDomainSnapshot
from pyvirt.libvirt.errors import (
    libvirtError,
    registerErrorHandler,
    virGetLastError,
    virGetLastErrorCode,
    virGetLastErrorMessage,
    virResetLastError,
)
from pyvirt.libvirt.events import (
    virEventAddHandle,
    virEventAddTimeout,
    virEventRegisterDefaultImpl,
    virEventRemoveHandle,
    virEventRemoveTimeout,
    virEventRunDefaultImpl,
    virEventUpdateHandle,
    virEventUpdateTimeout,
)
from pyvirt.libvirt.network import virNetwork
from pyvirt.libvirt.storage import virStoragePool, virStorageVol

__all__ = [
    "LIBVIR_VERSION",
    "getVersion",
    "libvirtError",
    "open",
    "openAuth",
    "openReadOnly",
    "registerErrorHandler",
    "virConnect",
    "virDomain",
    "virDomainSnapshot",
    "virEventAddHandle",
    "virEventAddTimeout",
    "virEventRegisterDefaultImpl",
    "virEventRemoveHandle",
    "virEventRemoveTimeout",
    "virEventRunDefaultImpl",
    "virEventUpdateHandle",
    "virEventUpdateTimeout",
    "virGetLastError",
    "virGetLastErrorCode",
    "virGetLastErrorMessage",
    "virNetwork",
    "virResetLastError",
    "virStoragePool",
    "virStorageVol",
]
