"""``<tpm>`` with swtpm on a real guest (issue 14): the guest's kernel finds a TPM 2.0 and
reads the endorsement key swtpm_setup made; the state lives on the host, swtpm goes with the
guest, a restart finds the same key, and undefine removes the state unless --keep-tpm."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.nethelp import shell
from tests.integration.test_lifecycle import domain_xml, wait_marker

pytestmark = pytest.mark.qemu

TPM = "<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>"
#: QEMU 7.2 with a TPM and direct kernel boot hands the guest corrupt ACPI tables (the TPM's
#: event log area pushes them under the initrd; docs/compatibility.md): the kernel then probes
#: the TIS interface at its fixed address instead of through ACPI
FORCE_TIS = "panic=-1 tpm_tis.force=1"
UUID = "5e1f0b7c-3c1d-4a57-9a57-0c7a1d2e7f01"
#: TPM2_ReadPublic of the RSA EK's persistent handle 0x81010001 (octal escapes for busybox)
READ_EK = r"\200\001\000\000\000\016\000\000\001\163\201\001\000\001"


@pytest.fixture(scope="module")
def swtpm() -> None:
    if shutil.which("swtpm") is None or shutil.which("swtpm_setup") is None:
        pytest.skip("swtpm is not installed (Debian packages swtpm and swtpm-tools)")


def _ek(pv: Pyvirt) -> str:
    """The guest's answer to TPM2_ReadPublic of the EK, as hex bytes."""
    # (a prefix the console may eat the start of, as the shell sets its terminal up)
    out = shell(pv, "t1", f": ; : ; cat /sys/class/tpm/tpm0/tpm_version_major; "
                f"exec 3<>/dev/tpm0; printf '{READ_EK}' >&3; "
                "dd bs=4096 count=1 <&3 2>/dev/null | od -An -tx1 -v; exec 3>&-")  # fmt: skip
    assert re.search(r"^2\s*$", out, re.M), out  # a TPM 2.0
    body = "".join(re.findall(r"^((?: [0-9a-f]{2})+)\s*$", out, re.M)).split()
    assert body[:2] == ["80", "01"] and body[6:10] == ["00"] * 4, out  # TPM_RC_SUCCESS
    return "".join(body)


def _swtpm_pid(pv: Pyvirt) -> int:
    return int((pv.root / "run/qemu/t1/swtpm/swtpm.pid").read_text())


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # a zombie counts as gone: its parent (init, a subreaper) reaps it
            if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_swtpm_tpm_state_survives_restarts(pyvirt: Pyvirt, tiny_image: Any, swtpm: None) -> None:
    path = pyvirt.root / "t.xml"
    xml = domain_xml(tiny_image, "t1", extra_devices=TPM).replace("panic=-1", FORCE_TIS)
    path.write_text(xml.replace("<name>t1</name>", f"<name>t1</name><uuid>{UUID}</uuid>"))
    pyvirt("define", str(path))
    state = pyvirt.root / "lib/swtpm" / UUID / "tpm2"
    pyvirt("start", "t1")
    try:
        wait_marker(pyvirt, "t1")
        first = _ek(pyvirt)
        assert (state / "tpm2-00.permall").stat().st_size > 0
        pid = _swtpm_pid(pyvirt)
    finally:
        pyvirt("destroy", "t1")
    assert _gone(pid), "swtpm still runs after destroy"
    pyvirt("start", "t1")
    try:
        wait_marker(pyvirt, "t1")
        assert _ek(pyvirt) == first  # the same TPM: its state was kept, not made anew
        pid = _swtpm_pid(pyvirt)
    finally:
        pyvirt("destroy", "t1")
    assert _gone(pid)
    pyvirt("undefine", "t1", "--keep-tpm")
    assert (state / "tpm2-00.permall").exists()
    pyvirt("define", str(path))
    pyvirt("undefine", "t1")
    assert not state.parent.exists()


def test_passthrough_without_a_host_tpm_is_refused(
    pyvirt: Pyvirt, tiny_image: Any, swtpm: None
) -> None:
    if Path("/dev/tpm0").exists():
        pytest.skip("this host has a TPM")
    dev = ("<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/>"
           "</backend></tpm>")  # fmt: skip
    path = pyvirt.root / "p.xml"
    path.write_text(domain_xml(tiny_image, "p1", extra_devices=dev))
    pyvirt("define", str(path))
    res = pyvirt("start", "p1", check=False)
    assert res.rc == 1 and "the host has no TPM at /dev/tpm0" in res.err, res.err
