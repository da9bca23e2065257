"""cloud-init NoCloud seed ISOs (volume label ``cidata``: user-data, meta-data, network-config).

The ISO is written with ``xorriso -as mkisofs`` (Joliet + Rock Ridge), as cloud-init's NoCloud
datasource expects. :func:`user_data` builds a ``#cloud-config`` document from a root password
and SSH keys when the user gave no user-data of their own.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import UnsupportedError
from pyvirt.install.spec import CloudInitSpec

LABEL = "cidata"


@dataclass(frozen=True)
class Seed:
    """What went into a seed ISO; ``generated_password`` is shown to the user once."""

    user_data: str
    meta_data: str
    network_config: str | None
    generated_password: str | None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def user_data(spec: CloudInitSpec, password: str | None) -> str:
    """A ``#cloud-config`` that sets the root password and installs SSH keys."""
    lines = ["#cloud-config"]
    if password is not None:
        lines += [
            "disable_root: false",
            "ssh_pwauth: true",
            "chpasswd:",
            "  expire: false",
            "  users:",
            "    - name: root",
            f"      password: {_quote(password)}",
            "      type: text",
        ]
    if spec.ssh_keys:
        lines += ["disable_root: false"] if password is None else []
        lines.append("users:")
        lines.append("  - default")
        lines.append("  - name: root")
        lines.append("    ssh_authorized_keys:")
        lines += [f"      - {_quote(k)}" for k in spec.ssh_keys]
    if spec.disable:
        lines += ["runcmd:", "  - [touch, /etc/cloud/cloud-init.disabled]"]
    return "\n".join(lines) + "\n"


def make_seed(spec: CloudInitSpec, hostname: str, instance_id: str) -> Seed:
    """The seed's documents (a password is generated when asked or when nothing else is set)."""
    password = spec.root_password
    generated = None
    if password is None and (spec.root_password_generate or not (spec.ssh_keys or spec.user_data)):
        generated = password = secrets.token_urlsafe(12)
    data = spec.user_data if spec.user_data is not None else user_data(spec, password)
    meta = spec.meta_data or f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    return Seed(data, meta, spec.network_config, generated)


def write_iso(seed: Seed, output: Path) -> Path:
    """Write ``seed`` as a NoCloud ISO at ``output``."""
    tool = shutil.which("xorriso")
    if tool is None:
        raise UnsupportedError(
            "building the cloud-init seed ISO needs xorriso", hint="install the package xorriso"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pyvirt-cidata-") as tmp:
        root = Path(tmp)
        (root / "user-data").write_text(seed.user_data)
        (root / "meta-data").write_text(seed.meta_data)
        if seed.network_config:
            (root / "network-config").write_text(seed.network_config)
        argv = [tool, "-as", "mkisofs", "-quiet", "-V", LABEL, "-J", "-r", "-o", str(output),
                str(root)]  # fmt: skip
        hostcmd.run(argv, what="cannot build the cloud-init seed ISO", timeout=60)
    output.chmod(0o600)
    return output
