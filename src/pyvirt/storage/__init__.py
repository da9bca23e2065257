"""Storage pools and volumes: backends (one module per pool type), qemu-img, file volumes.

:mod:`pyvirt.storage.base` is the contract, :mod:`pyvirt.storage.registry` finds backends;
the public API is :mod:`pyvirt.service.storage.pools`.
"""
