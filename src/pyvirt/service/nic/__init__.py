"""Domain NICs: taps at start, hotplug, domif* verbs."""
