"""The device-XML commands through the real CLI on a shut-off domain (no QEMU): option rules
with one error line, --config-side changes, and the refusals of live-only verbs."""

from __future__ import annotations

import pytest

from tests.conftest import Pyvirt

GOOD = """<domain type='qemu'><name>dx</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='cdrom'><source file='/srv/a.iso'/><target dev='hdc' bus='ide'/>
<readonly/></disk></devices></domain>"""


@pytest.fixture
def dx(pyvirt: Pyvirt) -> Pyvirt:
    (pyvirt.root / "dx.xml").write_text(GOOD)
    pyvirt("define", str(pyvirt.root / "dx.xml"))
    return pyvirt


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["change-media", "dx", "hdc", "--eject", "--insert"], "--eject and --insert are mutually"),
        (["change-media", "dx", "hdc", "--insert"], "no source is specified"),
        (["change-media", "dx", "hdc", "--live", "--eject"], "domain 'dx' is not running"),
        (["change-media", "dx", "vdz", "--eject"], "source path or target is vdz"),
        (["desc", "dx", "--edit", "--new-desc", "x"], "--edit and --new-desc"),
        (["metadata", "dx", "urn:x", "--set", "<a/>", "--remove"], "mutually exclusive"),
        (["metadata", "dx", "urn:x", "--set", "<a/>"], "namespace prefix"),
        (["metadata", "dx", "urn:x"], "metadata not found"),
        (["send-key", "dx", "KEY_A"], "domain 'dx' is not running"),
        (["send-key", "dx", "--codeset", "morse", "KEY_A"], "unknown codeset 'morse'"),
        (["domblkerror", "dx"], "is not running"),
        (["desc", "dx", "--current", "--config", "--new-desc", "x"], "--current and --config"),
    ],
)
def test_refusals(dx: Pyvirt, args: list[str], expected: str) -> None:
    before = dx.snapshot()
    res = dx(*args, check=False)
    assert res.rc == 1, res
    line = res.err.strip().splitlines()[0]
    assert line.startswith("error: ") and expected in line, res.err
    assert dx.snapshot() == before


def test_attach_device_refusals(dx: Pyvirt) -> None:
    (dx.root / "panic.xml").write_text("<panic model='isa'/>")
    res = dx("attach-device", "dx", str(dx.root / "panic.xml"), check=False)
    assert res.rc == 1 and "<panic> cannot be attached" in res.err
    (dx.root / "rng.xml").write_text("<rng model='virtio'><backend model='builtin'/></rng>")
    res = dx("attach-device", "dx", str(dx.root / "rng.xml"), "--live", check=False)
    assert res.rc == 1 and "is not running" in res.err


def test_config_side_of_a_shut_off_domain(dx: Pyvirt) -> None:
    rng = dx.root / "rng.xml"
    rng.write_text("<rng model='virtio'><backend model='builtin'/></rng>")
    assert dx("attach-device", "dx", str(rng)).out == "Device attached successfully\n\n"
    assert "<rng model='virtio'>" in dx("dumpxml", "dx").out
    assert dx("detach-device", "dx", str(rng), "--config").out == "Device detached successfully\n\n"
    assert "<rng" not in dx("dumpxml", "dx").out
    assert dx("change-media", "dx", "hdc", "--eject").out == "Successfully ejected media.\n"
    before = dx("dumpxml", "dx").out
    out = dx("change-media", "dx", "hdc", "/srv/b.iso", "--print-xml").out
    assert out.startswith("<disk ") and "<source file='/srv/b.iso'/>" in out
    assert dx("dumpxml", "dx").out == before  # --print-xml changes nothing
    assert dx("change-media", "dx", "hdc", "/srv/b.iso").out == "Successfully updated media.\n"
    assert "/srv/b.iso" in dx("dumpxml", "dx").out
    assert dx("desc", "dx").out == "No description for domain: dx\n"
    assert (
        dx("desc", "dx", "--title", "--new-desc", "T").out == "Domain title updated successfully\n"
    )
    assert dx("desc", "dx", "--title").out == "T\n"
    out = dx("metadata", "dx", "urn:app", "--key", "a", "--set", "<x y='1'/>").out
    assert out == "Metadata modified\n"
    assert dx("metadata", "dx", "urn:app").out == "<a:x y='1' xmlns:a='urn:app'/>\n"
    assert dx("metadata", "dx", "urn:app", "--remove").out == "Metadata removed\n"
    assert dx("domcontrol", "dx").out == "ok\n"
