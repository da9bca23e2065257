"""Jobs in a real pyvirtd: a volume clone watched and cancelled (nothing half-made stays), an
upload/download round trip, a wipe, Ctrl-C in a client, and the CLI's job commands."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.api.remote.jobs import JobInfo, Jobs
from pyvirt.api.remote.volume_jobs import VolumeJobsMixin
from pyvirt.client.transport import Client
from pyvirt.progress import CancelledError, CancelToken
from tests.conftest import Pyvirt
from tests.daemonhelp import RunningDaemon as Daemon
from tests.daemonhelp import pyvirtd

MIB = 1 << 20
BIG = 128 * MIB
#: clones of BIG run at this rate in the cancel tests (about 16 s; they are cancelled long before)
SLOW = 8 * MIB


class RemoteVolume(VolumeJobsMixin):
    """A minimal remote volume handle carrying the job verbs (the remote API's class gets the
    same mixin)."""

    def __init__(self, client: Client, pool: str, name: str) -> None:
        self._client, self.pool_name, self.name = client, pool, name

    def _job_volume(self, name: str) -> RemoteVolume:
        return RemoteVolume(self._client, self.pool_name, name)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pyvirt, Daemon, Path]]:
    import shutil
    import tempfile

    from tests.conftest import kill_leftovers

    root = Path(tempfile.mkdtemp(prefix="pvj", dir="/tmp"))
    pv = Pyvirt(root)
    target = root / "p1"
    pv("pool-define-as", "p1", "dir", "--target", str(target))
    pv("pool-start", "p1", "--build")
    pv("vol-create-as", "p1", "big", str(BIG), "--format", "raw")
    block = os.urandom(MIB)
    with open(target / "big", "r+b") as f:  # real data, every block allocated
        for i in range(BIG // MIB):
            f.write(block[:-4] + i.to_bytes(4, "big"))
    xml = root / "d1.xml"
    xml.write_text(
        "<domain type='qemu'><name>d1</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{target / 'big'}'/><target dev='vda' bus='virtio'/></disk>"
        "</devices></domain>"
    )
    pv("define", str(xml))
    try:
        with pyvirtd(root) as daemon:
            yield pv, daemon, target
    finally:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def embedded(pv: Pyvirt, *args: str, check: bool = True) -> Any:
    """The CLI working on the state directly (not through the daemon)."""
    return pv("-c", "pyvirt:///embed", *args, check=check)


def volumes(pv: Pyvirt) -> list[str]:
    return [v["name"] for v in json.loads(embedded(pv, "vol-list", "p1", "--json").out)]


def sha256(path: Path, length: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length if length is not None else 1 << 62
        while left > 0:
            chunk = f.read(min(MIB, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def start_clone(client: Client, name: str, bandwidth: int | None = None) -> JobInfo:
    body: dict[str, Any] = {"name": name}
    if bandwidth:
        body["bandwidth"] = bandwidth
    doc = client.json("POST", "/api/v1/pools/p1/volumes/big/clone", body)
    return JobInfo.from_json(doc["job"])


def lock_is_free(pv: Pyvirt) -> bool:
    fd = os.open(pv.root / "run" / "locks" / "pool-p1.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_cancelled_clone_leaves_nothing(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    pv, daemon, target = setup
    before_vols, before_files = volumes(pv), sorted(os.listdir(target))
    client = daemon.client()
    job = start_clone(client, "half", bandwidth=SLOW)
    assert job.state == "running" and job.kind == "vol-clone" and job.object == "volume/p1/big"
    jobs = Jobs(client)
    seen = []
    for _ in range(3):
        time.sleep(0.7)
        seen.append(jobs.get(job.id).done)
    assert 0 < seen[0] < seen[1] < seen[2] < BIG, seen
    assert any(name.startswith(".half.") for name in os.listdir(target))  # being copied

    listed = pv("job-list")
    assert job.id in listed.out and "vol-clone" in listed.out and "running" in listed.out
    info = json.loads(pv("job-info", job.id, "--json").out)
    assert info["progress"]["total"] == BIG and 0 < info["progress"]["rate"] <= SLOW * 1.2

    out = pv("job-cancel", job.id).out
    assert out.strip() == f"Job {job.id} cancelled"
    assert sorted(os.listdir(target)) == before_files  # no partial volume, no temp file
    assert volumes(pv) == before_vols
    assert lock_is_free(pv)
    assert jobs.get(job.id).state == "cancelled"
    assert job.id not in pv("job-list").out
    assert job.id in pv("job-list", "--all").out
    again = pv("job-cancel", job.id, check=False)
    assert again.rc == 1 and "already cancelled" in again.err


def test_a_clone_completes_with_identical_bytes(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    pv, daemon, target = setup
    seen: list[tuple[int, int]] = []
    new = RemoteVolume(daemon.client(), "p1", "big").clone(
        "copy", progress=lambda d, t: seen.append((d, t))
    )
    assert new.name == "copy"
    assert sha256(target / "copy") == sha256(target / "big")
    assert seen and seen[-1] == (BIG, BIG)
    assert "copy" in volumes(pv)
    done = [j for j in Jobs(daemon.client()).list() if j.kind == "vol-clone"]
    assert done[-1].state == "completed" and done[-1].result["name"] == "copy"
    embedded(pv, "vol-delete", "copy", "--pool", "p1")


def test_a_token_cancels_a_remote_clone(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    _, daemon, target = setup
    before = sorted(os.listdir(target))
    token = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done > 8 * MIB:
            token.cancel()

    doc = daemon.client().json(
        "POST", "/api/v1/pools/p1/volumes/big/clone", {"name": "tok", "bandwidth": SLOW}
    )
    with pytest.raises(CancelledError):
        Jobs(daemon.client()).wait(doc["job"]["id"], progress=progress, cancel=token)
    assert sorted(os.listdir(target)) == before


def test_ctrl_c_in_a_client_cancels_its_job(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    pv, daemon, target = setup
    before = sorted(os.listdir(target))
    script = textwrap.dedent(f"""
        import sys
        from pyvirt.api.remote.jobs import Jobs
        from pyvirt.client.transport import Client
        from pyvirt.client.uri import resolve
        c = Client.for_target(resolve({daemon.uri!r}))
        doc = c.json("POST", "/api/v1/pools/p1/volumes/big/clone",
                     {{"name": "intr", "bandwidth": {SLOW}}})
        print(doc["job"]["id"], flush=True)
        try:
            Jobs(c).wait(doc["job"]["id"], progress=lambda d, t: None)
        except KeyboardInterrupt:
            print("interrupted", Jobs(c).get(doc["job"]["id"]).state, flush=True)
            sys.exit(130)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=pv.env, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out.strip() == "interrupted cancelled"
    assert Jobs(daemon.client()).get(job_id).state == "cancelled"
    assert sorted(os.listdir(target)) == before


