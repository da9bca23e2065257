"""virt-install's job, rebuilt: turn ``pyvirt install`` options into a domain definition.

Pure parts (no I/O): :mod:`~pyvirt.install.options` parses virt-install's comma syntax into an
:class:`~pyvirt.install.spec.InstallSpec`, :mod:`~pyvirt.install.osinfo` holds the OS variant
table, :mod:`~pyvirt.install.xmlgen` builds the XML through the model classes. Media handling
(:mod:`~pyvirt.install.media`: kernel/initrd in ``--location`` trees and ISOs, ``detect=on``)
and :mod:`~pyvirt.install.cloudinit` (NoCloud seed ISOs) read and write files. The use case
itself (checks, disk creation, define, start, wait) is :mod:`pyvirt.service.install.manager`.
"""
