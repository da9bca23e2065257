"""bench/daemon_latency: CLI latency embedded, through pyvirtd, and virsh with libvirtd (issue 11).

In one run, with 1 and with 1000 defined domains, the median wall time of `list --all`,
`define`, `dominfo`, `start` (until the command returns) and `destroy` (of a booted guest), each
as a new process as a user runs it, for three columns:

  embedded  `pyvirt` on a state directory with no daemon (it does the work in-process);
  pyvirtd   `pyvirt` on a state directory whose pyvirtd this benchmark started (the CLI finds
            the daemon by itself); n/a when this build's CLI cannot talk to a daemon;
  virsh     `virsh -c qemu:///system` with Debian's libvirtd, started by this benchmark the fair
            way (bench/libvirtd/start-fair.sh: TCG only, a prompt child reaper) and stopped
            afterwards; n/a when libvirt is not installed (`--setup` installs it) or a libvirtd
            this benchmark did not start is running.

`start` is also given as a ratio to the same QEMU argv launched directly (measured in the same
run, as bench/start_latency.py does). Last, the resident memory of pyvirtd and of libvirtd with
1000 defined and 10 running domains. Targets (issue 11, the pyvirtd column): `list --all` with
1000 domains <= 30 ms, define <= 30 ms, dominfo <= 25 ms, start <= 1.5x raw QEMU, destroy <= 30 ms,
pyvirtd RSS <= 60 MiB. Every guest is TCG (`type='qemu'`), the tiny test image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import domain_xml, median, state_root, timed, tiny_image, wait_marker
from start_latency import direct_run

HERE = Path(__file__).resolve().parent
PROBE = "pvbprobe"
OPS = ("list --all", "define", "dominfo", "start", "destroy")
#: seconds (start: a ratio to the raw QEMU launch)
TARGETS = {"list --all": 0.030, "define": 0.030, "dominfo": 0.025, "start": 1.5, "destroy": 0.030}
RSS_TARGET_MIB = 60.0
COLUMNS = ("embedded", "pyvirtd@base", "pyvirtd", "virsh")
#: the column of ``--baseline``'s source tree
BASE = "pyvirtd@base"

Results = dict[str, dict[int, dict[str, float]]]


def filler(i: int) -> str:
    return f"pvb{i:04d}"


class Tool:
    """One column: how to run a command, where a guest's console goes, how to add domains."""

    name = ""

    def argv(self, *args: str) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run(self, *args: str) -> None:
        res = subprocess.run(self.argv(*args), env=self.env(), capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv(*args))}: {res.stderr.strip()}")

    def xml(self, name: str) -> str:
        raise NotImplementedError

    def console(self, name: str) -> Path:
        raise NotImplementedError

    def add_domains(self, names: list[str]) -> None:
        raise NotImplementedError

    def xml_file(self, name: str) -> Path:
        raise NotImplementedError

    def reset_console(self, name: str) -> None:
        self.console(name).unlink(missing_ok=True)


#: what ``pip install`` writes for a console-script entry point ``pyvirt = pyvirt.cli.main:main``
#: (pip 23; the launcher of trees without ``bin/pyvirt``)
PIP_WRAPPER = """# -*- coding: utf-8 -*-
import re
import sys
from pyvirt.cli.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def launcher(src: str, work: Path) -> list[str]:
    """The ``pyvirt`` command of a source tree (``src``: its ``src`` directory, "" for this
    one): its own ``bin/pyvirt`` (installed as the script), or, for a tree that has none, the
    console-script wrapper pip installs for it (written under ``work``). Run by this Python,
    as the installed script's ``#!`` line would."""
    tree = Path(src).parent if src else HERE.parent
    script = tree / "bin" / "pyvirt"
    if not script.is_file():
        script = work / "pyvirt-pip-wrapper"
        script.write_text(PIP_WRAPPER)
    return [sys.executable, str(script)]


