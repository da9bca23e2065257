"""The client side of pyvirtd: connection URIs and the HTTP transport (standard library only).

Kept to the standard library on purpose: the CLI talking to a daemon must start fast (issue
11's figures), and ``http.client`` + ``socket`` + ``json`` import in a few milliseconds where
an async HTTP client costs tens. :mod:`pyvirt.client.uri` parses ``-c URI``;
:mod:`pyvirt.client.transport` sends requests over a unix socket, TLS or an ssh tunnel.
"""
