"""A minimal NFSv3 client in user space (ONC RPC over TCP), for pools without a kernel mount.

libnfs's command line tools can list and copy but not remove files, and a pool also needs the
server's free space and each file's real allocation. This module speaks just enough of the
protocols (RFC 5531 RPC with AUTH_UNIX, RFC 1833 portmapper, RFC 1813 MOUNT v3 and NFS v3) to:
list exports (:func:`exports`), list a directory with sizes, allocation and the first bytes of
each file (:meth:`NfsClient.listdir`), remove a file and read the file system's space.

As root it binds a reserved source port (below 1024), as servers with the ``secure`` export
option require.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyvirt.errors import HostCommandError, NotFoundError

PMAP_PROG, PMAP_VERS, PMAP_PORT = 100000, 2, 111
MOUNT_PROG, MOUNT_VERS = 100005, 3
NFS_PROG, NFS_VERS = 100003, 3
IPPROTO_TCP = 6
TIMEOUT = 20.0
#: NFS3 status codes worth naming
NFS3_ERRORS = {1: "not owner", 2: "no such file", 13: "permission denied", 17: "exists",
               20: "not a directory", 21: "is a directory", 28: "no space left",
               30: "read-only file system", 70: "stale file handle"}  # fmt: skip


class Packer:
    """XDR encoder."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def u32(self, value: int) -> Packer:
        self.buf += struct.pack(">I", value)
        return self

    def u64(self, value: int) -> Packer:
        self.buf += struct.pack(">Q", value)
        return self

    def opaque(self, data: bytes) -> Packer:
        self.u32(len(data))
        self.buf += data + b"\0" * (-len(data) % 4)
        return self

    def string(self, text: str) -> Packer:
        return self.opaque(text.encode())


class Unpacker:
    """XDR decoder."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        (value,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        (value,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def opaque(self) -> bytes:
        n = self.u32()
        data = self.data[self.pos : self.pos + n]
        self.pos += n + (-n % 4)
        return data

    def string(self) -> str:
        return self.opaque().decode(errors="replace")

    def skip(self, n: int) -> None:
        self.pos += n


@dataclass(frozen=True)
class Attributes:
    """The parts of an NFSv3 ``fattr3`` pyvirt uses."""

    type: int  # 1 regular file, 2 directory
    size: int
    used: int


def _fattr(u: Unpacker) -> Attributes:
    ftype = u.u32()
    u.skip(16)  # mode, nlink, uid, gid
    size, used = u.u64(), u.u64()
    u.skip(48)  # rdev, fsid, fileid, atime, mtime, ctime
    return Attributes(ftype, size, used)


def _post_op_attr(u: Unpacker) -> Attributes | None:
    return _fattr(u) if u.u32() else None


class RpcConnection:
    """One TCP connection to one RPC program, AUTH_UNIX as uid/gid 0 (or given)."""

    def __init__(self, host: str, port: int, prog: int, vers: int, *, uid: int, gid: int):
        self.host, self.prog, self.vers = host, prog, vers
        self.cred = Packer().u32(0).string("pyvirt").u32(uid).u32(gid).u32(0).buf
        self.sock = self._connect(host, port)
        self.xid = random.getrandbits(32)

    @staticmethod
    def _connect(host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        if os.geteuid() == 0:  # reserved port for servers exporting with 'secure'
            for local in random.sample(range(600, 1024), 30):
                try:
                    sock.bind(("", local))
                    break
                except OSError:
                    continue
        try:
            sock.connect((host, port))
        except OSError as err:
            sock.close()
            raise HostCommandError(f"cannot reach NFS server {host} port {port}: {err}") from err
        return sock

    def close(self) -> None:
        self.sock.close()

    def _recv(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise HostCommandError(f"NFS server {self.host} closed the connection")
            data += chunk
        return bytes(data)

    def call(self, proc: int, args: bytes = b"") -> Unpacker:
        """Call ``proc`` and return the decoder positioned at the results."""
        self.xid = (self.xid + 1) & 0xFFFFFFFF
        msg = Packer().u32(self.xid).u32(0).u32(2).u32(self.prog).u32(self.vers).u32(proc)
        msg.u32(1).opaque(bytes(self.cred)).u32(0).u32(0)
        body = bytes(msg.buf) + args
        try:
            self.sock.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
            reply = b""
            last = False
            while not last:
                (mark,) = struct.unpack(">I", self._recv(4))
                last = bool(mark & 0x80000000)
                reply += self._recv(mark & 0x7FFFFFFF)
        except OSError as err:
            raise HostCommandError(f"NFS server {self.host}: {err}") from err
        u = Unpacker(reply)
        xid, mtype, stat = u.u32(), u.u32(), u.u32()
        if xid != self.xid or mtype != 1 or stat != 0:
            raise HostCommandError(f"NFS server {self.host} denied the RPC call")
        u.u32()  # verifier flavor
        u.opaque()
        accept = u.u32()
        if accept != 0:
            raise HostCommandError(
                f"NFS server {self.host} does not accept program {self.prog} v{self.vers} "
                f"procedure {proc} (status {accept})"
            )
        return u


def getport(host: str, prog: int, vers: int) -> int:
    """The TCP port of ``prog``/``vers`` from the server's portmapper."""
    conn = RpcConnection(host, PMAP_PORT, PMAP_PROG, PMAP_VERS, uid=0, gid=0)
    try:
        port = conn.call(3, bytes(Packer().u32(prog).u32(vers).u32(IPPROTO_TCP).u32(0).buf)).u32()
    finally:
        conn.close()
    if port == 0:
        raise HostCommandError(f"NFS server {host} does not offer RPC program {prog} v{vers}")
    return port