def test_upload_download_round_trip(setup: tuple[Pyvirt, Daemon, Path], tmp_path: Path) -> None:
    pv, daemon, target = setup
    embedded(pv, "vol-create-as", "p1", "data", str(64 * MIB), "--format", "raw")
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(48 * MIB))
    vol = RemoteVolume(daemon.client(), "p1", "data")
    seen: list[int] = []
    with open(src, "rb") as f:
        assert vol.upload(f, offset=MIB, progress=lambda d, t: seen.append(d)) == 48 * MIB
    assert seen[-1] == 48 * MIB
    out = tmp_path / "out.bin"
    with open(out, "wb") as f:
        assert vol.download(f, offset=MIB, length=48 * MIB) == 48 * MIB
    assert sha256(out) == sha256(src)
    whole = tmp_path / "whole.bin"
    with open(whole, "wb") as f:
        assert vol.download(f) == 64 * MIB
    assert sha256(whole) == sha256(target / "data")
    kinds = [(j.kind, j.state) for j in Jobs(daemon.client()).list()]
    assert ("vol-upload", "completed") in kinds and ("vol-download", "completed") in kinds


def test_a_cancelled_download_ends_early(
    setup: tuple[Pyvirt, Daemon, Path], tmp_path: Path
) -> None:
    _, daemon, _ = setup
    jobs = Jobs(daemon.client())
    cancelled: list[str] = []

    def slow_reader(done: int, total: int) -> None:
        time.sleep(0.01)  # the daemon's copy waits on the full pipe meanwhile
        if done >= 8 * MIB and not cancelled:
            running = [j for j in jobs.list(all=False) if j.kind == "vol-download"]
            cancelled.append(jobs.cancel(running[0].id).id)

    with open(tmp_path / "part", "wb") as f, pytest.raises(CancelledError):
        RemoteVolume(daemon.client(), "p1", "big").download(f, progress=slow_reader)
    assert jobs.get(cancelled[0]).state == "cancelled"
    assert 8 * MIB <= (tmp_path / "part").stat().st_size < BIG


def test_a_wipe_job_completes(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    pv, daemon, target = setup
    embedded(pv, "vol-create-as", "p1", "secret", str(32 * MIB), "--format", "raw")
    (target / "secret").write_bytes(b"\xaa" * 32 * MIB)
    RemoteVolume(daemon.client(), "p1", "secret").wipe()
    with open(target / "secret", "rb") as f:
        assert f.read() == bytes(32 * MIB)
    bad = daemon.client().json("POST", "/api/v1/pools/p1/volumes/secret/wipe", {"algorithm": "nsa"})
    info = Jobs(daemon.client()).get(bad["job"]["id"], wait=10)
    assert info.state == "failed" and info.error is not None
    assert info.error["code"] == "unsupported" and "nsa" in info.error["error"]


def test_a_domain_clone_job(setup: tuple[Pyvirt, Daemon, Path]) -> None:
    pv, daemon, target = setup
    dst = pv.root / "d2.img"
    doc = daemon.client().json("POST", "/api/v1/domains/d1/clone",
                               {"name": "d2", "files": [str(dst)]})  # fmt: skip
    job = JobInfo.from_json(doc["job"])
    assert job.kind == "domain-clone" and job.object == "domain/d1"
    done = Jobs(daemon.client()).wait(job.id)
    assert done.result["name"] == "d2" and done.done == done.total == BIG
    assert sha256(dst) == sha256(target / "big")
    assert "d2" in embedded(pv, "list", "--all").out
    assert pv("domjobinfo", "d1").out.strip() == "Job type:         None"
    res = pv("domjobabort", "d1", check=False)
    assert res.rc == 1 and "no job is active on domain 'd1'" in res.err
    embedded(pv, "undefine", "d2")
    dst.unlink()


def test_job_commands_without_a_daemon(pyvirt: Pyvirt) -> None:
    res = pyvirt("job-list", check=False)
    assert res.rc == 1 and res.out == ""
    assert res.err.strip().splitlines() == [
        "error: jobs need pyvirtd: no daemon serves this connection (start pyvirtd)"
    ]
