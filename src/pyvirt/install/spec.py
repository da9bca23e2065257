"""What ``pyvirt install`` was asked for, as plain data (see :mod:`pyvirt.install.options`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DiskSpec:
    """One ``--disk``: a file (existing or to create), a pool volume, or a CD-ROM."""

    path: str | None = None
    pool: str | None = None
    vol: str | None = None
    size_gb: float | None = None
    format: str | None = None
    bus: str | None = None
    target: str | None = None
    cache: str | None = None
    io: str | None = None
    discard: str | None = None
    sparse: bool = True
    device: str = "disk"
    readonly: bool = False
    shareable: bool = False
    boot_order: int | None = None
    serial: str | None = None


@dataclass
class NicSpec:
    """One ``--network``: ``type`` is network, bridge or user."""

    type: str = "network"
    source: str | None = None
    model: str | None = None
    mac: str | None = None
    target: str | None = None


@dataclass
class GraphicsSpec:
    """``--graphics``: ``type`` is vnc or none."""

    type: str = "vnc"
    listen: str | None = None
    port: int | None = None
    keymap: str | None = None
    password: str | None = None


@dataclass
class VcpuSpec:
    """``--vcpus N[,sockets=,cores=,threads=,maxvcpus=]``."""

    count: int | None = None
    maxvcpus: int | None = None
    sockets: int | None = None
    dies: int | None = None
    cores: int | None = None
    threads: int | None = None
    cpuset: str | None = None


@dataclass
class CpuSpec:
    """``--cpu MODE|MODEL[,+feature,-feature,match=]``."""

    mode: str | None = None
    model: str | None = None
    features: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class BootSpec:
    """``--boot``: device order, direct kernel boot, firmware."""

    order: list[str] = field(default_factory=list)
    kernel: str | None = None
    initrd: str | None = None
    kernel_args: str | None = None
    uefi: bool = False
    menu: bool | None = None
    loader: str | None = None
    nvram_template: str | None = None


@dataclass
class CloudInitSpec:
    """``--cloud-init``: what goes into the NoCloud seed ISO."""

    root_password: str | None = None
    root_password_generate: bool = False
    ssh_keys: list[str] = field(default_factory=list)
    user_data: str | None = None
    meta_data: str | None = None
    network_config: str | None = None
    disable: bool = True


@dataclass
class ConsoleSpec:
    """``--console pty[,target_type=serial|virtio]``."""

    type: str = "pty"
    target_type: str = "serial"


@dataclass
class CheckSpec:
    """``--check path_in_use=off,disk_size=off,mac_in_use=off,all=off``."""

    path_in_use: bool = True
    disk_size: bool = True
    mac_in_use: bool = True


@dataclass
class InstallSpec:
    """Everything ``pyvirt install`` was told, before defaults are applied."""

    name: str | None = None
    memory_mib: int | None = None
    vcpus: VcpuSpec = field(default_factory=VcpuSpec)
    cpu: CpuSpec | None = None
    virt_type: str | None = None
    arch: str | None = None
    machine: str | None = None
    os_variant: str | None = None
    os_detect: bool = False
    os_require: bool = False
    cdrom: str | None = None
    location: str | None = None
    extra_args: str | None = None
    import_: bool = False
    pxe: bool = False
    boot: BootSpec = field(default_factory=BootSpec)
    disks: list[DiskSpec] = field(default_factory=list)
    nics: list[NicSpec] = field(default_factory=list)
    no_network: bool = False
    graphics: GraphicsSpec | None = None
    consoles: list[ConsoleSpec] = field(default_factory=list)
    uuid: str | None = None
    macs: list[str] = field(default_factory=list)
    cloud_init: CloudInitSpec | None = None
    sysinfo: dict[str, str] | None = None
    memorybacking: dict[str, str] | None = None
    numatune: dict[str, str] | None = None
    cputune: dict[str, str] | None = None
    check: CheckSpec = field(default_factory=CheckSpec)
    transient: bool = False
    autostart: bool = False
