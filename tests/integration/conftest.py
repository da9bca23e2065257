"""Fixtures for integration tests that boot the tiny test guest under QEMU TCG."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pyvirt.errors import UnsupportedError
from pyvirt.images.tiny import TinyImage, default_image

#: Kernel parameters that make the tiny guest boot faster under TCG without changing what the
#: tests look at (virtio disks and NICs, DHCP, the serial console, the ACPI power button): no
#: speculation mitigations (retpolines cost a lot under TCG), no crypto self-tests, no LSMs or
#: audit, no timer or TSC checks. About a fifth less CPU time per boot.
FAST_BOOT = "mitigations=off cryptomgr.notests no_timer_check tsc=reliable audit=0 security=none"
#: The usual command line of the tiny guest in test domains (append ``pyvirt.run=`` etc.).
TINY_CMDLINE = f"console=ttyS0 quiet panic=-1 {FAST_BOOT}"

#: Host tools the image builder runs.
BUILD_TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "depmod")


def _test_cache_dir() -> Path:
    env = os.environ.get("PYVIRT_CACHE_DIR")
    return Path(env) if env else Path("/var/cache/pyvirt-test/images/tiny")


@pytest.fixture(scope="session")
def qemu_binary() -> str:
    """Path of qemu-system-x86_64; skips the test when QEMU is not installed."""
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    return path


@pytest.fixture(scope="session")
def tiny_image() -> TinyImage:
    """The tiny test guest, built once into the test cache and reused across runs.

    The cache is ``$PYVIRT_CACHE_DIR`` or ``/var/cache/pyvirt-test/images/tiny``. Skips when the
    apt/dpkg/kmod tools the builder needs are missing.
    """
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"cannot build the tiny image: {', '.join(missing)} not installed")
    try:
        return default_image(_test_cache_dir())
    except UnsupportedError as err:
        pytest.skip(f"cannot build the tiny image: {err} ({err.hint})")
