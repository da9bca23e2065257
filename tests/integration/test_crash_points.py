"""Crash points: every mutating verb killed at each of its file-changing system calls.

A first traced run of the verb (``strace -y``) lists the system calls that change a file
under the state root; the verb is then run again from the same state once per point with
``strace -e inject=SYSCALL:signal=KILL:when=N`` (N counts that system call in the command's
own process), and afterwards the invariants must hold:

- every domain is as before or as after the verb (name, UUID, state; the definition of the
  edited domain byte for byte), none twice by name or UUID, no temporary file read as data;
- no invisible QEMU: every QEMU whose command line names the state root is listed running;
- no stale lock: every lock file can be taken;
- the next commands work (``list --all``, ``dominfo``) and, per verb, a ``start``/``destroy``
  round.

Bounded: define-only verbs boot nothing; every rename/unlink point is covered, other points
are sampled evenly up to a cap per verb. Run on a 2-core machine it takes about 3 minutes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT, Pyvirt
from tests.integration.test_lifecycle import domain_xml

pytestmark = pytest.mark.qemu

TRACED = (
    "openat,rename,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,write,fsync,ftruncate,"
    "link,symlink,chmod,fchmodat"
)
#: system calls that are always covered; the rest are sampled
ALWAYS = {"rename", "renameat2", "unlink", "unlinkat", "rmdir", "link", "symlink"}
UUID1 = "0c9d2a4e-6f1b-4c3d-8e7f-1a2b3c4d5e6f"
UUID2 = "5b1f7a9e-0c2d-4e3f-9a8b-7c6d5e4f3a21"


def _need_strace() -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (scripts/setup.sh installs it)")


@dataclass
class Verb:
    """One mutating command and how to judge it."""

    args: list[str]
    #: the domain whose inactive definition must be as before or as after
    edited: str | None = None
    #: boot QEMU in the set-up (start t1 before the verb)
    running: bool = False
    #: most sampled points besides the ALWAYS ones
    cap: int = 4
    extra_setup: list[list[str]] = field(default_factory=list)


def _qemus(root: Path) -> dict[int, str]:
    """pid -> guest name of every live QEMU whose command line names ``root``."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        args = raw.rstrip(b"\0").split(b"\0")
        if not args or b"qemu" not in Path(args[0].decode()).name.encode():
            continue
        if str(root).encode() not in raw or stat.rsplit(")", 1)[1].split()[0] in "ZX":
            continue
        name = ""
        for i, a in enumerate(args[:-1]):
            if a == b"-name":
                name = args[i + 1].decode().split("guest=", 1)[-1].split(",", 1)[0]
        out[int(entry)] = name
    return out


