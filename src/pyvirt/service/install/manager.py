"""``pyvirt install`` (virt-install): checks, disk creation, define, first boot, wait.

:meth:`InstallManager.prepare` turns an :class:`~pyvirt.install.spec.InstallSpec` into an
:class:`InstallPlan` without changing anything (``--print-xml`` and ``--dry-run`` stop there);
:meth:`InstallManager.run` creates the disks, defines the final definition and starts the
install phase. Everything created is removed again when a later step fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import (
    InvalidConfigError,
    NotFoundError,
    OperationFailedError,
    PyvirtError,
    UnsupportedError,
)
from pyvirt.host import kvm
from pyvirt.install import cloudinit, media, osinfo, xmlgen
from pyvirt.install.spec import DiskSpec, InstallSpec, NicSpec
from pyvirt.service.domain.display import vnc_warnings
from pyvirt.service.domain.types import State
from pyvirt.service.install.checks import NewDisk, check_in_use, resolve_disks
from pyvirt.state.domains import check_name
from pyvirt.storage import qemu_img

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.connection import Connection

GIB = 1024**3


@dataclass
class InstallPlan:
    """The outcome of :meth:`InstallManager.prepare`: nothing has been changed yet."""

    name: str
    final: Domain
    install: Domain | None
    new_disks: list[NewDisk]
    warnings: list[str]
    variant: osinfo.OsVariant
    seed: object | None = None  # pyvirt.install.cloudinit.Seed
    seed_path: str | None = None
    nvram: str | None = None
    nvram_template: str | None = None
    created: list[str] = field(default_factory=list)
    created_volumes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def final_xml(self) -> str:
        """What ``--print-xml`` prints and ``define`` stores."""
        return self.final.to_xml()


@dataclass
class InstallResult:
    """What :meth:`InstallManager.run` did."""

    name: str
    defined: bool
    started: bool
    generated_password: str | None


def host_sysinfo() -> dict[str, str]:
    """The host's SMBIOS strings (``--sysinfo host``) from /sys/class/dmi/id."""
    keys = {
        "bios.vendor": "bios_vendor", "bios.version": "bios_version",
        "bios.date": "bios_date", "system.manufacturer": "sys_vendor",
        "system.product": "product_name", "system.version": "product_version",
        "system.family": "product_family",
    }  # fmt: skip
    out = {}
    for key, name in keys.items():
        try:
            value = Path("/sys/class/dmi/id", name).read_text().strip()
        except OSError:
            continue
        if value:
            out[key] = value
    if not out:
        raise UnsupportedError("--sysinfo host: this host exposes no SMBIOS (/sys/class/dmi/id)")
    return out


