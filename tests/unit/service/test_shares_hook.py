"""The ``shares`` hook: a 9p share's directory must exist and be within the QEMU user's reach;
pyvirt changes no owner or mode of it."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, NotFoundError, OperationFailedError
from pyvirt.model.domain import Domain
from pyvirt.service.domain.shares import (
    can_use,
    check,
    shares,
    start_virtiofsd,
    stop_virtiofsd,
    virtiofsd,
)
from pyvirt.state.qemu_user import QemuIdentity

ME = QemuIdentity(None, os.geteuid(), os.getegid())


def qemu_user() -> QemuIdentity:
    try:
        pw = pwd.getpwnam("pyvirt-qemu")
    except KeyError:
        pytest.skip("no pyvirt-qemu user")
    if os.geteuid() != 0:
        pytest.skip("needs root to test as another user")
    return QemuIdentity("pyvirt-qemu", pw.pw_uid, pw.pw_gid)


def test_only_lowered_9p_shares_are_checked() -> None:
    xml = """<domain type='qemu'><name>g</name><memory>65536</memory><devices>
<filesystem><source dir='/a'/><target dir='ta'/><readonly/></filesystem>
<filesystem type='block'><source dev='/dev/x'/><target dir='tb'/></filesystem>
<filesystem><driver type='virtiofs'/><binary path='/opt/vfsd' xattr='on'><cache mode='always'/>
</binary><source dir='/c'/><target dir='tc'/></filesystem>
<filesystem><source dir='rel'/><target dir='td'/></filesystem>
</devices></domain>"""
    assert shares(Domain.from_xml(xml)) == [
        {"dir": "/a", "tag": "ta", "ro": True},
        {"dir": "/c", "tag": "tc", "ro": False, "virtiofs": True, "alias": "fs2",
         "binary": "/opt/vfsd", "cache": "always", "xattr": True, "sandbox": None},
    ]  # fmt: skip


def test_no_virtiofsd_is_one_line_naming_it() -> None:
    with pytest.raises(NotFoundError, match="virtiofs needs virtiofsd, which is not installed"):
        virtiofsd("/nonexistent/virtiofsd", "t")


def test_missing_or_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"share 't': source dir '.*/nope' does not exist"):
        check(ME, {"dir": str(tmp_path / "nope"), "tag": "t", "ro": False})
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidConfigError, match="is not a directory"):
        check(ME, {"dir": str(tmp_path / "f"), "tag": "t", "ro": False})
    check(ME, {"dir": str(tmp_path), "tag": "t", "ro": False})


def test_the_qemu_users_reach_is_what_the_kernel_says(tmp_path: Path) -> None:
    ident = qemu_user()
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    if (tmp_path.stat().st_mode & 0o001) == 0:  # pytest's base dir is 0700: out of reach
        assert can_use(ident, str(share), readonly=True) == "read"
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # /tmp is searchable by everyone
    try:
        os.chmod(top, 0o700)
        share = top / "share"
        share.mkdir(mode=0o700)
        _reach(ident, top, share)
    finally:
        shutil.rmtree(top)


def _reach(ident: QemuIdentity, top: Path, share: Path) -> None:
    os.chmod(top, 0o755)
    assert can_use(ident, str(share), readonly=True) == "read"
    with pytest.raises(InvalidConfigError, match="'pyvirt-qemu' may not search and read") as info:
        check(ident, {"dir": str(share), "tag": "t", "ro": False})
    assert "setfacl -m u:pyvirt-qemu:rwx" in (info.value.hint or "")
    os.chmod(share, 0o755)
    assert can_use(ident, str(share), readonly=True) == ""
    assert can_use(ident, str(share), readonly=False) == "write"
    os.chown(share, ident.uid, ident.gid)
    assert can_use(ident, str(share), readonly=False) == ""
    assert share.stat().st_mode & 0o777 == 0o755  # the check changed nothing


class _Paths:
    def __init__(self, root: Path) -> None:
        self.root = root

    def domain_run_dir(self, name: str) -> Path:
        return self.root / "run" / name

    def domain_log_dir(self, name: str) -> Path:
        return self.root / "log" / name


class _Mgr:
    def __init__(self, root: Path) -> None:
        self.paths = _Paths(root)


FAKE_VIRTIOFSD = """#!/bin/sh
for a; do case "$a" in --socket-path=*) s="${a#--socket-path=}" ;; esac; done
[ -n "$FAIL" ] && { echo "virtiofsd: cannot serve $FAIL" >&2; exit 1; }
touch "$s"
while :; do sleep 0.1; done
"""


def test_a_virtiofsd_is_started_waited_for_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "virtiofsd"
    binary.write_text(FAKE_VIRTIOFSD)
    binary.chmod(0o755)
    mgr = _Mgr(tmp_path)
    (tmp_path / "run" / "g").mkdir(parents=True)
    share = {"dir": str(tmp_path), "tag": "t", "virtiofs": True, "alias": "fs0",
             "binary": str(binary), "cache": "always", "xattr": True, "sandbox": None}  # fmt: skip
    pid = start_virtiofsd(mgr, "g", share)  # type: ignore[arg-type]
    sock = tmp_path / "run" / "g" / "fs0-fs.sock"
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert sock.exists() and b"cache=always" in cmd and b"xattr" in cmd
    stop_virtiofsd(pid, str(tmp_path / "other.sock"))  # not the one serving that socket: left alone
    assert Path(f"/proc/{pid}").exists()
    stop_virtiofsd(pid, str(sock))
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "virtiofsd still runs"
        time.sleep(0.02)
    monkeypatch.setenv("FAIL", "this")
    with pytest.raises(OperationFailedError, match="virtiofsd did not start: virtiofsd: cannot"):
        start_virtiofsd(mgr, "g", share)  # type: ignore[arg-type]
