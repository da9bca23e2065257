"""What the remote network, pool, node device and host classes share: URL quoting and the
fallback of verbs the REST API does not carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyvirt.client.transport import API
from pyvirt.errors import InvalidStateError, PyvirtError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = ["local_service", "path", "post_xml", "precondition", "query"]


def path(*parts: str) -> str:
    """``/api/v1/PART/PART...`` with every part quoted (a name may hold any character)."""
    return API + "".join("/" + quote(p, safe="") for p in parts)


def query(url: str, **params: Any) -> str:
    """``url`` with the non-``None`` ``params`` (booleans as ``true``/``false``)."""
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, (list, tuple)):
            items.extend((key, str(v)) for v in value)
        else:
            items.append((key, str(value)))
    return f"{url}?{urlencode(items)}" if items else url


def local_service(service: ServiceConnection | None, what: str) -> ServiceConnection:
    """The embedded service a verb the REST API lacks falls back to (a local daemon only).

    :raises UnsupportedError: the connection is remote (TLS or ssh)
    """
    if service is None:
        raise UnsupportedError(
            f"{what} is not available over a remote connection",
            hint="run it on the daemon's host (pyvirt -c pyvirt:///embed)",
        )
    return service


def precondition(err: PyvirtError) -> PyvirtError:
    """A 412 from ``If-Match`` as the embedded API's :class:`InvalidStateError`."""
    if not isinstance(err, InvalidStateError) and "changed underneath" in err.message:
        return InvalidStateError(err.message, hint=err.hint)
    return err


def post_xml(client: Client, url: str, xml: str | bytes) -> Any:
    """POST an XML document; the JSON reply."""
    body = xml.encode() if isinstance(xml, str) else xml
    return client.request("POST", url, body=body, content_type="application/xml").json()
