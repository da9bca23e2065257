"""pyvirtd: the per-host daemon (REST API, events, jobs, metrics, remote access).

It sits on :mod:`pyvirt.api` like the CLI does (an import contract forbids anything lower):
:mod:`pyvirt.daemon.app` builds the ASGI application from the route modules in
:mod:`pyvirt.daemon.routes`, :mod:`pyvirt.daemon.server` runs it on the state directory's unix
socket (and optionally a TLS listener), :mod:`pyvirt.daemon.context` holds what the routes
share (the embedded API connection, the event bus, the jobs).
"""
