"""The remote verbs that run as daemon jobs: volume clone, upload, download and wipe, and the
domain clone (virt-clone).

:class:`VolumeJobsMixin` gives a remote ``Volume`` class these verbs with the embedded
signatures; the class provides ``_client`` (a :class:`~pyvirt.client.transport.Client`),
``pool_name``, ``name`` and ``_job_volume(name)`` (a handle on another volume of the pool).
:class:`DomainCloneMixin` does the same for ``conn.domains.clone`` (the class provides
``_client`` and ``get(name)``). Each verb starts the job, waits for it with the caller's
``progress`` callback, and cancels it on Ctrl-C or when ``cancel`` is set, so a
remote ``vol-clone`` interrupted by the user leaves nothing behind, as an embedded one does.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urlencode

from pyvirt.api.remote.jobs import JobInfo, Jobs, wait_for
from pyvirt.client.transport import API, Client, Response
from pyvirt.errors import OperationFailedError
from pyvirt.progress import CancelToken, Progress

if TYPE_CHECKING:
    from pyvirt.api.install import CloneRequest

__all__ = ["DomainCloneMixin", "VolumeJobsMixin", "clone_body"]

# lazy: function-local imports marked ``# lazy`` load what only one verb needs.

CHUNK = 1 << 20


def _http(client: Client) -> http.client.HTTPConnection:
    """The client's HTTP connection, for bodies streamed in or out (not read whole)."""
    return client.connection


def _started(client: Client, method: str, path: str, payload: dict[str, Any]) -> JobInfo:
    doc = client.json(method, path, payload)
    return JobInfo.from_json(doc["job"])


