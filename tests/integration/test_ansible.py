"""Ansible's community.libvirt modules (``virt``, ``virt_net``, ``virt_pool``) unmodified,
against pyvirt through the ``libvirt`` shim on a temporary state directory: one ad-hoc
``list_vms`` and one playbook that defines, starts, inspects, destroys, starts again, shuts
down and undefines a real guest, and defines, inspects and removes a network and a pool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pyvirt
from pyvirt.images.tiny import TinyImage
from tests.integration.conftest import TINY_CMDLINE

pytestmark = pytest.mark.qemu

SHIM = Path(pyvirt.__file__).resolve().parent / "libvirt_shim"
SRC = Path(pyvirt.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - community.libvirt.virt: {command: define, xml: "{{ lookup('file', domain_xml) }}"}
      register: define
    - community.libvirt.virt: {command: status, name: an1}
      register: status_defined
    - community.libvirt.virt: {command: start, name: an1}
      register: start
    - community.libvirt.virt: {command: status, name: an1}
      register: status_started
    - community.libvirt.virt: {command: info}
      register: info
    - community.libvirt.virt: {command: list_vms, state: running}
      register: running
    - community.libvirt.virt: {command: destroy, name: an1}
      register: destroy
    - community.libvirt.virt: {command: status, name: an1}
      register: status_destroyed
    - community.libvirt.virt: {command: destroy, name: an1}
      register: destroy_again
      ignore_errors: true
    - community.libvirt.virt: {name: an1, state: running}
    - community.libvirt.virt: {command: shutdown, name: an1}
      register: shutdown
    - community.libvirt.virt: {name: an1, state: destroyed}
    - community.libvirt.virt: {command: status, name: an1}
      register: status_stopped
    - community.libvirt.virt: {command: undefine, name: an1}
    - community.libvirt.virt: {command: list_vms}
      register: after_undefine

    - community.libvirt.virt_net: {command: define, name: lab, xml: "{{ lookup('file', net_xml) }}"}
    - community.libvirt.virt_net: {command: list_nets}
      register: nets
    - community.libvirt.virt_net: {command: status, name: lab}
      register: net_status
    - community.libvirt.virt_net: {command: facts}
    - set_fact: {net_facts: "{{ ansible_libvirt_networks }}"}
    - community.libvirt.virt_net: {command: undefine, name: lab}

    - community.libvirt.virt_pool:
        {command: define, name: ap, xml: "{{ lookup('file', pool_xml) }}"}
    - community.libvirt.virt_pool: {command: build, name: ap}
    - community.libvirt.virt_pool: {command: create, name: ap}
    - community.libvirt.virt_pool: {command: facts}
    - set_fact: {pool_facts: "{{ ansible_libvirt_pools }}"}
    - community.libvirt.virt_pool: {command: destroy, name: ap}
    - community.libvirt.virt_pool: {command: undefine, name: ap}
    - community.libvirt.virt_pool: {command: list_pools}
      register: pools_after

    - copy:
        dest: "{{ results_file }}"
        content: "{{ {'define': define, 'status_defined': status_defined, 'start': start,
                      'status_started': status_started, 'info': info, 'running': running,
                      'destroy': destroy, 'destroy_again': destroy_again,
                      'status_destroyed': status_destroyed, 'shutdown': shutdown,
                      'status_stopped': status_stopped, 'after_undefine': after_undefine,
                      'nets': nets, 'net_status': net_status, 'net_facts': net_facts,
                      'pool_facts': pool_facts, 'pools_after': pools_after} | to_json }}"
"""


def _ansible_or_skip() -> None:
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible is not installed in this virtualenv (scripts/setup.sh installs it)")
    probe = subprocess.run(
        [sys.executable, "-c", "import ansible_collections.community.libvirt"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("the community.libvirt collection is missing (the 'ansible' package has it)")


def _env(root: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_URI")}
    env.update(
        PYVIRT_STATE_DIR=str(root),
        PYTHONPATH=f"{SHIM}:{SRC}",
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(work / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        PYTHONWARNINGS="ignore",
    )
    return env


def _run(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_community_libvirt_modules(
    state_root: Path, tiny_image: TinyImage, qemu_binary: str
) -> None:
    _ansible_or_skip()
    work = state_root.parent / f"{state_root.name}-ansible"
    work.mkdir()
    try:
        _play(state_root, work, tiny_image)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _play(root: Path, work: Path, image: TinyImage) -> None:
    env = _env(root, work)
    inventory = [
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
    ]
    out = _run(
        [str(BIN / "ansible"), "all", *inventory, "-m", "community.libvirt.virt",
         "-a", "command=list_vms"],
        env,
    )  # fmt: skip
    assert '"list_vms": []' in out

    (work / "domain.xml").write_text(f"""<domain type='qemu'>
  <name>an1</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{TINY_CMDLINE}</cmdline>
  </os>
  <features><acpi/></features>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>""")
    (work / "net.xml").write_text(
        "<network><name>lab</name><forward mode='nat'/><bridge name='virbr7'/>"
        "<ip address='192.168.157.1' netmask='255.255.255.0'/></network>"
    )
    (work / "pool.xml").write_text(
        f"<pool type='dir'><name>ap</name><target><path>{work / 'pool'}</path></target></pool>"
    )
    (work / "play.yml").write_text(PLAYBOOK)
    results = work / "results.json"
    extra = (
        f"domain_xml={work / 'domain.xml'} net_xml={work / 'net.xml'} "
        f"pool_xml={work / 'pool.xml'} results_file={results}"
    )
    _run([str(BIN / "ansible-playbook"), *inventory, "-e", extra, str(work / "play.yml")], env)
    r: dict[str, Any] = json.loads(results.read_text())

    assert r["define"]["created"] == "an1"
    assert r["status_defined"]["status"] == "shutdown"
    assert r["start"]["start"] == 0
    assert r["status_started"]["status"] == "running"
    an1 = r["info"]["an1"]
    assert an1["state"] == "running" and an1["maxMem"] == "163840" and an1["nrVirtCpu"] == 1
    assert r["running"]["list_vms"] == ["an1"]
    assert r["destroy"]["destroy"] == 0
    assert r["status_destroyed"]["status"] == "shutdown"
    # destroy of a stopped guest fails with libvirt's message
    assert r["destroy_again"]["failed"] and "not running" in r["destroy_again"]["msg"]
    # started again by state=running, then shut down (or destroyed if the guest was too slow)
    assert r["shutdown"]["shutdown"] == 0
    assert r["status_stopped"]["status"] == "shutdown"
    assert r["after_undefine"]["list_vms"] == []

    assert "lab" in r["nets"]["list_nets"]
    assert r["net_status"]["status"] == "inactive"
    lab = r["net_facts"]["lab"]
    assert (lab["bridge"], lab["forward_mode"], lab["persistent"]) == ("virbr7", "nat", "yes")

    ap = r["pool_facts"]["ap"]
    assert (ap["state"], ap["type"], ap["path"]) == ("active", "dir", str(work / "pool"))
    assert "ap" not in r["pools_after"]["list_pools"]
