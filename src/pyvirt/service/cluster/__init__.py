"""A cluster of pyvirt hosts whose shared state lives in etcd (issue 16).

- :mod:`.config` — this host's membership file (which etcd, which name, which timings);
- :mod:`.keys` — the layout of pyvirt's keys in etcd;
- :mod:`.records` — what a host publishes about itself (capabilities, daemon address);
- :mod:`.membership` — init, join, leave, the host list;
- :mod:`.heartbeat` — the lease that says "this host is alive", renewed by pyvirtd.
"""
