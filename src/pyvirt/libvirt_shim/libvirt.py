"""``import libvirt`` for programs written for libvirt-python: this module is
:mod:`pyvirt.libvirt`. Put this directory (``pyvirt libvirt-shim-path``) on ``PYTHONPATH``."""

import sys

import pyvirt.libvirt

sys.modules[__name__] = pyvirt.libvirt
