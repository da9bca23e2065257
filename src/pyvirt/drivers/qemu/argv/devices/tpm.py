"""Lowering of ``<tpm>``: the ``-tpmdev`` backend (swtpm's socket, an external emulator's socket
or the host's TPM) and the ``tpm-tis``/``tpm-crb`` front end, as libvirt writes them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.devices.tpm import TPM_VERSIONS, Tpm

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: front-end models pyvirt runs on x86
MODELS = ("tpm-tis", "tpm-crb")
#: the directory of the run directory that holds swtpm's control socket and pid file
SWTPM_DIR = "swtpm"
#: the host TPM a passthrough backend without ``<device path>`` uses
DEFAULT_HOST_TPM = "/dev/tpm0"


def swtpm_socket(run_dir: Path) -> Path:
    """Where the domain's swtpm listens (QEMU's ``-chardev socket,id=chrtpm,path=``)."""
    return run_dir / SWTPM_DIR / "swtpm.sock"


def cancel_path(device: str) -> str:
    """The sysfs ``cancel`` file of host TPM ``device`` (``/dev/tpm0`` -> its ``tpm0``)."""
    return f"/sys/class/tpm/{PurePosixPath(device).name}/device/cancel"


def check_tpm(dev: Tpm) -> str:
    """Check what pyvirt can run of ``dev``; return its front-end model.

    :raises UnsupportedError: a model, backend or option pyvirt does not run
    :raises InvalidConfigError: a combination that cannot work (``tpm-crb`` with TPM 1.2)
    """
    model = dev.model or "tpm-tis"
    if model not in MODELS:
        raise UnsupportedError(
            f"tpm model '{model}' is not supported", hint="use model='tpm-tis' or 'tpm-crb'"
        )
    kind = dev.backend_type
    if kind == "emulator":
        version = dev.tpm_version
        if version not in TPM_VERSIONS:
            raise UnsupportedError(
                f"tpm emulator version '{version}' is not supported", hint="use version='2.0'"
            )
        if model == "tpm-crb" and version != "2.0":
            raise InvalidConfigError(
                "tpm model 'tpm-crb' needs a TPM 2.0", hint="use version='2.0' or model='tpm-tis'"
            )
    elif kind == "external":
        if (dev.source_type or "unix") != "unix" or not dev.source_path:
            raise InvalidConfigError(
                "tpm backend 'external' needs <source type='unix' mode='connect' path='...'/>",
                hint="name the socket of the running TPM emulator",
            )
    elif kind != "passthrough":
        raise InvalidConfigError(
            f"tpm backend type '{kind or ''}' is not supported",
            hint="use type='emulator', 'passthrough' or 'external'",
        )
    return model


@lowers(Tpm)
def lower_tpm(dev: Tpm, b: Build) -> list[str]:
    """Lower one ``<tpm>``: ``-chardev``/``-tpmdev emulator`` for swtpm or an external emulator,
    ``-tpmdev passthrough`` for the host's TPM, then the ``-device``."""
    model = check_tpm(dev)
    if b.counter("tpm") > 0:
        raise UnsupportedError("a domain can have one <tpm> only", hint="remove the others")
    alias = b.alias(dev, "tpm")
    backend = f"tpm-{alias}"
    args: list[str] = []
    if dev.backend_type == "passthrough":
        path = dev.device_path or DEFAULT_HOST_TPM
        args += ["-tpmdev", qemu_opts("passthrough", id=backend, path=path,
                                      **{"cancel-path": cancel_path(path)})]  # fmt: skip
    else:
        sock = dev.source_path if dev.backend_type == "external" else None
        path = sock or str(swtpm_socket(b.ctx.run_dir))
        args += ["-chardev", qemu_opts("socket", id="chrtpm", path=path)]
        args += ["-tpmdev", qemu_opts("emulator", id=backend, chardev="chrtpm")]
    args += ["-device", json_opts({"driver": model, "tpmdev": backend, "id": alias})]
    return args
