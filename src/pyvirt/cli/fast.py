"""The fast path of ``pyvirt``: no click; through a daemon, no pyvirt.api and no lxml either.

:func:`run` is tried first by :func:`pyvirt.cli.main.main`. When the connection goes to a
daemon and the command line is one of the simple forms below, it sends the request with the
standard-library client (:mod:`pyvirt.client.transport`) and prints exactly what the click
command prints (the texts come from :mod:`pyvirt.cli.formats`, shared with the commands);
with an embedded connection, :mod:`pyvirt.cli.embedded` runs the same forms in-process;
anything else (another command, another option, ``--help``) returns ``None`` and click takes
over.

Simple forms: ``list`` with its filter options and ``--name``/``--uuid``/``--json`` (not
``--title``), ``define FILE [--force]``, ``undefine DOMAIN``, ``dominfo DOMAIN [--json]``,
``domstate DOMAIN [--reason]``, ``domid``/``domuuid``/``domname DOMAIN``,
``start DOMAIN [--paused]``, ``shutdown DOMAIN [--mode M]``, ``destroy DOMAIN [--graceful]``,
``reboot``/``reset``/``suspend``/``resume DOMAIN``, ``uri``.
"""

from __future__ import annotations

import sys

from pyvirt.cli import formats

# no typing or dataclasses at run time: with inspect, ast and dis they cost ~8 ms of a fast
# command's ~45 (mypy reads TYPE_CHECKING as True whatever its value); no json either (its
# decoder and encoder import re, enum and functools: ~3 ms): see loads() and dumps()
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket as Socket
    from collections.abc import Callable
    from typing import Any

    from pyvirt.client.transport import Client as HttpClient
    from pyvirt.client.uri import Target

__all__ = ["dumps", "launch", "loads", "main", "run"]

API = "/api/v1/domains"


class Args:
    """A parsed simple command line: positional arguments, flags, option values."""

    def __init__(self) -> None:
        self.pos: list[str] = []
        self.flags: set[str] = set()
        self.opts: dict[str, str] = {}


