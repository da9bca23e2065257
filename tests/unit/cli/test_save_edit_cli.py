"""``managedsave-define``, ``managedsave-edit`` and ``save-image-edit`` through the real CLI
(no QEMU): the image's XML and run state change, the memory stream stays, a bad edit leaves
the image as it was."""

from __future__ import annotations

from pyvirt.drivers.qemu import saveimage
from tests.conftest import Pyvirt
from tests.unit.cli.test_save_cli import xml
from tests.unit.drivers.qemu.test_saveimage import STREAM, make_image


def _editor(pyvirt: Pyvirt, script: str) -> None:
    """$EDITOR: a sed script applied to the file in place."""
    pyvirt.env["EDITOR"] = f"sed -i -e {script}"


def test_managedsave_define_and_edit(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "d.xml").write_text(xml())
    pyvirt("define", str(pyvirt.root / "d.xml"))
    res = pyvirt("managedsave-define", "d", str(pyvirt.root / "d.xml"), check=False)
    assert res.rc == 1 and res.err.startswith("error: domain 'd' has no managed save image")
    managed = pyvirt.root / "lib" / "qemu" / "save"
    managed.mkdir(parents=True)
    image = managed / "d.save"
    make_image(image, saveimage.SaveHeader(xml=xml(), running=True))

    new = pyvirt.root / "new.xml"
    new.write_text(xml(disk="/elsewhere/d.raw"))
    res = pyvirt("managedsave-define", "d", str(new), "--paused")
    assert res.out == "Managed save state file of domain 'd' updated.\n\n"
    header = saveimage.read_header(image)
    assert "/elsewhere/d.raw" in header.xml and header.running is False
    assert image.read_bytes()[header.stream_offset :] == STREAM

    _editor(pyvirt, "s,/elsewhere/,/edited/,")
    res = pyvirt("managedsave-edit", "d", "--running")
    assert res.out == "Managed save image of domain 'd' XML configuration edited.\n\n"
    header = saveimage.read_header(image)
    assert "/edited/d.raw" in header.xml and header.running is True
    # unchanged XML: only the run state, as virsh does
    _editor(pyvirt, "s,nothing-matches,,")
    res = pyvirt("managedsave-edit", "d", "--paused")
    assert res.out.endswith("Managed save state file of domain 'd' updated.\n\n")
    assert saveimage.read_header(image).running is False
    # other hardware: refused, the image stays
    before = image.read_bytes()
    _editor(pyvirt, "s,64,128,")
    res = pyvirt("managedsave-edit", "d", check=False, input="")
    assert res.rc == 1 and "virtual hardware" in res.err
    assert image.read_bytes() == before


def test_save_image_edit(pyvirt: Pyvirt) -> None:
    image = pyvirt.root / "d.save"
    make_image(image, saveimage.SaveHeader(xml=xml(), running=True))
    _editor(pyvirt, "s,/img/,/moved/,")
    res = pyvirt("save-image-edit", str(image), "--paused")
    assert res.out == "Saved image 'd.save' XML configuration edited.\n\n"
    header = saveimage.read_header(image)
    assert "/moved/d.raw" in header.xml and header.running is False
    assert "passwd='s3cret'" in header.xml  # edited with the secrets, kept
    assert image.read_bytes()[header.stream_offset :] == STREAM
    assert not [p for p in pyvirt.root.iterdir() if p.name.endswith(".tmp")]


def test_help_lists_the_edit_verbs(pyvirt: Pyvirt) -> None:
    out = pyvirt("help", "domain").out
    for verb in ("managedsave-define", "managedsave-edit", "save-image-edit"):
        assert f"    {verb} " in out, verb
