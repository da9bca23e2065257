"""The ``tiny-net`` guest: the tiny image plus iperf3, for network measurements.

iperf3 is dynamically linked, so the host's ``/usr/bin/iperf3`` (Debian package ``iperf3``) is
copied with every shared library ``ldd`` lists and the dynamic loader, at the same paths, into
a second gzip ``newc`` archive that is appended to the tiny image's initramfs (the kernel
unpacks concatenated archives in order). The tiny image itself and its recipe hash do not
change; the kernel file is shared (hard link, else a copy).

Built into ``CACHE/net/<tiny build>-<hash of the copied files>/`` once and reused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import UnsupportedError
from pyvirt.images import cpio, tiny
from pyvirt.images.tiny import TinyImage

IPERF3 = Path("/usr/bin/iperf3")
FORMAT = 1


def shared_objects(binary: Path) -> list[Path]:
    """The binary's shared libraries and dynamic loader, as absolute paths (``ldd``).

    :raises UnsupportedError: ``ldd`` is missing
    :raises HostCommandError: ``ldd`` failed
    """
    argv = ["ldd", str(binary)]
    hostcmd.tool("ldd", "libc-bin")
    proc = hostcmd.run(argv, what=f"listing the libraries of {binary}", timeout=30)
    found: list[Path] = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if "=>" in words:
            target = words[words.index("=>") + 1]
            if target.startswith("/"):
                found.append(Path(target))
        elif words and words[0].startswith("/"):
            found.append(Path(words[0]))  # the loader: /lib64/ld-linux-x86-64.so.2
    return found


def _payload(binary: Path) -> dict[str, Path]:
    if not binary.is_file():
        raise UnsupportedError(
            f"{binary} is not installed", hint="apt-get install iperf3 (Debian package iperf3)"
        )
    files = {str(binary).lstrip("/"): binary}
    for lib in shared_objects(binary):
        files[str(lib).lstrip("/")] = lib
    return files


def payload_hash(files: dict[str, Path]) -> str:
    """A short hash of the copied files' names, sizes and contents' identity (mtime)."""
    digest = hashlib.sha256(str(FORMAT).encode())
    for name in sorted(files):
        st = files[name].stat()
        digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def write_overlay(files: dict[str, Path], output: Path) -> None:
    """A gzip ``newc`` archive holding ``files`` (archive name -> host file) and their dirs."""
    all_dirs: set[str] = set()
    for d in {str(Path(n).parent) for n in files} - {"."}:
        parts = Path(d).parts
        all_dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    with output.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        writer = cpio.NewcWriter(gz)
        for d in sorted(all_dirs):
            writer.directory(d)
        for name in sorted(files):
            writer.file(name, files[name].read_bytes(), 0o755)
        writer.close()


def _share(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build(base: TinyImage, output: Path, *, binary: Path = IPERF3) -> TinyImage:
    """Build the tiny-net image into ``output`` from the tiny image ``base``.

    :raises UnsupportedError: iperf3 or ldd is not installed
    """
    output = output.absolute()
    if (output / "manifest.json").is_file():
        return TinyImage(output / base.kernel.name, output / base.initrd.name)
    files = _payload(binary)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.new-"))
    try:
        _share(base.kernel, staging / base.kernel.name)
        overlay = staging / "overlay.img"
        write_overlay(files, overlay)
        with (staging / base.initrd.name).open("wb") as out:
            for part in (base.initrd, overlay):
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out)
        overlay.unlink()
        manifest = {"format": FORMAT, "base": str(base.directory), "files": sorted(files)}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        staging.chmod(0o755)
        try:
            staging.rename(output)
        except OSError:
            if not (output / "manifest.json").is_file():  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TinyImage(output / base.kernel.name, output / base.initrd.name)


def default_image(cache_dir: Path | None = None, *, base: TinyImage | None = None) -> TinyImage:
    """The cached tiny-net image (building the tiny image first when needed)."""
    cache_dir = (cache_dir or tiny.default_cache_dir()).absolute()
    base = base or tiny.default_image(cache_dir)
    key = f"{base.directory.name}-{payload_hash(_payload(IPERF3))}"
    return build(base, cache_dir / "net" / key)