def exports(host: str) -> list[str]:
    """The directories ``host`` exports (MOUNT EXPORT, like ``showmount -e``)."""
    conn = RpcConnection(host, getport(host, MOUNT_PROG, MOUNT_VERS), MOUNT_PROG, 3, uid=0, gid=0)
    try:
        u = conn.call(5)
        found: list[str] = []
        while u.u32():
            found.append(u.string())
            while u.u32():  # groups
                u.string()
        return found
    finally:
        conn.close()


def _status(u: Unpacker, what: str) -> None:
    status = u.u32()
    if status == 2:
        raise NotFoundError(f"{what}: no such file or directory on the NFS server")
    if status != 0:
        reason = NFS3_ERRORS.get(status, f"NFS error {status}")
        raise HostCommandError(f"{what}: {reason}")


@dataclass(frozen=True)
class Entry:
    """A directory entry with its attributes and first bytes (for format probing)."""

    name: str
    attrs: Attributes
    head: bytes


class NfsClient:
    """An NFSv3 session on one directory of one server (MOUNT, then NFS calls)."""

    def __init__(self, host: str, path: str, *, uid: int = 0, gid: int = 0) -> None:
        self.host, self.path = host, path.rstrip("/") or "/"
        mnt = RpcConnection(
            host, getport(host, MOUNT_PROG, MOUNT_VERS), MOUNT_PROG, 3, uid=uid, gid=gid
        )
        try:
            u = mnt.call(1, bytes(Packer().string(self.path).buf))
            status = u.u32()
            if status != 0:
                reason = NFS3_ERRORS.get(status, f"status {status}")
                raise HostCommandError(f"cannot mount '{host}:{self.path}': {reason}")
            self.root = u.opaque()
        finally:
            mnt.close()
        self.nfs = RpcConnection(
            host, getport(host, NFS_PROG, NFS_VERS), NFS_PROG, 3, uid=uid, gid=gid
        )

    def close(self) -> None:
        """Close the NFS connection (MOUNT is stateless enough not to need UMNT)."""
        self.nfs.close()

    def _dirop(self, name: str) -> bytes:
        return bytes(Packer().opaque(self.root).string(name).buf)

    def lookup(self, name: str) -> tuple[bytes, Attributes | None]:
        """File handle and attributes of ``name`` in the directory."""
        u = self.nfs.call(3, self._dirop(name))
        _status(u, f"'{self.path}/{name}'")
        fh = u.opaque()
        return fh, _post_op_attr(u)

    def read(self, fh: bytes, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes at ``offset``."""
        u = self.nfs.call(6, bytes(Packer().opaque(fh).u64(offset).u32(count).buf))
        _status(u, f"cannot read from '{self.path}'")
        _post_op_attr(u)
        u.u32()  # count
        u.u32()  # eof
        return u.opaque()

    def remove(self, name: str) -> None:
        """Remove the file ``name``."""
        u = self.nfs.call(12, self._dirop(name))
        _status(u, f"cannot remove '{self.path}/{name}'")

    def fsstat(self) -> tuple[int, int, int]:
        """``(total, free, available)`` bytes of the exported file system."""
        u = self.nfs.call(18, bytes(Packer().opaque(self.root).buf))
        _status(u, f"cannot read the space of '{self.path}'")
        _post_op_attr(u)
        return u.u64(), u.u64(), u.u64()

    def listdir(self, head: int = 0) -> list[Entry]:
        """Regular files of the directory (READDIRPLUS), with ``head`` first bytes each."""
        entries: list[Entry] = []
        cookie, verf, eof = 0, b"\0" * 8, False
        while not eof:
            args = Packer().opaque(self.root).u64(cookie)
            args.buf += verf
            args.u32(8192).u32(65536)
            u = self.nfs.call(17, bytes(args.buf))
            _status(u, f"cannot list '{self.path}'")
            _post_op_attr(u)
            verf = u.data[u.pos : u.pos + 8]
            u.skip(8)
            while u.u32():
                u.u64()  # fileid
                name = u.string()
                cookie = u.u64()
                attrs = _post_op_attr(u)
                fh = u.opaque() if u.u32() else None
                if name in (".", "..") or attrs is None or attrs.type != 1:
                    continue
                data = self.read(fh, 0, head) if head and fh is not None else b""
                entries.append(Entry(name, attrs, data))
            eof = bool(u.u32())
        return sorted(entries, key=lambda e: e.name)


@contextmanager
def session(host: str, path: str, *, uid: int = 0, gid: int = 0) -> Iterator[NfsClient]:
    """An :class:`NfsClient` closed on exit."""
    client = NfsClient(host, path, uid=uid, gid=gid)
    try:
        yield client
    finally:
        client.close()