class PyvirtTool(Tool):
    """``pyvirt`` on one state directory (embedded, or through the daemon serving it)."""

    def __init__(
        self, name: str, root: Path, kernel: Path, initrd: Path, uri: str = "", src: str = ""
    ) -> None:
        self.name, self.root, self.kernel, self.initrd, self.uri = name, root, kernel, initrd, uri
        #: another source tree (its ``src``) for the CLI and the daemon: a baseline column
        self.src = src
        self.command = launcher(src, root)

    def argv(self, *args: str) -> list[str]:
        return [*self.command, *(["-c", self.uri] if self.uri else []), *args]

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYVIRT_STATE_DIR": str(self.root)}
        if self.src:
            env["PYTHONPATH"] = self.src
        return env

    def xml(self, name: str) -> str:
        return domain_xml(name, self.kernel, self.initrd)

    def console(self, name: str) -> Path:
        return self.root / "log" / "qemu" / name / "console.log"

    def xml_file(self, name: str) -> Path:
        path = self.root / f"{name}.xml"
        path.write_text(self.xml(name))
        return path

    def add_domains(self, names: list[str]) -> None:
        from pyvirt.service.connection import open_connection

        mgr = open_connection(f"pyvirt:///embed?root={self.root}").domains
        for name in names:
            mgr.define(self.xml(name))


class VirshTool(Tool):
    """``virsh -c qemu:///system`` with the libvirtd this benchmark started."""

    name = "virsh"

    def __init__(self, work: Path, kernel: Path, initrd: Path) -> None:
        self.work = work
        # libvirt relabels kernel and initrd for its QEMU user: give it copies
        self.kernel = work / "vmlinuz"
        self.initrd = work / "initrd.img"
        shutil.copy(kernel, self.kernel)
        shutil.copy(initrd, self.initrd)

    def argv(self, *args: str) -> list[str]:
        return ["virsh", "-c", "qemu:///system", *args]

    def xml(self, name: str) -> str:
        return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{self.kernel}</kernel><initrd>{self.initrd}</initrd>
    <cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='file'><source path='{self.console(name)}'/><target port='0'/></serial>
  </devices>
