"""Lowering of ``<audio>`` (``-audiodev``) and ``<sound>`` (the sound cards, their HDA codecs
and the PC speaker's backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.devices.sound import Audio, Sound

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build
    from pyvirt.model.domain import Domain
    from pyvirt.model.xmltree import Element

#: libvirt's audio type -> QEMU's audiodev driver
DRIVERS = {"none": "none", "alsa": "alsa", "coreaudio": "coreaudio", "dbus": "dbus",
           "jack": "jack", "oss": "oss", "pulseaudio": "pa", "sdl": "sdl", "spice": "spice",
           "file": "wav", "pipewire": "pipewire"}  # fmt: skip
#: sound model -> QEMU device (``pcspk`` has none; ``usb`` is ``usb-audio``)
CARDS = {"es1370": "ES1370", "ac97": "AC97", "sb16": "sb16", "ich6": "intel-hda",
         "ich7": "intel-hda", "ich9": "ich9-intel-hda", "usb": "usb-audio"}  # fmt: skip
#: cards whose sound goes through HDA codec devices (the card itself has no audiodev)
HDA = ("ich6", "ich7", "ich9")
#: ISA cards (no PCI address)
ISA = ("sb16",)
#: <input>/<output> attribute -> (audiodev stream property, kind), common to every backend
_STREAM = (("mixingEngine", "mixing-engine", bool), ("fixedSettings", "fixed-settings", bool),
           ("voices", "voices", int), ("bufferLength", "buffer-length", int))  # fmt: skip
#: backend-specific <input>/<output> attributes
_STREAM_BY_TYPE: dict[str, tuple[tuple[str, str, type], ...]] = {
    "alsa": (("dev", "dev", str),),
    "oss": (("dev", "dev", str), ("bufferCount", "buffer-count", int),
            ("tryPoll", "try-poll", bool)),
    "pulseaudio": (("name", "name", str), ("streamName", "stream-name", str),
                   ("latency", "latency", int)),
    "jack": (("serverName", "server-name", str), ("clientName", "client-name", str),
             ("connectPorts", "connect-ports", str), ("exactName", "exact-name", bool)),
    "sdl": (("bufferCount", "buffer-count", int),),
    "coreaudio": (("bufferCount", "buffer-count", int),),
    "pipewire": (("name", "name", str), ("streamName", "stream-name", str),
                 ("latency", "latency", int)),
}  # fmt: skip
#: backend-specific <audio> attributes
_TOP_BY_TYPE: dict[str, tuple[tuple[str, str, type], ...]] = {
    "oss": (("tryMMap", "try-mmap", bool), ("exclusive", "exclusive", bool),
            ("dspPolicy", "dsp-policy", int)),
    "pulseaudio": (("serverName", "server", str),),
    "pipewire": (("runtimeDir", "runtime-dir", str),),
    "file": (("path", "path", str),),
}  # fmt: skip


def _value(el: Element, name: str, kind: type, where: str) -> JsonValue:
    raw = el.get(name)
    assert raw is not None
    if kind is bool:
        if raw not in ("yes", "no"):
            raise InvalidConfigError(f"{where}: {name}='{raw}' must be 'yes' or 'no'")
        return raw == "yes"
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise InvalidConfigError(f"{where}: {name}='{raw}' is not a number") from None
    return raw


_Table = tuple[tuple[str, str, type], ...]


def _props(el: Element, table: _Table, where: str) -> dict[str, JsonValue]:
    return {prop: _value(el, name, kind, where) for name, prop, kind in table if el.get(name)}


def _stream(el: Element, type_: str, where: str) -> dict[str, JsonValue]:
    out = _props(el, _STREAM, where)
    settings = el.find("settings")
    if settings is not None:
        for name, kind in (("frequency", int), ("channels", int), ("format", str)):
            if settings.get(name):
                out[name] = _value(settings, name, kind, f"{where}/settings")
    out.update(_props(el, _STREAM_BY_TYPE.get(type_, ()), where))
    return out


def audio_id(dom: Domain, wanted: int | None, what: str) -> str | None:
    """The ``-audiodev`` id a device plays through: its ``<audio id>``, else the first backend."""
    ids = [a.id for a in dom.devices.audios]
    if wanted is None:
        return f"audio{ids[0]}" if ids else None
    if wanted not in ids:
        raise InvalidConfigError(f"{what}: no <audio id='{wanted}'> in the definition")
    return f"audio{wanted}"


@lowers(Audio)
def lower_audio(dev: Audio, b: Build) -> list[str]:
    """Lower one ``<audio id type>`` to ``-audiodev``."""
    type_ = dev.type or "none"
    where = dev.xpath()
    if dev.id is None or dev.id < 1:
        raise InvalidConfigError(f"{where}: <audio> needs an id of 1 or more")
    driver = DRIVERS.get(type_)
    if driver is None:
        raise UnsupportedError(f"audio type '{type_}' is not supported")
    props: dict[str, JsonValue] = {"id": f"audio{dev.id}", "driver": driver}
    props.update(_props(dev.element, _TOP_BY_TYPE.get(type_, ()), where))
    if dev.timer_period is not None:
        props["timer-period"] = dev.timer_period
    for tag, key in (("input", "in"), ("output", "out")):
        el = dev.element.find(tag)
        if el is not None and (stream := _stream(el, type_, f"{where}/{tag}")):
            props[key] = stream
    return ["-audiodev", json_opts(props)]


@lowers(Sound)
def lower_sound(dev: Sound, b: Build) -> list[str]:
    """Lower one ``<sound model>`` (ids ``soundN`` by position, as libvirt numbers them)."""
    model = dev.model or ""
    index = [s.element for s in b.domain.devices.sounds].index(dev.element)
    name = b.alias(dev, "sound", fixed=f"sound{index}")
    audiodev = audio_id(b.domain, dev.audio_id, dev.xpath())
    if model == "pcspk":
        return []  # the machine's speaker: -machine pcspk-audiodev= (see system.machine)
    driver = CARDS.get(model)
    if driver is None:
        raise UnsupportedError(f"sound model '{model or '(none)'}' is not supported")
    props: dict[str, JsonValue] = {"driver": driver, "id": name}
    if model not in HDA and audiodev is not None:
        props["audiodev"] = audiodev
    if model == "usb":
        if dev.multichannel == "yes":
            props["multi"] = True
    elif model not in ISA:
        props.update(b.pci(dev.address))
    args = ["-device", json_opts(props)]
    if model in HDA:
        codecs = dev.codecs or ["duplex"]
        for cad, codec in enumerate(codecs):
            if codec not in ("duplex", "micro", "output"):
                raise InvalidConfigError(f"{dev.xpath()}: codec type '{codec}' is unknown")
            codec_props: dict[str, JsonValue] = {
                "driver": f"hda-{codec}", "id": f"{name}-codec{cad}", "bus": f"{name}.0",
                "cad": cad,
            }  # fmt: skip
            if audiodev is not None:
                codec_props["audiodev"] = audiodev
            args += ["-device", json_opts(codec_props)]
    return args


def pcspk_audiodev(dom: Domain) -> str | None:
    """The ``pcspk-audiodev`` machine property of a guest with ``<sound model='pcspk'>``."""
    for dev in dom.devices.sounds:
        if dev.model == "pcspk":
            return audio_id(dom, dev.audio_id, dev.xpath()) or None
    return None
