"""etcd, the cluster's store: the only module that imports ``etcd3gw``.

``etcd3gw`` speaks etcd's v3 JSON gateway over HTTP(S) (no gRPC, no protobuf: PyPI's ``etcd3``
breaks with protobuf >= 4). It talks to one member; :class:`Etcd` adds what a cluster member
needs on top: a list of endpoints tried in turn (a dead member is skipped), leases by id
(grant, keep-alive, revoke), compare-and-swap transactions, and errors of pyvirt's hierarchy
that name the endpoints tried.

Keys and values are ``str`` (UTF-8 JSON in practice); ``etcd3gw`` base64-encodes them for the
gateway. ``etcd3gw`` (and ``requests`` under it) is imported on first use: nothing outside a
cluster pays for it.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pyvirt.errors import InvalidConfigError, OperationFailedError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: seconds allowed per request to one member before the next endpoint is tried
DEFAULT_TIMEOUT = 2.0
#: seconds of trying again while no member answers
DEFAULT_RETRY = 6.0


class EtcdUnavailableError(OperationFailedError):
    """No endpoint answered, or the members that answered have no quorum."""

    code = "etcd-unavailable"


@dataclass(frozen=True, slots=True)
class Entry:
    """A key's value and its revisions (etcd's ``mod_revision``/``create_revision``)."""

    key: str
    value: str
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True, slots=True)
class Member:
    """One etcd member as the cluster lists it."""

    name: str
    id: str
    client_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition of a transaction (etcd's ``Compare``).

    :param key: the key compared
    :param target: ``version``, ``create``, ``mod``, ``value`` or ``lease``
    :param result: ``EQUAL``, ``NOT_EQUAL``, ``GREATER`` or ``LESS``
    :param value: what the target is compared with (a revision, a value, a lease id)
    """

    key: str
    target: str
    result: str
    value: int | str

    def encode(self) -> dict[str, Any]:
        field = {
            "version": "version",
            "create": "create_revision",
            "mod": "mod_revision",
            "value": "value",
            "lease": "lease",
        }[self.target]
        value: int | str = _b64(self.value) if self.target == "value" else self.value
        return {
            "key": _b64(self.key),
            "target": self.target.upper(),
            "result": self.result,
            field: value,
        }


def absent(key: str) -> Compare:
    """The condition "*key* does not exist"."""
    return Compare(key, "create", "EQUAL", 0)


def unchanged(entry: Entry) -> Compare:
    """The condition "*entry*'s key was not modified since it was read"."""
    return Compare(entry.key, "mod", "EQUAL", entry.mod_revision)


@dataclass(frozen=True, slots=True)
class Put:
    """A put inside a transaction (bound to *lease* when it is not 0)."""

    key: str
    value: str
    lease: int = 0

    def encode(self) -> dict[str, Any]:
        req: dict[str, Any] = {"key": _b64(self.key), "value": _b64(self.value)}
        if self.lease:
            req["lease"] = self.lease
        return {"request_put": req}


@dataclass(frozen=True, slots=True)
class Delete:
    """A delete inside a transaction."""

    key: str

    def encode(self) -> dict[str, Any]:
        return {"request_delete_range": {"key": _b64(self.key)}}


