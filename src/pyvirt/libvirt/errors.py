""":class:`libvirtError` and the translation of :mod:`pyvirt.errors` into it.

libvirt-python raises one exception class whose ``get_error_code()`` is a ``VIR_ERR_*``
number; programs branch on it (``VIR_ERR_NO_DOMAIN`` to mean "not defined yet"). Every call of
:mod:`pyvirt.libvirt` runs inside :func:`translated`, which turns a
:class:`~pyvirt.errors.PyvirtError` into the libvirtError libvirt would raise: the code
depends on the error's category and on the kind of object the call is about.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PyvirtError,
    UnsupportedError,
)
from pyvirt.libvirt import constants as c

__all__ = [
    "libvirtError",
    "registerErrorHandler",
    "translated",
    "virGetLastError",
    "virGetLastErrorCode",
    "virGetLastErrorMessage",
    "virResetLastError",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")

#: the libvirt error domain (``VIR_FROM_*``) of each kind of object
_FROM = {
    "domain": c.VIR_FROM_QEMU, "network": c.VIR_FROM_NETWORK, "pool": c.VIR_FROM_STORAGE,
    "volume": c.VIR_FROM_STORAGE, "snapshot": c.VIR_FROM_DOMAIN_SNAPSHOT,
    "connect": c.VIR_FROM_NONE,
}  # fmt: skip
_NOT_FOUND = {
    "domain": c.VIR_ERR_NO_DOMAIN, "network": c.VIR_ERR_NO_NETWORK,
    "pool": c.VIR_ERR_NO_STORAGE_POOL, "volume": c.VIR_ERR_NO_STORAGE_VOL,
    "snapshot": c.VIR_ERR_NO_DOMAIN_SNAPSHOT,
}  # fmt: skip
_EXISTS = {
    "domain": c.VIR_ERR_DOM_EXIST, "network": c.VIR_ERR_NETWORK_EXIST,
    "volume": c.VIR_ERR_STORAGE_VOL_EXIST,
}  # fmt: skip
#: libvirt's message prefix of each code (its messages read "Domain not found: ...")
_PREFIX = {
    c.VIR_ERR_NO_DOMAIN: "Domain not found",
    c.VIR_ERR_NO_NETWORK: "Network not found",
    c.VIR_ERR_NO_STORAGE_POOL: "Storage pool not found",
    c.VIR_ERR_NO_STORAGE_VOL: "Storage volume not found",
    c.VIR_ERR_NO_DOMAIN_SNAPSHOT: "Domain snapshot not found",
    c.VIR_ERR_OPERATION_INVALID: "Requested operation is not valid",
    c.VIR_ERR_OPERATION_FAILED: "operation failed",
    c.VIR_ERR_XML_ERROR: "XML error",
    c.VIR_ERR_INVALID_ARG: "invalid argument",
    c.VIR_ERR_CONFIG_UNSUPPORTED: "unsupported configuration",
    c.VIR_ERR_OPERATION_DENIED: "operation forbidden",
    c.VIR_ERR_NO_SUPPORT: "this function is not supported by the connection driver",
    c.VIR_ERR_NO_CONNECT: "no connection driver available",
}

_last = threading.local()
_handler: list[tuple[Callable[[Any, Any], object] | None, Any]] = [(None, None)]


class libvirtError(Exception):
    """The one exception of libvirt-python: ``get_error_code()`` is a ``VIR_ERR_*`` number.

    ``libvirtError("message")`` (as programs raise it themselves) carries no error record:
    its getters return None, as libvirt-python's do then.
    """

    def __init__(
        self,
        defmsg: str,
        *_objects: object,
        code: int | None = None,
        domain: int = c.VIR_FROM_NONE,
        hint: str | None = None,
    ) -> None:
        super().__init__(defmsg)
        #: libvirt's error record ``(code, domain, message, level, str1, str2, str3, int1,
        #: int2)``, or None for an error raised without one
        self.err: tuple[int, int, str, int, str | None, str | None, str | None, int, int] | None
        self.err = None
        if code is not None:
            self.err = (code, domain, defmsg, c.VIR_ERR_ERROR, hint, None, None, -1, -1)
        #: pyvirt's hint (the next step), when the error came from pyvirt
        self.hint = hint

    def get_error_code(self) -> int | None:
        """The ``VIR_ERR_*`` number."""
        return None if self.err is None else self.err[0]

    def get_error_domain(self) -> int | None:
        """The ``VIR_FROM_*`` number: the part of libvirt the error comes from."""
        return None if self.err is None else self.err[1]

    def get_error_message(self) -> str | None:
        """The message."""
        return None if self.err is None else self.err[2]

    def get_error_level(self) -> int | None:
        """``VIR_ERR_ERROR``."""
        return None if self.err is None else self.err[3]

    def get_str1(self) -> str | None:
        """Extra text: pyvirt's hint."""
        return None if self.err is None else self.err[4]

    def get_str2(self) -> str | None:
        """Extra text (always None)."""
        return None if self.err is None else self.err[5]

    def get_str3(self) -> str | None:
        """Extra text (always None)."""
        return None if self.err is None else self.err[6]

    def get_int1(self) -> int | None:
        """Extra number (always -1)."""
        return None if self.err is None else self.err[7]

    def get_int2(self) -> int | None:
        """Extra number (always -1)."""
        return None if self.err is None else self.err[8]


