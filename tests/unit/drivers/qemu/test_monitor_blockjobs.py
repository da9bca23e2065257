"""The block job QMP commands: what they send and how replies are read (a fake session)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Args, prune
from pyvirt.drivers.qemu.monitor.blockjobs import BlockJobCommands, ChainImage


class Fake(BlockJobCommands):
    def __init__(self, replies: dict[str, Any]) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.replies = replies

    def _call(self, cmd: str, args: Args | None = None) -> Any:
        self.sent.append((cmd, prune(args or {})))
        return self.replies.get(cmd, {})

    def _call_until(
        self, cmd: str, args: Args, *, event: str, match: Mapping[str, str], timeout: float
    ) -> dict[str, Any] | None:
        self.sent.append((cmd, {"event": event, **match}))
        return {"event": event} if event == "BLOCK_JOB_COMPLETED" else None


def test_jobs_start_without_auto_dismiss_and_leave_out_defaults() -> None:
    mon = Fake({})
    mon.block_commit("vda", "virtio-disk0-format", base_node="#block12", speed=0)
    mon.block_stream("vdb", "virtio-disk1-format")
    mon.drive_mirror("vdc", "root", "/t.qcow2", format="qcow2", shallow=True, speed=1024)
    assert mon.sent == [
        ("block-commit", {"job-id": "vda", "device": "virtio-disk0-format",
                          "base-node": "#block12", "auto-dismiss": False}),
        ("block-stream", {"job-id": "vdb", "device": "virtio-disk1-format",
                          "auto-dismiss": False}),
        ("drive-mirror", {"job-id": "vdc", "device": "root", "target": "/t.qcow2",
                          "format": "qcow2", "sync": "top", "mode": "existing", "speed": 1024,
                          "auto-dismiss": False}),
    ]  # fmt: skip


def test_job_list_joins_speeds_and_reads_states() -> None:
    mon = Fake({
        "query-block-jobs": [{"device": "vda", "speed": 1048576}],
        "query-jobs": [
            {"id": "vda", "type": "mirror", "status": "ready", "current-progress": 5,
             "total-progress": 5},
            {"id": "vdb", "type": "commit", "status": "concluded", "current-progress": 1,
             "total-progress": 9, "error": "No space left on device"},
        ],
    })  # fmt: skip
    a, b = mon.query_block_job_list()
    assert (a.speed, a.ready, a.concluded, a.done, a.total) == (1048576, True, False, 5, 5)
    assert (b.speed, b.ready, b.concluded, b.error) == (0, False, True, "No space left on device")


def test_one_block_job_is_one_query_with_its_error() -> None:
    mon = Fake({
        "query-block-jobs": [
            {"device": "vda", "type": "mirror", "status": "ready", "offset": 5, "len": 5,
             "speed": 1048576, "ready": True},
            {"device": "vdb", "type": "commit", "status": "concluded", "offset": 1, "len": 9,
             "error": "No space left on device"},
        ],
    })  # fmt: skip
    a, b = mon.block_job("vda"), mon.block_job("vdb")
    assert a is not None and b is not None and mon.block_job("vdc") is None
    assert (a.type, a.speed, a.ready, a.concluded, a.done, a.total) == (
        "mirror", 1048576, True, False, 5, 5)  # fmt: skip
    assert (b.ready, b.concluded, b.done, b.total, b.error) == (
        False, True, 1, 9, "No space left on device")  # fmt: skip
    assert [cmd for cmd, _ in mon.sent] == ["query-block-jobs"] * 3


def test_chains_and_the_pivot_event() -> None:
    image = {"filename": "/t.qcow2", "format": "qcow2",
             "backing-image": {"filename": "/b.raw", "format": "raw"}}  # fmt: skip
    mon = Fake({"query-block": [
        {"qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
         "inserted": {"node-name": "virtio-disk0-format", "image": image}},
        {"qdev": "ide0-cd0"},
    ]})  # fmt: skip
    chains = mon.block_chains()
    assert chains == {
        "/machine/peripheral/virtio-disk0/virtio-backend": (
            "virtio-disk0-format",
            [ChainImage("/t.qcow2", "qcow2"), ChainImage("/b.raw", "raw")],
        )
    }
    assert mon.block_job_complete_wait("vda", 5.0)
    assert not mon.wait_job_change("vda", 0.1)
    assert mon.sent[-2:] == [
        ("block-job-complete", {"event": "BLOCK_JOB_COMPLETED", "device": "vda"}),
        ("query-jobs", {"event": "JOB_STATUS_CHANGE", "id": "vda"}),
    ]
