"""``<tpm>``: a TPM for the guest, emulated by swtpm or passed through from the host."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr

#: libvirt's TPM models (``tpm-spapr`` is POWER's, ``spapr-tpm-proxy`` too)
TPM_MODELS = ("tpm-tis", "tpm-crb", "tpm-spapr", "spapr-tpm-proxy")
#: libvirt's backend types
BACKEND_TYPES = ("passthrough", "emulator", "external")
#: TPM versions of the emulator backend
TPM_VERSIONS = ("1.2", "2.0")
#: PCR banks ``<active_pcr_banks>`` may name
PCR_BANKS = ("sha1", "sha256", "sha384", "sha512")


@register_device("tpm")
class Tpm(Device):
    """``<tpm model><backend type [version] [persistent_state]>...</backend></tpm>``.

    The backend holds ``<device path>`` (passthrough), ``<encryption secret>`` and
    ``<active_pcr_banks><sha256/>...`` (emulator) or ``<source type mode path>`` (external).
    """

    ORDER = ("backend", "alias", "address")
    EXTRA_KNOWN = ("backend/active_pcr_banks", "backend/active_pcr_banks/*")

    model = attr("model", choices=TPM_MODELS)
    backend_type = attr("type", "backend", choices=BACKEND_TYPES)
    version = attr("version", "backend")
    persistent_state = attr("persistent_state", "backend", choices=("yes", "no"))
    device_path = attr("path", "backend/device")
    encryption_secret = attr("secret", "backend/encryption")
    source_type = attr("type", "backend/source")
    source_mode = attr("mode", "backend/source")
    source_path = attr("path", "backend/source")

    @property
    def pcr_banks(self) -> list[str]:
        """The tags under ``<active_pcr_banks>`` (empty: swtpm's default banks)."""
        banks = self.element.find("backend/active_pcr_banks")
        if banks is None:
            return []
        return [str(b.tag) for b in banks if isinstance(b.tag, str)]

    @property
    def tpm_version(self) -> str:
        """The emulated TPM's version: ``version``, else 2.0 (libvirt's default since 8.x)."""
        return self.version or "2.0"
