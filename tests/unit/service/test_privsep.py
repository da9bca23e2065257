"""Privilege separation without QEMU: state modes whatever the umask, planted definitions,
the QEMU user's resolution, secrets in dumpxml and the VNC warnings (issue 10)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.model.domain import Domain
from pyvirt.service.domain.display import vnc_warnings
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state import modes, qemu_user
from pyvirt.state.atomic import atomic_write
from pyvirt.state.domains import DomainStore
from pyvirt.state.paths import StatePaths

XML = """<domain type='qemu'><name>{name}</name>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>{graphics}</devices></domain>"""


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


@pytest.mark.usefixtures("open_umask")
def test_state_dirs_explicit_whatever_the_umask(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path / "s")
    (paths.config / "qemu").mkdir(parents=True, mode=0o777)  # left by an old pyvirt
    modes.secure_state_dirs(paths, qemu_gid=os.getgid())
    assert _mode(paths.domain_config_dir) == 0o700
    assert _mode(paths.config) == 0o710 and paths.config.stat().st_gid == os.getgid()
    assert _mode(paths.run) == 0o710 and _mode(paths.domain_run_root) == 0o710
    for private in (paths.lock_dir, paths.log, paths.cache, paths.cache / "plans"):
        assert _mode(private) == 0o700, private
    modes.secure_state_dirs(paths, qemu_gid=None)  # QEMU runs as pyvirt's user: all private
    assert _mode(paths.config) == 0o700 and _mode(paths.run) == 0o700


@pytest.mark.usefixtures("open_umask")
def test_atomic_write_is_private_by_default(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", b"x")
    assert _mode(tmp_path / "f") == 0o600
    atomic_write(tmp_path / "g", b"x", 0o644)
    assert _mode(tmp_path / "g") == 0o644


def test_planted_definitions_are_neither_listed_nor_read(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    store = DomainStore(paths)
    store.write("good", XML.format(name="good", graphics=""))
    planted = paths.domain_xml("evil")
    planted.write_text(XML.format(name="evil", graphics=""))
    os.chmod(planted, 0o666)
    assert store.names() == ["good"]
    with pytest.raises(InvalidStateError, match="group- or world-writable"):
        store.read("evil")
    if os.geteuid() == 0:
        os.chmod(planted, 0o600)
        os.chown(planted, 65534, 65534)
        assert store.names() == ["good"]
        with pytest.raises(InvalidStateError, match="owned by uid 65534"):
            store.read_bytes("evil")
    assert store.read("good") is not None


def test_qemu_user_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = qemu_user.resolve.__wrapped__
    if os.geteuid() != 0:
        assert resolve(tmp_path).user is None
        return
    monkeypatch.setenv(qemu_user.ENV_VAR, "no-such-user-pv")
    with pytest.raises(InvalidConfigError, match="does not exist"):
        resolve(tmp_path)
    monkeypatch.setenv(qemu_user.ENV_VAR, "root")
    ident = resolve(tmp_path)
    assert not ident.separate and "root" in ident.warning
    monkeypatch.delenv(qemu_user.ENV_VAR)
    (tmp_path / qemu_user.CONFIG_FILE).write_text("# QEMU user\nuser = nobody\n")
    ident = resolve(tmp_path)
    assert ident.user == "nobody" and ident.uid == pwd.getpwnam("nobody").pw_uid
    assert ident.separate and not ident.warning
    (tmp_path / qemu_user.CONFIG_FILE).unlink()
    monkeypatch.setattr(qemu_user, "DEFAULT_USER", "no-such-user-pv")
    ident = resolve(tmp_path)
    assert ident.user is None and "QEMU runs as root" in ident.warning


def test_dumpxml_hides_the_vnc_password(tmp_path: Path) -> None:
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    graphics = "<graphics type='vnc' port='-1' autoport='yes' passwd='SECRET'/>"
    mgr.define(XML.format(name="v", graphics=graphics))
    assert "SECRET" not in mgr.dumpxml("v")
    assert "passwd='SECRET'" in mgr.dumpxml("v", security_info=True)
    assert mgr.xpath("v", "//graphics/@passwd") == []


@pytest.mark.parametrize(
    ("graphics", "expected"),
    [
        ("<graphics type='vnc' listen='127.0.0.1'/>", "any local user of this host"),
        ("<graphics type='vnc' listen='0.0.0.0'/>", "anyone who can reach any address"),
        ("<graphics type='vnc' socket='/tmp/v.sock'/>", "any local user who can open"),
        ("<graphics type='vnc'><listen type='socket'/></graphics>", None),
        ("<graphics type='vnc' listen='127.0.0.1' passwd='x'/>", None),
    ],
)
def test_vnc_warnings(graphics: str, expected: str | None) -> None:
    warnings = vnc_warnings(Domain.from_xml(XML.format(name="w", graphics=graphics)))
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expected in warnings[0]


@pytest.fixture
def nobody_mgr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DomainManager:
    """A manager whose QEMU user is ``nobody`` (65534): what the DAC hook chowns images to."""
    from pyvirt.service.domain import dac
    from pyvirt.state.qemu_user import QemuIdentity

    monkeypatch.setattr(dac, "identity", lambda mgr: QemuIdentity("nobody", 65534, 65534))
    return DomainManager(StatePaths.from_root(tmp_path / "s"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_dac_shared_image_restored_by_the_last_domain(
    tmp_path: Path, nobody_mgr: DomainManager
) -> None:
    from pyvirt.service.domain import dac

    mgr = nobody_mgr
    image = tmp_path / "shared.img"
    image.write_bytes(b"x")
    os.chown(image, 0, 0)
    os.chmod(image, 0o640)
    for name in ("a", "b"):
        mgr.rundir(name).create()
        dac.grant(mgr, name, str(image))
        assert image.stat().st_uid == 65534
    hook = dac.DacHook()
    section = mgr.rundir("a").hooks().sections["dac"]
    hook.after_stop(mgr, "a", section)
    assert image.stat().st_uid == 65534  # b still runs with it
    mgr.rundir("a").remove()
    hook.after_stop(mgr, "b", mgr.rundir("b").hooks().sections["dac"])
    assert (image.stat().st_uid, image.stat().st_gid) == (0, 0)  # the last one restores
    assert image.stat().st_mode & 0o777 == 0o640
    # hot-plug: grant, then release gives it back at once (however the path is spelled)
    link = tmp_path / "link.img"
    link.symlink_to(image)
    dac.grant(mgr, "b", str(link))
    assert image.stat().st_uid == 65534
    dac.release(mgr, "b", str(tmp_path / "." / "shared.img"))
    assert image.stat().st_uid == 0
    assert mgr.rundir("b").hooks().sections["dac"]["owned"] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_dac_migration_hands_shared_images_over(tmp_path: Path, nobody_mgr: DomainManager) -> None:
    from pyvirt.service.domain import dac

    mgr = nobody_mgr
    shared, copied = tmp_path / "shared.img", tmp_path / "copied.img"
    mgr.rundir("a").create()
    for image in (shared, copied):
        image.write_bytes(b"x")
        os.chown(image, 0, 0)
        dac.grant(mgr, "a", str(image))
    # the migration copied one image; the destination's QEMU runs on the other
    dac.hand_over(mgr, "a", keep=[str(tmp_path / "." / "copied.img")])
    dac.DacHook().after_stop(mgr, "a", mgr.rundir("a").hooks().sections["dac"])
    assert shared.stat().st_uid == 65534  # still the QEMU user's
    assert copied.stat().st_uid == 0  # the source's own copy: given back


def test_runas_spelling_follows_the_emulator(tmp_path: Path) -> None:
    from pyvirt.drivers.qemu.process import RUNAS_CACHE, runas_args

    old = tmp_path / "qemu-old"
    old.write_text("#!/bin/sh\necho '-runas user      change to user id user'\n")
    new = tmp_path / "qemu-new"
    help_text = "-run-with [async-teardown=on|off][,chroot=dir][user=username|uid:gid]"
    new.write_text(f"#!/bin/sh\necho '{help_text}'\n")
    for script in (old, new):
        script.chmod(0o755)
    assert runas_args(str(old), "pyvirt-qemu", tmp_path) == ["-runas", "pyvirt-qemu"]
    assert runas_args(str(new), "pyvirt-qemu", tmp_path) == ["-run-with", "user=pyvirt-qemu"]
    assert (tmp_path / RUNAS_CACHE).read_text().endswith(" run-with")
    new.write_text("#!/bin/sh\nexit 1\n")  # cached by inode/mtime/size: a changed binary asks again
    assert runas_args(str(new), "u", tmp_path) == ["-runas", "u"]
