"""The snapshot monitor commands against the fake QMP server: the job is started, waited
for (``JOB_STATUS_CHANGE`` concluded), its error read from ``query-jobs`` and dismissed; on
both sessions (``qemu.qmp``'s :class:`Monitor` and the plain-socket :class:`SyncMonitor`)."""

from __future__ import annotations

from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.snapshots import OverlaySpec
from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError
from pyvirt.drivers.qemu.qmp_sync import SyncMonitor
from pyvirt.errors import MonitorError
from tests.fakeqmp import FakeQmp


@pytest.fixture(params=[Monitor, SyncMonitor], ids=["qemu.qmp", "sync"])
def monitor_cls(request: pytest.FixtureRequest) -> type[Monitor]:
    """Each QMP session class."""
    cls: type[Monitor] = request.param
    return cls


def _job(fake: FakeQmp, error: str | None = None) -> None:
    def start(args: dict[str, Any]) -> dict[str, Any]:
        fake.event("JOB_STATUS_CHANGE", {"id": "other", "status": "concluded"})
        fake.event("JOB_STATUS_CHANGE", {"id": args["job-id"], "status": "running"})
        fake.event("JOB_STATUS_CHANGE", {"id": args["job-id"], "status": "concluded"})
        return {}

    for cmd in ("snapshot-save", "snapshot-load", "snapshot-delete"):
        fake.on_call(cmd, start)
    job: dict[str, Any] = {"id": "pyvirt-snapshot", "type": "snapshot-save", "status": "concluded"}
    if error:
        job["error"] = error
    fake.on("query-jobs", [{"id": "other", "status": "concluded"}, job])
    fake.on("job-dismiss", {})


def test_snapshot_jobs_send_tag_vmstate_and_devices(
    fake_qmp: FakeQmp, monitor_cls: type[Monitor]
) -> None:
    _job(fake_qmp)
    with monitor_cls(fake_qmp.path) as mon:
        mon.snapshot_save("s1", "virtio-disk0-format", ["virtio-disk0-format", "d1"])
        mon.snapshot_load("s1", "virtio-disk0-format", ["virtio-disk0-format"])
        mon.snapshot_delete("s1", ["virtio-disk0-format"])
    assert fake_qmp.calls("snapshot-save") == [
        {"job-id": "pyvirt-snapshot", "tag": "s1", "vmstate": "virtio-disk0-format",
         "devices": ["virtio-disk0-format", "d1"]},
    ]  # fmt: skip
    assert fake_qmp.calls("snapshot-delete") == [
        {"job-id": "pyvirt-snapshot", "tag": "s1", "devices": ["virtio-disk0-format"]}
    ]
    assert fake_qmp.calls("job-dismiss") == [{"id": "pyvirt-snapshot"}] * 3


def test_a_failed_job_raises_its_error_after_dismissing(
    fake_qmp: FakeQmp, monitor_cls: type[Monitor]
) -> None:
    _job(fake_qmp, error="Device 'x' is writable but does not support snapshots")
    with monitor_cls(fake_qmp.path) as mon, pytest.raises(MonitorError, match="does not support"):
        mon.snapshot_save("s1", "x", ["x"])
    assert fake_qmp.calls("job-dismiss") == [{"id": "pyvirt-snapshot"}]


def test_a_job_that_never_concludes_times_out(
    fake_qmp: FakeQmp, monitor_cls: type[Monitor]
) -> None:
    fake_qmp.on("snapshot-save", {})
    with monitor_cls(fake_qmp.path) as mon, pytest.raises(MonitorError, match="did not finish"):
        mon.snapshot_save("s1", "x", ["x"], timeout=0.05)
    assert fake_qmp.calls("job-dismiss") == []


def test_active_images_and_overlay_transaction(
    fake_qmp: FakeQmp, monitor_cls: type[Monitor]
) -> None:
    fake_qmp.on("query-block", [
        {"device": "", "qdev": "ide0-1-0", "removable": True},
        {"device": "", "qdev": "virtio-disk0", "removable": False,
         "inserted": {"node-name": "virtio-disk0-format", "file": "/img/a.qcow2",
                      "drv": "qcow2"}},
    ])  # fmt: skip
    fake_qmp.on("transaction", {})
    with monitor_cls(fake_qmp.path) as mon:
        images = mon.active_images()
        mon.snapshot_overlays([OverlaySpec("virtio-disk0-format", "/img/a.s1", "snap-vda")])
    assert [(i.qdev, i.node_name, i.file, i.driver) for i in images] == [
        ("virtio-disk0", "virtio-disk0-format", "/img/a.qcow2", "qcow2")
    ]
    action = fake_qmp.calls("transaction")[0]["actions"][0]
    assert action == {
        "type": "blockdev-snapshot-sync",
        "data": {"node-name": "virtio-disk0-format", "snapshot-file": "/img/a.s1",
                 "snapshot-node-name": "snap-vda", "format": "qcow2", "mode": "existing"},
    }  # fmt: skip


def test_sync_monitor_errors_are_the_monitors(fake_qmp: FakeQmp, tmp_path: Any) -> None:
    fake_qmp.on("query-block", error=("GenericError", "no block"))
    fake_qmp.on("query-status", {"status": "running", "running": True})
    for cls in (Monitor, SyncMonitor):
        with cls(fake_qmp.path) as mon:
            with pytest.raises(QmpCommandError) as err:
                mon.active_images()
            assert (str(err.value), err.value.error_class, err.value.command) == (
                "QMP command 'query-block' failed: no block",
                "GenericError",
                "query-block",
            )
            assert mon.query_status() == ("running", True)  # the session goes on
    with pytest.raises(MonitorError, match=r"QMP 'connect' on .* failed"):
        SyncMonitor(tmp_path / "nothing.sock").connect()
