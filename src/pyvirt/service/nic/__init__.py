"""Domain NICs: taps at start, SR-IOV VFs and PCI passthrough (the hostdev hook), hotplug,
attach/detach and the domif* verbs."""
