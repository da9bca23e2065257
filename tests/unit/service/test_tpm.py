"""``<tpm>`` (issue 14): the model, the refusals of what pyvirt does not run (one line each),
the tpm hook's plan and its passthrough check, and the TPM state's lifetime at undefine."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, PyvirtError, UnsupportedError
from pyvirt.model.domain import Domain
from pyvirt.model.xmlmap import unknown_paths
from pyvirt.service.domain import tpm as swtpm
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths

UUID = "8f3c1b2a-0d4e-4f5a-9b6c-7d8e9f0a1b2c"


def xml(tpm: str, name: str = "t") -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid>"
        "<memory unit='KiB'>131072</memory><vcpu>1</vcpu>"
        f"<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{tpm}</devices></domain>"
    )


EMULATOR = """<tpm model='tpm-tis'><backend type='emulator' version='2.0' persistent_state='yes'>
<encryption secret='b4a117f1-8af2-44a4-91b8-7f0d2d4d68a3'/>
<active_pcr_banks><sha256/><sha512/></active_pcr_banks></backend></tpm>"""


def argv(tpm: str) -> list[str]:
    return build_argv(Domain.from_xml(xml(tpm)), ArgvContext.for_domain("t"))


def test_the_model_understands_every_backend_element() -> None:
    dom = Domain.from_xml(xml(EMULATOR))
    (tpm,) = dom.devices.tpms
    assert (tpm.model, tpm.backend_type, tpm.tpm_version) == ("tpm-tis", "emulator", "2.0")
    assert tpm.persistent_state == "yes" and tpm.pcr_banks == ["sha256", "sha512"]
    assert tpm.encryption_secret == "b4a117f1-8af2-44a4-91b8-7f0d2d4d68a3"
    assert unknown_paths(tpm) == []
    passthrough = Domain.from_xml(
        xml("<tpm><backend type='passthrough'><device path='/dev/tpm1'/></backend></tpm>")
    ).devices.tpms[0]
    assert passthrough.device_path == "/dev/tpm1" and passthrough.tpm_version == "2.0"


@pytest.mark.parametrize(
    ("tpm", "error", "message"),
    [
        ("<tpm model='tpm-spapr'><backend type='emulator'/></tpm>", UnsupportedError,
         "tpm model 'tpm-spapr' is not supported"),
        ("<tpm model='tpm-tis'><backend type='emulator' version='3.0'/></tpm>", UnsupportedError,
         "tpm emulator version '3.0' is not supported"),
        ("<tpm model='tpm-crb'><backend type='emulator' version='1.2'/></tpm>",
         InvalidConfigError, "tpm model 'tpm-crb' needs a TPM 2.0"),
        ("<tpm><backend type='external'/></tpm>", InvalidConfigError,
         "tpm backend 'external' needs <source"),
        ("<tpm><backend type='emulator'/></tpm><tpm><backend type='emulator'/></tpm>",
         UnsupportedError, "a domain can have one <tpm> only"),
    ],
)  # fmt: skip
def test_what_pyvirt_does_not_run_is_one_error_line(
    tpm: str, error: type[PyvirtError], message: str
) -> None:
    with pytest.raises(error) as exc:
        argv(tpm)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert exc.value.hint


def test_tpm_12_and_the_default_model() -> None:
    args = argv("<tpm><backend type='emulator' version='1.2'/></tpm>")
    i = args.index("-tpmdev")
    assert args[i - 2 : i + 4] == [
        "-chardev", "socket,id=chrtpm,path=/run/pyvirt/qemu/t/swtpm/swtpm.sock",
        "-tpmdev", "emulator,id=tpm-tpm0,chardev=chrtpm",
        "-device", '{"driver":"tpm-tis","tpmdev":"tpm-tpm0","id":"tpm0"}',
    ]  # fmt: skip


def test_the_hook_plans_swtpm_or_checks_the_host_tpm(tmp_path: Path) -> None:
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    hook = swtpm.TpmHook()
    plain = "<tpm><backend type='emulator'><active_pcr_banks><sha384/></active_pcr_banks>"
    res = hook.compile(mgr, Domain.from_xml(xml(plain + "</backend></tpm>")))
    assert res is not None and res.data == {
        "uuid": UUID, "version": "2.0", "banks": ["sha384"], "persistent_state": False,
    }  # fmt: skip
    missing = str(tmp_path / "no-tpm0")
    dev = f"<tpm><backend type='passthrough'><device path='{missing}'/></backend></tpm>"
    res = hook.compile(mgr, Domain.from_xml(xml(dev)))
    assert res is not None and res.data == {"passthrough": missing}
    with pytest.raises(UnsupportedError, match=f"the host has no TPM at {missing}"):
        hook.before_launch(mgr, "t", res.data)
    assert hook.compile(mgr, Domain.from_xml(xml(""))) is None
    with pytest.raises(UnsupportedError, match="encrypted TPM state"):
        hook.compile(mgr, Domain.from_xml(xml(EMULATOR)))  # refused at start, not in the argv
    assert "-tpmdev" in argv(EMULATOR)
    assert swtpm.state_dir(mgr.paths, UUID) == tmp_path / "lib" / "swtpm" / UUID / "tpm2"
    assert swtpm.state_dir(mgr.paths, UUID, "1.2").name == "tpm1.2"


def _state(mgr: DomainManager) -> Path:
    path = swtpm.state_dir(mgr.paths, UUID)
    path.mkdir(parents=True)
    (path / swtpm.TPM2_STATE_FILE).write_bytes(b"state")
    return path


@pytest.mark.parametrize(
    ("persistent", "flag", "kept"),
    [("no", None, False), ("no", False, True), ("yes", None, True), ("yes", True, False)],
)
def test_undefine_removes_the_state_unless_kept(
    tmp_path: Path, persistent: str, flag: bool | None, kept: bool
) -> None:
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    mgr.define(xml(f"<tpm><backend type='emulator' persistent_state='{persistent}'/></tpm>"))
    state = _state(mgr)
    mgr.undefine("t", tpm=flag)
    assert state.exists() == kept
    assert swtpm.has_state(mgr.paths, UUID) == kept
