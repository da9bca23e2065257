"""Typed QMP commands about block devices: nodes, media, statistics, resizing."""

from __future__ import annotations

from pyvirt.drivers.qemu.monitor.base import Args, Commands, prune
from pyvirt.drivers.qemu.monitor.types import BlockDevice, BlockNode, BlockStats


class BlockCommands(Commands):
    """``blockdev-add``/``-del``, ``query-named-block-nodes``, ``query-block``, media."""

    def blockdev_add(self, props: Args) -> None:
        """Add one block node; *props* as ``-blockdev`` in JSON form (``driver``,
        ``node-name``...; ``None`` members are left out), e.g. from the disk lowering.

        :raises QmpCommandError: QEMU cannot open it
        """
        if "driver" not in props or "node-name" not in props:
            raise TypeError("blockdev_add needs 'driver' and 'node-name' properties")
        self._call("blockdev-add", prune(props))

    def add_fd(self, fd: int, *, fdset_id: int | None = None, opaque: str | None = None) -> int:
        """Pass open *fd* into an fd set (``add-fd``); QEMU opens ``/dev/fdset/N`` from it
        without touching the file system (an unprivileged QEMU gets a file it may not open).

        :returns: the fd set's id
        """
        self._send_fd(fd)
        reply = self._call("add-fd", {"fdset-id": fdset_id, "opaque": opaque})
        return int(reply["fdset-id"])

    def remove_fd(self, fdset_id: int) -> None:
        """Drop fd set *fdset_id* (QEMU closes its fds once no block node uses them)."""
        self._call("remove-fd", {"fdset-id": fdset_id})

    def query_fdsets(self) -> list[tuple[int, str]]:
        """The fd sets: (id, opaque string of its first fd or "")."""
        out = []
        for fdset in self._call("query-fdsets"):
            fds = fdset.get("fds") or [{}]
            out.append((int(fdset["fdset-id"]), str(fds[0].get("opaque", ""))))
        return out

    def blockdev_del(self, node_name: str) -> None:
        """Remove block node *node_name* (refused while a device or node uses it)."""
        self._call("blockdev-del", {"node-name": node_name})

    def query_named_block_nodes(self, *, flat: bool = True) -> list[BlockNode]:
        """Every named block node (*flat*: without nested backing chains)."""
        reply = self._call("query-named-block-nodes", {"flat": flat})
        return [BlockNode.from_wire(n) for n in reply]

    def query_block(self) -> list[BlockDevice]:
        """Every guest block device (drive), with whether it is removable."""
        return [BlockDevice.from_wire(b) for b in self._call("query-block")]

    def query_blockstats(self, *, query_nodes: bool = False) -> list[BlockStats]:
        """I/O counters per guest block device (*query_nodes*: per node instead)."""
        reply = self._call("query-blockstats", {"query-nodes": query_nodes})
        return [BlockStats.from_wire(s) for s in reply]

    def block_resize(self, node_name: str, size: int) -> None:
        """Grow (or shrink) the image under node *node_name* to *size* bytes."""
        self._call("block_resize", {"node-name": node_name, "size": size})

    def blockdev_change_medium(self, id: str, filename: str, *, format: str = "raw") -> None:
        """Insert the image *filename* into removable drive *id* (ejecting what is in it)."""
        self._call("blockdev-change-medium", {"id": id, "filename": filename, "format": format})

    def eject(self, id: str, *, force: bool = False) -> None:
        """Eject the medium of removable drive *id* (*force*: even if the guest locked it)."""
        self._call("eject", {"id": id, "force": force})