class InstallManager:
    """The install use case of one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.paths = conn.paths

    # -- planning -----------------------------------------------------------------------
    def _virt_type(self, spec: InstallSpec, warnings: list[str]) -> str:
        wanted = spec.virt_type
        if wanted is None:
            return self.conn.host.default_domain_type()
        if wanted not in ("kvm", "qemu"):
            raise InvalidConfigError(
                f"--virt-type '{wanted}' is not supported", hint="use kvm or qemu"
            )
        if wanted == "kvm":
            if not os.path.exists("/dev/kvm"):
                raise UnsupportedError(
                    "--virt-type kvm: /dev/kvm does not exist on this host",
                    hint="load kvm_intel or kvm_amd, or use --virt-type qemu (TCG)",
                )
            kvm.require_kvm(
                "--virt-type kvm",
                "use --virt-type qemu",
                cache_path=kvm.probe_cache(self.paths.cache),
            )
        return wanted

    def _variant(
        self, spec: InstallSpec, warnings: list[str], tree: str | None
    ) -> osinfo.OsVariant:
        if spec.os_variant and not spec.os_detect:
            return osinfo.lookup(spec.os_variant)
        source = spec.cdrom or spec.location
        found = media.detect(Path(source)) if source and os.path.exists(source) else None
        if found is None and tree:
            found = media.detect(Path(tree))
        if found is not None:
            return found
        if spec.os_require or (spec.os_detect and spec.os_variant is None and not source):
            raise InvalidConfigError(
                "could not detect the OS of the install media",
                hint="give --os-variant NAME (e.g. debian12) or --osinfo detect=on,require=off",
            )
        if spec.os_variant:
            return osinfo.lookup(spec.os_variant)
        if source:
            warnings.append(
                f"the OS of '{source}' was not detected; using generic defaults ('linux2022'); "
                "give --os-variant for better ones"
            )
        return osinfo.default()

    def _nics(self, spec: InstallSpec) -> list[NicSpec]:
        if spec.no_network:
            return []
        nics = list(spec.nics)
        if not nics:
            nics = [NicSpec(type="network", source="default")]
            try:
                self.conn.networks.info("default")
            except PyvirtError:
                nics = [NicSpec(type="user")]  # no default network: user networking
            return nics
        for nic in nics:
            if nic.type == "network" and nic.source:
                self._check_network(nic.source)
        return nics

    def _check_network(self, name: str) -> None:
        nets = self.conn.networks
        try:
            nets.info(name)
        except NotFoundError:
            if name != "default":
                raise NotFoundError(
                    f"network '{name}' not found",
                    hint="list networks with 'net-list --all', or use --network type=user",
                ) from None
            nets.ensure_default()

    def prepare(self, spec: InstallSpec) -> InstallPlan:
        """Check everything and build the definitions; changes nothing.

        :raises InvalidConfigError: bad or conflicting options, missing media
        :raises NotFoundError: an unknown network, pool or volume
        """
        warnings: list[str] = []
        if not spec.name:
            raise InvalidConfigError("--name is required", hint="e.g. --name vm1")
        name = check_name(spec.name)
        doms = self.conn.domains
        if doms.store.exists(name) or doms.paths.domain_run_dir(name).is_dir():
            raise InvalidConfigError(
                f"domain '{name}' already exists",
                hint="choose another --name, or undefine the existing domain",
            )
        sources = [x for x in (spec.cdrom, spec.location, spec.import_, spec.pxe) if x]
        if len(sources) > 1 or (spec.location and spec.boot.kernel):
            raise InvalidConfigError(
                "give only one install method: --cdrom, --location, --import or --pxe",
                hint="--boot kernel= goes with --import (or alone), not with --location",
            )
        if spec.memory_mib is not None and spec.memory_mib < 16:
            raise InvalidConfigError(f"--memory {spec.memory_mib}: give at least 16 MiB")
        virt_type = self._virt_type(spec, warnings)
        if spec.sysinfo is not None and set(spec.sysinfo) == {"host"}:
            spec.sysinfo = host_sysinfo()
        disks = list(spec.disks)
        if spec.cdrom:
            if not os.path.isfile(spec.cdrom) and not os.path.exists(spec.cdrom):
                raise InvalidConfigError(
                    f"--cdrom: '{spec.cdrom}' does not exist",
                    hint="give the path of an ISO image (or a host CD-ROM device)",
                )
            disks.insert(0, DiskSpec(path=os.path.abspath(spec.cdrom), device="cdrom"))
        kernel = initrd = tree = None
        if spec.location:
            pair = media.find_kernel(Path(spec.location), self.paths.cache / "install" / name)
            kernel, initrd = str(pair.kernel), str(pair.initrd)
            tree = str(pair.root) if pair.root else None
        elif spec.extra_args and not spec.boot.kernel:
            raise InvalidConfigError("--extra-args needs --location (or --boot kernel=)")
        variant = self._variant(spec, warnings, tree)
        new_disks = resolve_disks(self.conn, name, disks, spec, warnings)
        nics = self._nics(spec)
        plan_seed = seed_path = None
        if spec.cloud_init is not None:
            plan_seed = cloudinit.make_seed(spec.cloud_init, name, name)
            # under images/: the host-risk check refuses other files of the state dirs
            seed_path = str(self.paths.config / "images" / "cloud-init" / f"{name}-cidata.iso")
            disks.append(DiskSpec(path=seed_path, device="cdrom", format="raw"))
        uefi = spec.boot.uefi or variant.firmware == "efi" or bool(spec.boot.loader)
        nvram = str(self.paths.config / "qemu" / "nvram" / f"{name}_VARS.fd") if uefi else None
        inputs = xmlgen.Inputs(spec, variant, virt_type, name, disks, nics, kernel, initrd,
                               nvram, seed_path)  # fmt: skip
        final = xmlgen.final_domain(inputs)
        problems = final.validate()
        if problems:
            raise InvalidConfigError(problems=problems)
        install = xmlgen.install_domain(final, inputs)
        check_in_use(self.conn, final, spec.check)

        warnings += final.warnings + vnc_warnings(final)
        template = final.os.nvram_template
        return InstallPlan(name, final, install, new_disks, warnings, variant, plan_seed,
                           seed_path, nvram, template)  # fmt: skip

    # -- doing --------------------------------------------------------------------------
    def _create_files(self, plan: InstallPlan) -> None:
        for disk in plan.new_disks:
            if disk.pool:
                vols = self.conn.pools.volumes
                vols.create_as(disk.pool, disk.path, disk.size, format=disk.format,
                               allocation=None if disk.sparse else disk.size)  # fmt: skip
                plan.created_volumes.append((disk.pool, disk.path))
                continue
            prealloc = None if disk.sparse else ("falloc" if disk.format == "raw" else "full")
            qemu_img.create(disk.path, disk.format, disk.size, preallocation=prealloc)
            plan.created.append(disk.path)
        if plan.seed is not None and plan.seed_path:
            assert isinstance(plan.seed, cloudinit.Seed)
            cloudinit.write_iso(plan.seed, Path(plan.seed_path))
            plan.created.append(plan.seed_path)
        if plan.nvram and plan.nvram_template and not os.path.exists(plan.nvram):
            Path(plan.nvram).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(plan.nvram_template, plan.nvram)
            plan.created.append(plan.nvram)

    def run(
        self, plan: InstallPlan, *, transient: bool = False, autostart: bool = False,
        start: bool = True,
    ) -> InstallResult:  # fmt: skip
        """Create the disks, define the final definition, start the install phase."""
        doms = self.conn.domains
        defined = False
        try:
            self._create_files(plan)
            if not transient:
                doms.define(plan.final_xml)
                defined = True
                if autostart:
                    doms.set_autostart(plan.name, True)
            if start:
                first = plan.install or plan.final
                if plan.install is None and defined:
                    doms.start(plan.name)
                else:
                    doms.create(first.to_xml())
        except BaseException:
            if defined:  # with the NVRAM file its start made
                doms.undefine(plan.name, nvram=True)
            for path in reversed(plan.created):
                Path(path).unlink(missing_ok=True)
            for pool, vol in plan.created_volumes:
                with contextlib.suppress(PyvirtError):
                    self.conn.pools.volumes.delete(vol, pool)
            raise
        password = getattr(plan.seed, "generated_password", None)
        return InstallResult(plan.name, defined, start, password)

    def wait(self, plan: InstallPlan, minutes: float | None) -> bool:
        """Wait for the install phase to end (``minutes`` None or < 0: forever).

        Then, for a two-phase install of a persistent domain, boot the final definition.

        :returns: True when the install phase ended within the time
        """
        deadline = None if minutes is None or minutes < 0 else time.monotonic() + minutes * 60
        while True:
            try:
                st = self.conn.domains.status(plan.name)
            except NotFoundError:
                return True  # a transient install that ended
            if st.state == State.SHUTOFF:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        if plan.install is not None and self.conn.domains.store.exists(plan.name):
            try:
                self.conn.domains.start(plan.name)
            except PyvirtError as err:
                raise OperationFailedError(
                    f"domain '{plan.name}': the install finished but the first boot failed: "
                    f"{err.message}"
                ) from err
        return True
