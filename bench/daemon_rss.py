"""bench/daemon_rss: pyvirtd's resident memory with 1000 defined and 10 running domains (issue 11).

Starts ``pyvirtd --no-autostart`` on a throw-away state directory, defines ``--domains``
domains (embedded, before the daemon starts: fast), then starts ``--guests`` tiny TCG guests
through the daemon's REST API (``POST /api/v1/domains/{name}/start``). A build whose daemon has
no domain routes yet starts them embedded and waits until the daemon's supervisor has attached
to all of them (said in the output). Guests are started paused (QEMU ``-S``: the process and its
monitors exist, no guest CPU burns) unless ``--boot``.

Prints the daemon's VmRSS (``/proc/PID/status``) at each step: idle, with the guests running
(2 s after the last attach, and once more after ``--settle`` seconds: the daemon gives freed
memory back every 10 s), and after a ``list --all`` and a ``/metrics`` scrape (read after
``--settle`` seconds too), against the target (60 MiB) and libvirtd's
30-33 MiB measured on this machine by bench/daemon_latency.py in the same situation.

Then (unless ``--no-workload``) a realistic workload, the RSS 1 s after each step and once
settled: ``dominfo``, ``define`` of a new domain, an event stream client (``GET
/api/v1/events``, kept open) while that domain is started and destroyed, ``list --all``,
``/metrics``, and a web console login (``POST /login`` as JSON on the unix socket: the same
password check and session as on the TLS listener, without TLS) and its ``/api/v1/session``.
Also USS/PSS/anonymous memory (``/proc/PID/smaps_rollup``) at the end, and with ``--smaps``
the mappings with the most resident memory.

``--baseline SRC --rounds N`` measures N daemons of this tree and N of another source tree
(e.g. ``git archive BASE src``; the daemon runs with ``PYTHONPATH=SRC``), alternating, on the
same defined domains, and prints the medians side by side with their differences. Compile
both trees first (``python -m compileall -q SRC``): without ``.pyc`` files (e.g. under
``PYTHONDONTWRITEBYTECODE``) every module is compiled at start-up, ~1.7 MiB more RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import domain_xml, tiny_image

TARGET_MIB = 60.0
LIBVIRTD_MIB = (30.0, 33.0)
WEB_USER, WEB_PASSWORD = "rssuser", "correct horse battery"


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def smaps_mib(pid: int) -> dict[str, float]:
    """Pss and USS (private clean + dirty) of ``pid`` in MiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        fields[key] = int(rest.split()[0])
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"PSS": fields["Pss"] / 1024, "USS": uss / 1024, "anonymous": fields["Anonymous"] / 1024}


def smaps_top(pid: int, count: int = 12) -> list[tuple[str, float]]:
    """The ``count`` mappings (by file, or ``[heap]``/anonymous) with the most resident KiB,
    in MiB."""
    sizes: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else "[anonymous]"
        elif line.startswith("Rss:"):
            sizes[name] = sizes.get(name, 0) + int(head[1])
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:count]
    return [(Path(n).name if n.startswith("/") else n, kib / 1024) for n, kib in top]


