"""save/restore/managedsave through the real CLI without QEMU: options, messages, errors,
and the ``save-image-*``/``managedsave-*`` verbs on images written here."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from pyvirt.cli.commands.save import progress_printer, run_state
from pyvirt.drivers.qemu import saveimage
from pyvirt.errors import InvalidConfigError
from tests.conftest import Pyvirt
from tests.unit.drivers.qemu.test_saveimage import STREAM, make_image

UUID = "6f1c3c0e-6d8e-4a36-9a77-3c1bb2b3f0a1"


def xml(disk: str = "/img/d.raw", memory: int = 64, name: str = "d") -> str:
    return f"""<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid>
<memory unit='MiB'>{memory}</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
<graphics type='vnc' port='5901' passwd='s3cret'/></devices></domain>"""


@pytest.fixture
def image(pyvirt: Pyvirt) -> Path:
    path = pyvirt.root / "d.save"
    make_image(path, saveimage.SaveHeader(xml=xml(), running=True))
    return path


def test_run_state_and_progress() -> None:
    assert (run_state(False, False), run_state(True, False), run_state(False, True)) == (
        None, True, False,
    )  # fmt: skip
    with pytest.raises(InvalidConfigError, match="mutually exclusive"):
        run_state(True, True)
    err = io.StringIO()
    show = progress_printer("Save")
    with redirect_stderr(err):
        for done in (0, 10, 11, 50, 100):
            show(done, 100)
    assert err.getvalue() == "\rSave: [  0 %]\rSave: [ 10 %]\rSave: [ 11 %]\rSave: [ 50 %]" \
        "\rSave: [100 %]\n"  # fmt: skip


def test_option_and_state_errors(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "d.xml").write_text(xml())
    pyvirt("define", str(pyvirt.root / "d.xml"))
    root = pyvirt.root
    for argv, message in [
        (("save", "d", "/tmp/x.save"), "error: domain 'd' is not running"),
        (("save", "d", "/tmp/x", "--running", "--paused"),
         "error: options --running and --paused are mutually exclusive"),
        (("managedsave", "d"), "error: domain 'd' is not running"),
        (("restore", f"{root}/nope"), f"error: save image '{root}/nope' does not exist"),
        (("restore", f"{root}/d.xml"), f"error: '{root}/d.xml' is not a pyvirt save image"),
        (("managedsave-dumpxml", "d"), "error: domain 'd' has no managed save image"),
        (("save-image-dumpxml", str(root)), f"error: '{root}' is a directory, not a save image"),
    ]:  # fmt: skip
        res = pyvirt(*argv, check=False)
        assert res.rc == 1 and res.err.splitlines()[0] == message, (argv, res.err)
        assert "Traceback" not in res.err
    res = pyvirt("managedsave-remove", "d")
    assert res.out == "Domain 'd' has no manage save image; removal skipped\n\n"


def test_save_image_dumpxml_hides_secrets(pyvirt: Pyvirt, image: Path) -> None:
    out = pyvirt("save-image-dumpxml", str(image)).out
    assert "<name>d</name>" in out and "s3cret" not in out
    assert "passwd='s3cret'" in pyvirt("save-image-dumpxml", str(image), "--security-info").out


def test_save_image_define(pyvirt: Pyvirt, image: Path) -> None:
    new = pyvirt.root / "new.xml"
    new.write_text(xml(disk="/elsewhere/d.raw"))
    res = pyvirt("save-image-define", str(image), str(new), "--paused")
    assert res.out == f"State file {image} updated.\n\n"
    header = saveimage.read_header(image)
    assert "/elsewhere/d.raw" in header.xml and header.running is False
    assert image.read_bytes()[header.stream_offset :] == STREAM
    assert image.stat().st_mode & 0o777 == 0o600
    before = image.read_bytes()
    for bad, message in [
        (xml(memory=128), "error: the XML does not describe the virtual hardware of domain 'd'"),
        (xml(name="e"), "error: the XML describes domain 'e', not 'd'"),
    ]:
        new.write_text(bad)
        res = pyvirt("save-image-define", str(image), str(new), check=False)
        assert res.rc == 1 and res.err.startswith(message), res.err
    assert image.read_bytes() == before
    assert not [p for p in pyvirt.root.iterdir() if p.name.endswith(".tmp")]


def test_managed_save_image_in_listings(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "d.xml").write_text(xml())
    pyvirt("define", str(pyvirt.root / "d.xml"))
    (pyvirt.root / "e.xml").write_text(xml(name="e").replace(UUID, UUID[:-1] + "2"))
    pyvirt("define", str(pyvirt.root / "e.xml"))
    managed = pyvirt.root / "lib" / "qemu" / "save"
    managed.mkdir(parents=True)
    make_image(managed / "d.save", saveimage.SaveHeader(xml=xml()))
    rows = [line.split() for line in pyvirt("list", "--all", "--managed-save").out.splitlines()]
    assert ["-", "d", "saved"] in rows and ["-", "e", "shut", "off"] in rows
    assert pyvirt("list", "--all", "--with-managed-save", "--name").out.split() == ["d"]
    assert pyvirt("list", "--all", "--without-managedsave", "--name").out.split() == ["e"]
    assert "Managed save:   yes" in pyvirt("dominfo", "d").out
    assert "Managed save:   no" in pyvirt("dominfo", "e").out
    assert "<name>d</name>" in pyvirt("managedsave-dumpxml", "d").out
    res = pyvirt("undefine", "d", check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == (
        "error: domain 'd' has a managed save image; refusing to undefine it"
    )
    res = pyvirt("domrename", "d", "f", check=False)
    assert res.rc == 1 and "has a managed save image; it cannot be renamed" in res.err
    assert pyvirt("managedsave-remove", "d").out == "Removed managedsave image for domain 'd'\n\n"
    make_image(managed / "d.save", saveimage.SaveHeader(xml=xml()))
    pyvirt("undefine", "d", "--managed-save")
    assert not (managed / "d.save").exists()


def test_start_with_a_corrupt_managed_image(pyvirt: Pyvirt) -> None:
    no_qemu = "<devices><emulator>/nonexistent/qemu-system-x86_64</emulator>"
    (pyvirt.root / "d.xml").write_text(xml().replace("<devices>", no_qemu))
    pyvirt("define", str(pyvirt.root / "d.xml"))
    managed = pyvirt.root / "lib" / "qemu" / "save"
    managed.mkdir(parents=True)
    (managed / "d.save").write_bytes(b"\0" * 100)
    res = pyvirt("start", "d", check=False)
    assert res.rc == 1
    assert res.err.splitlines() == [
        f"error: '{managed}/d.save' is not a pyvirt save image",
        "hint: discard it with 'managedsave-remove d' (the next start boots)",
    ]
    res = pyvirt("start", "d", "--force-boot", check=False)  # discards it, then boots
    assert not (managed / "d.save").exists()
    assert res.rc == 1 and "save image" not in res.err, res.err


def test_help_lists_the_verbs_under_domain_management(pyvirt: Pyvirt) -> None:
    out = pyvirt("help", "domain").out
    for verb in ("save", "restore", "managedsave", "managedsave-remove", "managedsave-dumpxml",
                 "save-image-dumpxml", "save-image-define"):  # fmt: skip
        assert f"    {verb} " in out, verb