def _helpers(root: Path) -> list[int]:
    """Live pyvirt processes (reapers) working on ``root``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"pyvirt" in raw and str(root).encode() in raw and b"qemu-system" not in raw:
                out.append(int(entry))
    return out


def _quiesce(root: Path) -> None:
    """Kill every QEMU of ``root`` and wait for their reapers to finish."""
    for pid in _qemus(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (_qemus(root) or _helpers(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in _helpers(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _restore(pv: Pyvirt, pristine: Path, verb: Verb) -> None:
    """Back to the state before the verb (t1 started afresh for verbs on a running domain)."""
    _quiesce(pv.root)
    for sub in ("lib", "run", "cache", "log"):
        shutil.rmtree(pv.root / sub, ignore_errors=True)
        if (pristine / sub).exists():
            shutil.copytree(pristine / sub, pv.root / sub, symlinks=True)
    if verb.running:
        pv("start", "t1")


def _listing(pv: Pyvirt) -> list[dict[str, Any]]:
    res = subprocess.run(
        [*PYVIRT, "list", "--all", "--json"], env=pv.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, f"list --all failed: {res.stderr}"
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


def _shape(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r["name"], r["uuid"], r["state"]) for r in rows}


def _points(pv: Pyvirt, args: list[str], out: Path) -> list[tuple[str, int, bool]]:
    """(syscall, ordinal among that syscall's calls, always covered) of every file change
    under the root. Renames and unlinks are always covered, except the removal of a run
    directory's files (one ``rmtree``, sampled like the rest)."""
    subprocess.run(
        ["strace", "-qq", "-y", "-e", "signal=none", "-o", str(out), "-e", f"trace={TRACED}",
         *PYVIRT, *args],
        env=pv.env, capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    seen: dict[str, int] = {}
    points = []
    for line in out.read_text().splitlines():
        sc = line.split("(", 1)[0].strip()
        if not sc or not sc.isidentifier():
            continue
        seen[sc] = seen.get(sc, 0) + 1
        if str(pv.root) not in line:
            continue
        if sc == "openat" and not any(f in line for f in ("O_WRONLY", "O_RDWR", "O_CREAT")):
            continue
        in_run_dir = (
            f"{pv.root}/run/qemu/" in line and line.count("/") > str(pv.root).count("/") + 3
        )
        must = sc in ALWAYS and not (sc.startswith("unlink") and in_run_dir)
        points.append((sc, seen[sc], must))
    return points


def _sample(points: list[tuple[str, int, bool]], cap: int) -> list[tuple[str, int, bool]]:
    must = [p for p in points if p[2]]
    rest = [p for p in points if not p[2]]
    if len(rest) > cap:
        step = len(rest) / cap
        rest = [rest[int(i * step)] for i in range(cap)]
    return sorted(must + rest, key=points.index)


def _check_locks(root: Path) -> None:
    """No lock stays held. A killed verb's locks go with it (flock); a live holder may be the
    domain's reaper doing the stop work of a QEMU the verb signalled, for a moment: wait for
    it, and fail only on a lock still held after that (a leaked holder)."""
    for lock in (root / "run" / "locks").glob("*.lock"):
        fd = os.open(lock, os.O_RDWR)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, f"{lock.name} stays locked"
                    time.sleep(0.1)
        finally:
            os.close(fd)


def _check(pv: Pyvirt, verb: Verb, before: Any, after: Any, where: str) -> list[dict[str, Any]]:
    rows = _listing(pv)
    names = [r["name"] for r in rows]
    uuids = [r["uuid"] for r in rows if r["uuid"]]
    assert len(names) == len(set(names)), f"{where}: a name twice: {rows}"
    assert len(uuids) == len(set(uuids)), f"{where}: a UUID twice: {rows}"
    assert not any(u.startswith(".") for u in uuids), f"{where}: temporary file as UUID"
    shape = _shape(rows)
    assert shape in (before[0], after[0]), f"{where}: {shape} is neither {before[0]} nor {after[0]}"
    running = {r["name"] for r in rows if r["state"] in ("running", "paused")}
    qemus = _qemus(pv.root)
    assert set(qemus.values()) <= running, f"{where}: QEMU pyvirt cannot see: {qemus} {rows}"
    assert len(qemus) == len(running), f"{where}: two QEMUs of one domain: {qemus}"
    _check_locks(pv.root)
    if verb.edited is not None and verb.edited in names:
        xml = pv("dumpxml", "--inactive", verb.edited).out
        assert xml in (before[1], after[1]), f"{where}: definition torn or lost update:\n{xml}"
    for name in names:
        pv("dominfo", name)
    return rows


def _state_of(pv: Pyvirt, verb: Verb) -> tuple[set[tuple[str, str, str]], str | None]:
    rows = _listing(pv)
    xml = None
    if verb.edited is not None and verb.edited in {r["name"] for r in rows}:
        xml = pv("dumpxml", "--inactive", verb.edited).out
    return _shape(rows), xml


@pytest.fixture
def base(pyvirt: Pyvirt, tiny_image: Any, tmp_path: Path) -> Callable[[Verb], Path]:
    """Make the set-up of a verb in the state root and keep a pristine copy of it."""

    def setup(verb: Verb) -> Path:
        t1 = domain_xml(tiny_image, "t1").replace(
            "<name>t1</name>", f"<name>t1</name><uuid>{UUID1}</uuid>"
        )
        (pyvirt.root / "t1.xml").write_text(t1)
        t2 = domain_xml(tiny_image, "t2").replace(
            "<name>t2</name>", f"<name>t2</name><uuid>{UUID2}</uuid>"
        )
        (pyvirt.root / "t2.xml").write_text(t2)
        (pyvirt.root / "t1b.xml").write_text(t1.replace("160</memory>", "192</memory>"))
        (pyvirt.root / "disk.img").write_bytes(b"\0" * 1024 * 1024)
        pyvirt("define", str(pyvirt.root / "t1.xml"))
        pyvirt("start", "t1")  # caches the start plan
        pyvirt("destroy", "t1")
        for cmd in verb.extra_setup:
            pyvirt(*cmd)
        _quiesce(pyvirt.root)
        pristine = tmp_path / "pristine"
        for sub in ("lib", "run", "cache", "log"):
            if (pyvirt.root / sub).exists():
                shutil.copytree(pyvirt.root / sub, pristine / sub, symlinks=True)
        return pristine

    return setup


VERBS: dict[str, Verb] = {
    "define-new": Verb(["define", "{root}/t2.xml"], edited="t2"),
    "define-change": Verb(["define", "{root}/t1b.xml"], edited="t1"),
    "undefine": Verb(["undefine", "t1"], edited="t1"),
    "domrename": Verb(["domrename", "t1", "t9"], edited="t9"),
    "setmaxmem": Verb(["setmaxmem", "t1", "200M", "--config"], edited="t1"),
    "setvcpus": Verb(["setvcpus", "t1", "2", "--config", "--maximum"], edited="t1"),
    "attach-disk": Verb(["attach-disk", "t1", "{root}/disk.img", "vdb", "--config"], edited="t1"),
    "detach-disk": Verb(
        ["detach-disk", "t1", "vdb", "--config"],
        edited="t1",
        extra_setup=[["attach-disk", "t1", "{root}/disk.img", "vdb", "--config"]],
    ),
    "start": Verb(["start", "t1"], cap=3),
    "destroy": Verb(["destroy", "t1"], running=True, cap=3),
    "create": Verb(["create", "{root}/t2.xml"], cap=3),
}


@pytest.mark.parametrize("verb_id", list(VERBS))
def test_killed_at_every_file_change(
    pyvirt: Pyvirt, base: Callable[[Verb], Path], tmp_path: Path, verb_id: str
) -> None:
    _need_strace()
    root = pyvirt.root
    spec = VERBS[verb_id]
    verb = Verb(
        [a.replace("{root}", str(root)) for a in spec.args], spec.edited, spec.running,
        spec.cap, [[a.replace("{root}", str(root)) for a in c] for c in spec.extra_setup],
    )  # fmt: skip
    pristine = base(verb)
    _restore(pyvirt, pristine, verb)
    before = _state_of(pyvirt, verb)
    pyvirt(*verb.args)  # warm-up: byte code compiled, caches made as a killed run finds them
    _restore(pyvirt, pristine, verb)
    points = _points(pyvirt, verb.args, tmp_path / "trace")
    after = _state_of(pyvirt, verb)
    assert before != after, "the verb changed nothing"
    assert points, "no file change seen under the state root"
    chosen = _sample(points, verb.cap)
    bad = []
    for sc, n, _ in chosen:
        _restore(pyvirt, pristine, verb)
        subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={sc}",
             "-e", f"inject={sc}:signal=KILL:when={n}", *PYVIRT, *verb.args],
            env=pyvirt.env, capture_output=True, timeout=120,
        )  # fmt: skip
        try:
            rows = _check(pyvirt, verb, before, after, f"{verb_id} killed at {sc} #{n}")
            # the next command works: whatever the verb left running can be destroyed
            for r in rows:
                if r["state"] == "running":
                    pyvirt("destroy", r["name"])
            assert not _qemus(root), f"{verb_id} killed at {sc} #{n}: QEMU survived destroy"
        except AssertionError as err:
            bad.append(str(err).splitlines()[0])
    _restore(pyvirt, pristine, verb)
    assert not bad, f"{len(bad)} bad of {len(chosen)} points ({len(points)} seen):\n" + "\n".join(
        bad
    )


