"""``<sound>`` (an emulated sound card) and ``<audio>`` (the host backend it plays through)."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, int_attr

#: libvirt's sound models (``pcspk`` is the PC speaker: a machine property, no device)
SOUND_MODELS = ("sb16", "es1370", "pcspk", "ac97", "ich6", "ich7", "ich9", "usb", "ics6")
#: libvirt's audio backend types
AUDIO_TYPES = ("none", "alsa", "coreaudio", "dbus", "jack", "oss", "pulseaudio", "sdl", "spice",
               "file", "pipewire")  # fmt: skip
#: codec types of an HDA sound card
CODECS = ("duplex", "micro", "output")


@register_device("sound")
class Sound(Device):
    """``<sound model [multichannel]><codec type/>...<audio id/></sound>``."""

    ORDER = ("codec", "audio", "alias", "address")

    model = attr("model", choices=SOUND_MODELS)
    multichannel = attr("multichannel", choices=("yes", "no"))
    audio_id = int_attr("id", "audio")

    @property
    def codecs(self) -> list[str]:
        """The ``type`` of each ``<codec>`` (an HDA card without one has a duplex codec)."""
        return [c.get("type") or "" for c in self.element.iterchildren("codec")]


@register_device("audio")
class Audio(Device):
    """``<audio id type [timerPeriod]>`` with ``<input>``/``<output>`` stream settings."""

    ORDER = ("input", "output")

    id = int_attr("id")
    type = attr("type", choices=AUDIO_TYPES)
    timer_period = int_attr("timerPeriod")
