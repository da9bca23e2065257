"""Device verbs beyond disks and NICs: generic attach/detach from XML (controllers, input,
serial/console, hostdev, RNG, watchdog), removable media, keys, descriptions and metadata,
and the block error and control state queries."""