def parse_endpoints(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``http://a:2379,http://b:2379`` (or a list) → normalised endpoint URLs.

    :raises InvalidConfigError: an endpoint is not ``http(s)://HOST:PORT``
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for raw in (x.strip() for x in items):
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidConfigError(
                f"etcd endpoint {raw!r} is not a URL",
                hint="give etcd's client URLs, e.g. --etcd http://10.0.0.1:2379,http://10.0.0.2:2379",
            )
        if parts.path not in ("", "/") or parts.query:
            raise InvalidConfigError(f"etcd endpoint {raw!r} must not have a path")
        try:
            port = parts.port or 2379
        except ValueError:
            raise InvalidConfigError(f"etcd endpoint {raw!r} has an invalid port") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        out.append(f"{parts.scheme}://{host}:{port}")
    if not out:
        raise InvalidConfigError("no etcd endpoint given", hint="pass --etcd URL[,URL...]")
    return tuple(dict.fromkeys(out))


def _b64(value: str | int) -> str:
    return base64.b64encode(str(value).encode()).decode()


def _unb64(value: str | None) -> str:
    return base64.b64decode(value or "").decode()


def _entry(kv: dict[str, Any]) -> Entry:
    return Entry(
        key=_unb64(kv.get("key")),
        value=_unb64(kv.get("value")),
        mod_revision=int(kv.get("mod_revision", 0)),
        create_revision=int(kv.get("create_revision", 0)),
        lease=int(kv.get("lease", 0)),
    )


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class Etcd:
    """A client of an etcd cluster through any of its members.

    :param endpoints: client URLs of the members (``http://HOST:2379``); tried in order,
        starting with the last one that answered
    :param ca: CA bundle to verify ``https`` members with
    :param cert: client certificate (PEM), with *key*
    :param key: client key (PEM)
    :param timeout: seconds per request to one member
    :param retry_for: seconds to go on trying while no member answers (an election lasts
        about one election timeout)
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float = DEFAULT_RETRY,
    ) -> None:
        self.endpoints = parse_endpoints(endpoints)
        self.retry_for = retry_for
        self._tls = (ca, cert, key)
        self.timeout = timeout
        self._clients: dict[str, Any] = {}
        self._current = 0
        self._watching: Any = None

    def sibling(self, endpoints: Sequence[str], *, timeout: float | None = None) -> Etcd:
        """A client of *endpoints* with this one's TLS settings."""
        ca, cert, key = self._tls
        return Etcd(
            endpoints, ca=ca, cert=cert, key=key, timeout=timeout or self.timeout, retry_for=0
        )

    # transport -----------------------------------------------------------------------------

    def _client(self, endpoint: str) -> Any:
        client = self._clients.get(endpoint)
        if client is None:
            from etcd3gw.client import Etcd3Client  # lazy: requests + pbr, ~150 ms

            parts = urlsplit(endpoint)
            ca, cert, key = self._tls
            client = Etcd3Client(
                host=parts.hostname or "",
                port=parts.port or 2379,
                protocol=parts.scheme,
                ca_cert=ca,
                cert_cert=cert,
                cert_key=key,
                timeout=self.timeout,
                api_path="/v3/",  # etcd >= 3.4; skips a /version round trip per member
            )
            # not the environment's: requests would let REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE
            # override --etcd-ca (and send etcd's traffic through an HTTP(S)_PROXY)
            client.session.trust_env = False
            self._clients[endpoint] = client
        return client

    def _call(self, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run *fn* against a member, moving on to the next one while members fail, and
        trying again for :attr:`retry_for` seconds (a leader election)."""
        deadline = time.monotonic() + self.retry_for
        while True:
            errors: list[str] = []
            found, result = self._round(what, fn, errors)
            if found:
                return result  # type: ignore[return-value]
            if time.monotonic() + self.timeout > deadline:
                break
            time.sleep(0.2)  # an election (a leader lost) takes about one election timeout
        raise EtcdUnavailableError(
            f"etcd did not answer {what}: " + "; ".join(errors),
            hint="check that a quorum of the etcd members is up and reachable from this host",
        )

    def _round(
        self, what: str, fn: Callable[[Any], _T], errors: list[str]
    ) -> tuple[bool, _T | None]:
        """Try each endpoint once; ``(True, result)`` from the first that answers."""
        from etcd3gw import exceptions as ex  # lazy

        n = len(self.endpoints)
        for i in range(n):
            index = (self._current + i) % n
            endpoint = self.endpoints[index]
            try:
                result = fn(self._client(endpoint))
            except ex.ConnectionFailedError as err:
                tls = _tls_failure(err)
                if tls:  # a certificate problem does not go away by trying again
                    raise OperationFailedError(
                        f"TLS with etcd at {endpoint} failed: {tls}",
                        hint="check --etcd-ca (the CA that signed etcd's certificate), "
                        "--etcd-cert and --etcd-key (a client certificate etcd trusts)",
                    ) from None
                errors.append(f"{endpoint}: cannot connect")
                continue
            except ex.ConnectionTimeoutError:
                errors.append(f"{endpoint}: no answer within {self.timeout:g} s")
                continue
            except ex.InternalServerError as err:
                # a member without quorum answers 500 ("etcdserver: request timed out")
                errors.append(f"{endpoint}: {_short(err)}")
                continue
            except ex.Etcd3Exception as err:
                raise OperationFailedError(f"etcd refused {what}: {_short(err)}") from err
            self._current = index
            return True, result
        return False, None

    def _post(self, what: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def post(client: Any) -> dict[str, Any]:
            out = client.post(client.get_url(path), json=body)
            return out if isinstance(out, dict) else {}

        return self._call(what, post)

    # keys ----------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry at *key*, or ``None``."""
        out = self._post(f"get {key}", "/kv/range", {"key": _b64(key)})
        kvs = out.get("kvs") or []
        return _entry(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> list[Entry]:
        """Every entry whose key starts with *prefix*, sorted by key."""
        body = {
            "key": _b64(prefix),
            "range_end": _prefix_end(prefix),
            "sort_order": "ASCEND",
            "sort_target": "KEY",
        }
        out = self._post(f"list {prefix}", "/kv/range", body)
        return [_entry(kv) for kv in out.get("kvs") or []]

    def get_prefix_at(self, prefix: str) -> tuple[list[Entry], int]:
        """Every entry under *prefix* (sorted by key) and the store's revision they were read
        at: what a :meth:`watch` from the next revision goes on from without missing a change."""
        body = {
            "key": _b64(prefix),
            "range_end": _prefix_end(prefix),
            "sort_order": "ASCEND",
            "sort_target": "KEY",
        }
        out = self._post(f"list {prefix}", "/kv/range", body)
        revision = int((out.get("header") or {}).get("revision", 0))
        return [_entry(kv) for kv in out.get("kvs") or []], revision

    def watch(self, prefix: str, start_revision: int, *, idle: float) -> bool:
        """Block until a key under *prefix* changes at or after *start_revision* (``True``),
        or for *idle* seconds without a change (``False``). One long poll over etcd's watch
        stream: nothing is polled in between. A compacted *start_revision* counts as a change
        (the caller reads everything again).

        :raises EtcdUnavailableError: no member accepts the watch
        """
        import json

        import requests  # lazy: etcd3gw's transport

        create = {
            "key": _b64(prefix),
            "range_end": _prefix_end(prefix),
            "start_revision": max(1, start_revision),
        }
        errors: list[str] = []
        for endpoint in self.endpoints:
            client = self._client(endpoint)
            try:
                resp = client.session.post(
                    client.get_url("/watch"),
                    json={"create_request": create},
                    stream=True,
                    timeout=(self.timeout, idle),
                )
            except requests.RequestException as err:
                errors.append(f"{endpoint}: {type(err).__name__}")
                continue
            self._watching = resp
            try:
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result") or {}
                    if result.get("events") or result.get("canceled"):
                        return True
                    if int(result.get("compact_revision", 0) or 0):
                        return True
                return False  # the stream ended (member stopping; an abort): look again
            except (requests.RequestException, ValueError, AttributeError):
                return False  # idle: no change within *idle* seconds
            finally:
                self._watching = None
                resp.close()
        raise EtcdUnavailableError(
            f"etcd did not accept a watch of {prefix}: " + "; ".join(errors),
            hint="check that a quorum of the etcd members is up and reachable from this host",
        )

    def abort_watch(self) -> None:
        """End a :meth:`watch` blocked in another thread (it returns ``False`` at once)."""
        import socket

        resp = self._watching
        if resp is None:
            return
        try:
            sock = socket.socket(fileno=resp.raw._fp.fileno())
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.detach()
        except (OSError, AttributeError, ValueError):
            pass

    def put(self, key: str, value: str, *, lease: int = 0) -> None:
        """Set *key* (bound to *lease* when not 0: deleted when the lease expires)."""
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = lease
        self._post(f"put {key}", "/kv/put", body)

    def delete(self, key: str) -> bool:
        """Delete *key*; whether it existed."""
        out = self._post(f"delete {key}", "/kv/deleterange", {"key": _b64(key)})
        return int(out.get("deleted", 0)) > 0

    def transaction(
        self,
        compare: Sequence[Compare],
        success: Sequence[Put | Delete],
        failure: Sequence[Put | Delete] = (),
    ) -> bool:
        """One atomic transaction; ``True`` when every *compare* held (and *success* ran)."""
        body = {
            "compare": [c.encode() for c in compare],
            "success": [op.encode() for op in success],
            "failure": [op.encode() for op in failure],
        }
        out = self._post("a transaction", "/kv/txn", body)
        return bool(out.get("succeeded", False))

    # leases --------------------------------------------------------------------------------

    def lease_grant(self, ttl: int) -> int:
        """A new lease of *ttl* seconds; its id."""
        out = self._post("a lease", "/lease/grant", {"TTL": ttl, "ID": 0})
        lease = int(out.get("ID", 0))
        if not lease:
            raise OperationFailedError(f"etcd granted no lease: {out.get('error', out)}")
        return lease

    def lease_keepalive(self, lease: int) -> int:
        """Renew *lease*; the seconds it now has left, 0 when it has already expired."""
        out = self._post("a lease renewal", "/lease/keepalive", {"ID": lease})
        return int((out.get("result") or {}).get("TTL", 0))

    def lease_ttl(self, lease: int) -> int:
        """Seconds *lease* has left; -1 when it does not exist (any more)."""
        out = self._post("a lease's TTL", "/kv/lease/timetolive", {"ID": lease})
        return int(out.get("TTL", -1))

    def lease_revoke(self, lease: int) -> None:
        """Revoke *lease*: its keys are deleted at once."""
        from etcd3gw import exceptions as ex  # lazy

        try:
            self._post("a lease revocation", "/kv/lease/revoke", {"ID": lease})
        except OperationFailedError as err:
            cause = err.__cause__
            if isinstance(cause, ex.Etcd3Exception) and "not found" in _short(cause):
                return  # expired already
            raise

    # the cluster ---------------------------------------------------------------------------

    def members(self) -> list[Member]:
        """The etcd cluster's members."""
        out = self._post("the member list", "/cluster/member/list", {})
        return [
            Member(
                name=str(m.get("name", "")),
                id=str(m.get("ID", "")),
                client_urls=tuple(m.get("clientURLs") or ()),
            )
            for m in out.get("members") or []
        ]

    def endpoint_health(self) -> dict[str, bool]:
        """Each configured endpoint: does it answer, and with a leader?"""
        health: dict[str, bool] = {}
        for endpoint in self.endpoints:
            try:
                out = self._client(endpoint).post(
                    self._client(endpoint).get_url("/maintenance/status"), json={}
                )
                health[endpoint] = bool(out.get("leader"))
            except Exception:
                health[endpoint] = False
        return health

    def close(self) -> None:
        """Close the members' HTTP sessions."""
        for client in self._clients.values():
            client.session.close()
        self._clients.clear()


def _tls_failure(err: BaseException) -> str:
    """What went wrong in the TLS handshake under a failed connection ('' when it was not
    TLS: a member down, refused, unreachable)."""
    import ssl

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"cannot verify its certificate ({cause.verify_message or cause.reason})"
        if isinstance(cause, ssl.SSLEOFError):
            return "it closed the connection in the handshake (it wants a client certificate?)"
        if isinstance(cause, ssl.SSLError):
            return f"handshake refused ({cause.reason or cause})"
        args = getattr(cause, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        cause = cause.__cause__ or cause.__context__ or nested
    return "cannot verify its certificate" if "CERTIFICATE_VERIFY_FAILED" in str(err) else ""


def _short(err: BaseException) -> str:
    """etcd's own error text (the gateway's JSON ``error``), else the exception's."""
    import json

    detail = getattr(err, "detail_text", None)
    if isinstance(detail, str) and detail.strip():
        try:
            body = json.loads(detail)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:200]
        if body is None:
            return detail.strip().splitlines()[0][:200]
    text = " ".join(str(a) for a in err.args if a).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
