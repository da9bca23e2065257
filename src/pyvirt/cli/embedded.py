"""The fast path of ``pyvirt`` without a daemon: the simple forms, in-process, without click.

:func:`pyvirt.cli.fast.run` parses the command line (the simple forms listed there) and, when
the connection is embedded (no URI and no daemon socket, or a URI that names no daemon), calls
:func:`run`. It runs the same public-API calls as the click commands of
:mod:`pyvirt.cli.commands.domain` and prints the same bytes (the texts come from
:mod:`pyvirt.cli.formats`); errors print as :func:`pyvirt.cli.main.main` prints them. Loading
click (and ``typing``, ``inspect``, ``datetime`` ... with it) costs more CPU than ``list`` or
``dominfo`` do themselves.
"""

from __future__ import annotations

import sys

from pyvirt.cli import formats

# no typing at run time (see pyvirt.cli.fast)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    import pyvirt.api
    from pyvirt.cli.fast import Args

    Handler = Callable[[pyvirt.api.Connection, Args], None]

__all__ = ["run"]


def _out(text: str) -> None:
    sys.stdout.write(text)


def _warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


# -- the commands (see pyvirt.cli.commands.domain for the click forms) ------------------------
def _list(conn: pyvirt.api.Connection, a: Args) -> None:
    from pyvirt.api.domains import State  # lazy

    f = a.flags
    wanted: set[State] = set()
    if "--state-running" in f:
        wanted.add(State.RUNNING)
    if "--state-paused" in f:
        wanted.add(State.PAUSED)
    if "--state-shutoff" in f:
        wanted.add(State.SHUTOFF)
    if not wanted:
        if "--inactive" in f:
            wanted = {State.SHUTOFF}
        elif "--all" in f:
            wanted = set(State)
        else:
            wanted = {State.RUNNING, State.PAUSED}
    json_, uuids, names = "--json" in f, "--uuid" in f, "--name" in f
    rows = conn.domains.list(states=wanted, with_uuids=json_ or uuids)
    for s in rows:
        if s.problem:
            _warn(f"domain '{s.name}': {s.problem}")
    if "--persistent" in f:
        rows = [s for s in rows if s.persistent]
    if "--transient" in f:
        rows = [s for s in rows if not s.persistent]
    if "--autostart" in f:
        rows = [s for s in rows if s.autostart]
    if "--no-autostart" in f:
        rows = [s for s in rows if not s.autostart]
    if json_:
        _out(formats.format_json([s.to_json() for s in rows]))
    elif names or uuids:
        _out(formats.format_names(((s.uuid, s.name) for s in rows), uuids=uuids, names=names))
    else:
        cells = formats.domain_cells((s.id, s.name, str(s.state)) for s in rows)
        _out(formats.format_table(["Id", "Name", "State"], cells))


def _define(conn: pyvirt.api.Connection, a: Args) -> None:
    (path,) = a.pos
    dom, warnings = conn.domains.define(formats.read_input(path), force="--force" in a.flags)
    for w in warnings:
        _warn(w)
    _out(f"Domain '{dom.name}' defined from {path}\n\n")


def _undefine(conn: pyvirt.api.Connection, a: Args) -> None:
    dom = conn.domains.get(a.pos[0])
    for path in dom.undefine():
        _out(f"Volume '{path}' removed.\n")
    _out(f"Domain '{dom.name}' has been undefined\n\n")


def _dominfo(conn: pyvirt.api.Connection, a: Args) -> None:
    info = conn.domains.get(a.pos[0]).info().to_json()
    if "--json" in a.flags:
        _out(formats.format_json(info))
    else:
        _out(formats.format_fields(formats.dominfo_pairs(info)))


def _domstate(conn: pyvirt.api.Connection, a: Args) -> None:
    st = conn.domains.get(a.pos[0]).status()
    _out((f"{st.state} ({st.reason})" if "--reason" in a.flags else str(st.state)) + "\n\n")


def _domid(conn: pyvirt.api.Connection, a: Args) -> None:
    st = conn.domains.get(a.pos[0]).status()
    _out(f"{st.id if st.id is not None else '-'}\n\n")


def _domuuid(conn: pyvirt.api.Connection, a: Args) -> None:
    _out(conn.domains.get(a.pos[0]).status().uuid + "\n\n")


def _domname(conn: pyvirt.api.Connection, a: Args) -> None:
    _out(conn.domains.get(a.pos[0]).status().name + "\n\n")


def _start(conn: pyvirt.api.Connection, a: Args) -> None:
    st = conn.domains.get(a.pos[0]).start(paused="--paused" in a.flags)
    _out(f"Domain '{st.name}' started\n\n")


def _shutdown(conn: pyvirt.api.Connection, a: Args) -> None:
    dom = conn.domains.get(a.pos[0])
    mode = a.opts.get("--mode")
    dom.shutdown([m.strip() for m in mode.split(",") if m.strip()] if mode else None)
    _out(f"Domain '{dom.name}' is being shutdown\n\n")


def _destroy(conn: pyvirt.api.Connection, a: Args) -> None:
    dom = conn.domains.get(a.pos[0])
    dom.destroy(graceful="--graceful" in a.flags)
    _out(f"Domain '{dom.name}' destroyed\n\n")


def _simple(verb: str, message: str) -> Handler:
    def act(conn: pyvirt.api.Connection, a: Args) -> None:
        dom = conn.domains.get(a.pos[0])
        getattr(dom, verb)()
        _out(message.format(name=dom.name) + "\n\n")

    return act


HANDLERS: dict[str, Handler] = {
    "list": _list,
    "define": _define,
    "undefine": _undefine,
    "dominfo": _dominfo,
    "domstate": _domstate,
    "domid": _domid,
    "domuuid": _domuuid,
    "domname": _domname,
    "start": _start,
    "shutdown": _shutdown,
    "destroy": _destroy,
    "reboot": _simple("reboot", "Domain '{name}' is being rebooted"),
    "reset": _simple("reset", "Domain '{name}' was reset"),
    "suspend": _simple("suspend", "Domain '{name}' suspended"),
    "resume": _simple("resume", "Domain '{name}' resumed"),
}


def run(command: str, args: Args, uri: str | None) -> int | None:
    """Run a parsed simple form in-process; the exit status, or ``None`` (click's command).

    :param uri: the ``-c`` URI (it names no daemon), ``None`` for the embedded default
        (the caller checked that no URI is configured and no daemon socket exists)
    """
    handler = HANDLERS.get(command)
    if handler is None:
        return None
    import pyvirt.api  # lazy
    from pyvirt.errors import PyvirtError  # lazy

    try:
        conn = pyvirt.api.open(uri) if uri is not None else pyvirt.api.open_embedded()
        handler(conn, args)
    except PyvirtError as err:
        sys.stderr.write(f"error: {err.message}\n")
        if err.hint:
            sys.stderr.write(f"hint: {err.hint}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:  # last resort, as in pyvirt.cli.main
        from pyvirt.cli.main import _os_error  # lazy

        sys.stderr.write(f"error: {_os_error(err)}\n")
        return 1
    return 0
