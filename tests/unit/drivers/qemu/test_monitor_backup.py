"""The checkpoint and backup QMP commands: what they send and how replies are read (a fake
session)."""

from __future__ import annotations

from typing import Any

from pyvirt.drivers.qemu.monitor.backup import (
    BackupCommands,
    tx_backup,
    tx_bitmap_add,
    tx_bitmap_disable,
    tx_bitmap_enable,
    tx_bitmap_merge,
    tx_bitmap_remove,
)
from pyvirt.drivers.qemu.monitor.base import Args, prune


class Fake(BackupCommands):
    def __init__(self, replies: dict[str, Any]) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.replies = replies

    def _call(self, cmd: str, args: Args | None = None) -> Any:
        self.sent.append((cmd, prune(args or {})))
        return self.replies.get(cmd, {})


def test_one_transaction_of_bitmaps_and_jobs() -> None:
    mon = Fake({})
    mon.transaction([
        tx_bitmap_add("n", "c2"),
        tx_bitmap_disable("n", "c1"),
        tx_bitmap_add("n", "tmp", persistent=False, disabled=True),
        tx_bitmap_merge("n", "tmp", ["c1", "c2"]),
        tx_backup("backup-vda", "n", "t", sync="incremental", bitmap="tmp"),
        tx_backup("backup-vdb", "m", "s", sync="none"),
    ])  # fmt: skip
    ((cmd, args),) = mon.sent
    assert cmd == "transaction"
    assert [(a["type"], a["data"]) for a in args["actions"]] == [
        ("block-dirty-bitmap-add", {"node": "n", "name": "c2", "persistent": True,
                                    "disabled": False}),
        ("block-dirty-bitmap-disable", {"node": "n", "name": "c1"}),
        ("block-dirty-bitmap-add", {"node": "n", "name": "tmp", "persistent": False,
                                    "disabled": True}),
        ("block-dirty-bitmap-merge", {"node": "n", "target": "tmp", "bitmaps": ["c1", "c2"]}),
        ("blockdev-backup", {"job-id": "backup-vda", "device": "n", "target": "t",
                             "sync": "incremental", "auto-dismiss": False, "bitmap": "tmp"}),
        ("blockdev-backup", {"job-id": "backup-vdb", "device": "m", "target": "s",
                             "sync": "none", "auto-dismiss": False}),
    ]  # fmt: skip
    assert tx_bitmap_enable("n", "c")["type"] == "block-dirty-bitmap-enable"
    assert tx_bitmap_remove("n", "c")["data"] == {"node": "n", "name": "c"}


def test_bitmaps_read_per_node() -> None:
    mon = Fake({"query-named-block-nodes": [
        {"node-name": "fmt", "dirty-bitmaps": [
            {"name": "c1", "count": 65536, "granularity": 65536, "recording": False,
             "persistent": True, "inconsistent": True, "busy": False}]},
        {"node-name": "file"},
    ]})  # fmt: skip
    got = mon.dirty_bitmaps()
    assert got["file"] == []
    (bm,) = got["fmt"]
    assert (bm.name, bm.count, bm.recording, bm.inconsistent) == ("c1", 65536, False, True)
    assert mon.sent == [("query-named-block-nodes", {"flat": True})]


def test_nbd_server_and_exports() -> None:
    mon = Fake({})
    mon.nbd_server_start_unix("/run/b.sock")
    mon.nbd_server_start_tcp("localhost", 10809)
    mon.nbd_export_add("backup-vda", "scratch", "vda", bitmaps=["backup-vda"])
    mon.nbd_export_add("backup-vdb", "scratch2", "vdb")
    mon.block_export_del("backup-vda")
    mon.nbd_server_stop()
    assert mon.sent == [
        ("nbd-server-start", {"addr": {"type": "unix", "data": {"path": "/run/b.sock"}}}),
        ("nbd-server-start", {"addr": {"type": "inet",
                                       "data": {"host": "localhost", "port": "10809"}}}),
        ("block-export-add", {"type": "nbd", "id": "backup-vda", "node-name": "scratch",
                              "name": "vda", "writable": False, "bitmaps": ["backup-vda"]}),
        ("block-export-add", {"type": "nbd", "id": "backup-vdb", "node-name": "scratch2",
                              "name": "vdb", "writable": False}),
        ("block-export-del", {"id": "backup-vda", "mode": "hard"}),
        ("nbd-server-stop", {}),
    ]  # fmt: skip
