"""The :class:`Domain` handle (``conn.domains.get(name)``) and its value types.

The handle carries virsh's domain verbs in snake_case. This module holds the lifecycle and
inspection verbs; tuning (:mod:`pyvirt.api.domain_tuning`), disks, NICs and display
(:mod:`pyvirt.api.domain_devices`) and the guest agent (:mod:`pyvirt.api.domain_agent`) are
mixed in. Verbs that change a domain take keyword-only ``live`` and ``config`` (both False:
libvirt's "current", the running domain if it runs, else its definition). The collection is
:class:`pyvirt.api.domains.DomainCollection`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_agent import DomainAgent
from pyvirt.api.domain_base import DomainHandle
from pyvirt.api.domain_blockjobs import DomainBlockJobs
from pyvirt.api.domain_checkpoints import DomainCheckpoints
from pyvirt.api.domain_consoles import DomainConsoles
from pyvirt.api.domain_devices import DomainDevices
from pyvirt.api.domain_devxml import DomainDeviceXml
from pyvirt.api.domain_migrate import DomainMigrate
from pyvirt.api.domain_save import DomainSave
from pyvirt.api.domain_snapshots import DomainSnapshots
from pyvirt.api.domain_stats import DomainStatsVerbs
from pyvirt.api.domain_tuning import DomainTuning
from pyvirt.errors import InvalidConfigError, InvalidStateError, OperationFailedError
from pyvirt.service.domain.types import DomainStatus, Reason, State

if TYPE_CHECKING:
    from pyvirt.api.domain_info import DomainInfo
    from pyvirt.api.domain_values import VncDisplay

__all__ = ["Domain", "DomainInfo", "DomainStatus", "Reason", "State", "VncDisplay"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the lifecycle and storage
# code load the QEMU driver and storage backends (~15-40 ms) that ``pyvirt list`` and ``dominfo``
# do not need; the value types (a dataclass costs ~0.5 ms to create) load with the verbs that
# return them.


def __getattr__(name: str) -> Any:
    """Re-export :class:`~pyvirt.api.domain_info.DomainInfo` and
    :class:`~pyvirt.api.domain_values.VncDisplay` (created on first use)."""
    if name == "DomainInfo":
        from pyvirt.api.domain_info import DomainInfo  # lazy

        return DomainInfo
    if name == "VncDisplay":
        from pyvirt.api.domain_values import VncDisplay  # lazy

        return VncDisplay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Domain(
    DomainTuning,
    DomainDevices,
    DomainBlockJobs,
    DomainCheckpoints,
    DomainDeviceXml,
    DomainAgent,
    DomainSnapshots,
    DomainSave,
    DomainMigrate,
    DomainStatsVerbs,
    DomainConsoles,
    DomainHandle,
):
    """One domain (virtual machine), by name. Get one from ``conn.domains.get(name)``."""

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, *, paused: bool = False, force_boot: bool = False) -> DomainStatus:
        """Start the shut-off, defined domain (``start``); a managed save image is resumed
        (and removed) instead of booting.

        :param paused: leave its vCPUs stopped (``resume`` runs them)
        :param force_boot: discard a managed save image and boot
        :raises InvalidStateError: it is running already
        """
        from pyvirt.service.cluster.guard import before_start  # lazy

        before_start(self._service, self._name)  # a cluster domain runs on its owner only
        if force_boot:
            self.managed_save_remove()
        return self._domains.start(self._name, paused=paused)

    def shutdown(self, mode: str | Sequence[str] | None = None) -> None:
        """Ask the guest to power off; returns at once, like virsh.

        :param mode: ``acpi`` (the power button, default) or ``agent`` (the guest agent), or
            several to try in turn (``"agent,acpi"`` or ``["agent", "acpi"]``)
        :raises InvalidStateError: it is not running
        """
        from pyvirt.service.domain import agent, lifecycle  # lazy

        if mode is None:
            lifecycle.shutdown(self._domains, self._name)
            return
        modes = mode.split(",") if isinstance(mode, str) else list(mode)
        agent.shutdown_with_modes(self._domains, self._name, [m.strip() for m in modes if m])

    def destroy(self, *, graceful: bool = False, stop_work: bool = True) -> None:
        """Stop QEMU at once (``destroy``); the shut-off reason becomes ``destroyed``.

        :param graceful: give QEMU longer to exit before it is killed
        :param stop_work: False returns once QEMU is gone and leaves the stop work (hooks,
            run directory) to the domain's watcher: only for its supervisor (pyvirtd)
        :raises InvalidStateError: it is not running
        """
        from pyvirt.service.domain import lifecycle  # lazy

        lifecycle.destroy(self._domains, self._name, graceful=graceful, stop_work=stop_work)

    def reboot(self) -> None:
        """Reboot the guest (``reboot``)."""
        from pyvirt.service.domain import lifecycle  # lazy

        lifecycle.reboot(self._domains, self._name)

    def reset(self) -> None:
        """Reset the machine like its reset button (``reset``)."""
        from pyvirt.service.domain import lifecycle  # lazy

        lifecycle.reset(self._domains, self._name)

    def suspend(self) -> None:
        """Pause the vCPUs (``suspend``)."""
        from pyvirt.service.domain import lifecycle  # lazy

        lifecycle.suspend(self._domains, self._name)

    def resume(self) -> None:
        """Run the vCPUs of a paused domain again (``resume``)."""
        from pyvirt.service.domain import lifecycle  # lazy

        lifecycle.resume(self._domains, self._name)

    def undefine(
        self,
        *,
        remove_all_storage: bool = False,
        storage: Sequence[str] = (),
        force: bool = False,
        snapshots_metadata: bool = False,
        managed_save: bool = False,
        checkpoints_metadata: bool = False,
        nvram: bool = False,
        keep_nvram: bool = False,
        tpm: bool = False,
        keep_tpm: bool = False,
    ) -> list[str]:
        """Remove the persistent definition; a running domain becomes transient.

        :param remove_all_storage: also delete its writable disk files and volumes (and the
            images its snapshots made or froze)
        :param storage: delete only these disks (targets such as ``vda``, or source paths)
        :param force: remove the definition even when pyvirt cannot read it (corrupt)
        :param snapshots_metadata: also drop its snapshots' metadata (refused without)
        :param checkpoints_metadata: also drop its checkpoints' metadata (refused without)
        :param managed_save: also discard its managed save image (refused without)
        :param nvram: also delete its UEFI variables file (refused while one exists, unless
            *nvram* or *keep_nvram*)
        :param keep_nvram: keep its UEFI variables file
        :param tpm: delete its emulated TPM's state even with ``persistent_state='yes'``
        :param keep_tpm: keep its emulated TPM's state (deleted by default)
        :returns: the files (``/path``) and volumes (``POOL/VOLUME``) deleted
        :raises InvalidStateError: it is transient, has snapshots, or storage removal while
            it runs
        """
        if nvram and keep_nvram:
            raise InvalidConfigError(
                "options --nvram and --keep-nvram are mutually exclusive", hint="give one of them"
            )
        if tpm and keep_tpm:
            raise InvalidConfigError(
                "options --tpm and --keep-tpm are mutually exclusive", hint="give one of them"
            )
        if force and self._domains.undefine_broken(self._name):
            return []
        from pyvirt.service.snapshot import delete as snapshots  # lazy

        name = self._domains.resolve(self._name)
        snapshots.check_undefine(self._domains, name, snapshots_metadata=snapshots_metadata)
        from pyvirt.service.checkpoint import delete as checkpoints  # lazy

        checkpoints.check_undefine(self._domains, name, checkpoints_metadata=checkpoints_metadata)
        extra = snapshots.files_to_remove(self._domains, name) if remove_all_storage else []
        remove = None
        if remove_all_storage or storage:
            from pyvirt.service.storage.volumes import remove_domain_storage  # lazy

            pools = self._service.pools
            remove = functools.partial(remove_domain_storage, pools, only=storage)
        removed = self._domains.undefine(
            self._name,
            remove_storage=remove,
            managed_save=managed_save,
            nvram=True if nvram else False if keep_nvram else None,
            tpm=True if tpm else False if keep_tpm else None,
        )
        removed += snapshots.drop(self._domains, name, extra)
        checkpoints.drop(self._domains, name)
        return removed

    def rename(self, new_name: str) -> None:
        """Rename the shut-off, persistent domain (``domrename``); the handle follows.

        :raises AlreadyExistsError: ``new_name`` is taken
        :raises InvalidStateError: it runs or is transient
        """
        self._domains.rename(self._name, new_name)
        self._name = new_name

    def set_autostart(self, enabled: bool) -> None:
        """Start (or not) the domain when the host starts; read it back in :meth:`status`.

        :raises InvalidStateError: it is transient
        """
        self._domains.set_autostart(self._name, enabled)

    def revision(self) -> str:
        """The revision of the persistent definition (a content hash; an ETag): pass it to
        :meth:`redefine` or ``domains.define(expect_revision=...)`` to refuse lost updates.

        :raises InvalidStateError: the domain is transient
        """
        return self._domains.revision(self._name)

    def redefine(self, xml: str | bytes, *, expect_revision: str | None = None) -> list[str]:
        """Replace the definition with ``xml`` (``edit``), keeping the name; returns warnings.

        :param expect_revision: the :meth:`revision` ``xml`` was based on; the change is
            refused if the definition changed since (None: no check)
        :raises InvalidConfigError: invalid XML, or XML that names another domain
        :raises InvalidStateError: the definition changed since ``expect_revision``
        """
        new = self._domains.parse(xml)
        if new.name != self._name:
            raise InvalidConfigError(
                f"edit must not change the name ('{self._name}' -> '{new.name}')",
                hint="use 'domrename' to rename a domain",
            )
        check: str | bool = False if expect_revision is None else expect_revision
        _, warnings = self._domains.define(xml, expect_revision=check)
        return list(warnings)

    # -- inspection ---------------------------------------------------------------------
    def status(self) -> DomainStatus:
        """State, reason, id, UUID, persistence and autostart, reconciled with reality."""
        return self._domains.status(self._name)

    def state(self) -> tuple[State, Reason]:
        """The state and why the domain is in it (``domstate --reason``)."""
        st = self.status()
        return st.state, st.reason

    def info(self) -> DomainInfo:
        """``dominfo``: the status and a summary of the (live) definition."""
        from pyvirt.api.domain_info import DomainInfo  # lazy

        st = self.status()
        dom = self._domains.definition(st.name)
        cpu_time = None
        if st.pid:
            from pyvirt.service.domain import lifecycle  # lazy

            cpu_time = lifecycle.cpu_time(st.pid)
        return DomainInfo(
            status=st,
            os_type=dom.os.type,
            vcpus=dom.vcpu.current or dom.vcpu.count,
            cpu_time=cpu_time,
            max_memory_kib=dom.memory_kib,
            used_memory_kib=dom.current_memory_kib,
            title=dom.title,
            managed_save=st.state is State.SHUTOFF and self.has_managed_save(),
        )

    def is_active(self) -> bool:
        """Whether QEMU runs for it (running or paused)."""
        return self.status().state is not State.SHUTOFF

    def wait_for_state(
        self, *states: State, timeout: float = 60.0, interval: float = 0.1
    ) -> DomainStatus:
        """Wait until the domain is in one of ``states``; returns that status.

        A transient domain disappears when it stops: waiting for :attr:`State.SHUTOFF` then
        ends with :class:`~pyvirt.errors.NotFoundError`.

        :raises OperationFailedError: not reached within ``timeout`` seconds
        """
        if not states:
            raise InvalidConfigError("wait_for_state needs at least one state")
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.state in states:
                return st
            if time.monotonic() >= deadline:
                wanted = " or ".join(f"'{s}'" for s in states)
                raise OperationFailedError(
                    f"domain '{self._name}' is still '{st.state}' after {timeout:g}s, not {wanted}"
                )
            time.sleep(interval)

    def xml_desc(self, *, inactive: bool = False, security_info: bool = False) -> str:
        """The definition as XML (``dumpxml``): the live one while it runs unless ``inactive``.

        :param security_info: include secrets (the VNC password), as ``--security-info``
        """
        return self._domains.dumpxml(self._name, inactive=inactive, security_info=security_info)

    def xpath(self, expr: str, *, inactive: bool = False) -> list[str]:
        """The nodes of :meth:`xml_desc` matching the XPath ``expr``, serialized.

        :raises InvalidConfigError: a malformed expression
        """
        return self._domains.xpath(self._name, expr, inactive=inactive)

    def native_argv(self) -> list[str]:
        """The QEMU command line its persistent definition would start with."""
        from pyvirt.service.domain import lifecycle  # lazy

        mgr = self._domains
        return lifecycle.native_argv(mgr, mgr.definition(self._name, inactive=True))

    # -- consoles -----------------------------------------------------------------------
    def console_socket(self) -> Path:
        """The running domain's serial console on the host: its ``/dev/pts/N`` (or the unix
        socket of a domain started by an older pyvirt).

        :raises InvalidStateError: it is not running or has no serial console
        """
        from pyvirt.service.domain import lifecycle  # lazy

        _, sock = lifecycle.console_socket(self._domains, self._name)
        return sock

    def attach_console(self, *, force: bool = False) -> str:
        """Connect this process's terminal to the serial console until ``^]`` or the end.

        :param force: take the console over from another session (which ends)
        :returns: why it ended: ``"escape"``, ``"closed"``, ``"eof"`` or ``"taken over"``
        :raises OperationFailedError: another session holds the console (not ``force``)
        """
        from pyvirt.service.domain import lifecycle  # lazy

        return lifecycle.attach_console(self._domains, self._name, force=force)

    def vnc_display(self) -> VncDisplay:
        """The running domain's VNC display.

        :raises InvalidStateError: it is not running or has no VNC display
        """
        from pyvirt.api.domain_values import VncDisplay  # lazy

        name, rec = self._domains.running(self._name)
        if rec.vnc_display is None:
            raise InvalidStateError(f"domain '{name}' has no VNC display")
        listen = "127.0.0.1"
        for g in self._domains.definition(name).devices.graphics:
            if g.type == "vnc" and g.listen:
                listen = g.listen
        return VncDisplay(listen, rec.vnc_display)
