"""The interactive shell: ``pyvirt`` with no command, like ``virsh``.

On a terminal it prompts (``pyvirt # ``), keeps a readline history in
``$XDG_STATE_HOME/pyvirt/history`` (``~/.local/state/pyvirt/history``) and completes command
names, options and domain names with Tab. When standard input is not a terminal it reads
commands line by line without prompting, so ``pyvirt < script`` works like ``virsh < script``.

A line is split with :mod:`shlex` (quotes and backslashes as in a POSIX shell, ``#`` starts a
comment, ``;`` separates commands) and each command runs in-process through the same click
group as ``pyvirt COMMAND``; an error prints its ``error:`` line and the shell goes on. Shell
commands: ``connect [URI]``, ``quit``/``exit``, ``echo``; ``help`` is the normal command.
The shell's exit status is the last command's.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import click

from pyvirt.cli.main import api
from pyvirt.errors import InvalidConfigError

#: commands the shell runs itself
BUILTINS = ("connect", "echo", "exit", "quit")

_WELCOME = """Welcome to pyvirt, the virtualization interactive terminal.

Type:  'help' for help with commands
       'quit' to quit
"""


def history_path() -> Path:
    """Where the shell's history is kept (``$XDG_STATE_HOME/pyvirt/history``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pyvirt" / "history"


def split_commands(line: str) -> list[list[str]]:
    """A line's commands, each as argv: shlex-quoted words, ``;`` between commands, ``#``
    comments.

    :raises InvalidConfigError: an unterminated quote
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token and set(token) == {";"}:
                out.append([])
            else:
                out[-1].append(token)
    except ValueError as err:
        raise InvalidConfigError(f"cannot parse the line: {str(err).lower()}") from None
    return [argv for argv in out if argv]


class Shell:
    """One shell session; :meth:`run` reads commands until ``quit`` or the end of input.

    :param uri: the connection URI (``-c``), changed by ``connect``
    :param interactive: prompt and use readline (default: standard input is a terminal)
    """

    def __init__(self, uri: str | None, *, interactive: bool | None = None) -> None:
        self.uri = uri
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.status = 0

    # -- reading ------------------------------------------------------------------------------
    def _lines(self) -> Iterator[str]:
        if not self.interactive:
            yield from sys.stdin
            return
        prompt = "pyvirt # " if os.geteuid() == 0 else "pyvirt > "
        while True:
            try:
                yield input(prompt)
            except EOFError:
                click.echo()
                return
            except KeyboardInterrupt:
                click.echo()

    def run(self) -> int:
        """Read and run commands; the exit status of the last one."""
        if self.interactive:
            click.echo(_WELCOME)
            self._setup_readline()
        try:
            for line in self._lines():
                try:
                    commands = split_commands(line)
                except InvalidConfigError as err:
                    click.echo(f"error: {err.message}", err=True)
                    self.status = 1
                    continue
                for argv in commands:
                    if not self.execute(argv):
                        return self.status
        finally:
            if self.interactive:
                self._save_history()
        return self.status

    # -- running ------------------------------------------------------------------------------
    def execute(self, argv: list[str]) -> bool:
        """Run one command; False when the shell should end (``quit``)."""
        name = argv[0]
        if name.startswith("-"):  # 'pyvirt -c URI' with no command would start another shell
            click.echo(f"error: a command is expected, not '{name}'", err=True)
            click.echo(
                "hint: 'connect URI' changes the connection; 'help' lists commands", err=True
            )
            self.status = 1
            return True
        if name in ("quit", "exit"):
            return False
        if name == "echo":
            click.echo(" ".join(argv[1:]))
            self.status = 0
            return True
        if name == "connect":
            self._connect(argv[1:])
            return True
        from pyvirt.cli.main import main  # the same entry point as 'pyvirt COMMAND'

        args = (["-c", self.uri] if self.uri else []) + argv
        try:
            main(args)
            self.status = 0
        except SystemExit as exc:
            code = exc.code
            self.status = code if isinstance(code, int) else (0 if code is None else 1)
        return True

    def _connect(self, args: list[str]) -> None:
        from pyvirt.cli.main import main

        if len(args) > 1 and args[0] != "--name":
            click.echo("error: connect takes one URI", err=True)
            self.status = 1
            return
        uri = args[-1] if args else None
        try:
            main([*(["-c", uri] if uri else []), "connect", "--in-shell"])
        except SystemExit as exc:
            self.status = exc.code if isinstance(exc.code, int) else 1
            if self.status:
                return
        self.uri = uri
        self.status = 0

    # -- readline -----------------------------------------------------------------------------
    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # pragma: no cover - every Linux Python has it
            return
        path = history_path()
        with contextlib.suppress(OSError):
            readline.read_history_file(path)
        readline.set_history_length(1000)
        readline.set_completer_delims(" \t\n;")
        readline.set_completer(Completer(self).complete)
        readline.parse_and_bind("tab: complete")

    def _save_history(self) -> None:
        try:
            import readline

            path = history_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except (ImportError, OSError):
            pass

    def domain_names(self) -> list[str]:
        """Names of every domain (for completion); empty when the connection fails."""
        import pyvirt.api
        from pyvirt.errors import PyvirtError

        try:
            conn = pyvirt.api.open(self.uri)
            return [s.name for s in conn.domains.list(with_uuids=False)]
        except (PyvirtError, OSError):
            return []


def command_names() -> list[str]:
    """Every command the shell knows: the click group's and the shell's own."""
    from pyvirt.cli.group import cli

    with click.Context(cli) as ctx:
        return sorted({*cli.list_commands(ctx), *BUILTINS})


def option_names(command: str) -> list[str]:
    """The long options of ``command`` (empty for an unknown one)."""
    from pyvirt.cli.group import cli

    with click.Context(cli) as ctx:
        cmd = cli.get_command(ctx, command) if command not in BUILTINS else None
    if cmd is None:
        return []
    return sorted(o for p in cmd.params for o in p.opts if o.startswith("--"))


def candidates(words: list[str], text: str, domains: Callable[[], Iterable[str]]) -> list[str]:
    """What may complete ``text`` after ``words`` (the words before it on the line)."""
    if not words:
        pool: Iterable[str] = command_names()
    elif text.startswith("-"):
        pool = option_names(words[0])
    else:
        pool = domains()
    return sorted(c for c in pool if c.startswith(text))


class Completer:
    """readline's completer: command names first, then options or domain names."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        """readline protocol: the ``state``-th match of ``text``."""
        if state == 0:
            import readline

            line = readline.get_line_buffer()[: readline.get_begidx()]
            try:
                words = split_commands(line)[-1] if line.strip() else []
            except InvalidConfigError:
                words = []
            if line.rstrip().endswith(";"):
                words = []
            self._matches = candidates(words, text, self.shell.domain_names)
        return self._matches[state] if state < len(self._matches) else None