</domain>
"""

    def console(self, name: str) -> Path:
        return self.work / f"{name}.console.log"

    def xml_file(self, name: str) -> Path:
        path = self.work / f"{name}.xml"
        path.write_text(self.xml(name))
        self.reset_console(name)
        return path

    def reset_console(self, name: str) -> None:
        # QEMU runs as libvirt's user: the file must exist and be writable for it
        self.console(name).write_bytes(b"")
        self.console(name).chmod(0o666)

    def add_domains(self, names: list[str]) -> None:
        script = "".join(f"define {self.xml_file(n)}\n" for n in names)
        subprocess.run(self.argv(), input=script, capture_output=True, text=True, check=True)

    def remove_all(self) -> None:
        """Destroy and undefine every domain this benchmark made (names ``pvb...``)."""
        out = subprocess.run(
            [*self.argv("list", "--all", "--name")], capture_output=True, text=True
        ).stdout
        names = [n for n in out.split() if n.startswith("pvb")]
        script = "".join(f"destroy {n}\nundefine {n}\n" for n in names)
        subprocess.run(self.argv(), input=script, capture_output=True, text=True)


# -- measuring ------------------------------------------------------------------------------
def measure(tool: Tool, runs: int, start_runs: int) -> dict[str, float]:
    """Medians of each operation on ``tool`` (``PROBE`` is defined afterwards)."""
    return measure_interleaved([tool], runs, start_runs)[tool.name]


def measure_interleaved(
    tools: Sequence[Tool], runs: int, start_runs: int
) -> dict[str, dict[str, float]]:
    """Medians of each operation on each of ``tools``, their samples taken in turn (one
    sample of each tool, then the next round, the order reversed every round), so load
    changes hit every column alike. A guest is started, booted and destroyed before the
    next tool starts its own (a booting TCG guest would slow the other column down)."""
    xml = {t.name: t.xml_file(PROBE) for t in tools}
    samples: dict[str, dict[str, list[float]]] = {t.name: {op: [] for op in OPS} for t in tools}

    def rounds(count: int) -> Iterator[list[Tool]]:
        for i in range(count):
            yield list(tools) if i % 2 == 0 else list(reversed(tools))

    for order in rounds(runs):
        for t in order:
            samples[t.name]["define"].append(timed(lambda t=t: t.run("define", str(xml[t.name]))))
            t.run("undefine", PROBE)
    for t in tools:
        t.run("define", str(xml[t.name]))
    for op, argv in (("list --all", ("list", "--all")), ("dominfo", ("dominfo", PROBE))):
        for order in rounds(runs):
            for t in order:
                samples[t.name][op].append(timed(lambda t=t, argv=argv: t.run(*argv)))
    for order in rounds(start_runs):
        for t in order:
            t.reset_console(PROBE)
            samples[t.name]["start"].append(timed(lambda t=t: t.run("start", PROBE)))
            wait_marker(t.console(PROBE), 0, timeout=120)
            samples[t.name]["destroy"].append(timed(lambda t=t: t.run("destroy", PROBE)))
    for t in tools:
        t.run("undefine", PROBE)
    return {name: {op: median(v) for op, v in ops.items()} for name, ops in samples.items()}


def raw_qemu(tool: PyvirtTool, runs: int) -> float:
    """Median time until the QEMU argv pyvirt uses for ``PROBE`` returns, launched directly."""
    tool.run("define", str(tool.xml_file(PROBE)))
    tool.run("start", PROBE)
    rec = json.loads((tool.root / "run/qemu" / PROBE / "runtime.json").read_text())
    tool.run("destroy", PROBE)
    run_dir = tool.root / "run/qemu" / PROBE
    times = []
    for _ in range(runs + 1):  # the first one warms the page cache
        returned, _ = direct_run(rec["argv"], run_dir, tool.console(PROBE))
        times.append(returned)
        shutil.rmtree(run_dir, ignore_errors=True)
    tool.run("undefine", PROBE)
    return median(times[1:])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rss_with_guests(tool: Tool, pid: int, count: int) -> float:
    """RSS of ``pid`` (a daemon) after ``tool`` started ``count`` of the fillers."""
    names = [filler(i) for i in range(count)]
    try:
        for name in names:
            tool.run("start", name)
        tool.run("list", "--all")
        time.sleep(1.0)
        return rss_mib(pid)
    finally:
        for name in names:
            with suppress(RuntimeError):
                tool.run("destroy", name)


# -- pyvirtd ----------------------------------------------------------------------------------
def health(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(sock))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: pyvirtd\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


@contextmanager
def pyvirtd(root: Path, src: str = "") -> Iterator[subprocess.Popen[bytes]]:
    """A pyvirtd serving ``root`` (no autostart) until the block ends (``src``: the source
    tree it runs from, default this one)."""
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    if src:
        env["PYTHONPATH"] = src
    log = (root / "pyvirtd.log").open("wb")
    cmd = [sys.executable, "-m", "pyvirt.daemon", "--no-autostart"]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not health(root / "run" / "pyvirtd.sock"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pyvirtd did not start: {(root / 'pyvirtd.log').read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cli_uses_daemon(tool: PyvirtTool) -> str:
    """Why ``pyvirt`` on the daemon's state directory cannot go through it ("" if it can)."""
    res = subprocess.run(tool.argv("list", "--all"), env=tool.env(), capture_output=True, text=True)
    if res.returncode != 0:
        return f"the CLI cannot use the daemon: {res.stderr.strip()}"
    uri = subprocess.run(tool.argv("uri"), env=tool.env(), capture_output=True, text=True)
    if uri.returncode == 0 and "embed" in uri.stdout:
        return f"the CLI connects embedded, not to the daemon ({uri.stdout.strip()})"
    return ""


# -- libvirtd ---------------------------------------------------------------------------------
def pids_of(name: str) -> set[int]:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


