"""Statistics verbs of a domain handle: ``domdirtyrate-calc`` (the results are in
``conn.domains.stats(groups=[StatsGroup.DIRTYRATE])``, virsh's ``domstats --dirtyrate``)."""

from __future__ import annotations

from pyvirt.api.domain_base import DomainHandle

__all__ = ["DomainStatsVerbs"]

# lazy: function-local imports marked ``# lazy`` keep every domain command fast: the stats
# service (~10 ms of imports) loads only for the verb that needs it.


class DomainStatsVerbs(DomainHandle):
    """The statistics verbs of :class:`~pyvirt.api.domain.Domain`."""

    def dirtyrate_calc(self, seconds: int = 1, *, mode: str | None = None) -> None:
        """Start measuring how fast the guest dirties its memory, for ``seconds`` (1-60).

        :param mode: ``page-sampling`` (QEMU's default), ``dirty-bitmap`` or ``dirty-ring``
        :raises InvalidConfigError: bad seconds or mode
        :raises InvalidStateError: the domain is not running
        :raises OperationFailedError: QEMU refused (a measurement is running)
        """
        from pyvirt.service.stats import calc_dirty_rate  # lazy

        calc_dirty_rate(self._domains, self._name, seconds, mode=mode)
