"""pyvirt: a virtualization manager for QEMU/KVM.

The public entry point is :func:`pyvirt.service.connection.open_connection`, which returns a
:class:`~pyvirt.service.connection.Connection`. Everything else is an implementation detail
of the layers described in ``docs/architecture.md``.
"""

__version__ = "0.1.0"
