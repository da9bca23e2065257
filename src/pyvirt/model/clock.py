"""``<clock>``: guest time offset and timers."""

from __future__ import annotations

from pyvirt.model.xmlmap import XmlNode, attr, bool_attr, children

CLOCK_OFFSETS = ("utc", "localtime", "timezone", "variable", "absolute")


class Timer(XmlNode):
    """``<timer name present tickpolicy track/>``."""

    TAG = "timer"
    name = attr("name")
    present = bool_attr("present")
    tickpolicy = attr("tickpolicy", choices=("delay", "catchup", "merge", "discard"))
    track = attr("track", choices=("boot", "guest", "wall", "realtime"))
    frequency = attr("frequency")
    mode = attr("mode")


class Clock(XmlNode):
    """``<clock offset basis adjustment>``; ``offset`` defaults to ``utc``."""

    TAG = "clock"
    offset = attr("offset", default="utc", choices=CLOCK_OFFSETS)
    basis = attr("basis", choices=("utc", "localtime"))
    adjustment = attr("adjustment")
    timezone = attr("timezone")
    start = attr("start")
    timers = children("timer", Timer)
