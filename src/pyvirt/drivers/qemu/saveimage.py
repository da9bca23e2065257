"""pyvirt's save image format: a header with the domain XML, then QEMU's migration stream.

``save``, ``managedsave`` and ``restore`` (:mod:`pyvirt.service.domain.save`) write and read
these files; ``save-image-dumpxml`` and ``save-image-define`` read and replace the XML. The
format is pyvirt's own (libvirt's is similar in spirit, not compatible). Layout, all integers
little-endian::

    offset 0   16 bytes  magic b"PYVIRT-SAVEIMG\\n\\0"
          16    u32      format version (1)
          20    u32      CRC-32 of the metadata bytes
          24    u64      metadata length N
          32    u64      stream offset S (a multiple of 4096, >= 64 + N)
          40   24 bytes  zero
          64    N bytes  metadata: UTF-8 JSON, see :class:`SaveHeader`
      64 + N    ...      zero padding up to S
           S    L bytes  QEMU's migration stream (``migrate fd:``), L = ``stream_length``

The metadata holds the domain XML (the live definition at save time), the state to restore
into (running or paused), when it was saved, the stream's length, and a fingerprint of each
writable disk (path, format, size and modification time after QEMU let go of it): a restore
refuses when a disk is gone or was changed since, because the guest's memory would no longer
match what is on its disks.

A save writes a temporary file next to the target and renames it into place once the stream
is complete, the header final and both fsync'ed: a killed save leaves no half file under the
target name (:func:`temp_path` names the temporary files, :func:`remove_stale_temps` removes
those of dead savers).

This module does file I/O only; it knows nothing of QMP.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pyvirt.errors import InvalidConfigError

MAGIC = b"PYVIRT-SAVEIMG\n\0"
VERSION = 1
_FIXED = struct.Struct("<16sIIQQ24x")
HEADER_SIZE = _FIXED.size  # 64
ALIGN = 4096
#: room left after the metadata, so the final header (disk fingerprints, stream length) and
#: a ``save-image-define`` with a slightly longer XML fit without moving the stream
RESERVE = 64 * 1024

__all__ = [
    "DiskStamp",
    "SaveHeader",
    "SaveImageError",
    "read_header",
    "stream_offset_for",
    "temp_path",
    "write_header",
]


class SaveImageError(InvalidConfigError):
    """The file is not a (complete, intact) pyvirt save image."""


@dataclass(frozen=True)
class DiskStamp:
    """What a writable disk looked like when the state was saved.

    :ivar target: the guest's name of the disk (``vda``)
    :ivar path: its source file or block device
    :ivar size: its size in bytes (file size, or block device size)
    :ivar mtime_ns: its modification time (files only; None for block devices)
    """

    target: str
    path: str
    size: int
    mtime_ns: int | None = None

    @classmethod
    def of(cls, target: str, path: str) -> DiskStamp:
        """Fingerprint *path* now.

        :raises OSError: it cannot be examined
        """
        st = os.stat(path)
        if os.path.isfile(path):
            return cls(target, path, st.st_size, st.st_mtime_ns)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
        return cls(target, path, size, None)

    def mismatch(self) -> str | None:
        """Why the disk no longer matches the fingerprint (None: it still does)."""
        try:
            now = DiskStamp.of(self.target, self.path)
        except OSError as err:
            return f"disk '{self.target}' ({self.path}) is not accessible: {err.strerror or err}"
        if now.size != self.size:
            return (
                f"disk '{self.target}' ({self.path}) is {now.size} bytes, "
                f"but was {self.size} when the state was saved"
            )
        if self.mtime_ns is not None and now.mtime_ns != self.mtime_ns:
            return f"disk '{self.target}' ({self.path}) was modified after the state was saved"
        return None


@dataclass(frozen=True)
class SaveHeader:
    """The metadata of a save image.

    :ivar xml: the domain XML to restore with
    :ivar running: restore into running (True) or paused (False) state
    :ivar saved_at: when it was saved (seconds since the epoch)
    :ivar stream_length: bytes of the migration stream (0 while the save is under way)
    :ivar disks: fingerprints of the writable disks (empty while the save is under way)
    :ivar stream_offset: where the stream starts (set by :func:`read_header`)
    """

    xml: str
    running: bool = True
    saved_at: float = field(default_factory=time.time)
    stream_length: int = 0
    disks: tuple[DiskStamp, ...] = ()
    stream_offset: int = 0

    def metadata(self) -> bytes:
        """The metadata as it is stored (JSON)."""
        data = asdict(self)
        del data["stream_offset"]
        data["disks"] = [asdict(d) for d in self.disks]
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_metadata(cls, raw: bytes, *, stream_offset: int, path: Path) -> SaveHeader:
        """Parse stored metadata.

        :raises SaveImageError: it is not the expected JSON
        """
        try:
            data = json.loads(raw)
            disks = tuple(DiskStamp(**d) for d in data.get("disks", []))
            header = cls(
                xml=str(data["xml"]),
                running=bool(data.get("running", True)),
                saved_at=float(data.get("saved_at", 0.0)),
                stream_length=int(data["stream_length"]),
                disks=disks,
                stream_offset=stream_offset,
            )
        except (ValueError, KeyError, TypeError) as err:
            raise SaveImageError(f"save image '{path}' has a corrupt header ({err})") from None
        return header

    def with_(self, **changes: Any) -> SaveHeader:
        """A copy with *changes*."""
        return replace(self, **changes)


def stream_offset_for(header: SaveHeader) -> int:
    """Where the stream of a new image with *header* starts: after the metadata and
    :data:`RESERVE` bytes of room, aligned to 4096."""
    end = HEADER_SIZE + len(header.metadata()) + RESERVE
    return (end + ALIGN - 1) // ALIGN * ALIGN


def write_header(fd: int, header: SaveHeader, stream_offset: int) -> None:
    """Write *header* at the start of open file *fd* (``pwrite``; the offset is unchanged).

    :raises SaveImageError: the metadata does not fit before *stream_offset*
    """
    meta = header.metadata()
    if HEADER_SIZE + len(meta) > stream_offset:
        raise SaveImageError(
            f"the new header ({len(meta)} bytes) does not fit in the save image "
            f"({stream_offset - HEADER_SIZE} bytes of room)",
            hint="shorten the XML",
        )
    fixed = _FIXED.pack(MAGIC, VERSION, zlib.crc32(meta), len(meta), stream_offset)
    pad = b"\0" * (stream_offset - HEADER_SIZE - len(meta))
    data = fixed + meta + pad
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)


def read_header(path: Path) -> SaveHeader:
    """Read and check the header of the save image at *path*.

    :raises NotFoundError: no such file
    :raises SaveImageError: not a pyvirt save image, from a newer pyvirt, corrupt, or
        truncated (an interrupted copy)
    """
    from pyvirt.errors import NotFoundError

    try:
        with open(path, "rb") as f:
            fixed = f.read(HEADER_SIZE)
            size = os.fstat(f.fileno()).st_size
            if len(fixed) < HEADER_SIZE or fixed[:16] != MAGIC:
                raise SaveImageError(
                    f"'{path}' is not a pyvirt save image",
                    hint="give a file written by 'pyvirt save'",
                )
            _, version, crc, meta_len, offset = _FIXED.unpack(fixed)
            if version > VERSION:
                raise SaveImageError(
                    f"save image '{path}' has format {version}, newer than this pyvirt's "
                    f"({VERSION})",
                    hint="restore it with the pyvirt that saved it",
                )
            if meta_len > offset - HEADER_SIZE or offset > size:
                raise SaveImageError(f"save image '{path}' is truncated or corrupt")
            meta = f.read(meta_len)
    except FileNotFoundError:
        raise NotFoundError(f"save image '{path}' does not exist") from None
    except IsADirectoryError:
        raise SaveImageError(f"'{path}' is a directory, not a save image") from None
    except PermissionError as err:
        raise SaveImageError(f"cannot read save image '{path}': {err.strerror}") from None
    if len(meta) != meta_len or zlib.crc32(meta) != crc:
        raise SaveImageError(f"save image '{path}' has a corrupt header (checksum mismatch)")
    header = SaveHeader.from_metadata(meta, stream_offset=offset, path=path)
    if header.stream_length <= 0 or offset + header.stream_length != size:
        raise SaveImageError(
            f"save image '{path}' is truncated or corrupt: {size - offset} bytes of state, "
            f"expected {header.stream_length}"
        )
    return header


def temp_path(target: Path) -> Path:
    """The temporary file a save to *target* writes first (hidden, named after the saver)."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def remove_stale_temps(target: Path) -> None:
    """Remove temporary files of saves to *target* whose saver died (killed mid-save)."""
    with contextlib.suppress(OSError):
        for entry in target.parent.glob(f".{target.name}.*.tmp"):
            pid = entry.name[len(target.name) + 2 : -4]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    entry.unlink()