class UnixClient:
    """One-shot HTTP/1.1 requests over a unix socket, ``Connection: close``.

    The fast path's own client, on the C module ``_socket``: ``http.client`` imports ``email``
    and ``ssl``, and ``socket`` (with ``selectors`` and its enums) costs more than the whole
    request does. Errors are rebuilt like :mod:`pyvirt.client.transport` does. Other
    transports (TLS, ssh) use :class:`pyvirt.client.transport.Client`.
    """

    def __init__(self, path: str, sock: Socket | None = None) -> None:
        self.path = path
        #: a socket already connected to ``path`` (the daemon probe's), used once
        self.sock = sock

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        """A request with a JSON body (when ``payload`` is not None); the JSON reply."""
        body = None if payload is None else dumps(payload).encode()
        return self.request(method, path, body=body, content_type="application/json")

    def request(
        self, method: str, path: str, *, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        """Send one request; the JSON reply (``None`` when empty).

        :raises PyvirtError: the daemon's error, rebuilt
        """
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        sock, self.sock = self.sock, None
        if sock is None:
            try:
                sock = _connect(self.path, None)
            except OSError as err:
                from pyvirt.errors import OperationFailedError  # lazy

                raise OperationFailedError(
                    f"cannot reach pyvirtd at {self.path}: {err.strerror or err}",
                    hint="start it with 'pyvirtd', or use -c pyvirt:///embed to work without it",
                ) from None
        chunks = []
        try:
            sock.sendall(head.encode() + b"\r\n" + (body or b""))
            while data := sock.recv(1 << 16):
                chunks.append(data)
        except OSError as err:
            from pyvirt.errors import OperationFailedError  # lazy

            raise OperationFailedError(
                f"lost the connection to pyvirtd ({self.path}): {err.strerror or err}",
                hint="check that pyvirtd is running ('pyvirt uri' names the connection)",
            ) from None
        finally:
            sock.close()
        status, data = _parse_response(b"".join(chunks))
        if status >= 400:
            raise _error(status, data)
        return loads(data) if data else None


def _connect(path: str, timeout: float | None) -> Socket:
    """A stream socket connected to the unix socket ``path`` (blocking once connected).

    :raises OSError: nobody listens there
    """
    import _socket  # lazy

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    """Status and body of a whole HTTP/1.1 response (``Content-Length`` or chunked)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        from pyvirt.errors import OperationFailedError  # lazy: only on failure

        raise OperationFailedError("lost the connection to pyvirtd (no answer)") from None
    headers = dict(line.lower().split(b":", 1) for line in lines[1:] if b":" in line)
    if headers.get(b"transfer-encoding", b"").strip() == b"chunked":
        out, rest = [], body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out.append(rest[:size])
            rest = rest[size + 2 :]
        body = b"".join(out)
    return status, body


def _error(status: int, data: bytes) -> Exception:
    from pyvirt.errors import OperationFailedError, error_class  # lazy

    try:
        doc = loads(data)
        message, hint, code = doc["error"], doc.get("hint"), doc.get("code", "")
    except (ValueError, KeyError, TypeError):
        text = data.decode(errors="replace").strip()[:200]
        return OperationFailedError(f"pyvirtd answered {status}: {text}")
    return error_class(str(code))(str(message), hint=hint)


# -- JSON without the json module ------------------------------------------------------------
class _Decoding:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``: its default settings."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity: float() reads the three
    memo: dict[str, str] = {}  # noqa: RUF012 (read by the C scanner, never written)


_scan: Callable[[str, int], tuple[Any, int]] | None = None


def loads(data: bytes) -> Any:
    """``json.loads(data)`` for UTF-8 bytes, on the C scanner ``json`` itself uses
    (``_json.make_scanner``), without importing ``json`` (whose modules compile regular
    expressions at import: ``re``, ``enum`` and ``functools`` cost more than decoding 1000
    rows).

    :raises ValueError: not one JSON document (``json.JSONDecodeError`` is one)
    """
    global _scan
    if _scan is None:
        try:
            from _json import make_scanner  # lazy
        except ImportError:  # an interpreter without the C accelerator
            import json  # lazy

            return json.loads(data)
        _scan = make_scanner(_Decoding())  # type: ignore[arg-type]  # (typeshed: a JSONDecoder)
    text = data.decode().strip(" \t\n\r")
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if end != len(text):
        raise ValueError(f"extra data after a JSON document at {end}")
    return value


def dumps(value: Any) -> str:
    """``json.dumps(value)`` (ASCII, default separators) for the request bodies the fast path
    sends (dicts, lists, strings, booleans, numbers, ``None``) without importing ``json``."""
    if isinstance(value, str):
        from _json import encode_basestring_ascii  # lazy; a built-in module

        text: str = encode_basestring_ascii(value)
        return text
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
        return repr(int(value)) if isinstance(value, int) else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return "{" + ", ".join(f"{dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    import json  # lazy: anything else (never sent by the fast path)

    return json.dumps(value)


class HttpAdapter:
    """:class:`pyvirt.client.transport.Client` (TLS, ssh) with :class:`UnixClient`'s calls."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        """See :meth:`UnixClient.json`."""
        return self.client.json(method, path, payload)

    def request(
        self, method: str, path: str, *, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        """See :meth:`UnixClient.request`."""
        return self.client.request(method, path, body=body, content_type=content_type).json()


if TYPE_CHECKING:
    Client = UnixClient | HttpAdapter
    Handler = Callable[[Client, Args], None]


class Form:
    """One command's simple form: how many arguments, which flags and valued options."""

    def __init__(
        self,
        handler: Handler,
        nargs: int,
        flags: frozenset[str] = frozenset(),
        opts: frozenset[str] = frozenset(),
    ) -> None:
        self.handler, self.nargs, self.flags, self.opts = handler, nargs, flags, opts

    def parse(self, argv: list[str]) -> Args | None:
        """``argv`` parsed, or ``None`` when it is not this simple form (click decides)."""
        args = Args()
        it = iter(argv)
        for arg in it:
            if arg.startswith("-"):
                key, eq, value = arg.partition("=")
                if key in self.flags and not eq:
                    args.flags.add(key)
                elif key in self.opts:
                    if not eq:
                        value = next(it, "")
                    if not value or value.startswith("-"):
                        return None
                    args.opts[key] = value
                else:
                    return None  # --help, an option click knows and this path does not, "-"
            else:
                args.pos.append(arg)
        return args if len(args.pos) == self.nargs else None


def _out(text: str) -> None:
    sys.stdout.write(text)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """``urllib.parse.quote(text, safe="")``, without importing ``urllib.parse`` (with ``re``,
    ``ipaddress`` and ``warnings`` it costs more than a request)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def _domain(name: str, *rest: str) -> str:
    return "/".join((API, _quote(name), *rest))


# -- the commands ----------------------------------------------------------------------------
_LIST_FILTERS = {
    "--persistent": ("persistent", True),
    "--transient": ("persistent", False),
    "--autostart": ("autostart", True),
    "--no-autostart": ("autostart", False),
}


def _list(client: Client, a: Args) -> None:
    f = a.flags
    states = [s for flag, s in (("--state-running", "running"), ("--state-paused", "paused"),
                                ("--state-shutoff", "shut off")) if flag in f]  # fmt: skip
    if states:
        query = "&".join(f"state={_quote(s)}" for s in states)
    elif "--inactive" in f:
        query = "state=shut%20off"
    elif "--all" in f:
        query = "all=true"
    else:
        query = "all=false"
    json_, uuids, names = "--json" in f, "--uuid" in f, "--name" in f
    query += "&uuids=" + ("true" if json_ or uuids else "false")
    rows: list[dict[str, Any]] = client.json("GET", f"{API}?{query}")
    for r in rows:
        if r.get("problem"):
            sys.stderr.write(f"warning: domain '{r['name']}': {r['problem']}\n")
    for flag, (key, want) in _LIST_FILTERS.items():
        if flag in f:
            rows = [r for r in rows if r[key] == want]
    if json_:
        _out(formats.format_json(rows))
    elif names or uuids:
        _out(formats.format_names(((r["uuid"], r["name"]) for r in rows), uuids=uuids, names=names))
    else:
        cells = formats.domain_cells((r["id"], r["name"], r["state"]) for r in rows)
        _out(formats.format_table(["Id", "Name", "State"], cells))


def _define(client: Client, a: Args) -> None:
    (path,) = a.pos
    query = "?force=true" if "--force" in a.flags else ""
    doc = client.request("POST", API + query, body=formats.read_input(path),
                         content_type="application/xml")  # fmt: skip
    for w in doc["warnings"]:
        sys.stderr.write(f"warning: {w}\n")
    _out(f"Domain '{doc['name']}' defined from {path}\n\n")


def _undefine(client: Client, a: Args) -> None:
    name = _status(client, a.pos[0])["name"]
    client.json("DELETE", _domain(name))
    _out(f"Domain '{name}' has been undefined\n\n")


def _status(client: Client, ident: str) -> dict[str, Any]:
    doc: dict[str, Any] = client.json("GET", _domain(ident, "state"))
    return doc


def _dominfo(client: Client, a: Args) -> None:
    info = client.json("GET", _domain(a.pos[0]))
    if "--json" in a.flags:
        _out(formats.format_json(info))
    else:
        _out(formats.format_fields(formats.dominfo_pairs(info)))


def _domstate(client: Client, a: Args) -> None:
    st = _status(client, a.pos[0])
    text = f"{st['state']} ({st['reason']})" if "--reason" in a.flags else st["state"]
    _out(f"{text}\n\n")


def _domid(client: Client, a: Args) -> None:
    st = _status(client, a.pos[0])
    _out(f"{st['id'] if st['id'] is not None else '-'}\n\n")


def _field(key: str) -> Handler:
    def show(client: Client, a: Args) -> None:
        _out(f"{_status(client, a.pos[0])[key]}\n\n")

    return show


def _verb(verb: str, message: str, body: Callable[[Args], dict[str, Any] | None]) -> Handler:
    def act(client: Client, a: Args) -> None:
        st = client.json("POST", _domain(a.pos[0], verb), body(a))
        _out(message.format(name=st["name"]) + "\n\n")

    return act


def _shutdown_body(a: Args) -> dict[str, Any] | None:
    mode = a.opts.get("--mode")
    return {"mode": [m.strip() for m in mode.split(",") if m.strip()]} if mode else None


def _uri(_client: Client, _a: Args) -> None:
    raise AssertionError("answered before a client exists")  # see run()


# fmt: off
FORMS: dict[str, Form] = {
    "list": Form(_list, 0, frozenset({
        "--all", "--inactive", "--name", "--uuid", "--state-running", "--state-paused",
        "--state-shutoff", "--persistent", "--transient", "--autostart", "--no-autostart",
        "--json",
    })),
    "define": Form(_define, 1, frozenset({"--force"})),
    "undefine": Form(_undefine, 1),
    "dominfo": Form(_dominfo, 1, frozenset({"--json"})),
    "domstate": Form(_domstate, 1, frozenset({"--reason"})),
    "domid": Form(_domid, 1),
    "domuuid": Form(_field("uuid"), 1),
    "domname": Form(_field("name"), 1),
    "start": Form(_verb("start", "Domain '{name}' started",
                        lambda a: {"paused": True} if "--paused" in a.flags else None),
                  1, frozenset({"--paused"})),
    "shutdown": Form(_verb("shutdown", "Domain '{name}' is being shutdown", _shutdown_body),
                     1, opts=frozenset({"--mode"})),
    "destroy": Form(_verb("destroy", "Domain '{name}' destroyed",
                          lambda a: {"graceful": True} if "--graceful" in a.flags else None),
                    1, frozenset({"--graceful"})),
    "reboot": Form(_verb("reboot", "Domain '{name}' is being rebooted", lambda a: None), 1),
    "reset": Form(_verb("reset", "Domain '{name}' was reset", lambda a: None), 1),
    "suspend": Form(_verb("suspend", "Domain '{name}' suspended", lambda a: None), 1),
    "resume": Form(_verb("resume", "Domain '{name}' resumed", lambda a: None), 1),
    "uri": Form(_uri, 0),
}
# fmt: on
#: the forms of :mod:`pyvirt.cli.fast_jobs` (snapshots, block commit)
_JOB_FORMS = frozenset({"snapshot-create-as", "snapshot-revert", "blockcommit"})


def _split_global(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``-c URI`` before the command, and the rest; ``None`` for other global options."""
    uri = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in ("-c", "--connect") and i + 1 < len(argv):
            uri, i = argv[i + 1], i + 2
        elif arg.startswith("--connect="):
            uri, i = arg.partition("=")[2], i + 1
        else:
            return None  # --version, --help ...: click's
    return uri, argv[i:]


def _client(target: Target) -> Client:
    if target.kind == "unix" and target.path is not None:
        return UnixClient(str(target.path))
    from pyvirt.client.transport import Client as HttpClient  # lazy

    return HttpAdapter(HttpClient.for_target(target))


def _posix(path: str) -> str:
    """``str(pathlib.PurePosixPath(path))`` without pathlib: no empty or ``.`` parts."""
    lead = "/" if path.startswith("/") else ""
    if path.startswith("//") and not path.startswith("///"):
        lead = "//"
    return lead + "/".join(p for p in path.split("/") if p and p != ".")


def _local_socket() -> str:
    """The daemon socket of this state directory (``StatePaths.default().daemon_socket``),
    with neither pathlib nor :mod:`pyvirt.state.paths` for the usual cases: a
    ``PYVIRT_STATE_DIR``, or root's ``/run/pyvirt``."""
    import os  # lazy

    root = os.environ.get("PYVIRT_STATE_DIR")
    if root:
        return _posix(os.path.join(os.getcwd(), root)) + "/run/pyvirtd.sock"
    if os.geteuid() == 0:
        return "/run/pyvirt/pyvirtd.sock"
    from pyvirt.state.paths import StatePaths  # lazy: the XDG directories

    return str(StatePaths.default().daemon_socket)


def _local_daemon() -> UnixClient | None:
    """A client of this state directory's daemon, connected, if it has one (no URI given:
    :func:`pyvirt.client.uri.resolve` would pick it, and the embedded CLI otherwise)."""
    path = _local_socket()
    try:
        return UnixClient(path, _connect(path, 1.0))
    except OSError:
        return None  # no socket, or nobody answers on it: embedded


def _embedded(command: str, args: Args, uri: str | None) -> int | None:
    """The embedded connection's fast path (:mod:`pyvirt.cli.embedded`)."""
    from pyvirt.cli import embedded  # lazy

    return embedded.run(command, args, uri)


def run(argv: list[str]) -> int | None:
    """Run ``argv`` without click if it is a simple form (through a daemon or embedded);
    returns the exit status, or ``None`` to let click handle it."""
    split = _split_global(argv)
    if split is None or not split[1]:
        return None
    uri, (command, *rest) = split
    form = FORMS.get(command)
    if form is None and command in _JOB_FORMS:  # through a daemon only (pyvirt.cli.fast_jobs)
        from pyvirt.cli.fast_jobs import FORMS as JOB_FORMS  # lazy

        form = JOB_FORMS[command]
    if form is None:
        return None
    args = form.parse(rest)
    if args is None:
        return None
    import os  # lazy

    if uri is None and not (os.environ.get("PYVIRT_DEFAULT_URI")
                            or os.environ.get("LIBVIRT_DEFAULT_URI")):  # fmt: skip
        client = _local_daemon()
        if client is None:
            return _embedded(command, args, None)
        return _run(command, form, args, "pyvirt:///system", lambda: client)
    from pyvirt.client.uri import resolve  # lazy

    def connect() -> Client:
        return _client(target)

    try:
        target = resolve(uri)
    except Exception as err:  # PyvirtError: pyvirt.errors is imported only on failure
        return _failed(err)
    if not target.remote:
        return _embedded(command, args, uri)
    return _run(command, form, args, target.uri, connect)


#: whether a daemon answered the command over a unix socket, with nothing left to clean up
#: (:func:`launch` may then skip the interpreter's clean-up; TLS and ssh may leave some)
_answered = False


def _run(command: str, form: Form, args: Args, uri: str, connect: Callable[[], Client]) -> int:
    """Run the command on the daemon ``connect()`` reaches (``uri``: its connection URI)."""
    global _answered
    try:
        if command == "uri":
            _out(uri + "\n\n")
            _answered = True
            return 0
        client = connect()
        _answered = isinstance(client, UnixClient)
        form.handler(client, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except (ValueError, KeyError, TypeError) as err:  # ValueError: JSON that does not parse
        sys.stderr.write(f"error: pyvirtd sent an unexpected answer: {err}\n")
        return 1
    except Exception as err:
        return _failed(err)
    return 0


def _failed(err: Exception) -> int:
    """Exit status 1 with ``error:`` and ``hint:`` lines for a :class:`PyvirtError`; any other
    exception is raised again."""
    from pyvirt.errors import PyvirtError  # lazy: only on failure

    if not isinstance(err, PyvirtError):
        raise err
    sys.stderr.write(f"error: {err.message}\n")
    if err.hint:
        sys.stderr.write(f"hint: {err.hint}\n")
    return 1


def main(argv: list[str] | None = None) -> int | None:
    """:func:`run`, else click through :func:`pyvirt.cli.main.main` (not even imported when
    this path answers); the exit status."""
    args = sys.argv[1:] if argv is None else argv
    # an en dash for "--" (see pyvirt.cli.main._normalize)
    args = ["--" + a[1:] if a.startswith("\u2013") else a for a in args]
    code = run(args)
    if code is not None:
        return code
    from pyvirt.cli.main import main as click_main  # lazy: click, the command table

    click_main(args)
    return None


def launch() -> None:
    """The ``pyvirt`` command (``bin/pyvirt``): :func:`main`, then exit.

    When a daemon answered, the process ends with ``os._exit`` once stdout and stderr are
    flushed: nothing else is left to do (no thread, no child, no ``atexit`` handler, no open
    file but the socket, closed already), and the interpreter's clean-up of its modules costs
    ~2 ms, a tenth of such a command. Any other path (embedded, click) exits normally.
    """
    code = main()
    if not _answered:
        sys.exit(code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # like click's path: a closed pipe is not an error
        pass
    except OSError as err:  # a full disk ...: what the interpreter would say, briefly
        sys.stderr.write(f"error: cannot write the output: {err.strerror or err}\n")
        code = code or 1
    try:
        sys.stderr.flush()
    finally:
        import os  # lazy; loaded by site anyway

        os._exit(code or 0)