def run_shell(uri: str | None) -> int:
    """``pyvirt`` with no command: the shell's exit status."""
    return Shell(uri).run()


@click.command()
@click.argument("uri", required=False, metavar="[URI]")
@click.option("--name", "name_opt", metavar="URI", hidden=True)
@click.option("--readonly", is_flag=True, help="accepted for virsh compatibility")
@click.option("--in-shell", is_flag=True, hidden=True)
@click.pass_context
def connect(
    ctx: click.Context, uri: str | None, name_opt: str | None, readonly: bool, in_shell: bool
) -> None:
    """(Re)connect to a hypervisor URI; in the shell, later commands use it (outside it: check
    the URI and say which connection it reaches)."""
    from pyvirt.cli.commands.conn import describe
    from pyvirt.client.uri import resolve

    root = ctx.find_root()
    if uri or name_opt:
        root.obj = {**(root.obj or {}), "uri": uri or name_opt}
    api(ctx).domains.list(with_uuids=False)  # fails now if the URI does not answer
    if not in_shell:
        click.echo(describe(resolve((root.obj or {}).get("uri"))))


@click.command(name="quit")
def quit_() -> None:
    """Quit the interactive shell."""


@click.command(name="exit")
def exit_() -> None:
    """Quit the interactive shell (like quit)."""


@click.command()
@click.argument("words", nargs=-1)
def echo(words: tuple[str, ...]) -> None:
    """Print the arguments."""
    click.echo(" ".join(words))