@contextmanager
def libvirtd(setup: bool) -> Iterator[int | str]:
    """The pid of a libvirtd this benchmark started (TCG only), or why there is none."""
    if setup and not (shutil.which("virsh") and shutil.which("libvirtd")):
        subprocess.run(["sh", str(HERE / "setup_libvirt.sh")], check=False)
    if not (shutil.which("virsh") and shutil.which("libvirtd")):
        yield "libvirt is not installed (run with --setup)"
        return
    if pids_of("libvirtd"):
        yield "a libvirtd this benchmark did not start is running"
        return
    logd_before = pids_of("virtlogd")
    res = subprocess.run(
        ["sh", str(HERE / "libvirtd" / "start-fair.sh")], capture_output=True, text=True
    )
    started = pids_of("libvirtd")
    if res.returncode != 0 or len(started) != 1:
        yield f"libvirtd did not start: {res.stderr.strip() or res.stdout.strip()}"
        return
    pid = started.pop()
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for logd in pids_of("virtlogd") - logd_before:  # the one start-fair.sh started
            with suppress(ProcessLookupError):
                os.kill(logd, signal.SIGTERM)


# -- the run ----------------------------------------------------------------------------------
def run_column(
    tool: Tool,
    sizes: list[int],
    runs: int,
    start_runs: int,
    out: Results,
    note: Callable[[str], None],
) -> None:
    """Measure ``tool`` at each size (adding fillers between sizes)."""
    have = 0
    for size in sizes:
        tool.add_domains([filler(i) for i in range(have, size - 1)])
        have = max(have, size - 1)
        note(f"{tool.name}: {size} domains")
        out.setdefault(tool.name, {})[size] = measure(tool, runs, start_runs)


def fmt(value: float | None, unit: str = "ms") -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f} ms" if unit == "ms" else f"{value:.2f}x"


