"""The only module that runs ``qemu-img``: info, create, convert, resize, map.

Machine-readable output is asked for with ``--output=json`` wherever qemu-img has it. Every
call has a timeout; a failure raises :class:`~pyvirt.errors.HostCommandError` with the exact
argv and the tail of stderr. Image locking stays on, except for read-only inspection (``-U``)
of images a running guest may hold.
"""

from __future__ import annotations

import json
import os
import re
import select
import time
from collections.abc import Sequence
from typing import Any

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError
from pyvirt.progress import CancelToken, Progress, checkpoint

#: seconds for metadata operations; data copies get :data:`COPY_TIMEOUT`
TIMEOUT = 60.0
COPY_TIMEOUT = 6 * 3600.0


def binary() -> str:
    """Path of qemu-img.

    :raises UnsupportedError: when it is not installed
    """
    return hostcmd.tool("qemu-img", "qemu-utils")


def _run(args: Sequence[str], *, what: str, timeout: float = TIMEOUT) -> str:
    return hostcmd.run([binary(), *args], what=what, timeout=timeout).stdout


def _opts(options: dict[str, str | None]) -> list[str]:
    text = ",".join(f"{k}={v.replace(',', ',,')}" for k, v in options.items() if v is not None)
    return ["-o", text] if text else []


def info(path: str, fmt: str | None = None, *, backing_chain: bool = False) -> dict[str, Any]:
    """``qemu-img info --output=json`` of ``path`` (read-only, without taking the lock)."""
    args = ["info", "--output=json", "-U"]
    if fmt:
        args += ["-f", fmt]
    if backing_chain:
        args.append("--backing-chain")
    out = json.loads(_run([*args, path], what=f"cannot inspect '{path}'"))
    assert isinstance(out, dict | list)
    return out if isinstance(out, dict) else {"chain": out}


def create(
    path: str,
    fmt: str,
    size: int | None,
    *,
    backing: str | None = None,
    backing_fmt: str | None = None,
    preallocation: str | None = None,
    options: dict[str, str | None] | None = None,
) -> None:
    """``qemu-img create`` (``size`` None: take the backing file's size)."""
    opts: dict[str, str | None] = {"preallocation": preallocation, **(options or {})}
    args = ["create", "-q", "-f", fmt, *_opts(opts)]
    if backing:
        args += ["-b", backing, "-F", backing_fmt or "raw"]
    args.append(path)
    if size is not None:
        args.append(str(size))
    timeout = COPY_TIMEOUT if preallocation in ("falloc", "full") else TIMEOUT
    _run(args, what=f"cannot create '{path}'", timeout=timeout)


def convert(
    src: str,
    src_fmt: str,
    dst: str,
    dst_fmt: str,
    *,
    preallocation: str | None = None,
    target_exists: bool = False,
    src_options: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """``qemu-img convert`` (holes stay holes: ``-S 4k``, qemu-img's default).

    :param target_exists: write into an existing ``dst`` (``-n``) instead of creating it
    :param src_options: an ``--image-opts`` string for the source instead of a path
    :param progress: hears ``(percent, 100)`` as qemu-img reports it (``-p``)
    :param cancel: checked while qemu-img runs; when set, qemu-img is killed (the caller
        removes ``dst``) and :class:`~pyvirt.progress.CancelledError` raised
    """
    quiet = "-q" if progress is None and cancel is None else "-p"
    args = ["convert", quiet, "-W", "-O", dst_fmt, *_opts({"preallocation": preallocation})]
    if target_exists:
        args.append("-n")
    if src_options:
        args += ["--image-opts", src_options]
    else:
        args += ["-f", src_fmt, src]
    args.append(dst)
    what = f"cannot copy '{src}' to '{dst}'"
    if quiet == "-q":
        _run(args, what=what, timeout=COPY_TIMEOUT)
    else:
        _watched([binary(), *args], what=what, progress=progress, cancel=cancel)


_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


def _watched(
    argv: list[str], *, what: str, progress: Progress | None, cancel: CancelToken | None
) -> None:
    """Run a ``-p`` qemu-img, reporting its percentages and killing it when cancelled."""
    proc = hostcmd.spawn(argv, what=what)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    tail = b""
    deadline = time.monotonic() + COPY_TIMEOUT
    try:
        while True:
            if cancel is not None:
                cancel.check()
            if time.monotonic() > deadline:
                raise HostCommandError(f"{what}: qemu-img did not finish in time", argv=argv)
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            tail = (tail + chunk)[-4096:]
            found = _PERCENT.findall(chunk)
            if found:
                checkpoint(progress, cancel, int(float(found[-1])), 100)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if code != 0:
        text = _PERCENT.sub(b"", tail).decode(errors="replace").strip()
        raise HostCommandError(
            f"{what}: qemu-img exited with status {code}", argv=argv, returncode=code, stderr=text
        )


def resize(
    path: str, fmt: str, size: int, *, shrink: bool = False, preallocation: str | None = None
) -> None:
    """``qemu-img resize`` to ``size`` bytes."""
    args = ["resize", "-q", "-f", fmt]
    if shrink:
        args.append("--shrink")
    if preallocation:
        args.append(f"--preallocation={preallocation}")
    _run([*args, path, str(size)], what=f"cannot resize '{path}'", timeout=COPY_TIMEOUT)


def map_(path: str, fmt: str) -> list[dict[str, Any]]:
    """``qemu-img map --output=json``: the image's extents (data/zero flags)."""
    out = json.loads(_run(["map", "--output=json", "-U", "-f", fmt, path], what="cannot map"))
    assert isinstance(out, list)
    return out


def data_end(path: str, fmt: str) -> int:
    """The guest offset just after the last extent holding data (0 for an empty image)."""
    end = 0
    for ext in map_(path, fmt):
        if ext.get("data") and not ext.get("zero"):
            end = int(ext["start"]) + int(ext["length"])
    return end


# internal snapshots and chains (snapshot metadata is pyvirt's; these act on the images)
def snapshot(action: str, path: str, tag: str) -> None:
    """``qemu-img snapshot -c|-a|-d TAG PATH``: create, apply or delete internal snapshot
    *tag* of the qcow2 image *path* (which no running QEMU may hold).

    :param action: ``create``, ``apply`` or ``delete``
    """
    flag = {"create": "-c", "apply": "-a", "delete": "-d"}[action]
    _run(["snapshot", flag, tag, path], what=f"cannot {action} snapshot '{tag}' of '{path}'")


def snapshot_tags(path: str) -> list[str]:
    """The internal snapshot tags of the qcow2 image *path*."""
    out = info(path, "qcow2")
    return [str(s.get("name")) for s in out.get("snapshots", [])]


def commit(path: str) -> None:
    """``qemu-img commit -d``: write overlay *path* into its backing file (the overlay stays
    as it was; the caller removes it)."""
    _run(["commit", "-q", "-d", path], what=f"cannot commit '{path}'", timeout=COPY_TIMEOUT)


def rebase_unsafe(path: str, backing: str, backing_fmt: str) -> None:
    """``qemu-img rebase -u``: point overlay *path* at *backing* without copying (the new
    backing file must hold the same data as the old one)."""
    args = ["rebase", "-u", "-b", backing, "-F", backing_fmt, path]
    _run(args, what=f"cannot rebase '{path}' onto '{backing}'")


def create_overlay(path: str, size: int, *, backing: str, backing_fmt: str) -> None:
    """A qcow2 overlay *path* of *backing* without opening it (``create -u``: a running
    QEMU holds its lock), *size* bytes large."""
    args = ["create", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", backing_fmt, path, str(size)]
    _run(args, what=f"cannot create '{path}'")
