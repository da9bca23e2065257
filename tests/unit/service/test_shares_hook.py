"""The ``shares`` hook: a 9p share's directory must exist and be within the QEMU user's reach;
pyvirt changes no owner or mode of it."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, NotFoundError
from pyvirt.model.domain import Domain
from pyvirt.service.domain.shares import can_use, check, shares, virtiofsd
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