class VolumeJobsMixin:
    """``clone``, ``upload``, ``download`` and ``wipe`` of a remote volume, as daemon jobs."""

    _client: Client
    pool_name: str
    name: str

    def _job_volume(self, name: str) -> Any:
        """A handle on volume ``name`` of the same pool (the class provides it)."""
        raise NotImplementedError

    @property
    def _vol_path(self) -> str:
        return f"{API}/pools/{quote(self.pool_name, safe='')}/volumes/{quote(self.name, safe='')}"

    def clone(
        self,
        new_name: str,
        *,
        prealloc_metadata: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        """``vol-clone`` on the daemon (a job); returns the new volume."""
        body = {"name": new_name, "prealloc_metadata": prealloc_metadata}
        job = _started(self._client, "POST", f"{self._vol_path}/clone", body)
        wait_for(self._client, job, progress=progress, cancel=cancel)
        return self._job_volume(new_name)

    def wipe(
        self,
        *,
        algorithm: str = "zero",
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """``vol-wipe`` on the daemon (a job)."""
        job = _started(self._client, "POST", f"{self._vol_path}/wipe", {"algorithm": algorithm})
        wait_for(self._client, job, progress=progress, cancel=cancel)

    def upload(
        self,
        src: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """``vol-upload``: stream ``src`` into the volume at ``offset``; returns bytes written.

        Ctrl-C or ``cancel`` drops the connection, which cancels the daemon's job.
        """
        size = _remaining(src)
        if size is not None:
            length = size if length is None else min(length, size)
        query = {"offset": offset, "sparse": "true" if sparse else "false"}
        if length is not None:
            query["length"] = length
        headers = {**self._client.headers, "Content-Type": "application/octet-stream"}
        if length is not None:
            headers["Content-Length"] = str(length)
        else:
            headers["Transfer-Encoding"] = "chunked"
        conn = _http(self._client)
        try:
            conn.request("PUT", f"{self._vol_path}/content?{urlencode(query)}",
                         body=_chunks(src, length, progress, cancel), headers=headers,
                         encode_chunked=length is None)  # fmt: skip
            resp = _response(conn)
        except BaseException:
            self._client.close()  # the daemon sees the connection drop and cancels its job
            raise
        if resp.status >= 400:
            raise Client.error_of(resp)
        info = JobInfo.from_json(resp.json()["job"])
        return int((info.result or {}).get("transferred", info.done))

    def download(
        self,
        dst: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """``vol-download``: copy the volume's bytes from ``offset`` into ``dst``; returns
        bytes copied. Ctrl-C or ``cancel`` cancels the daemon's job.

        :raises CancelledError: the job was cancelled (``dst`` holds the bytes so far)
        """
        query: dict[str, int] = {"offset": offset}
        if length is not None:
            query["length"] = length
        conn = _http(self._client)
        done = 0
        job_id = ""
        try:
            conn.request("GET", f"{self._vol_path}/content?{urlencode(query)}",
                         headers=self._client.headers)  # fmt: skip
            raw = conn.getresponse()
            if raw.status >= 400:
                data = raw.read()
                raise Client.error_of(Response(raw.status, _lower(raw.getheaders()), data))
            job_id = raw.getheader("x-pyvirt-job", "")
            total = int(raw.getheader("content-length", "0") or 0)
            zeros = bytes(CHUNK)
            seekable = sparse and _remaining(dst) is not None
            while done < total:
                if cancel is not None:
                    cancel.check()
                chunk = raw.read(min(CHUNK, total - done))
                if not chunk:
                    break
                if seekable and chunk == zeros[: len(chunk)]:
                    dst.seek(len(chunk), os.SEEK_CUR)
                else:
                    dst.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if seekable:
                dst.truncate()
            dst.flush()
        except (http.client.HTTPException, ConnectionError) as err:  # the body broke off
            self._client.close()
            if job_id:  # cancelled or failed on the daemon's side: say so
                Jobs(self._client).get(job_id, wait=5.0).raise_for_state()
            raise OperationFailedError(f"lost the connection to pyvirtd: {err}") from None
        except BaseException:  # Ctrl-C, a cancel token, a full disk here: stop the job
            self._client.close()
            if job_id:
                _cancel_and_wait(self._client, job_id)
            raise
        if done < total:  # the body ended early: the job was cancelled or failed
            self._client.close()  # the daemon closed its end
            Jobs(self._client).get(job_id, wait=5.0).raise_for_state()
            raise OperationFailedError(f"download ended after {done} of {total} bytes")
        return done


def _cancel_and_wait(client: Client, job_id: str) -> None:
    jobs = Jobs(client)
    try:
        jobs.cancel(job_id)
        jobs.get(job_id, wait=10.0)
    except Exception:  # it ended meanwhile, or the daemon is gone
        pass


def _lower(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers}


def _response(conn: http.client.HTTPConnection) -> Response:
    raw = conn.getresponse()
    return Response(raw.status, _lower(raw.getheaders()), raw.read())


def _remaining(f: BinaryIO) -> int | None:
    """Bytes left in a regular file from its position, None for pipes and terminals."""
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    import stat  # lazy

    if not stat.S_ISREG(st.st_mode):
        return None
    return max(0, st.st_size - f.tell())


def _chunks(
    src: BinaryIO, length: int | None, progress: Progress | None, cancel: CancelToken | None
) -> Iterator[bytes]:
    done = 0
    while length is None or done < length:
        if cancel is not None:
            cancel.check()
        chunk = src.read(CHUNK if length is None else min(CHUNK, length - done))
        if not chunk:
            break
        done += len(chunk)
        yield chunk
        if progress is not None:
            progress(done, length or 0)


def clone_body(request: CloneRequest) -> dict[str, Any]:
    """The ``POST /domains/{name}/clone`` body of a virt-clone request."""
    body = dataclasses.asdict(request)
    body.pop("original", None)
    body.pop("original_xml", None)
    check = body.pop("check", None) or {}
    if not all(check.values()):
        body["check"] = ",".join(f"{k}={'on' if v else 'off'}" for k, v in check.items())
    return body


class DomainCloneMixin:
    """``conn.domains.clone`` on the daemon (virt-clone as a job)."""

    _client: Client

    def get(self, name_or_uuid: str) -> Any:
        """The domain handle (the class provides it)."""
        raise NotImplementedError

    def clone(
        self,
        request: CloneRequest,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Any:
        """Clone ``request.original`` on the daemon; returns the new domain.

        :raises UnsupportedError: ``original_xml`` (a clone from XML runs embedded only)
        """
        if request.original_xml is not None or not request.original:
            from pyvirt.errors import UnsupportedError  # lazy

            raise UnsupportedError(
                "a clone through pyvirtd needs --original DOMAIN",
                hint="use -c pyvirt:///embed to clone from --original-xml",
            )
        path = f"{API}/domains/{quote(request.original, safe='')}/clone"
        job = _started(self._client, "POST", path, clone_body(request))
        info = wait_for(self._client, job, progress=progress, cancel=cancel)
        return self.get(str((info.result or {}).get("name", "")))