def report(results: Results, raw: float, rss: dict[str, float | str], na: dict[str, str],
           sizes: list[int], runs: int, rss_label: str,
           launchers: dict[str, list[str]]) -> None:  # fmt: skip
    print(f"daemon_latency (medians of {runs}; TCG; raw QEMU launch = {raw * 1000:.1f} ms)")
    columns = [c for c in COLUMNS if c != BASE or BASE in results]
    print(f"  {'operation':<14}{'domains':>8}" + "".join(f"{c:>16}" for c in columns))
    for op in OPS:
        for size in sizes:
            cells = []
            for col in columns:
                value = results.get(col, {}).get(size, {}).get(op)
                text = fmt(value)
                if op == "start" and value is not None:
                    text = f"{value * 1000:.0f} ms {value / raw:.2f}x"
                cells.append(f"{text:>16}")
            print(f"  {op:<14}{size:>8}" + "".join(cells))
    for col, why in na.items():
        print(f"  {col}: n/a: {why}")
    for col, command in launchers.items():
        print(f"  {col}: pyvirt = {' '.join(command)}")
    print(f"  RSS with {rss_label}: " + ", ".join(
        f"{name} {v:.1f} MiB" if isinstance(v, float) else f"{name} n/a ({v})"
        for name, v in rss.items()
    ))  # fmt: skip
    daemon = results.get("pyvirtd", {}).get(max(sizes), {})
    print(f"  targets (pyvirtd column, {max(sizes)} domains):")
    for op in OPS:
        value = daemon.get(op)
        target = TARGETS[op]
        if value is None:
            print(f"    {op:<12} n/a")
            continue
        got = value / raw if op == "start" else value
        limit = f"{target:.1f}x raw" if op == "start" else f"{target * 1000:.0f} ms"
        shown = f"{got:.2f}x" if op == "start" else f"{got * 1000:.1f} ms"
        verdict = "OK" if got <= target else "MISSED"
        print(f"    {op:<12} {shown:>10} <= {limit:<10} ratio {got / target:.2f}  {verdict}")
    value = rss.get("pyvirtd")
    if isinstance(value, float):
        verdict = "OK" if value <= RSS_TARGET_MIB else "MISSED"
        print(f"    {'RSS':<12} {value:>7.1f} MiB <= {RSS_TARGET_MIB:.0f} MiB  {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="samples per operation (default 7)")
    ap.add_argument("--start-runs", type=int, default=5, help="start/destroy samples (default 5)")
    ap.add_argument("--sizes", default="1,1000", help="defined domains (default 1,1000)")
    ap.add_argument("--guests", type=int, default=10, help="running guests for the RSS figure")
    ap.add_argument("--setup", action="store_true", help="install libvirt if it is missing")
    ap.add_argument("--no-libvirt", action="store_true", help="leave the virsh column out")
    ap.add_argument("--no-embedded", action="store_true", help="leave the embedded column out")
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="add a 'pyvirtd@base' column: the CLI and pyvirtd of another source tree (its\n"
        "src directory, e.g. from `git archive`), measured interleaved with this one",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    def note(text: str) -> None:
        print(f"# {text}", file=sys.stderr, flush=True)

    kernel, initrd = tiny_image()
    results: Results = {}
    na: dict[str, str] = {}
    rss: dict[str, float | str] = {}
    fillers = max(max(sizes), args.guests)  # defined while the daemons' RSS is read
    with state_root() as emb_root, state_root() as d_root, state_root() as b_root:
        emb = PyvirtTool("embedded", emb_root, kernel, initrd)
        note("raw QEMU launches")
        raw = raw_qemu(emb, args.start_runs)
        if args.no_embedded:
            na["embedded"] = "left out (--no-embedded)"
        else:
            run_column(emb, sizes, args.runs, args.start_runs, results, note)
        daemon_tool = PyvirtTool("pyvirtd", d_root, kernel, initrd)
        daemons = [daemon_tool]
        if args.baseline:
            base = str(Path(args.baseline).resolve())
            daemons.insert(0, PyvirtTool(BASE, b_root, kernel, initrd, src=base))
        launchers = {t.name: t.command for t in daemons}
        # domains are added while no daemon runs (it may keep them in memory), and each size
        # is measured by freshly started daemons
        have = 0
        for size in sizes:
            for tool in daemons:
                tool.add_domains([filler(i) for i in range(have, size - 1)])
            have = max(have, size - 1)
            with contextlib.ExitStack() as stack:
                for tool in daemons:
                    stack.enter_context(pyvirtd(tool.root, tool.src))
                why = {t.name: cli_uses_daemon(t) for t in daemons}
                live = [t for t in daemons if not why[t.name]]
                na.update({name: text for name, text in why.items() if text})
                if not live:
                    break
                note(f"{', '.join(t.name for t in live)}: {size} domains")
                got = measure_interleaved(live, args.runs, args.start_runs)
                for name, figures in got.items():
                    results.setdefault(name, {})[size] = figures
        if args.baseline:
            daemons[0].add_domains([filler(i) for i in range(have, fillers)])
            with pyvirtd(b_root, daemons[0].src) as proc:
                note(f"{BASE} RSS with {args.guests} guests")
                rss[BASE] = rss_with_guests(daemons[0], proc.pid, args.guests)
        daemon_tool.add_domains([filler(i) for i in range(have, fillers)])
        starter = daemon_tool
        if "pyvirtd" in na:  # still measure the daemon's memory: start the guests embedded
            starter = PyvirtTool(
                "pyvirtd", d_root, kernel, initrd, f"pyvirt:///embed?root={d_root}"
            )
        with pyvirtd(d_root) as proc:
            note(f"pyvirtd RSS with {args.guests} guests")
            rss["pyvirtd"] = rss_with_guests(starter, proc.pid, args.guests)
    if args.no_libvirt:
        na["virsh"] = "left out (--no-libvirt)"
    else:
        with libvirtd(args.setup) as pid, tempfile.TemporaryDirectory(prefix="pvbl") as work:
            if isinstance(pid, str):
                na["virsh"] = pid
                rss["libvirtd"] = pid
            else:
                os.chmod(work, 0o755)
                virsh = VirshTool(Path(work), kernel, initrd)
                try:
                    virsh.remove_all()
                    run_column(virsh, sizes, args.runs, args.start_runs, results, note)
                    virsh.add_domains([filler(i) for i in range(max(sizes) - 1, fillers)])
                    note(f"libvirtd RSS with {args.guests} guests")
                    rss["libvirtd"] = rss_with_guests(virsh, pid, args.guests)
                finally:
                    virsh.remove_all()
    label = f"{fillers} defined and {args.guests} running domains"
    report(results, raw, rss, na, sizes, args.runs, label, launchers)
    if args.json:
        data = {"raw_qemu": raw, "results": results, "rss_mib": rss, "rss_with": label, "na": na}
        Path(args.json).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
