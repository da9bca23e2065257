"""The REST models match the api types' ``to_json()`` shapes; request models refuse
unknown fields; file-system faults give the one error shape."""

from __future__ import annotations

import dataclasses
import errno

import pytest
from pydantic import BaseModel, ValidationError

from pyvirt.api.host import CellMemory, NodeInfo, Versions
from pyvirt.api.networks import DhcpLease, NetworkInfo
from pyvirt.api.pools import PoolStatus, VolumeInfo
from pyvirt.daemon import models
from pyvirt.daemon.limits import os_error_body
from pyvirt.host.memory import MemStats
from pyvirt.service.host.nodedev import NodeDevice

SAMPLES: list[tuple[type[BaseModel], object]] = [
    (models.NetworkInfoModel, NetworkInfo("n", "u", True, True, False, "virbr9", "nat")),
    (models.DhcpLeaseModel, DhcpLease(1, "52:54:00:00:00:01", "10.0.0.2", 24, "h", "*", "br")),
    (models.PoolStatusModel, PoolStatus("p", "u", "dir", "running", True, False, 1, 2, 3, "/x")),
    (models.VolumeInfoModel, VolumeInfo("v", "/x/v", "/x/v", "file", "qcow2", 10, 5, 6)),
    (models.VersionsModel, Versions("0.1", "7.2", "/usr/bin/qemu")),
    (models.NodeInfoModel, NodeInfo("x86_64", 2, 2600, 1, 2, 1, 1, 1024)),
    (models.CellMemoryModel, CellMemory(0, 512)),
    (models.MemStatsModel, MemStats(10, 5, None, 3)),
    (models.NodeDeviceModel, NodeDevice("computer", None, ("system",))),
]


@pytest.mark.parametrize(("model", "value"), SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_model_round_trips_to_json(model: type[BaseModel], value: object) -> None:
    doc = value.to_json()  # type: ignore[attr-defined]
    parsed = model.model_validate(doc)
    assert parsed.model_dump(exclude_unset=True) == doc


@pytest.mark.parametrize(
    ("model", "cls"),
    [(models.NetworkInfoModel, NetworkInfo), (models.PoolStatusModel, PoolStatus),
     (models.VolumeInfoModel, VolumeInfo), (models.NodeInfoModel, NodeInfo),
     (models.DhcpLeaseModel, DhcpLease), (models.VersionsModel, Versions)],
)  # fmt: skip
def test_generated_models_have_the_dataclass_fields(model: type[BaseModel], cls: type) -> None:
    assert list(model.model_fields) == [f.name for f in dataclasses.fields(cls)]
    assert model.__name__ == cls.__name__


def test_volume_type_is_an_enum_in_the_schema() -> None:
    schema = models.VolumeInfoModel.model_json_schema()
    assert set(schema["properties"]["type"]["enum"]) == {
        "file",
        "block",
        "dir",
        "network",
        "netdir",
    }


def test_request_models_refuse_unknown_fields_and_bad_sizes() -> None:
    with pytest.raises(ValidationError):
        models.AutostartBody.model_validate({"enabled": True, "enable": True})
    with pytest.raises(ValidationError):
        models.VolumeCreateBody.model_validate({"name": "v", "capacity": -1})
    with pytest.raises(ValidationError):
        models.VolumeCreateBody.model_validate({"name": "", "capacity": 1})
    ok = models.VolumeCreateBody.model_validate({"name": "v", "capacity": 1 << 30})
    assert ok.format is None and ok.allocation is None


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [(errno.EROFS, 503, "read-only"), (errno.ENOSPC, 507, "disk is full"),
     (errno.EACCES, 503, "permission denied"), (errno.EIO, 500, "x")],
)  # fmt: skip
def test_os_errors_become_one_line(code: int, status: int, words: str) -> None:
    got_status, body = os_error_body(OSError(code, "x", "/s/lib/networks/n.xml"))
    assert got_status == status
    assert body["code"] == "operation_failed"
    assert words in str(body["error"]) and "/s/lib/networks/n.xml" in str(body["error"])