def request(sock: Path, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    """One request to the daemon; (status, body) whatever the status (``body``: JSON, or
    bytes sent as they are)."""
    return request_full(sock, method, path, body, headers)[:2]  # type: ignore[return-value]


def request_full(sock: Path, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:  # fmt: skip
    """:func:`request` with the response's headers too."""
    from pyvirt.client.transport import UnixHTTPConnection

    conn = UnixHTTPConnection(sock, timeout=120)
    try:
        hdrs = dict(headers or {})
        data: bytes | None
        if body is None or isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def workload(sock: Path, pid: int, xml: str, first: str, settle: float) -> dict[str, float]:
    """The realistic workload's steps, RSS 1 s after each (and settled at the end)."""
    import socket

    from pyvirt.client.transport import UnixHTTPConnection

    out: dict[str, float] = {}

    def step(label: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[bytes, Any]:  # fmt: skip
        status, data, hdrs = request_full(sock, method, path, body, headers)
        if status >= 300:
            raise RuntimeError(f"{label}: {status} {data.decode(errors='replace')}")
        time.sleep(1.0)
        out[label] = rss_mib(pid)
        return data, hdrs

    step("dominfo", "GET", f"/api/v1/domains/{first}")
    step("define", "POST", "/api/v1/domains", xml.encode(), {"Content-Type": "application/xml"})
    events = UnixHTTPConnection(sock, timeout=30)
    try:
        events.request("GET", "/api/v1/events")
        stream = events.getresponse()
        if stream.status != 200:
            raise RuntimeError(f"event stream: {stream.status}")
        time.sleep(1.0)
        out["event stream open"] = rss_mib(pid)
        step("start (events open)", "POST", "/api/v1/domains/rsswork/start", {"paused": True})
        step("destroy (events open)", "POST", "/api/v1/domains/rsswork/destroy")
        assert events.sock is not None
        events.sock.settimeout(10)
        seen = b""
        with suppress(TimeoutError, socket.timeout):
            while b"Stopped" not in seen:
                chunk = stream.read1(65536)
                if not chunk:
                    break
                seen += chunk
        if b"Started" not in seen:
            raise RuntimeError(f"the event stream missed the start: {seen[:300]!r}")
    finally:
        events.close()
    time.sleep(1.0)
    out["event stream closed"] = rss_mib(pid)
    step("list --all", "GET", "/api/v1/domains?all=true")
    step("/metrics", "GET", "/metrics")
    login = {"user": WEB_USER, "password": WEB_PASSWORD}
    _, hdrs = step("web login", "POST", "/login", login)
    cookies = "; ".join(c.split(";", 1)[0] for c in hdrs.get_all("set-cookie") or [])
    step("web session", "GET", "/api/v1/session", None, {"Cookie": cookies})
    step("undefine", "DELETE", "/api/v1/domains/rsswork")
    time.sleep(settle)
    out["workload, settled"] = rss_mib(pid)
    return out


@contextmanager
def pyvirtd(root: Path, src: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A pyvirtd serving ``root`` until the block ends (SIGTERM, then SIGKILL); run from the
    sources in ``src`` if given."""
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    if src is not None:
        env["PYTHONPATH"] = str(Path(src).resolve())
    log = root / "pyvirtd.out"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pyvirt.daemon", "--no-autostart"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    sock = root / "run" / "pyvirtd.sock"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(Exception):  # not up yet, or a stale socket
                if sock.exists() and request(sock, "GET", "/health")[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pyvirtd did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def has_domain_routes(sock: Path, name: str) -> bool:
    """Whether the daemon serves ``/api/v1/domains`` (not ``/openapi.json``: its cached
    document would count in the figures)."""
    return request(sock, "GET", f"/api/v1/domains/{name}/state")[0] == 200


def wait_attached(sock: Path, names: list[str], timeout: float = 60.0) -> None:
    """Until the daemon's supervisor watches every one of ``names``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = request(sock, "GET", "/api/v1/supervisor")
        if status == 200:
            watched = json.dumps(json.loads(body))
            if all(f'"{n}"' in watched for n in names):
                return
        time.sleep(0.2)
    raise RuntimeError("the daemon did not attach to every guest")


def measure(root: Path, guests: list[str], args: argparse.Namespace, src: str | None,
            embedded: Any) -> tuple[dict[str, float], str, list[float], float,
                                    list[tuple[str, float]]]:  # fmt: skip
    """One daemon (from ``src``'s sources, else this interpreter's) through every step:
    (figures, how the guests were started, each start's seconds, all starts' seconds, the
    largest mappings)."""
    kernel, initrd = tiny_image()
    figures: dict[str, float] = {}
    each: list[float] = []
    top: list[tuple[str, float]] = []
    with pyvirtd(root, src) as proc:
        sock = root / "run" / "pyvirtd.sock"
        time.sleep(1.0)
        figures["idle"] = rss_mib(proc.pid)
        t0 = time.monotonic()
        routes = has_domain_routes(sock, guests[0])
        if routes:
            how = "through POST /api/v1/domains/{name}/start"
            for name in guests:
                t1 = time.monotonic()
                status, body = request(sock, "POST", f"/api/v1/domains/{name}/start",
                                       {"paused": not args.boot})  # fmt: skip
                each.append(time.monotonic() - t1)
                if status >= 300:
                    raise RuntimeError(f"start {name}: {status} {body.decode()}")
        else:
            how = "embedded (this build's daemon has no domain routes), attached by pyvirtd"
            for name in guests:
                embedded.domains.get(name).start(paused=not args.boot)
        wait_attached(sock, guests)
        started = time.monotonic() - t0
        time.sleep(2.0)
        figures["running"] = rss_mib(proc.pid)
        time.sleep(args.settle)
        figures[f"running, {args.settle:.0f} s later"] = rss_mib(proc.pid)
        if routes:
            request(sock, "GET", "/api/v1/domains?all=true")
            time.sleep(args.settle)
            figures["after a list of all"] = rss_mib(proc.pid)
        request(sock, "GET", "/metrics")
        time.sleep(args.settle)
        figures["after list and /metrics"] = rss_mib(proc.pid)
        if routes and not args.no_workload:
            work_xml = domain_xml("rsswork", kernel, initrd, memory_mib=64)
            for label, value in workload(sock, proc.pid, work_xml, guests[0],
                                         args.settle).items():  # fmt: skip
                figures[f"workload: {label}"] = value
        figures.update({f"{k} (smaps)": v for k, v in smaps_mib(proc.pid).items()})
        if args.smaps:
            top = smaps_top(proc.pid)
        figures["peak (VmHWM)"] = float(
            next(int(line.split()[1]) for line in
                 Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                 if line.startswith("VmHWM:")) / 1024
        )  # fmt: skip
        for name in guests:
            with suppress(Exception):
                embedded.domains.get(name).destroy()
    return figures, how, each, started, top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--domains", type=int, default=1000, help="defined domains")
    ap.add_argument("--guests", type=int, default=10, help="running guests")
    ap.add_argument("--boot", action="store_true", help="let the guests boot (default: paused)")
    ap.add_argument(
        "--settle",
        type=float,
        default=12.0,
        help="seconds before the settled reading (pyvirtd trims every 10 s)",
    )
    ap.add_argument("--no-workload", action="store_true", help="skip the realistic workload")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--smaps", action="store_true", help="also print the largest mappings")
    ap.add_argument("--baseline", metavar="SRC",
                    help="also measure a pyvirtd from this source directory (its 'src'), "
                         "alternating with this tree's, on the same domains")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=1, help="daemons of each tree, alternating")
    args = ap.parse_args()

    import pyvirt.api
    from pyvirt.api.users import add_user

    kernel, initrd = tiny_image()
    root = Path(tempfile.mkdtemp(prefix="pvr", dir="/tmp"))
    names = [f"rss{i:04d}" for i in range(args.domains)]
    guests = names[: args.guests]
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.baseline:
        trees.append(("baseline", args.baseline))
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    how = ""
    started = 0.0
    top: list[tuple[str, float]] = []
    each: list[float] = []
    embedded = pyvirt.api.open(f"pyvirt:///embed?root={root}")
    try:
        t0 = time.monotonic()
        for name in names:
            embedded.domains.define(domain_xml(name, kernel, initrd, memory_mib=64))
        print(f"defined {args.domains} domains in {time.monotonic() - t0:.1f} s", flush=True)
        add_user(WEB_USER, WEB_PASSWORD, root)
        for _ in range(args.rounds):
            for label, src in trees:
                figs, how_, each_, started_, top_ = measure(root, guests, args, src, embedded)
                runs[label].append(figs)
                print(f"  ({label}: after list and /metrics {figs['after list and /metrics']:.1f}"
                      f" MiB)", flush=True)  # fmt: skip
                if src is None:
                    how, each, started, top = how_, [*each, *each_], started_, top_
    finally:
        run = root / "run" / "qemu"
        for name in [*guests, "rsswork"]:
            if (run / name).is_dir():
                with suppress(Exception):
                    embedded.domains.get(name).destroy()
        shutil.rmtree(root, ignore_errors=True)

    def median(label: str) -> dict[str, float]:
        return {k: statistics.median(r[k] for r in runs[label]) for k in runs[label][0]}

    figures = median("this tree")
    state = "booted" if args.boot else "paused (-S)"
    print(f"daemon_rss: pyvirtd with {args.domains} defined and {args.guests} running domains")
    print(f"  guests: tiny TCG, {state}, started {how} in {started:.1f} s")
    if each:
        print(f"  one start through the daemon: median {1000 * statistics.median(each):.0f} ms")
    if args.baseline:
        base = median("baseline")
        print(f"  medians of {args.rounds} daemon(s) each, alternating; baseline: {args.baseline}")
        print(f"  {'':<38} {'this tree':>9} {'baseline':>9} {'diff':>6}")
        for label, value in figures.items():
            b = base.get(label, float("nan"))
            print(f"  {label:<38} {value:9.1f} {b:9.1f} {value - b:+6.1f}")
    else:
        for label, value in figures.items():
            print(f"  {label:<38} {value:7.1f} MiB")
    for mapping, mib in top:
        print(f"  mapping {mapping:<30} {mib:7.1f} MiB")
    final = figures["after list and /metrics"]
    verdict = "OK" if final <= TARGET_MIB else "MISSED"
    lo, hi = LIBVIRTD_MIB
    ratio = f"{final / hi:.2f}-{final / lo:.2f}x"
    print(f"  target {TARGET_MIB:.0f} MiB: {verdict} ({final:.1f} MiB);"
          f" libvirtd here: {lo:.0f}-{hi:.0f} MiB ({ratio})")  # fmt: skip
    if args.json:
        out: dict[str, Any] = {"rss_mib": figures, "guests": state, "how": how}
        if args.baseline:
            out["baseline_rss_mib"] = median("baseline")
        Path(args.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