def error(code: int, message: str, kind: str = "connect", hint: str | None = None) -> libvirtError:
    """A libvirtError with ``code`` and libvirt's prefix before ``message``; remembered as the
    thread's last error and passed to the handler of :func:`registerErrorHandler`."""
    prefix = _PREFIX.get(code)
    text = f"{prefix}: {message}" if prefix else message
    err = libvirtError(text, code=code, domain=_FROM.get(kind, c.VIR_FROM_NONE), hint=hint)
    _last.err = err.err
    func, ctx = _handler[0]
    if func is not None:
        func(ctx, err.err)
    return err


def _not_found(message: str, kind: str) -> int:
    """The code of a "not found" error: by the noun the message begins with (``domain 'x'
    not found``, ``storage pool 'p' ...``), else by the call's kind of object."""
    text = message.lower()
    noun = text.split("'", 1)[0]
    if "snapshot" in text:
        return c.VIR_ERR_NO_DOMAIN_SNAPSHOT
    if " has no " in text:
        return c.VIR_ERR_DEVICE_MISSING
    for word, code in (
        ("domain", c.VIR_ERR_NO_DOMAIN),
        ("network", c.VIR_ERR_NO_NETWORK),
        ("volume", c.VIR_ERR_NO_STORAGE_VOL),
        ("pool", c.VIR_ERR_NO_STORAGE_POOL),
    ):
        if word in noun:
            return code
    if "not found" in text:
        return _NOT_FOUND.get(kind, c.VIR_ERR_OPERATION_FAILED)
    return c.VIR_ERR_OPERATION_FAILED


def code_of(err: PyvirtError, kind: str, xml: bool = False) -> int:
    """The ``VIR_ERR_*`` number libvirt gives the failure ``err`` of a call about ``kind``."""
    if isinstance(err, NotFoundError):
        return _not_found(err.message, kind)
    if isinstance(err, AlreadyExistsError):
        return _EXISTS.get(kind, c.VIR_ERR_OPERATION_FAILED)
    if isinstance(err, InvalidStateError):
        return c.VIR_ERR_OPERATION_INVALID
    if isinstance(err, InvalidConfigError):
        return c.VIR_ERR_XML_ERROR if xml else c.VIR_ERR_INVALID_ARG
    if isinstance(err, UnsupportedError):
        return c.VIR_ERR_CONFIG_UNSUPPORTED if xml else c.VIR_ERR_OPERATION_UNSUPPORTED
    return c.VIR_ERR_OPERATION_FAILED


@contextmanager
def translated(kind: str, *, xml: bool = False) -> Iterator[None]:
    """Run the block, raising a :class:`libvirtError` for a PyvirtError.

    :param kind: ``domain``, ``network``, ``pool``, ``volume``, ``snapshot`` or ``connect``
    :param xml: the call takes XML (invalid input is ``VIR_ERR_XML_ERROR``)
    """
    try:
        yield
    except PyvirtError as err:
        raise error(code_of(err, kind, xml), err.message, kind, err.hint) from err


def wrap(
    kind: str, *, xml: bool = False, writes: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A method decorator: the body runs in :func:`translated`; ``writes`` refuses it on a
    read-only connection (``openReadOnly``) with ``VIR_ERR_OPERATION_DENIED``."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if writes:
                owner = args[0]
                conn = getattr(owner, "_conn", owner)
                if getattr(conn, "_readonly", False):
                    raise error(
                        c.VIR_ERR_OPERATION_DENIED,
                        f"{fn.__name__} is not allowed on a read-only connection",
                        kind,
                        hint="open the connection with libvirt.open(), not openReadOnly()",
                    )
            with translated(kind, xml=xml):
                return fn(*args, **kwargs)

        return inner

    return deco


def virGetLastError() -> tuple[Any, ...] | None:
    """The error record of this thread's last failed call (None: none failed)."""
    return getattr(_last, "err", None)


def virGetLastErrorCode() -> int:
    """The ``VIR_ERR_*`` number of this thread's last error (``VIR_ERR_OK``: none)."""
    err = virGetLastError()
    return int(err[0]) if err else c.VIR_ERR_OK


def virGetLastErrorMessage() -> str:
    """The message of this thread's last error."""
    err = virGetLastError()
    return str(err[2]) if err else "no error"


def virResetLastError() -> None:
    """Forget this thread's last error."""
    _last.err = None


def registerErrorHandler(f: Callable[[Any, Any], object] | None, ctx: Any) -> int:
    """Call ``f(ctx, error_record)`` for every error (libvirt-python programs pass a no-op to
    keep libvirt from printing errors; pyvirt never prints them). Returns 1."""
    _handler[0] = (f, ctx)
    return 1
