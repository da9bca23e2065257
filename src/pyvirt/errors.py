"""The one error hierarchy of pyvirt.

::

    PyvirtError                 exit 1, HTTP 500
     ├── NotFoundError          no such domain/pool/volume/network        (404)
     ├── AlreadyExistsError     name or UUID already taken                (409)
     ├── InvalidStateError      operation not valid in the object's state (409)
     │    └── PreconditionFailedError  If-Match revision is stale (pyvirtd, 412)
     ├── InvalidConfigError     XML or argument invalid; .problems        (400)
     ├── UnsupportedError       host, kernel or QEMU lacks a feature      (400)
     ├── HostCommandError       an external command failed; argv + stderr (500)
     ├── MonitorError           QMP failed; wraps qemu.qmp errors         (500)
     └── OperationFailedError   an operation started but did not finish   (500)

Every error carries a lowercase message without a final period, and optionally a ``hint``:
the next step for the user. The CLI prints ``error: MESSAGE`` and, when present, ``hint: HINT``,
and always exits with status 1 (virsh's convention); :attr:`PyvirtError.exit_code` is kept for
front ends that want finer codes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # ``typing`` costs ~3 ms; every command imports this module
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import ClassVar


class PyvirtError(Exception):
    """Base for every error pyvirt raises on purpose."""

    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    #: the stable ``code`` of the REST API's error body (``{"error", "hint", "code"}``)
    code: ClassVar[str] = "failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class NotFoundError(PyvirtError):
    """The named object does not exist."""

    code = "not_found"

    status = 404


class AlreadyExistsError(PyvirtError):
    """An object with that name or UUID already exists."""

    code = "already_exists"

    status = 409


class InvalidStateError(PyvirtError):
    """The object is in a state where the operation is not possible."""

    code = "invalid_state"

    status = 409


class PreconditionFailedError(InvalidStateError):
    """A conditional request's revision (HTTP ``If-Match``) is no longer current: the
    definition changed since the client read it (raised by pyvirtd, rebuilt by clients)."""

    code = "precondition_failed"

    status = 412


class Problem:
    """One validation problem: where (an element path like ``<devices>/<disk>[1]``) and what.

    A plain class, not a dataclass: every front end imports this module, the CLI's fast path
    too, and ``dataclasses`` would be most of its start-up time.
    """

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and (self.path, self.message) == (
            other.path,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.message))

    def __repr__(self) -> str:
        return f"Problem(path={self.path!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidConfigError(PyvirtError):
    """Input (XML or arguments) is malformed or semantically invalid."""

    code = "invalid_config"

    status = 400

    def __init__(
        self,
        message: str | None = None,
        *,
        problems: Sequence[Problem] = (),
        hint: str | None = None,
    ) -> None:
        self.problems = list(problems)
        if message is None:
            message = "; ".join(str(p) for p in self.problems) or "invalid configuration"
        super().__init__(message, hint=hint)


class UnsupportedError(PyvirtError):
    """The host, its kernel or the installed QEMU lacks a needed feature."""

    code = "unsupported"

    status = 400


class HostCommandError(PyvirtError):
    """An external command failed; keeps its argv, return code and the tail of stderr."""

    code = "host_command"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-3:]
        if tail:
            message = f"{message}: {' | '.join(tail)}"
        super().__init__(message, hint=hint)


class MonitorError(PyvirtError):
    """Talking to a QEMU monitor (QMP) failed."""

    code = "monitor"


class OperationFailedError(PyvirtError):
    """An operation was started but could not be completed."""

    code = "operation_failed"


def error_class(code: str) -> type[PyvirtError]:
    """The error class whose :attr:`PyvirtError.code` is ``code`` (remote clients rebuild
    the daemon's errors with it); unknown codes give :class:`PyvirtError`."""
    for cls in (
        NotFoundError, AlreadyExistsError, InvalidStateError, PreconditionFailedError,
        InvalidConfigError,
        UnsupportedError, HostCommandError, MonitorError, OperationFailedError,
    ):  # fmt: skip
        if cls.code == code:
            return cls
    return PyvirtError
