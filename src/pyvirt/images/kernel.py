"""Turning the distribution's compressed ``vmlinuz`` into a kernel that boots fast under TCG.

A bzImage decompresses itself inside the guest, which under TCG costs several seconds. QEMU can
instead load the uncompressed ELF ``vmlinux`` directly through the PVH entry point (kernels with
``CONFIG_PVH=y``), so the builder extracts it at build time, as ``scripts/extract-vmlinux``
does: find the compressed payload by its magic bytes and decompress it.
"""

from __future__ import annotations

import logging
import lzma
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ELF_MAGIC = b"\x7fELF"


def _candidates(data: bytes, magic: bytes) -> list[int]:
    offsets: list[int] = []
    start = data.find(magic)
    while start != -1 and len(offsets) < 8:
        offsets.append(start)
        start = data.find(magic, start + 1)
    return offsets


def _decompress(data: bytes) -> bytes | None:
    for offset in _candidates(data, _XZ_MAGIC):
        try:
            out = lzma.LZMADecompressor().decompress(data[offset:])
        except lzma.LZMAError:
            continue
        if out.startswith(_ELF_MAGIC):
            return out
    for offset in _candidates(data, _GZIP_MAGIC):
        try:
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[offset:])
        except zlib.error:
            continue
        if out.startswith(_ELF_MAGIC):
            return out
    return None


def pvh_enabled(config: Path) -> bool:
    """Whether the kernel ``config-*`` file says ``CONFIG_PVH=y``."""
    return config.is_file() and "\nCONFIG_PVH=y\n" in config.read_text()


def extract_vmlinux(vmlinuz: Path, output: Path) -> bool:
    """Write the uncompressed ELF kernel inside bzImage *vmlinuz* to *output*.

    Handles xz and gzip payloads (what Debian uses); returns ``False``, writing nothing, for
    any other compression so the caller can fall back to the bzImage.
    """
    elf = _decompress(vmlinuz.read_bytes())
    if elf is None:
        log.warning("no xz or gzip ELF payload found in %s; keeping the bzImage", vmlinuz)
        return False
    output.write_bytes(elf)
    return True