def _json(pv: Pyvirt, *args: str) -> Any:
    res = subprocess.run(
        [*PYVIRT, *args, "--json"], env=pv.env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, f"{' '.join(args)} failed: {res.stderr}"
    return json.loads(res.stdout)


def _objects(pv: Pyvirt) -> frozenset[tuple[Any, ...]]:
    """Pools (with whether their directory exists), p1's volumes and networks."""
    out: set[tuple[Any, ...]] = set()
    pools = _json(pv, "pool-list", "--all")
    for p in pools:
        target = Path(p["target"]) if p.get("target") else None
        out.add(("pool", p["name"], p["uuid"], p["state"], target is not None and target.is_dir()))
        if p["name"] == "p1" and p["active"]:
            for v in _json(pv, "vol-list", "p1"):
                out.add(("vol", v["name"], v["format"], v["capacity"]))
                pv("vol-info", v["name"], "--pool", "p1")
    for n in _json(pv, "net-list", "--all"):
        # the implicit default network gets a new UUID at each listing until it is defined
        uuid = "" if n["name"] == "default" else n["uuid"]
        out.add(("net", n["name"], uuid, n["active"], n["persistent"]))
    names = [(o[0], o[1]) for o in out]
    assert len(names) == len(set(names)), f"an object twice: {sorted(out)}"
    return frozenset(out)


NET = "<network><name>{name}</name><bridge name='pvbr{name}'/></network>"
STORAGE_SETUP = [
    ["pool-define-as", "p1", "dir", "--target", "{root}/pool"],
    ["pool-build", "p1"],
    ["pool-start", "p1"],
    ["vol-create-as", "p1", "v1.img", "1M"],
]
STORAGE_VERBS: dict[str, tuple[list[str], list[list[str]]]] = {
    "vol-create-as": (["vol-create-as", "p1", "v3.img", "1M"], []),
    "vol-create-as-qcow2": (["vol-create-as", "p1", "q3.qcow2", "1M", "--format", "qcow2"], []),
    "vol-delete": (["vol-delete", "v1.img", "--pool", "p1"], []),
    "vol-clone": (["vol-clone", "v1.img", "v2.img", "--pool", "p1"], []),
    "pool-define": (["pool-define-as", "p2", "dir", "--target", "{root}/pool2"], []),
    "pool-undefine": (
        ["pool-undefine", "p3"],
        [["pool-define-as", "p3", "dir", "--target", "{root}/pool3"]],
    ),
    "pool-build": (
        ["pool-build", "p3"],
        [["pool-define-as", "p3", "dir", "--target", "{root}/pool3"]],
    ),
    "pool-delete": (
        ["pool-delete", "p3"],
        [["pool-define-as", "p3", "dir", "--target", "{root}/pool3"], ["pool-build", "p3"]],
    ),
    "net-define": (["net-define", "{root}/n1.xml"], []),
    "net-undefine": (["net-undefine", "n2"], [["net-define", "{root}/n2.xml"]]),
}


@pytest.mark.parametrize("verb_id", list(STORAGE_VERBS))
def test_storage_and_network_verbs_killed_at_every_file_change(
    pyvirt: Pyvirt, tmp_path: Path, verb_id: str
) -> None:
    _need_strace()
    root = pyvirt.root
    for name in ("n1", "n2"):
        (root / f"{name}.xml").write_text(NET.format(name=name))
    args, setup = STORAGE_VERBS[verb_id]
    for cmd in [*STORAGE_SETUP, *setup]:
        pyvirt(*[a.replace("{root}", str(root)) for a in cmd])
    args = [a.replace("{root}", str(root)) for a in args]
    pristine = tmp_path / "pristine"
    dirs = ("lib", "run", "cache", "log", "pool", "pool2", "pool3")

    def restore() -> None:
        for sub in dirs:
            shutil.rmtree(root / sub, ignore_errors=True)
            if (pristine / sub).exists():
                shutil.copytree(pristine / sub, root / sub, symlinks=True)

    for sub in dirs:
        if (root / sub).exists():
            shutil.copytree(root / sub, pristine / sub, symlinks=True)
    before = _objects(pyvirt)
    pyvirt(*args)  # warm-up
    restore()
    points = _points(pyvirt, args, tmp_path / "trace")
    after = _objects(pyvirt)
    assert before != after, "the verb changed nothing"
    chosen = _sample(points, 3)
    bad = []
    for sc, n, _ in chosen:
        restore()
        subprocess.run(
            ["strace", "-qq", "-o", "/dev/null", "-e", f"trace={sc}",
             "-e", f"inject={sc}:signal=KILL:when={n}", *PYVIRT, *args],
            env=pyvirt.env, capture_output=True, timeout=120,
        )  # fmt: skip
        where = f"{verb_id} killed at {sc} #{n}"
        try:
            now = _objects(pyvirt)
            assert now in (before, after), (
                f"{where}: {sorted(now ^ before)} / {sorted(now ^ after)}"
            )
            _check_locks(root)
        except AssertionError as err:
            bad.append(str(err).splitlines()[0])
    restore()
    summary = f"{len(bad)} bad of {len(chosen)} points ({len(points)} seen)"
    assert not bad, summary + ":\n" + "\n".join(bad)
